"""NSynth reader on fixtures written in the official layout (folders and .jsonwav.tar.gz)."""

import io
import json
import tarfile

import numpy as np
import pytest
from conftest import nsynth_entry, tone, write_nsynth_split
from ml_collections import ConfigDict

import corpora.scan
from configs import _common
from corpora import nsynth
from corpora.notes import NoteLoader, load_corpus
from corpora.scan import scan
from overtone.audio import BadFileLog


def fixture_notes():
    """Six notes: two families, three pitches, one silent, one corrupt."""
    specs = [
        ("keyboard_acoustic_004-060-100", 4, 4, 0, 60, tone(261.6)),
        ("keyboard_acoustic_004-072-050", 4, 4, 0, 72, tone(523.3)),
        ("bass_electronic_018-022-100", 18, 0, 1, 22, tone(29.1)),
        ("bass_electronic_018-040-100", 18, 0, 1, 40, tone(82.4)),
        ("bass_electronic_018-041-100", 18, 0, 1, 41, np.zeros(64000, np.float32)),
        ("keyboard_acoustic_004-050-127", 4, 4, 0, 50, b"RIFF....WAVEjunk"),
    ]
    return {
        s: (nsynth_entry(s, instrument=i, family=f, source=src, pitch=p, velocity=int(s[-3:])), audio)
        for s, i, f, src, p, audio in specs
    }


@pytest.fixture
def root(tmp_path):
    for split in nsynth.SPLITS:
        write_nsynth_split(tmp_path, split, fixture_notes())
    return tmp_path


def test_reads_every_field(root):
    notes = nsynth.read_split(root, "train")
    assert [n.note_str for n in notes] == sorted(fixture_notes())
    bass = notes[0]
    assert (bass.instrument, bass.family, bass.family_str, bass.source, bass.pitch, bass.velocity) == (
        18,
        0,
        "bass",
        1,
        22,
        100,
    )
    assert bass.instrument_str == "bass_electronic_018"
    assert bass.qualities == (0,) * 10
    assert bass.path == root / "nsynth-train" / "audio" / "bass_electronic_018-022-100.wav"


def test_filters_by_family_source_and_pitch(root):
    notes = nsynth.read_split(root, "valid")
    assert {n.family_str for n in nsynth.select(notes, families=("bass",))} == {"bass"}
    assert len(nsynth.select(notes, sources=("acoustic",))) == 3
    assert [n.pitch for n in nsynth.select(notes, pitch_min=40, pitch_max=60)] == [40, 41, 50, 60]
    with pytest.raises(ValueError, match="unknown NSynth family"):
        nsynth.select(notes, families=("kazoo",))


