"""Encoder bundles: a folder another team can use without our training code.

    DIR/weights.safetensors   every encoder variable, keyed "blocks/0/conv/kernel" …
    DIR/manifest.json         encoder name and options, front-end parameters, sample rate,
                              embedding size and hop, provenance (run, checkpoint, training
                              config, objective), toolkit version, checksums
    DIR/README.md             how to use it, for the receiving team

`load(DIR)` checks the weights file's SHA-256 against the manifest *before* reading it and
refuses any mismatch; the manifest is plain JSON whose encoder name must be one of the
registered encoders and whose options and front-end fields are validated — nothing in a
bundle is imported or executed.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

import jax
import numpy as np
import safetensors.numpy
from flax import nnx

from encoders import ENCODERS, build_encoder
from encoders.embedding import embed_sequences, with_patch_hop
from encoders.frontend import LogMel, build_frontend, frontend_config
from overtone.audio import resample
from overtone.disk import sha256_file, tree_sha256
from overtone.errors import BadValueError, OvertoneError

FORMAT, FORMAT_VERSION = "overtone-encoder-bundle", 2  # 2: the manifest digest ("integrity")
READABLE_VERSIONS = (1, 2)


def manifest_digest(manifest: dict) -> str:
    """SHA-256 over the manifest's canonical JSON without its own `integrity` field. The manifest
    holds the weights' SHA-256, so this one digest covers manifest and weights together: a changed
    byte in either (a front-end's hop, a log offset) makes the bundle refuse to load."""
    body = {k: v for k, v in manifest.items() if k != "integrity"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


WEIGHTS = "weights.safetensors"


class BundleError(OvertoneError, ValueError):
    """A bundle that is incomplete, tampered with or from an unknown format; says which file."""


def flat_variables(encoder: nnx.Module) -> dict[str, np.ndarray]:
    """Every variable of the encoder by its path name ("conv1/kernel"), as numpy."""
    return {name: np.asarray(leaf) for name, leaf in _flat_state(encoder).items()}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save(folder: str | Path, encoder: nnx.Module, encoder_config: dict, frontend: LogMel, *, provenance: dict) -> Path:
    """Write a bundle; the weights go to a temporary name first, the manifest last."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{WEIGHTS}.partial"
    safetensors.numpy.save_file({k: np.ascontiguousarray(v) for k, v in flat_variables(encoder).items()}, partial)
    partial.chmod(0o666 & ~_umask())  # safetensors creates it 0600; the bundle is for other teams
    partial.replace(folder / WEIGHTS)
    options = {k: v for k, v in encoder_config.items() if k != "name"}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "toolkit_version": metadata.version("overtone"),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "encoder": {"name": encoder_config["name"], "options": options},
        "frontend": frontend_config(frontend),
        "sample_rate": frontend.sample_rate,
        "embedding_dim": int(encoder.embedding_dim),
        "patch_seconds": frontend.samples_for_patches(1) / frontend.sample_rate,
        "hop_seconds": frontend.patch_seconds,
        "weights": {
            "file": WEIGHTS,
            "sha256": sha256_file(folder / WEIGHTS),
            "parameter_checksum": parameter_checksum(encoder),
        },
        "source": provenance,
    }
    manifest["integrity"] = manifest_digest(manifest)
    (folder / "README.md").write_text(_readme(manifest))
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def as_float_audio(waveform) -> np.ndarray:
    """float32 samples from any array a caller may hold: floats as they are, integer PCM scaled by
    its type's range (int16 / 32768; unsigned 8-bit centred on 128) — never used unscaled.
    Non-finite samples are refused: they would give finite but meaningless embeddings."""
    wave = np.asarray(waveform)
    if np.issubdtype(wave.dtype, np.signedinteger):
        wave = wave.astype(np.float32) / np.float32(-np.iinfo(wave.dtype).min)
    elif np.issubdtype(wave.dtype, np.unsignedinteger):
        half = np.float32(np.iinfo(wave.dtype).max // 2 + 1)
        wave = (wave.astype(np.float32) - half) / half
    elif not np.issubdtype(wave.dtype, np.floating):
        raise BadValueError(f"waveform of dtype {wave.dtype}: expected float or integer PCM samples")
    wave = wave.astype(np.float32, copy=False)
    if not np.isfinite(wave).all():
        raise BadValueError(f"waveform has {int(np.size(wave) - np.isfinite(wave).sum())} NaN or Inf samples")
    return wave


@dataclasses.dataclass
class EncoderBundle:
    """A loaded bundle: `embed(waveform, sample_rate) -> (T, D)`, `embed_clip(...) -> (D,)`."""

    encoder: nnx.Module
    frontend: LogMel
    manifest: dict

    @property
    def sample_rate(self) -> int:
        return self.frontend.sample_rate

    def embed(self, waveform, sample_rate: int, *, hop_seconds: float | None = None) -> np.ndarray:
        """One embedding per patch, every `hop_seconds` (default: the bundle's hop). `waveform`
        is (samples,) or (samples, channels); channels are averaged, the rate converted."""
        wave = as_float_audio(waveform)
        if wave.ndim == 2:
            wave = wave.mean(axis=1)
        if wave.ndim != 1:
            raise ValueError(f"waveform must be (samples,) or (samples, channels), got shape {wave.shape}")
        wave = resample(wave, int(sample_rate), self.sample_rate)
        frontend = with_patch_hop(self.frontend, hop_seconds) if hop_seconds else self.frontend
        return next(iter(embed_sequences(self.encoder, frontend, [wave])))

    def embed_clip(self, waveform, sample_rate: int) -> np.ndarray:
        """The mean of `embed` over time: one vector per recording."""
        return self.embed(waveform, sample_rate).mean(axis=0)


def load(folder: str | Path) -> EncoderBundle:
    folder = Path(folder).expanduser()
    manifest_path = folder / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise BundleError(f"{manifest_path} not found: not an encoder bundle") from err
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise BundleError(f"{manifest_path} is not valid JSON: {str(err)[:200]}") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{manifest_path}: not an {FORMAT} manifest")
    if manifest.get("format_version") not in READABLE_VERSIONS:
        raise BundleError(
            f"{manifest_path}: format_version {manifest.get('format_version')!r} is not one this "
            f"toolkit reads ({list(READABLE_VERSIONS)})"
        )
    if manifest["format_version"] >= 2 and manifest.get("integrity") != manifest_digest(manifest):
        raise BundleError(
            f"{manifest_path}: its contents do not match its integrity digest: edited or corrupted "
            "(a bundle is exported, never edited by hand)"
        )
    try:
        name, options = manifest["encoder"]["name"], dict(manifest["encoder"]["options"])
        frontend = build_frontend(manifest["frontend"])
        expected_sha = manifest["weights"]["sha256"]
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise BundleError(f"{manifest_path}: missing or malformed field ({err})") from err
    if not isinstance(name, str) or name not in ENCODERS:
        raise BundleError(f"{manifest_path}: unknown encoder {repr(name)[:60]}; registered: {sorted(ENCODERS)}")
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise BundleError(f"{weights} not found")
    if sha256_file(weights) != expected_sha:
        raise BundleError(f"{weights} does not match the SHA-256 in {manifest_path}: corrupted or tampered with")
    config = {"name": name, **options}
    try:  # shapes only, nothing allocated: options asking for a giant network are refused below
        abstract = nnx.eval_shape(lambda: build_encoder(config, rngs=nnx.Rngs(0)))
    except (KeyError, TypeError, ValueError) as err:
        raise BundleError(f"{manifest_path}: encoder options {str(options)[:200]} refused: {err}") from err
    expected = {k: (tuple(v.shape), np.dtype(v.dtype)) for k, v in _flat_state(abstract).items()}
    if sum(int(np.prod(shape)) for shape, _ in expected.values()) > MAX_PARAMETERS:
        raise BundleError(
            f"{manifest_path}: encoder options {str(options)[:200]} ask for more than {MAX_PARAMETERS:.0e} parameters"
        )
    _check_header(weights, expected, name, options)
    encoder = build_encoder(config, rngs=nnx.Rngs(0))
    stored = safetensors.numpy.load_file(weights)
    set_variables(encoder, stored)
    encoder.eval()
    expected_checksum = manifest["weights"].get("parameter_checksum")
    if expected_checksum is not None and parameter_checksum(encoder) != expected_checksum:
        raise BundleError(f"{weights}: the loaded variables do not match the manifest's parameter_checksum")
    return EncoderBundle(encoder, frontend, manifest)


MAX_PARAMETERS = 2e9  # far above any encoder here (VGGish: 72 M); a guard against edited options


def _flat_state(module: nnx.Module) -> dict:
    flat = jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(nnx.state(module)))[0]
    return {"/".join(str(getattr(k, "key", k)) for k in path): leaf for path, leaf in flat}


def _check_header(weights: Path, expected: dict, name: str, options: dict) -> None:
    """The safetensors header (read alone, no tensor data) names exactly the encoder's variables
    with their shapes and dtypes; anything else is a BundleError naming the first difference."""
    try:
        with safetensors.safe_open(str(weights), framework="numpy") as f:
            stored = {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}  # noqa: SIM118
    except Exception as err:  # noqa: BLE001 - the Rust reader raises its own types for a bad header
        raise BundleError(f"{weights}: not a readable safetensors file ({str(err)[:200]})") from err
    if set(stored) != set(expected):
        extra, missing = sorted(set(stored) - set(expected)), sorted(set(expected) - set(stored))
        raise BundleError(
            f"{weights} does not hold the variables of encoder {name!r} with options {options} "
            f"(unexpected: {extra[:3]}, missing: {missing[:3]})"
        )
    for key, (shape, dtype) in expected.items():
        got_shape, got_dtype = stored[key]
        if got_shape != shape:
            raise BundleError(f"{weights}: variable {key} has shape {got_shape}, the encoder needs {shape}")
        if _SAFETENSORS_DTYPES.get(got_dtype) != dtype:
            shown = _SAFETENSORS_DTYPES.get(got_dtype, got_dtype)
            raise BundleError(f"{weights}: variable {key} is {shown}, the encoder needs {dtype}")


_SAFETENSORS_DTYPES = {
    "F32": np.dtype("float32"),
    "F64": np.dtype("float64"),
    "F16": np.dtype("float16"),
    "I64": np.dtype("int64"),
    "I32": np.dtype("int32"),
}


def parameter_checksum(module: nnx.Module) -> str:
    """SHA-256 of every variable (parameters and batch statistics): name, dtype, shape, bytes; the
    identity of a set of weights (the embedding cache is keyed on it)."""
    return tree_sha256(nnx.to_pure_dict(nnx.state(module)))


def set_variables(encoder: nnx.Module, flat: dict[str, np.ndarray]) -> None:
    state = nnx.state(encoder)
    pure = nnx.to_pure_dict(state)
    paths = jax.tree_util.tree_flatten_with_path(pure)[0]
    leaves = [flat["/".join(str(getattr(k, "key", k)) for k in path)] for path, _ in paths]
    nnx.replace_by_pure_dict(state, jax.tree.unflatten(jax.tree.structure(pure), leaves))
    nnx.update(encoder, state)


def _readme(manifest: dict) -> str:
    source = manifest["source"]
    return f"""# Overtone encoder bundle: {manifest["encoder"]["name"]}

{manifest["embedding_dim"]}-d embeddings of {manifest["patch_seconds"]:.3f}-s log-mel patches every
{manifest["hop_seconds"]:.2f} s of {manifest["sample_rate"]} Hz mono audio (any rate and channel count
is converted on the way in). Trained with objective `{source.get("objective", "?")}`
(run `{source.get("run", "?")}`, checkpoint {source.get("checkpoint", "?")} step {source.get("step", "?")}).

```python
import encoders
bundle = encoders.load("THIS_FOLDER")
sequence = bundle.embed(waveform, sample_rate)      # (T, {manifest["embedding_dim"]}), one row per hop
vector = bundle.embed_clip(waveform, sample_rate)   # ({manifest["embedding_dim"]},), mean over time
```

Command line: `python -m encoders.embed --encoder=THIS_FOLDER audio/ --out=embeddings.npz`.
Without Overtone: `weights.safetensors` holds every variable by name (Flax layout: conv
kernels HWIO, dense kernels (in, out), NHWC activations); `manifest.json` gives the front-end
parameters. `weights.sha256` in the manifest is checked on load.
"""
