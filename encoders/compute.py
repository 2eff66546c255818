"""How an encoder computes, separate from what it computes: the convolution formulation and
the compute dtype, which `apply_compute` sets on a built encoder in place (neither changes a
parameter, so checkpoints and bundles are the same whichever is used), and the max-pooling
the encoders use (last section).

Convolutions (`conv`):
  * `xla`: `lax.conv_general_dilated`, XLA's own convolution. The right choice on GPU and
    TPU, where it maps to cuDNN / the MXU.
  * `im2col`: the forward pass is XLA's convolution, but the backward pass is rewritten
    (a `jax.custom_vjp`): the kernel gradient as im2col matmuls — shifted slices of the
    padded input concatenated along channels, (kh·kw·C_in, b·H·W) @ (b·H·W, C_out), summed over
    blocks of b examples whose column buffer fits in cache (`block_size`) — and the input
    gradient as a forward convolution with the flipped kernel. On CPU, XLA computes the
    kernel gradient as a convolution with a batch-sized "kernel", its slowest case (35 GFLOP/s
    on VGGish's second layer against 220 for the same work as a matmul). Written by hand
    because no library offers it for `nnx.Conv`; im2col itself is the classic Caffe lowering.
    (Lowering the forward pass to im2col too was measured slower: XLA's forward convolution
    is good, and the 9×-sized column buffer is not free.)
  * `auto` (default): what `python -m benchmarks --parts=train` measures faster on the device
    at hand: `im2col` on CPU (2026-12-04, jax 0.10.2: the VGGish train step 1.26× XLA's, the
    compact CNN's level with it; re-measure after upgrading), `xla` on GPU and TPU (cuDNN / the
    MXU).
  Both give the same numbers to float32 rounding (tests/test_compute.py).

Dtype (`dtype`): `float32`, or `bfloat16` for mixed precision on accelerators: every
Conv / Linear / BatchNorm of the encoder computes in bfloat16 (flax's `dtype`; batch-norm
statistics stay float32), while the parameters — the master weights Adam updates — stay
float32 (`param_dtype`). The objectives' heads keep float32 parameters and no compute
dtype, so flax promotes the bfloat16 embedding and every loss is computed in float32.

Max-pooling (`max_pool_2x2`, `global_max`), whose gradient is routed by an integer index chosen in the forward pass.

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
import functools

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from overtone.errors import BadValueError

CONV_IMPLS = ("auto", "xla", "im2col")
AUTO_CONV = {"cpu": "im2col", "gpu": "xla", "tpu": "xla"}  # backend → measured winner (benchmarks)
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def im2col_conv(
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count=1,
    precision=None,
    preferred_element_type=None,
    out_sharding=None,
):
    """`lax.conv_general_dilated`'s signature. Stride-1, undilated, ungrouped NHWC/HWIO 2-D
    convolutions (padding within the kernel) get the im2col backward pass of the module
    docstring; anything else falls through to `lax`."""
    nhwc = lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))
    plain = (
        lhs.ndim == 4
        and dimension_numbers in (None, nhwc)
        and tuple(window_strides) == (1, 1)
        and all(d in (None, 1) for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
        and feature_group_count == 1
        and (padding in ("SAME", "VALID") or not isinstance(padding, str))
    )
    if not plain:
        return lax.conv_general_dilated(
            lhs,
            rhs,
            window_strides,
            padding,
            lhs_dilation,
            rhs_dilation,
            dimension_numbers,
            feature_group_count,
            precision=precision,
            preferred_element_type=preferred_element_type,
            out_sharding=out_sharding,
        )
    kh, kw, _, _ = rhs.shape
    if padding == "SAME":
        padding = [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in (kh, kw)]
    elif padding == "VALID":
        padding = [(0, 0), (0, 0)]
    padding = tuple((int(lo), int(hi)) for lo, hi in padding)
    if not all(0 <= p <= k - 1 for (lo, hi), k in zip(padding, (kh, kw), strict=True) for p in (lo, hi)):
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, dimension_numbers=nhwc, precision=precision)
    return _conv(lhs, rhs, padding, precision)


_NHWC = ("NHWC", "HWIO", "NHWC")


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv(x, kernel, padding, precision):
    return lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=_NHWC, precision=precision)


def _conv_forward(x, kernel, padding, precision):
    return _conv(x, kernel, padding, precision), (x, kernel)


def _conv_backward(padding, precision, residuals, grad):
    x, kernel = residuals
    kh, kw, cin, cout = kernel.shape
    # input gradient: a forward convolution of the output gradient with the flipped, transposed
    # kernel (XLA runs forward convolutions well; its own transposed form ran slower)
    mirrored = [(k - 1 - lo, k - 1 - hi) for (lo, hi), k in zip(padding, (kh, kw), strict=True)]
    flipped = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)
    dx = lax.conv_general_dilated(grad, flipped, (1, 1), mirrored, dimension_numbers=_NHWC, precision=precision)
    padded = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
    chunk = block_size(x.shape[0], grad.shape[1] * grad.shape[2] * kh * kw * cin * x.dtype.itemsize)
    if chunk == x.shape[0]:
        dk = _kernel_gradient(padded, grad, kh, kw, precision)
    else:  # block by block, accumulated: each block's column buffer stays in cache
        blocks = (
            padded.reshape(-1, chunk, *padded.shape[1:]),
            grad.reshape(-1, chunk, *grad.shape[1:]),
        )
        step = lambda total, pair: (total + _kernel_gradient(*pair, kh, kw, precision), None)  # noqa: E731
        dk = lax.scan(step, jnp.zeros((kh * kw * cin, cout), jnp.float32), blocks)[0]
    return dx, dk.reshape(kh, kw, cin, cout).astype(kernel.dtype)


COLUMN_BLOCK_BYTES = 4 << 20  # the column buffer of one block; measured by benchmarks (below)


def block_size(batch: int, bytes_per_example: int) -> int:
    """The largest divisor of `batch` whose examples' column buffers fit COLUMN_BLOCK_BYTES (at
    least 1). Blocking the kernel gradient over the batch keeps each block's column buffer in
    cache: on 2 CPU cores the VGGish layers' kernel gradients ran 1.5–1.9× faster in blocks of
    2–4 examples than as one (B·H·W)-row matmul, the compact CNN's within noise to 2×."""
    fit = max(1, COLUMN_BLOCK_BYTES // max(1, bytes_per_example))
    return max(d for d in range(1, min(batch, fit) + 1) if batch % d == 0)


def _kernel_gradient(padded, grad, kh, kw, precision):
    """im2col of the padded input, (kh·kw·C_in, N) @ (N, C_out) with N = B·H·W; columns in
    (kh, kw, C_in) order, matching the kernel's HWIO reshape. Accumulated in float32."""
    height, width, cin = grad.shape[1], grad.shape[2], padded.shape[-1]
    columns = jnp.concatenate(
        [padded[:, i : i + height, j : j + width, :] for i in range(kh) for j in range(kw)], axis=-1
    ).reshape(-1, kh * kw * cin)
    return lax.dot_general(
        columns,
        grad.reshape(-1, grad.shape[-1]),
        (((0,), (0,)), ((), ())),
        precision=precision,
        preferred_element_type=jnp.float32,
    )


_conv.defvjp(_conv_forward, _conv_backward)


def resolve_conv(conv: str) -> str:
    if conv not in CONV_IMPLS:
        raise BadValueError(f"compute.conv={conv!r}; valid: {', '.join(CONV_IMPLS)}")
    return AUTO_CONV.get(jax.default_backend(), "xla") if conv == "auto" else conv


def apply_compute(encoder: nnx.Module, *, conv: str = "auto", dtype: str = "float32") -> nnx.Module:
    """Set the convolution formulation and compute dtype on every layer of `encoder`
    (in place; also returned). Parameters are untouched."""
    if dtype not in DTYPES:
        raise BadValueError(f"compute.dtype={dtype!r}; valid: {', '.join(DTYPES)}")
    conv_fn = im2col_conv if resolve_conv(conv) == "im2col" else lax.conv_general_dilated
    compute_dtype = None if dtype == "float32" else DTYPES[dtype]
    for _, module in nnx.iter_modules(encoder):
        if isinstance(module, nnx.Conv):
            module.conv_general_dilated = conv_fn
        if isinstance(module, nnx.Conv | nnx.Linear | nnx.BatchNorm | nnx.ConvTranspose):
            module.dtype = compute_dtype
    encoder.compute_dtype = dtype
    return encoder


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
    one the functions above replace; for the benchmark's race and the tests' comparison."""
    global max_pool_2x2, global_max
    saved = max_pool_2x2, global_max
    max_pool_2x2 = lambda x: nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2), padding="SAME")  # noqa: E731
    global_max = lambda x: x.max(axis=(1, 2))  # noqa: E731
    try:
        yield
    finally:
        max_pool_2x2, global_max = saved
