"""The JAX contenders: the shared loop's jitted train step (runtime.loop.build_steps: donated
state, Adam, metrics) and the embedding forward pass, for any registered encoder and
convolution formulation, plus the full pretraining step of `nsynth_mixup`."""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from ml_collections import ConfigDict

import encoders
from encoders.compute import apply_compute, xla_pooling
from runtime import mesh as meshlib
from runtime.loop import build_steps
from runtime.optim import build_optimizer

ADAM = ConfigDict(dict(name="adam", learning_rate=1e-4, weight_decay=0.0, schedule="constant", warmup_steps=0))


def xla_flops(compiled) -> float:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost or {}
    return float(cost.get("flops", float("nan")))


class Runner:
    """A compiled step with its state, callable with no arguments (blocks until done)."""

    def __init__(self, step, state, *args):
        self.step, self.state, self.args = step, state, args

    def __call__(self):
        self.state, out = self.step(self.state, *self.args)
        jax.block_until_ready(out)


class _WithHead(nnx.Module):
    def __init__(self, encoder):
        self.encoder = encoder
        self.head = nnx.Linear(encoder.embedding_dim, 11, rngs=nnx.Rngs(1))


def encoder_step(
    name: str,
    batch_size: int,
    conv: str = "auto",
    dtype: str = "float32",
    pooling: str = "index",
    column_block_bytes: int = 0,
) -> tuple[Runner, float]:
    """Encoder + 11-way softmax head + cross-entropy + Adam on (B, 96, 64) patches: the work the
    PyTorch reference does. Returns the runner and XLA's FLOP count for one step. `pooling`:
    the encoders' own (index-routed, encoders/compute.py) or `xla` (nnx.max_pool, jnp.max);
    `column_block_bytes` > 0 replaces encoders.compute.COLUMN_BLOCK_BYTES for im2col (huge: one
    matmul over the whole batch)."""
    encoder = apply_compute(encoders.build_encoder(dict(name=name), rngs=nnx.Rngs(0)), conv=conv, dtype=dtype)
    mesh = meshlib.data_mesh()

    def loss_fn(model, batch, key, train):
        logits = model.head(model.encoder(batch["x"]))
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean(), {}

    steps = build_steps(_WithHead(encoder), loss_fn, build_optimizer(ADAM, 1000), mesh, seed=0)
    rng = np.random.default_rng(0)
    batch = meshlib.shard_batch(
        {
            "x": rng.standard_normal((batch_size, 96, 64)).astype(np.float32),
            "y": rng.integers(0, 11, batch_size).astype(np.int32),
        },
        mesh,
    )
    step = jax.device_put(np.int32(0), meshlib.replicated(mesh))
    with contextlib.ExitStack() as scope:  # the encoder is traced here
        if pooling == "xla":
            scope.enter_context(xla_pooling())
        if column_block_bytes:
            scope.enter_context(_column_blocks(column_block_bytes))
        compiled = steps.train_step.lower(steps.state, batch, step).compile()
    return Runner(compiled, steps.state, batch, step), xla_flops(compiled)


@contextlib.contextmanager
def _column_blocks(size: int):
    import encoders.compute

    kept = encoders.compute.COLUMN_BLOCK_BYTES
    encoders.compute.COLUMN_BLOCK_BYTES = size
    try:
        yield
    finally:
        encoders.compute.COLUMN_BLOCK_BYTES = kept


def embed_step(name: str, batch_size: int, conv: str = "auto") -> tuple[callable, float]:
    """Embeddings of a (B, 96, 64) batch in evaluation mode, jitted."""
    encoder = apply_compute(encoders.build_encoder(dict(name=name), rngs=nnx.Rngs(0)), conv=conv)
    encoder.eval()
    graph, state = nnx.split(encoder)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((batch_size, 96, 64)), jnp.float32)
    compiled = jax.jit(lambda s, x: nnx.merge(graph, s)(x)).lower(state, x).compile()
    return (lambda: compiled(state, x).block_until_ready()), xla_flops(compiled)


def pretraining_step(name: str, batch_size: int, conv: str = "auto", dtype: str = "float32") -> tuple[Runner, float]:
    """The full `nsynth_mixup` step: waveform → on-device log-mel → encoder → mixup softmax → Adam."""
    from configs.nsynth_mixup import get_config
    from pretrain import build_model

    config = get_config(f"encoder={name}")
    config.compute.conv, config.compute.dtype = conv, dtype
    frontend = encoders.build_frontend(config.frontend)
    model = build_model(config, {"family": 11, "instrument": 1006})
    mesh = meshlib.data_mesh()
    steps = build_steps(
        model,
        lambda m, b, k, t: m.objective(m.encoder, frontend, b, k, train=t),
        build_optimizer(config.optimizer, 1000),
        mesh,
        seed=0,
    )
    rng = np.random.default_rng(0)
    samples = frontend.samples_for_patches(config.data.segment_patches)
    batch = meshlib.shard_batch(
        {
            "audio": rng.uniform(-0.5, 0.5, (batch_size, samples)).astype(np.float32),
            "family": rng.integers(0, 11, batch_size).astype(np.int32),
            "instrument": np.zeros(batch_size, np.int32),
            "weight": np.ones(batch_size, np.float32),
        },
        mesh,
    )
    step = jax.device_put(np.int32(0), meshlib.replicated(mesh))
    compiled = steps.train_step.lower(steps.state, batch, step).compile()
    return Runner(compiled, steps.state, batch, step), xla_flops(compiled)
