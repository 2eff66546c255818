"""Several processes behave as one: two real processes on localhost (CPU, gloo collectives, one
device each, joined by jax.distributed as the README's "Several hosts" section says) against one
process with two devices — the same global batch, so the same numbers to the last bit.

Pretraining is stopped twice on the way (SIGTERM to one process: both checkpoint and exit 0;
then SIGKILL to both) and resumed each time; fine-tuning runs from a bundle. Both must end with
the one-process run's validation and test numbers and weights, and write each file once."""

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import TINY, TINY_NSYNTH, finetune, pretrain, write_run

from runtime.processes import distributed_arguments

STEPS = ["--config.train.num_steps=12", "--config.train.eval_every_steps=4", "--config.train.checkpoint_every_steps=2"]
PRETRAIN = ["--config=nsynth_mixup:encoder=compact", *TINY, *TINY_NSYNTH, *STEPS, "--config.export=True"]
FINETUNE = [
    "--config=irmas_attention",
    "--config.train.batch_size=16",
    "--config.train.log_every_steps=1",
    "--config.train.num_epochs=3",
    "--config.data.embedded.recordings=3",
    "--config.data.embedded.test_excerpts=12",
]


def launch(module: str, args: list[str], workdir, env: dict, *, extra=((), ())) -> list[subprocess.Popen]:
    """Two processes of one job, as any launcher starts them (the variables of the README's
    "Several processes and hosts"); `extra`: more arguments for each process."""
    with socket.socket() as probe:  # a free port for the coordinator
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    jobs = []
    for index in range(2):
        variables = {
            "OVERTONE_DISTRIBUTED": "1",
            "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
            "JAX_NUM_PROCESSES": "2",
            "JAX_PROCESS_ID": str(index),
        }
        log = open(workdir.parent / f"{workdir.name}.{module}.{index}.log", "a")  # noqa: SIM115 - closed by the child
        command = [sys.executable, "-m", module, *args, *extra[index], f"--workdir={workdir}"]
        jobs.append(subprocess.Popen(command, env=env | variables, stdout=log, stderr=subprocess.STDOUT))
    return jobs


def finish(jobs: list[subprocess.Popen], workdir) -> list[int]:
    codes = [job.wait(timeout=600) for job in jobs]
    logs = "".join(p.read_text()[-3000:] for p in sorted(workdir.parent.glob(f"{workdir.name}.*.log")))
    return codes, logs


def wait_for(condition, what: str, timeout: float = 300) -> None:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)


def train_rows(workdir) -> list[int]:
    path = workdir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if '"split": "train"' in line]


def checkpointed(workdir) -> list[int]:
    folder = workdir / "checkpoints"
    return (
        sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / "state").is_dir())
        if folder.is_dir()
        else []
    )


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def outputs(workdir) -> list[str]:
    """The run's files outside orbax's checkpoint folders (whose per-process parts orbax names)
    and TensorBoard's (one time-stamped file per launch)."""
    skipped = ("checkpoints", "best", "tensorboard")
    return [
        str(p.relative_to(workdir))
        for p in sorted(workdir.rglob("*"))
        if p.is_file() and p.relative_to(workdir).parts[0] not in skipped
    ]


def numbers(summary: dict) -> dict:
    return {k: summary[k] for k in ("final_step", "best_step", "best_validation", "test", "evaluated")}


