"""Property-based fuzzing of every file the toolkit reads from a user (hypothesis).

One property for all of them: reading a malformed file ends in the toolkit's own error type
naming the file — or it is read, and what was read is valid — never another exception, never a
hang (each example runs under an alarm), never a file written beside the input.

CI runs the `ci` profile: a fixed seed (derandomized) and few examples, so the suite stays fast
and a failure reproduces. For a long local hunt:

    OVERTONE_FUZZ=long python -m pytest tests/test_fuzz.py
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpora import nsynth
from corpora.folder import FolderFormatError, read_labelled_audio
from corpora.freesound import FreesoundFormatError, read_fsd50k
from corpora.irmas import CLASSES, IRMASFormatError, read_irmas
from corpora.openmic import OpenMICFormatError, read_openmic
from overtone.audio import AudioError, load_audio

settings.register_profile(
    "ci", max_examples=25, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("OVERTONE_FUZZ", "ci"))

SECONDS = 20  # one example taking longer is a hang


@contextlib.contextmanager
def bounded(seconds: int = SECONDS):
    def expire(*_):
        raise TimeoutError(f"no answer in {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def folder():
    """A fresh folder whose contents must not grow while the reader runs."""
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def reads_or_refuses(read, error: type[Exception], root: Path, named: str):
    """Run `read()`: its result, or None when it raised `error` naming `named`; anything else —
    another exception, a hang, a file written — fails the example."""
    before = listing(root)
    try:
        with bounded():
            return read()
    except error as err:
        assert named in str(err), f"{type(err).__name__} does not name {named}: {err}"
        return None
    finally:
        assert listing(root) == before, "the reader wrote files"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
field_values = st.one_of(
    st.integers(-5, 300),
    st.integers(-(2**63), 2**63),
    st.floats(),
    st.booleans(),
    st.none(),
    st.text(max_size=6),
    st.lists(st.integers(-1, 2), max_size=11),
    json_values,
)
names = st.one_of(st.text(max_size=20), st.sampled_from(["..", ".", "a/b", "../../etc/passwd", "", "x\\y", "ok_001"]))


@given(content=st.one_of(json_values.map(json.dumps), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_examples_json_of_any_shape(content):
    with folder() as root:
        (root / "nsynth-train" / "audio").mkdir(parents=True)
        (root / "nsynth-train" / "examples.json").write_text(content)
        notes = reads_or_refuses(
            lambda: nsynth.read_split(root, "train"), nsynth.NSynthFormatError, root, "examples.json"
        )
        assert notes is None or notes == []  # nothing valid can come out of noise but an empty split


@given(
    key=names,
    fields=st.dictionaries(
        st.sampled_from(
            [
                "note_str",
                "instrument",
                "pitch",
                "velocity",
                "instrument_family",
                "instrument_source",
                "qualities",
                "instrument_str",
            ]
        ),
        field_values,
        max_size=8,
    ),
)
def test_examples_json_entries_with_any_field_values(key, fields):
    entry = {"instrument": 1, "pitch": 60, "velocity": 100, "instrument_family": 0, "instrument_source": 0} | fields
    with folder() as root:
        (root / "nsynth-train" / "audio").mkdir(parents=True)
        (root / "nsynth-train" / "examples.json").write_text(json.dumps({key: entry}))
        notes = reads_or_refuses(
            lambda: nsynth.read_split(root, "train"), nsynth.NSynthFormatError, root, "examples.json"
        )
        for note in notes or []:  # what was read is what NSynth allows
            assert 0 <= note.pitch <= 127 and 0 <= note.velocity <= 127 and 0 <= note.family <= 10
            assert note.path.parent == root / "nsynth-train" / "audio"  # never outside the split
            assert set(note.qualities) <= {0, 1} and len(note.qualities) == 10


@given(labels=st.binary(max_size=120))
def test_irmas_label_files_of_any_bytes(labels):
    with folder() as root:
        for code in ("cel", "pia"):
            (root / "IRMAS-TrainingData" / code).mkdir(parents=True)
            for number in (1, 2):
                sf.write(
                    root / "IRMAS-TrainingData" / code / f"0{number}2__[{code}][nod][jaz_blu]000{number}__1.wav",
                    np.zeros(4410, np.float32),
                    44100,
                )
        part = root / "IRMAS-TestingData-Part1" / "Part1"
        part.mkdir(parents=True)
        sf.write(part / "a.wav", np.zeros(4410, np.float32), 44100)
        (part / "a.txt").write_bytes(labels)
        dataset = reads_or_refuses(lambda: read_irmas(root, valid_fraction=0.5), IRMASFormatError, root, "a.txt")
        for excerpt in dataset.splits["test"] if dataset else []:
            assert excerpt.labels and set(excerpt.labels) <= set(CLASSES)


def _manifest(rows) -> bytes:
    return ("path,labels,split\n" + "".join(f"{path},{labels},{split}\n" for path, labels, split in rows)).encode()


manifest_rows = st.tuples(names, st.text(max_size=12), st.sampled_from(["", "train", "valid", "test", "other"]))


@given(manifest=st.one_of(st.binary(max_size=300), st.lists(manifest_rows, max_size=6).map(_manifest)))
def test_folder_manifests_of_any_content(manifest):
    with folder() as root:
        for name in ("a.wav", "b.wav"):
            sf.write(root / name, np.zeros(1600, np.float32), 16000)
        (root / "labels.csv").write_bytes(manifest)
        reads_or_refuses(
            lambda: read_labelled_audio(manifest=root / "labels.csv"), FolderFormatError, root, "labels.csv"
        )


@given(truth=st.binary(max_size=200), metadata=st.one_of(json_values.map(json.dumps), st.text(max_size=50)))
def test_fsd50k_metadata_and_ground_truth_of_any_content(truth, metadata):
    with folder() as root:
        for part in ("dev", "eval"):
            (root / f"FSD50K.{part}_audio").mkdir(parents=True)
            (root / "FSD50K.metadata").mkdir(exist_ok=True)
            (root / "FSD50K.ground_truth").mkdir(exist_ok=True)
            (root / "FSD50K.metadata" / f"{part}_clips_info_FSD50K.json").write_text(metadata)
            (root / "FSD50K.ground_truth" / f"{part}.csv").write_bytes(truth)
        reads_or_refuses(lambda: read_fsd50k(root), FreesoundFormatError, root, "FSD50K")


array_dtypes = st.sampled_from(["float32", "float64", "int8", "uint8", "bool", "U4", "complex64"])


@given(
    y_dtype=array_dtypes,
    mask_dtype=array_dtypes,
    nan=st.booleans(),
    scale=st.sampled_from([1.0, 2.0, -1.0]),
    keys=st.lists(names, min_size=4, max_size=4),
)
def test_openmic_arrays_of_any_type_and_value(y_dtype, mask_dtype, nan, scale, keys):
    rng = np.random.default_rng(0)
    y = rng.random((4, 20)) * scale
    if nan:
        y[0, 0] = np.nan
    with folder() as root:
        mask = (rng.random((4, 20)) < 0.5).astype(mask_dtype)
        with np.errstate(invalid="ignore"):  # NaN cast to an integer type: garbage, which is the point
            labels = y.astype(y_dtype)
        arrays = {
            "X": rng.integers(0, 255, (4, 10, 128)).astype(np.uint8),
            "Y_true": labels,
            "Y_mask": mask,
            "sample_key": np.array(keys, dtype=str),
        }
        np.savez(root / "openmic-2018.npz", **arrays)
        (root / "class-map.json").write_text(json.dumps({f"c{i}": i for i in range(20)}))
        (root / "partitions").mkdir()
        for split in ("train", "test"):
            (root / "partitions" / f"split01_{split}.csv").write_text("\n".join(keys) + "\n")
        data = reads_or_refuses(lambda: read_openmic(root), OpenMICFormatError, root, str(root))
        if data is not None:  # read: every observed label is a finite 0/1 decision
            assert set(np.unique(data.targets[data.observed])) <= {0.0, 1.0}


def wav_header(rate: int, channels: int, bits: int, data_bytes: int, fmt: int = 1) -> bytes:
    block = channels * max(bits, 8) // 8
    return (
        b"RIFF"
        + struct.pack("<I", (36 + data_bytes) & 0xFFFFFFFF)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, fmt, channels, rate, (rate * block) & 0xFFFFFFFF, block, bits)
        + b"data"
        + struct.pack("<I", data_bytes & 0xFFFFFFFF)
    )


@given(
    rate=st.sampled_from([0, 1, 8000, 16000, 44100, 2**31 - 1]),
    channels=st.sampled_from([0, 1, 2, 6, 255]),
    bits=st.sampled_from([0, 8, 16, 24, 32, 64]),
    fmt=st.sampled_from([1, 3, 7, 0xFFFE]),
    claimed=st.sampled_from([0, 10, 3200, 2**31, 2**32 - 1]),
    body=st.binary(max_size=400),
)
def test_audio_files_with_any_header_and_body(rate, channels, bits, fmt, claimed, body):
    with folder() as root:
        path = root / "clip.wav"
        path.write_bytes(wav_header(rate, channels, bits, claimed, fmt) + body)
        wave = reads_or_refuses(lambda: load_audio(path, sample_rate=16000), AudioError, root, "clip.wav")
        if wave is not None:  # decoded: finite, mono, in range
            assert wave.ndim == 1 and wave.dtype == np.float32 and np.isfinite(wave).all()
            assert np.abs(wave).max(initial=0.0) <= 1.0


@pytest.fixture(scope="module")
def bundle_folder(tmp_path_factory):
    from encoders.bundle import save
    from encoders.pretrained import load_encoder

    loaded = load_encoder("random:compact")
    return save(
        tmp_path_factory.mktemp("bundle") / "b",
        loaded.encoder,
        loaded.encoder_config,
        loaded.frontend,
        provenance={"run": "fuzz"},
    )


def _paths(tree, prefix=()):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))


@given(data=st.data(), value=json_values, resign=st.booleans())
def test_bundle_manifests_with_any_field_changed(bundle_folder, data, value, resign):
    """Any one field replaced by any JSON value, with the integrity digest left or recomputed (as
    someone editing by hand would): refused as a BundleError, or — when the edit is harmless
    and re-signed — loaded. Never another exception or a giant allocation."""
    import shutil

    from encoders.bundle import BundleError, load, manifest_digest

    manifest = json.loads((bundle_folder / "manifest.json").read_text())
    path = data.draw(st.sampled_from([p for p in _paths(manifest) if p[0] != "integrity"]))
    with folder() as root:
        target = root / "b"
        shutil.copytree(bundle_folder, target)
        edited = json.loads(json.dumps(manifest))
        node = edited
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        if resign:
            edited["integrity"] = manifest_digest(edited)
        (target / "manifest.json").write_text(json.dumps(edited))
        reads_or_refuses(lambda: load(target), BundleError, root, str(target))


@given(
    header=st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=80)),
    length=st.one_of(st.none(), st.integers(0, 2**63)),
)
def test_bundle_weights_with_any_safetensors_header(bundle_folder, header, length):
    """A weights file with any header, its SHA-256 and the integrity digest recomputed to match:
    a BundleError naming the file, never the reader's own exception or an allocation."""
    import hashlib
    import shutil

    from encoders.bundle import BundleError, load, manifest_digest

    with folder() as root:
        target = root / "b"
        shutil.copytree(bundle_folder, target)
        weights = struct.pack("<Q", len(header) if length is None else length) + header + b"\0" * 64
        (target / "weights.safetensors").write_bytes(weights)
        manifest = json.loads((target / "manifest.json").read_text())
        manifest["weights"]["sha256"] = hashlib.sha256(weights).hexdigest()
        manifest["integrity"] = manifest_digest(manifest)
        (target / "manifest.json").write_text(json.dumps(manifest))
        assert reads_or_refuses(lambda: load(target), BundleError, root, "weights.safetensors") is None


