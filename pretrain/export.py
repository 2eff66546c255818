"""python -m pretrain.export --run=WORKDIR [--checkpoint=best|latest|STEP] [--out=DIR]

Writes the encoder bundle (`encoders.bundle`) of a pretraining run: the encoder's variables as
safetensors, a manifest with the front-end, the training config, the objective and checksums,
and a README for the team that receives it. The bundle is the only thing later stages read of
a run (`--encoder=RUN` means RUN/export).

A pretraining run writes its bundle itself at the end, from the best model it holds in memory
(`bundle_model`, when `config.export`). This command is for the other cases: a run killed
before its end (`--checkpoint=latest`), another checkpoint than the best, or another folder.
It reads the run's `config.json` and only the encoder's part of the checkpoint
(`runtime.checkpoint.read_model_part`).
"""

from __future__ import annotations

import json
from pathlib import Path

from flax import nnx

import encoders
from encoders import bundle
from overtone.cli import absolute
from overtone.errors import OvertoneError
from runtime.checkpoint import read_model_part


class ExportError(OvertoneError):
    """A folder that is not a pretraining work directory."""


def bundle_model(encoder: nnx.Module, config: dict, out: Path, *, run: Path, checkpoint: dict) -> Path:
    """Write `encoder` (trained under `config`) as a bundle; `checkpoint` says which state it is
    ({"checkpoint", "step"[, "state_sha256"]})."""
    objective = config.get("objective", {}).get("name")
    provenance = {"run": str(run), **checkpoint, "objective": objective, "config": config}
    frontend = encoders.build_frontend(config.get("frontend", {}))
    return bundle.save(out, encoder, dict(config["encoder"]), frontend, provenance=provenance)


def export_run(run: str | Path, out: str | Path | None = None, *, checkpoint: str = "best") -> Path:
    """The bundle of checkpoint `checkpoint` (best — else latest —, latest, or a step number) of
    work directory `run`, written to `out` (default RUN/export)."""
    run = Path(run).absolute()
    config_path = run / "config.json"
    if not config_path.is_file():
        raise ExportError(f"--run={run}: {config_path} not found; expected a pretraining work directory")
    config = json.loads(config_path.read_text())
    if not isinstance(config, dict) or not isinstance(config.get("encoder"), dict):
        raise ExportError(f"{config_path} has no 'encoder' section: not a pretraining run")
    encoder = encoders.build_encoder(config["encoder"], rngs=nnx.Rngs(0))
    state = nnx.state(encoder)
    part, origin = read_model_part(run, {"encoder": nnx.to_pure_dict(state)}, which=checkpoint)
    nnx.replace_by_pure_dict(state, part["encoder"])
    nnx.update(encoder, state)
    return bundle_model(encoder, config, Path(out) if out else run / "export", run=run, checkpoint=origin)


def main(argv: list[str]) -> None:
    from absl import app, flags

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    folder = export_run(absolute(f.run), absolute(f.out) if f.out else None, checkpoint=f.checkpoint)
    manifest = json.loads((folder / "manifest.json").read_text())
    source, digest = manifest["source"], manifest["weights"]["sha256"][:16]
    print(
        f"exported {manifest['encoder']['name']} from {source['checkpoint']} step {source['step']} to {folder} "
        f"(weights sha256 {digest}…)"
    )


if __name__ == "__main__":
    from absl import flags

    from overtone.cli import run_absl

    flags.DEFINE_string("run", None, "pretraining work directory", required=True)
    flags.DEFINE_string("checkpoint", "best", "best (else latest), latest, or a step number")
    flags.DEFINE_string("out", "", "bundle folder (default: RUN/export)")
    run_absl(
        main,
        __doc__,
        examples=["python -m pretrain.export --run=runs/nsynth_mixup --checkpoint=latest --out=bundles/mixup"],
    )