def test_two_processes_pretrain_through_sigterm_and_sigkill_as_one_process_with_two_devices(subprocess_env, tmp_path):
    alone = tmp_path / "one_process"
    pretrain(alone, *STEPS, "--config.export=True", env=subprocess_env, devices=2)
    job = tmp_path / "two_processes"

    # 1. through the README's launcher, SIGTERMed: it passes the signal on, both processes
    # checkpoint at one step and exit 0
    log = open(tmp_path / "launcher.log", "w")  # noqa: SIM115 - closed with the test
    command = [sys.executable, "-m", "runtime.launch", "--processes=2", "pretrain", *PRETRAIN, f"--workdir={job}"]
    launcher = subprocess.Popen(command, env=subprocess_env, stdout=log, stderr=subprocess.STDOUT)
    wait_for(lambda: len(train_rows(job)) >= 2, "two training steps")
    launcher.send_signal(signal.SIGTERM)
    codes, logs = [launcher.wait(timeout=600)], (tmp_path / "launcher.log").read_text()
    assert codes == [0], logs[-3000:]
    stopped = max(checkpointed(job))
    assert stopped < 12 and not (job / "summary.json").exists(), logs
    assert logs.count(f"stopped on SIGTERM at step {stopped}") == 2

    # 2. resumed, a SIGTERM to process 1 alone (the notice reaches process 0 through JAX's
    # preemption service), resumed again, then both SIGKILLed once a later checkpoint is written
    jobs = launch("pretrain", PRETRAIN, job, subprocess_env)
    wait_for(lambda: len(train_rows(job)) >= stopped + 2, "two more training steps")
    jobs[1].send_signal(signal.SIGTERM)
    codes, logs = finish(jobs, job)
    assert codes == [0, 0], logs
    assert stopped < max(checkpointed(job)) < 12, logs
    stopped = max(checkpointed(job))
    jobs = launch("pretrain", PRETRAIN, job, subprocess_env)
    wait_for(lambda: max(checkpointed(job)) > stopped, "a checkpoint after the resumed step")
    for process in jobs:
        process.send_signal(signal.SIGKILL)
    codes, logs = finish(jobs, job)
    assert codes == [-signal.SIGKILL] * 2 and not (job / "summary.json").exists(), logs

    # 3. resumed to the end: what one process with two devices computed
    codes, logs = finish(launch("pretrain", PRETRAIN, job, subprocess_env), job)
    assert codes == [0, 0], logs
    assert logs.count("done: step 12") == 1  # the job's result line, said once (by process 0)
    one, two = (json.loads((run / "summary.json").read_text()) for run in (alone, job))
    assert numbers(two) == numbers(one)  # validation and test over the global batch, the same best step
    assert two["best_validation"]["examples"] == 50 and two["test"]["examples"] == 50
    assert sha256(job / "export" / "weights.safetensors") == sha256(alone / "export" / "weights.safetensors")
    # each file written once (by process 0): the same files as the one-process run, no strays
    assert outputs(job) == outputs(alone)
    assert not [p for p in job.rglob("*") if "partial" in p.name or p.name.endswith(".tmp")]
    assert len((job / "command.txt").read_text().splitlines()) == 4  # one line per launch
    assert len(list((job / "tensorboard").iterdir())) == 4
    assert train_rows(job) == list(range(1, 13))  # the killed run's rows after its checkpoint were dropped


def test_two_processes_finetune_from_a_bundle_as_one_process_with_two_devices(subprocess_env, tmp_path):
    write_run(tmp_path / "pretrained")
    encoder = f"--config.encoder.source={tmp_path / 'pretrained' / 'export'}"
    alone, job = tmp_path / "one_process", tmp_path / "two_processes"
    env = subprocess_env | {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    finetune(alone, "irmas_attention", *FINETUNE[1:], encoder, f"--config.data.embedding_cache={alone}-cache", env=env)
    args = [*FINETUNE, encoder, f"--config.data.embedding_cache={job}-cache"]
    codes, logs = finish(launch("finetune", args, job, subprocess_env), job)
    assert codes == [0, 0], logs
    assert logs.count("done: step") == 1
    one, two = (json.loads((run / "report" / "metrics.json").read_text()) for run in (alone, job))
    assert two == one
    assert outputs(job) == outputs(alone)
    assert len(list((job.parent / f"{job.name}-cache").glob("*.npz"))) == 1  # embedded once, by process 0


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({}, {}),
        ({"JAX_COORDINATOR_ADDRESS": "h:1"}, {}),  # a cluster JAX detects fills in the rest
        (
            {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"},
            {"coordinator_address": "h:1", "num_processes": 2, "process_id": 1},
        ),
    ],
)
def test_the_launcher_variables_become_initialize_arguments(environ, expected):
    assert distributed_arguments(environ) == {"initialization_timeout": 300} | expected


