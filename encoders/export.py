"""python -m encoders.export --run=WORKDIR [--checkpoint=best|latest|STEP] [--out=DIR]

Writes an encoder bundle (`encoders.bundle`) from a pretraining run: the encoder's variables
from the chosen checkpoint as safetensors, a manifest with the front-end, the training
config and objective and checksums, and a README for the team that receives it. The output
defaults to WORKDIR/export. Pretraining runs do this by themselves at the end
(`config.export`).
"""

from __future__ import annotations

import json
from pathlib import Path

from encoders import bundle
from encoders.pretrained import checkpoint_dir, from_checkpoint
from overtone.cli import absolute


def export_run(run: str | Path, out: str | Path | None = None, *, checkpoint: str = "best") -> Path:
    run = Path(run)
    loaded = from_checkpoint(run.absolute(), str(run), checkpoint)
    step_dir = checkpoint_dir(run, checkpoint)
    config = json.loads((run / "config.json").read_text())
    provenance = {
        "run": str(run.absolute()),
        "checkpoint": step_dir.parent.name,
        "step": int(step_dir.name),
        "objective": config.get("objective", {}).get("name"),
        "config": config,
    }
    return bundle.save(out or run / "export", loaded.encoder, loaded.encoder_config, loaded.frontend,
                       provenance=provenance)  # fmt: skip


def main(argv: list[str]) -> None:
    from absl import app, flags

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    folder = export_run(absolute(f.run), absolute(f.out) if f.out else None, checkpoint=f.checkpoint)
    manifest = json.loads((folder / "manifest.json").read_text())
    source, digest = manifest["source"], manifest["weights"]["sha256"][:16]
    print(f"exported {manifest['encoder']['name']} from {source['checkpoint']} step {source['step']} to {folder} "
          f"(weights sha256 {digest}…)")  # fmt: skip


if __name__ == "__main__":
    from absl import flags

    from overtone.cli import run_absl

    flags.DEFINE_string("run", None, "pretraining work directory", required=True)
    flags.DEFINE_string("checkpoint", "best", "best (else latest), latest, or a step number")
    flags.DEFINE_string("out", "", "bundle folder (default: RUN/export)")
    run_absl(
        main,
        __doc__,
        examples=["python -m encoders.export --run=runs/nsynth_mixup --checkpoint=best --out=bundles/mixup"],
    )