def test_scan_drops_silent_and_counts_corrupt_then_caches(root, tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.mktemp("cache")
    notes = nsynth.read_split(root, "train")
    bad = BadFileLog(0.5)
    kept, silent, _ = scan(notes, bad_log=bad, silence_threshold=1e-4, cache_dir=cache)
    assert silent == 1
    assert {n.note_str for n in kept} == set(fixture_notes()) - {
        "bass_electronic_018-041-100",
        "keyboard_acoustic_004-050-127",
    }
    assert len(bad.bad) == 1 and "keyboard_acoustic_004-050-127.wav" in bad.bad[0][1]
    # second scan reads no audio at all
    monkeypatch.setattr(corpora.scan, "load_audio", lambda *a, **k: pytest.fail("audio decoded despite cache"))
    again, silent_again, _ = scan(notes, bad_log=BadFileLog(0.5), silence_threshold=1e-4, cache_dir=cache)
    assert [n.note_str for n in again] == [n.note_str for n in kept] and silent_again == 1


def test_scan_cache_notices_changed_files(root, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    notes = nsynth.select(nsynth.read_split(root, "train"), families=("bass",))
    scan(notes, bad_log=BadFileLog(1.0), silence_threshold=1e-4, cache_dir=cache)
    import soundfile as sf

    sf.write(notes[2].path, tone(100.0), 16000, subtype="PCM_16")  # the silent note gains sound
    kept, silent, _ = scan(notes, bad_log=BadFileLog(1.0), silence_threshold=1e-4, cache_dir=cache)
    assert silent == 0 and len(kept) == 3


def test_too_many_bad_files_stop_the_scan(root):
    notes = nsynth.read_split(root, "train")
    with pytest.raises(RuntimeError, match="1 of 6 audio files were unreadable"):
        scan(notes, bad_log=BadFileLog(0.1), silence_threshold=1e-4, cache_dir=None)


def make_archive(tmp_path, split, notes, *, extra_member=None):
    folder = write_nsynth_split(tmp_path / "staging", split, notes)
    archive = tmp_path / "data" / f"nsynth-{split}.jsonwav.tar.gz"
    archive.parent.mkdir(exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=f"nsynth-{split}")
        if extra_member is not None:
            info = tarfile.TarInfo(extra_member)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    return archive


def test_tar_archive_is_unpacked_once_and_read(tmp_path):
    archive = make_archive(tmp_path, "test", fixture_notes())
    notes = nsynth.read_split(archive.parent, "test")
    assert len(notes) == 6 and notes[0].path.is_file()
    assert not list(archive.parent.glob(".*partial"))
    archive.unlink()  # the unpacked folder is used from now on
    assert len(nsynth.read_split(archive.parent, "test")) == 6


def test_tar_member_escaping_the_target_is_refused(tmp_path):
    archive = make_archive(tmp_path, "valid", fixture_notes(), extra_member="../../escaped.txt")
    with pytest.raises(nsynth.NSynthFormatError, match="cannot unpack"):
        nsynth.read_split(archive.parent, "valid")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path.parent / "escaped.txt").exists()
    assert not (archive.parent / "nsynth-valid").exists()


def test_missing_split_says_what_was_expected(tmp_path):
    with pytest.raises(nsynth.NSynthFormatError, match=r"nsynth-train/examples.json.*jsonwav.tar.gz"):
        nsynth.read_split(tmp_path, "train")
    with pytest.raises(nsynth.NSynthFormatError, match="does not exist"):
        nsynth.read_split(tmp_path / "nope", "train")


def _entry(**fields) -> dict:
    return {"instrument": 1, "pitch": 60, "velocity": 100, "instrument_family": 0, "instrument_source": 0} | fields


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "JSON object keyed by note_str"),
        (json.dumps({"a": 5}), "entry 'a': expected an object"),
        (json.dumps({"a": {"pitch": 60}}), r"entry 'a': missing field\(s\) \['instrument', 'velocity'"),
        (
            json.dumps(
                {"a": {"instrument": 1, "pitch": "high", "velocity": 1, "instrument_family": 0, "instrument_source": 0}}
            ),
            "entry 'a': pitch must be an integer in 0..127, got 'high'",
        ),
        (
            json.dumps(
                {"a": {"instrument": 1, "pitch": 60, "velocity": 1, "instrument_family": 11, "instrument_source": 0}}
            ),
            "instrument_family must be an integer in 0..10, got 11",
        ),
        (
            json.dumps(
                {
                    "a": {
                        "instrument": 1,
                        "pitch": 60,
                        "velocity": 1,
                        "instrument_family": 1,
                        "instrument_source": 0,
                        "qualities": [1],
                    }
                }
            ),
            "qualities must be a list of 10",
        ),
        # what a careless export or a hostile file holds: each one line naming the entry and field
        (json.dumps({"a": _entry(note_str=5)}), "entry 'a': note_str 5 is not a plain file name"),
        (json.dumps({"a": _entry(note_str="../../etc/passwd")}), "is not a plain file name"),
        (json.dumps({"a": _entry(pitch=float("inf"))}), "pitch must be an integer in 0..127, got inf"),
        (json.dumps({"a": _entry(pitch=60.5)}), "pitch must be an integer in 0..127, got 60.5"),
        (json.dumps({"a": _entry(velocity=True)}), "velocity must be an integer in 0..127, got True"),
        (json.dumps({"a": _entry(instrument=3000000000)}), "instrument must be an integer in 0..2147483647"),
        (json.dumps({"a": _entry(qualities=[None] * 10)}), "qualities must be a list of 10 flags, each 0 or 1"),
        (json.dumps({"a": _entry(), "b": _entry(note_str="a")}), "note_str 'a' is given by two entries"),
        ('{"a": ' + json.dumps(_entry()) + ', "a": ' + json.dumps(_entry()) + "}", "appear twice in one object"),
        ("[" * 100_000 + "]" * 100_000, "is not valid JSON"),
    ],
)
def test_malformed_examples_json_names_file_entry_and_field(tmp_path, content, message):
    (tmp_path / "nsynth-train" / "audio").mkdir(parents=True)
    (tmp_path / "nsynth-train" / "examples.json").write_text(content)
    with pytest.raises(nsynth.NSynthFormatError, match=message) as err:
        nsynth.read_split(tmp_path, "train")
    assert "examples.json" in str(err.value)


