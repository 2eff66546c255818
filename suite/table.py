"""The suite's table: each row's probe reports → mean ± sample std per task metric, and whether
each row beats the reference row (the random-init encoder) by more than two standard deviations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from overtone.errors import BadValueError


def task_metrics(task: str, test: dict) -> dict[str, float]:
    """The metrics a task is judged by, from a probe seed's test metrics: accuracy for
    single-label tasks; LRAP and mAP for multi-label ones (OpenMIC: its per-instrument F1 first)."""
    if "single_label" in test:
        return {"accuracy": float(test["single_label"]["accuracy"])}
    first = {"openmic_f1": float(test["openmic_f1"])} if task.startswith("openmic") else {}
    return first | {"lrap": float(test["lrap"]), "map": float(test["map"])}


def summarise(values: list[float]) -> dict:
    array = np.asarray(values, float)
    std = float(array.std(ddof=1)) if len(array) > 1 else None
    return {"mean": float(array.mean()), "std": std, "values": array.tolist()}


def verdict(cell: dict, reference: dict) -> dict:
    """cell − reference on the mean, in units of the larger of the two standard deviations
    (`sigmas`); `beats` when the difference exceeds two of them, `below` when it is under minus two."""
    difference = cell["mean"] - reference["mean"]
    spread = max(cell["std"] or 0.0, reference["std"] or 0.0)
    sigmas = difference / spread if spread > 0 else (np.inf if difference > 0 else -np.inf if difference < 0 else 0.0)
    call = "beats" if sigmas > 2 else "below" if sigmas < -2 else "within"
    return {"difference": difference, "sigmas": float(sigmas), "call": call}


def collect(rows: dict[str, dict], reference: str) -> dict:
    """rows (label → kind, sources, probes: task → seed run folders) → the table: per row and task,
    each metric's mean ± std over seeds, and its verdict against `reference`'s first metric."""
    table = {"reference": reference, "rows": []}
    for label, row in rows.items():
        cells = {}
        for task, runs in row["probes"].items():
            per_seed = []
            for run in runs:
                path = Path(run) / "report" / "metrics.json"
                if not path.is_file():
                    raise BadValueError(f"{path} is missing: the probe run {run} did not finish")
                per_seed.append(task_metrics(task, json.loads(path.read_text())["test"]))
            cells[task] = {name: summarise([s[name] for s in per_seed]) for name in per_seed[0]}
        table["rows"].append({"label": label, **{k: v for k, v in row.items() if k != "probes"}, "cells": cells})
        table["rows"][-1]["runs"] = row["probes"]
    by_label = {row["label"]: row for row in table["rows"]}
    for row in table["rows"]:
        if reference and row["label"] != reference:
            row["verdict"] = {}
            for task, metrics in row["cells"].items():
                first = next(iter(metrics))
                against = by_label[reference]["cells"][task][first]
                row["verdict"][task] = {"metric": first} | verdict(metrics[first], against)
    return table


def _cell(summary: dict) -> str:
    return f"{summary['mean']:.3f}" + (f" ± {summary['std']:.3f}" if summary["std"] is not None else "")


def markdown(table: dict, config) -> str:
    rows = table["rows"]
    columns = [(task, metric) for task, metrics in rows[0]["cells"].items() for metric in metrics]
    seeds = f"{config.seeds} probe seed(s)" + (
        ", a pretraining run per seed" if config.pretrain_seeds > 1 else ", one pretraining run per objective"
    )
    lines = [
        f"Test split; mean ± sample std over {seeds}.",
        "",
        "| encoder | " + " | ".join(f"{task} {metric}" for task, metric in columns) + " |",
        "|---" + "|---" * len(columns) + "|",
    ]
    for row in rows:
        lines.append(f"| {row['label']} | " + " | ".join(_cell(row["cells"][t][m]) for t, m in columns) + " |")
    reference = table["reference"]
    if reference:
        units = "difference of means in units of the larger std; ▲ over +2, ▼ under −2"
        lines += ["", f"Against `{reference}` ({units}):", ""]
        tasks = list(rows[0]["cells"])
        lines += ["| encoder | " + " | ".join(tasks) + " |", "|---" + "|---" * len(tasks) + "|"]
        marks = {"beats": "▲", "below": "▼", "within": "≈"}
        for row in rows:
            if "verdict" not in row:
                continue
            cells = []
            for task in tasks:
                v = row["verdict"][task]
                cells.append(f"{marks[v['call']]} {v['difference']:+.3f} ({v['sigmas']:+.1f}σ, {v['metric']})")
            lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    pretrained = [row for row in rows if row["kind"] == "pretrained"]
    if pretrained:
        lines += [
            "",
            "Pretraining runs (validation at the exported step: the objective's loss, the family probe on "
            "unseen instruments — before training and at that step — and RankMe and dead fraction of the embedding):",
            "",
            "| encoder | config | run | step | loss | probe at step 0 | probe | RankMe | dead |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        shown = ("loss", "initial_probe_accuracy", "probe_accuracy", "embedding_rankme", "embedding_dead_fraction")
        for row in pretrained:
            for run in row["pretraining"]:
                values = [run.get(k) for k in shown]
                cells = " | ".join("–" if v is None else f"{v:.3g}" for v in values)
                lines.append(
                    f"| {row['label']} | `{row['config']}` | {Path(run['run']).name} | {run['best_step']} | {cells} |"
                )
    return "\n".join(lines) + "\n"


def figure(table: dict, path: Path) -> None:
    """One panel per task metric, one bar per encoder with ±1 std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table["rows"]
    columns = [(task, metric) for task, metrics in rows[0]["cells"].items() for metric in metrics]
    fig, axes = plt.subplots(1, len(columns), figsize=(2.2 + 1.1 * len(rows) * len(columns), 3.6), squeeze=False)
    for axis, (task, metric) in zip(axes[0], columns, strict=True):
        means = [row["cells"][task][metric]["mean"] for row in rows]
        errors = [row["cells"][task][metric]["std"] or 0.0 for row in rows]
        colours = ["0.6" if row["kind"] == "baseline" else "C0" for row in rows]
        axis.bar(range(len(rows)), means, yerr=errors, capsize=3, color=colours)
        axis.set_xticks(range(len(rows)), [row["label"] for row in rows], rotation=45, ha="right", fontsize=8)
        axis.set_title(f"{task}: {metric}", fontsize=9)
        axis.set_ylim(0, 1)
    axes[0][0].set_ylabel("test score (mean ± std over seeds)")
    fig.tight_layout()
    partial = path.with_name(f".{path.name}.partial.png")
    fig.savefig(partial, dpi=120)
    plt.close(fig)
    partial.replace(path)
