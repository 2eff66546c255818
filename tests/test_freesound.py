"""Freesound readers on fixtures in the FSD50K release layout and the manifest form."""

import json

import numpy as np
import pytest
import soundfile as sf
from conftest import tone

from configs import _common
from corpora.freesound import ClipLoader, FreesoundFormatError, load_freesound, read_fsd50k, read_manifest
from corpora.tags import TagVocabulary
from overtone.audio import BadFileLog, TooManyBadFilesError
from overtone.errors import BadValueError


def write_fsd50k(root, *, dev=None, eval_=None, lengths=None):
    """dev: {fname: (tags, split)}, eval_: {fname: tags}. Audio: decaying tones."""
    dev = dev or {
        "1": (["Piano", "notes"], "train"),
        "2": (["piano", "chord"], "train"),
        "3": (["drums", "loop", "piano"], "val"),
        "4": (["Guitar"], "train"),
    }
    eval_ = eval_ or {"9": ["piano"]}
    for folder in ("FSD50K.dev_audio", "FSD50K.eval_audio", "FSD50K.metadata", "FSD50K.ground_truth"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for part, clips in (("dev", dev), ("eval", eval_)):
        meta, lines = {}, ["fname,labels,mids" + (",split" if part == "dev" else "")]
        for fname, value in clips.items():
            tags, split = value if part == "dev" else (value, None)
            seconds = (lengths or {}).get(fname, 2.0)
            sf.write(root / f"FSD50K.{part}_audio" / f"{fname}.wav", tone(300 + int(fname), seconds), 16000)
            meta[fname] = {"title": "t", "description": "", "tags": tags, "license": "cc0", "uploader": "u"}
            lines.append(f'{fname},"Music,Piano","/m/1,/m/2"' + (f",{split}" if split else ""))
        (root / "FSD50K.metadata" / f"{part}_clips_info_FSD50K.json").write_text(json.dumps(meta))
        (root / "FSD50K.ground_truth" / f"{part}.csv").write_text("\n".join(lines) + "\n")
    return root


def test_reads_fsd50k_splits_and_tags(tmp_path):
    splits = read_fsd50k(write_fsd50k(tmp_path))
    assert [c.key for c in splits["train"]] == ["dev/1", "dev/2", "dev/4"]
    assert [c.key for c in splits["valid"]] == ["dev/3"] and [c.key for c in splits["test"]] == ["eval/9"]
    assert splits["train"][0].tags == ("Piano", "notes")
    assert splits["train"][0].path == tmp_path / "FSD50K.dev_audio" / "1.wav"


def test_missing_release_folder_is_named(tmp_path):
    write_fsd50k(tmp_path)
    (tmp_path / "FSD50K.ground_truth" / "eval.csv").unlink()
    with pytest.raises(FreesoundFormatError, match=r"eval.csv is missing"):
        read_fsd50k(tmp_path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda m: m.pop("2"), r"clip '2' .*: no metadata entry"),
        (lambda m: m["2"].pop("tags"), r"clip '2' .*'tags' must be a list of strings, got None"),
        (lambda m: m["2"].update(tags="piano"), r"'tags' must be a list of strings, got 'piano'"),
    ],
)
def test_malformed_metadata_names_file_and_clip(tmp_path, mutate, message):
    write_fsd50k(tmp_path)
    path = tmp_path / "FSD50K.metadata" / "dev_clips_info_FSD50K.json"
    meta = json.loads(path.read_text())
    mutate(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(FreesoundFormatError, match=message) as err:
        read_fsd50k(tmp_path)
    assert "dev_clips_info_FSD50K.json" in str(err.value)


def test_metadata_that_is_not_json(tmp_path):
    write_fsd50k(tmp_path)
    (tmp_path / "FSD50K.metadata" / "eval_clips_info_FSD50K.json").write_text("{oops")
    with pytest.raises(FreesoundFormatError, match="is not valid JSON"):
        read_fsd50k(tmp_path)


def test_manifest_with_and_without_split(tmp_path):
    sf.write(tmp_path / "a.wav", tone(200), 16000)
    (tmp_path / "m.csv").write_text('path,tags,split\na.wav,piano;soft,valid\nb.wav,"drum, loop",train\n')
    splits = read_manifest(tmp_path / "m.csv")
    assert splits["valid"][0].tags == ("piano", "soft") and splits["train"][0].tags == ("drum", "loop")
    assert splits["valid"][0].path == tmp_path / "a.wav"
    rows = "\n".join(f"clip{i}.wav,x" for i in range(200))
    (tmp_path / "n.csv").write_text("path,tags\n" + rows + "\n")
    split = read_manifest(tmp_path / "n.csv")
    assert 5 <= len(split["valid"]) <= 40 and len(split["train"]) + len(split["valid"]) == 200
    assert read_manifest(tmp_path / "n.csv")["valid"] == split["valid"]  # deterministic


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("file,tags\na.wav,x\n", r"lacks column\(s\) \['path'\]"),
        ("path,tags,split\na.wav,x,dev\n", "split 'dev' is not train, valid or test"),
        ("path,tags\n,x\n", "empty path"),
    ],
)
def test_malformed_manifest(tmp_path, content, message):
    (tmp_path / "m.csv").write_text(content)
    with pytest.raises(FreesoundFormatError, match=message):
        read_manifest(tmp_path / "m.csv")


