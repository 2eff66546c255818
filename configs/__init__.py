"""Runnable experiments, one Python file each, with `get_config(arg=None) -> ConfigDict`.

`python -m pretrain --config=NAME` resolves a bare NAME to `configs/NAME.py` (or to
`$OVERTONE_CONFIGS/NAME.py` when that folder is set); a path is used as given. Variants
follow the file after a colon: `--config=nsynth_mixup:encoder=compact`.

This package is the catalogue of configs and how to find and load them; configs are plain
data (names are checked where they are built). The entry points hand the catalogue to the
command-line runner (`runtime.cli.main(..., catalog=configs)`).
"""

from __future__ import annotations

import ast
import importlib.util
import os
from pathlib import Path

from overtone.errors import OvertoneError, UnknownNameError, did_you_mean


class ConfigError(OvertoneError, ValueError):
    """A config name, variant or value that cannot be used."""


def config_dir() -> Path:
    return Path(os.environ.get("OVERTONE_CONFIGS", Path(__file__).parent))


def names() -> list[str]:
    return sorted(p.stem for p in config_dir().glob("*.py") if not p.stem.startswith("_"))


def summary(name: str, width: int = 100) -> str:
    """The opening paragraph of a config file's docstring (read, not run), cut to one line."""
    doc = ast.get_docstring(ast.parse((config_dir() / f"{name}.py").read_text())) or ""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    return paragraph if len(paragraph) <= width else paragraph[: paragraph.rfind(" ", 0, width - 1)] + " …"


def resolve(spec: str) -> str:
    """'nsynth_mixup[:arg]' → '/…/configs/nsynth_mixup.py[:arg]'; paths pass through (made
    absolute, so the run's config.json names the file wherever it is read)."""
    name, sep, arg = spec.partition(":")
    if name.endswith(".py") or "/" in name:
        path = Path(name).expanduser().absolute()
        if not path.is_file():
            raise UnknownNameError(f"--config={spec}: no config file {path}")
        return f"{path}{sep}{arg}"
    path = config_dir() / f"{name}.py"
    if not path.is_file():
        raise UnknownNameError(
            f"no config named {name!r}{did_you_mean(name, names())} in {config_dir()}; available: {names()}"
        )
    return f"{path}{sep}{arg}"


def parse_arg(arg: str | None, **defaults) -> dict:
    """big_vision-style variant string 'k=v,k2=v2' → dict, refusing keys not in `defaults`."""
    values = dict(defaults)
    for item in filter(None, (arg or "").split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in defaults:
            hint = did_you_mean(key, defaults) if eq else ""
            raise ConfigError(f"config variant {item!r} not understood{hint}; valid keys: {sorted(defaults)}")
        values[key] = value
    return values


def load(resolved_spec: str):
    """Run a resolved `path[:arg]` config's get_config(arg), as ml_collections will: a variant it
    refuses is reported here in one line, not as absl's multi-line flag traceback."""
    path, _, arg = resolved_spec.partition(":")
    spec = importlib.util.spec_from_file_location(f"_overtone_config_{Path(path).stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()


def resolve_flag(argv: list[str]) -> list[str]:
    """Rewrite `--config=NAME[:arg]` (or `--config NAME`) to the config file's path, before absl
    parses flags, so `python -m pretrain --config=nsynth_mixup` finds configs/nsynth_mixup.py."""
    out = list(argv)
    for i, item in enumerate(out):
        if item.startswith("--config="):
            out[i] = "--config=" + resolve(item.split("=", 1)[1])
        elif item == "--config" and i + 1 < len(out):
            out[i + 1] = resolve(out[i + 1])
    return out


ENTRY_POINTS = {
    "pretrain": "python -m pretrain",
    "finetune": "python -m finetune",
    "probe": "python -m finetune.probe",
    "suite": "python -m suite",
}


def kind(config) -> str | None:
    """Which entry point runs `config`: pretrain configs have an objective, probe configs a
    task, finetune configs a mode (and no task), suite configs pretraining runs and tasks."""
    if "pretrain" in config and "tasks" in config:
        return "suite"
    if "task" in config:
        return "probe"
    if "objective" in config:
        return "pretrain"
    return "finetune" if "mode" in config else None


def listing(kind_name: str) -> list[str]:
    """'NAME  first docstring line' for each config that entry point `kind_name` runs."""
    rows = []
    for name in names():
        try:
            config = load(resolve(name))
        except Exception:  # noqa: BLE001 - a broken user config must not break --help
            continue
        if kind(config) == kind_name:
            rows.append(name)
    width = max(map(len, rows), default=0) + 2
    return [f"{name:<{width}}{summary(name)}" for name in rows]
