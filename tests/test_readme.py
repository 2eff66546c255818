"""The README, run as written: every command of its shell blocks, from a copy of the checkout's
root, with relative paths. Pretraining commands run one test each; the downstream commands run
in chains (a command after every one whose folder it names, in README order), one test each, so
that the workers share them out.

What the test changes, and nothing more (the README says the same): `/data/…` points at the
embedded stand-ins written in the official layouts, the files an example calls the user's own
are written here, and training commands get a size override appended. Command 2 (install and
test) is what CI itself runs verbatim (.ci/run reads it from the README), so it is checked here
only for being that.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, environment_for
from readme_commands import commands

STEPS = "--config.train.num_steps=2 --config.train.batch_size=8"
PROBE = "--config.evaluator.max_examples=32"  # the family probe on 32 + 32 notes instead of 256 + 256
COMPACT = "--config.encoder.name=compact"  # the size override: the 1 M-parameter encoder for VGGish's 72 M
# the smaller embedded NSynth (one velocity, an octave apart) for commands that pretrain on NSynth
SMALL_NSYNTH = "--config.data.embedded.pitch_step=12 '--config.data.embedded.velocities=(100,)'"
OVERRIDES = {  # what the README's "tested as written" paragraph says is appended
    "python -m pretrain ": f"{STEPS} {PROBE} {COMPACT}",
    "python -m runtime.launch --processes=2 pretrain ": f"{STEPS} {PROBE} {COMPACT} {SMALL_NSYNTH}",
    "python -m finetune ": STEPS,
}
SMALL_PROBE = "--config.data.nsynth.embedded.pitch_step=12 '--config.data.nsynth.embedded.velocities=(100,)'"
OVERRIDES["python -m finetune.probe "] = SMALL_PROBE
OVERRIDES["python -m suite "] = (  # one objective, its 2 steps on the smaller corpus, one task, 2 seeds
    "--config.pretrain.denoise_add= --config.pretrain.denoise_mul= --config.pretrain.textual= "
    "--config.seeds=2 \"--config.tasks=('nsynth_family',)\" "
    "\"--config.pretrain_overrides=('train.num_steps=2','train.batch_size=8','train.eval_every_steps=2',"
    "'data.embedded.pitch_step=12','data.embedded.velocities=(100,)','evaluator.max_examples=32')\" "
    + SMALL_PROBE.replace("--config.data", "--config.probe.data")
)
MAIN_JOB_OVERRIDE = f"{STEPS} {PROBE} {SMALL_NSYNTH}"  # command 1 keeps its encoder (VGGish): it is the main job
NOT_RUN = {  # command prefix → why this test does not run it (the README names these too)
    'pip install -e ".[bench]"': "downloads PyTorch; the benchmark's own test runs a tiny pass without it",
    "python -m benchmarks ": "minutes of timing; tests/test_benchmarks.py runs a tiny pass",
    "python -m encoders.import_vggish --weights=vggish-10086976.pth": "AudioSet's .pth needs PyTorch; "
    "tests/test_bundle.py imports the same keys from .safetensors/.npz",
    "srun ": "needs a SLURM cluster; tests/test_multiprocess.py launches processes with the same variables",
}
VENV = "python3 -m venv .venv && . .venv/bin/activate"
INSTALL = VENV + " && pip install -e {extras} && pip install --no-deps tinysoundfont && "


def readme() -> list[str]:
    return commands()


def test_the_first_two_commands_install_then_run_the_main_job_and_the_tests():
    first, second = readme()[:2]
    assert first.startswith(INSTALL.format(extras=".") + "python -m pretrain --config=nsynth_mixup ")
    assert "--workdir=runs/nsynth_mixup" in first  # relative, as a user types it
    assert second.startswith(INSTALL.format(extras='".[dev]"') + "python -m pytest")
    ci = (REPO / ".ci" / "run").read_text()
    assert "tests/readme_commands.py 2" in ci  # CI executes command 2 as the README writes it


def test_every_shipped_config_is_in_the_readme():
    import configs

    text = (REPO / "README.md").read_text()
    missing = [name for name in configs.names() if f"`{name}`" not in text]
    assert not missing, f"configs the README never names: {missing}"


def test_every_command_is_run_or_excused():
    """A new README command is run by the tests below unless it is listed in NOT_RUN with a reason;
    an excuse for a command that no longer exists is stale."""
    every = readme()[2:]
    for prefix in NOT_RUN:
        assert any(c.startswith(prefix) for c in every), f"NOT_RUN names {prefix!r}, which the README no longer has"
    for command in every:
        runnable = command.startswith("python -m ") and not _excused(command)
        assert runnable or _excused(command), f"README command neither run nor excused: {command}"


def _excused(command: str) -> bool:
    return any(command.startswith(prefix) for prefix in NOT_RUN)


def _copy_checkout(dest: Path) -> Path:
    """What a fresh clone holds: the tracked files and the untracked ones git does not ignore."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def _tone(path: Path, freq: float, seconds: float = 2.0, rate: int = 22050) -> None:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)


