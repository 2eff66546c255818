"""NSynth notes as training examples: find the corpus, select and scan it, load crops.

`load_corpus` reads a real NSynth when `data.root` or `$NSYNTH_DIR` names one (and fails
with the expected layout if it is not there); with neither set it says so loudly and uses
the embedded SoundFont corpus, unless `data.require_real` forbids that.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

from corpora import nsynth
from corpora.augment import AudioEffects
from corpora.corpus import Corpus, find_root
from corpora.embedded import soundfont
from corpora.scan import scan
from overtone.audio import BadFileLog, fit_length, load_audio, load_crop
from overtone.disk import cache_root
from overtone.errors import BadValueError

log = logging.getLogger(__name__)

EMBEDDED_BANNER = """
======================================================================
 No NSynth given (neither --config.data.root nor $NSYNTH_DIR is set).
 Training on the EMBEDDED corpus: NSynth-format notes rendered from the
 General MIDI SoundFont TimGM6mb.sf2 — small, for trying the toolkit,
 not for results. Point data.root at a real NSynth for those; set
 data.require_real=True to make a missing NSynth an error.
 Embedded corpus: {root}
======================================================================"""


SOURCES = ("files", "tfds")  # data.source: the official files, or a prepared TensorFlow Datasets copy


def locate(data) -> tuple[Path, bool]:
    """(root, embedded?) from the data config and the environment (`corpora.corpus.find_root`);
    with `data.source=tfds`, the official layout converted once from the prepared TFDS copy in
    `data.tfds_dir` (corpora/nsynth_tfds.py)."""
    source = data.get("source", "files")
    if source == "tfds":
        from corpora.nsynth_tfds import official_layout

        if data.root:
            raise BadValueError("data.source=tfds reads data.tfds_dir; data.root names the official files: give one")
        return official_layout(data.tfds_dir, data.tfds_name, data.extract_dir), False
    if source != "files":
        raise BadValueError(f"unknown data.source {source!r}; valid: {list(SOURCES)}")
    if data.get("tfds_dir"):
        raise BadValueError("data.tfds_dir is read only with data.source=tfds: add --config.data.source=tfds")
    embedded = data.embedded
    return find_root(
        data,
        what="NSynth",
        variable="NSYNTH_DIR",
        expected="a folder holding nsynth-{train,valid,test}/ (examples.json + audio/) "
        "or nsynth-{train,valid,test}.jsonwav.tar.gz",
        embedded=lambda: soundfont.ensure_corpus(
            embedded.cache_dir or None, pitch_step=embedded.pitch_step, velocities=tuple(embedded.velocities)
        ),
        banner=EMBEDDED_BANNER,
    )


def read_notes(data, root: Path, splits) -> dict[str, list[nsynth.Note]]:
    """The notes of each split as `data.splits` forms them (nsynth.SPLIT_SCHEMES)."""
    scheme, extract_dir = data.get("splits", "official"), data.extract_dir or None
    if scheme == "zhong_pooled":
        pooled = nsynth.zhong_pooled(root, extract_dir=extract_dir)
        return {split: pooled[split] for split in splits}
    if scheme != "official":
        raise BadValueError(f"unknown data.splits {scheme!r}; valid: {list(nsynth.SPLIT_SCHEMES)}")
    return {split: nsynth.read_split(root, split, extract_dir=extract_dir) for split in splits}


def load_corpus(data, *, bad_log: BadFileLog, splits=nsynth.SPLITS) -> Corpus:
    root, embedded = locate(data)
    cache_dir = data.embedded.cache_dir or cache_root()
    out, report = {}, {"root": str(root), "embedded": embedded, "splits": {}, "scheme": data.get("splits", "official")}
    listed = read_notes(data, root, splits)
    for split in splits:
        notes = listed[split]
        chosen = nsynth.select(
            notes,
            families=tuple(data.families),
            sources=tuple(data.sources),
            pitch_min=data.pitch_min,
            pitch_max=data.pitch_max,
        )
        skipped_before = len(bad_log.bad)
        if data.drop_silent:
            kept, silent, _ = scan(
                chosen,
                bad_log=bad_log,
                silence_threshold=data.silence_threshold,
                silence_measure=data.get("silence_measure", "peak"),
                cache_dir=cache_dir,
                workers=data.workers,
                what=f"NSynth {split}",
            )
        else:
            kept, silent = chosen, 0
        report["splits"][split] = {
            "listed": len(notes),
            "selected": len(chosen),
            "silent_dropped": silent,
            "unreadable_skipped": len(bad_log.bad) - skipped_before,
            "used": len(kept),
        }
        log.info("NSynth %s: %s", split, report["splits"][split])
        if not kept:
            raise BadValueError(
                f"no usable notes left in split {split!r} of {root} after filtering: {report['splits'][split]}"
            )
        out[split] = kept
    instruments = max((n.instrument for notes in out.values() for n in notes), default=0)
    return Corpus(
        root=root,
        embedded=embedded,
        splits=out,
        report=report,
        num_classes={"family": len(nsynth.FAMILIES), "instrument": instruments + 1},
        make_loader=functools.partial(
            NoteLoader,
            effects=AudioEffects({k: v for k, v in data.augment.items() if k != "concat_prob"}),
            concat_prob=data.augment.concat_prob,
            same_instrument=_by_instrument(out["train"]),
        ),
    )


def _by_instrument(notes: list[nsynth.Note]) -> dict[int, list[nsynth.Note]]:
    index: dict[int, list[nsynth.Note]] = {}
    for note in notes:
        index.setdefault(note.instrument, []).append(note)
    return index


class NoteLoader:
    """Note → {'audio', labels…, 'weight'}: a crop of `num_samples` at a random offset in
    [0, max_offset] when given an RNG (training), at the note's onset otherwise (evaluation).
    A note that fails to decode yields silence with weight 0 and is counted in `bad_log`.

    Training-only augmentation (Zhong et al.): with probability `concat_prob` the crop is
    taken instead from two silence-trimmed notes of the same instrument joined end to end
    (the label is unchanged), and `effects` (corpora.augment) then process the crop."""

    def __init__(
        self,
        num_samples: int,
        max_offset: int,
        bad_log: BadFileLog,
        sample_rate: int = 16000,
        *,
        effects: AudioEffects | None = None,
        concat_prob: float = 0.0,
        same_instrument: dict[int, list[nsynth.Note]] | None = None,
        read=load_audio,  # load_audio's signature; a PcmCache's `load` (corpora/pcm_cache.py)
    ):
        if concat_prob and not same_instrument:
            raise BadValueError("note concatenation needs the training notes grouped by instrument")
        self.num_samples = num_samples
        self.max_offset = max_offset
        self.bad_log = bad_log
        self.sample_rate = sample_rate
        self.effects = effects if effects is not None and effects.active else None
        self.concat_prob = concat_prob
        self.same_instrument = same_instrument or {}
        self.read = read

    def _source(self, note: nsynth.Note, rng: np.random.Generator | None):
        """(read, offset) for `load_crop`: the note itself at a random offset in [0, max_offset]
        (training) or its onset, or (training, with probability `concat_prob`) two silence-trimmed
        notes of its instrument joined end to end, at a random start."""
        if rng is None or not self.concat_prob or rng.random() >= self.concat_prob:
            return self.read, int(rng.integers(0, self.max_offset + 1)) if rng is not None and self.max_offset else 0
        partners = self.same_instrument.get(note.instrument, [note])
        partner = partners[rng.integers(len(partners))]

        def joined(path, *, sample_rate, offset, num_samples):
            del path, offset  # a random start in the joined notes instead
            wave = np.concatenate([trim_silence(self.read(n.path, sample_rate=sample_rate)) for n in (note, partner)])
            start = int(rng.integers(0, max(0, len(wave) - num_samples) + 1))
            return fit_length(wave[start:], num_samples)

        return joined, 0

    def __call__(self, note: nsynth.Note, rng: np.random.Generator | None) -> dict[str, np.ndarray]:
        read, offset = self._source(note, rng)
        audio, weight = load_crop(
            note.path, self.num_samples, self.bad_log, sample_rate=self.sample_rate, offset=offset, read=read
        )
        if self.effects is not None and rng is not None and weight:
            audio = self.effects(audio, rng)
        return {
            "audio": audio,
            "family": np.int32(note.family),
            "instrument": np.int32(note.instrument),
            "source": np.int32(note.source),
            "pitch": np.int32(note.pitch),
            "velocity": np.int32(note.velocity),
            "qualities": np.asarray(note.qualities, np.float32),
            "weight": np.float32(weight),
        }


def trim_silence(wave: np.ndarray, top_db: float = 40.0) -> np.ndarray:
    """Drop leading and trailing samples more than `top_db` below the note's peak."""
    peak = float(np.max(np.abs(wave), initial=0.0))
    loud = np.flatnonzero(np.abs(wave) > peak * 10.0 ** (-top_db / 20.0)) if peak > 0 else []
    return wave[loud[0] : loud[-1] + 1] if len(loud) else wave[:0]
