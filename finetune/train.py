"""Downstream training on the shared loop: the attention classifier on OpenMIC-2018 features.

`finetune_and_evaluate` reads OpenMIC-2018 (or the embedded stand-in), trains Gururani et
al.'s attention classifier on the shipped (N, 10, 128) features scaled to [0, 1] with the
masked binary cross-entropy, keeps the checkpoint with the best validation loss, and writes a
report (metrics.json, report.md, per_class_f1.png) for validation and test at threshold 0.5.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from corpora.openmic import read_openmic
from corpora.pipeline import evaluation_batches, steps_per_epoch, training_batches
from finetune.attention import AttentionClassifier, masked_bce
from finetune.metrics import multilabel_metrics
from finetune.report import write_report
from runtime import cli
from runtime.loop import Data, fit

log = logging.getLogger(__name__)


class Head(nnx.Module):
    def __init__(self, classifier: nnx.Module):
        self.classifier = classifier


def locate_openmic(data) -> tuple[Path, bool]:
    root = data.root or os.environ.get("OPENMIC_DIR", "")
    if root:
        return Path(root), False
    if data.require_real:
        raise FileNotFoundError("no OpenMIC-2018 given: set --config.data.root or OPENMIC_DIR")
    from corpora.soundfont_openmic import ensure_openmic_corpus

    root = ensure_openmic_corpus(data.embedded.cache_dir or None, clips=data.embedded.clips)
    log.warning("No OpenMIC-2018 given: using the EMBEDDED SoundFont stand-in in %s (features are "
                "log-mel statistics, not AudioSet VGGish embeddings; for trying the toolkit only)", root)  # fmt: skip
    return root, True


def finetune_and_evaluate(config, workdir: str | Path) -> dict:
    workdir = cli.prepare_workdir(workdir, config)
    root, embedded = locate_openmic(config.data)
    dataset = read_openmic(root, valid_fraction=config.data.valid_fraction, seed=config.seed)
    features = dataset.features.astype(np.float32) / 255.0

    def load(row: int, rng) -> dict[str, np.ndarray]:
        del rng  # features are fixed: no crops
        return {"x": features[row], "y": dataset.targets[row], "observed": dataset.observed[row].astype(np.float32),
                "weight": np.float32(1.0)}  # fmt: skip

    m = config.model
    model = Head(AttentionClassifier(len(dataset.classes), features=features.shape[-1], hidden=m.hidden,
                                     layers=m.layers, dropout=m.dropout, rngs=nnx.Rngs(config.seed)))  # fmt: skip

    def loss_fn(model: Head, batch, key, train: bool):
        probabilities = model.classifier(batch["x"], key=key, train=train)
        return masked_bce(probabilities, batch["y"], batch["observed"] * batch["weight"][:, None]), {}

    shared = dict(batch_size=config.train.batch_size, workers=config.data.workers, prefetch=config.data.prefetch,
                  process_index=jax.process_index(), process_count=jax.process_count())  # fmt: skip
    rows = {name: list(indices) for name, indices in dataset.splits.items()}

    def report(model: Head) -> dict:
        predict = nnx.jit(lambda model, x: model.classifier(x))
        results = {}
        for split in ("valid", "test"):
            index = dataset.splits[split]
            scores = np.concatenate([np.asarray(predict(model, jnp.asarray(features[index[i : i + 512]])))
                                     for i in range(0, len(index), 512)])  # fmt: skip
            results[split] = multilabel_metrics(scores, dataset.targets[index], dataset.observed[index],
                                                class_names=dataset.classes)  # fmt: skip
        write_report(workdir / "report", results, title=f"OpenMIC-2018 attention classifier ({root.name})")
        return results

    data = Data(
        train=lambda start: training_batches(rows["train"], load, seed=config.seed, start_step=start, **shared),
        steps_per_epoch=steps_per_epoch(len(rows["train"]), config.train.batch_size),
        validation=lambda: evaluation_batches(rows["valid"], load, **shared),
        report=report,
    )
    summary = fit(model, loss_fn, data, config, workdir)
    summary["data"] = {"root": str(root), "embedded": embedded, **{k: len(v) for k, v in rows.items()}}
    if jax.process_index() == 0:
        (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
