"""The embedded default corpus: NSynth-format notes rendered from a General MIDI SoundFont.

When no NSynth is on disk, pretraining still runs on real sampled instruments: `pretty_midi`
ships the GM SoundFont `TimGM6mb.sf2` and `tinysoundfont` renders it. Each note is NSynth's
shape: 16 kHz, 16-bit mono, 4 s long, key held for 3 s then released, at a real MIDI pitch
and velocity. The result is written in the official layout (`nsynth-<split>/examples.json`
+ `audio/<note_str>.wav`), so the NSynth reader reads it unchanged.

GM program → NSynth family (0-based GM program numbers). The GM "ensemble", "pad", "effects"
and percussion programs are left out; free reeds (accordion, harmonica, bandoneon, bagpipe,
shehnai) go to `reed`, plucked folk strings (sitar, banjo, shamisen, koto) to `guitar`,
bowed ones (violin … contrabass, fiddle, string sections) to `string`. As in the real
release, valid and test instruments are unseen in train: within each family the programs
are listed in GM order and the 2nd goes to valid, the 3rd to test, the rest to train.

Qualities. NSynth's were annotated by people; here five are measured on the rendered note
(`describe`), so they are heuristic but tied to the sound: bright / dark when the power-
spectrum centroid of the first second is above 1600 Hz / below 300 Hz (about the top and
bottom fifth of this corpus), fast_decay when the level at 2.5–3 s is under a tenth of the
first half-second's, long_release when the level 0.3–0.6 s after note-off is over 0.3 of
the level before it, percussive when the envelope peaks within 30 ms and has halved by
0.25 s. distortion marks the overdriven GM programs (29, 30, 84). multiphonic,
nonlinear_env, reverb and tempo-synced are never set.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from corpora.nsynth import FAMILIES, QUALITIES, SOURCES
from overtone.disk import cache_root, ensure_free
from overtone.errors import BadValueError

log = logging.getLogger(__name__)

CORPUS_VERSION = 2
SAMPLE_RATE = 16000
NOTE_SECONDS, HOLD_SECONDS = 4.0, 3.0
VELOCITIES = (25, 50, 75, 100, 127)  # NSynth's velocity grid

# family → ((GM program, source), ...); source index into SOURCES.
A, E, S = 0, 1, 2
PROGRAMS: dict[str, tuple[tuple[int, int], ...]] = {
    "bass": ((32, A), (33, E), (34, E), (35, E), (36, E), (37, E), (38, S), (39, S)),
    "brass": ((56, A), (57, A), (58, A), (59, A), (60, A), (61, A), (62, S), (63, S)),
    "flute": ((72, A), (73, A), (74, A), (75, A), (76, A), (77, A), (78, A), (79, A)),
    "guitar": (
        (24, A),
        (25, A),
        (26, E),
        (27, E),
        (28, E),
        (29, E),
        (30, E),
        (31, E),
        (104, A),
        (105, A),
        (106, A),
        (107, A),
    ),
    "keyboard": ((0, A), (1, A), (2, E), (3, A), (4, E), (5, E), (6, A), (7, E)),
    "mallet": ((8, A), (9, A), (10, A), (11, A), (12, A), (13, A), (14, A), (15, A), (108, A), (114, A)),
    "organ": ((16, E), (17, E), (18, E), (19, A), (20, A)),
    "reed": (
        (64, A),
        (65, A),
        (66, A),
        (67, A),
        (68, A),
        (69, A),
        (70, A),
        (71, A),
        (21, A),
        (22, A),
        (23, A),
        (109, A),
        (111, A),
    ),
    "string": (
        (40, A),
        (41, A),
        (42, A),
        (43, A),
        (44, A),
        (45, A),
        (46, A),
        (48, A),
        (49, A),
        (50, S),
        (51, S),
        (110, A),
    ),
    "synth_lead": ((80, S), (81, S), (82, S), (83, S), (84, S), (85, S), (86, S), (87, S)),
    "vocal": ((52, A), (53, A), (54, S)),
}

# Inclusive MIDI pitch ranges the family's instruments play in (NSynth spans 9-120).
PITCH_RANGES = {
    "bass": (28, 60),
    "brass": (40, 80),
    "flute": (60, 96),
    "guitar": (40, 84),
    "keyboard": (28, 100),
    "mallet": (53, 100),
    "organ": (36, 90),
    "reed": (43, 86),
    "string": (36, 96),
    "synth_lead": (36, 96),
    "vocal": (45, 80),
}


def split_of(rank: int) -> str:
    """Split of the `rank`-th program of a family (GM order)."""
    return {1: "valid", 2: "test"}.get(rank, "train")


def base_dir(cache_dir: str | Path | None) -> Path:
    """The folder the embedded corpora are rendered into: `cache_dir`, else the toolkit's cache."""
    return Path(cache_dir) if cache_dir else cache_root()


