"""`python -m benchmarks --accelerator`: what a lent GPU or TPU does with the toolkit, in one run
of a few minutes (scripts/accelerator_check.sh carries the packages the device image lacks).

Measured, each on this device in this process:
  peak     a large matmul in float32 and in bfloat16 (8192² on an accelerator, 2048² on a CPU):
           the achievable rate each MFU below is against (XLA's default precision, so float32
           may run as TF32 on NVIDIA tensor cores, as the train steps do)
  steps    per encoder and compute dtype: the loop's train step (encoder + softmax head + Adam)
           and the full nsynth_mixup step (waveform → log-mel on device → encoder → mixup →
           Adam); examples/s, XLA's FLOP count per second, MFU
  pipeline the input pipeline from the PCM cache with one worker per core, in clips/s, as a
           multiple of each full step's consumption (≥ 1: the device is the bottleneck)
  epoch    one pass over NSynth's 289,205 training notes at the slower of the step and the
           pipeline, extrapolated from the rates above
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp

from benchmarks.timing import median_seconds

NSYNTH_TRAIN_NOTES = 289_205
DTYPES = ("float32", "bfloat16")


def on_accelerator() -> bool:
    return jax.devices()[0].platform != "cpu"


def matmul_peak(dtype: str, size: int, repeats: int = 5) -> float:
    """GFLOP/s of a size² matmul in `dtype` through XLA."""
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32).astype(dtype)
    f = jax.jit(lambda x: x @ x)
    return 2 * size**3 / median_seconds(lambda: f(a).block_until_ready(), repeats, warmup=2) / 1e9


def check(
    names: list[str], batch: int, rounds: int, pipeline_batches: int = 20, matmul_size: int = 0
) -> tuple[dict, list[str]]:
    """(results, Markdown rows) of the measurements in the module docstring (`matmul_size` 0: the
    device's default)."""
    from benchmarks.data import input_pipeline
    from benchmarks.steps import encoder_step, pretraining_step

    started = time.perf_counter()
    size = matmul_size or (8192 if on_accelerator() else 2048)
    peaks = {dtype: matmul_peak(dtype, size) for dtype in DTYPES}
    results: dict = {"matmul_gflops_per_second": peaks, "matmul_size": size}
    rows = [
        f"| matmul {size}² {dtype} | XLA | | {peak:.0f} GFLOP/s (the MFU base) | |" for dtype, peak in peaks.items()
    ]
    full_rates = {}
    for name in names:
        for dtype in DTYPES:
            for kind, build in (("train step", encoder_step), ("nsynth_mixup step", pretraining_step)):
                runner, flops = build(name, batch, dtype=dtype)
                seconds = median_seconds(runner, rounds, warmup=2)
                rate, achieved = batch / seconds, flops / seconds / 1e9
                results[f"{kind.split()[0]}_{name}_{dtype}"] = {
                    "examples_per_second": rate,
                    "gflops_per_second": achieved,
                    "mfu": achieved / peaks[dtype],
                }
                rows.append(
                    f"| {kind} {name}, batch {batch} | {dtype} | {rate:.0f} ex/s | "
                    f"{achieved:.0f} GFLOP/s, MFU {100 * achieved / peaks[dtype]:.1f} % | |"
                )
                if kind == "nsynth_mixup step":
                    full_rates[(name, dtype)] = rate
    workers = os.cpu_count() or 1
    pipeline = input_pipeline(batch, workers, pipeline_batches, cache=True)
    results["pipeline_cache_clips_per_second"], results["pipeline_workers"] = pipeline, workers
    for (name, dtype), rate in full_rates.items():
        seconds = NSYNTH_TRAIN_NOTES / min(rate, pipeline)
        results[f"epoch_{name}_{dtype}_minutes"] = seconds / 60
        rows.append(
            f"| NSynth epoch (289,205 notes), {name} | {dtype} | {seconds / 60:.1f} min | pipeline "
            f"{pipeline / rate:.1f}× the step's demand ({pipeline:.0f} clips/s, {workers} workers) | |"
        )
    results["check_seconds"] = time.perf_counter() - started
    return results, rows
