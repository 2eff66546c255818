"""python -m benchmarks [--encoders=vggish,compact] [--batch_size=64] [--steps=5] [--out=FILE.json]

Prints, for this machine and in one run:
  * the pretraining train step (front-end + encoder + family_mixup + Adam, the exact jitted
    step `runtime.loop.fit` runs) in examples/s for each encoder, with the FLOPs XLA counts
    for it and the achieved GFLOP/s;
  * a float32 matmul's GFLOP/s measured in the same process (the machine's practical peak),
    so each step also gets an MFU;
  * the input pipeline alone (decode + crop of embedded-corpus notes through grain) in clips/s
    for 1 and 2 worker threads;
  * the attention classifier's train step on OpenMIC-sized features (batch 128 of 10 × 128),
    as epochs/minute of the 13,424 training clips split01 leaves after validation.
Timings are medians over `--steps` repetitions after compilation.
"""

from __future__ import annotations

import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import ConfigDict

_ENCODERS = flags.DEFINE_list("encoders", ["compact", "vggish"], "encoders to time")
_BATCH = flags.DEFINE_integer("batch_size", 64, "examples per train step")
_STEPS = flags.DEFINE_integer("steps", 5, "timed repetitions per measurement")
_OUT = flags.DEFINE_string("out", "", "also write the results here as JSON")


