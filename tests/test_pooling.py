"""Max-pooling with index-routed gradients (encoders/compute.py): `nnx.max_pool`'s and
`jnp.max`'s values and gradients in isolation, the same full-step gradients as they give inside
the pretraining step on one and four devices for every encoder that pools, and finite gradients
where XLA's recomputation breaks the reference (optimisation level 0)."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO
from flax import nnx

from encoders.compute import global_max, max_pool_2x2


def reference_pool(x):
    return nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2), padding="SAME")


@pytest.mark.parametrize("shape", [(2, 8, 6, 3), (2, 5, 7, 3), (1, 1, 1, 2)])
@pytest.mark.parametrize("ties", [False, True])
def test_pool_gives_nnx_max_pool_values_and_gradients(shape, ties):
    """Also with ties (small integers): the first maximum in row-major order takes the gradient,
    as XLA's select-and-scatter gives it; and with odd sizes (SAME padding)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, shape).astype(np.float32) if ties else rng.standard_normal(shape).astype(np.float32)
    cotangent = rng.standard_normal(reference_pool(x).shape).astype(np.float32)
    ours, ours_vjp = jax.vjp(max_pool_2x2, jnp.asarray(x))
    ref, ref_vjp = jax.vjp(reference_pool, jnp.asarray(x))
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_array_equal(ours_vjp(cotangent)[0], ref_vjp(cotangent)[0])


def test_global_max_gives_the_maximum_and_sends_its_gradient_to_the_first_one():
    x = np.array([[[[1.0, 5.0]], [[3.0, 5.0]]], [[[2.0, -1.0]], [[2.0, -3.0]]]], np.float32)  # (2, 2, 1, 2)
    value, vjp = jax.vjp(global_max, jnp.asarray(x))
    np.testing.assert_array_equal(value, x.max(axis=(1, 2)))
    grad = np.asarray(vjp(jnp.array([[10.0, 20.0], [30.0, 40.0]]))[0])
    expected = np.zeros_like(x)  # hand-worked: each (example, channel) to its first maximum
    expected[0, 1, 0, 0] = 10.0  # 3 > 1
    expected[0, 0, 0, 1] = 20.0  # 5 = 5: the first
    expected[1, 0, 0, 0] = 30.0  # 2 = 2: the first
    expected[1, 0, 0, 1] = 40.0  # -1 > -3
    np.testing.assert_array_equal(grad, expected)
    unique = np.random.default_rng(1).standard_normal((3, 4, 5, 6)).astype(np.float32)
    ours = jax.grad(lambda v: jnp.sum(global_max(v) ** 2))(unique)
    jax_own = jax.grad(lambda v: jnp.sum(v.max(axis=(1, 2)) ** 2))(unique)
    np.testing.assert_array_equal(ours, jax_own)  # without ties: JAX's own rule


def full_step(tmp_path, name: str, xla_flags: str, poolings: str, *encoders: str) -> dict:
    out = tmp_path / f"{name}.npz"
    env = {**os.environ, "XLA_FLAGS": xla_flags, "PYTHONPATH": str(REPO)}
    command = [sys.executable, str(REPO / "tests" / "full_step_gradients.py"), str(out), poolings, *encoders]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(out) as saved:
        return dict(saved)


def assert_same_gradients(got: dict, want: dict, got_prefix: str, want_prefix: str) -> None:
    """Both formulations send each gradient to the same element; the other operations of the
    step are the same, so the two differ by float32 summation order only: well under 1e-4 of a
    leaf's largest gradient (as for the convolution formulations, tests/test_compute.py)."""
    leaves = [k[len(want_prefix) :] for k in want if k.startswith(want_prefix)]
    assert leaves
    for leaf in leaves:
        a, b = got[got_prefix + leaf], want[want_prefix + leaf]
        assert np.isfinite(a).all(), f"{got_prefix}{leaf}: non-finite gradients"
        np.testing.assert_allclose(a, b, atol=1e-4 * float(np.max(np.abs(b))) + 1e-12, rtol=0, err_msg=leaf)


def test_full_step_gradients_equal_xla_pooling_on_one_and_four_devices_and_stay_finite_at_level_0(tmp_path):
    """Both poolings' full-step gradients for both encoders, the compact CNN's also on 4 devices
    (one process; VGGish pools with max_pool_2x2, as the compact CNN does, and its 4-device
    compilations took ~16 s); then ours at XLA's optimisation level 0, where the reference global
    max gave NaN gradients for 77 of the compact CNN's last 256 channels (docs/methods.md §3):
    finite, and equal to the default level's. One test, so that one worker computes the
    gradients both parts use."""
    four = full_step(
        tmp_path, "four", "--xla_force_host_platform_device_count=4", "ours,reference", "compact", "vggish:1"
    )
    assert not [key for key in four if key.startswith("vggish/") and "/4/" in key]
    for got in ("compact/ours/1/", "compact/ours/4/", "compact/reference/4/", "vggish/ours/1/"):
        assert_same_gradients(four, four, got, got.split("/")[0] + "/reference/1/")
    unoptimised = full_step(tmp_path, "o0", "--xla_backend_optimization_level=0", "ours", "compact")
    assert_same_gradients(unoptimised, four, "compact/ours/1/", "compact/ours/1/")
