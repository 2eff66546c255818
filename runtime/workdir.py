"""A work directory is one run: the config that created it decides its results.

`open_workdir` creates the folder and records the resolved config (`config.json`, written once)
with its fingerprint, a SHA-256 of every result-determining key. A later command on the same
folder must bring the same fingerprint: then it resumes, or reports the run finished. A
different one is refused before anything is written, naming the keys that differ and the ways
out: another `--workdir`, or `--fresh`, which moves the old run aside (never deletes it) and
starts anew. The keys in OPERATIONAL only say how to compute or log, so they may change on
resume. Each command is appended to `command.txt`.

One process per work directory: the first holds an exclusive lock on `.lock` for its life
(released by the kernel however it ends); a second command gets one line naming the holder.

What the run logs goes into it too: `MetricsWriter` appends metric rows to `metrics.jsonl` (one
JSON object a line) and TensorBoard event files; `read_metrics` reads them back.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import math
import os
import socket
import sys
from pathlib import Path

import tensorboardX

from overtone.disk import write_text_atomic
from overtone.errors import OvertoneError

# How a run computes, logs and stores, not what it computes (README, "What a run directory is").
OPERATIONAL = frozenset(
    {
        "train.log_every_steps",
        "train.transfer_guard",
        "train.checkpoint_every_steps",
        "train.keep_checkpoints",
        "data.workers",
        "data.prefetch",
        "data.pcm_cache",
        "data.embedding_cache",
        "data.embedded.cache_dir",
        "embedding_cache",
        "compute.conv",
        "export",
    }
)
# Keys added to the configs after runs were recorded without them, each with the value that does
# what those runs did: a key at that value counts as absent, so an older run directory still
# resumes (and keeps its fingerprint) under today's configs.
ADDED_KEYS = {
    "data.splits": "official",
    "data.silence_measure": "peak",
    "data.augment.chain_prob": 1.0,
    "data.source": "files",
    "data.tfds_dir": "",
    "data.tfds_name": "nsynth/full",
}
RECORD = "config.json"
_HELD: dict[Path, int] = {}  # folder → file descriptor of its lock, kept open for the process's life


class WorkdirError(OvertoneError):
    """A work directory that belongs to another run, or is in use by another process."""


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def _operational(key: str) -> bool:
    return key in OPERATIONAL or any(key.endswith("." + k) for k in OPERATIONAL)


def _determining(config: dict) -> dict[str, object]:
    return {
        k: v
        for k, v in sorted(flatten(config).items())
        if not _operational(k) and not (k in ADDED_KEYS and v == ADDED_KEYS[k])
    }


def fingerprint(config: dict) -> str:
    return hashlib.sha256(json.dumps(_determining(config), sort_keys=True, default=str).encode()).hexdigest()


def differing_keys(old: dict, new: dict) -> list[str]:
    a, b = _determining(old), _determining(new)
    return sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))


def open_workdir(workdir: str | Path, config: dict, *, fresh: bool = False, write: bool = True) -> Path:
    """The work directory for `config` (a plain dict), created or checked as the module says.
    With `write=False` it is only checked (every process of a multi-process job checks, so all
    refuse alike; process 0 alone then writes and locks)."""
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(f"--workdir={workdir} is a file, not a folder")
    record = workdir / RECORD
    leftovers = {p.name for p in workdir.iterdir()} - {".lock", "command.txt"} if workdir.is_dir() else set()
    if leftovers and not record.is_file():
        raise WorkdirError(
            f"--workdir={workdir} is not empty and holds no run (no {RECORD}; it has e.g. "
            f"{sorted(leftovers)[0]!r}): use a new or empty folder"
        )
    if not write:
        if record.is_file() and not fresh:
            _refuse_another_config(workdir, _recorded(record), config)
        return workdir
    if fresh and record.is_file():
        stamp = f"{datetime.datetime.now():%Y%m%d-%H%M%S}"
        aside = workdir.with_name(f"{workdir.name}.replaced-{stamp}")
        for n in range(1, 1000):  # two --fresh in one second
            if not aside.exists():
                break
            aside = workdir.with_name(f"{workdir.name}.replaced-{stamp}-{n}")
        _lock(workdir)  # not while another process runs in it
        os.close(_HELD.pop(workdir))
        workdir.rename(aside)
        print(f"--fresh: the previous run in {workdir} was moved to {aside}", file=sys.stderr)
    if record.is_file():  # checked before anything is written or locked: a refusal changes nothing
        _refuse_another_config(workdir, _recorded(record), config)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a file on the way, a read-only or special file system
        raise WorkdirError(f"cannot create the work directory {workdir}: {err.strerror or err}") from err
    _lock(workdir)
    if not record.is_file():
        write_text_atomic(record, json.dumps(config, indent=2))
    with open(workdir / "command.txt", "a") as history:
        history.write(" ".join(sys.argv) + "\n")
    return workdir


def check_early(workdir: str | Path, config: dict) -> None:
    """The fingerprint rule, checked before a command reads any data: refuses a work directory
    whose run has another config. Facts recorded beside the config that are not known yet (an
    encoder's weight checksum: keys absent from `config`) are left to `open_workdir`."""
    record = Path(workdir) / RECORD
    if record.is_file():
        old = _recorded(record)
        _refuse_another_config(Path(workdir), {k: v for k, v in old.items() if k in config}, config)


def _recorded(record: Path) -> dict:
    try:
        old = json.loads(record.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise WorkdirError(f"{record} is unreadable ({err}); use another --workdir, or --fresh") from err
    if not isinstance(old, dict):
        raise WorkdirError(f"{record} holds no config (a JSON {type(old).__name__}); use another --workdir, or --fresh")
    return old


def _refuse_another_config(workdir: Path, old: dict, config: dict) -> None:
    if fingerprint(old) == fingerprint(config):
        return
    keys = differing_keys(old, config)
    a, b = flatten(old), flatten(config)
    shown = ", ".join(f"{k}: {a.get(k, '<absent>')!r} → {b.get(k, '<absent>')!r}" for k in keys[:8])
    shown += f" and {len(keys) - 8} more" if len(keys) > 8 else ""
    raise WorkdirError(
        f"{workdir} holds a run with another config ({shown}); nothing was changed. Use another "
        f"--workdir, or add --fresh to move that run aside and start anew there"
    )


def _lock(workdir: Path) -> None:
    if workdir in _HELD:
        return
    path = workdir / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise WorkdirError(
            f"{workdir} is in use by {holder}; wait for it to finish, or use another --workdir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(
        fd,
        f"pid {os.getpid()} on {socket.gethostname()} since {datetime.datetime.now():%Y-%m-%d %H:%M:%S}: "
        f"{' '.join(sys.argv)[:500]}\n".encode(),
        0,
    )
    _HELD[workdir] = fd


def release(workdir: str | Path) -> None:
    """Give up the lock (tests and in-process callers that run several commands)."""
    fd = _HELD.pop(Path(workdir), None)
    if fd is not None:
        os.close(fd)


class MetricsWriter:
    """Appends rows `{"step": k, "split": name, metric: value, ...}`.

    On resume from step k, rows after k (written by the killed run after its last
    checkpoint) are dropped from the JSONL, and TensorBoard purges its events after k, so
    both logs read as one uninterrupted run.
    """

    def __init__(self, workdir: str | Path, *, resume_step: int = 0, enabled: bool = True):
        self.enabled = enabled
        self.path = Path(workdir) / "metrics.jsonl"
        if not enabled:
            return
        if resume_step and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if _step(line) <= resume_step]
            self.path.write_text("".join(line + "\n" for line in kept))
        elif self.path.exists() and not resume_step:
            self.path.unlink()
        self.tensorboard = tensorboardX.SummaryWriter(
            str(Path(workdir) / "tensorboard"), purge_step=resume_step + 1 if resume_step else None
        )

    def write(self, step: int, split: str, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"step": int(step), "split": split}
        row.update({k: float(v) for k, v in metrics.items()})
        with self.path.open("a") as f:
            f.write(json.dumps(row, allow_nan=True) + "\n")
        for name, value in metrics.items():
            if math.isfinite(float(value)):
                self.tensorboard.add_scalar(f"{split}/{name}", float(value), step)

    def close(self) -> None:
        if self.enabled:
            self.tensorboard.close()


def read_metrics(workdir: str | Path) -> list[dict]:
    path = Path(workdir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (json.JSONDecodeError, KeyError, TypeError):
        return 1 << 62  # an unreadable (half-written) row is dropped
