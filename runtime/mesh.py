"""Data parallelism over every device of every process, with `jax.sharding`.

One mesh axis, `data`: the global batch is sharded along it and the training state is
replicated, so XLA inserts the gradient all-reduce itself (no pmap). Under jit the maths is
that of one device with the whole batch — batch-norm statistics and mixup partners included —
so N devices give the losses of one within float tolerance.
"""

from __future__ import annotations

import logging
import platform

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from overtone.errors import BadValueError

log = logging.getLogger(__name__)


def data_mesh() -> Mesh:
    """All devices on one `data` axis. Auto axis types let XLA place the collectives that
    cross-example operations need (mixup's batch roll, batch-norm statistics)."""
    mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))
    log.info("data-parallel mesh over %d devices (%s)", mesh.size, jax.default_backend())
    return mesh


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec("data"))


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Process-local rows → one global array per key, split over the `data` axis."""
    sharding = batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()}


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    if batch_size % mesh.size:
        raise BadValueError(f"train.batch_size {batch_size} must be divisible by the {mesh.size} devices of the mesh")


def machine() -> dict:
    """What computed a run's numbers, for its summary: XLA compiles for the device kind and the
    host CPU, so the same config, data and seed can end in different last bits on another host
    (and, over hundreds of steps, in different test metrics), as with other library versions."""
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:  # Linux names the model here; platform.processor() is often ""
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions = {}
    for package in ("jax", "jaxlib", "flax", "optax", "numpy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "devices": f"{jax.device_count()} × {jax.devices()[0].device_kind}",
        "processes": jax.process_count(),
        "host_cpu": cpu,
        "versions": versions,
    }
