"""Max-pooling whose gradient is routed by an integer index chosen in the forward pass.

Both functions give `nnx.max_pool`'s / `jnp.max`'s values, and send each output's gradient to
one input: the first maximum in row-major order, as XLA's select-and-scatter does for
`nnx.max_pool` (for `jnp.max`, JAX splits the gradient evenly among tied maxima; ties between
positive activations have probability zero, and ReLU's zeros get no gradient either way).

Why by hand, twice over:

* Speed. XLA lowers `reduce_window`'s gradient to select-and-scatter, which on CPU took 6–10×
  longer than elementwise selects for the compact CNN's first pool (`python -m benchmarks`
  races the whole train step with XLA's pooling beside this one).
* Correctness. JAX differentiates a max by comparing the input with the output
  (`x == max(x)`), and XLA is free to recompute the input inside the fusion that does that
  comparison — from the convolution output, with other rounding than the copy the max was
  taken of. When no element compares equal, the gradient is 0/0. `docs/methods.md §3` gives
  the smallest case (conv → batch-norm → ReLU → global max: NaN gradients for 8 of 256
  channels at XLA's optimisation level 0). A comparison against a recomputed window maximum
  fails the same way, which is why an earlier hand-written pool's gradients went wrong inside
  the full training step while being right in isolation. Here the forward pass records
  *which* element won, as an integer, and the backward pass only compares integers: however
  XLA rounds, each output's gradient goes to exactly one input of its window.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
from flax import nnx


def max_pool_2x2(x: jax.Array) -> jax.Array:
    """2×2 max-pooling, stride 2, SAME padding, over (B, H, W, C): `nnx.max_pool(x, (2, 2),
    strides=(2, 2), padding="SAME")`."""
    height, width = x.shape[1], x.shape[2]
    if height % 2 or width % 2:  # SAME for a stride-2 window: one more row/column at the end
        x = jnp.pad(x, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), constant_values=-jnp.inf)
    return _pool(x)


def _corners(x: jax.Array) -> tuple[jax.Array, ...]:
    """The four positions of each 2×2 window, in row-major order."""
    batch, height, width, channels = x.shape
    six = x.reshape(batch, height // 2, 2, width // 2, 2, channels)
    return six[:, :, 0, :, 0], six[:, :, 0, :, 1], six[:, :, 1, :, 0], six[:, :, 1, :, 1]


def _pool_with_winner(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    first, *rest = _corners(x)
    best, winner = first, jnp.zeros(first.shape, jnp.int8)
    for position, value in enumerate(rest, start=1):
        better = value > best  # strictly: the first maximum keeps the window
        best = jnp.where(better, value, best)
        winner = jnp.where(better, jnp.int8(position), winner)
    return best, winner


@jax.custom_vjp
def _pool(x: jax.Array) -> jax.Array:
    return _pool_with_winner(x)[0]


def _pool_forward(x):
    return _pool_with_winner(x)


def _pool_backward(winner, grad):
    zero = jnp.zeros((), grad.dtype)
    a, b, c, d = (jnp.where(winner == position, grad, zero) for position in range(4))
    rows = jnp.stack([jnp.stack([a, b], axis=3), jnp.stack([c, d], axis=3)], axis=2)
    batch, height, width, channels = grad.shape
    return (rows.reshape(batch, 2 * height, 2 * width, channels),)


_pool.defvjp(_pool_forward, _pool_backward)


@jax.custom_vjp
def global_max(x: jax.Array) -> jax.Array:
    """(B, H, W, C) → (B, C): the maximum over time and frequency, `x.max(axis=(1, 2))`."""
    return x.max(axis=(1, 2))


def _global_forward(x):
    flat = x.reshape(x.shape[0], -1, x.shape[-1])
    winner = jnp.argmax(flat, axis=1)  # the first maximum, row-major
    chosen = (jnp.arange(flat.shape[1])[None, :, None] == winner[:, None, :]).reshape(x.shape)
    return jnp.take_along_axis(flat, winner[:, None, :], axis=1)[:, 0], chosen


def _global_backward(chosen, grad):
    return (jnp.where(chosen, grad[:, None, None, :], jnp.zeros((), grad.dtype)),)


global_max.defvjp(_global_forward, _global_backward)


@contextlib.contextmanager
def xla_pooling():
    """Inside: encoders traced here use JAX's own formulation (`nnx.max_pool`, `jnp.max`), the
    one this module replaces; for the benchmark's race and the tests' comparison."""
    global max_pool_2x2, global_max
    saved = max_pool_2x2, global_max
    max_pool_2x2 = lambda x: nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2), padding="SAME")  # noqa: E731
    global_max = lambda x: x.max(axis=(1, 2))  # noqa: E731
    try:
        yield
    finally:
        max_pool_2x2, global_max = saved