@pytest.fixture(scope="module")
def user_data(tmp_path_factory, embedded_cache) -> Path:
    """/data as the README's examples imagine it: each dataset in its official layout (the
    embedded stand-ins, small), a GloVe text file and a Freesound-style tag manifest."""
    from corpora.embedded import soundfont
    from corpora.embedded.folder import ensure_folder_corpus
    from corpora.embedded.irmas import ensure_irmas_corpus
    from corpora.embedded.openmic import ensure_openmic_corpus
    from corpora.embedded.tagged import ensure_tagged_corpus
    from corpora.nsynth import QUALITIES
    from objectives.word_vectors import CANDIDATES, load_quality_vectors

    data = tmp_path_factory.mktemp("data")
    links = {
        "nsynth": soundfont.ensure_corpus(embedded_cache, pitch_step=12, velocities=(100,)),
        "openmic-2018": ensure_openmic_corpus(embedded_cache, clips=60),
        "IRMAS": ensure_irmas_corpus(embedded_cache, recordings=2, test_excerpts=12),
        "FSD50K": ensure_tagged_corpus(embedded_cache, dev_clips=96, eval_clips=24),
        "my_instruments": ensure_folder_corpus(embedded_cache, clips=12),
    }
    for name, target in links.items():
        (data / name).symlink_to(target)
    with open(data / "glove.6B.300d.txt", "w") as glove:  # GloVe's text format: word v1 … v300
        for quality, vector in zip(QUALITIES, load_quality_vectors(), strict=True):
            glove.write(CANDIDATES[quality][0] + " " + " ".join(f"{v:.6f}" for v in vector) + "\n")
    from tfds_writer import notes_of, write_tfds  # the same notes as TFDS prepares them (data.source=tfds)

    write_tfds(data / "tensorflow_datasets", notes_of(links["nsynth"]))
    clips = sorted((data / "FSD50K").glob("FSD50K.dev_audio/*.wav"))[:48]
    with open(data / "my_sounds.csv", "w", newline="") as manifest:
        writer = csv.writer(manifest)
        writer.writerow(["path", "tags"])
        for i, clip in enumerate(clips):
            writer.writerow([str(clip), "piano bright" if i % 2 else "drum loud"])
    return data


def _prepare_clone(root: Path, data: Path) -> None:
    """The files the README's examples call the user's own, in the clone's root."""
    (root / "audio_folder").mkdir()
    _tone(root / "audio_folder" / "a.wav", 440.0)
    _tone(root / "audio_folder" / "b.flac", 660.0)
    _tone(root / "more.wav", 330.0, seconds=3.5)
    files = sorted(p for p in (data / "my_instruments").rglob("*") if p.suffix in (".wav", ".flac"))
    with open(root / "labels.csv", "w", newline="") as manifest:
        writer = csv.writer(manifest)
        writer.writerow(["path", "labels"])
        for path in files:
            writer.writerow([str(path), path.parent.name])


