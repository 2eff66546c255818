"""Evaluation protocol: windows over embedding sequences, averaged scores, thresholds.

A clip's score is the mean of the model's scores over every window of `size` consecutive
embeddings, sliding by one embedding — with embeddings every 0.5 s and `size` 1 this is
Zhong et al.'s IRMAS protocol (1-s windows, 0.5-s hop, sigmoid scores averaged per excerpt);
with OpenMIC's 10 embeddings per clip and `size` 10 it is one window, the whole clip. A
sequence shorter than a window is padded by repeating its last embedding.

The decision threshold is either fixed (0.5, as the OpenMIC papers) or chosen on
validation: the value on a grid (default 0.05–0.95 by 0.01; `evaluation.threshold_grid`, e.g.
Zhong et al.'s 0.00–0.78 by 0.02) that maximises validation micro-F1, then applied to test
unchanged. The threshold that maximises *test* micro-F1 — what Zhong et al. report —
is computed too but only ever reported as a labelled, optimistic extra.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from finetune.metrics import multilabel_metrics, singlelabel_metrics
from overtone.errors import BadValueError

THRESHOLD_GRID = np.round(np.linspace(0.05, 0.95, 91), 2)


def threshold_grid(start: float, stop: float, step: float) -> np.ndarray:
    """start, start + step, …, stop (inclusive), all within [0, 1]."""
    if not (0.0 <= start <= stop <= 1.0 and step > 0):
        raise BadValueError(f"evaluation.threshold_grid=({start}, {stop}, {step}): need 0 ≤ start ≤ stop ≤ 1, step > 0")
    return np.round(start + step * np.arange(int(round((stop - start) / step)) + 1), 6)


OPTIMISTIC_NOTE = (
    "threshold chosen on the test set itself (Zhong et al.'s protocol); optimistic, "
    "for comparison with their table only"
)


def windows(sequences: list[np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """All windows of `size` consecutive rows → ((M, size, D) windows, (M,) index of their sequence)."""
    out, owner = [], []
    for i, sequence in enumerate(sequences):
        if len(sequence) < size:
            sequence = np.concatenate([sequence, np.repeat(sequence[-1:], size - len(sequence), axis=0)])
        starts = np.arange(len(sequence) - size + 1)
        out.append(sequence[starts[:, None] + np.arange(size)[None, :]])
        owner.append(np.full(len(starts), i))
    return np.concatenate(out), np.concatenate(owner)


def averaged_scores(
    predict: Callable[[np.ndarray], np.ndarray], sequences: list[np.ndarray], size: int, *, batch: int = 256
) -> np.ndarray:
    """(N, C): per sequence, the mean of `predict` over its windows (batches padded to `batch`)."""
    stacked, owner = windows(sequences, size)
    scores = []
    for start in range(0, len(stacked), batch):
        block = stacked[start : start + batch]
        padded = np.concatenate([block, np.zeros((batch - len(block), *block.shape[1:]), block.dtype)])
        scores.append(np.asarray(predict(padded))[: len(block)])
    scores = np.concatenate(scores)
    totals = np.zeros((len(sequences), scores.shape[1]))
    np.add.at(totals, owner, scores)
    return totals / np.bincount(owner, minlength=len(sequences))[:, None]


def choose_threshold(
    scores: np.ndarray, targets: np.ndarray, observed: np.ndarray | None = None, grid: np.ndarray = THRESHOLD_GRID
) -> float:
    """The grid threshold with the highest micro-F1 (the lowest such, on ties)."""
    f1 = [multilabel_metrics(scores, targets, observed, threshold=t)["f1_micro"] for t in grid]
    return float(grid[int(np.argmax(f1))])


def evaluate(scores: dict[str, np.ndarray], clips, threshold: float | str, grid: np.ndarray = THRESHOLD_GRID) -> dict:
    """Metrics for the scored splits of a `ClipSet` (`valid` needed when threshold='validation');
    thresholds are chosen on `grid`."""

    def metrics(split: str, value: float | np.ndarray) -> dict:
        result = multilabel_metrics(
            scores[split], clips.targets[split], clips.observed[split], threshold=value, class_names=clips.classes
        )
        if split in clips.single_label:
            result["single_label"] = singlelabel_metrics(
                scores[split].argmax(1), clips.targets[split].argmax(1), clips.classes
            )
        return result

    task = {"task": getattr(clips, "name", "")}
    if threshold == "top1":  # a single-label task decides by its highest score: no threshold to choose
        result = task | {"threshold": {"value": None, "chosen_on": "top1"}}
        return result | {split: metrics(split, scores[split].max(1, keepdims=True)) for split in scores}
    if threshold == "validation":
        value = choose_threshold(scores["valid"], clips.targets["valid"], clips.observed["valid"], grid)
        chosen_on = "valid"
    elif isinstance(threshold, int | float):
        value, chosen_on = float(threshold), "fixed"
    else:
        raise BadValueError(f"evaluation.threshold must be a number, 'validation' or 'top1', got {threshold!r}")
    result = task | {"threshold": {"value": value, "chosen_on": chosen_on}}
    result |= {split: metrics(split, value) for split in scores}
    if "test" in scores:
        best = choose_threshold(scores["test"], clips.targets["test"], clips.observed["test"], grid)
        result["extra"] = {"test_optimistic": metrics("test", best) | {"threshold": best, "note": OPTIMISTIC_NOTE}}
    return result
