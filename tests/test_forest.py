"""The OpenMIC random-forest baseline (`finetune.forest`): per-class forests on observed clips,
against scikit-learn fitted by hand, and `openmic_forest` end to end."""

import json

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from finetune.forest import check_forest, fit_forests, forest_scores
from overtone.errors import UnknownNameError


def test_each_class_gets_a_forest_fitted_on_its_observed_clips_only():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)).astype(np.float32)
    targets = np.stack([x[:, 0] > 0, x[:, 1] + x[:, 2] > 0.5, np.ones(120, bool), np.zeros(120, bool)], 1)
    targets = np.where(targets, 1.0, 0.15).astype(np.float32)  # OpenMIC confidences: positive ≥ 0.5
    observed = rng.random((120, 4)) < 0.6
    observed[:, 3] = False  # never observed
    forests = fit_forests(x, targets, observed, seed=3, trees=20, max_depth=4)
    scores = forest_scores(forests, x[:10])
    for c in (0, 1):  # the reference: scikit-learn on the rows numpy selects, same random state
        rows = observed[:, c]
        reference = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=3)
        reference.fit(x[rows], targets[rows, c] >= 0.5)
        np.testing.assert_allclose(scores[:, c], reference.predict_proba(x[:10])[:, 1], atol=1e-6)
    assert (scores[:, 2] == 1.0).all() and (scores[:, 3] == 0.5).all()  # always positive; never observed


def test_forest_options_are_checked():
    assert check_forest({"name": "forest"}) == {"trees": 100, "max_depth": 8}  # the notebook's
    with pytest.raises(UnknownNameError, match="no option"):
        check_forest({"name": "forest", "depth": 3})


def test_openmic_forest_end_to_end(in_process, tmp_path):
    summary = in_process("finetune", tmp_path, "openmic_forest", "--config.data.embedded.clips=80")
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert summary["final_step"] == 0 and summary["forest"] == {"trees": 100, "max_depth": 8}
    assert metrics["threshold"] == {"value": 0.5, "chosen_on": "fixed"}
    for key in ("f1_micro", "openmic_f1", "lrap", "map"):
        assert 0.0 <= metrics["test"][key] <= 1.0
    assert metrics["test"]["lrap"] > 0.5  # the stand-in's features separate its instruments
    assert summary["report"]["test"]["openmic_f1"] == metrics["test"]["openmic_f1"]


def test_a_forest_is_not_fine_tuned(in_process, tmp_path):
    with pytest.raises(ValueError, match="use mode 'features' or 'frozen'"):
        in_process("finetune", tmp_path, "openmic_forest", "--config.mode=finetune")
