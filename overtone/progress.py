"""Progress for people and for logs: a tqdm bar in a terminal, plain log lines otherwise.

Under `nohup`, a batch scheduler or CI, stderr is a file and a bar would be either silent
(tqdm disables itself) or a wall of carriage returns; there a line every `every` items and
at least every `seconds` seconds carries the same fields (done/total, rate, ETA).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator

from tqdm import tqdm

log = logging.getLogger("overtone.progress")


def interactive() -> bool:
    return sys.stderr.isatty()


def eta(remaining: float, rate: float) -> str:
    """'1:02:03' for `remaining` items at `rate` items per second ('?' when unknown)."""
    if rate <= 0 or remaining < 0:
        return "?"
    seconds = int(round(remaining / rate))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """`update(n, **fields)` advances; a terminal gets a bar, a log gets a line every `every`
    items (default: a tenth of the total) or `seconds` seconds, and always at the end. With
    `auto_lines=False` the log gets lines only when `line()` is called (the train loop calls it
    when its metrics for a step arrive)."""

    def __init__(
        self,
        total: int,
        desc: str,
        *,
        initial: int = 0,
        unit: str = "it",
        every: int | None = None,
        seconds: float = 60.0,
        enabled: bool = True,
        auto_lines: bool = True,
    ):
        self.total, self.desc, self.unit, self.done = total, desc, unit, initial
        self.every = every or max(1, total // 10)
        self.seconds, self.enabled, self.auto_lines = seconds, enabled, auto_lines
        self.quiet_seconds = 5.0
        self.bar = (
            tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True)
            if (enabled and interactive())
            else None
        )
        self.started, self.start_count = time.perf_counter(), initial
        self.last_line, self.last_count = self.started, initial
        self.fields: dict[str, str] = {}

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.started
        return (self.done - self.start_count) / elapsed if elapsed > 0 else 0.0

    def update(self, n: int = 1, **fields) -> None:
        self.done += n
        if fields:
            self.set(**fields)
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        due = self.done - self.last_count >= self.every or now - self.last_line >= self.seconds
        slow = now - self.started >= self.quiet_seconds  # a phase over in seconds needs no report
        if self.enabled and self.auto_lines and slow and (due or self.done >= self.total):
            self.line()
            self.last_line, self.last_count = now, self.done

    def set(self, **fields) -> None:
        """Fields shown with the bar and in the next line."""
        self.fields.update({k: f"{v:.4g}" if isinstance(v, float) else str(v) for k, v in fields.items()})
        if self.bar is not None:
            self.bar.set_postfix(self.fields, refresh=False)

    def line(self, note: str = "") -> None:
        """One log line with every field (also used for events such as an evaluation)."""
        if not self.enabled:
            return
        rate = self.rate()
        parts = [f"{self.desc}: {self.unit} {self.done}/{self.total}"]
        parts += [f"{k} {v}" for k, v in self.fields.items()]
        parts += [f"{rate:,.2f} {self.unit}/s", f"ETA {eta(self.total - self.done, rate)}"]
        text = ", ".join(parts) + (f" — {note}" if note else "")
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            log.info("%s", text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def track(items: Iterable, total: int, desc: str, *, unit: str = "file") -> Iterator:
    """Iterate `items`, showing progress as `Progress` does."""
    progress = Progress(total, desc, unit=unit)
    try:
        for item in items:
            yield item
            progress.update(1)
    finally:
        progress.close()
