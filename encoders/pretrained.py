"""Encoders for downstream use: from a pretraining run, an exported bundle, or untrained.

    load_encoder("runs/nsynth_mixup")          # the run's bundle (runs/nsynth_mixup/export), else its best checkpoint
    load_encoder("runs/nsynth_mixup/export")   # a bundle (python -m encoders.export)
    load_encoder("random:vggish")              # the untrained baseline every table needs

Only the encoder's variables are read from the orbax checkpoint (a partial restore: the
objective's heads and the optimizer state stay on disk). The front-end and encoder settings
come from the run's `config.json`, so an encoder is always paired with the front-end it was
trained on. `checksum` is a SHA-256 over the variables' names, shapes, dtypes and bytes: it
identifies the weights (the embedding cache is keyed on it).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import orbax.checkpoint as ocp
from flax import nnx
from ml_collections import ConfigDict

from encoders import ENCODERS, build_encoder, check_encoder
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
    """Refuse an --encoder value that cannot be loaded (an unknown random:NAME, a path that is no
    folder) without loading anything: cheap enough to call before any data is read."""
    if source.startswith("random:"):
        name = source.split(":", 1)[1]
        if name not in ENCODERS:
            raise EncoderSourceError(f"--encoder={source}: unknown encoder {name!r}"
                                     f"{did_you_mean(name, ENCODERS)}; registered: {sorted(ENCODERS)}")  # fmt: skip
        check_encoder({**(options or {}), "name": name})
    elif not Path(source).expanduser().is_dir():
        raise EncoderSourceError(f"--encoder={source}: no such bundle or run folder (expected an exported bundle, "
                                 "a pretraining work directory, or random:NAME)")  # fmt: skip


def load_encoder(
    source: str, *, seed: int = 0, checkpoint: str = "best", options: dict | None = None, frontend: dict | None = None
) -> LoadedEncoder:
    """`checkpoint` (runs only): best (falling back to latest), latest, or a step number.
    `options` and `frontend` configure a random:NAME encoder (a trained one brings its own)."""
    if source.startswith("random:"):
        name = source.split(":", 1)[1]
        if name not in ENCODERS:
            raise EncoderSourceError(f"--encoder={source}: unknown encoder {name!r}"
                                     f"{did_you_mean(name, ENCODERS)}; registered: {sorted(ENCODERS)}")
        config = {**(options or {}), "name": name}
        encoder = build_encoder(config, rngs=nnx.Rngs(seed))
        front = build_frontend(frontend) if frontend else LogMel()
        return LoadedEncoder(encoder, front, config, checksum(encoder) + f"-seed{seed}", source)
    path = Path(source).expanduser().absolute()  # orbax refuses relative paths; records name absolute ones
    if checkpoint == "best" and (path / "export" / "manifest.json").is_file():
        path = path / "export"  # a pretraining run's bundle (written from its best checkpoint at the end)
    if (path / "manifest.json").is_file():
        from encoders.bundle import load

        bundle = load(path)
        options = bundle.manifest["encoder"]["options"]
        config = {"name": bundle.manifest["encoder"]["name"], **options}
        return LoadedEncoder(bundle.encoder, bundle.frontend, config, checksum(bundle.encoder), source)
    return from_checkpoint(path, source, checkpoint)


def from_checkpoint(run: Path, source: str, which: str = "best") -> LoadedEncoder:
    """The encoder of a pretraining run's checkpoint `which` (best, latest or a step), with the
    run's front-end; what `python -m encoders.export` reads."""
    config_path = run / "config.json"
    if not config_path.is_file():
        raise EncoderSourceError(
            f"--encoder={source}: {config_path} not found; expected a pretraining work directory "
            "(config.json + best/ or checkpoints/) or random:NAME"
        )
    config = ConfigDict(json.loads(config_path.read_text()))
    if "encoder" not in config:
        raise EncoderSourceError(f"{config_path} has no 'encoder' section: not a pretraining run")
    encoder = build_encoder(config.encoder, rngs=nnx.Rngs(0))
    frontend = build_frontend(config.get("frontend", {}))
    step_dir = checkpoint_dir(run, which)
    template = nnx.to_pure_dict(nnx.state(encoder))
    wrapped = {"0": {"encoder": _wrap(template)}}  # how the loop saves (model, optimizer) state
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), wrapped)
    try:
        restored = ocp.PyTreeCheckpointer().restore(
            step_dir / "state",
            args=ocp.args.PyTreeRestore(
                item=abstract,
                restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
                partial_restore=True,
            ),
        )
    except Exception as err:  # noqa: BLE001 - orbax raises many types; name the checkpoint
        raise EncoderSourceError(f"cannot read the encoder from checkpoint {step_dir}: {err}") from err
    state = nnx.state(encoder)
    nnx.replace_by_pure_dict(state, _unwrap(restored["0"]["encoder"]))
    nnx.update(encoder, state)
    return LoadedEncoder(encoder, frontend, config.encoder.to_dict(), checksum(encoder), source)


def checkpoint_dir(run: Path, which: str = "best") -> Path:
    """The step folder of `which`: best (else latest), latest, or a step number (either kind)."""
    kinds = {"best": ("best", "checkpoints"), "latest": ("checkpoints",)}.get(which, ("checkpoints", "best"))
    for kind in kinds:
        finished = [p for p in (run / kind).glob("*") if p.name.isdigit() and (p / "state").is_dir()]
        if which.isdigit():
            finished = [p for p in finished if int(p.name) == int(which)]
        if finished:
            return max(finished, key=lambda p: int(p.name))
    if which not in ("best", "latest") and not which.isdigit():
        raise EncoderSourceError(f"checkpoint must be best, latest or a step number, got {which!r}")
    raise EncoderSourceError(f"{run} holds no finished checkpoint {which!r} under best/ or checkpoints/")


def _wrap(tree):
    return {k: _wrap(v) for k, v in tree.items()} if isinstance(tree, dict) else {"value": tree}


def _unwrap(tree):
    if isinstance(tree, dict) and set(tree) == {"value"} and not isinstance(tree["value"], dict):
        return tree["value"]
    return {k: _unwrap(v) for k, v in tree.items()}


def checksum(module: nnx.Module) -> str:
    """The weights' identity (`encoders.bundle.parameter_checksum`)."""
    from encoders.bundle import parameter_checksum

    return parameter_checksum(module)
