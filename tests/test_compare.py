"""finetune.compare: grouping by everything but the seed, mean ± std, files written."""

import json
import subprocess
import sys

import numpy as np
import pytest

from finetune.compare import compare
from finetune.report import HEADLINE


def fake_run(folder, *, seed: int, lr: float, f1: float):
    (folder / "report").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"seed": seed, "optimizer": {"learning_rate": lr}}))
    metrics = {name: f1 + 0.01 * i for i, name in enumerate(HEADLINE)}
    (folder / "report" / "metrics.json").write_text(json.dumps({"threshold": {}, "test": metrics, "valid": metrics}))
    return folder


def test_runs_that_differ_only_in_seed_are_averaged(tmp_path):
    runs = [fake_run(tmp_path / f"a{s}", seed=s, lr=1e-3, f1=f) for s, f in ((0, 0.5), (1, 0.6), (2, 0.7))]
    runs.append(fake_run(tmp_path / "b", seed=0, lr=1e-4, f1=0.4))
    rows = compare(runs)
    assert [r["label"] for r in rows] == ["optimizer.learning_rate=0.001", "optimizer.learning_rate=0.0001"]
    micro = rows[0]["metrics"]["f1_micro"]
    assert micro["mean"] == pytest.approx(0.6) and micro["std"] == pytest.approx(np.std([0.5, 0.6, 0.7], ddof=1))
    assert rows[1]["metrics"]["f1_micro"] == {"mean": 0.4, "std": None, "values": [0.4]}


def test_cli_writes_table_and_figure(tmp_path):
    runs = [str(fake_run(tmp_path / f"r{s}", seed=s, lr=1e-3, f1=0.5 + s / 10)) for s in range(2)]
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "finetune.compare", *runs, f"--out={out}"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "0.550 ± 0.071" in result.stdout
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG" and (out / "compare.md").is_file()
    result = subprocess.run(
        [sys.executable, "-m", "finetune.compare", *runs, f"--out={out}", "--published=zhong2023_nsynth,han2017"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split(" | ")[0]: line for line in result.stdout.splitlines() if line.startswith("| published")}
    zhong, han = (
        rows["| published: Zhong et al. 2023, NSynth pretraining (threshold chosen on test)"],
        rows["| published: Han et al. 2017 (threshold fixed (their own))"],
    )
    assert "| paper | 0.674 | 0.584 |" in zhong and "| 0.814 |" in zhong  # F1 micro, macro, LRAP as published
    assert "| paper | 0.602 | 0.503 | — |" in han  # what the paper does not give is a dash
    assert len(json.loads((out / "compare.json").read_text())) == 3


def test_published_rows_come_from_the_table_and_refuse_unknown_keys():
    from finetune.published import PUBLISHED, published_rows
    from overtone.errors import UnknownNameError

    (row,) = published_rows(["attentionmic"], HEADLINE)
    assert row["metrics"]["openmic_f1"]["mean"] == PUBLISHED["attentionmic"]["metrics"]["openmic_f1"] == 0.797
    assert np.isnan(row["metrics"]["lrap"]["mean"]) and row["tasks"] == ["openmic"]
    with pytest.raises(UnknownNameError, match="did you mean 'han2017'"):
        published_rows(["han2071"], HEADLINE)


def test_a_run_without_a_report_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a finished `python -m finetune` run"):
        compare([tmp_path])
