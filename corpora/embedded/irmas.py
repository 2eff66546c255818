"""The embedded IRMAS stand-in: SoundFont excerpts in the official layout, 44.1 kHz stereo.

Training: for every IRMAS instrument, `recordings` renderings of 9 s, each cut into three 3-s
excerpts named as IRMAS names them (`[cel][dru][jaz_blu]0002__1.wav`). The tagged instrument
is predominant — it plays loud, all the time; half the recordings add a quiet accompanying
instrument of another class and some add drums (tag `[dru]`, else `[nod]`), so the task is
predominant-instrument recognition, as in IRMAS, not solo recognition.

Testing: `test_excerpts` mixtures of 5–10 s spread over the three test-part folders, one to
three instruments at comparable levels, each `.wav` beside a `.txt` listing every instrument
it contains (code + tab, one a line, as in the real files).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from corpora.embedded import soundfont
from corpora.irmas import CLASSES, GENRES, TEST_PARTS, TRAINING

VERSION = 1
SAMPLE_RATE = 44100
GRID = 4410  # note events on a 0.1-s grid
PROGRAMS = {
    "cel": (42,),
    "cla": (71,),
    "flu": (73,),
    "gac": (24, 25),
    "gel": (26, 27, 29),
    "org": (16, 19),
    "pia": (0, 1),
    "sax": (65, 66),
    "tru": (56,),
    "vio": (40,),
    "voi": (52, 53),
}
REGISTERS = {"cel": (36, 64), "flu": (60, 90), "voi": (48, 72), "gac": (40, 76), "gel": (40, 76), "vio": (55, 88)}
DRUMS = dict(drum_keys=(36, 38, 42, 46), period=2)


def ensure_irmas_corpus(cache_dir=None, *, recordings: int = 4, test_excerpts: int = 36) -> Path:
    base = soundfont.base_dir(cache_dir)
    return soundfont.render_once(
        base / f"irmas-soundfont-v{VERSION}-{recordings}-{test_excerpts}",
        done=lambda root: (root / TEST_PARTS[-1]).is_dir(),
        render=lambda folder: render(folder, recordings=recordings, test_excerpts=test_excerpts),
        estimated_bytes=(len(CLASSES) * recordings * 9 + test_excerpts * 10) * SAMPLE_RATE * 4,  # 16-bit stereo
    )


def part(code: str, velocity: tuple[int, int]) -> dict:
    return dict(programs=PROGRAMS[code], register=REGISTERS.get(code, (48, 84)), velocity=velocity)


def render(root: Path, *, recordings: int, test_excerpts: int, seed: int = 0) -> None:
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=SAMPLE_RATE)
    sfid = synth.sfload(str(soundfont.soundfont_path()))
    rng = np.random.default_rng(seed)
    excerpt = 3 * SAMPLE_RATE
    for code in CLASSES:
        folder = root / TRAINING / code
        folder.mkdir(parents=True)
        for number in range(1, recordings + 1):
            parts = [part(code, (95, 127))]
            if rng.random() < 0.5:
                parts.append(part(str(rng.choice([c for c in CLASSES if c != code])), (20, 45)))
            drums = rng.random() < 0.4
            parts += [DRUMS] if drums else []
            wave = soundfont.render_ensemble(synth, sfid, rng, parts, seconds=9, sample_rate=SAMPLE_RATE, grid=GRID)
            name = f"[{code}][{'dru' if drums else 'nod'}][{rng.choice(GENRES)}]{number:04d}"
            for k in range(3):
                sf.write(
                    folder / f"{name}__{k + 1}.wav",
                    _clip(wave[k * excerpt : (k + 1) * excerpt]),
                    SAMPLE_RATE,
                    subtype="PCM_16",
                )
    for i in range(test_excerpts):
        present = [str(c) for c in rng.choice(CLASSES, size=int(rng.integers(1, 4)), replace=False)]
        seconds = float(rng.integers(50, 101)) / 10
        wave = soundfont.render_ensemble(
            synth, sfid, rng, [part(c, (70, 120)) for c in present], seconds=seconds, sample_rate=SAMPLE_RATE, grid=GRID
        )
        folder = root / TEST_PARTS[i % 3] / f"Part{i % 3 + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{i:03d}-soundfont mixture-{len(present)}"
        sf.write(folder / f"{stem}.wav", _clip(wave), SAMPLE_RATE, subtype="PCM_16")
        (folder / f"{stem}.txt").write_text("".join(f"{c}\t\n" for c in present))


def _clip(stereo: np.ndarray) -> np.ndarray:
    return np.clip(stereo, -1.0, 1.0)
