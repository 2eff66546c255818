"""The embedded OpenMIC-2018 stand-in: 10-s SoundFont mixtures in the official layout.

Each clip mixes one to three of the OpenMIC classes that General MIDI can play (mandolin and
ukulele have no GM program and never occur), each instrument playing random notes of its
register, drums and cymbals on the GM drum kit. Labels are partial, as in the real set: the
instruments present are observed positives (one in five hidden again), two to four absent
classes are observed negatives, the rest unobserved (Y_true 0.5, Y_mask False).

`X` keeps the real file's shape and type, (N, 10, 128) uint8, but cannot hold AudioSet
VGGish embeddings (those weights are not available offline): row t holds the mean and the
standard deviation over second t of 64 VGGish-style log-mel bands, mapped linearly to 0..255
(mean from [−5, 7], std from [0, 4]). Audio is written too (`audio/NNN/<key>.ogg`).
"""

from __future__ import annotations

import json
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from corpora.embedded import soundfont
from corpora.openmic import CLASSES

VERSION = 2  # 2: features from librosa's log-mel (the readers know no encoder)
SECONDS, STEP = 10, 2000  # 10-s clips, events on a 0.125-s grid
PROGRAMS = {
    "accordion": (21,),
    "banjo": (105,),
    "bass": (32, 33),
    "cello": (42,),
    "clarinet": (71,),
    "flute": (73,),
    "guitar": (24, 25, 27),
    "mallet_percussion": (11, 12, 13),
    "organ": (16, 19),
    "piano": (0, 1),
    "saxophone": (65, 66),
    "synthesizer": (80, 81),
    "trombone": (57,),
    "trumpet": (56,),
    "violin": (40,),
    "voice": (52, 53),
}
DRUM_KEYS = {"drums": (36, 38, 42), "cymbals": (49, 51, 57)}
REGISTERS = {"bass": (28, 52), "cello": (36, 64), "trombone": (40, 67), "voice": (48, 72), "flute": (60, 90)}
PLAYABLE = tuple(c for c in CLASSES if c in PROGRAMS or c in DRUM_KEYS)


def ensure_openmic_corpus(cache_dir=None, *, clips: int = 240, test_fraction: float = 0.2) -> Path:
    base = soundfont.base_dir(cache_dir)
    return soundfont.render_once(
        base / f"openmic-soundfont-v{VERSION}-{clips}",
        done=lambda root: (root / "partitions" / "split01_test.csv").is_file(),
        render=lambda folder: render(folder, clips=clips, test_fraction=test_fraction),
        estimated_bytes=clips * SECONDS * soundfont.SAMPLE_RATE * 0.5,  # ogg ≈ 8 kB/s, plus features
    )


def render(root: Path, *, clips: int, test_fraction: float, seed: int = 0) -> None:
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=soundfont.SAMPLE_RATE)
    sfid = synth.sfload(str(soundfont.soundfont_path()))
    rng = np.random.default_rng(seed)
    keys, waves = [], []
    y_true = np.full((clips, len(CLASSES)), 0.5, np.float32)
    y_mask = np.zeros((clips, len(CLASSES)), bool)
    for i in range(clips):
        present = list(rng.choice(PLAYABLE, size=int(rng.integers(1, 4)), replace=False))
        waves.append(render_mixture(synth, sfid, rng, present))
        keys.append(f"{i:06d}_{int(rng.integers(0, 100)) * 960}")
        for name in present:
            c = CLASSES.index(name)
            y_true[i, c], y_mask[i, c] = 1.0, rng.random() >= 0.2
        absent = [c for c in range(len(CLASSES)) if CLASSES[c] not in present]
        for c in rng.choice(absent, size=int(rng.integers(2, 5)), replace=False):
            y_true[i, c], y_mask[i, c] = 0.0, True
        folder = root / "audio" / keys[-1][:3]
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{keys[-1]}.ogg", waves[-1], soundfont.SAMPLE_RATE, format="OGG", subtype="VORBIS")
    np.savez(
        root / "openmic-2018.npz",
        X=features(np.stack(waves)),
        Y_true=y_true,
        Y_mask=y_mask,
        sample_key=np.asarray(keys),
    )
    (root / "class-map.json").write_text(json.dumps({name: i for i, name in enumerate(CLASSES)}, indent=1))
    order = rng.permutation(clips)
    cut = int(round(test_fraction * clips))
    (root / "partitions").mkdir()
    for name, rows in (("test", order[:cut]), ("train", order[cut:])):
        (root / "partitions" / f"split01_{name}.csv").write_text("".join(f"{keys[r]}\n" for r in sorted(rows)))


def render_mixture(synth, sfid: int, rng: np.random.Generator, present: list[str]) -> np.ndarray:
    parts = [
        dict(drum_keys=DRUM_KEYS[name], period=4 if name == "drums" else 16)
        if name in DRUM_KEYS
        else dict(programs=PROGRAMS[name], register=REGISTERS.get(name, (48, 84)))
        for name in present
    ]
    stereo = soundfont.render_ensemble(
        synth, sfid, rng, parts, seconds=SECONDS, sample_rate=soundfont.SAMPLE_RATE, grid=STEP
    )
    return np.clip(stereo.mean(axis=1), -1.0, 1.0)


def features(waves: np.ndarray) -> np.ndarray:
    """(N, samples) → (N, 10, 128) uint8: per-second means and standard deviations of a
    VGGish-style log-mel spectrogram (librosa: 25-ms periodic Hann windows in 512-point FFTs,
    10-ms hop, 64 HTK mel bands 125–7500 Hz, magnitude, log(mel + 0.01))."""
    tail = 512 - 160  # pad so 10 s give at least 1000 frames
    mel = librosa.feature.melspectrogram(
        y=np.pad(waves, ((0, 0), (0, tail))),
        sr=soundfont.SAMPLE_RATE,
        n_fft=512,
        win_length=400,
        hop_length=160,
        window="hann",
        center=False,
        power=1.0,
        n_mels=64,
        fmin=125.0,
        fmax=7500.0,
        htk=True,
        norm=None,
    )
    logmel = np.log(mel + 0.01).transpose(0, 2, 1)[:, : SECONDS * 100]
    seconds = logmel.reshape(len(waves), SECONDS, 100, 64)
    mean = np.clip((seconds.mean(axis=2) + 5.0) / 12.0, 0, 1)
    std = np.clip(seconds.std(axis=2) / 4.0, 0, 1)
    return np.round(255 * np.concatenate([mean, std], axis=-1)).astype(np.uint8)