@pytest.mark.parametrize(
    "environ, says",
    [
        ({"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0"}, "also needs JAX_COORDINATOR_ADDRESS"),
        ({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_PROCESS_ID": "0"}, "also needs JAX_NUM_PROCESSES"),
        ({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"}, "0 ≤ JAX_PROCESS_ID <"),
        ({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"}, "whole numbers"),
        ({"OVERTONE_DISTRIBUTED_TIMEOUT": "soon"}, "OVERTONE_DISTRIBUTED_TIMEOUT='soon'"),
    ],
)
def test_half_a_launcher_environment_is_refused_in_one_line(environ, says):
    from overtone.errors import BadValueError

    with pytest.raises(BadValueError, match=says):
        distributed_arguments(environ)


def test_a_process_that_cannot_join_says_so_in_one_line(subprocess_env, tmp_path):
    """No coordinator answers: one line and exit 1 after OVERTONE_DISTRIBUTED_TIMEOUT, not a hang."""
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    variables = {
        "OVERTONE_DISTRIBUTED": "1",
        "OVERTONE_DISTRIBUTED_TIMEOUT": "3",
        "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
        "JAX_NUM_PROCESSES": "2",
        "JAX_PROCESS_ID": "1",  # process 0, which would serve the coordinator, never starts
    }
    command = [sys.executable, "-m", "pretrain", *PRETRAIN, f"--workdir={tmp_path / 'run'}"]
    result = subprocess.run(command, env=subprocess_env | variables, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"DistributedError: no coordinator answered at localhost:{port} within 3 s" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


def test_processes_that_disagree_refuse_before_writing_anything(subprocess_env, tmp_path):
    """Process 1 was started with another config: both say so in one line, exit 1, and
    the work directory is never created."""
    workdir = tmp_path / "run"
    jobs = launch(
        "pretrain", PRETRAIN, workdir, subprocess_env, extra=((), ("--config.optimizer.learning_rate=0.002",))
    )
    codes, logs = finish(jobs, workdir)
    assert codes == [1, 1], logs
    assert logs.count("DistributedError: the processes disagree on the config") == 2
    assert "Traceback" not in logs and not workdir.exists()


def test_a_refusal_is_said_by_every_process_and_leaves_nothing(subprocess_env, tmp_path):
    """A batch the two processes cannot share: both say so in one line and exit 1 (process 0,
    which holds the coordination service, leaves last: no JAX abort in the other), and no work
    directory is written."""
    workdir = tmp_path / "run"
    jobs = launch("pretrain", [*PRETRAIN, "--config.train.batch_size=15"], workdir, subprocess_env)
    codes, logs = finish(jobs, workdir)
    assert codes == [1, 1], logs
    assert logs.count("BadValueError: train.batch_size 15 must be divisible by the 2 processes") == 2
    assert "Fatal Python error" not in logs and "Traceback" not in logs and not workdir.exists()


def test_the_launcher_refuses_a_bad_command_line(capsys):
    from runtime import launch as launcher

    assert launcher.main(["pretrain", "--config=nsynth_mixup"]) == 1
    assert "usage: python -m runtime.launch --processes=N MODULE" in capsys.readouterr().err
    assert launcher.main(["--processes=0", "pretrain"]) == 1


def test_the_watchdog_ends_a_job_that_stops_making_progress(monkeypatch, caplog):
    from runtime import processes

    exits = []
    monkeypatch.setattr(processes.jax, "process_count", lambda: 2)
    monkeypatch.setattr(processes.os, "_exit", exits.append)
    watchdog = processes.Watchdog(timeout_seconds=0.4)
    watchdog.pet("step 7")
    wait_for(lambda: exits, "the watchdog", timeout=30)
    watchdog.close()
    assert exits[0] == 1
    assert "made no progress for" in caplog.text and "after step 7" in caplog.text


def test_one_process_needs_none_of_it():
    from runtime import processes

    processes.check_agree({"anything": 1})  # no collective, no error
    processes.barrier("alone")
    assert processes.lost_peer(RuntimeError("x")) is None and processes.primary()
    assert processes.Watchdog().stopped is not None


def test_sigterm_alone_asks_the_loop_to_checkpoint_and_stop():
    """One process: SIGTERM is caught (not fatal) and the loop's next `stop(step)` says stop; the
    previous handler is back afterwards."""
    from runtime import processes

    before = signal.getsignal(signal.SIGTERM)
    preemption = processes.Preemption()
    assert not preemption.stop(3)
    os.kill(os.getpid(), signal.SIGTERM)
    wait_for(lambda: preemption.stop(4), "the signal")
    preemption.close()
    assert signal.getsignal(signal.SIGTERM) is before
