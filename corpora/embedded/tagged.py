"""The embedded Freesound stand-in: tagged SoundFont clips written in the FSD50K layout.

Each clip is a single note, a three-note chord or a short melody of one GM instrument
(`soundfont.PROGRAMS`), 1–5 s long, tagged the way uploaders tag: the instrument's words
("nylon", "guitar"), its family and source, the kind of clip, the register and dynamics —
and, like real tags, with noise the tag processing must handle: capitals, plurals
("chords"), hyphens ("hi-fi"), numbers ("2019") and stop-words ("the"). The ground-truth
labels (the family, as an AudioSet-style name) only define the dev/eval split.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from corpora.embedded import soundfont
from corpora.nsynth import SOURCES

log = logging.getLogger(__name__)

VERSION = 1
KINDS = ("note", "chord", "melody")
NOISE_TAGS = ("the", "Sound", "2019", "hi-fi", "field-recording", "sample", "of")


def ensure_tagged_corpus(cache_dir=None, *, dev_clips: int = 320, eval_clips: int = 64) -> Path:
    base = soundfont.base_dir(cache_dir)
    return soundfont.render_once(
        base / f"fsd50k-soundfont-v{VERSION}-{dev_clips}-{eval_clips}",
        done=lambda root: (root / "FSD50K.ground_truth" / "eval.csv").is_file(),
        render=lambda folder: render(folder, dev_clips=dev_clips, eval_clips=eval_clips),
        estimated_bytes=(dev_clips + eval_clips) * 5 * soundfont.SAMPLE_RATE * 2,  # ≤ 5-s 16-bit clips
    )


def render(root: Path, *, dev_clips: int, eval_clips: int, seed: int = 0) -> None:
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=soundfont.SAMPLE_RATE)
    sfid = synth.sfload(str(soundfont.soundfont_path()))
    rng = np.random.default_rng(seed)
    instruments = [
        (family, program, source) for family, programs in soundfont.PROGRAMS.items() for program, source in programs
    ]
    for folder in ("FSD50K.dev_audio", "FSD50K.eval_audio", "FSD50K.metadata", "FSD50K.ground_truth"):
        (root / folder).mkdir(parents=True)
    fname = 1000
    for part, count in (("dev", dev_clips), ("eval", eval_clips)):
        metadata, rows = {}, []
        for i in range(count):
            family, program, source = instruments[rng.integers(len(instruments))]
            synth.program_select(0, sfid, 0, program)
            wave, tags = render_clip(synth, rng, family, program, source)
            name = synth.sfpreset_name(sfid, 0, program) or ""
            tags += [w for w in re.split(r"[^A-Za-z]+|(?<=[a-z])(?=[A-Z])", name) if len(w) > 2]
            fname += 1
            sf.write(root / f"FSD50K.{part}_audio" / f"{fname}.wav", wave, soundfont.SAMPLE_RATE, subtype="PCM_16")
            metadata[str(fname)] = {
                "title": f"{name} {tags[0]}",
                "description": "",
                "tags": tags,
                "license": "http://creativecommons.org/publicdomain/zero/1.0/",
                "uploader": "overtone",
            }
            row = {"fname": fname, "labels": family.capitalize(), "mids": f"/m/{family}"}
            if part == "dev":
                row["split"] = "val" if i % 8 == 0 else "train"
            rows.append(row)
        (root / "FSD50K.metadata" / f"{part}_clips_info_FSD50K.json").write_text(json.dumps(metadata, indent=1))
        with (root / "FSD50K.ground_truth" / f"{part}.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def render_clip(synth, rng: np.random.Generator, family: str, program: int, source: int):
    low, high = soundfont.PITCH_RANGES[family]
    kind = KINDS[rng.integers(len(KINDS))]
    velocity = int(rng.choice((40, 110)))
    base = int(rng.integers(low, max(low + 1, high - 7)))
    seconds = float(rng.uniform(1.0, 5.0))
    total = int(seconds * soundfont.SAMPLE_RATE)
    pieces = []
    if kind == "melody":
        step = int(rng.uniform(0.25, 0.5) * soundfont.SAMPLE_RATE)
        for start in range(0, total, step):
            pitch = base + int(rng.choice((0, 2, 4, 5, 7)))
            synth.noteon(0, pitch, velocity)
            pieces.append(synth.generate(min(step, total - start)))
            synth.noteoff(0, pitch)
    else:
        pitches = [base] if kind == "note" else [base, base + 4, base + 7]
        for pitch in pitches:
            synth.noteon(0, pitch, velocity)
        pieces.append(synth.generate(total))
        for pitch in pitches:
            synth.noteoff(0, pitch)
    synth.sounds_off()
    synth.generate(soundfont.SAMPLE_RATE // 10)
    stereo = np.frombuffer(b"".join(bytes(p) for p in pieces), dtype=np.float32).reshape(-1, 2)
    wave = np.clip(stereo.mean(axis=1), -1.0, 1.0)
    plural = rng.random() < 0.4
    tags = [
        kind + ("s" if plural and kind != "melody" else ""),
        family.replace("_", "-"),
        SOURCES[source],
        "low" if base < 55 else "high",
        "loud" if velocity > 64 else "soft",
    ]
    tags += list(rng.choice(NOISE_TAGS, size=2, replace=False))
    if rng.random() < 0.3:
        tags = [t.upper() if i == 0 else t for i, t in enumerate(tags)]
    return wave, tags
