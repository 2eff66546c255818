"""Linear probe: the classifier, selection on validation only, and the CLI end to end."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import write_run
from ml_collections import ConfigDict
from sklearn.metrics import accuracy_score

from finetune.probe import fit_linear, grid_search, predict
from overtone.errors import BadValueError
from pretrain.export import export_run


def blobs(n: int, flip: bool = False, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    label = (x[:, 0] > 0).astype(int)
    label = 1 - label if flip else label
    return x, np.eye(2, dtype=np.float32)[label], np.ones((n, 2), bool)


def test_selection_uses_validation_and_never_test():
    train, valid, test = blobs(200), blobs(100, seed=1), blobs(100, flip=True, seed=2)
    grid = ConfigDict(dict(learning_rate=(1e-6, 0.1), weight_decay=(0.0,)))
    chosen, params, table = grid_search(train, valid, grid, multilabel=False, epochs=3, batch_size=32, seed=0)
    assert chosen["learning_rate"] == 0.1  # learns the rule validation follows …
    for row in table:  # … scored on validation, as re-derived with scikit-learn
        refit = fit_linear(
            *train,
            multilabel=False,
            learning_rate=row["learning_rate"],
            weight_decay=0.0,
            epochs=3,
            batch_size=32,
            seed=0,
        )
        predicted = predict(refit, valid[0], multilabel=False).argmax(1)
        assert row["validation_score"] == accuracy_score(valid[1].argmax(1), predicted)
    test_scores = {
        row["learning_rate"]: accuracy_score(
            test[1].argmax(1),
            predict(
                fit_linear(
                    *train,
                    multilabel=False,
                    learning_rate=row["learning_rate"],
                    weight_decay=0.0,
                    epochs=3,
                    batch_size=32,
                    seed=0,
                ),
                test[0],
                multilabel=False,
            ).argmax(1),
        )
        for row in table
    }
    assert max(test_scores, key=test_scores.get) != chosen["learning_rate"]  # test would have chosen otherwise


def test_unobserved_labels_do_not_change_the_multilabel_fit():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    targets = (rng.random((64, 3)) < 0.5).astype(np.float32)
    observed = rng.random((64, 3)) < 0.6
    kwargs = dict(multilabel=True, learning_rate=0.05, weight_decay=1e-3, epochs=4, batch_size=16, seed=1)
    a = fit_linear(x, targets, observed, **kwargs)
    b = fit_linear(x, np.where(observed, targets, 1 - targets), observed, **kwargs)
    np.testing.assert_array_equal(a["w"], b["w"])
    c = fit_linear(x, targets, np.ones_like(observed), **kwargs)
    assert np.abs(a["w"] - c["w"]).max() > 1e-4


def test_probe_cli_for_a_pretrained_and_a_random_encoder(subprocess_env, tmp_path):
    write_run(tmp_path / "run", export=False)
    bundle = export_run(tmp_path / "run", tmp_path / "bundle")
    for name, encoder in (("pretrained", str(bundle)), ("random", "random:compact")):
        workdir = tmp_path / name
        command = [
            sys.executable,
            "-m",
            "finetune.probe",
            f"--encoder={encoder}",
            "--task=nsynth_family",
            "--seeds=2",
            f"--workdir={workdir}",
            "--config.data.nsynth.embedded.pitch_step=12",
            "--config.data.nsynth.embedded.velocities=(100,)",
            "--config.epochs=5",
            f"--config.embedding_cache={tmp_path / 'cache'}",
        ]
        result = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Test accuracy (top-1)" in result.stdout and "| 2 |" in result.stdout
        assert f"| {encoder}, mean over seeds 0–1 | 2 |" in result.stdout and "openmic_f1" not in result.stdout
        assert result.stderr.count("Training on the EMBEDDED corpus") == 1  # the banner once, not per seed
        for seed in (0, 1):
            report = workdir / f"seed{seed}" / "report"
            metrics = json.loads((report / "metrics.json").read_text())
            # single-label: decided by the top score; no threshold, no test-optimised row, no OpenMIC F1
            assert metrics["threshold"]["chosen_on"] == "top1" and "extra" not in metrics
            text = (report / "report.md").read_text()
            assert "highest-scoring class" in text and "openmic_f1" not in text and "test_optimistic" not in text
            assert 0.0 <= metrics["test"]["single_label"]["accuracy"] <= 1.0
            assert (report / "confusion_test.png").is_file()
            selection = json.loads((workdir / f"seed{seed}" / "selection.json").read_text())
            assert len(selection["grid"]) == 8 and selection["chosen"] in selection["grid"]
        summary = json.loads((workdir / "summary.json").read_text())
        assert summary["encoder"] == encoder and len(summary["test_accuracy"]) == 2


@pytest.mark.parametrize(
    ("grid", "says"),
    [
        ({"learning_rate": (), "weight_decay": (0.0,)}, "learning_rate is empty"),
        ({"learning_rate": (0.0,), "weight_decay": (0.0,)}, "learning_rate: 0.0 is not a finite number > 0"),
        ({"learning_rate": (1e-3,), "weight_decay": (float("nan"),)}, "weight_decay: nan is not a finite number >= 0"),
        ({"learning_rate": ("(nan,)",), "weight_decay": (0.0,)}, "learning_rate: '(nan,)' is not a finite number > 0"),
    ],
)
def test_a_grid_it_cannot_search_is_refused_before_any_data(grid, says):
    """A flag value the command line could not parse arrives as a string; a negative rate would
    climb the loss and still report its numbers."""
    from finetune.probe import check_grid

    with pytest.raises(BadValueError, match=re.escape(f"--config.grid.{says}")):
        check_grid(ConfigDict(grid))
    check_grid(ConfigDict({"learning_rate": (1e-3, 1), "weight_decay": 0.0}))  # ints and a single value pass
