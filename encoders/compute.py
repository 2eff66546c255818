"""How an encoder computes, separate from what it computes: the convolution formulation and
the compute dtype. Neither changes a parameter, so checkpoints and bundles are the same
whichever is used; `apply_compute` sets them on a built encoder in place.

Convolutions (`conv`):
  * `xla`: `lax.conv_general_dilated`, XLA's own convolution. The right choice on GPU and
    TPU, where it maps to cuDNN / the MXU.
  * `im2col`: every stride-1 convolution as shifted slices of the padded input concatenated
    along channels, then one matmul with the kernel reshaped to (kh·kw·C_in, C_out). On CPU,
    XLA's convolution (and above all its backward pass) is far slower than its matmul, which
    is the best-tuned kernel it has; this formulation turns forward and both backward
    convolutions into matmuls plus cheap pads and slices. It is written by hand because no
    library offers it as a drop-in for `nnx.Conv` (it is the classic Caffe lowering).
  * `auto` (default): the one measured fastest on the backend. Today that is `xla`
    everywhere: with the allocator kept warm (runtime/allocator.py) XLA's CPU convolution
    beat this lowering on VGGish and the compact CNN (`python -m benchmarks` times both), and
    on GPU/TPU XLA's convolution is the native path.
  Both give the same numbers to float32 rounding (tests/test_compute.py).

Dtype (`dtype`): `float32`, or `bfloat16` for mixed precision on accelerators: every
Conv / Linear / BatchNorm of the encoder computes in bfloat16 (flax's `dtype`; batch-norm
statistics stay float32), while the parameters — the master weights Adam updates — stay
float32 (`param_dtype`). The objectives' heads keep float32 parameters and no compute
dtype, so flax promotes the bfloat16 embedding and every loss is computed in float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

CONV_IMPLS = ("auto", "xla", "im2col")
AUTO_CONV = {"cpu": "xla", "gpu": "xla", "tpu": "xla"}  # backend → measured winner (benchmarks)
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
    """`lax.conv_general_dilated`'s signature; stride-1, undilated, ungrouped NHWC/HWIO 2-D
    convolutions become one matmul, anything else falls through to `lax`."""
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
            lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
            feature_group_count, precision=precision, preferred_element_type=preferred_element_type,
            out_sharding=out_sharding,
        )  # fmt: skip
    kh, kw, cin, cout = rhs.shape
    if padding == "SAME":
        padding = [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in (kh, kw)]
    elif padding == "VALID":
        padding = [(0, 0), (0, 0)]
    x = jnp.pad(lhs, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
    height, width = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    # (kh, kw, C_in) order on the last axis, matching the kernel's HWIO reshape.
    columns = jnp.concatenate([x[:, i : i + height, j : j + width, :] for i in range(kh) for j in range(kw)], axis=-1)
    return jnp.dot(
        columns, rhs.reshape(kh * kw * cin, cout), precision=precision,
        preferred_element_type=preferred_element_type, out_sharding=out_sharding,
    )  # fmt: skip


def max_pool_2x2(x: jax.Array) -> jax.Array:
    """2×2 max-pooling with stride 2 and SAME padding over (B, H, W, C), with `nnx.max_pool`'s
    values and gradients (the first maximum of a window, in row-major order, takes the whole
    gradient, as XLA's select-and-scatter gives it). Written by hand because XLA lowers
    `reduce_window`'s gradient to select-and-scatter, which on CPU took 6–10× longer than these
    elementwise selects (214 ms against 37 ms for the compact CNN's first pool at batch 64).
    The backward pass recomputes the window maximum from the saved input: comparing against the
    forward's output instead breaks whenever XLA rematerialises the input with other rounding."""
    height, width = x.shape[1], x.shape[2]
    if height % 2 or width % 2:  # SAME padding for a stride-2 window: one more row/column at the end
        x = jnp.pad(x, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), constant_values=-jnp.inf)
    return _pool(x)


def _corners(x: jax.Array) -> tuple[jax.Array, ...]:
    batch, height, width, channels = x.shape
    six = x.reshape(batch, height // 2, 2, width // 2, 2, channels)
    return six[:, :, 0, :, 0], six[:, :, 0, :, 1], six[:, :, 1, :, 0], six[:, :, 1, :, 1]


@jax.custom_vjp
def _pool(x: jax.Array) -> jax.Array:
    a, b, c, d = _corners(x)
    return jnp.maximum(jnp.maximum(a, b), jnp.maximum(c, d))


def _pool_forward(x):
    return _pool(x), x


def _pool_backward(x, grad):
    a, b, c, d = _corners(x)
    top = jnp.maximum(jnp.maximum(a, b), jnp.maximum(c, d))
    take_a = a == top
    take_b = (b == top) & ~take_a
    take_c = (c == top) & ~(take_a | take_b)
    take_d = ~(take_a | take_b | take_c)
    zero = jnp.zeros_like(grad)
    ga, gb, gc, gd = (jnp.where(t, grad, zero) for t in (take_a, take_b, take_c, take_d))
    rows = jnp.stack([jnp.stack([ga, gb], axis=3), jnp.stack([gc, gd], axis=3)], axis=2)
    return (rows.reshape(x.shape),)


_pool.defvjp(_pool_forward, _pool_backward)


def resolve_conv(conv: str) -> str:
    if conv not in CONV_IMPLS:
        raise ValueError(f"compute.conv={conv!r}; valid: {', '.join(CONV_IMPLS)}")
    return AUTO_CONV.get(jax.default_backend(), "xla") if conv == "auto" else conv


def apply_compute(encoder: nnx.Module, *, conv: str = "auto", dtype: str = "float32") -> nnx.Module:
    """Set the convolution formulation and compute dtype on every layer of `encoder`
    (in place; also returned). Parameters are untouched."""
    if dtype not in DTYPES:
        raise ValueError(f"compute.dtype={dtype!r}; valid: {', '.join(DTYPES)}")
    conv_fn = im2col_conv if resolve_conv(conv) == "im2col" else lax.conv_general_dilated
    compute_dtype = None if dtype == "float32" else DTYPES[dtype]
    for _, module in nnx.iter_modules(encoder):
        if isinstance(module, nnx.Conv):
            module.conv_general_dilated = conv_fn
        if isinstance(module, nnx.Conv | nnx.Linear | nnx.BatchNorm | nnx.ConvTranspose):
            module.dtype = compute_dtype
    encoder.compute_dtype = dtype
    return encoder