def _as_run(command: str, data: Path) -> str:
    """The README command with /data/ pointed at the fixtures and the size override appended."""
    command = command.split("  #")[0].strip().replace("/data/", f"{data}/").replace("random:vggish", "random:compact")
    for prefix, extra in OVERRIDES.items():
        if command.startswith(prefix):
            nsynth = prefix == "python -m pretrain " and "--config=nsynth" in command
            return f"{command} {extra}" + (f" {SMALL_NSYNTH}" if nsynth else "")
    return command


def _run(command: str, root: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(["bash", "-c", command], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"README command failed ({result.returncode}): {command}\n{result.stderr[-4000:]}"
    return result


def _promised(command: str, root: Path) -> None:
    """The files a command says it writes: a work directory's summary (and a downstream run's
    report), an --out file or folder."""
    command = command.split("  #")[0]  # a trailing comment is not part of the command (it may hold quotes)
    args = dict(a[2:].split("=", 1) for a in shlex.split(command) if a.startswith("--") and "=" in a)
    if "workdir" in args and command.startswith("python -m suite "):
        assert (root / args["workdir"] / "table.md").is_file(), f"{command}: no table.md"
    elif "workdir" in args:
        workdir = root / args["workdir"]
        assert (workdir / "summary.json").is_file(), f"{command}: no {workdir}/summary.json"
        if " -m finetune " in f" {command} ":
            assert (workdir / "report" / "metrics.json").is_file()
    if "out" in args:
        assert (root / args["out"]).exists(), f"{command}: --out={args['out']} not written"


def _env(subprocess_env: dict) -> dict:
    env = dict(subprocess_env)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("PYTHONPATH", None)  # the copy's own packages, found from its root as a user's would be
    return env


PRETRAINING = [c for c in readme()[2:] if c.startswith("python -m pretrain ") and not _excused(c)]


def test_the_readme_pretrains_with_every_objective():
    assert len(PRETRAINING) >= 8


@pytest.mark.parametrize("command", PRETRAINING, ids=[f"pretrain{i}" for i in range(len(PRETRAINING))])
def test_pretraining_commands_run_as_written(command, tmp_path, user_data, subprocess_env):
    """Each pretraining command on its own (they share nothing), so the workers share them out."""
    root = _copy_checkout(tmp_path / "clone")
    _run(_as_run(command, user_data), root, _env(subprocess_env))
    _promised(command, root)
    workdir = root / dict(a[2:].split("=", 1) for a in shlex.split(command) if a.startswith("--workdir="))["workdir"]
    assert (workdir / "export" / "manifest.json").is_file()  # every pretraining run exports its encoder


def test_main_job_runs_as_written(tmp_path, subprocess_env):
    """Command 1 as written — VGGish, relative --workdir — with only its size reduced (steps, batch,
    probe notes, the smaller embedded NSynth): exit 0 and a loadable bundle in runs/nsynth_mixup/export."""
    import encoders

    root = _copy_checkout(tmp_path / "clone")
    main_job = readme()[0].split("&& ")[-1]
    result = _run(f"{main_job} {MAIN_JOB_OVERRIDE}", root, _env(subprocess_env))
    assert "done: step 2" in result.stdout and "encoder bundle: " in result.stdout
    bundle = encoders.load(root / "runs" / "nsynth_mixup" / "export")
    assert bundle.manifest["encoder"]["name"] == "vggish" and bundle.manifest["source"]["step"] == 2
    assert bundle.embed(np.zeros(16000, np.float32), 16000).shape == (1, 128)
    summary = json.loads((root / "runs" / "nsynth_mixup" / "summary.json").read_text())
    assert summary["evaluated"]["checkpoint"] == "best" and summary["export"] == str(root / "runs/nsynth_mixup/export")


DOWNSTREAM = [c for c in readme()[2:] if not c.startswith("python -m pretrain ") and not _excused(c)]
MAIN_RUN = "runs/nsynth_mixup"  # command 1's run, which the fixture below writes for every chain


def _folders(command: str) -> set[str]:
    """The runs/… and bundles/… folders a command names, other than command 1's run."""
    named = set()
    for arg in shlex.split(command.split("  #")[0]):
        parts = Path(arg.split("=", 1)[-1]).parts
        if len(parts) >= 2 and parts[0] in ("runs", "bundles") and "/".join(parts[:2]) != MAIN_RUN:
            named.add("/".join(parts[:2]))
    return named


def _chains(commands: list[str]) -> list[list[str]]:
    """The commands grouped so that a command runs after every one whose folder it names (in
    README order): chains share no folder, so each is a test of its own."""
    chains: list[tuple[set[str], list[str]]] = []
    for command in commands:
        folders, joined = _folders(command), []
        for chain in chains:
            if chain[0] & folders:
                joined.append(chain)
        merged = (folders.union(*(c[0] for c in joined)), [c for chain in joined for c in chain[1]] + [command])
        merged[1].sort(key=commands.index)
        chains = [c for c in chains if c not in joined] + [merged]
    return [commands_ for _, commands_ in sorted(chains, key=lambda c: commands.index(c[1][0]))]


CHAINS = _chains(DOWNSTREAM)


def test_the_downstream_chains_hold_every_downstream_command_once():
    assert sorted(c for chain in CHAINS for c in chain) == sorted(DOWNSTREAM) and len(DOWNSTREAM) >= 15
    assert _chains(["python -m a --out=runs/x", "python -m b --workdir=runs/y", "python -m c runs/x runs/y"]) == [
        ["python -m a --out=runs/x", "python -m b --workdir=runs/y", "python -m c runs/x runs/y"]
    ]
    export = next(chain for chain in CHAINS if any(c.startswith("python -m pretrain.export ") for c in chain))
    assert any(c.startswith("python -m encoders.embed ") for c in export)  # the bundle it writes is used after it


@pytest.fixture(scope="module")
def downstream_root(tmp_path_factory, user_data, embedded_cache) -> Path:
    """A clone with the user's files and command 1's run (with the size override, compact): what
    every downstream chain starts from. Chains that one worker runs share it (their folders differ)."""
    root = _copy_checkout(tmp_path_factory.mktemp("downstream") / "clone")
    _prepare_clone(root, user_data)
    main_job = readme()[0].split("&& ")[-1]
    _run(f"{main_job} {MAIN_JOB_OVERRIDE} {COMPACT}", root, _env(environment_for(embedded_cache)))
    return root


def _check_irmas_finetune(root: Path) -> None:
    assert json.loads((root / "runs" / "irmas_finetune_s0" / "summary.json").read_text())["final_step"] == 2


def _check_embeddings(root: Path) -> None:
    with np.load(root / "embeddings.npz", allow_pickle=False) as stored:
        assert len(stored["paths"]) == 3 and np.isfinite(stored["embeddings"]).all()


def _check_compare(root: Path) -> None:
    assert (root / "runs" / "compare" / "compare.png").is_file()


def _check_probe_compare(root: Path) -> None:
    probe = (root / "runs" / "probe_compare" / "compare.md").read_text()
    assert probe.count("| 3 |") == 2 and "openmic_f1" not in probe  # two encoders, 3 seeds each


CHECKS = {  # what a command's outputs hold, beyond the files it promises
    "--workdir=runs/irmas_finetune_s0": _check_irmas_finetune,
    "--out=embeddings.npz": _check_embeddings,
    "--out=runs/compare ": _check_compare,
    "--out=runs/probe_compare": _check_probe_compare,
}


@pytest.mark.parametrize("chain", CHAINS, ids=[f"downstream{i}" for i in range(len(CHAINS))])
def test_every_downstream_command_runs_as_written(chain, downstream_root, user_data, embedded_cache):
    """Every command that uses command 1's run, its bundle or the downstream data, in README
    order within its chain."""
    env = _env(environment_for(embedded_cache))
    for command in chain:
        _run(_as_run(command, user_data), downstream_root, env)
        _promised(command, downstream_root)
        for marker, check in CHECKS.items():
            if marker in f"{command} ":
                check(downstream_root)


def test_every_output_check_names_a_readme_command():
    for marker in CHECKS:
        assert any(marker in f"{c} " for c in DOWNSTREAM), f"CHECKS names {marker!r}, which no README command has"
