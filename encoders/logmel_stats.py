"""Log-mel statistics: the baseline with nothing learned (Taenzer et al.'s "Log-Mel" row).

Each patch becomes the mean and the standard deviation over time of every band of its
log-mel spectrogram (with a multi-channel front-end, of every band of every channel):
2 · bands · channels numbers, no parameters. A probe or classifier on these features shows
what the spectrum alone gives away; an encoder that learned something should beat it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class LogMelStats(nnx.Module):
    def __init__(self, *, bands: int = 64, in_channels: int = 1, rngs: nnx.Rngs):
        del rngs  # nothing to initialise: the registry builds every encoder the same way
        if bands < 1 or in_channels < 1:
            raise ValueError(f"LogMelStats needs bands ≥ 1 and in_channels ≥ 1; got {bands}, {in_channels}")
        self.bands, self.in_channels = bands, in_channels
        self.embedding_dim = 2 * bands * in_channels

    def __call__(self, patches: jax.Array) -> jax.Array:
        """(B, frames, bands) or (B, frames, bands, channels) → (B, 2·bands·channels): the means over
        frames, then the standard deviations (population, as numpy's default)."""
        expected = (self.bands,) if self.in_channels == 1 else (self.bands, self.in_channels)
        if patches.ndim != 1 + 1 + len(expected) or tuple(patches.shape[2:]) != expected:
            raise ValueError(
                f"LogMelStats(bands={self.bands}, in_channels={self.in_channels}) takes (batch, frames, "
                f"{', '.join(map(str, expected))}) patches; got {patches.shape}"
            )
        flat = jnp.reshape(patches, (patches.shape[0], patches.shape[1], -1))
        return jnp.concatenate([flat.mean(axis=1), flat.std(axis=1)], axis=-1)
