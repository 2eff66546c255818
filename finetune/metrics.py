"""Classification metrics for instrument recognition, aware of partial labels (docs/methods.md §6).

Multi-label inputs are scores (N, C) in [0, 1], targets (N, C) in {0, 1} and an optional
`observed` mask (N, C): only observed entries count — OpenMIC-2018 labels each clip for a
few instruments only. Every number equals scikit-learn's definition on the same observed
entries (tested against `f1_score`, `precision_score`, `recall_score`,
`label_ranking_average_precision_score`, `average_precision_score`, `confusion_matrix`);
they are computed here in numpy because scikit-learn has no notion of a per-entry mask.

* precision / recall / F1 per class, their macro mean and the micro (pooled) values, at a
  threshold (0.5 unless chosen on validation). A class with no predicted or no true
  positives scores 0 for the undefined ratio, as scikit-learn's zero_division=0.
* `openmic_f1`: the number Gururani et al. and Taenzer et al. report — for each instrument,
  the macro average of the F1 of its negative and positive class over the clips where it is
  observed, then the mean over instruments. It is not the multi-label F1 above.
* `top1_in_labels`: how often the highest-scoring (observed) class is one of the clip's labels.
* LRAP (label ranking average precision) per sample over its observed labels; samples
  without an observed positive are skipped (scikit-learn would count them as 1).
* mAP: average precision per class over its observed clips, averaged over the classes that
  have at least one positive.
"""

from __future__ import annotations

import numpy as np


def _f1(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    total = precision + recall
    return np.divide(2 * precision * recall, total, out=np.zeros_like(total, dtype=float), where=total > 0)


def _ratio(numerator, denominator) -> np.ndarray:
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """scikit-learn's step-wise average precision for one binary problem (ties grouped)."""
    order = np.argsort(-scores, kind="mergesort")
    scores, targets = scores[order], targets[order]
    distinct = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(targets)[distinct]
    precision = true_positives / (distinct + 1)
    recall = true_positives / max(targets.sum(), 1)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def multilabel_metrics(
    scores: np.ndarray,
    targets: np.ndarray,
    observed: np.ndarray | None = None,
    *,
    threshold: float | np.ndarray = 0.5,
    class_names: list[str] | None = None,
) -> dict:
    scores = np.asarray(scores, float)
    targets = np.asarray(targets) > 0.5
    observed = np.ones_like(targets, bool) if observed is None else np.asarray(observed, bool)
    if not scores.shape == targets.shape == observed.shape:
        raise ValueError(f"scores {scores.shape}, targets {targets.shape}, observed {observed.shape} differ")
    predicted = scores >= threshold
    tp = (predicted & targets & observed).sum(0)
    fp = (predicted & ~targets & observed).sum(0)
    fn = (~predicted & targets & observed).sum(0)
    tn = (~predicted & ~targets & observed).sum(0)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _f1(precision, recall)
    micro_p, micro_r = _ratio(tp.sum(), tp.sum() + fp.sum()), _ratio(tp.sum(), tp.sum() + fn.sum())
    negative_f1 = _f1(_ratio(tn, tn + fn), _ratio(tn, tn + fp))
    names = class_names or [str(i) for i in range(scores.shape[1])]
    has_positive = (targets & observed).any(0)
    per_class_ap = np.array(
        [
            average_precision(scores[observed[:, c], c], targets[observed[:, c], c]) if has_positive[c] else np.nan
            for c in range(scores.shape[1])
        ]
    )
    return {
        "f1_micro": float(_f1(micro_p, micro_r)),
        "f1_macro": float(f1.mean()),
        "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()),
        "precision_micro": float(micro_p),
        "recall_micro": float(micro_r),
        "openmic_f1": float(((f1 + negative_f1) / 2)[observed.any(0)].mean()),
        "lrap": label_ranking_average_precision(scores, targets, observed),
        "top1_in_labels": top1_in_labels(scores, targets, observed),
        "map": float(np.nanmean(per_class_ap)) if has_positive.any() else float("nan"),
        "per_class": {
            name: {
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "support": int((targets & observed)[:, c].sum()),
                "average_precision": float(per_class_ap[c]),
            }
            for c, name in enumerate(names)
        },
    }


def top1_in_labels(scores: np.ndarray, targets: np.ndarray, observed: np.ndarray) -> float:
    """Share of clips (with an observed positive) whose highest-scoring observed class is a true label."""
    keep = (targets & observed).any(1)
    if not keep.any():
        return float("nan")
    top = np.where(observed, scores, -np.inf).argmax(1)
    return float(targets[np.arange(len(top)), top][keep].mean())


def label_ranking_average_precision(scores: np.ndarray, targets: np.ndarray, observed: np.ndarray) -> float:
    values = []
    for s, t, m in zip(scores, targets, observed, strict=True):
        s, t = s[m], t[m]
        if not t.any():
            continue
        ranks_all = (s[None, :] >= s[t][:, None]).sum(1)  # rank among all observed labels
        ranks_true = (s[t][None, :] >= s[t][:, None]).sum(1)  # … among the true ones
        values.append(np.mean(ranks_true / ranks_all))
    return float(np.mean(values)) if values else float("nan")


def singlelabel_metrics(predicted: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix (rows: true class)."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    count = len(class_names)
    confusion = np.zeros((count, count), int)
    np.add.at(confusion, (labels, predicted), 1)
    tp = np.diag(confusion)
    precision, recall = _ratio(tp, confusion.sum(0)), _ratio(tp, confusion.sum(1))
    f1 = _f1(precision, recall)
    return {
        "accuracy": float(tp.sum() / max(len(labels), 1)),
        "f1_macro": float(f1.mean()),
        "confusion_matrix": confusion.tolist(),
        "per_class": {
            name: {
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "support": int(confusion[c].sum()),
            }
            for c, name in enumerate(class_names)
        },
    }