def soundfont_path() -> Path:
    import pretty_midi

    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise FileNotFoundError(f"the General MIDI SoundFont is missing from the pretty_midi package: {path}")
    return path


def ensure_corpus(
    cache_dir: str | Path | None = None,
    *,
    pitch_step: int = 6,
    velocities: tuple[int, ...] = (50, 100),
) -> Path:
    """Root of the rendered corpus, rendering it first if this variant is not cached yet.

    The folder name encodes the variant, so different settings never overwrite each other;
    rendering goes to a temporary folder renamed when complete, so an interrupted render is
    redone rather than half-used.
    """
    velocities = tuple(int(v) for v in velocities)
    bad = sorted(set(velocities) - set(VELOCITIES))
    if bad or not velocities or pitch_step < 1:
        raise BadValueError(f"velocities must be a non-empty subset of {VELOCITIES} (got {bad}); pitch_step >= 1")
    base = base_dir(cache_dir)
    tag = f"nsynth-soundfont-v{CORPUS_VERSION}-step{pitch_step}-vel{'_'.join(map(str, velocities))}"
    return render_once(
        base / tag,
        done=lambda root: all((root / f"nsynth-{s}" / "examples.json").is_file() for s in ("train", "valid", "test")),
        render=lambda folder: render(folder, pitch_step=pitch_step, velocities=velocities),
        estimated_bytes=NOTE_SECONDS
        * SAMPLE_RATE
        * 2
        * len(velocities)
        * sum(len(PROGRAMS[f]) * len(range(PITCH_RANGES[f][0], PITCH_RANGES[f][1] + 1, pitch_step)) for f in PROGRAMS),
    )


def render_once(root: Path, *, done, render, estimated_bytes: float = 0.0) -> Path:
    """`root` if `done(root)`; else `render` into a temporary sibling of this process's own,
    renamed to `root` when complete — an interrupted render is redone, never half-used.
    Processes on one machine that want the same corpus at once (parallel tests, several
    workers) render it once: the others wait on a lock beside it, then find it done; across
    machines sharing a folder, the first render finished is kept."""
    if done(root):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, however this process ends
        if done(root):
            return root
        ensure_free(root.parent, estimated_bytes, f"rendering the embedded corpus {root.name}")
        for stale in root.parent.glob(f".{root.name}.partial-*"):  # a killed render's: no one else holds the lock
            shutil.rmtree(stale, ignore_errors=True)
        partial = root.parent / f".{root.name}.partial-{os.getpid()}"
        log.info("rendering the embedded corpus %s (once)", root)
        render(partial)
        if not done(root):
            shutil.rmtree(root, ignore_errors=True)  # an unfinished leftover of an older layout
            try:
                partial.rename(root)
            except OSError:
                if not done(root):
                    raise
        shutil.rmtree(partial, ignore_errors=True)
    return root


def render(root: Path, *, pitch_step: int, velocities: tuple[int, ...]) -> None:
    try:
        import tinysoundfont
    except ImportError as err:
        raise ImportError(
            "the embedded corpus needs tinysoundfont: pip install --no-deps tinysoundfont "
            "(or point data.root / NSYNTH_DIR at a real NSynth)"
        ) from err
    synth = tinysoundfont.Synth(samplerate=SAMPLE_RATE)
    sfid = synth.sfload(str(soundfont_path()))
    examples: dict[str, dict] = {s: {} for s in ("train", "valid", "test")}
    instrument = 0
    for family_id, family in enumerate(FAMILIES):
        low, high = PITCH_RANGES[family]
        for rank, (program, source) in enumerate(PROGRAMS[family]):
            split = split_of(rank)
            folder = root / f"nsynth-{split}" / "audio"
            folder.mkdir(parents=True, exist_ok=True)
            instrument_str = f"{family}_{SOURCES[source]}_{program:03d}"
            synth.program_select(0, sfid, 0, program)
            for pitch in range(low, high + 1, pitch_step):
                for velocity in velocities:
                    wave = render_note(synth, pitch, velocity)
                    note_str = f"{instrument_str}-{pitch:03d}-{velocity:03d}"
                    sf.write(folder / f"{note_str}.wav", wave, SAMPLE_RATE, subtype="PCM_16")
                    examples[split][note_str] = {
                        "note": len(examples[split]),
                        "note_str": note_str,
                        "instrument": instrument,
                        "instrument_str": instrument_str,
                        "pitch": pitch,
                        "velocity": velocity,
                        "sample_rate": SAMPLE_RATE,
                        "qualities": (flags := describe(wave, program)),
                        "qualities_str": [q for q, f in zip(QUALITIES, flags, strict=True) if f],
                        "instrument_family": family_id,
                        "instrument_family_str": family,
                        "instrument_source": source,
                        "instrument_source_str": SOURCES[source],
                        "gm_program": program,
                    }
            instrument += 1
    for split, entries in examples.items():
        (root / f"nsynth-{split}" / "examples.json").write_text(json.dumps(entries, indent=1))


