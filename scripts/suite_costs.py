"""Where the test suite's CPU goes: every Python process it starts, and JAX's compilations per test.

    python scripts/suite_costs.py -q -n 2 -p no:cacheprovider          # the whole suite
    python scripts/suite_costs.py -q tests/test_pretrain_e2e.py          # one file

runs `python -m pytest ARGS` with a measuring hook in every Python process of this environment
(the pytest workers and each command a test starts, README commands included), then prints the CPU
seconds of all of them, and JAX's backend-compilation, tracing and lowering seconds with the
persistent-cache hits and misses, by test file and by test. pytest's `--durations` gives wall time
per test only, and misses the processes a test starts; this is the measurement behind the suite-time
figures in issue 17's notes.

The hook is a `.pth` file (Python runs the import line of a `.pth` in site-packages at every start,
which is the one way to reach processes whose environment a test rebuilds); it is written into this
environment's site-packages for the run and removed after it. It acts only where $OVERTONE_COSTS_LOG
is set, and listens to `jax.monitoring`'s duration events (registered at the first import after JAX's
monitoring module exists), attributing each to $PYTEST_CURRENT_TEST at the moment it fires.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

HOOK_MODULE = "_overtone_suite_costs_hook"
HOOK = """
import atexit, json, os, resource, sys

LOG = os.environ.get("OVERTONE_COSTS_LOG")
if LOG:
    _per_test, _listening = {}, [False]
    _TIMED = ("backend_compile_duration", "jaxpr_trace_duration", "jaxpr_to_mlir_module_duration")

    def _slot():
        return _per_test.setdefault(os.environ.get("PYTEST_CURRENT_TEST", "-").split(" (")[0], {})

    def _duration(event, duration, **_):
        name = event.rsplit("/", 1)[-1]
        if name in _TIMED:
            slot = _slot()
            slot[name] = slot.get(name, 0.0) + duration

    def _event(event, **_):
        name = event.rsplit("/", 1)[-1]
        if name in ("cache_hits", "cache_misses"):
            slot = _slot()
            slot[name] = slot.get(name, 0) + 1

    def _audit(event, args):
        monitoring = sys.modules.get("jax._src.monitoring")
        if _listening[0] or event != "import" or monitoring is None:
            return
        if hasattr(monitoring, "register_event_duration_secs_listener"):
            _listening[0] = True
            monitoring.register_event_duration_secs_listener(_duration)
            monitoring.register_event_listener(_event)

    sys.addaudithook(_audit)

    def _write():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        record = {"argv": sys.argv[:3], "cpu": usage.ru_utime + usage.ru_stime, "per_test": _per_test,
                  "test": os.environ.get("PYTEST_CURRENT_TEST")}
        with open(LOG, "a") as log:
            log.write(json.dumps(record) + "\\n")

    atexit.register(_write)
"""


def run(pytest_args: list[str], log: Path) -> int:
    site = Path(sysconfig.get_paths()["purelib"])
    module, pth = site / f"{HOOK_MODULE}.py", site / f"zz{HOOK_MODULE}.pth"
    module.write_text(HOOK)
    pth.write_text(f"import {HOOK_MODULE}\n")
    try:
        env = dict(os.environ, OVERTONE_COSTS_LOG=str(log))
        return subprocess.run([sys.executable, "-m", "pytest", *pytest_args], env=env).returncode
    finally:
        module.unlink(missing_ok=True)
        pth.unlink(missing_ok=True)


def report(log: Path) -> str:
    records = [json.loads(line) for line in log.read_text().splitlines()]
    by_test: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for record in records:
        for test, counts in record["per_test"].items():
            by_test[test].update(counts)
    by_file: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for test, counts in by_test.items():
        by_file[test.split("::")[0]].update(counts)
    total = collections.Counter()
    for counts in by_test.values():
        total.update(counts)
    started = [r for r in records if r["test"]]  # processes a test started (workers have none)
    lines = [
        f"Python processes: {len(records)} ({len(started)} started by tests); "
        f"CPU {sum(r['cpu'] for r in records):.0f} s in all, {sum(r['cpu'] for r in started):.0f} s in those started",
        f"JAX: backend compilation {total['backend_compile_duration']:.0f} s (cache hits included: "
        f"{total['cache_hits']} hits, {total['cache_misses']} misses written), tracing "
        f"{total['jaxpr_trace_duration']:.0f} s, lowering {total['jaxpr_to_mlir_module_duration']:.0f} s",
        "",
    ]
    for title, table, count in (("by file", by_file, 20), ("by test", by_test, 30)):
        lines.append(f"{'compile s':>9} {'misses':>6} {'hits':>6} {'trace s':>7}  {title}")
        ranked = sorted(table.items(), key=lambda item: -item[1]["backend_compile_duration"])[:count]
        for name, counts in ranked:
            lines.append(
                f"{counts['backend_compile_duration']:9.1f} {counts['cache_misses']:6d} {counts['cache_hits']:6d} "
                f"{counts['jaxpr_trace_duration']:7.1f}  {name}"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="suite-costs-") as folder:
        log = Path(folder) / "costs.jsonl"
        code = run(sys.argv[1:], log)
        print(report(log) if log.is_file() else "no Python process reported (is pytest installed here?)")
    raise SystemExit(code)


if __name__ == "__main__":
    main()
