"""Orbax checkpoints: `checkpoints/` keeps the latest few, `best/` the best by validation loss.

Orbax writes each step into a temporary folder and renames it when complete, so a process
killed mid-save leaves no half-written checkpoint: the unfinished folder is ignored and
restore takes the newest finished step. If that one cannot be read (a damaged disk, a
hand-deleted file), restore falls back to the step before it, with a warning.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from overtone.errors import OvertoneError

log = logging.getLogger(__name__)


class CheckpointWriteError(OvertoneError, OSError):
    """A checkpoint could not be written (a full disk, a quota, a lost mount)."""


class Checkpoints:
    def __init__(self, workdir: str | Path, *, keep: int = 2):
        workdir = Path(workdir).absolute()
        self.latest = ocp.CheckpointManager(
            workdir / "checkpoints", options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        )
        self.best = ocp.CheckpointManager(
            workdir / "best", options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True)
        )

    def save(self, step: int, state, meta: dict, *, best: bool = False) -> None:
        manager = self.best if best else self.latest
        if step in manager.all_steps():
            # A run resumed from an earlier checkpoint recomputes this step (it was saved here,
            # e.g. as the best, before the kill): the new save replaces the old one.
            manager.wait_until_finished()
            manager.delete(step)
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        with self._failing_writes_explained(manager, step):
            manager.save(step, args=args, force=True)

    def restore(self, template, *, best: bool = False):
        """(state, meta) of the newest readable step, or None when there is none.

        `template` is a state with the right structure, shapes and shardings (for example the
        freshly initialised one); it is not modified.
        """
        manager = self.best if best else self.latest
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), template)
        for step in sorted(manager.all_steps(), reverse=True):
            try:
                restored = manager.restore(
                    step,
                    args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()),
                )
            except Exception as err:  # noqa: BLE001 - any unreadable step: fall back, loudly
                log.warning(
                    "checkpoint step %d in %s is unreadable (%s); trying an older one", step, manager.directory, err
                )
                continue
            return restored["state"], restored["meta"]
        return None

    def wait(self) -> None:
        for manager in (self.latest, self.best):
            with self._failing_writes_explained(manager, None):
                manager.wait_until_finished()

    @contextlib.contextmanager
    def _failing_writes_explained(self, manager, step: int | None):
        """Orbax reports a failed write (saves run in the background) in many forms; turn any of
        them into one CheckpointWriteError that says what survives."""
        try:
            yield
        except Exception as err:  # noqa: BLE001 - re-raised with the context a user needs
            finished = max(self.latest.all_steps(), default=None)
            which = f"step {step}" if step is not None else "a checkpoint"
            raise CheckpointWriteError(
                f"could not write {which} to {manager.directory} (disk full or not writable?): "
                f"{str(err).splitlines()[0][:300]}. Complete checkpoints are untouched (latest: "
                f"{finished if finished is not None else 'none'}); unfinished ones are ignored on resume. "
                "Free space and rerun the same command to resume."
            ) from err

    def close(self) -> None:
        self.latest.close()
        self.best.close()
