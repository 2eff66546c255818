"""ONNX export of front-end + encoder: `python -m encoders.onnx_export --encoder=BUNDLE --out=encoder.onnx`.

The graph takes one clip, `waveform` float32 (samples,) mono at the bundle's sample rate (a
clip shorter than one patch is zero-padded to one, as `embed` pads it), and returns
`embeddings` float32 (patches, D), one per 0.96 s — what `encoders.load(BUNDLE).embed(waveform,
rate)` returns. It is written with `onnx.helper`
layer by layer, because the converters available (jax2onnx) pin older orbax releases than
this project uses; the graph is small and each op maps one-to-one onto ours:

* STFT as two 1-D convolutions with the Hann-windowed cosine and sine bases (stride = hop),
  magnitude, mel matmul, log(· + offset), then non-overlapping patches by slice + reshape;
* VGGish / compact layer by layer (NCHW inside, NHWC transposed back before VGGish's flatten
  so the dense weights keep their order); batch-norm in its inference form; an AudioSet
  import's post-processing (PCA, clip, 8-bit) when its bundle has it.

The STFT runs in float32 here (the JAX front-end uses float64), so outputs differ slightly;
the parity test states the bound.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as err:  # an optional extra
    raise ImportError("ONNX export needs the onnx package: pip install 'overtone[onnx]'") from err

from encoders.bundle import EncoderBundle, flat_variables
from encoders.frontend import LogMel, MelSpectrogram
from encoders.vggish import QUANTISE_RANGE
from overtone.errors import BadValueError

OPSET = 17
IR_VERSION = 8  # the IR of opset 17 (ONNX 1.12)


class Graph:
    def __init__(self):
        self.nodes, self.initializers, self.count = [], [], 0

    def const(self, array, dtype=np.float32) -> str:
        name = f"c{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(np.asarray(array, dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, **attributes) -> str:
        self.count += 1
        out = f"{op_type.lower()}{self.count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attributes))
        return out


def frontend_graph(g: Graph, frontend: LogMel, waveform: str) -> str:
    """waveform (samples,) → patches (P, patch_frames, bands)."""
    if type(frontend) not in (LogMel, MelSpectrogram):
        name = type(frontend).__name__
        raise BadValueError(f"no ONNX graph for the {name} front-end (vggish_logmel and logmel only)")
    if frontend.patch_hop != frontend.patch_frames:
        raise BadValueError("ONNX export supports non-overlapping patches (patch_hop == patch_frames) only")
    bins = np.arange(frontend.fft_length // 2 + 1)[:, None]
    angle = 2 * np.pi * bins * np.arange(frontend.window_length)[None, :] / frontend.fft_length
    window = frontend.window()[None, :]
    # a clip shorter than one patch is zero-padded to one at its end, as `embed` does
    shortfall = g.op("Sub", g.const([frontend.samples_for_patches(1)], np.int64), g.op("Shape", waveform))
    pads = g.op("Concat", g.const([0], np.int64), g.op("Max", shortfall, g.const([0], np.int64)), axis=0)
    x = g.op("Reshape", g.op("Pad", waveform, pads), g.const([1, 1, -1], np.int64))
    real = g.op("Conv", x, g.const((window * np.cos(angle))[:, None, :]), strides=[frontend.hop_length])
    imag = g.op("Conv", x, g.const((-window * np.sin(angle))[:, None, :]), strides=[frontend.hop_length])
    power = g.op("Add", g.op("Mul", real, real), g.op("Mul", imag, imag))
    magnitude = g.op("Squeeze", g.op("Transpose", g.op("Sqrt", power), perm=[0, 2, 1]), g.const([0], np.int64))
    power = getattr(frontend, "power", 1.0)
    if power != 1.0:
        magnitude = g.op("Pow", magnitude, g.const(power))
    mel = g.op("MatMul", magnitude, g.const(frontend.weights()))
    logmel = g.op("Log", g.op("Add", mel, g.const(frontend.log_offset)))
    frames = g.op("Shape", logmel, start=0, end=1)
    size = g.const([frontend.patch_frames], np.int64)
    usable = g.op("Mul", g.op("Div", frames, size), size)
    sliced = g.op("Slice", logmel, g.const([0], np.int64), usable, g.const([0], np.int64))
    return g.op("Reshape", sliced, g.const([-1, frontend.patch_frames, frontend.num_bands], np.int64))


def _conv(g: Graph, x: str, kernel: np.ndarray, bias: np.ndarray | None) -> str:
    inputs = [x, g.const(kernel.transpose(3, 2, 0, 1))] + ([g.const(bias)] if bias is not None else [])
    return g.op("Conv", *inputs, pads=[1, 1, 1, 1])


def _pool(g: Graph, x: str) -> str:
    return g.op("MaxPool", x, kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER")


def _dense(g: Graph, x: str, w: dict, name: str) -> str:
    return g.op("Add", g.op("MatMul", x, g.const(w[f"{name}/kernel"])), g.const(w[f"{name}/bias"]))


def vggish_graph(g: Graph, patches: str, w: dict, options: dict) -> str:
    x = g.op("Unsqueeze", patches, g.const([1], np.int64))
    for layers in (("conv1",), ("conv2",), ("conv3_1", "conv3_2"), ("conv4_1", "conv4_2")):
        for name in layers:
            x = g.op("Relu", _conv(g, x, w[f"{name}/kernel"], w[f"{name}/bias"]))
        x = _pool(g, x)
    x = g.op("Reshape", g.op("Transpose", x, perm=[0, 2, 3, 1]), g.const([0, -1], np.int64))  # NHWC flatten
    x = g.op("Relu", _dense(g, x, w, "fc1_1"))
    x = g.op("Relu", _dense(g, x, w, "fc1_2"))
    x = _dense(g, x, w, "fc2")
    x = g.op("Relu", x) if options.get("final_relu", False) else x
    if not options.get("postprocess", False):
        return x
    # AudioSet's post-processing, as VGGish.quantise: PCA, clip, 8-bit (float32 0…255)
    low, high = QUANTISE_RANGE
    y = g.op("MatMul", g.op("Sub", x, g.const(w["pca_means"])), g.const(np.asarray(w["pca_eigen_vectors"]).T))
    y = g.op("Clip", y, g.const(low), g.const(high))
    return g.op("Floor", g.op("Mul", g.op("Sub", y, g.const(low)), g.const(255.0 / (high - low))))


def compact_graph(g: Graph, patches: str, w: dict, options: dict, *, epsilon: float) -> str:
    x = g.op("Unsqueeze", patches, g.const([1], np.int64))
    count = len({k.split("/")[1] for k in w if k.startswith("blocks/")})
    for i in range(count):
        prefix = f"blocks/{i}"
        x = _conv(g, x, w[f"{prefix}/conv/kernel"], None)
        stats = [w[f"{prefix}/norm/{n}"] for n in ("scale", "bias", "mean", "var")]
        x = g.op("Relu", g.op("BatchNormalization", x, *map(g.const, stats), epsilon=epsilon))
        if i < count - 1:
            x = _pool(g, x)
    mean, peak = (g.op(op, x, axes=[2, 3], keepdims=0) for op in ("ReduceMean", "ReduceMax"))
    pooled = g.op("Concat", mean, peak, axis=1)
    return _dense(g, pooled, w, "project")


def to_onnx(bundle: EncoderBundle) -> onnx.ModelProto:
    g = Graph()
    weights = flat_variables(bundle.encoder)
    name, options = bundle.manifest["encoder"]["name"], bundle.manifest["encoder"]["options"]
    patches = frontend_graph(g, bundle.frontend, "waveform")
    if name == "vggish":
        out = vggish_graph(g, patches, weights, options)
    elif name == "compact":
        out = compact_graph(g, patches, weights, options, epsilon=float(bundle.encoder.blocks[0].norm.epsilon))
    else:
        raise BadValueError(f"no ONNX graph for encoder {name!r}")
    g.nodes.append(helper.make_node("Identity", [out], ["embeddings"]))
    width = int(bundle.encoder.embedding_dim)
    graph = helper.make_graph(
        g.nodes,
        f"overtone_{name}",
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["samples"])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["patches", width])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="overtone")
    model.ir_version = IR_VERSION  # readable by onnxruntime releases of the last years
    onnx.checker.check_model(model)
    return model


def export_onnx(bundle_dir: str | Path, out: str | Path) -> Path:
    from encoders.bundle import load

    model = to_onnx(load(bundle_dir))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, out)
    return out


if __name__ == "__main__":
    from absl import flags

    from overtone.cli import absolute, run_absl

    flags.DEFINE_string("encoder", None, "bundle folder (python -m pretrain.export)", required=True)
    flags.DEFINE_string("out", None, "the .onnx file to write", required=True)

    def main(argv):
        del argv
        print(f"wrote {export_onnx(absolute(flags.FLAGS.encoder), absolute(flags.FLAGS.out))}")

    run_absl(
        main,
        __doc__,
        examples=["python -m encoders.onnx_export --encoder=bundles/mixup --out=bundles/mixup/encoder.onnx"],
    )
