"""Put downstream runs side by side: `python -m finetune.compare RUN... [--out=DIR] [--split=test]`.

Each RUN is a `python -m finetune` work directory (its report/metrics.json and config.json).
Runs whose configs differ only in `seed` form one group, reported as mean ± sample standard
deviation over its runs; groups are labelled by the config fields that tell them apart.
Writes compare.md, compare.json and compare.png (bars with ±1 std) to --out, and prints the
table.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from finetune.report import HEADLINE

FIGURE_METRICS = ("f1_micro", "f1_macro", "openmic_f1", "lrap")


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= _flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = json.dumps(value)
    return out


def load_run(run: Path, split: str) -> tuple[dict, dict]:
    metrics_path, config_path = run / "report" / "metrics.json", run / "config.json"
    for path in (metrics_path, config_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: {run} is not a finished `python -m finetune` run")
    metrics = json.loads(metrics_path.read_text())
    if split not in metrics:
        raise KeyError(f"{metrics_path} has no split {split!r}; it has {[k for k in metrics if k != 'threshold']}")
    return metrics[split], _flatten(json.loads(config_path.read_text()))


def compare(runs: list[Path], *, split: str = "test") -> list[dict]:
    """One row per group: label, runs, and per headline metric its mean, std and values."""
    loaded = [(run, *load_run(run, split)) for run in runs]
    groups: dict[str, list] = {}
    for run, metrics, config in loaded:
        key = json.dumps({k: v for k, v in sorted(config.items()) if k != "seed"})
        groups.setdefault(key, []).append((run, metrics, config))
    configs = [dict(json.loads(key)) for key in groups]
    differing = sorted({k for c in configs for k in c if any(c.get(k) != o.get(k) for o in configs)})
    rows = []
    for key, members in groups.items():
        config = json.loads(key)
        label = ", ".join(f"{k}={json.loads(config[k])}" for k in differing if k in config)
        row = {"label": label or members[0][0].name, "runs": [str(m[0]) for m in members], "metrics": {}}
        for name in HEADLINE:
            values = np.array([m[1].get(name, np.nan) for m in members], float)
            std = float(values.std(ddof=1)) if len(values) > 1 else None
            row["metrics"][name] = {"mean": float(values.mean()), "std": std, "values": values.tolist()}
        rows.append(row)
    return rows


def markdown(rows: list[dict], split: str) -> str:
    lines = [f"Split: {split}. Mean ± sample std over runs that differ only in seed.", "",
             "| runs | n | " + " | ".join(HEADLINE) + " |", "|---|---" + "|---" * len(HEADLINE) + "|"]  # fmt: skip
    for row in rows:
        cells = []
        for name in HEADLINE:
            m = row["metrics"][name]
            cells.append(f"{m['mean']:.3f}" + (f" ± {m['std']:.3f}" if m["std"] is not None else ""))
        lines.append(f"| {row['label']} | {len(row['runs'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(FIGURE_METRICS)), 3.8))
    width = 0.8 / len(rows)
    for i, row in enumerate(rows):
        means = [row["metrics"][m]["mean"] for m in FIGURE_METRICS]
        errors = [row["metrics"][m]["std"] or 0.0 for m in FIGURE_METRICS]
        axes.bar([x + i * width for x in range(len(FIGURE_METRICS))], means, width=width, yerr=errors, capsize=3,
                 label=row["label"][:60])  # fmt: skip
    axes.set_xticks([x + width * (len(rows) - 1) / 2 for x in range(len(FIGURE_METRICS))], FIGURE_METRICS)
    axes.set_ylim(0, 1)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str]) -> None:
    from absl import flags

    runs = [Path(a) for a in argv[1:]]
    if not runs:
        raise SystemExit("usage: python -m finetune.compare RUN [RUN ...] [--out=DIR] [--split=test]")
    split = flags.FLAGS.split
    rows = compare(runs, split=split)
    out = Path(flags.FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(rows, split)
    (out / "compare.md").write_text(table)
    (out / "compare.json").write_text(json.dumps(rows, indent=2))
    figure(rows, out / "compare.png")
    print(table, end="")
    print(f"written: {out / 'compare.md'}, {out / 'compare.png'}")


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("out", "runs/compare", "folder for compare.md, compare.json, compare.png")
    flags.DEFINE_string("split", "test", "which split's metrics to compare")
    app.run(main)
