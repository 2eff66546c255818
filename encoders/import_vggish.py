"""Import AudioSet VGGish weights into an encoder bundle (Taenzer et al.'s "VGGish pre-trained").

    python -m encoders.import_vggish --weights=vggish-10086976.pth --out=bundles/vggish_audioset
    python -m encoders.import_vggish --weights=vggish_model.npz --out=bundles/vggish_audioset

Two key schemes are recognised, in `.safetensors` or `.npz` files (read without pickle), or
in a PyTorch `.pth` state dict (read with `torch.load(weights_only=True)`, which refuses
arbitrary objects; needs PyTorch installed):

* torchvggish (harritaylor/torchvggish): `features.{0,3,6,8,11,13}.{weight,bias}` (OIHW
  convolutions) and `embeddings.{0,2,4}.{weight,bias}` ((out, in) dense layers). Its flatten
  is NHWC, as ours, so the dense weights map by transposition only. torchvggish's release
  ends in a ReLU: `--final_relu` (default on for this scheme) keeps it.
* TF-slim (tensorflow/models vggish_slim.py): `vggish/conv1/weights`, …,
  `vggish/fc1/fc1_1/biases`, `vggish/fc2/weights` — HWIO and (in, out) already. Reading the
  `.ckpt` itself needs TensorFlow (`tf.train.load_checkpoint`), so dump it to `.npz` with
  these names first, or install TensorFlow and pass the checkpoint prefix.

The AudioSet release's PCA/quantisation post-processing is an option: `--pca_params=` its
`vggish_pca_params.npz` (arrays `pca_eigen_vectors` (128, 128) and `pca_means` (128,) or
(128, 1); read without pickle) makes the bundle's embeddings the post-processed ones
(`VGGish(postprocess=True)`: 8-bit values 0…255, as OpenMIC's shipped features).

    python -m encoders.import_vggish --weights=vggish_model.npz --pca_params=vggish_pca_params.npz \
        --out=bundles/vggish_audioset_pp
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from flax import nnx

from encoders import bundle
from encoders.frontend import LogMel
from encoders.vggish import VGGish
from overtone.errors import BadValueError, UnknownNameError

LAYERS = ("conv1", "conv2", "conv3_1", "conv3_2", "conv4_1", "conv4_2", "fc1_1", "fc1_2", "fc2")
TORCH_INDEX = {
    "conv1": "features.0",
    "conv2": "features.3",
    "conv3_1": "features.6",
    "conv3_2": "features.8",
    "conv4_1": "features.11",
    "conv4_2": "features.13",
    "fc1_1": "embeddings.0",
    "fc1_2": "embeddings.2",
    "fc2": "embeddings.4",
}
TF_NAME = {
    "conv1": "vggish/conv1",
    "conv2": "vggish/conv2",
    "conv3_1": "vggish/conv3/conv3_1",
    "conv3_2": "vggish/conv3/conv3_2",
    "conv4_1": "vggish/conv4/conv4_1",
    "conv4_2": "vggish/conv4/conv4_2",
    "fc1_1": "vggish/fc1/fc1_1",
    "fc1_2": "vggish/fc1/fc1_2",
    "fc2": "vggish/fc2",
}


def read_weights(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".safetensors":
        import safetensors.numpy

        return safetensors.numpy.load_file(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    if path.suffix in (".pth", ".pt"):
        try:
            import torch
        except ImportError as err:
            raise ImportError(f"reading {path} needs PyTorch; or save its state dict as .safetensors") from err
        return {k: v.numpy() for k, v in torch.load(path, map_location="cpu", weights_only=True).items()}
    try:  # a TF checkpoint prefix
        import tensorflow as tf
    except ImportError as err:
        raise BadValueError(f"{path}: expected .safetensors, .npz or .pth (a TF checkpoint needs TensorFlow)") from err
    reader = tf.train.load_checkpoint(str(path))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def to_flax(weights: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """Our variable names ("conv1/kernel", …) from either scheme, checked for shape."""
    flat = {}
    for layer in LAYERS:
        if "features.0.weight" in weights:
            kernel, bias = weights[f"{TORCH_INDEX[layer]}.weight"], weights[f"{TORCH_INDEX[layer]}.bias"]
            kernel = kernel.transpose(2, 3, 1, 0) if kernel.ndim == 4 else kernel.T
        elif "vggish/conv1/weights" in weights:
            kernel, bias = weights[f"{TF_NAME[layer]}/weights"], weights[f"{TF_NAME[layer]}/biases"]
        else:
            raise UnknownNameError(
                f"{source}: neither torchvggish (features.0.weight …) nor TF-slim "
                f"(vggish/conv1/weights …) keys; found {sorted(weights)[:6]} …"
            )
        flat[f"{layer}/kernel"], flat[f"{layer}/bias"] = np.asarray(kernel, np.float32), np.asarray(bias, np.float32)
    return flat


def read_pca_params(path: Path) -> dict[str, np.ndarray]:
    """The released vggish_pca_params.npz as our variable names, checked for keys and shapes."""
    try:
        with np.load(path, allow_pickle=False) as data:
            found = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as err:
        raise BadValueError(f"{path}: not a readable .npz without pickle ({str(err)[:200]})") from err
    missing = sorted({"pca_eigen_vectors", "pca_means"} - set(found))
    if missing:
        raise BadValueError(
            f"{path} lacks {missing} (AudioSet's vggish_pca_params.npz has both); found {sorted(found)}"
        )
    vectors, means = found["pca_eigen_vectors"], found["pca_means"]
    dim = VGGish.embedding_dim
    if vectors.shape != (dim, dim) or means.size != dim or not np.issubdtype(vectors.dtype, np.floating):
        raise BadValueError(
            f"{path}: pca_eigen_vectors {vectors.dtype} {vectors.shape} and pca_means {means.shape}; "
            f"expected floats ({dim}, {dim}) and ({dim},) or ({dim}, 1)"
        )
    if not (np.isfinite(vectors).all() and np.isfinite(means).all()):
        raise BadValueError(f"{path}: the PCA parameters hold NaN or infinite values")
    return {"pca_eigen_vectors": vectors.astype(np.float32), "pca_means": means.reshape(dim).astype(np.float32)}


def import_vggish(
    weights_path: str | Path, out: str | Path, *, final_relu: bool | None = None, pca_params: str | Path | None = None
) -> Path:
    weights_path = Path(weights_path)
    weights = read_weights(weights_path)
    scheme = "torchvggish" if "features.0.weight" in weights else "tf-slim"
    final_relu = (scheme == "torchvggish") if final_relu is None else final_relu
    postprocess = pca_params is not None
    encoder = VGGish(final_relu=final_relu, postprocess=postprocess, rngs=nnx.Rngs(0))
    expected = bundle.flat_variables(encoder)
    flat = to_flax(weights, str(weights_path)) | (read_pca_params(Path(pca_params)) if postprocess else {})
    for name, value in expected.items():
        if flat[name].shape != value.shape:
            raise BadValueError(f"{weights_path}: {name} has shape {flat[name].shape}, VGGish needs {value.shape}")
    bundle.set_variables(encoder, flat)
    provenance = {
        "run": None,
        "checkpoint": f"AudioSet VGGish ({scheme})",
        "step": None,
        "objective": "AudioSet classification (Hershey et al. 2017)",
        "weights_file": str(weights_path),
    }
    options = {"name": "vggish", "final_relu": final_relu}
    if postprocess:
        provenance["pca_params_file"] = str(pca_params)
        options["postprocess"] = True
    return bundle.save(out, encoder, options, LogMel(), provenance=provenance)


if __name__ == "__main__":
    from absl import flags

    from overtone.cli import absolute, run_absl

    flags.DEFINE_string("weights", None, "torchvggish .pth/.safetensors/.npz or TF-slim .npz/.ckpt", required=True)
    flags.DEFINE_string("out", None, "bundle folder to write", required=True)
    flags.DEFINE_enum("final_relu", "auto", ["auto", "true", "false"], "keep a ReLU on the embedding")
    flags.DEFINE_string("pca_params", None, "AudioSet's vggish_pca_params.npz: PCA + 8-bit post-processing")

    def main(argv):
        del argv
        choice = {"auto": None, "true": True, "false": False}[flags.FLAGS.final_relu]
        pca = absolute(flags.FLAGS.pca_params) if flags.FLAGS.pca_params else None
        written = import_vggish(
            absolute(flags.FLAGS.weights), absolute(flags.FLAGS.out), final_relu=choice, pca_params=pca
        )
        print(f"wrote {written}")

    run_absl(
        main,
        __doc__,
        examples=["python -m encoders.import_vggish --weights=vggish-10086976.pth --out=bundles/vggish_audioset"],
    )
