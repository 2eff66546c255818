"""Timing helpers: medians after warm-up, contenders interleaved A, B, A, B so that machine
noise (other tenants, frequency scaling) lands on all of them alike, and the practical peak."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(contenders: dict[str, Callable[[], object]], rounds: int, warmup: int = 2) -> dict[str, list[float]]:
    """Seconds per call of each contender, measured round-robin: round r times every contender once."""
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def median_ratio(slower: list[float], faster: list[float]) -> float:
    """Median over rounds of slower[r] / faster[r]: how many times faster `faster` ran."""
    return statistics.median(a / b for a, b in zip(slower, faster, strict=True))


def matmul_peak(repeats: int) -> float:
    """GFLOP/s of a 2048² float32 matmul through XLA: the practical peak MFU is measured against."""
    a = jax.random.normal(jax.random.key(0), (2048, 2048), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    return 2 * 2048**3 / median_seconds(lambda: f(a).block_until_ready(), repeats, warmup=2) / 1e9
