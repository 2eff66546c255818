"""Resource bounds: host memory stays flat over a long run; caches say their size up front."""

import logging

import numpy as np
import pytest
from flax import nnx
from ml_collections import ConfigDict

from corpora.pipeline import evaluation_batches, steps_per_epoch, training_batches
from finetune.heads import AttentionClassifier, masked_bce
from finetune.train import Head
from overtone.disk import DiskSpaceError, ensure_free
from runtime.loop import Data, fit


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


def test_host_memory_stays_flat_over_hundreds_of_steps(tmp_path):
    rng = np.random.default_rng(0)
    features = rng.random((512, 10, 128), np.float32)
    targets = (rng.random((512, 20)) < 0.3).astype(np.float32)

    def load(row, _rng):
        return {"x": features[row], "y": targets[row], "observed": np.ones(20, np.float32), "weight": np.float32(1)}

    samples = {}

    def train(start):
        for step, batch in enumerate(
            training_batches(range(448), load, batch_size=32, seed=0, start_step=start, workers=2, prefetch=4), start
        ):
            if step % 50 == 0:
                samples[step] = resident_mb()
            yield batch

    config = ConfigDict(
        dict(
            seed=0,
            optimizer=dict(name="adam", learning_rate=1e-3, weight_decay=0.0, schedule="constant", warmup_steps=0),
            train=dict(
                batch_size=32,
                num_epochs=0,
                num_steps=600,
                eval_every_steps=100,
                checkpoint_every_steps=100,
                log_every_steps=10,
                early_stopping_patience=100,
                keep_checkpoints=2,
            ),
        )
    )
    model = Head(AttentionClassifier(20, rngs=nnx.Rngs(0)))

    def loss_fn(m, b, key, training):
        return masked_bce(m(b["x"], key=key, train=training), b["y"], b["observed"] * b["weight"][:, None]), {}

    validation = list(range(448, 512))
    data = Data(
        train=train,
        steps_per_epoch=steps_per_epoch(448, 32),
        validation=lambda: evaluation_batches(validation, load, batch_size=32, workers=1),
    )
    fit(model, loss_fn, data, config, tmp_path)
    growth = samples[550] - samples[150]  # after compilation, the first checkpoints and evaluations
    assert growth < 30.0, f"host memory grew {growth:.1f} MB over 400 steps: {samples}"


def test_cache_writes_are_announced_and_refused_when_the_disk_is_too_small(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        ensure_free(tmp_path / "new" / "folder", 1e6, "the embedding cache")
    assert "the embedding cache: about 1.0 MB into" in caplog.text and "GB free" in caplog.text
    with pytest.raises(DiskSpaceError, match="needs about .* MB in .* but only"):
        ensure_free(tmp_path, 1e18, "the embedding cache")
