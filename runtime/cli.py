"""What every entry point shares: config-name resolution, logging, and the work directory."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import configs


def resolve_config_flag(argv: list[str]) -> list[str]:
    """Rewrite `--config=NAME[:arg]` (or `--config NAME`) to the config file's path, before absl
    parses flags, so `python -m pretrain --config=nsynth_mixup` finds configs/nsynth_mixup.py."""
    out = list(argv)
    for i, item in enumerate(out):
        if item.startswith("--config="):
            out[i] = "--config=" + configs.resolve(item.split("=", 1)[1])
        elif item == "--config" and i + 1 < len(out):
            out[i + 1] = configs.resolve(out[i + 1])
    return out


def config_name(argv: list[str]) -> str:
    for i, item in enumerate(argv):
        if item.startswith("--config="):
            return Path(item.split("=", 1)[1].split(":")[0]).stem
        if item == "--config" and i + 1 < len(argv):
            return Path(argv[i + 1].split(":")[0]).stem
    return "run"


def setup_logging() -> None:
    logging.getLogger().setLevel(logging.INFO)
    for noisy in ("absl", "jax._src", "orbax", "grain"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def prepare_workdir(workdir: str | Path, config) -> Path:
    """Create the work directory and record the resolved config in it (config.json)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(json.dumps(json.loads(config.to_json_best_effort()), indent=2))
    (workdir / "command.txt").write_text(" ".join(sys.argv) + "\n")
    return workdir
