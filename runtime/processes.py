"""One job, several processes: joining, who writes, barriers, agreement, preemption.

A multi-process job (one process per host, joined by `jax.distributed`) behaves as one:

- `initialize` joins it when the launcher sets OVERTONE_DISTRIBUTED=1, from the plain JAX_*
  variables or a cluster environment JAX detects (SLURM, Open MPI, Cloud TPU, Kubernetes);
- `primary()` (process 0) is the one writer of every file outside orbax's checkpoints, which
  all processes save and restore together;
- `barrier(name)` waits for every process, and fails with one line when one never comes;
- `check_agree` compares a few facts (record counts and digests, step counts) across processes
  at the start, so processes that read different data stop before training instead of
  computing a silently wrong global batch;
- `Watchdog` ends a job whose processes stop making progress (a process hung in a collective
  its peers never join) with one line, where a collective would otherwise wait for ever;
- `Preemption` turns SIGTERM into "checkpoint at the next step and exit 0": with several
  processes through JAX's preemption sync point (the notice reaches every process and they
  agree on the step), alone through a signal handler. Outside the train loop (reading and
  preparing data, the final evaluation and export) a one-process run answers SIGTERM with one
  line and exit status 143 (`exit_on_sigterm`) instead of dying without a word.

In a one-process run every function here is a cheap no-op.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import signal
import socket
import threading
import time

import jax
import numpy as np

from overtone.errors import BadValueError, OvertoneError

log = logging.getLogger(__name__)

# The plain launcher's variables: `jax.distributed.initialize()` alone reads only the first
# from the environment (it auto-detects the rest on SLURM, Open MPI, Cloud TPU, Kubernetes).
PLAIN = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
_BARRIERS = itertools.count()


class DistributedError(OvertoneError):
    """The processes of a multi-process job could not join, meet or agree."""


class Preempted(Exception):  # noqa: N818 - not an error: the run stopped on request, resumable
    """SIGTERM was received; the run checkpointed at `step` on every process."""

    def __init__(self, step: int):
        super().__init__(f"stopped on SIGTERM at step {step}; its checkpoint is saved: rerun the command to resume")
        self.step = step


def distributed_arguments(environ=os.environ) -> dict:
    """`jax.distributed.initialize` keywords from the environment: all three PLAIN variables
    (a plain launcher, e.g. two processes on localhost), or neither process count nor id (a
    cluster JAX detects: srun, mpirun, a TPU pod slice). Half a set is refused, naming what is
    missing. OVERTONE_DISTRIBUTED_TIMEOUT (seconds, default 300) bounds the wait for the others."""
    timeout = environ.get("OVERTONE_DISTRIBUTED_TIMEOUT", "300")
    if not timeout.isdigit() or int(timeout) < 1:
        raise BadValueError(f"OVERTONE_DISTRIBUTED_TIMEOUT={timeout!r}: expected a whole number of seconds ≥ 1")
    arguments = {"initialization_timeout": int(timeout)}
    given = {name: environ[name] for name in PLAIN if environ.get(name)}
    if "JAX_NUM_PROCESSES" not in given and "JAX_PROCESS_ID" not in given:
        return arguments  # a cluster environment (or the coordinator alone): jax detects the rest
    missing = [name for name in PLAIN if name not in given]
    if missing:
        raise BadValueError(
            f"OVERTONE_DISTRIBUTED=1 with {', '.join(sorted(given))} set also needs {', '.join(missing)}"
        )
    count, index = given["JAX_NUM_PROCESSES"], given["JAX_PROCESS_ID"]
    if not (count.isdigit() and index.isdigit() and int(index) < int(count)):
        raise BadValueError(
            f"JAX_NUM_PROCESSES={count!r}, JAX_PROCESS_ID={index!r}: expected whole numbers with "
            "0 ≤ JAX_PROCESS_ID < JAX_NUM_PROCESSES"
        )
    return arguments | {
        "coordinator_address": given["JAX_COORDINATOR_ADDRESS"],
        "num_processes": int(count),
        "process_id": int(index),
    }


def initialize() -> None:
    """Join a multi-process job when the launcher asked for it (OVERTONE_DISTRIBUTED=1); one
    line, not a traceback, when the job cannot be joined."""
    if os.environ.get("OVERTONE_DISTRIBUTED", "0") != "1":
        return
    arguments = distributed_arguments()
    if arguments.get("process_id", 0) > 0:
        _wait_for_coordinator(arguments["coordinator_address"], arguments["initialization_timeout"])
    try:
        jax.distributed.initialize(**arguments)
    except (ValueError, RuntimeError) as err:  # jax's words on one line, with what to set
        raise DistributedError(
            f"cannot join the multi-process job ({' '.join(str(err).split())[:300]}); set "
            f"{', '.join(PLAIN)} for a plain launcher, or run under srun / mpirun / a TPU pod"
        ) from err
    log.info(
        "process %d of %d joined (%d devices in all)", jax.process_index(), jax.process_count(), jax.device_count()
    )


def _wait_for_coordinator(address: str, timeout_seconds: int) -> None:
    """Wait until process 0's coordinator accepts connections. JAX's client aborts the whole
    interpreter (no Python exception) when it cannot register, so an absent or misaddressed
    coordinator is found here first and said in one line."""
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise BadValueError(f"JAX_COORDINATOR_ADDRESS={address!r}: expected HOST:PORT")
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
            return
        except OSError as err:
            if time.monotonic() > deadline:
                raise DistributedError(
                    f"no coordinator answered at {address} within {timeout_seconds} s ({err.strerror or err}): "
                    "start process 0 (JAX_PROCESS_ID=0) with the same JAX_COORDINATOR_ADDRESS, reachable from "
                    "this host (OVERTONE_DISTRIBUTED_TIMEOUT sets the wait)"
                ) from None
            time.sleep(0.5)


def several() -> bool:
    """Whether this run is one of several processes."""
    return jax.process_count() > 1


def index() -> int:
    return jax.process_index()


def primary() -> bool:
    """Whether this process writes the job's files (process 0)."""
    return jax.process_index() == 0