def render_note(synth, pitch: int, velocity: int) -> np.ndarray:
    """One 4-s mono note: key down for 3 s, then the release tail."""
    hold = int(HOLD_SECONDS * SAMPLE_RATE)
    tail = int(NOTE_SECONDS * SAMPLE_RATE) - hold
    synth.noteon(0, pitch, velocity)
    held = np.frombuffer(synth.generate(hold), dtype=np.float32)
    synth.noteoff(0, pitch)
    released = np.frombuffer(synth.generate(tail), dtype=np.float32)
    synth.sounds_off()
    synth.generate(SAMPLE_RATE // 10)  # flush voices so the next note starts from silence
    stereo = np.concatenate([held, released]).reshape(-1, 2)
    return np.clip(stereo.mean(axis=1), -1.0, 1.0)


DISTORTED_PROGRAMS = (29, 30, 84)


def describe(wave: np.ndarray, program: int) -> list[int]:
    """NSynth quality flags measured on one rendered note (see the module docstring)."""

    # RMS levels from running sums of squares: the 10-ms envelope below is 400 of them per note,
    # one numpy call each took most of a render
    energy = np.concatenate([[0.0], np.cumsum(np.square(wave, dtype=np.float64))])

    def level(start: float, stop: float) -> float:
        first, last = int(start * SAMPLE_RATE), int(stop * SAMPLE_RATE)
        return float(np.sqrt((energy[last] - energy[first]) / (last - first)) + 1e-12)

    head = wave[SAMPLE_RATE // 10 : SAMPLE_RATE // 10 + SAMPLE_RATE]
    power = np.abs(np.fft.rfft(head * np.hanning(len(head)))) ** 2
    frequencies = np.fft.rfftfreq(len(head), 1 / SAMPLE_RATE)
    centroid = float((power * frequencies).sum() / power.sum()) if power.sum() > 1e-12 else 0.0
    bounds = np.array([int(t / 100 * SAMPLE_RATE) for t in range(int(NOTE_SECONDS * 100) + 1)])
    envelope = np.sqrt(np.maximum(np.diff(energy[bounds]), 0.0) / np.diff(bounds)) + 1e-12
    held = level(2.5, HOLD_SECONDS)
    flags = {
        "bright": centroid > 1600.0,
        "dark": 0.0 < centroid < 300.0,
        "distortion": program in DISTORTED_PROGRAMS,
        "fast_decay": held < 0.1 * level(0.0, 0.5),
        "long_release": held > 1e-3 and level(HOLD_SECONDS + 0.3, HOLD_SECONDS + 0.6) > 0.3 * held,
        "percussive": envelope.argmax() < 3 and envelope[25] < 0.5 * envelope.max(),
    }
    return [int(flags.get(q, False)) for q in QUALITIES]


def render_ensemble(
    synth, sfid: int, rng: np.random.Generator, parts: list[dict], *, seconds: float, sample_rate: int, grid: int
) -> np.ndarray:
    """Several instruments playing at once → (samples, 2) stereo float32.

    Time runs on a grid of `grid` samples. A melodic part is `dict(programs=(GM …), register=(low,
    high), velocity=(low, high))`: one of its programs plays random notes of the register, each
    2–8 grid steps long, back to back. A drum part is `dict(drum_keys=(…), period=k)`: one of its
    keys on the GM drum kit every k steps from a random phase. `synth` must run at `sample_rate`.
    """
    steps = int(seconds * sample_rate) // grid
    events: dict[int, list[tuple]] = {}  # step → [(on?, channel, key, velocity)]
    for channel, part in enumerate(parts):
        if "drum_keys" in part:
            synth.program_select(9, sfid, 128, 0, is_drums=True)
            period = part["period"]
            for t in range(int(rng.integers(0, period)), steps, period):
                events.setdefault(t, []).append((True, 9, int(rng.choice(part["drum_keys"])), 100))
            continue
        synth.program_select(channel, sfid, 0, int(rng.choice(part["programs"])))
        low, high = part.get("register", (48, 84))
        quiet, loud = part.get("velocity", (60, 120))
        t = 0
        while t < steps:
            length, key = int(rng.integers(2, 9)), int(rng.integers(low, high + 1))
            events.setdefault(t, []).append((True, channel, key, int(rng.integers(quiet, loud))))
            events.setdefault(min(t + length, steps), []).append((False, channel, key, 0))
            t += length
    pieces = []
    for t in range(steps):
        for on, channel, key, velocity in sorted(events.get(t, []), key=lambda e: e[0]):
            synth.noteon(channel, key, velocity) if on else synth.noteoff(channel, key)
        pieces.append(bytes(synth.generate(grid)))
    synth.sounds_off()
    synth.generate(sample_rate // 5)  # flush voices so the next clip starts from silence
    return np.frombuffer(b"".join(pieces), dtype=np.float32).reshape(-1, 2)
