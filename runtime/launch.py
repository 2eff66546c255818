"""python -m runtime.launch --processes=N MODULE [ARGS ...]

Runs one training job as N processes on this machine, joined by `jax.distributed` over
localhost: what a cluster launcher (srun, mpirun) does across hosts, for trying a multi-process
job, or for using several accelerators through one process each. Each process is
`python -m MODULE ARGS` with OVERTONE_DISTRIBUTED=1 and the JAX_* variables set
(runtime.processes); process 0 prints the results.

SIGTERM and SIGINT (Ctrl-C) are passed on to every process as SIGTERM: once training has
begun, the job checkpoints at the next step and exits 0 (rerun the command to resume); before,
the processes simply end. When one process fails, the others are stopped
after a grace period. Exit status: 0 when every process succeeded, else the first failure's.

    python -m runtime.launch --processes=2 pretrain --config=nsynth_mixup --workdir=runs/two_processes
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

GRACE_SECONDS = 60  # after one process fails, how long the others get to notice and stop


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def launch(count: int, module: str, args: list[str], *, port: int | None = None) -> int:
    """Run `python -m module args` as `count` processes of one job; their exit status."""
    address = f"localhost:{port or free_port()}"
    jobs = []
    for index in range(count):
        env = os.environ | {
            "OVERTONE_DISTRIBUTED": "1",
            "JAX_COORDINATOR_ADDRESS": address,
            "JAX_NUM_PROCESSES": str(count),
            "JAX_PROCESS_ID": str(index),
        }
        # a session of its own: a terminal's Ctrl-C reaches the launcher alone, which passes it on
        jobs.append(subprocess.Popen([sys.executable, "-m", module, *args], env=env, start_new_session=True))

    def forward(_signum, _frame):  # as SIGTERM, which the processes turn into a checkpoint and exit 0
        for job in jobs:
            if job.poll() is None:
                job.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    failed_at = None
    while any(job.poll() is None for job in jobs):
        if failed_at is None and any(job.poll() not in (None, 0) for job in jobs):
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > GRACE_SECONDS:
            for job in jobs:
                if job.poll() is None:
                    print(f"runtime.launch: stopping process {jobs.index(job)} (another failed)", file=sys.stderr)
                    job.kill()
        time.sleep(0.2)
    codes = [job.returncode for job in jobs]
    failures = [code for code in codes if code != 0]
    if failures:
        print(f"runtime.launch: exit statuses {codes}", file=sys.stderr)
        return failures[0] if failures[0] > 0 else 128 - failures[0]
    return 0


def main(argv: list[str]) -> int:
    usage = "usage: python -m runtime.launch --processes=N MODULE [ARGS ...]"
    if len(argv) < 1 or argv[0] in ("-h", "--help"):
        print(__doc__ if argv else usage)
        return 0 if argv else 1
    head, _, value = argv[0].partition("=")
    if head != "--processes" or not value.isdigit() or int(value) < 1 or len(argv) < 2:
        print(f"{usage}\n(got {' '.join(argv)[:200]!r})", file=sys.stderr)
        return 1
    return launch(int(value), argv[1], argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
