"""The OpenMIC-2018 baseline: a random forest per instrument on time-averaged embeddings.

    python -m finetune --config=openmic_forest --config.data.root=/data/openmic-2018

Humphrey, Durand & McFee (ISMIR 2018) and cosmir/openmic-2018 `examples/modeling-baseline.ipynb`:
for each of the 20 instruments, the clips where that instrument is observed, their (10, 128)
VGGish features averaged over time, the label `Y_true ≥ 0.5`, and scikit-learn's
`RandomForestClassifier(max_depth=8, n_estimators=100)`. It is selected by `model.name="forest"`
in mode `features` (the shipped features) or `frozen` (any encoder's embeddings, averaged over
a clip's patches), so the baseline and the neural heads share data, protocol and report.

Nothing here is trained by gradient, so the train loop is not entered: the forests are fitted
once (in seconds; refitted on a rerun) with `config.seed` as their random state, and scored with
`predict_proba`. Deviations: the notebook prints scikit-learn's `classification_report`, whose
per-instrument "avg / total" is support-weighted; the report here gives the standard metrics and
`openmic_f1` (the unweighted {negative, positive} F1 mean that Gururani et al. report). The
threshold is `evaluation.threshold` (0.5 by default) on the forest's probability, where
`predict` would call a tie at exactly 0.5 negative.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from finetune import protocol
from finetune.report import write_report
from overtone.errors import UnknownNameError
from runtime import processes

OPTIONS = {"trees": 100, "max_depth": 8}  # the notebook's n_estimators and max_depth


def check_forest(model) -> dict:
    """The forest's options from `config.model` (name "forest"), refusing unknown ones."""
    options = {k: v for k, v in model.items() if k != "name"}
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise UnknownNameError(f"head 'forest' has no option(s) {unknown}; valid: {sorted(OPTIONS)}")
    return OPTIONS | options


def fit_forests(x: np.ndarray, targets: np.ndarray, observed: np.ndarray, *, seed: int, **options) -> list:
    """One forest per class, fitted on the rows where that class is observed; a class seen with
    one value only (or never) becomes that constant probability (0.5 when never observed)."""
    from sklearn.ensemble import RandomForestClassifier  # only this baseline needs scikit-learn

    forests = []
    for c in range(targets.shape[1]):
        rows = observed[:, c].astype(bool)
        labels = targets[rows, c] >= 0.5
        if labels.size == 0 or labels.all() or not labels.any():
            forests.append(float(labels.mean()) if labels.size else 0.5)
            continue
        forest = RandomForestClassifier(
            n_estimators=options["trees"], max_depth=options["max_depth"], random_state=seed
        )
        forests.append(forest.fit(x[rows], labels))
    return forests


def forest_scores(forests: list, x: np.ndarray) -> np.ndarray:
    """(N, C) probabilities of the positive class."""
    columns = [
        np.full(len(x), f) if isinstance(f, float) else f.predict_proba(x)[:, list(f.classes_).index(True)]
        for f in forests
    ]
    return np.stack(columns, axis=1).astype(np.float32)


def fit_and_report(
    config, clips, sequences: dict[str, list[np.ndarray]], workdir: Path, info: dict, *, threshold, grid: np.ndarray
) -> dict:
    """Forests on the training clips' mean embeddings; validation and test scored and reported
    (`threshold`, `grid`: as `finetune.protocol.evaluate` takes them)."""
    options = check_forest(config.model)
    means = {split: np.stack([s.mean(axis=0) for s in items]) for split, items in sequences.items()}
    forests = fit_forests(means["train"], clips.targets["train"], clips.observed["train"], seed=config.seed, **options)
    scores = {split: forest_scores(forests, means[split]) for split in ("valid", "test")}
    results = protocol.evaluate(scores, clips, threshold, grid=grid)
    source = info.get("encoder", "shipped features")
    if processes.primary():  # every process fits the same forests (seeded); one writes the report
        write_report(workdir / "report", results, title=f"{clips.name}: random forest per class ({source})")
    return {"final_step": 0, "forest": options, "report": results}
