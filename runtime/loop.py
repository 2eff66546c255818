"""The one training loop, shared by pretraining and fine-tuning.

`fit` trains any NNX model whose loss is `loss_fn(model, batch, key, train) -> (loss,
metrics)`: one jitted step with the state donated, the batch sharded over the `data` mesh
axis, the state replicated. Around it: validation every `eval_every_steps`, early stopping
on validation loss, orbax checkpoints (latest and best), automatic resume from the work
directory, JSONL + TensorBoard metrics, a progress bar.

Determinism: the step's RNG key is `fold_in(seed, step)` and batch k is a pure function of
k (see corpora.pipeline), so a run resumed from step k computes what an uninterrupted run
would have.

NaN safety: metrics reach the host one step late (so the device is never idle waiting),
but every checkpoint is taken only after the loss, gradient norm and updated-parameter norm
of its step were seen finite. A non-finite loss or gradient stops the run with the step number; the checkpoints on
disk all predate it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from overtone.disk import tree_sha256
from overtone.errors import BadValueError, OvertoneError
from overtone.progress import Progress
from runtime import mesh as meshlib
from runtime import processes
from runtime.checkpoint import Checkpoints, trained
from runtime.optim import build_optimizer
from runtime.workdir import MetricsWriter

log = logging.getLogger(__name__)

LossFn = Callable[[nnx.Module, dict, jax.Array, bool], tuple[jax.Array, dict]]


class NonFiniteLossError(OvertoneError, FloatingPointError):
    pass


@dataclasses.dataclass
class Data:
    """What the loop reads: batch iterators of process-local numpy rows."""

    train: Callable[[int], Iterator[dict]]  # start step → endless batches from that step
    steps_per_epoch: int
    validation: Callable[[], Iterator[dict]] | None = None
    final: dict[str, Callable[[], Iterator[dict]]] = dataclasses.field(default_factory=dict)
    # called once at the end (by process 0 alone, on its own copy of the weights) with the
    # evaluated model — the best, in evaluation mode — and which checkpoint it is ({"checkpoint",
    # "step", "state_sha256"}); its dict joins process 0's summary as "report"
    report: Callable[[nnx.Module, dict], dict] | None = None
    # called at every evaluation with the current model (evaluation mode, this process's own copy
    # of the weights); its numbers join the validation row (e.g. a linear probe, collapse
    # diagnostics: pretrain/evaluators.py) and `train.select_by` may pick the best checkpoint by one
    # ("last" keeps the latest evaluated step as the best, as recipes that report their last epoch do)
    evaluate_model: Callable[[nnx.Module], dict[str, float]] | None = None
    # what every process of a multi-process job must agree on before training (processes.digest
    # of the record lists, counts): processes that read different data are refused
    agree: dict[str, int | str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Steps:
    state: nnx.State  # {"model": ..., "optimizer": ...}, replicated over the mesh (what checkpoints hold)
    train_step: Callable  # (state, batch, step) -> (state, metrics); state is donated
    eval_step: Callable  # (state, batch) -> metrics
    eval_model: Callable  # state -> the model in evaluation mode


def build_steps(model: nnx.Module, loss_fn: LossFn, tx: optax.GradientTransformation, mesh, *, seed: int) -> Steps:
    """The jitted train and eval steps over `mesh` and the initial replicated state."""
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    model.train()
    train_graph, state = nnx.split(trained(model, optimizer))
    model.eval()
    eval_graph, _ = nnx.split(trained(model, optimizer))
    state = jax.device_put(state, meshlib.replicated(mesh))
    state_sharding = jax.tree.map(lambda x: x.sharding, state)
    base_key = jax.random.key(seed)

    @jax.jit
    def eval_step(state, batch):
        model = nnx.merge(eval_graph, state)["model"]
        loss, metrics = loss_fn(model, batch, base_key, False)
        # the global batch's weight, for the running mean (a process sees only its own rows)
        return dict(metrics, loss=loss), jnp.sum(batch["weight"])

    def train_step(state, batch, step):
        merged = nnx.merge(train_graph, state)
        model, optimizer = merged["model"], merged["optimizer"]
        key = jax.random.fold_in(base_key, step)
        grad_fn = nnx.value_and_grad(lambda m: loss_fn(m, batch, key, True), has_aux=True)
        (loss, metrics), grads = grad_fn(model)
        # nnx.state holds live references; the identity map keeps the pre-update arrays.
        before = jax.tree.map(lambda x: x, nnx.state(model, nnx.Param))
        optimizer.update(model, grads)
        after = nnx.state(model, nnx.Param)
        metrics = dict(
            metrics,
            loss=loss,
            grad_norm=optax.global_norm(grads),
            update_norm=optax.global_norm(jax.tree.map(jnp.subtract, after, before)),
            param_norm=optax.global_norm(after),
        )
        return nnx.state(trained(model, optimizer)), metrics

    train_step = jax.jit(train_step, donate_argnums=0, out_shardings=(state_sharding, meshlib.replicated(mesh)))
    return Steps(
        state=state, train_step=train_step, eval_step=eval_step, eval_model=lambda s: nnx.merge(eval_graph, s)["model"]
    )


def _device_step(step: int, mesh) -> jax.Array:
    """The step counter as a replicated device scalar, put there explicitly (the loop makes no
    implicit host-to-device transfers; tests run it under jax.transfer_guard('disallow'))."""
    return jax.device_put(np.int32(step), meshlib.replicated(mesh))


def state_checksum(state) -> str:
    """SHA-256 over every array of a state (paths, dtypes, shapes, bytes): which weights a number
    came from."""
    return tree_sha256(state)


def _evaluated(best, progress: dict, step: int, state) -> dict:
    """Which checkpoint the final metrics come from, said plainly (also when best/ went missing)."""
    if best is not None:
        return {"checkpoint": "best", "step": int(best[1]["step"]), "state_sha256": state_checksum(best[0])}
    note = {}
    if progress.get("best_step", -1) > 0:
        log.warning(
            "best/ holds no readable checkpoint (best step was %d): evaluating the final state, step %d",
            progress["best_step"],
            step,
        )
        note = {"note": f"best/ was missing or unreadable; the best step was {progress['best_step']}"}
    return {"checkpoint": "final", "step": step, "state_sha256": state_checksum(state)} | note


def selection_score(result: dict[str, float], metric: str) -> float:
    """Lower is better: a loss as it is, any other metric (an accuracy) negated. NaN never wins."""
    if metric not in result:
        raise BadValueError(f"train.select_by={metric!r}, but validation reports only {sorted(result)}")
    value = result[metric] if metric.endswith("loss") else -result[metric]
    return value if math.isfinite(value) else math.inf


def check_batch(batch_size: int) -> None:
    """Refuse a batch the devices and processes cannot share evenly — before a work directory is
    written (fit checks again)."""
    if batch_size % jax.process_count():
        raise BadValueError(f"train.batch_size {batch_size} must be divisible by the {jax.process_count()} processes")
    if batch_size % jax.device_count():
        raise BadValueError(f"train.batch_size {batch_size} must be divisible by the {jax.device_count()} devices")


def total_steps(config, steps_per_epoch: int) -> int:
    return config.num_steps if config.num_steps > 0 else config.num_epochs * steps_per_epoch


def fit(model: nnx.Module, loss_fn: LossFn, data: Data, config, workdir: str | Path, *, lr_scales=()) -> dict:
    """Train until `num_steps` (or `num_epochs`) or early stopping; returns the run summary.

    `config` needs `seed`, `train` and `optimizer` (see configs/). Everything is written
    to `workdir`; a work directory holding a checkpoint is resumed from it. `lr_scales`:
    parameter groups with their own rate (`runtime.optim.build_optimizer`).
    """
    workdir = Path(workdir)
    tc = config.train
    mesh = meshlib.data_mesh()
    meshlib.check_batch_size(tc.batch_size, mesh)
    steps = total_steps(tc, data.steps_per_epoch)
    eval_every = tc.eval_every_steps or data.steps_per_epoch
    ckpt_every = tc.checkpoint_every_steps or eval_every
    primary = processes.primary()
    processes.check_agree(data.agree | {"steps": steps, "steps_per_epoch": data.steps_per_epoch})

    optimizer = build_optimizer(config.optimizer, steps, lr_scales, steps_per_epoch=data.steps_per_epoch)
    steps_fns = build_steps(model, loss_fn, optimizer, mesh, seed=config.seed)
    state, train_step, eval_step = steps_fns.state, steps_fns.train_step, steps_fns.eval_step

    checkpoints = Checkpoints(workdir, keep=tc.keep_checkpoints)
    progress = {"step": 0, "best_loss": None, "best_step": -1, "bad_evals": 0, "finished": False}
    restored = checkpoints.restore(state)
    if restored is not None:
        state, progress = restored
        log.info("resuming from step %d in %s", progress["step"], workdir)
    done = progress["finished"] and (workdir / "summary.json").is_file()
    processes.check_agree({"resumed from step": progress["step"], "finished": done})
    if done:
        log.info("this run already finished; nothing to do")
        checkpoints.close()
        return json.loads((workdir / "summary.json").read_text())
    select_by = tc.get("select_by", "loss")
    if progress["best_loss"] is not None and "best_score" not in progress:  # a checkpoint from before select_by
        progress["best_score"] = progress["best_loss"]
    start = progress["step"]
    writer = MetricsWriter(workdir, resume_step=start, enabled=primary)

    def evaluate(state, batches: Callable[[], Iterator[dict]]) -> dict[str, float]:
        sums: dict[str, float] = {}
        total = 0.0
        for batch in batches():
            out, weight = jax.device_get(eval_step(state, meshlib.shard_batch(batch, mesh)))
            weight = float(weight)
            watchdog.pet("an evaluation batch")
            for name, value in out.items():
                sums[name] = sums.get(name, 0.0) + float(value) * weight
            total += weight
        return {name: value / max(total, 1.0) for name, value in sums.items()} | {"examples": total}

    window: dict[str, list[float]] = {}
    clock = [time.perf_counter(), start]

    def absorb(step: int, metrics) -> None:
        """Bring one step's metrics to the host, stop on non-finite values, log every N steps."""
        values = {k: float(v) for k, v in jax.device_get(metrics).items()}
        watched = ("loss", "grad_norm", "param_norm")
        if not all(math.isfinite(values[k]) for k in watched):
            checkpoints.wait()
            raise NonFiniteLossError(
                f"non-finite training state at step {step} ("
                + ", ".join(f"{k}={values[k]}" for k in watched)
                + f"); stopped. Checkpoints in {workdir} predate it (last good step: "
                f"{max(checkpoints.latest.all_steps(), default='none')})."
            )
        for name, value in values.items():
            window.setdefault(name, []).append(value)
        if step % tc.log_every_steps == 0 or step == steps:
            now = time.perf_counter()
            rate = (step - clock[1]) / max(now - clock[0], 1e-9)
            row = {name: float(np.mean(v)) for name, v in window.items()}
            row |= {"steps_per_second": rate, "examples_per_second": rate * tc.batch_size}
            writer.write(step, "train", row)
            ticker.set(loss=row["loss"], **{"examples/s": row["examples_per_second"]})
            if ticker.bar is None:
                ticker.line()
            window.clear()
            clock[:] = [now, step]

    iterator = data.train(start)
    # Compile ahead of the first step, so the log and summary say what compilation cost (the
    # persistent compilation cache, runtime.performance, makes a rerun's cost near zero).
    first_batch = meshlib.shard_batch(next(iterator), mesh) if start < steps else None
    compile_seconds = None
    if first_batch is not None:
        began = time.perf_counter()
        train_step = train_step.lower(state, first_batch, _device_step(start, mesh)).compile()
        compile_seconds = time.perf_counter() - began
        log.info("train step compiled in %.1f s", compile_seconds)
    if start == 0 and start < steps and data.evaluate_model is not None:
        # the evaluator on the initial weights: what training is measured against, in this very run
        progress["initial"] = data.evaluate_model(steps_fns.eval_model(processes.local_copy(state)))
        writer.write(0, "initial", progress["initial"])
        log.info("before training: %s", ", ".join(f"{k} {v:.4g}" for k, v in sorted(progress["initial"].items())))
    ticker = Progress(steps, "train", initial=start, unit="step", enabled=primary, auto_lines=False)
    clock[:] = [time.perf_counter(), start]  # the logged rates count training steps, not compiling or evaluating
    pending = None
    step = start
    preemption = processes.Preemption()
    watchdog = processes.Watchdog()
    # train.transfer_guard="disallow" makes any implicit host↔device transfer in the loop an error
    try:
        with jax.transfer_guard(tc.get("transfer_guard", "allow")):
            while step < steps and not progress["finished"]:
                batch, first_batch = first_batch or meshlib.shard_batch(next(iterator), mesh), None
                state, metrics = train_step(state, batch, _device_step(step, mesh))
                step += 1
                watchdog.pet(f"step {step}")
                if pending is not None:
                    absorb(*pending)
                pending = (step, metrics)
                ticker.update(1)
                at_eval = data.validation is not None and (step % eval_every == 0 or step == steps)
                if at_eval or step % ckpt_every == 0 or step == steps:
                    absorb(*pending)
                    pending = None
                improved = False
                if at_eval:
                    result = evaluate(state, data.validation)
                    if data.evaluate_model is not None:
                        result |= data.evaluate_model(steps_fns.eval_model(processes.local_copy(state)))
                        watchdog.pet("the evaluator")
                    writer.write(step, "validation", result)
                    clock[:] = [time.perf_counter(), step]
                    shown = f"validation loss {result['loss']:.4g} on {result['examples']:.0f} examples"
                    shown_too = dict.fromkeys(k for k in (select_by, "probe_accuracy") if k != "loss" and k in result)
                    ticker.line(shown + "".join(f", {k} {result[k]:.4g}" for k in shown_too))
                    score = -float(step) if select_by == "last" else selection_score(result, select_by)
                    improved = progress.get("best_score") is None or score < progress["best_score"]
                    if improved:
                        progress.update(
                            best_loss=result["loss"], best_score=score, best_step=step, bad_evals=0, best_metrics=result
                        )
                    else:
                        progress["bad_evals"] += 1
                    if progress["bad_evals"] >= tc.early_stopping_patience:
                        log.info(
                            "early stopping at step %d: no validation improvement in %d evaluations",
                            step,
                            progress["bad_evals"],
                        )
                        progress["finished"] = True
                if step == steps:
                    progress["finished"] = True
                progress["step"] = step
                if improved:
                    checkpoints.save(step, state, dict(progress), best=True)
                saved = at_eval or step % ckpt_every == 0 or progress["finished"]
                if saved:
                    checkpoints.save(step, state, dict(progress))
                if not progress["finished"] and preemption.stop(step):
                    if pending is not None:
                        absorb(*pending)  # a checkpoint only of a step seen finite
                        pending = None
                    if not saved:
                        checkpoints.save(step, state, dict(progress))
                    checkpoints.wait()
                    raise processes.Preempted(step)
            if pending is not None:
                absorb(*pending)
        preemption.close()  # trained: a SIGTERM from here on ends the run at once (runtime.cli)
        checkpoints.wait()
        summary = {
            "final_step": step,
            "total_steps": steps,
            "stopped_early": step < steps,
            "best_step": progress["best_step"],
            "best_validation": progress.get("best_metrics"),
            "initial": progress.get("initial"),  # the evaluator before the first step (None without one)
            "compile_seconds": compile_seconds,
            "machine": meshlib.machine(),
        }
        if data.final or data.report:
            best = checkpoints.restore(state, best=True) if data.validation is not None else None
            final_state = best[0] if best is not None else state
            summary["evaluated"] = _evaluated(best, progress, step, final_state)
            for name, batches in data.final.items():
                summary[name] = evaluate(final_state, batches)
                writer.write(step, name, summary[name])
            if data.report is not None and primary:  # on this process's own copy: no collective
                local = steps_fns.eval_model(processes.local_copy(final_state))
                summary["report"] = data.report(local, summary["evaluated"])
        if primary:
            (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
        watchdog.close()  # process 0's report may take long; the others wait for it here
        processes.barrier("run finished", timeout_seconds=24 * 3600)
        return summary
    finally:
        watchdog.close()
        preemption.close()
        ticker.close()
        writer.close()
        checkpoints.wait()
        checkpoints.close()
