"""Denoising autoencoder (Taenzer, Mimilakis, Abeßer; docs/methods.md §4.2).

The clean log-mel patches are corrupted *before* the encoder — additive Gaussian noise
(mean 0, std `noise_std`, default 0.1) or a multiplicative Bernoulli mask that keeps each
time-frequency bin with probability `keep_prob` (default 0.5) and silences the rest (sets
them to the log-mel floor log(0.01): multiplying the mel *energy* by 0) — and a decoder
regresses the clean patches from the encoder's output (mean squared error).
`corrupted_input_mse`, logged beside the loss, measures the corruption itself; the decoder
cannot reach it, since it rebuilds the patch through the 128-d embedding.

The decoder is four transposed 1-D convolutions over time with no padding: channels 128, 64,
64, 64 (the last = the 64 mel bands), kernel sizes 10, 21, 31, 37, leaky-ReLU slopes 0.1,
0.25, 0.5 on the first three, linear last. An unpadded transposed convolution turns a
length-L sequence into L + k − 1, so one embedding (L = 1) becomes 1 + 9 + 20 + 30 + 36 = 96
frames: exactly one VGGish patch. The decoder therefore reconstructs each patch from that
patch's embedding — the encoder's time axis is its sequence of patch embeddings — and works
with every registered encoder. Length matching: with VGGish's 96-frame patches the output
fits exactly; for a front-end with other patch lengths `match_frames` crops the end of the
decoder's output when it is longer and repeats its last frame when it is shorter.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import encoders
from overtone.errors import BadValueError

NOISES = ("additive", "multiplicative")
LAYERS = ((128, 10, 0.1), (64, 21, 0.25), (64, 31, 0.5), (None, 37, None))  # (channels, kernel, slope)


def corrupt(
    key: jax.Array, clean: jax.Array, *, noise: str, noise_std: float, keep_prob: float, floor: float = 0.0
) -> jax.Array:
    """Additive: clean + N(0, noise_std²). Multiplicative: each bin kept with probability
    `keep_prob`, otherwise silenced — set to `floor`, the log-mel of zero energy (log of the
    front-end's offset), since a log-mel value of 0 would be a loud bin, not a missing one."""
    if noise == "additive":
        return clean + noise_std * jax.random.normal(key, clean.shape, clean.dtype)
    keep = jax.random.bernoulli(key, keep_prob, clean.shape)
    return jnp.where(keep, clean, jnp.asarray(floor, clean.dtype))


def match_frames(decoded: jax.Array, frames: int) -> jax.Array:
    """Bring the decoder's output (N, T, bands) to `frames` along time: crop the end when
    longer, repeat the last frame when shorter (edge padding, so no frame is forced to 0)."""
    length = decoded.shape[1]
    if length >= frames:
        return decoded[:, :frames]
    return jnp.pad(decoded, ((0, 0), (0, frames - length), (0, 0)), mode="edge")


class TimeDecoder(nnx.Module):
    def __init__(self, embedding_dim: int, num_bands: int, *, rngs: nnx.Rngs):
        channels = [embedding_dim] + [c or num_bands for c, _, _ in LAYERS]
        self.layers = nnx.List(
            [
                nnx.ConvTranspose(
                    channels[i],
                    channels[i + 1],
                    kernel_size=(kernel,),
                    padding="VALID",
                    kernel_init=nnx.initializers.xavier_uniform(),
                    rngs=rngs,
                )
                for i, (_, kernel, _) in enumerate(LAYERS)
            ]
        )
        self.slopes = tuple(slope for _, _, slope in LAYERS)

    def __call__(self, embeddings: jax.Array) -> jax.Array:
        """(N, D) embeddings → (N, 96, num_bands) log-mel frames."""
        x = embeddings[:, None, :]
        for layer, slope in zip(self.layers, self.slopes, strict=True):
            x = layer(x)
            if slope is not None:
                x = jax.nn.leaky_relu(x, slope)
        return x


class Denoise(nnx.Module):
    def __init__(
        self,
        embedding_dim: int,
        *,
        num_bands: int,
        noise: str = "additive",
        noise_std: float = 0.1,
        keep_prob: float = 0.5,
        rngs: nnx.Rngs,
    ):
        if noise not in NOISES:
            raise BadValueError(f"denoise noise must be one of {NOISES}, got {noise!r}")
        if noise_std < 0 or not 0.0 < keep_prob <= 1.0:
            raise BadValueError("need noise_std >= 0 and 0 < keep_prob <= 1")
        self.noise, self.noise_std, self.keep_prob = noise, noise_std, keep_prob
        self.decoder = TimeDecoder(embedding_dim, num_bands, rngs=rngs)

    def __call__(self, encoder, frontend, batch: dict, key: jax.Array, *, train: bool):
        """Validation corrupts too (with the fixed evaluation key), so its loss is the same
        objective as training's and comparable across evaluations."""
        if frontend.num_bands < 2:
            raise BadValueError(
                "denoising reconstructs spectrogram patches; the waveform front-end (sinc encoder) "
                "has none: pretrain the sinc encoder with nsynth_mixup"
            )
        clean = frontend.patches(frontend(batch["audio"]))  # (B, P, F, bands)
        floor = float(np.log(frontend.log_offset))
        noisy = corrupt(key, clean, noise=self.noise, noise_std=self.noise_std, keep_prob=self.keep_prob, floor=floor)
        embeddings = encoders.encode_patches(encoder, noisy)  # (B, P, D)
        batch_size, count, frames, bands = clean.shape
        decoded = self.decoder(embeddings.reshape(batch_size * count, -1))
        decoded = match_frames(decoded, frames).reshape(clean.shape)
        weights = batch["weight"]
        per_example = jnp.mean((decoded - clean) ** 2, axis=(1, 2, 3))
        corrupted = jnp.mean((noisy - clean) ** 2, axis=(1, 2, 3))
        total = jnp.maximum(weights.sum(), 1.0)
        loss = (per_example * weights).sum() / total
        return loss, {"mse": loss, "corrupted_input_mse": (corrupted * weights).sum() / total}
