"""Runnable experiments, one Python file each, with `get_config(arg=None) -> ConfigDict`.

`python -m pretrain --config=NAME` resolves a bare NAME to `configs/NAME.py` (or to
`$OVERTONE_CONFIGS/NAME.py` when that folder is set); a path is used as given. Variants
follow the file after a colon: `--config=nsynth_mixup:encoder=compact`.
"""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    return Path(os.environ.get("OVERTONE_CONFIGS", Path(__file__).parent))


def names() -> list[str]:
    return sorted(p.stem for p in config_dir().glob("*.py") if not p.stem.startswith("_"))


def resolve(spec: str) -> str:
    """'nsynth_mixup[:arg]' → '/…/configs/nsynth_mixup.py[:arg]'; paths pass through."""
    name, sep, arg = spec.partition(":")
    if name.endswith(".py") or "/" in name:
        return spec
    path = config_dir() / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no config named {name!r} in {config_dir()}; available: {names()}")
    return f"{path}{sep}{arg}"


def parse_arg(arg: str | None, **defaults) -> dict:
    """big_vision-style variant string 'k=v,k2=v2' → dict, refusing keys not in `defaults`."""
    values = dict(defaults)
    for item in filter(None, (arg or "").split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in defaults:
            raise ValueError(f"config variant {item!r} not understood; valid keys: {sorted(defaults)}")
        values[key] = value
    return values
