"""A waveform encoder after Zhong et al. (docs/methods.md §3): learnable sinc band-pass filters → ResNet-34 → LDE.

`encoders/zhong.py` (`sinc_zhong`) is their network as their code builds it; this `sinc` is the
toolkit's variant, which differs from it thus: log(1 + |x|) after the sinc layer (theirs:
batch-norm), 50 Hz minimum cut-off and bandwidth (theirs: 5 Hz), valid padding of the sinc
convolution (theirs: reflected "same"), a 3×3 first convolution (theirs: 7×7), no frequency
average before pooling, 4 LDE components (theirs: 8, so 1024-d), and XLA's "SAME" padding and
LeCun initialisation in the ResNet (theirs: PyTorch's). Their pretraining head's 512-unit
dense + batch-norm layer is the objective's (`family_mixup`'s `hidden_dim`), not the encoder's.

* SincConv (Ravanelli & Bengio 2018): 128 band-pass filters of 801 taps, stride 192, each
  defined by two learnable numbers — its low cut-off and bandwidth — initialised on the mel
  scale between 30 Hz and Nyquist; the kernel is (2f₂·sinc(2πf₂t) − 2f₁·sinc(2πf₁t)) × Hamming,
  normalised by its peak 2(f₂ − f₁). Responses are compressed with log(1 + |x|).
* ResNet-34 layout of basic blocks [3, 4, 6, 3] at widths 16, 32, 64, 128 (strides 1, 2, 2, 2),
  batch-norm, on the (frames × filters) map as a one-channel image.
* LDE pooling (learnable dictionary encoding, Cai et al. 2018): 4 components of 128 dims, soft
  assignments with learnable per-component scales → 4 × 128 = 512-d embedding.

Input: waveform patches from the `waveform` front-end, (N, samples, 1). 1,333,812 parameters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def mel_initial_bands(
    count: int, sample_rate: int, min_low: float, min_band: float, start_hz: float = 30.0
) -> tuple[np.ndarray, np.ndarray]:
    """SincNet's initial (low cut-off − min_low, bandwidth − min_band) in Hz: `count` + 1 edges
    mel-spaced from `start_hz` (SincNet: 30 Hz; SpeechBrain and Zhong et al.: min_low) to
    Nyquist − (min_low + min_band)."""
    to_mel = lambda hz: 2595 * np.log10(1 + hz / 700)  # noqa: E731
    edges = 700 * (
        10 ** (np.linspace(to_mel(start_hz), to_mel(sample_rate / 2 - (min_low + min_band)), count + 1) / 2595) - 1
    )
    return edges[:-1], np.diff(edges)


def sinc_kernels(
    low: jax.Array,
    band: jax.Array,
    *,
    taps: int,
    sample_rate: int,
    min_low: float,
    min_band: float,
    window: np.ndarray | None = None,
) -> jax.Array:
    """(taps, filters) band-pass kernels from the learnable parameters (SincNet's formula),
    tapered by `window` (default: the symmetric Hamming window of `taps`)."""
    f1 = min_low + jnp.abs(low)
    f2 = jnp.clip(f1 + min_band + jnp.abs(band), min_low, sample_rate / 2)
    t = (jnp.arange(taps) - (taps - 1) / 2) / sample_rate
    window = jnp.asarray(np.hamming(taps) if window is None else window, jnp.float32)
    lowpass = lambda f: 2 * f[None, :] * jnp.sinc(2 * f[None, :] * t[:, None])  # noqa: E731  (jnp.sinc is sin(πx)/(πx))
    return (lowpass(f2) - lowpass(f1)) * window[:, None] / (2 * (f2 - f1))[None, :]


class BasicBlock(nnx.Module):
    """ResNet's basic block. `torch_style`: PyTorch's symmetric padding (k // 2 on every side;
    XLA's "SAME" pads a stride-2 convolution of an even size on one side only) and its Kaiming
    normal (fan-out) initialisation, as torchvision-style reference code has them."""

    def __init__(self, cin: int, cout: int, stride: int, *, rngs: nnx.Rngs, torch_style: bool = False):
        def conv(a, b, k, s):
            padding = ((k // 2, k // 2),) * 2 if torch_style else "SAME"
            init = {"kernel_init": KAIMING_FAN_OUT} if torch_style else {}
            return nnx.Conv(a, b, (k, k), strides=(s, s), padding=padding, use_bias=False, rngs=rngs, **init)

        self.conv1, self.norm1 = conv(cin, cout, 3, stride), nnx.BatchNorm(cout, momentum=0.9, rngs=rngs)
        self.conv2, self.norm2 = conv(cout, cout, 3, 1), nnx.BatchNorm(cout, momentum=0.9, rngs=rngs)
        self.projected = stride != 1 or cin != cout
        if self.projected:  # a 1×1 convolution matches the shortcut's shape
            self.shortcut = conv(cin, cout, 1, stride)
            self.shortcut_norm = nnx.BatchNorm(cout, momentum=0.9, rngs=rngs)

    def __call__(self, x):
        y = self.norm2(self.conv2(jax.nn.relu(self.norm1(self.conv1(x)))))
        skip = self.shortcut_norm(self.shortcut(x)) if self.projected else x
        return jax.nn.relu(y + skip)


def resnet_layers(
    widths: tuple[int, ...], blocks: tuple[int, ...], *, rngs: nnx.Rngs, torch_style: bool = False
) -> nnx.List:
    """ResNet's stages: `blocks[i]` basic blocks at `widths[i]` channels each, the first block of
    every stage after the first at stride 2 (ResNet-34: blocks (3, 4, 6, 3))."""
    layers, cin = [], widths[0]
    for i, (width, count) in enumerate(zip(widths, blocks, strict=True)):
        for j in range(count):
            layers.append(BasicBlock(cin, width, 2 if (j == 0 and i > 0) else 1, rngs=rngs, torch_style=torch_style))
            cin = width
    return nnx.List(layers)


# torch.nn.init.kaiming_normal_(mode="fan_out", nonlinearity="relu"): N(0, 2 / fan_out), untruncated
KAIMING_FAN_OUT = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")


def lde(x: jax.Array, centres: jax.Array, precision: jax.Array) -> jax.Array:
    """Learnable dictionary encoding (Cai et al. 2018): (N, positions, D) → (N, components·D),
    Σ_t w_tc (x_t − μ_c) / Σ_t w_tc with w = softmax_c(−precision_c ‖x_t − μ_c‖²)."""
    residual = x[:, :, None, :] - centres[None, None]  # (N, T, C, D)
    weights = jax.nn.softmax(-precision * (residual**2).sum(-1), axis=-1)  # (N, T, C)
    encoded = (weights[..., None] * residual).sum(1) / (weights.sum(1)[..., None] + 1e-9)
    return encoded.reshape(x.shape[0], -1)


class SincResNet(nnx.Module):
    embedding_dim = 512
    frontend_name = "waveform"  # the only front-end it takes: random:sinc gets it (encoders.pretrained)

    def __init__(
        self,
        *,
        filters: int = 128,
        taps: int = 801,
        stride: int = 192,
        sample_rate: int = 16000,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        blocks: tuple[int, ...] = (3, 4, 6, 3),
        components: int = 4,
        rngs: nnx.Rngs,
    ):
        self.taps, self.stride, self.sample_rate = taps, stride, sample_rate
        self.min_low, self.min_band = 50.0, 50.0
        low, band = mel_initial_bands(filters, sample_rate, self.min_low, self.min_band)
        self.low_hz = nnx.Param(jnp.asarray(low, jnp.float32))
        self.band_hz = nnx.Param(jnp.asarray(band, jnp.float32))
        self.stem = nnx.Conv(1, widths[0], (3, 3), padding="SAME", use_bias=False, rngs=rngs)
        self.stem_norm = nnx.BatchNorm(widths[0], momentum=0.9, rngs=rngs)
        self.layers = resnet_layers(widths, blocks, rngs=rngs)
        self.centres = nnx.Param(jax.random.normal(rngs.params(), (components, widths[-1])) * 0.1)
        self.scales = nnx.Param(jnp.ones((components,)))
        self.embedding_dim = components * widths[-1]

    def kernels(self) -> jax.Array:
        return sinc_kernels(
            self.low_hz[...],
            self.band_hz[...],
            taps=self.taps,
            sample_rate=self.sample_rate,
            min_low=self.min_low,
            min_band=self.min_band,
        )

    def __call__(self, patches: jax.Array) -> jax.Array:
        """(N, samples, 1) waveform patches → (N, 512)."""
        if patches.ndim != 3 or patches.shape[-1] != 1:
            raise ValueError(
                f"SincResNet takes (batch, samples, 1) waveform patches (front-end 'waveform'); got {patches.shape}"
            )
        kernel = self.kernels()[:, None, :]  # (taps, in=1, filters)
        x = jax.lax.conv_general_dilated(
            patches, kernel, (self.stride,), "VALID", dimension_numbers=("NWC", "WIO", "NWC")
        )
        x = jnp.log1p(jnp.abs(x))[..., None]  # (N, frames, filters, 1)
        x = jax.nn.relu(self.stem_norm(self.stem(x)))
        for layer in self.layers:
            x = layer(x)
        return self.lde(x.reshape(x.shape[0], -1, x.shape[-1]))

    def lde(self, x: jax.Array) -> jax.Array:
        """(N, positions, D) → (N, components·D), precision |s_c| per component."""
        return lde(x, self.centres[...], jnp.abs(self.scales[...]))
