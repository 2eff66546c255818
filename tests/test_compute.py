"""How encoders compute (encoders/compute.py): the im2col lowering gives XLA's convolution's
numbers, forward and backward; bfloat16 compute keeps float32 master weights; the process
settings of runtime/performance.py apply."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

import encoders
from encoders.compute import apply_compute, im2col_conv, resolve_conv
from encoders.pretrained import checksum


def direct_conv(x: np.ndarray, k: np.ndarray, padding) -> np.ndarray:
    """Cross-correlation by the definition, in float64: the independent reference."""
    x = np.pad(x.astype(np.float64), ((0, 0), *padding, (0, 0)))
    kh, kw, _, cout = k.shape
    height, width = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    out = np.zeros((x.shape[0], height, width, cout))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("bhwc,co->bhwo", x[:, i : i + height, j : j + width], k[i, j])
    return out


@pytest.mark.parametrize(
    "shape, kernel, padding",
    [
        ((2, 9, 7, 1), (3, 3), "SAME"),  # VGGish's first layer: one input channel
        ((2, 8, 6, 5), (3, 3), "SAME"),
        ((1, 8, 6, 3), (5, 3), "SAME"),  # uneven kernel
        ((2, 8, 6, 4), (3, 3), "VALID"),
        ((2, 8, 6, 4), (3, 3), ((2, 0), (1, 1))),
        ((2, 5, 5, 4), (1, 1), "SAME"),
    ],
)
@pytest.mark.parametrize("block_bytes", [4 << 20, 1], ids=["whole-batch", "one-example-blocks"])
def test_im2col_equals_the_definition_and_xla(shape, kernel, padding, block_bytes, monkeypatch):
    """Both ways of the kernel gradient: one matmul over the batch, and blocks accumulated."""
    import encoders.compute

    monkeypatch.setattr(encoders.compute, "COLUMN_BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    k = rng.standard_normal((*kernel, shape[-1], 6)).astype(np.float32)
    ours = np.asarray(im2col_conv(x, k, (1, 1), padding))
    xla = np.asarray(lax.conv_general_dilated(x, k, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")))
    explicit = padding if not isinstance(padding, str) else None
    if explicit is None:
        explicit = [((n - 1) // 2, n - 1 - (n - 1) // 2) for n in kernel] if padding == "SAME" else [(0, 0), (0, 0)]
    np.testing.assert_allclose(ours, direct_conv(x, k, explicit), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours, xla, rtol=1e-5, atol=1e-5)

    def loss(conv):
        return lambda x, k: jnp.sum(jnp.sin(conv(x, k)))

    xla_conv = lambda x, k: lax.conv_general_dilated(x, k, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))  # noqa: E731
    ours_grads = jax.grad(loss(lambda x, k: im2col_conv(x, k, (1, 1), padding)), argnums=(0, 1))(x, k)
    xla_grads = jax.grad(loss(xla_conv), argnums=(0, 1))(x, k)
    for a, b in zip(ours_grads, xla_grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_blocks_are_the_largest_divisor_of_the_batch_that_fits():
    from encoders.compute import COLUMN_BLOCK_BYTES, block_size

    assert block_size(64, COLUMN_BLOCK_BYTES // 3) == 2  # 3 would fit, but does not divide 64
    assert block_size(64, COLUMN_BLOCK_BYTES // 4) == 4
    assert block_size(6, COLUMN_BLOCK_BYTES // 4) == 3
    assert block_size(64, 2 * COLUMN_BLOCK_BYTES) == 1 and block_size(8, 1) == 8


def test_strided_and_dilated_convolutions_fall_through_to_xla():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 9, 9, 3)).astype(np.float32)
    k = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    dn = ("NHWC", "HWIO", "NHWC")
    for kwargs in (dict(window_strides=(2, 2)), dict(window_strides=(1, 1), rhs_dilation=(2, 2))):
        strides = kwargs.pop("window_strides")
        expected = lax.conv_general_dilated(x, k, strides, "SAME", dimension_numbers=dn, **kwargs)
        got = im2col_conv(
            x, k, strides, "SAME", dimension_numbers=lax.conv_dimension_numbers(x.shape, k.shape, dn), **kwargs
        )
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", ["vggish", "compact"])
def test_both_formulations_give_one_encoder_the_same_numbers(name):
    patches = jax.random.normal(jax.random.key(0), (3, 96, 64))

    def embed_and_grads(conv: str):
        encoder = apply_compute(encoders.build_encoder(dict(name=name), rngs=nnx.Rngs(0)), conv=conv)
        before = checksum(encoder)
        out, grads = nnx.jit(nnx.value_and_grad(lambda m: (lambda y: (jnp.sum(y**2), y))(m(patches)), has_aux=True))(
            encoder
        )
        return out[1], grads, before

    ours, ours_grads, ours_sum = embed_and_grads("im2col")
    xla, xla_grads, xla_sum = embed_and_grads("xla")
    assert ours_sum == xla_sum  # the parameters do not depend on the formulation
    scale = float(jnp.max(jnp.abs(xla)))
    np.testing.assert_allclose(ours, xla, atol=1e-5 * scale)
    for a, b in zip(jax.tree.leaves(ours_grads), jax.tree.leaves(xla_grads), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4 * float(jnp.max(jnp.abs(b))) + 1e-7)


def test_bfloat16_computes_in_bfloat16_with_float32_master_weights():
    patches = jax.random.normal(jax.random.key(0), (4, 96, 64))
    full = apply_compute(encoders.build_encoder(dict(name="compact"), rngs=nnx.Rngs(0)))
    mixed = apply_compute(encoders.build_encoder(dict(name="compact"), rngs=nnx.Rngs(0)), dtype="bfloat16")
    full.eval(), mixed.eval()
    assert {x.dtype for x in jax.tree.leaves(nnx.state(mixed, nnx.Param))} == {jnp.dtype(jnp.float32)}
    out = nnx.jit(lambda m: m(patches))(mixed)
    assert out.dtype == jnp.bfloat16
    reference = nnx.jit(lambda m: m(patches))(full)
    relative = float(jnp.linalg.norm(out.astype(jnp.float32) - reference) / jnp.linalg.norm(reference))
    assert 1e-4 < relative < 3e-2  # really bfloat16 (not float32), and close to it
    head = nnx.Linear(128, 3, rngs=nnx.Rngs(1))
    grads = nnx.jit(nnx.grad(lambda m: jnp.mean(head(m(patches)) ** 2)))(mixed)
    assert {g.dtype for g in jax.tree.leaves(grads)} == {jnp.dtype(jnp.float32)}  # Adam updates float32
    assert head(out).dtype == jnp.float32  # heads, and so losses, stay float32


def test_bad_compute_settings_are_refused():
    encoder = encoders.build_encoder(dict(name="compact"), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="compute.conv='winograd'; valid: auto, xla, im2col"):
        apply_compute(encoder, conv="winograd")
    with pytest.raises(ValueError, match="compute.dtype='float16'"):
        apply_compute(encoder, dtype="float16")
    assert resolve_conv("auto") in ("xla", "im2col")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt exists on Linux only")
def test_keep_freed_memory_applies_on_linux(monkeypatch):
    from runtime import performance

    monkeypatch.setenv("OVERTONE_SYSTEM_ALLOCATOR", "1")
    assert performance.keep_freed_memory() is False
    monkeypatch.delenv("OVERTONE_SYSTEM_ALLOCATOR")
    assert performance.keep_freed_memory() is True


def test_compilation_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    from runtime import performance

    monkeypatch.setenv("OVERTONE_COMPILATION_CACHE", "off")
    assert performance.compilation_cache_dir() is None
    monkeypatch.setenv("OVERTONE_COMPILATION_CACHE", str(tmp_path / "xla"))
    assert performance.compilation_cache_dir() == tmp_path / "xla"
