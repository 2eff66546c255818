"""`python -m finetune --config=openmic_attention` end to end on the embedded stand-in."""

import json
import subprocess
import sys

import numpy as np

from runtime.metrics_log import read_metrics


def test_openmic_attention_trains_and_writes_its_report(subprocess_env, tmp_path):
    command = [sys.executable, "-m", "finetune", "--config=openmic_attention", f"--workdir={tmp_path}",
               "--config.data.embedded.clips=80", "--config.train.num_epochs=15", "--config.train.batch_size=16",
               "--config.train.log_every_steps=1"]  # fmt: skip
    result = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "EMBEDDED" in result.stderr and "OpenMIC per-instrument F1" in result.stdout
    losses = [r["loss"] for r in read_metrics(tmp_path) if r["split"] == "train"]
    assert len(losses) == 45 and np.mean(losses[-5:]) < np.mean(losses[:5])
    report = tmp_path / "report"
    for name in ("metrics.json", "report.md", "per_class_f1.png"):
        assert (report / name).is_file()
    assert (report / "per_class_f1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((report / "metrics.json").read_text())
    for split in ("valid", "test"):
        for key in ("f1_micro", "f1_macro", "openmic_f1", "lrap", "map"):
            assert 0.0 <= metrics[split][key] <= 1.0
    assert metrics["test"]["lrap"] > 0.5  # well above what random scores give on these labels
    assert "| test |" in (report / "report.md").read_text()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["report"]["test"]["f1_micro"] == metrics["test"]["f1_micro"]
