"""Linear probes: how much does a frozen representation say about a task, linearly?

    python -m finetune.probe --encoder=runs/nsynth_mixup/export --task=nsynth_family --seeds=3
    python -m finetune.probe --encoder=random:vggish --task=openmic --config.data.openmic.root=/data/openmic-2018

Each clip becomes one vector: the mean of its frozen patch embeddings (through the embedding
cache), standardised with the training split's mean and deviation. A linear classifier —
softmax for single-label tasks (NSynth family, NSynth pitch), one logistic per class for
multi-label ones (OpenMIC with its partial labels masked, IRMAS) — trains with Adam and L2
weight decay; the learning rate and decay are chosen on the validation split (accuracy,
or mAP for multi-label tasks) and only the chosen model sees the test split. Repeated for
`--seeds` seeds (shuffling and initialisation; for random:NAME also the encoder's
initialisation); the report of each seed goes to WORKDIR/seed<k>/report, the mean ± std
over seeds to WORKDIR/probe.md.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import configs
import corpora
from corpora import ClipSet
from encoders.pretrained import check_source, load_encoder
from finetune import compare, embedding_cache, protocol
from finetune.metrics import multilabel_metrics
from finetune.report import write_report
from overtone.audio import BadFileLog, set_max_seconds
from overtone.disk import cache_root
from overtone.errors import BadValueError
from runtime import cli

log = logging.getLogger(__name__)


def clip_vectors(source: str, clips: ClipSet, config, seed: int) -> dict[str, np.ndarray]:
    """split → (N, D) mean embeddings, standardised by the training split; unreadable clips dropped."""
    loaded = load_encoder(source, seed=seed)
    loaded.encoder.eval()
    data = config.data[clips.name.split("_")[0]]
    set_max_seconds(data.get("max_seconds", 3600.0))
    bad_log = BadFileLog(data.max_bad_fraction)
    cache_dir = Path(config.embedding_cache or cache_root() / "embeddings")
    sequences, _ = embedding_cache.cached_sequences(
        loaded.encoder, loaded.frontend, loaded.checksum, clips.paths, cache_dir, bad_log
    )
    vectors = {}
    for split, items in sequences.items():
        keep = np.array([s is not None for s in items])
        if not keep.all():
            clips.drop(split, keep)
        vectors[split] = np.stack([s.mean(axis=0) for s in items if s is not None])
    mean, std = vectors["train"].mean(0), vectors["train"].std(0) + 1e-6
    return {split: ((v - mean) / std).astype(np.float32) for split, v in vectors.items()}


def fit_linear(
    x,
    targets,
    observed,
    *,
    multilabel: bool,
    learning_rate: float,
    weight_decay: float,
    epochs: int,
    batch_size: int,
    seed: int,
) -> dict:
    """Adam on minibatches, `epochs` passes; loss: softmax cross-entropy or masked per-class BCE,
    plus weight_decay/2 · ‖W‖²."""
    n, d = x.shape
    classes = targets.shape[1]
    key = jax.random.key(seed)
    params = {"w": 0.01 * jax.random.normal(key, (d, classes)), "b": jnp.zeros(classes)}
    batch_size = min(batch_size, n)
    data = (jnp.asarray(x), jnp.asarray(targets), jnp.asarray(observed, jnp.float32))
    rates = (jnp.float32(learning_rate), jnp.float32(weight_decay))
    carry = (params, optax.adam(0.0).init(params))  # Adam's state does not depend on the rate
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = np.concatenate([rng.permutation(n), -np.ones(-n % batch_size, int)]).reshape(-1, batch_size)
        carry = _epoch(carry, jnp.asarray(order), data, rates, multilabel=multilabel)
    return jax.device_get(carry[0])


@functools.partial(jax.jit, static_argnames="multilabel")
def _epoch(carry, order, data, rates, *, multilabel: bool):
    """One pass over the rows in `order` (-1: padding, weight 0). The data and the rates are
    arguments, not constants, so one compiled program serves every grid point, seed and
    encoder of a probe (and, through the persistent cache, every probe of the same sizes)."""
    x, targets, observed = data
    learning_rate, weight_decay = rates
    tx = optax.adam(learning_rate)

    def loss(params, xb, yb, mb, wb):
        logits = xb @ params["w"] + params["b"]
        if multilabel:
            per = optax.sigmoid_binary_cross_entropy(logits, yb) * mb
            fit = (per.sum(1) * wb).sum() / jnp.maximum((mb.sum(1) * wb).sum(), 1.0)
        else:
            fit = (optax.softmax_cross_entropy(logits, yb) * wb).sum() / jnp.maximum(wb.sum(), 1.0)
        return fit + 0.5 * weight_decay * jnp.sum(params["w"] ** 2)

    def step(carry, index):
        params, state = carry
        valid = index >= 0
        index = jnp.maximum(index, 0)
        grads = jax.grad(loss)(params, x[index], targets[index], observed[index], valid.astype(jnp.float32))
        updates, state = tx.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    return jax.lax.scan(step, carry, order)[0]


def predict(params: dict, x: np.ndarray, *, multilabel: bool) -> np.ndarray:
    logits = x @ params["w"] + params["b"]
    return np.asarray(jax.nn.sigmoid(logits) if multilabel else jax.nn.softmax(logits))


def validation_score(scores, targets, observed, *, multilabel: bool) -> float:
    if multilabel:
        return multilabel_metrics(scores, targets, observed)["map"]
    return float(np.mean(scores.argmax(1) == targets.argmax(1)))


def grid_search(train: tuple, valid: tuple, grid, *, multilabel: bool, epochs: int, batch_size: int, seed: int):
    """(best setting, fitted params, table of every setting's validation score). Sees only
    `train` = (x, targets, observed) and `valid`; the test split never enters the selection."""
    table, best = [], None
    for learning_rate, weight_decay in itertools.product(grid.learning_rate, grid.weight_decay):
        params = fit_linear(
            *train,
            multilabel=multilabel,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
        )
        score = validation_score(
            predict(params, valid[0], multilabel=multilabel), valid[1], valid[2], multilabel=multilabel
        )
        table.append({"learning_rate": learning_rate, "weight_decay": weight_decay, "validation_score": score})
        if best is None or score > best[0]["validation_score"]:
            best = (table[-1], params)
    return best[0], best[1], table


def check_grid(grid, where: str = "--config.grid") -> None:
    """The probe's search grid: at least one learning rate (> 0) and one weight decay (≥ 0),
    all finite numbers."""
    for key, low in (("learning_rate", "> 0"), ("weight_decay", ">= 0")):
        values = grid[key] if isinstance(grid[key], list | tuple) else (grid[key],)
        if not values:
            raise BadValueError(f"{where}.{key} is empty: the probe needs at least one value to try")
        for value in values:
            number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
            if number is None or not math.isfinite(number) or (number <= 0 if low == "> 0" else number < 0):
                raise BadValueError(f"{where}.{key}: {value!r} is not a finite number {low}")


def probe(config, workdir: str | Path) -> dict:
    load_clips = corpora.get_dataset(config.task, "clips", where="--task")
    if config.seeds < 1:
        raise BadValueError(f"--seeds={config.seeds}: at least 1 seed is needed")
    check_grid(config.grid)
    dataset = config.task.split("_")[0]
    source = config.encoder.source or f"random:{config.encoder.name}"
    check_source(source)  # before any data is read or any folder made
    cli.check_workdir_early(workdir, config)
    # the weights are part of the run's identity: the same --encoder path holding other weights is another run
    identity = {} if source.startswith("random:") else {"encoder_weights": load_encoder(source).checksum}
    if not config.encoder.source:
        log.warning(
            "no --encoder given: probing an UNTRAINED %s (%s), the random-initialisation baseline",
            config.encoder.name,
            source,
        )
    runs, accuracies = [], []
    for k in range(config.seeds):
        seed = config.seed + k
        clips = load_clips(config.data[dataset], seed)
        if k == 0:  # only once the data is there: a typo leaves nothing behind
            workdir = cli.prepare_workdir(workdir, config, identity)
        multilabel = set(clips.single_label) != set(clips.paths)  # softmax only when every split is single-label
        vectors = clip_vectors(source, clips, config, seed)
        split = {s: (vectors[s], clips.targets[s], clips.observed[s]) for s in vectors}
        chosen, params, table = grid_search(
            split["train"],
            split["valid"],
            config.grid,
            multilabel=multilabel,
            epochs=config.epochs,
            batch_size=config.batch_size,
            seed=seed,
        )
        scores = {s: predict(params, vectors[s], multilabel=multilabel) for s in ("valid", "test")}
        results = protocol.evaluate(scores, clips, "validation" if multilabel else "top1")
        run = workdir / f"seed{seed}"
        run.mkdir(exist_ok=True)
        (run / "config.json").write_text(json.dumps({"task": config.task, "encoder": source, "seed": seed}))
        (run / "selection.json").write_text(json.dumps({"chosen": chosen, "grid": table}, indent=2))
        write_report(run / "report", results, title=f"linear probe, {config.task}, {source}, seed {seed}")
        test = results["test"]
        score = ("accuracy", test["single_label"]["accuracy"]) if "single_label" in test else ("mAP", test["map"])
        log.info("seed %d: chose %s; test %s %.3f", seed, chosen, *score)
        runs.append(run)
        if "single_label" in results["test"]:
            accuracies.append(results["test"]["single_label"]["accuracy"])
    rows = compare.compare(runs, label=f"{source}, mean over seeds {config.seed}–{config.seed + config.seeds - 1}")
    table = compare.markdown(rows, "test")
    if accuracies:
        spread = f" ± {np.std(accuracies, ddof=1):.3f}" if len(accuracies) > 1 else ""
        table += f"\nTest accuracy (top-1): {np.mean(accuracies):.3f}{spread} over {len(accuracies)} seed(s).\n"
    (workdir / "probe.md").write_text(f"# Linear probe: {config.task}, {source}\n\n" + table)
    summary = {
        "task": config.task,
        "encoder": source,
        "runs": [str(r) for r in runs],
        "test": rows[0]["metrics"],
        "test_accuracy": accuracies,
    }
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary | {"table": table}


if __name__ == "__main__":
    import sys

    def announce(summary: dict) -> None:
        print(summary["table"], end="")

    if not any(a.startswith("--config=") or a == "--config" for a in sys.argv[1:]):
        sys.argv.insert(1, "--config=probe")
    examples = [
        "python -m finetune.probe --encoder=runs/nsynth_mixup/export --task=nsynth_family --seeds=3",
        "python -m finetune.probe --encoder=random:vggish --task=irmas --config.data.irmas.root=/data/IRMAS",
    ]
    shortcuts = {
        "encoder": ("encoder.source", "exported bundle, pretraining run or random:NAME"),
        "task": ("task", " | ".join(corpora.names("clips"))),
        "seeds": ("seeds", "number of seeds (at least 1)"),
    }
    cli.main(probe, announce, doc=__doc__, kind="probe", examples=examples, catalog=configs, shortcuts=shortcuts)
