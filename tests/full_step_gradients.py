"""The pretraining step's gradients for each encoder, with the toolkit's pooling and with the
reference pooling (`nnx.max_pool`, `jnp.max`), on one device and on every device of this process.

    python tests/full_step_gradients.py OUT.npz POOLINGS ENCODER[:1]...   # POOLINGS: ours,reference

Run by tests/test_pooling.py in a process of its own (XLA_FLAGS set the device count and the
optimisation level); `ENCODER:1` computes that encoder's on one device only. Keys:
`ENCODER/POOLING/DEVICES/LEAF`.
"""

from __future__ import annotations

import contextlib
import sys

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import configs
import encoders
from encoders import compute
from pretrain.train import build_model
from runtime.cli import build_config

POOLINGS = {"ours": contextlib.nullcontext, "reference": compute.xla_pooling}


def batch_for(frontend, size: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    samples = frontend.samples_for_patches(1)
    return {
        "audio": (0.1 * rng.standard_normal((size, samples))).astype(np.float32),
        "family": np.arange(size) % 11,
        "weight": np.ones(size, np.float32),
    }


def gradients(encoder: str, devices: int) -> dict[str, np.ndarray]:
    config = build_config(configs, f"nsynth_mixup:encoder={encoder}")
    with config.unlocked():
        config.encoder = encoders.match_frontend(config.encoder.to_dict(), config.frontend.to_dict())
    model = build_model(config, {"family": 11})
    model.train()
    frontend = encoders.build_frontend(config.frontend)
    mesh = Mesh(np.array(jax.devices()[:devices]), ("data",))
    batch = {k: jax.device_put(v, NamedSharding(mesh, PartitionSpec("data"))) for k, v in batch_for(frontend).items()}

    @nnx.jit
    def step(model, batch):
        def loss(m):
            return m.objective(m.encoder, frontend, batch, jax.random.key(1), train=True)[0]

        return nnx.grad(loss)(model)

    grads = nnx.state(step(model, batch), nnx.Param)
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(grads)}


def main(out: str, labels: list[str], names: list[str]) -> None:
    saved = {}
    for name, _, only in (spec.partition(":") for spec in names):
        for label in labels:
            for devices in [1] if only == "1" else sorted({1, jax.device_count()}):
                with POOLINGS[label]():  # the encoders look the pooling up when traced
                    computed = gradients(name, devices)
                for leaf, value in computed.items():
                    saved[f"{name}/{label}/{devices}/{leaf}"] = value
    np.savez(out, **saved)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(","), sys.argv[3:])