FAILED = "overtone/failed/"  # where a failing process writes its line (key: its index)


def _client():
    from jax._src import distributed  # the coordination client: jax exposes no public barrier

    return distributed.global_state.client


def barrier(name: str, *, timeout_seconds: int = 3600) -> None:
    """Wait until every process reaches the barrier `name` (each process must pass the same
    names in the same order). Built on the coordination service's key-value store rather than
    its barrier, so that a process that failed meanwhile (`fail`) ends the wait at once with its
    reason; a process that never comes fails the job with one line after `timeout_seconds`."""
    if jax.process_count() == 1:
        return
    client, count = _client(), jax.process_count()
    key = f"overtone/barrier/{next(_BARRIERS)}-{name}"
    client.key_value_set(f"{key}/{jax.process_index()}", "here")
    deadline = time.monotonic() + timeout_seconds
    while len(client.key_value_dir_get(f"{key}/")) < count:
        failure = _failure(client)
        if failure:
            raise DistributedError(f"another process failed while this one waited at {name!r}: {failure}")
        if time.monotonic() > deadline:
            raise DistributedError(
                f"process {jax.process_index()} waited {timeout_seconds} s for the others at {name!r} and they "
                "did not come: did another process hang or die? See its log"
            )
        time.sleep(0.05)


def _failure(client) -> str | None:
    found = client.key_value_dir_get(FAILED)
    return found[0][1] if found else None


def fail(line: str) -> None:
    """Leave a multi-process job on a user's error: log `line`, tell the others (their waits at
    a barrier end with it), and exit 1 without jax's shutdown barrier. Process 0 holds the
    coordination service, so it waits (up to 30 s) until the others have said they leave too:
    leaving earlier would abort them with JAX's fatal error instead of their own one line (one
    inside a collective then fails on its own, with runtime.cli's one line)."""
    index, count = jax.process_index(), jax.process_count()
    log.error("process %d: %s", index, line)
    client = _client()
    client.key_value_set(f"{FAILED}{index}", f"process {index}: {line}"[:2000])
    if index == 0:  # until every process has said it leaves (one waiting at a barrier learns of it there)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if len(client.key_value_dir_get(FAILED)) >= count:
                    break
            except Exception:  # noqa: BLE001 - the service can no longer say: leave
                break
            time.sleep(0.05)
    logging.shutdown()
    os._exit(1)


