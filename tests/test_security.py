"""Security: no pickle on user files anywhere, archives cannot write outside their target,
cached or shipped arrays that would need pickle are refused, bundles run no code."""

import ast
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, nsynth_entry, tone, write_nsynth_split

from corpora import nsynth

PACKAGES = ("configs", "corpora", "encoders", "objectives", "finetune", "pretrain", "runtime", "benchmarks", "scripts")


def calls(name: str):
    """(file, node) for every call of a function or method called `name` in the packages."""
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call):
                    func = node.func
                    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                    if called == name:
                        yield path.relative_to(REPO), node


def keyword(node: ast.Call, name: str):
    for kw in node.keywords:
        if kw.arg == name:
            return ast.literal_eval(kw.value)
    return None


def test_no_pickle_anywhere_in_the_toolkit():
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            nodes = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
            imported = {a.name.split(".")[0] for n in nodes for a in n.names}
            imported |= {n.module.split(".")[0] for n in nodes if isinstance(n, ast.ImportFrom) and n.module}
            assert not {"pickle", "cPickle", "dill", "joblib", "cloudpickle"} & imported, path
    for path, node in calls("load"):
        func = ast.unparse(node.func)
        if func in ("np.load", "numpy.load"):
            assert keyword(node, "allow_pickle") is False, f"{path}:{node.lineno} np.load without allow_pickle=False"
        if func == "torch.load":
            assert keyword(node, "weights_only") is True, f"{path}:{node.lineno} torch.load without weights_only"
    for name in ("eval", "exec", "__import__"):  # the builtins, not methods such as model.eval()
        assert not [p for p, node in calls(name) if isinstance(node.func, ast.Name)], f"{name}() in the toolkit"


def test_every_archive_extraction_uses_the_data_filter():
    found = list(calls("extractall")) + list(calls("extract"))
    assert found, "the NSynth reader unpacks archives"
    for path, node in found:
        assert keyword(node, "filter") == "data", f"{path}:{node.lineno} extracts without filter='data'"


def archive_with(tmp_path: Path, member: tarfile.TarInfo, payload: bytes = b"") -> Path:
    notes = {
        "flute_acoustic_000-060-100": (
            nsynth_entry("flute_acoustic_000-060-100", instrument=0, family=2, source=0, pitch=60, velocity=100),
            tone(261.6),
        )
    }
    folder = write_nsynth_split(tmp_path / "staging", "valid", notes)
    archive = tmp_path / "data" / "nsynth-valid.jsonwav.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="nsynth-valid")
        tar.addfile(member, io.BytesIO(payload) if payload else None)
    return archive


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "absolute", "device"])
def test_archive_members_that_reach_outside_or_are_special_are_refused(tmp_path, kind):
    target = tmp_path / "outside.txt"
    target.write_text("secret")
    member = tarfile.TarInfo("nsynth-valid/audio/evil")
    if kind == "symlink":
        member.type, member.linkname = tarfile.SYMTYPE, str(target)
    elif kind == "hardlink":
        member.type, member.linkname = tarfile.LNKTYPE, "../../outside.txt"
    elif kind == "absolute":
        member = tarfile.TarInfo(str(tmp_path / "absolute_escape.txt"))
        member.size = 4
    else:
        member.type, member.devmajor, member.devminor = tarfile.CHRTYPE, 1, 3
    archive = archive_with(tmp_path, member, b"evil" if kind == "absolute" else b"")
    try:
        nsynth.read_split(archive.parent, "valid")
    except nsynth.NSynthFormatError as err:
        assert "cannot unpack" in str(err)
    else:  # the data filter may also neutralise a member (absolute paths become relative)
        assert kind == "absolute"
    assert target.read_text() == "secret" and not (tmp_path / "absolute_escape.txt").exists()
    unpacked = archive.parent / "nsynth-valid" / "audio" / "evil"
    assert not unpacked.is_symlink() and not (unpacked.exists() and unpacked.is_char_device())


def test_a_poisoned_embedding_cache_entry_is_never_unpickled_but_recomputed(tmp_path, caplog):
    import soundfile as sf

    from encoders.pretrained import load_encoder
    from finetune import embedding_cache
    from overtone.audio import BadFileLog

    loaded = load_encoder("random:compact")
    loaded.encoder.eval()
    paths = {"train": [tmp_path / "a.wav"]}
    sf.write(paths["train"][0], tone(440.0, 1.0), 16000)
    key = embedding_cache.cache_key(loaded.checksum, loaded.frontend, paths)
    entry = tmp_path / f"embeddings-{key[:24]}.npz"
    np.savez(entry, **{"train.embeddings": np.array([object()], dtype=object), "train.lengths": np.array([1])})
    result, info = embedding_cache.cached_sequences(
        loaded.encoder, loaded.frontend, loaded.checksum, paths, tmp_path, BadFileLog(1.0)
    )
    assert "is unusable" in caplog.text and "allow_pickle" in caplog.text and not info["reused"]
    assert result["train"][0].shape == (1, 128)
    with np.load(entry, allow_pickle=False) as stored:  # replaced by a clean entry
        assert stored["train.embeddings"].dtype == np.float32