def _numeric_leaves(config, prefix=""):
    for key, value in config.items():
        if hasattr(value, "items"):
            yield from _numeric_leaves(value, f"{prefix}{key}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield f"{prefix}{key}"


@given(
    data=st.data(),
    name=st.sampled_from(["nsynth_mixup", "nsynth_denoise_add", "irmas_finetune"]),
    value=st.one_of(st.floats(), st.integers(-(2**40), 2**40)),
)
def test_config_overrides_of_any_number(data, name, value):
    """Any number for any numeric key: refused by the flag check (BadValueError naming the key),
    or accepted — and then the config passes the name and front-end checks or is refused by
    them with the toolkit's own error, before any data is read."""
    import configs
    from finetune.train import check_names as finetune_names
    from overtone.errors import BadValueError, OvertoneError
    from pretrain.train import check_names as pretrain_names
    from runtime import cli

    config = configs.load(configs.resolve(name))
    key = data.draw(st.sampled_from(sorted(_numeric_leaves(config))))
    *parents, leaf = key.split(".")
    section = config
    for parent in parents:
        section = section[parent]
    try:
        section[leaf] = value if isinstance(section[leaf], float) else int(value)
    except (TypeError, ValueError, OverflowError):
        return  # ml_collections refuses the type itself, on the command line: absl's one-line flag error
    with bounded():
        try:
            cli.check_values(config)
        except BadValueError as err:
            assert leaf in str(err) or "nothing to train" in str(err)
            return
        with contextlib.suppress(OvertoneError):
            (pretrain_names if "objective" in config else finetune_names)(config)
