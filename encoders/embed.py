"""python -m encoders.embed --encoder=BUNDLE_OR_RUN PATHS... --out=FILE.npz [--hop=SECONDS]

Embeds audio files, or every audio file below given folders, with an exported bundle (or a
pretraining run, or random:NAME). Files are decoded by worker threads, resampled to the
encoder's rate, and embedded in full batches of patches; unreadable files are skipped,
counted and listed. FILE.npz (no pickle needed to read it) holds:

    paths       (N,)    the embedded files
    embeddings  (ΣT, D) every file's patch embeddings, file after file
    offsets     (N+1,)  file i is embeddings[offsets[i]:offsets[i+1]]
    clip        (N, D)  the mean over each file's patches
    hop_seconds, encoder_checksum, skipped (the unreadable files)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from encoders.embedding import embed_sequences, with_patch_hop
from encoders.pretrained import load_encoder
from overtone.audio import BadFileLog, decode_many
from overtone.cli import absolute
from overtone.errors import BadValueError
from overtone.progress import track

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")


def find_audio(items: list[str]) -> list[Path]:
    paths = []
    for item in map(Path, items):
        if item.is_dir():
            paths += sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        elif item.is_file():
            paths.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    return paths


def embed_files(source: str, items: list[str], out: str | Path, *, hop_seconds: float = 0.0, workers: int = 2) -> dict:
    out = Path(out)
    if out.suffix != ".npz":
        out = out.with_name(out.name + ".npz")  # what np.savez would write: say so, and check that
    if out.is_dir() or (out.parent.exists() and not out.parent.is_dir()):
        raise BadValueError(f"--out={out}: a folder is in the way (or its parent is a file); give a new .npz file")
    paths = find_audio(items)
    if not paths:
        raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {items}")
    loaded = load_encoder(source)
    loaded.encoder.eval()
    frontend = with_patch_hop(loaded.frontend, hop_seconds) if hop_seconds else loaded.frontend
    bad_log = BadFileLog(1.0)
    readable: list[bool] = []
    waves = decode_many(paths, frontend.sample_rate, bad_log, readable, workers)
    sequences = list(track(embed_sequences(loaded.encoder, frontend, waves), len(paths), "embed"))
    kept = [p for p, ok in zip(paths, readable, strict=True) if ok]
    if not sequences:
        raise BadValueError(f"none of the {len(paths)} files could be decoded; first: {bad_log.bad[0][1]}")
    offsets = np.cumsum([0] + [len(s) for s in sequences])
    result = {
        "paths": np.array([str(p) for p in kept]),
        "embeddings": np.concatenate(sequences).astype(np.float32),
        "offsets": offsets,
        "clip": np.stack([s.mean(axis=0) for s in sequences]).astype(np.float32),
        "hop_seconds": np.float32(frontend.patch_seconds),
        "encoder_checksum": np.array(loaded.checksum),
        "skipped": np.array([path for path, _ in bad_log.bad], dtype=str),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial.npz")
    np.savez(partial, **result)
    partial.replace(out)  # complete or absent, never half-written
    return {"embedded": len(kept), "skipped": bad_log.bad, "out": str(out)}


def main(argv: list[str]) -> None:
    from absl import flags

    f = flags.FLAGS
    if len(argv) < 2:
        raise SystemExit("usage: python -m encoders.embed --encoder=DIR PATHS... --out=FILE.npz")
    source = f.encoder if f.encoder.startswith("random:") else absolute(f.encoder)
    report = embed_files(source, [absolute(a) for a in argv[1:]], absolute(f.out), hop_seconds=f.hop, workers=f.workers)
    print(f"embedded {report['embedded']} file(s) into {report['out']}; skipped {len(report['skipped'])} unreadable")
    for path, reason in report["skipped"]:
        print(f"  skipped {path}: {reason}")


if __name__ == "__main__":
    from absl import flags

    from overtone.cli import run_absl

    flags.DEFINE_string("encoder", None, "bundle folder, pretraining run, or random:NAME", required=True)
    flags.DEFINE_string("out", None, "output .npz", required=True)
    flags.DEFINE_float("hop", 0.0, "seconds between embeddings (default: the encoder's patch hop)")
    flags.DEFINE_integer("workers", 2, "decoding threads")
    run_absl(
        main,
        __doc__,
        examples=["python -m encoders.embed --encoder=bundles/mixup audio_folder/ more.wav --out=embeddings.npz"],
    )
