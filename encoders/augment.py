"""Batch augmentations that run on device inside the train step, shared by pretraining and
fine-tuning (waveform effects, which run in the input pipeline, are `corpora.augment`):

* `mixup`: pairs every example with its neighbour and mixes inputs, targets and weights.
* SpecAugment time and frequency masking (Park et al. 2019) on front-end patches: each patch
  gets `time_masks` runs of up to `time_width` consecutive frames and `freq_masks` runs of up
  to `freq_width` consecutive bands (widths uniform in [0, width], starts uniform), set to
  that patch's mean value.

Both are keyed by the step's RNG, so a resumed run augments exactly as an uninterrupted one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mixup(key: jax.Array, audio, targets, weights, *, prob: float, alpha: float):
    """Mix each example with the next one in the batch; returns (audio, targets, weights, λ).

    λ = 1 (nothing mixed) for batches not selected. A mixed example only counts when both
    of its sources loaded (weights multiply).
    """
    draw_key, apply_key = jax.random.split(key)
    lam = jax.random.beta(draw_key, alpha, alpha)
    apply = jax.random.uniform(apply_key) < prob
    lam = jnp.where(apply, lam, 1.0).astype(audio.dtype)
    partner = lambda x: jnp.roll(x, 1, axis=0)  # noqa: E731
    audio = lam * audio + (1.0 - lam) * partner(audio)
    targets = lam * targets + (1.0 - lam) * partner(targets)
    weights = weights * jnp.where(apply, partner(weights), 1.0)
    return audio, targets, weights, lam


def _runs(key, count: int, width: int, size: int, n: int) -> jax.Array:
    """(n, size) bool: the union of `count` random runs of up to `width` positions, per row."""
    width_key, start_key = jax.random.split(key)
    widths = jax.random.randint(width_key, (n, count), 0, width + 1)
    starts = jnp.minimum(jax.random.randint(start_key, (n, count), 0, size), size - widths)
    position = jnp.arange(size)[None, None, :]
    return ((position >= starts[..., None]) & (position < (starts + widths)[..., None])).any(axis=1)


def spec_augment(
    patches: jax.Array, key: jax.Array, *, time_masks: int, time_width: int, freq_masks: int, freq_width: int
) -> jax.Array:
    """(N, frames, bands[, channels]) → the same with masked runs of frames and bands."""
    n, frames, bands = patches.shape[:3]
    time_key, freq_key = jax.random.split(key)
    masked = (
        _runs(time_key, time_masks, time_width, frames, n)[:, :, None]
        | _runs(freq_key, freq_masks, freq_width, bands, n)[:, None, :]
    )
    masked = masked.reshape(masked.shape + (1,) * (patches.ndim - 3))
    mean = patches.mean(axis=tuple(range(1, patches.ndim)), keepdims=True)
    return jnp.where(masked, mean, patches)


class MaskedPatches:
    """A front-end whose patches come out SpecAugment-masked (for one training step's `key`);
    everything else is the wrapped front-end's. Objectives and heads need no change."""

    def __init__(self, frontend, key: jax.Array, spec: dict):
        self.frontend, self.key, self.spec = frontend, key, spec

    def __getattr__(self, name):
        return getattr(self.frontend, name)

    def __call__(self, waveform: jax.Array) -> jax.Array:
        return self.frontend(waveform)

    def patches(self, logmel: jax.Array) -> jax.Array:
        patches = self.frontend.patches(logmel)
        flat = patches.reshape(-1, *patches.shape[2:])
        return spec_augment(flat, self.key, **self.spec).reshape(patches.shape)


def active(spec) -> bool:
    return bool(spec.get("time_masks") or spec.get("freq_masks"))
