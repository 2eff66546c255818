"""Shared fixtures: small corpora written by the tests themselves in the official layouts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optax
import pytest
import soundfile as sf
from flax import nnx

import encoders
from corpora.embedded import soundfont
from corpora.nsynth import FAMILIES, QUALITIES, SOURCES
from runtime.checkpoint import Checkpoints, trained
from runtime.workdir import read_metrics

REPO = Path(__file__).resolve().parents[1]


def shared_folder(tmp_path_factory, name: str) -> Path:
    """A folder of this pytest session that all its xdist workers share (their temporary folders
    are siblings under one session folder)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory) -> Path:
    """Every CLI run by the tests shares one persistent compilation cache (so the suite compiles
    each step once, whichever worker needs it first), never the user's ~/.cache/overtone/xla."""
    folder = shared_folder(tmp_path_factory, "xla_cache")
    os.environ["OVERTONE_COMPILATION_CACHE"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def embedded_cache(tmp_path_factory) -> Path:
    """The embedded corpora's cache of this session, one for all workers (a corpus is rendered
    once, by the first worker that needs it; the others wait for it). Holds the small NSynth
    stand-in (one velocity, an octave apart) from the start."""
    cache = shared_folder(tmp_path_factory, "overtone_cache")
    soundfont.ensure_corpus(cache, pitch_step=12, velocities=(100,))
    return cache


def nsynth_entry(note_str: str, *, instrument: int, family: int, source: int, pitch: int, velocity: int) -> dict:
    """One examples.json value with every field of the official release."""
    return {
        "note": 0,
        "note_str": note_str,
        "instrument": instrument,
        "instrument_str": note_str.rsplit("-", 2)[0],
        "pitch": pitch,
        "velocity": velocity,
        "sample_rate": 16000,
        "qualities": [0] * len(QUALITIES),
        "qualities_str": [],
        "instrument_family": family,
        "instrument_family_str": FAMILIES[family],
        "instrument_source": source,
        "instrument_source_str": SOURCES[source],
    }


def write_nsynth_split(root: Path, split: str, notes: dict[str, tuple[dict, np.ndarray | bytes]]) -> Path:
    """Write nsynth-<split>/examples.json and audio/<note_str>.wav (bytes are written raw)."""
    folder = root / f"nsynth-{split}"
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    for note_str, (_, audio) in notes.items():
        path = folder / "audio" / f"{note_str}.wav"
        if isinstance(audio, bytes):
            path.write_bytes(audio)
        else:
            sf.write(path, audio, 16000, subtype="PCM_16")
    (folder / "examples.json").write_text(json.dumps({k: e for k, (e, _) in notes.items()}))
    return folder


def tone(freq: float, seconds: float = 4.0, rate: int = 16000, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t) * np.exp(-t)).astype(np.float32)


def environment_for(embedded_cache: Path) -> dict:
    """The environment of a CLI the tests start: this checkout's code, the session's embedded corpora."""
    env = dict(os.environ)
    env["OVERTONE_CACHE"] = str(embedded_cache)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NSYNTH_DIR", None)
    return env


@pytest.fixture
def subprocess_env(embedded_cache) -> dict:
    return environment_for(embedded_cache)


class Trained(nnx.Module):
    """What the train loop checkpoints: an encoder beside other heads."""

    def __init__(self, seed: int):
        self.encoder = encoders.build_encoder(dict(name="compact"), rngs=nnx.Rngs(seed))
        self.objective = nnx.Linear(128, 11, rngs=nnx.Rngs(seed))


def write_run(folder, seed: int = 7, *, export: bool = True) -> Trained:
    """A pretraining work directory as the loop leaves it (config.json, a best checkpoint of the
    named {"model", "optimizer"} state) and, with `export`, its bundle (RUN/export)."""
    model = Trained(seed)
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    state = nnx.state(trained(model, optimizer))
    checkpoints = Checkpoints(folder)
    checkpoints.save(5, state, {"step": 5}, best=True)
    checkpoints.wait()
    checkpoints.close()
    config = {"seed": 0, "encoder": {"name": "compact"}, "frontend": {"name": "vggish_logmel"}}
    (folder / "config.json").write_text(json.dumps(config))
    if export:
        from pretrain.export import export_run

        export_run(folder)
    return model


TINY_NSYNTH = ["--config.data.embedded.pitch_step=12", "--config.data.embedded.velocities=(100,)"]
TINY = [
    "--config.train.batch_size=16",
    "--config.train.log_every_steps=1",
    "--config.optimizer.learning_rate=1e-3",
    "--config.evaluator.max_examples=32",  # the family probe on 32 + 32 notes
]


def pretrain(workdir, *overrides, env, config="nsynth_mixup", check=True, devices=1, **popen):
    env = dict(env)
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    command = [sys.executable, "-m", "pretrain", f"--config={config}:encoder=compact", *TINY]
    command += [] if config.startswith("freesound") else TINY_NSYNTH
    command += [f"--workdir={workdir}", *overrides]
    if popen:
        return subprocess.Popen(command, env=env, **popen)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"pretrain failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


def train_losses(workdir):
    return {r["step"]: r["loss"] for r in read_metrics(workdir) if r["split"] == "train"}


def finetune(workdir, config: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    """`python -m finetune` on tiny batches; later `args` override the defaults."""
    command = [
        sys.executable,
        "-m",
        "finetune",
        f"--config={config}",
        f"--workdir={workdir}",
        "--config.train.batch_size=16",
        "--config.train.log_every_steps=1",
        *args,
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def configured(spec: str, *overrides: str):
    """The config `--config=SPEC --config.KEY=VALUE ...` gives a command (`runtime.cli.build_config`)."""
    import configs
    from runtime import cli

    return cli.build_config(configs, spec, overrides)


@pytest.fixture
def in_process(embedded_cache, monkeypatch):
    """Runs a stage's train function in this process — what `python -m pretrain` / `finetune`
    call after parsing flags — without a new interpreter, imports and compilations (the
    persistent compilation cache is shared with the CLI runs). The end-to-end tests use it; a
    few CLI tests keep the command line itself covered."""
    from runtime.performance import enable_compilation_cache
    from runtime.workdir import release

    monkeypatch.setenv("OVERTONE_CACHE", str(embedded_cache))
    monkeypatch.delenv("NSYNTH_DIR", raising=False)
    enable_compilation_cache()
    held = []

    def run(stage: str, workdir, spec: str, *overrides: str) -> dict:
        monkeypatch.setattr("corpora.corpus._ANNOUNCED", set())  # a fresh process says it again
        if stage == "pretrain":
            from pretrain.train import train_and_evaluate as train
        else:
            from finetune.train import finetune_and_evaluate as train
        held.append(workdir)
        return train(configured(spec, *overrides), workdir)

    yield run
    for workdir in held:
        release(workdir)


SLOWEST_FIRST = ("test_readme.py", "test_multiprocess.py", "test_pooling.py")  # started first: workers end together


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.path.name not in SLOWEST_FIRST)
