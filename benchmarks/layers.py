"""`--parts=layers`: where the train step's convolution time goes, layer by layer — XLA's forward
convolution, the input gradient (a forward convolution with the flipped kernel) and the blocked
im2col kernel gradient of encoders/compute.py, against PyTorch's forward, `grad.conv2d_input`
and `grad.conv2d_weight` (oneDNN) on the same shapes, when torch is installed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import encoders
from benchmarks.timing import median_seconds
from encoders.compute import _conv

POOLED_AFTER = {"compact": {0, 1, 2, 3}, "vggish": {0, 1, 3}}  # conv indices followed by a 2×2 max-pool
PADDING = ((1, 1), (1, 1))


def conv_shapes(name: str, height: int = 96, width: int = 64) -> list[tuple[int, int, int, int]]:
    """(height, width, C_in, C_out) of each 3×3 convolution of encoder `name` on a 96×64 patch."""
    model = encoders.build_encoder({"name": name}, rngs=nnx.Rngs(0))
    kernels = [m.kernel[...].shape for _, m in nnx.iter_modules(model) if isinstance(m, nnx.Conv)]
    shapes = []
    for index, (_, _, cin, cout) in enumerate(kernels):
        shapes.append((height, width, cin, cout))
        if index in POOLED_AFTER[name]:
            height, width = height // 2, width // 2
    return shapes


def profile(name: str, batch: int, rounds: int) -> list[dict]:
    """Milliseconds per layer and part, ours and (if installed) PyTorch's."""
    from benchmarks import torch_reference

    rng = np.random.default_rng(0)
    rows = []
    for height, width, cin, cout in conv_shapes(name):
        x = rng.standard_normal((batch, height, width, cin)).astype(np.float32)
        k = (0.1 * rng.standard_normal((3, 3, cin, cout))).astype(np.float32)
        g = rng.standard_normal((batch, height, width, cout)).astype(np.float32)
        row = {"layer": f"{height}×{width}, {cin}→{cout}", "ours": _ours(x, k, g, rounds)}
        if torch_reference.available():
            row["pytorch"] = _pytorch(x, k, g, rounds)
        rows.append(row)
    return rows


def _milliseconds(fn, rounds: int) -> float:
    return 1e3 * median_seconds(fn, rounds, warmup=2)


def _ours(x, k, g, rounds: int) -> dict:
    x, k, g = map(jnp.asarray, (x, k, g))
    forward = jax.jit(lambda x, k: _conv(x, k, PADDING, None))
    input_grad = jax.jit(lambda x, k, g: jax.vjp(lambda a: _conv(a, k, PADDING, None), x)[1](g)[0])
    kernel_grad = jax.jit(lambda x, k, g: jax.vjp(lambda b: _conv(x, b, PADDING, None), k)[1](g)[0])
    return {
        "forward": _milliseconds(lambda: forward(x, k).block_until_ready(), rounds),
        "input_grad": _milliseconds(lambda: input_grad(x, k, g).block_until_ready(), rounds),
        "kernel_grad": _milliseconds(lambda: kernel_grad(x, k, g).block_until_ready(), rounds),
    }


def _pytorch(x, k, g, rounds: int) -> dict:
    import torch

    x, g = (torch.tensor(a).permute(0, 3, 1, 2).contiguous() for a in (x, g))
    k = torch.tensor(k).permute(3, 2, 0, 1).contiguous()
    return {
        "forward": _milliseconds(lambda: torch.nn.functional.conv2d(x, k, padding=1), rounds),
        "input_grad": _milliseconds(lambda: torch.nn.grad.conv2d_input(x.shape, k, g, padding=1), rounds),
        "kernel_grad": _milliseconds(lambda: torch.nn.grad.conv2d_weight(x, k.shape, g, padding=1), rounds),
    }


def markdown(name: str, batch: int, rows: list[dict]) -> list[str]:
    out = []
    for row in rows:
        ours, theirs = row["ours"], row.get("pytorch")
        cells = " / ".join(f"{ours[p]:.1f}" for p in ("forward", "input_grad", "kernel_grad"))
        versus = " / ".join(f"{theirs[p]:.1f}" for p in ("forward", "input_grad", "kernel_grad")) if theirs else ""
        layer = f"conv {name} {row['layer']}, batch {batch}"
        out.append(f"| {layer} | overtone / pytorch | {cells} ms | {versus} ms | fwd / dx / dk |")
    return out
