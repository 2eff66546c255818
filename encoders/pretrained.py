"""Encoders for downstream use: from a pretraining run, an exported bundle, or untrained.

    load_encoder("runs/nsynth_mixup")          # the run's bundle, runs/nsynth_mixup/export
    load_encoder("bundles/mixup")              # a bundle (python -m pretrain.export --out=...)
    load_encoder("random:vggish")              # the untrained baseline every table needs

A trained encoder is only ever read from its bundle (`encoders.bundle`), never from a
training checkpoint: the bundle carries the front-end it was trained with and checksums over
everything. `checksum` is a SHA-256 over the variables' names, shapes, dtypes and bytes: it
identifies the weights (the embedding cache is keyed on it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import jax
from flax import nnx

from encoders import ENCODERS, build_encoder, check_encoder, match_frontend
from encoders.frontend import LogMel, build_frontend
from overtone.errors import OvertoneError, did_you_mean


class EncoderSourceError(OvertoneError, ValueError):
    """An --encoder that is neither a pretraining run nor random:NAME, or an unreadable one."""


@dataclasses.dataclass
class LoadedEncoder:
    encoder: nnx.Module
    frontend: LogMel
    encoder_config: dict
    checksum: str
    source: str  # what the user passed, for reports


def check_source(source: str, options: dict | None = None) -> None:
    """Refuse an --encoder value that cannot be loaded (an unknown random:NAME, a folder without
    a bundle) without loading anything: cheap enough to call before any data is read."""
    if source.startswith("random:"):
        check_encoder({**(options or {}), "name": _random_name(source)})
    else:
        _bundle_folder(source)


def load_encoder(
    source: str, *, seed: int = 0, options: dict | None = None, frontend: dict | None = None
) -> LoadedEncoder:
    """`source`: a bundle folder, a pretraining work directory (its bundle, RUN/export), or
    random:NAME. `options` and `frontend` configure a random:NAME encoder (a trained one brings
    its own)."""
    if source.startswith("random:"):
        name = _random_name(source)
        needed = getattr(ENCODERS[name], "frontend_name", None)  # an encoder that takes one front-end only
        if needed and (frontend or {}).get("name", "vggish_logmel") != needed:
            frontend = {"name": needed}
        config = match_frontend({**(options or {}), "name": name}, frontend or {})
        encoder = build_encoder(config, rngs=nnx.Rngs(seed))
        front = build_frontend(frontend or {})
        # the options join the weights in the identity: options without weights (final_relu, bands)
        # change the embeddings too; an encoder without parameters (logmel_stats) draws nothing
        options_sha = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
        drawn = f"-seed{seed}" if jax.tree.leaves(nnx.state(encoder, nnx.Param)) else ""
        return LoadedEncoder(encoder, front, config, f"{checksum(encoder)}-{options_sha}{drawn}", source)
    from encoders.bundle import load

    bundle = load(_bundle_folder(source))
    config = {"name": bundle.manifest["encoder"]["name"], **bundle.manifest["encoder"]["options"]}
    return LoadedEncoder(bundle.encoder, bundle.frontend, config, checksum(bundle.encoder), source)


def _random_name(source: str) -> str:
    name = source.split(":", 1)[1]
    if name not in ENCODERS:
        known = f"{did_you_mean(name, ENCODERS)}; registered: {sorted(ENCODERS)}"
        raise EncoderSourceError(f"--encoder={source}: unknown encoder {name!r}{known}")
    return name


def _bundle_folder(source: str) -> Path:
    """The bundle `source` names: the folder itself, or a pretraining run's RUN/export."""
    path = Path(source).expanduser().absolute()
    if (path / "manifest.json").is_file():
        return path
    if (path / "export" / "manifest.json").is_file():
        return path / "export"  # a pretraining run: the bundle it wrote from its best model
    if (path / "config.json").is_file():
        export = f"python -m pretrain.export --run={path}"
        raise EncoderSourceError(
            f"--encoder={source}: this work directory has no bundle ({path / 'export'}, written at the end of a "
            f"run): write one with `{export}` (add --checkpoint=latest for a run that was stopped early)"
        )
    what = "no such folder" if not path.exists() else "a file, not a folder" if not path.is_dir() else ""
    what = what or f"no manifest.json in {path}"
    raise EncoderSourceError(
        f"--encoder={source}: {what}; expected an encoder bundle, a pretraining work directory with its "
        "bundle (RUN/export), or random:NAME"
    )


def checksum(module: nnx.Module) -> str:
    """The weights' identity (`encoders.bundle.parameter_checksum`)."""
    from encoders.bundle import parameter_checksum

    return parameter_checksum(module)
