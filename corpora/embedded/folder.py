"""The embedded "your own data" example: a folder of class sub-folders rendered from the GM SoundFont.

Four classes as in the student project this toolkit was designed from: `piano`, `drums`,
`flute` and `other` (guitar, violin, trumpet, organ, saxophone or bass), `clips` 3-s clips of
each, 16 kHz mono WAV: ROOT/<class>/<class>_NNN.wav — the layout `corpora.folder` reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from corpora.embedded import soundfont

VERSION = 1
SECONDS, GRID = 3, 1600
PARTS = {
    "piano": dict(programs=(0, 1, 2), register=(40, 84)),
    "drums": dict(drum_keys=(35, 36, 38, 40, 42, 46, 49), period=2),
    "flute": dict(programs=(73, 72), register=(60, 90)),
    "other": dict(programs=(24, 40, 56, 16, 65, 32), register=(40, 76)),
}


def ensure_folder_corpus(cache_dir=None, *, clips: int = 20) -> Path:
    base = soundfont.base_dir(cache_dir)
    return soundfont.render_once(
        base / f"folder-4class-soundfont-v{VERSION}-{clips}",
        done=lambda root: all((root / name).is_dir() for name in PARTS),
        render=lambda folder: render(folder, clips=clips),
        estimated_bytes=len(PARTS) * clips * SECONDS * soundfont.SAMPLE_RATE * 2,
    )


def render(root: Path, *, clips: int, seed: int = 0) -> None:
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=soundfont.SAMPLE_RATE)
    sfid = synth.sfload(str(soundfont.soundfont_path()))
    rng = np.random.default_rng(seed)
    for name, part in PARTS.items():
        (root / name).mkdir(parents=True)
        for i in range(clips):
            stereo = soundfont.render_ensemble(
                synth, sfid, rng, [part], seconds=SECONDS, sample_rate=soundfont.SAMPLE_RATE, grid=GRID
            )
            wave = np.clip(stereo.mean(axis=1), -1.0, 1.0)
            sf.write(root / name / f"{name}_{i:03d}.wav", wave, soundfont.SAMPLE_RATE, subtype="PCM_16")