def lost_peer(err: BaseException) -> str | None:
    """What to tell the user when `err` is a collective that failed because another process of
    the job is gone (None for any other error, and in a one-process run)."""
    if jax.process_count() == 1 or not isinstance(err, jax.errors.JaxRuntimeError):
        return None
    first = " ".join(str(err).split())[:300]
    return (
        f"process {jax.process_index()}: a collective with the other processes failed ({first}); another "
        "process probably died — see its log. Rerun the job to resume from the last checkpoint"
    )


def local_copy(tree):
    """This process's own copy of a replicated state (arrays on its first device): what process 0
    alone may compute with, e.g. to export or score, without waiting on the others."""
    return jax.tree.map(lambda x: x.addressable_data(0) if isinstance(x, jax.Array) else x, tree)


def digest(*parts) -> str:
    """A short SHA-256 of the reprs of `parts` (lists of records, counts) for `check_agree`."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def check_agree(facts: dict[str, int | str]) -> None:
    """Refuse to go on unless every process holds the same `facts` (record counts and digests,
    step counts): one line naming the first fact that differs and each process's value."""
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    names = sorted(facts)
    mine = np.array([int(hashlib.sha256(str(facts[n]).encode()).hexdigest()[:7], 16) for n in names], np.int32)
    everyone = np.asarray(multihost_utils.process_allgather(mine))  # (processes, facts)
    for column, name in enumerate(names):
        if len(set(everyone[:, column].tolist())) > 1:
            raise DistributedError(
                f"the processes disagree on {name} (this is process {jax.process_index()}, with {facts[name]!r}): "
                "every process must see the same data and config — the same files under the same root, on a "
                "shared file system"
            )


class Preemption:
    """`stop(step)` after each train step says whether to checkpoint now and stop (SIGTERM)."""

    def __init__(self):
        self.many = jax.process_count() > 1
        self.signalled = threading.Event()
        self.previous = None
        if not self.many and threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, lambda *_: self.signalled.set())

    def stop(self, step: int) -> bool:
        if self.many:  # JAX's preemption service has the SIGTERM; every process agrees on the step
            from jax.experimental import multihost_utils

            return multihost_utils.reached_preemption_sync_point(step)
        return self.signalled.is_set()

    def close(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
            self.previous = None


TERMINATED = 128 + signal.SIGTERM  # the shell's status for a process ended by SIGTERM
STOPPED = b"stopped on SIGTERM outside the train loop; rerun the command (training resumes from its last checkpoint)\n"


def exit_on_sigterm() -> None:
    """One process, outside the train loop (whose `Preemption` takes SIGTERM over while it
    trains): say so in one line and exit 143 at once. Nothing is lost that the loop would have
    kept: every file the toolkit writes is renamed into place only when complete, and a rerun
    resumes from the last checkpoint. (Several processes leave SIGTERM to JAX's preemption
    service.)"""

    def stop(*_) -> None:
        os.write(2, STOPPED)
        os._exit(TERMINATED)  # at once: no thread pool of a data scan to wait for

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)


class Watchdog:
    """In a multi-process job, exit with one line when `pet` is not called for `timeout_seconds`
    (OVERTONE_HANG_TIMEOUT, default 1800): the loop pets it after every step, evaluation batch
    and checkpoint, so only a process stuck waiting for the others trips it. A dead peer is
    noticed sooner, by the failing collective itself (see runtime.cli)."""

    def __init__(self, timeout_seconds: float | None = None):
        self.timeout = timeout_seconds or float(os.environ.get("OVERTONE_HANG_TIMEOUT", "1800"))
        self.last, self.doing = time.monotonic(), "starting"
        self.stopped = threading.Event()
        if jax.process_count() > 1:
            threading.Thread(target=self._watch, name="overtone-watchdog", daemon=True).start()

    def pet(self, doing: str) -> None:
        self.last, self.doing = time.monotonic(), doing

    def _watch(self) -> None:
        while not self.stopped.wait(min(10.0, self.timeout / 4)):
            idle = time.monotonic() - self.last
            if idle > self.timeout:
                log.error(
                    "process %d made no progress for %.0f s after %s: another process hung or died "
                    "(see its log); stopping the job (OVERTONE_HANG_TIMEOUT=%g)",
                    jax.process_index(),
                    idle,
                    self.doing,
                    self.timeout,
                )
                logging.shutdown()
                os._exit(1)

    def close(self) -> None:
        self.stopped.set()
