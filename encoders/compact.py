"""A compact VGG-style CNN (≈ 1.05 M parameters, ≈ 0.2 GFLOP per patch forward).

Made for CPU-sized runs: about 1/26 of VGGish's compute per patch. Five conv3x3 →
batch-norm → ReLU blocks of widths 32, 64, 128, 256, 256 with 2×2 max-pooling after the
first four, then mean- and max-pooling over time and frequency, concatenated, and a linear
projection to a 128-d embedding (no final ReLU, like VGGish). Global pooling lets it take
patches of any size, not only 96×64.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from encoders import compute


class ConvBlock(nnx.Module):
    def __init__(self, in_channels: int, out_channels: int, *, rngs: nnx.Rngs):
        self.conv = nnx.Conv(
            in_channels,
            out_channels,
            kernel_size=(3, 3),
            padding="SAME",
            use_bias=False,
            kernel_init=nnx.initializers.xavier_uniform(),
            rngs=rngs,
        )
        self.norm = nnx.BatchNorm(out_channels, momentum=0.9, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return jax.nn.relu(self.norm(self.conv(x)))


class CompactCNN(nnx.Module):
    def __init__(
        self,
        *,
        widths: tuple[int, ...] = (32, 64, 128, 256, 256),
        embedding_dim: int = 128,
        in_channels: int = 1,
        rngs: nnx.Rngs,
    ):
        channels = (in_channels, *widths)
        self.in_channels = in_channels
        self.blocks = nnx.List([ConvBlock(channels[i], channels[i + 1], rngs=rngs) for i in range(len(widths))])
        self.embedding_dim = embedding_dim
        self.project = nnx.Linear(
            2 * widths[-1], embedding_dim, kernel_init=nnx.initializers.xavier_uniform(), rngs=rngs
        )

    def __call__(self, patches: jax.Array) -> jax.Array:
        """(B, frames, bands) log-mel patches, or (B, frames, bands, channels) for a multi-channel
        front-end (`in_channels`), → (B, embedding_dim)."""
        if patches.ndim - (self.in_channels > 1) != 3 or (
            self.in_channels > 1 and patches.shape[-1] != self.in_channels
        ):
            raise ValueError(
                f"CompactCNN(in_channels={self.in_channels}) takes (batch, frames, bands"
                f"{', channels' if self.in_channels > 1 else ''}) patches; got {patches.shape}"
            )
        x = patches[..., None] if self.in_channels == 1 else patches
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i < len(self.blocks) - 1:
                x = compute.max_pool_2x2(x)
        pooled = jnp.concatenate([x.mean(axis=(1, 2)), compute.global_max(x)], axis=-1)
        return self.project(pooled)
