"""Input pipeline on grain: parallel decode, seeded shuffling, batching, prefetch.

Training batches form a random-access sequence: batch k is a pure function of (records,
seed, k) — grain reshuffles every epoch from the seed and hands each element its own RNG
for cropping. Resuming at step k therefore needs only k (stored in the checkpoint), and a
resumed run sees exactly the batches an uninterrupted one would.

Multi-host: every process reads only its own rows of each global batch; process p of P gets
rows [p·B/P, (p+1)·B/P) of batch k, so the global batch is the same for any process count.

An element that fails to load becomes zeros with `weight` 0 (counted by the loader's
`BadFileLog`), so batch shapes stay static and losses ignore it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grain
import numpy as np

from overtone.errors import BadValueError

Example = dict[str, np.ndarray]


def training_batches(
    records: Sequence[Any],
    load: Callable[[Any, np.random.Generator | None], Example],
    *,
    batch_size: int,
    seed: int,
    start_step: int = 0,
    workers: int = 2,
    prefetch: int = 4,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[Example]:
    """Endless iterator of this process's share of global batches `start_step`, `start_step + 1`, …"""
    local = _local_batch_size(batch_size, process_count)
    if len(records) < batch_size:
        raise BadValueError(f"{len(records)} training examples are fewer than one batch of {batch_size}")
    ds = (
        grain.MapDataset.source(records)
        .shuffle(seed=seed)
        .repeat(None)
        .random_map(lambda record, rng: load(record, rng), seed=seed + 1)
        .batch(local, drop_remainder=True)
    )
    return _read(ds[process_index::process_count][start_step:], workers, prefetch)


def evaluation_batches(
    records: Sequence[Any],
    load: Callable[[Any, np.random.Generator | None], Example],
    *,
    batch_size: int,
    workers: int = 2,
    prefetch: int = 4,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[Example]:
    """Every record exactly once, in order; the last batch is padded with weight-0 examples."""
    local = _local_batch_size(batch_size, process_count)
    if not records:
        raise BadValueError("no evaluation examples")
    padded = -len(records) % batch_size
    indices = list(range(len(records))) + [-1] * padded
    template: dict[str, Example] = {}

    def load_index(i: int) -> Example:
        if i >= 0:
            example = load(records[i], None)
            template.setdefault("zeros", {k: np.zeros_like(v) for k, v in example.items()})
            return example
        if "zeros" not in template:
            template["zeros"] = {k: np.zeros_like(v) for k, v in load(records[0], None).items()}
        return dict(template["zeros"])

    ds = grain.MapDataset.source(indices).map(load_index).batch(local, drop_remainder=True)
    return _read(ds[process_index::process_count], workers, prefetch)


def steps_per_epoch(num_records: int, batch_size: int) -> int:
    return max(1, num_records // batch_size)


def _read(batches: grain.MapDataset, workers: int, prefetch: int) -> Iterator[Example]:
    """Iterate with `workers` decoding threads and `prefetch` batches read ahead."""
    options = grain.ReadOptions(num_threads=max(1, workers), prefetch_buffer_size=prefetch)
    return iter(batches.to_iter_dataset(options))


def _local_batch_size(batch_size: int, process_count: int) -> int:
    if batch_size % process_count:
        raise BadValueError(f"batch size {batch_size} is not divisible by the {process_count} processes")
    return batch_size // process_count
