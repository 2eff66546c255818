"""Runnable experiments, one Python file each, with `get_config(arg=None) -> ConfigDict`.

`python -m pretrain --config=NAME` resolves a bare NAME to `configs/NAME.py` (or to
`$OVERTONE_CONFIGS/NAME.py` when that folder is set); a path is used as given. Variants
follow the file after a colon: `--config=nsynth_mixup:encoder=compact`.
"""

from __future__ import annotations

import ast
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