def median_seconds(fn, repeats: int) -> float:
    fn()  # compile / warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_peak(repeats: int) -> float:
    a = jax.random.normal(jax.random.key(0), (2048, 2048), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    seconds = median_seconds(lambda: f(a).block_until_ready(), repeats)
    return 2 * 2048**3 / seconds / 1e9


def train_step(encoder: str, batch_size: int, repeats: int) -> dict:
    from configs.nsynth_mixup import get_config
    from encoders import build_frontend
    from pretrain import build_model
    from runtime import mesh as meshlib
    from runtime.loop import build_steps
    from runtime.optim import build_optimizer

    config = get_config(f"encoder={encoder}")
    frontend = build_frontend(config.frontend)
    model = build_model(config, {"family": 11, "instrument": 1006})
    mesh = meshlib.data_mesh()
    steps = build_steps(
        model,
        lambda m, b, k, t: m.objective(m.encoder, frontend, b, k, train=t),
        build_optimizer(config.optimizer, 1000),
        mesh,
        seed=0,
    )
    rng = np.random.default_rng(0)
    samples = frontend.samples_for_patches(config.data.segment_patches)
    batch = meshlib.shard_batch(
        {
            "audio": rng.uniform(-0.5, 0.5, (batch_size, samples)).astype(np.float32),
            "family": rng.integers(0, 11, batch_size).astype(np.int32),
            "instrument": np.zeros(batch_size, np.int32),
            "weight": np.ones(batch_size, np.float32),
        },
        mesh,
    )
    holder = {"state": steps.state}
    step = jnp.asarray(0, jnp.int32)
    flops = steps.train_step.lower(holder["state"], batch, step).compile().cost_analysis()
    flops = (flops[0] if isinstance(flops, list) else flops or {}).get("flops", float("nan"))

    def run():
        holder["state"], metrics = steps.train_step(holder["state"], batch, step)
        jax.block_until_ready(metrics)

    seconds = median_seconds(run, repeats)
    return {
        "examples_per_second": batch_size / seconds,
        "step_seconds": seconds,
        "gflop_per_step": flops / 1e9,
        "gflops_per_second": flops / seconds / 1e9,
    }


def attention_head(epochs: int) -> float:
    """Epochs/minute of `openmic_attention` on cached OpenMIC-sized features (20,000 clips of
    10 × 128, 90 % of split01_train = 13,424 for training): the real input pipeline (window
    loader, grain, 2 threads) feeding the real jitted train step, whole epochs, wall clock."""
    from flax import nnx

    from configs.openmic_attention import get_config
    from corpora.pipeline import steps_per_epoch, training_batches
    from finetune.attention import AttentionClassifier, masked_bce
    from finetune.tasks import ClipSet
    from finetune.train import Head, window_loader
    from runtime import mesh as meshlib
    from runtime.loop import build_steps
    from runtime.optim import build_optimizer

    config = get_config()
    mesh = meshlib.data_mesh()
    rng = np.random.default_rng(0)
    count = 13424
    sequences = list(rng.random((count, 10, 128), np.float32))
    clips = ClipSet(name="bench", root=None, embedded=True, classes=[str(i) for i in range(20)], paths={},
                    targets={"train": (rng.random((count, 20)) < 0.3).astype(np.float32)},
                    observed={"train": rng.random((count, 20)) < 0.2})  # fmt: skip
    model = Head(AttentionClassifier(20, rngs=nnx.Rngs(0)))

    def loss_fn(m, b, k, t):
        return masked_bce(m(b["x"], key=k, train=t), b["y"], b["observed"] * b["weight"][:, None]), {}

    steps = build_steps(model, loss_fn, build_optimizer(config.optimizer, 1000), mesh, seed=0)
    batches = training_batches(list(range(count)), window_loader(sequences, clips, "train", 10), batch_size=128,
                               seed=0, workers=2, prefetch=4)  # fmt: skip
    state = steps.state
    per_epoch = steps_per_epoch(count, 128)
    state, metrics = steps.train_step(state, meshlib.shard_batch(next(batches), mesh), jnp.asarray(0, jnp.int32))
    jax.block_until_ready(metrics)  # compiled
    start = time.perf_counter()
    for step in range(epochs * per_epoch):
        state, metrics = steps.train_step(state, meshlib.shard_batch(next(batches), mesh), jnp.asarray(step, jnp.int32))
    jax.block_until_ready(metrics)
    return 60.0 * epochs / (time.perf_counter() - start)


def input_pipeline(batch_size: int, workers: int, batches: int, augment: float = 0.0) -> float:
    """Clips/s through grain: decode + crop, and with `augment` > 0 every augmentation of
    corpora.augment plus note concatenation at that probability (Zhong et al.: 0.3)."""
    from configs._common import nsynth_data
    from corpora import load_corpus
    from corpora.audio import BadFileLog
    from corpora.pipeline import training_batches

    bad = BadFileLog(0.01)
    data = ConfigDict(nsynth_data())
    data.augment = {name: augment for name in data.augment}
    corpus = load_corpus(data, bad_log=bad, splits=("train",))
    loader = corpus.make_loader(15600, 48000, bad, 16000)
    iterator = training_batches(
        corpus.splits["train"], loader, batch_size=batch_size, seed=0, workers=workers, prefetch=4
    )
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def main(argv):
    del argv
    results = {
        "device": str(jax.devices()[0]),
        "device_count": jax.device_count(),
        "batch_size": _BATCH.value,
        "matmul_gflops_per_second": matmul_peak(_STEPS.value),
    }
    rows = [f"| matmul 2048² float32 (peak reference) | | {results['matmul_gflops_per_second']:.1f} GFLOP/s | |"]
    for name in _ENCODERS.value:
        r = train_step(name, _BATCH.value, _STEPS.value)
        r["mfu"] = r["gflops_per_second"] / results["matmul_gflops_per_second"]
        results[f"train_step_{name}"] = r
        rows.append(
            f"| train step, {name}, batch {_BATCH.value} | {r['examples_per_second']:.1f} ex/s | "
            f"{r['gflops_per_second']:.1f} GFLOP/s ({r['gflop_per_step']:.1f} GFLOP/step) | "
            f"MFU {100 * r['mfu']:.0f} % |"
        )
    for workers in (1, 2):
        rate = input_pipeline(_BATCH.value, workers, batches=20)
        results[f"input_pipeline_{workers}_workers"] = rate
        rows.append(f"| input pipeline (wav decode + crop), {workers} worker(s) | {rate:.0f} clips/s | | |")
    rate = input_pipeline(_BATCH.value, 2, batches=10, augment=0.3)
    results["input_pipeline_2_workers_zhong_augment"] = rate
    rows.append(f"| input pipeline + Zhong et al.'s augmentations (p = 0.3), 2 workers | {rate:.0f} clips/s | | |")
    rate = attention_head(epochs=2)
    results["attention_head_epochs_per_minute"] = rate
    rows.append(f"| attention classifier, cached OpenMIC-sized features, pipeline + step | {rate:.1f} epochs/min | | |")
    print(f"\n{results['device']} × {results['device_count']}\n")
    print("| what | throughput | compute | |\n|---|---|---|---|")
    print("\n".join(rows))
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    app.run(main)
