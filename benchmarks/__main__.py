"""python -m benchmarks [--parts=compile,train,embed,pipeline,frontend,head] [--encoders=vggish,compact]
                        [--batch_size=64] [--rounds=5] [--dtype=float32|bfloat16] [--allocator=warm|system]
                        [--out=FILE.json] [--markdown=FILE.md]
python -m benchmarks --accelerator [--batch_size=256] [--encoders=…] [--out=…] [--markdown=…]
                        float32 and bfloat16 throughput and MFU of both steps, the PCM-cache pipeline
                        at one worker per core against them, and one NSynth epoch extrapolated
                        (benchmarks/accelerator.py; on a lent GPU, scripts/accelerator_check.sh)

Everything measured in one process, on this machine, as ratios where there is something to race:
  compile   the pretraining step's compile time, cold and from the persistent compilation cache
  train     per encoder: the loop's train step (encoder + softmax head + Adam, batch 64 of 96×64
            patches) with XLA and im2col convolutions, and with XLA's own max-pool gradient
            (select-and-scatter) in place of encoders/compute.py's, interleaved A,B,C,… with the PyTorch eager
            reference of the same network (benchmarks/torch_reference.py, if torch is installed);
            examples/s, GFLOP/s (XLA's count), MFU against a matmul measured in this run; and the
            full nsynth_mixup step (waveform → log-mel on device → encoder → mixup → Adam)
  embed     per encoder: embedding extraction (forward, evaluation mode), against the reference
  pipeline  input pipeline on the embedded corpus, 1 worker thread: from the WAV files and from
            the PCM cache (python -m pretrain.cache), as multiples of each train step's consumption
  frontend  the on-device VGGish front-end against librosa's batched melspectrogram, per core,
            and its deviation from the float64 VGGish recipe
  head      the attention classifier's whole epochs on cached OpenMIC-sized features
  layers    per 3×3 convolution of each encoder: forward, input and kernel gradient, ms, against
            PyTorch's (oneDNN) on the same shapes — where the train step's time goes (not default)
--allocator=warm (the CLI's setting, runtime/performance.py) or system (glibc's default); it
applies to the whole process, so to both sides of every race.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from absl import flags

_PARTS = flags.DEFINE_list("parts", ["compile", "train", "embed", "pipeline", "frontend", "head"], "what to measure")
_ENCODERS = flags.DEFINE_list("encoders", ["compact", "vggish"], "encoders to time")
_BATCH = flags.DEFINE_integer("batch_size", 64, "examples per step")
_ROUNDS = flags.DEFINE_integer("rounds", 5, "interleaved timing rounds per race")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "compute dtype of our train steps")
_ALLOCATOR = flags.DEFINE_enum("allocator", "warm", ["warm", "system"], "heap setting for the process")
_OUT = flags.DEFINE_string("out", "", "write the results here as JSON")
_MARKDOWN = flags.DEFINE_string("markdown", "", "write the table here as Markdown")
_ACCELERATOR = flags.DEFINE_bool("accelerator", False, "the accelerator check instead of --parts")
PARTS = ("compile", "train", "embed", "pipeline", "frontend", "head", "layers")
flags.register_validator("batch_size", lambda v: v >= 1, message="--batch_size must be at least 1")
flags.register_validator("rounds", lambda v: v >= 1, message="--rounds must be at least 1")


def _writable(path: str) -> bool:
    """An output path the run can write at its end: checked before minutes of timing, not after."""
    if not path:
        return True
    path = Path(path).expanduser()
    return path.parent.is_dir() and os.access(path.parent, os.W_OK) and not path.is_dir()


for _name in ("out", "markdown"):
    flags.register_validator(
        _name, _writable, message=f"--{_name}: its folder must exist and be writable, and it must not be a folder"
    )


def check_selection(parts: set[str], names: list[str], accelerator: bool) -> None:
    """One line for a selection that would measure nothing or fail halfway: unknown parts, no
    encoder, or one the steps cannot feed (they time 96×64 log-mel patches; waveform encoders
    such as sinc_zhong take raw samples)."""
    import encoders
    from benchmarks.layers import POOLED_AFTER
    from overtone.errors import BadValueError, unknown_name

    unknown = sorted(parts - set(PARTS))
    if unknown:
        raise unknown_name("part", unknown[0], PARTS, where="--parts")
    if not names:
        raise BadValueError("--encoders is empty: name at least one, e.g. --encoders=compact")
    for name in names:
        if name not in encoders.ENCODERS:
            raise unknown_name("encoder", name, encoders.ENCODERS, where="--encoders")
        if hasattr(encoders.ENCODERS[name], "frontend_name") and (accelerator or parts & {"compile", "train", "embed"}):
            raise BadValueError(
                f"--encoders={name}: the benchmark steps feed 96×64 log-mel patches; {name} takes waveforms"
            )
        if "layers" in parts and name not in POOLED_AFTER:
            known = " and ".join(sorted(POOLED_AFTER))
            raise BadValueError(f"--parts=layers profiles the convolutions of {known}, not of {name!r}")


def compile_times(name: str, batch: int) -> dict:
    import jax

    from benchmarks.steps import pretraining_step

    started = time.perf_counter()
    pretraining_step(name, batch)
    cold = time.perf_counter() - started
    jax.clear_caches()
    started = time.perf_counter()
    runner, _ = pretraining_step(name, batch)
    warm = time.perf_counter() - started
    step = min(_time(runner) for _ in range(2))
    return {"cold_seconds": cold, "cached_seconds": warm, "step_seconds": step}


def _time(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def race(results: dict, rows: list, kind: str, name: str, contenders: dict, flops: float, peak: float) -> None:
    from benchmarks.timing import interleaved, median_ratio

    times = interleaved(contenders, _ROUNDS.value)
    batch = _BATCH.value
    entry = {}
    for who, seconds in times.items():
        median = statistics.median(seconds)
        entry[who] = {
            "examples_per_second": batch / median,
            "seconds": median,
            "gflops_per_second": flops / median / 1e9,
            "mfu": flops / median / 1e9 / peak,
        }
    if "pytorch" in times:
        for who in times:
            if who != "pytorch":
                entry[who]["ratio_to_pytorch"] = median_ratio(times["pytorch"], times[who])
    results[f"{kind}_{name}"] = entry
    for who, e in entry.items():
        ratio = f"{e['ratio_to_pytorch']:.2f}×" if "ratio_to_pytorch" in e else ("1×" if who == "pytorch" else "")
        rows.append(
            f"| {kind} {name}, batch {batch} | {who} | {e['examples_per_second']:.1f} ex/s | "
            f"{e['gflops_per_second']:.0f} GFLOP/s, MFU {100 * e['mfu']:.0f} % | {ratio} |"
        )


def main(argv):
    del argv
    from runtime.performance import keep_freed_memory

    if _ALLOCATOR.value == "warm":
        keep_freed_memory()
    import jax

    from benchmarks import torch_reference
    from benchmarks.steps import embed_step, encoder_step, pretraining_step
    from benchmarks.timing import matmul_peak, median_seconds

    parts, batch = set(_PARTS.value), _BATCH.value
    check_selection(parts, _ENCODERS.value, _ACCELERATOR.value)
    jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="overtone-bench-xla-"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    results = {
        "device": str(jax.devices()[0]),
        "device_count": jax.device_count(),
        "cpu": platform.processor(),
        "cores": os.cpu_count(),
        "batch_size": batch,
        "allocator": _ALLOCATOR.value,
        "dtype": _DTYPE.value,
        "date": time.strftime("%Y-%m-%d"),
    }
    rows = []
    if _ACCELERATOR.value:
        from benchmarks.accelerator import check

        batch = results["batch_size"] = batch if flags.FLAGS["batch_size"].present else 256
        found, rows = check(_ENCODERS.value, batch, _ROUNDS.value)
        results |= found
        parts = set()
    if "compile" in parts:
        for name in _ENCODERS.value:
            c = results[f"compile_{name}"] = compile_times(name, batch)
            cached, step = c["cached_seconds"], c["step_seconds"]
            rows.append(
                f"| compile nsynth_mixup step, {name} | cold | {c['cold_seconds']:.1f} s | "
                f"from the persistent cache {cached:.1f} s | one step {step:.2f} s |"
            )
    if parts & {"train", "embed"}:
        peak = results["matmul_gflops_per_second"] = matmul_peak(5)
        rows.append(f"| matmul 2048² float32 | XLA | | {peak:.0f} GFLOP/s (the peak MFU is against) | |")
        have_torch = torch_reference.available()
        if not have_torch:
            print("PyTorch is not installed: racing no reference (pip install torch==2.13.0 for the CPU build)")
    for name in _ENCODERS.value if parts & {"train", "embed"} else ():
        reference = torch_reference.Reference(name, batch) if have_torch else None
        if "train" in parts:
            xla, flops = encoder_step(name, batch, conv="xla", dtype=_DTYPE.value)
            im2col, _ = encoder_step(name, batch, conv="im2col", dtype=_DTYPE.value)
            xla_pools, _ = encoder_step(name, batch, conv="xla", dtype=_DTYPE.value, pooling="xla")
            whole, _ = encoder_step(name, batch, conv="im2col", dtype=_DTYPE.value, column_block_bytes=1 << 62)
            contenders = {
                "overtone xla": xla,
                "overtone im2col": im2col,
                "overtone im2col, one matmul": whole,
                "overtone xla, XLA's max-pool": xla_pools,
            }
            contenders |= {"pytorch": reference.train_step} if reference else {}
            race(results, rows, "train", name, contenders, flops, peak)
            full, full_flops = pretraining_step(name, batch)
            seconds = median_seconds(full, _ROUNDS.value)
            results[f"pretraining_step_{name}"] = {"examples_per_second": batch / seconds, "gflop": full_flops / 1e9}
            achieved = full_flops / seconds / 1e9
            rows.append(
                f"| nsynth_mixup step (log-mel + mixup) {name} | overtone | {batch / seconds:.1f} ex/s | "
                f"{achieved:.0f} GFLOP/s, MFU {100 * achieved / peak:.0f} % | |"
            )
        if "embed" in parts:
            ours, flops = embed_step(name, batch)
            contenders = {"overtone": ours} | ({"pytorch": reference.embed} if reference else {})
            race(results, rows, "embed", name, contenders, flops, peak)
    if "layers" in parts:
        from benchmarks.layers import markdown, profile

        if not torch_reference.available():
            print("PyTorch is not installed: the layer profile shows ours only (pip install torch==2.13.0)")
        for name in _ENCODERS.value:
            found = results[f"layers_{name}"] = profile(name, batch, _ROUNDS.value)
            rows.extend(markdown(name, batch, found))
    if "pipeline" in parts:
        from benchmarks.data import input_pipeline

        for source in ("files", "cache"):
            rate = results[f"pipeline_{source}_1_worker"] = input_pipeline(batch, 1, 20, cache=source == "cache")
            needs = {
                name: results[f"pretraining_step_{name}"]["examples_per_second"]
                for name in _ENCODERS.value
                if f"pretraining_step_{name}" in results
            }
            versus = ", ".join(f"{rate / v:.0f}× the {n} step" for n, v in needs.items())
            rows.append(f"| input pipeline from the {source}, 1 worker | grain | {rate:.0f} clips/s | {versus} | |")
    if "frontend" in parts:
        from benchmarks.data import frontend_vs_librosa

        f = results["frontend"] = frontend_vs_librosa(256, 1.0, 5)
        theirs = f["librosa_clips_per_second_per_core"]
        for dtype, rate in f["frontend_clips_per_second_per_core"].items():
            deviation = f["max_abs_deviation_from_vggish_recipe"][dtype]
            rows.append(
                f"| VGGish log-mel, 1-s clips, per core | overtone, {dtype} STFT | {rate:.0f} clips/s | "
                f"max |Δ| from the VGGish recipe {deviation:.1e} | {rate / theirs:.2f}× librosa |"
            )
        rows.append(f"| same, librosa melspectrogram (batched, numpy) | librosa | {theirs:.0f} clips/s | | 1× |")
    if "head" in parts:
        from benchmarks.data import attention_head

        rate = results["attention_head_epochs_per_minute"] = attention_head(epochs=2)
        rows.append(f"| attention classifier, OpenMIC-sized cached features | overtone | {rate:.1f} epochs/min | | |")
    table = (
        f"{results['device']} × {results['device_count']}, {results['cores']} cores, allocator "
        f"{results['allocator']}, {results['date']}\n\n| what | who | throughput | compute | vs reference |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows)
    )
    print("\n" + table)
    if _OUT.value:
        with open(Path(_OUT.value).expanduser(), "w") as f:
            json.dump(results, f, indent=2)
    if _MARKDOWN.value:
        with open(Path(_MARKDOWN.value).expanduser(), "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    from overtone.cli import run_absl

    run_absl(main, __doc__, examples=["python -m benchmarks --out=bench.json --markdown=bench.md"])
