"""Orbax checkpoints: `checkpoints/` keeps the latest few, `best/` the best by validation loss.

A checkpoint holds the loop's state as named items, `{"model": ..., "optimizer": ...}` (nnx
states), plus a JSON `meta` item (step, best loss, ...). Only `runtime/` reads or writes this
layout: other stages receive a model (in memory) or an encoder bundle (`encoders.bundle`);
`read_model_part` is how a stage above asks for part of a saved model by name.

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


def trained(model, optimizer) -> dict:
    """What the loop trains and checkpoints, by name: split it with nnx.split, save its state."""
    return {"model": model, "optimizer": optimizer}


class CheckpointReadError(OvertoneError):
    """A run's checkpoint is missing, unreadable or does not hold what was asked for."""


class Checkpoints:
    def __init__(self, workdir: str | Path, *, keep: int = 2):
        workdir = Path(workdir).absolute()
        self.latest, self.best = (
            ocp.CheckpointManager(
                workdir / name,
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=kept,
                    create=True,
                    # both may save at one step: in a multi-process job their barriers need their own names
                    multiprocessing_options=ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=name),
                ),
            )
            for name, kept in (("checkpoints", keep), ("best", 1))
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
        errors = []
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
                errors.append(f"step {step}: {str(err).splitlines()[0][:200]}")
                continue
            return restored["state"], restored["meta"]
        if errors and not best:  # never start again from step 0 over checkpoints that exist
            raise CheckpointReadError(
                f"none of the checkpoints in {manager.directory} can be read into this model ({errors[0]}): "
                "written by another model or toolkit version? Use another --workdir, or --fresh to move the run aside"
            )
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


def step_folder(run: Path, which: str = "best") -> Path:
    """The finished step folder of `which` in a work directory: best (else latest), latest, or a
    step number (under either)."""
    if which not in ("best", "latest") and not which.isdigit():
        raise CheckpointReadError(f"checkpoint must be best, latest or a step number, got {which!r}")
    kinds = {"best": ("best", "checkpoints"), "latest": ("checkpoints",)}.get(which, ("checkpoints", "best"))
    for kind in kinds:
        finished = [p for p in (run / kind).glob("*") if p.name.isdigit() and (p / "state").is_dir()]
        if which.isdigit():
            finished = [p for p in finished if int(p.name) == int(which)]
        if finished:
            return max(finished, key=lambda p: int(p.name))
    raise CheckpointReadError(f"{run} holds no finished checkpoint {which!r} under best/ or checkpoints/")


def read_model_part(run: str | Path, part: dict, *, which: str = "best") -> tuple[dict, dict]:
    """Restore only `part` of a saved model — e.g. `{"encoder": pure_dict}` for a model whose
    encoder is its `encoder` attribute — from checkpoint `which` of work directory `run`, without
    reading the rest (heads, optimizer state). `part` is a pure dict (nnx.to_pure_dict) giving
    the names, shapes and dtypes; returns (the restored pure dict, where it came from:
    {"checkpoint", "step"})."""
    folder = step_folder(Path(run), which)
    wrapped = {"model": _as_saved(part)}
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), wrapped)
    try:
        restored = ocp.PyTreeCheckpointer().restore(
            folder / "state",
            args=ocp.args.PyTreeRestore(
                item=abstract,
                restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
                partial_restore=True,
            ),
        )
    except Exception as err:  # noqa: BLE001 - orbax raises many types; name the checkpoint
        raise CheckpointReadError(f"cannot read {sorted(part)} from checkpoint {folder}: {err}") from err
    origin = {"checkpoint": "best" if folder.parent.name == "best" else "latest", "step": int(folder.name)}
    return _as_pure(restored["model"]), origin


def _as_saved(tree):
    """A pure dict as orbax stores an nnx state: every array under a `value` key."""
    return {k: _as_saved(v) for k, v in tree.items()} if isinstance(tree, dict) else {"value": tree}


def _as_pure(tree):
    if isinstance(tree, dict) and set(tree) == {"value"} and not isinstance(tree["value"], dict):
        return tree["value"]
    return {k: _as_pure(v) for k, v in tree.items()}
