"""Evaluation reports: metrics.json, a Markdown table, per-class F1 bars and confusion matrices.

Input is `finetune.protocol.evaluate`'s result: the threshold and how it was chosen, one
metrics dict per split, and the labelled extras (the test-optimised threshold).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HEADLINE = ("f1_micro", "f1_macro", "openmic_f1", "precision_macro", "recall_macro", "lrap", "map", "top1_in_labels")
SPLITS = ("valid", "test")


def headline(tasks) -> tuple[str, ...]:
    """The headline columns for runs on `tasks`: OpenMIC's per-instrument F1 only for OpenMIC."""
    openmic = any(str(task).startswith("openmic") for task in tasks)
    return tuple(name for name in HEADLINE if name != "openmic_f1" or openmic)


def decision_rule(threshold: dict) -> str:
    if threshold["chosen_on"] == "top1":
        return "Decisions: the highest-scoring class (single-label task)."
    how = "chosen on validation" if threshold["chosen_on"] == "valid" else "fixed"
    return f"Decision threshold {threshold['value']:.2f} ({how})."


def write_report(folder: str | Path, results: dict, *, title: str) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(results, indent=2))
    splits = [s for s in SPLITS if s in results]
    threshold = results["threshold"]
    columns = headline([results.get("task", "openmic")])
    lines = [
        f"# {title}",
        "",
        decision_rule(threshold),
        "",
        "| split | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    rows = [(s, results[s]) for s in splits]
    for name, extra in results.get("extra", {}).items():
        rows.append((f"{name} (threshold {extra['threshold']:.2f})*", extra))
    for name, metrics in rows:
        lines.append(f"| {name} | " + " | ".join(f"{metrics[k]:.3f}" for k in columns) + " |")
    for extra in results.get("extra", {}).values():
        lines.append(f"\n\\* {extra['note']}.")
    last = splits[-1]
    lines += [
        "",
        f"Per class ({last}):",
        "",
        "| class | precision | recall | F1 | AP | support |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in results[last]["per_class"].items():
        lines.append(
            f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | "
            f"{row['average_precision']:.3f} | {row['support']} |"
        )
    for split in splits:
        if "single_label" in results[split]:
            single = results[split]["single_label"]
            lines += [
                "",
                f"Single-label ({split}, top-1 of the scores): accuracy {single['accuracy']:.3f}, "
                f"macro F1 {single['f1_macro']:.3f}; confusion matrix in confusion_{split}.png.",
            ]
            _confusion_figure(folder / f"confusion_{split}.png", single, f"{title} — {split}")
    if "openmic_f1" in columns:
        lines += [
            "",
            "`openmic_f1` is the per-instrument macro F1 over negative and positive classes that "
            "Gururani et al. and Taenzer et al. report; `f1_macro` is the multi-label macro F1.",
        ]
    (folder / "report.md").write_text("\n".join(lines) + "\n")
    _per_class_figure(folder / "per_class_f1.png", {s: results[s] for s in splits}, title, threshold)


def _per_class_figure(path: Path, results: dict[str, dict], title: str, threshold: dict) -> None:
    names = list(next(iter(results.values()))["per_class"])
    figure, axes = plt.subplots(figsize=(max(6, 0.45 * len(names)), 3.5))
    width = 0.8 / len(results)
    for i, (split, metrics) in enumerate(results.items()):
        values = [metrics["per_class"][n]["f1"] for n in names]
        axes.bar([x + i * width for x in range(len(names))], values, width=width, label=split)
    axes.set_xticks([x + width * (len(results) - 1) / 2 for x in range(len(names))], names, rotation=60, ha="right")
    axes.set_ylim(0, 1)
    rule = "top-1 decisions" if threshold["chosen_on"] == "top1" else f"threshold {threshold['value']:.2f}"
    axes.set_ylabel(f"F1 ({rule})")
    axes.set_title(title, fontsize=9)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _confusion_figure(path: Path, single: dict, title: str) -> None:
    names = list(single["per_class"])
    matrix = np.asarray(single["confusion_matrix"])
    side = min(16.0, 0.45 * len(names))
    figure, axes = plt.subplots(figsize=(1.5 + side, 1.2 + side))
    axes.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        if count and len(names) <= 30:  # counts stay legible
            axes.text(
                j,
                i,
                str(count),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if count > matrix.max() / 2 else "black",
            )
    ticks = range(0, len(names), max(1, len(names) // 30))
    axes.set_xticks(ticks, [names[t] for t in ticks], rotation=60, ha="right")
    axes.set_yticks(ticks, [names[t] for t in ticks])
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
