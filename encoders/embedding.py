"""Whole recordings → embedding sequences, batched over patches for the accelerator.

`embed_sequences` turns waveforms of any lengths into one (T_i, D) sequence each: log-mel on
the device (one compilation per length rounded up to whole seconds — frames inside the true
length do not see the padding, so the result is independent of the rounding), patches every
`patch_hop_seconds`, and the encoder over fixed-size chunks of patches gathered across
recordings (one compilation, full batches). A recording shorter than one patch is
zero-padded to one patch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from encoders.frontend import LogMel


def with_patch_hop(frontend: LogMel, seconds: float) -> LogMel:
    """The front-end with patches every `seconds` (rounded to whole frames)."""
    frames = max(1, int(round(seconds * frontend.sample_rate / frontend.hop_length)))
    return dataclasses.replace(frontend, patch_hop=frames)


def embed_sequences(
    encoder: nnx.Module,
    frontend: LogMel,
    waves: Iterable[np.ndarray],
    *,
    chunk: int = 256,
) -> Iterator[np.ndarray]:
    """Yields one float32 (T_i, D) array per waveform, in order; patches every `frontend.patch_hop` frames."""
    graph, state = nnx.split(encoder)
    forward = jax.jit(lambda state, x: nnx.merge(graph, state)(x))
    logmel = jax.jit(frontend.__call__)
    shortest = frontend.samples_for_patches(1)
    pending: list[tuple[int, np.ndarray]] = []  # (a recording's patch count, its patches)

    def flush() -> Iterator[np.ndarray]:
        patches = np.concatenate([p for _, p in pending])
        embedded = []
        for start in range(0, len(patches), chunk):
            block = patches[start : start + chunk]
            padded = np.pad(block, [(0, chunk - len(block))] + [(0, 0)] * (block.ndim - 1))
            embedded.append(np.asarray(forward(state, jnp.asarray(padded)))[: len(block)])
        bounds = np.cumsum([0] + [count for count, _ in pending])
        yield from np.split(np.concatenate(embedded), bounds[1:-1])
        pending.clear()

    for wave in waves:
        wave = np.asarray(wave, np.float32)
        if len(wave) < shortest:
            wave = np.pad(wave, (0, shortest - len(wave)))
        padded = np.pad(wave, (0, -len(wave) % frontend.sample_rate))
        frames = np.asarray(logmel(jnp.asarray(padded)))[: frontend.num_frames(len(wave))]
        count = frontend.num_patches(len(wave))
        index = np.arange(count)[:, None] * frontend.patch_hop + np.arange(frontend.patch_frames)[None, :]
        pending.append((count, frames[index]))
        if sum(c for c, _ in pending) >= chunk:
            yield from flush()
    if pending:
        yield from flush()
