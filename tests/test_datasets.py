"""The data layer's one registry and one root lookup, shared by every stage."""

import logging

import pytest
from ml_collections import ConfigDict

import corpora
from corpora.corpus import find_root
from overtone.errors import UnknownNameError


def test_one_registry_serves_pretraining_and_downstream_in_their_forms():
    assert corpora.names("corpus") == ["nsynth", "freesound"]
    assert set(corpora.names("clips")) == {"openmic", "irmas", "folder", "nsynth_family", "nsynth_pitch"}
    assert corpora.get_dataset("nsynth") is corpora.load_corpus
    with pytest.raises(UnknownNameError, match=r"unknown pretraining dataset 'irmas'.*dataset for fine-tuning"):
        corpora.get_dataset("irmas")
    with pytest.raises(UnknownNameError, match=r"--task: unknown downstream dataset 'nsynth_famly' \(did you mean"):
        corpora.get_dataset("nsynth_famly", "clips", where="--task")


def _data(root="", require_real=False):
    return ConfigDict({"root": root, "require_real": require_real})


def test_find_root_takes_the_config_then_the_environment_then_the_stand_in(tmp_path, monkeypatch, caplog):
    rendered = []

    def embedded():
        rendered.append(True)
        return tmp_path / "stand-in"

    where = dict(what="IRMAS", variable="IRMAS_DIR", expected="IRMAS folders", embedded=embedded)
    monkeypatch.setenv("IRMAS_DIR", str(tmp_path / "from-env"))
    assert find_root(_data(str(tmp_path / "given")), **where) == (tmp_path / "given", False)
    assert find_root(_data(), **where) == (tmp_path / "from-env", False)
    assert not rendered  # a real root never renders the stand-in
    monkeypatch.delenv("IRMAS_DIR")
    monkeypatch.setattr("corpora.corpus._ANNOUNCED", set())
    with caplog.at_level(logging.WARNING):
        assert find_root(_data(), **where) == (tmp_path / "stand-in", True)
        assert find_root(_data(), **where) == (tmp_path / "stand-in", True)
    assert caplog.text.count("EMBEDDED SoundFont stand-in") == 1  # said once per process
    with pytest.raises(FileNotFoundError, match=r"no IRMAS given and data.require_real=True: set .*IRMAS_DIR to IRMAS"):
        find_root(_data(require_real=True), **where)
    assert len(rendered) == 2
