"""SpecAugment time and frequency masking (Park et al. 2019), on device inside the train step.

Each patch gets `time_masks` runs of up to `time_width` consecutive frames and `freq_masks`
runs of up to `freq_width` consecutive bands (widths uniform in [0, width], starts uniform),
set to that patch's mean value. Keyed by the step's RNG, so masked runs resume exactly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _runs(key, count: int, width: int, size: int, n: int) -> jax.Array:
    """(n, size) bool: the union of `count` random runs of up to `width` positions, per row."""
    width_key, start_key = jax.random.split(key)
    widths = jax.random.randint(width_key, (n, count), 0, width + 1)
    starts = jnp.minimum(jax.random.randint(start_key, (n, count), 0, size), size - widths)
    position = jnp.arange(size)[None, None, :]
    return ((position >= starts[..., None]) & (position < (starts + widths)[..., None])).any(axis=1)


def spec_augment(patches: jax.Array, key: jax.Array, *, time_masks: int, time_width: int, freq_masks: int,
                 freq_width: int) -> jax.Array:  # fmt: skip
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