def data_config(root, cache):
    config = _common.nsynth_data()
    config.root = str(root)
    config.embedded.cache_dir = str(cache)
    config.max_bad_fraction = 0.5
    return config


def test_load_corpus_reports_what_it_used(root, tmp_path_factory):
    corpus = load_corpus(data_config(root, tmp_path_factory.mktemp("c")), bad_log=BadFileLog(0.5))
    assert not corpus.embedded and set(corpus.splits) == set(nsynth.SPLITS)
    assert corpus.report["splits"]["train"] == {
        "listed": 6,
        "selected": 6,
        "silent_dropped": 1,
        "unreadable_skipped": 1,
        "used": 4,
    }
    assert corpus.num_classes == {"family": 11, "instrument": 19}


def test_given_root_that_is_missing_is_an_error_not_a_fallback(tmp_path):
    config = data_config(tmp_path / "absent", tmp_path)
    with pytest.raises(nsynth.NSynthFormatError, match="does not exist"):
        load_corpus(config, bad_log=BadFileLog(0.5))


def test_require_real_refuses_the_embedded_corpus(monkeypatch):
    monkeypatch.delenv("NSYNTH_DIR", raising=False)
    config = ConfigDict(_common.nsynth_data())
    config.require_real = True
    with pytest.raises(FileNotFoundError, match="data.require_real=True"):
        load_corpus(config, bad_log=BadFileLog(0.5))


def test_nsynth_dir_environment_variable(root, monkeypatch, tmp_path_factory):
    monkeypatch.setenv("NSYNTH_DIR", str(root))
    config = data_config("", tmp_path_factory.mktemp("c"))
    assert load_corpus(config, bad_log=BadFileLog(0.5)).root == root


def test_note_loader_crops_and_turns_bad_audio_into_weight_zero(root):
    notes = {n.note_str: n for n in nsynth.read_split(root, "train")}
    bad = BadFileLog(1.0)
    loader = NoteLoader(num_samples=15600, max_offset=48000, bad_log=bad)
    good = loader(notes["keyboard_acoustic_004-060-100"], None)
    assert good["audio"].shape == (15600,) and good["weight"] == 1.0
    assert (good["family"], good["pitch"], good["instrument"]) == (4, 60, 4)
    np.testing.assert_allclose(good["audio"][:100], tone(261.6)[:100], atol=1e-4)  # onset crop
    cropped = loader(notes["keyboard_acoustic_004-060-100"], np.random.default_rng(0))
    assert not np.allclose(cropped["audio"], good["audio"])
    broken = loader(notes["keyboard_acoustic_004-050-127"], None)
    assert broken["weight"] == 0.0 and not broken["audio"].any()
    assert bad.summary()["skipped"] == 1
