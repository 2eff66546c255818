"""What every entry point shares: config-name resolution, logging, and the work directory."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
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


def run(train: Callable, config, workdir: str | None) -> dict:
    """What `python -m pretrain` and `python -m finetune` do after flag parsing: set up logging
    and multi-host, train into the work directory (default runs/<config name>), and report a
    user's error (bad data, bad config, divergence) as one line with exit status 1."""
    from runtime.checkpoint import CheckpointWriteError
    from runtime.errors import USER_ERRORS
    from runtime.mesh import initialize_distributed
    from runtime.performance import enable_compilation_cache, keep_freed_memory

    setup_logging()
    keep_freed_memory()
    enable_compilation_cache()
    initialize_distributed()
    try:
        return train(config, workdir or f"runs/{config_name(sys.argv)}")
    except USER_ERRORS as err:
        if os.environ.get("OVERTONE_TRACEBACK") == "1":
            raise
        logging.error("%s: %s", type(err).__name__, err)
        if isinstance(err, CheckpointWriteError):
            # orbax's background writer threads may still be failing (and printing); leave now
            # rather than wait on them at interpreter shutdown
            logging.shutdown()
            sys.stderr.flush()
            os._exit(1)
        sys.exit(1)


def main(
    train: Callable, announce: Callable[[dict], None], shortcuts: dict[str, tuple[str, str]] | None = None
) -> None:
    """The whole of an entry point: `--config` (name or path, `--config.KEY=VALUE` overrides) and
    `--workdir` flags, then `run(train, …)`, then `announce(summary)` (the entry point's result line).
    `shortcuts`: flag name → (config field it sets, help), e.g. --encoder for encoder.source."""
    from absl import app, flags
    from ml_collections import config_flags

    config = config_flags.DEFINE_config_file("config", None, "config name (configs/NAME.py) or path", lock_config=True)
    workdir = flags.DEFINE_string("workdir", None, "work directory (default: runs/<config name>)")
    extra = {name: (field, flags.DEFINE_string(name, None, text)) for name, (field, text) in (shortcuts or {}).items()}
    flags.mark_flag_as_required("config")

    started = []

    def entry(argv):
        started.append(True)
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        for name, (field, flag) in extra.items():
            if flag.value is not None:
                *parents, leaf = field.split(".")
                section = config.value
                for parent in parents:
                    section = section[parent]
                if leaf not in section:
                    raise app.UsageError(f"--{name} sets config.{field}, which this config does not have")
                current = section[leaf]
                section[leaf] = flag.value if isinstance(current, str) else type(current)(flag.value)
        announce(run(train, config.value, workdir.value))

    sys.argv = resolve_config_flag(sys.argv)
    try:
        app.run(entry)
    except (KeyError, AttributeError, TypeError, ValueError) as err:
        if started or os.environ.get("OVERTONE_TRACEBACK") == "1":
            raise  # raised by the run itself, past flag parsing: a bug, keep its traceback
        # ml_collections refuses an unknown --config.KEY or a value of the wrong type while absl
        # parses the flags; say which in one line, as absl does for its own flag errors
        detail = err.args[0] if err.args and isinstance(err.args[0], str) else str(err)
        detail = " ".join(detail.replace("\\n", " ").replace("\\", "").replace("'", "").split())
        print(f"FATAL flag error: {type(err).__name__}: {detail}", file=sys.stderr)
        sys.exit(2)
