"""Evaluation reports: metrics.json, a Markdown table, and per-class F1 bars (PNG)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402

HEADLINE = ("f1_micro", "f1_macro", "openmic_f1", "precision_macro", "recall_macro", "lrap", "map")


def write_report(folder: str | Path, results: dict[str, dict], *, title: str) -> None:
    """`results`: split name → multilabel_metrics(...) output."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(results, indent=2))
    lines = [f"# {title}", "", "| split | " + " | ".join(HEADLINE) + " |", "|---" * (len(HEADLINE) + 1) + "|"]
    for split, metrics in results.items():
        lines.append(f"| {split} | " + " | ".join(f"{metrics[k]:.3f}" for k in HEADLINE) + " |")
    last = list(results)[-1]
    lines += ["", f"Per class ({last}, threshold 0.5):", "", "| class | precision | recall | F1 | support |",
              "|---|---|---|---|---|"]  # fmt: skip
    for name, row in results[last]["per_class"].items():
        lines.append(f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |")
    lines += ["", "`openmic_f1` is the per-instrument macro F1 over negative and positive classes that "
              "Gururani et al. and Taenzer et al. report; `f1_macro` is the multi-label macro F1."]  # fmt: skip
    (folder / "report.md").write_text("\n".join(lines) + "\n")
    names = list(results[last]["per_class"])
    figure, axes = plt.subplots(figsize=(max(6, 0.45 * len(names)), 3.5))
    width = 0.8 / len(results)
    for i, (split, metrics) in enumerate(results.items()):
        values = [metrics["per_class"][n]["f1"] for n in names]
        axes.bar([x + i * width for x in range(len(names))], values, width=width, label=split)
    axes.set_xticks([x + width * (len(results) - 1) / 2 for x in range(len(names))], names, rotation=60, ha="right")
    axes.set_ylim(0, 1)
    axes.set_ylabel("F1 (threshold 0.5)")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(folder / "per_class_f1.png", dpi=120)
    plt.close(figure)
