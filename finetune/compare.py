"""Put downstream runs side by side: `python -m finetune.compare RUN... [--out=DIR] [--split=test]
[--published=KEY,...]`.

Each RUN is a `python -m finetune` work directory (its report/metrics.json and config.json).
Runs whose configs differ only in `seed` form one group, reported as mean ± sample standard
deviation over its runs; groups are labelled by the config fields that tell them apart.
`--published` adds the papers' numbers as rows of their own (`finetune.published`: their test
metrics and how their threshold was chosen).
Writes compare.md, compare.json and compare.png (bars with ±1 std) to --out, and prints the
table.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from finetune.published import published_rows
from finetune.report import HEADLINE, headline
from overtone.cli import absolute, run_absl
from overtone.errors import BadValueError, unknown_name

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
        raise unknown_name(
            "split", split, [k for k in metrics if k not in ("threshold", "task", "extra")], where=str(metrics_path)
        )
    # runs reported before metrics.json named its task show every column
    return metrics[split] | {"task": metrics.get("task", "openmic")}, _flatten(json.loads(config_path.read_text()))


def compare(runs: list[Path], *, split: str = "test", label: str | None = None) -> list[dict]:
    """One row per group: label, runs, and per headline metric its mean, std and values. Groups are
    labelled by the config fields that tell them apart; `label` names a lone group."""
    loaded = [(run, *load_run(run, split)) for run in runs]
    groups: dict[str, list] = {}
    for run, metrics, config in loaded:
        # a random baseline's weights follow its seed: they do not split a group either
        key = json.dumps({k: v for k, v in sorted(config.items()) if k not in ("seed", "encoder_weights")})
        groups.setdefault(key, []).append((run, metrics, config))
    configs = [dict(json.loads(key)) for key in groups]
    differing = sorted({k for c in configs for k in c if any(c.get(k) != o.get(k) for o in configs)})
    rows = []
    for key, members in groups.items():
        config = json.loads(key)
        name = ", ".join(f"{k}={json.loads(config[k])}" for k in differing if k in config)
        row = {
            "label": name or label or _common_name(members),
            "runs": [str(m[0]) for m in members],
            "tasks": sorted({m[1]["task"] for m in members}),
            "metrics": {},
        }
        for name in HEADLINE:
            values = np.array([m[1].get(name, np.nan) for m in members], float)
            std = float(values.std(ddof=1)) if len(values) > 1 else None
            row["metrics"][name] = {"mean": float(values.mean()), "std": std, "values": values.tolist()}
        rows.append(row)
    return rows


def _common_name(members: list) -> str:
    """A lone group's label: its runs' shared folder name, or the first run's, with the count."""
    parents = {Path(m[0]).absolute().parent for m in members}
    base = parents.pop().name if len(parents) == 1 and len(members) > 1 else Path(members[0][0]).name
    return f"{base} ({len(members)} runs)" if len(members) > 1 else base


def _columns(rows: list[dict]) -> tuple[str, ...]:
    return headline(task for row in rows for task in row.get("tasks", ["openmic"]))


def markdown(rows: list[dict], split: str) -> str:
    columns = _columns(rows)
    lines = [
        f"Split: {split}. Mean ± sample std over runs that differ only in seed.",
        "",
        "| runs | n | " + " | ".join(columns) + " |",
        "|---|---" + "|---" * len(columns) + "|",
    ]
    for row in rows:
        cells = []
        for name in columns:
            m = row["metrics"][name]
            if np.isnan(m["mean"]):
                cells.append("—")
                continue
            cells.append(f"{m['mean']:.3f}" + (f" ± {m['std']:.3f}" if m["std"] is not None else ""))
        count = "paper" if "published" in row else str(len(row["runs"]))
        lines.append(f"| {row['label']} | {count} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(rows: list[dict], path: Path, split: str = "test") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [m for m in FIGURE_METRICS if m in _columns(rows)]
    figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(shown)), 3.8))
    width = 0.8 / len(rows)
    for i, row in enumerate(rows):
        means = [row["metrics"][m]["mean"] for m in shown]
        errors = [row["metrics"][m]["std"] or 0.0 for m in shown]
        axes.bar(
            [x + i * width for x in range(len(shown))],
            means,
            width=width,
            yerr=errors,
            capsize=3,
            label=row["label"][:60],
        )
    axes.set_xticks([x + width * (len(rows) - 1) / 2 for x in range(len(shown))], shown)
    axes.set_ylim(0, 1)
    axes.set_ylabel(f"{split} score (mean ± std over seeds)")
    axes.set_title(f"{len(rows)} group(s) of runs compared on {split}", fontsize=9)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str]) -> None:
    from absl import flags

    runs = [Path(absolute(a)) for a in argv[1:]]
    if not runs:
        raise SystemExit("usage: python -m finetune.compare RUN [RUN ...] [--out=DIR] [--split=test]")
    split = flags.FLAGS.split
    rows = compare(runs, split=split)
    if flags.FLAGS.published:
        if split != "test":
            raise BadValueError("--published gives the papers' test numbers: use it with --split=test")
        rows += published_rows(flags.FLAGS.published.split(","), HEADLINE)
    out = Path(absolute(flags.FLAGS.out))
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(rows, split)
    (out / "compare.md").write_text(table)
    (out / "compare.json").write_text(json.dumps(rows, indent=2))
    figure(rows, out / "compare.png", split)
    print(table, end="")
    print(f"written: {out / 'compare.md'}, {out / 'compare.png'}")


if __name__ == "__main__":
    from absl import flags

    flags.DEFINE_string("out", "runs/compare", "folder for compare.md, compare.json, compare.png")
    flags.DEFINE_string("split", "test", "which split's metrics to compare")
    flags.DEFINE_string("published", "", "papers' numbers to add, comma-separated keys of finetune.published")
    run_absl(
        main,
        __doc__,
        examples=["python -m finetune.compare runs/probe_mixup/seed* runs/probe_random/seed* --out=runs/probe_compare"],
    )
