"""Metrics to `metrics.jsonl` (one JSON object a line) and TensorBoard event files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import tensorboardX


class MetricsWriter:
    """Appends rows `{"step": k, "split": name, metric: value, ...}`.

    On resume from step k, rows after k (written by the killed run after its last
    checkpoint) are dropped from the JSONL, and TensorBoard purges its events after k, so
    both logs read as one uninterrupted run.
    """

    def __init__(self, workdir: str | Path, *, resume_step: int = 0, enabled: bool = True):
        self.enabled = enabled
        self.path = Path(workdir) / "metrics.jsonl"
        if not enabled:
            return
        if resume_step and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if _step(line) <= resume_step]
            self.path.write_text("".join(line + "\n" for line in kept))
        elif self.path.exists() and not resume_step:
            self.path.unlink()
        self.tensorboard = tensorboardX.SummaryWriter(
            str(Path(workdir) / "tensorboard"), purge_step=resume_step + 1 if resume_step else None
        )

    def write(self, step: int, split: str, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"step": int(step), "split": split}
        row.update({k: float(v) for k, v in metrics.items()})
        with self.path.open("a") as f:
            f.write(json.dumps(row, allow_nan=True) + "\n")
        for name, value in metrics.items():
            if math.isfinite(float(value)):
                self.tensorboard.add_scalar(f"{split}/{name}", float(value), step)

    def close(self) -> None:
        if self.enabled:
            self.tensorboard.close()


def read_metrics(workdir: str | Path) -> list[dict]:
    path = Path(workdir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (json.JSONDecodeError, KeyError, TypeError):
        return 1 << 62  # an unreadable (half-written) row is dropped