def data_config(root, cache):
    config = _common.freesound_data()
    config.root = str(root)
    config.embedded.cache_dir = str(cache)
    config.max_bad_fraction = 0.5
    return config


def test_load_freesound_builds_the_vocabulary_on_train_only(tmp_path, tmp_path_factory):
    write_fsd50k(tmp_path)
    corpus = load_freesound(data_config(tmp_path, tmp_path_factory.mktemp("c")), bad_log=BadFileLog(0.5))
    vocabulary = TagVocabulary.load(_saved(corpus, tmp_path_factory.mktemp("w")))
    assert "drum" not in vocabulary.tags and "loop" not in vocabulary.tags  # only in the val clip
    assert vocabulary.tags[0] == "piano" and corpus.num_classes == {"tags": len(vocabulary)}
    assert corpus.report["splits"]["valid"] == {
        "listed": 1,
        "without_vocabulary_tags": 0,
        "silent_dropped": 0,
        "used": 1,
    }
    assert all(c.num_samples == 32000 for c in corpus.splits["train"])


def test_a_split_left_without_usable_clips_is_an_error(tmp_path, tmp_path_factory):
    write_fsd50k(tmp_path, dev={"1": (["piano"], "train"), "3": (["drums"], "val")})
    with pytest.raises(ValueError, match=r"no usable clips in the valid split.*without_vocabulary_tags': 1"):
        load_freesound(data_config(tmp_path, tmp_path_factory.mktemp("c")), bad_log=BadFileLog(0.5))


def test_vocabulary_limits_that_leave_no_tag_are_one_line(tmp_path, tmp_path_factory):
    write_fsd50k(tmp_path)
    data = data_config(tmp_path, tmp_path_factory.mktemp("c"))
    data.vocabulary_no_below = 10  # COALA's limit: the fixture's tags are in fewer training clips
    with pytest.raises(BadValueError, match=r"no tag of the \d+ training clips is in at least 10 clips"):
        load_freesound(data, bad_log=BadFileLog(0.5))


def _saved(corpus, workdir):
    corpus.save_artifacts(workdir)
    return workdir / "tag_vocabulary.json"


def test_missing_audio_is_counted_and_fails_past_the_fraction(tmp_path, tmp_path_factory):
    write_fsd50k(tmp_path)
    (tmp_path / "FSD50K.dev_audio" / "2.wav").unlink()
    config = data_config(tmp_path, tmp_path_factory.mktemp("c"))
    config.max_bad_fraction = 0.1
    with pytest.raises(TooManyBadFilesError, match=r"2.wav"):
        load_freesound(config, bad_log=BadFileLog(0.1))


def test_clip_loader_crops_inside_long_clips_and_pads_short_ones(tmp_path, tmp_path_factory):
    write_fsd50k(tmp_path, lengths={"1": 5.0, "2": 0.5})
    corpus = load_freesound(data_config(tmp_path, tmp_path_factory.mktemp("c")), bad_log=BadFileLog(0.5))
    clips = {c.key: c for c in corpus.splits["train"]}
    loader = corpus.make_loader(16000, 0, BadFileLog(0.5), 16000)
    assert isinstance(loader, ClipLoader)
    whole, _ = sf.read(clips["dev/1"].path, dtype="float32")
    rng = np.random.default_rng(0)
    for _ in range(5):
        crop = loader(clips["dev/1"], rng)["audio"]
        starts = [s for s in range(0, 64001) if np.allclose(whole[s : s + 16000], crop, atol=1e-6)]
        assert starts and 0 <= starts[0] <= 64000
    short = loader(clips["dev/2"], rng)
    assert short["audio"].shape == (16000,) and not short["audio"][8000:].any() and short["weight"] == 1
    assert short["tags"].sum() == 2  # "piano", "chord"
