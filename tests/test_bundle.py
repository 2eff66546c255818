"""Encoder bundles: export, one-call loading, tampering, the embedding CLI, ONNX, HEAR, VGGish import."""

import ast
import json
import subprocess
import sys

import jax
import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, write_run
from flax import nnx

import encoders
from encoders import bundle as bundles
from encoders.embedding import embed_sequences
from encoders.pretrained import load_encoder
from overtone.errors import BadValueError
from pretrain.export import export_run


def audio(seconds: float = 3.0, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = 0.05 * np.random.default_rng(0).normal(size=t.size)
    return (0.6 * np.sin(2 * np.pi * 330 * t) + noise).astype(np.float32)


@pytest.fixture
def exported(tmp_path):
    model = write_run(tmp_path / "run", export=False)
    return model, export_run(tmp_path / "run", tmp_path / "bundle")


def test_export_then_load_in_a_fresh_process_gives_the_training_models_embeddings(exported, tmp_path):
    model, folder = exported
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["encoder"] == {"name": "compact", "options": {}} and manifest["source"]["step"] == 5
    assert manifest["sample_rate"] == 16000 and manifest["embedding_dim"] == 128 and manifest["hop_seconds"] == 0.96
    assert (folder / "README.md").is_file()
    sf.write(tmp_path / "a.wav", audio(), 16000, subtype="FLOAT")
    script = (
        "import sys, numpy as np, soundfile as sf, encoders\n"
        "b = encoders.load(sys.argv[1]); w, r = sf.read(sys.argv[2], dtype='float32')\n"
        "np.savez(sys.argv[3], seq=b.embed(w, r), clip=b.embed_clip(w, r))\n"
    )
    out = tmp_path / "fresh.npz"
    result = subprocess.run(
        [sys.executable, "-c", script, str(folder), str(tmp_path / "a.wav"), str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    model.encoder.eval()
    expected = next(iter(embed_sequences(model.encoder, encoders.LogMel(), [audio()])))
    fresh = np.load(out)
    np.testing.assert_array_equal(fresh["seq"], expected)
    np.testing.assert_allclose(fresh["clip"], expected.mean(0), rtol=1e-6)


def test_a_bundle_carries_its_frontend(tmp_path):
    from encoders.frontend import MelSpectrogram

    loaded = load_encoder("random:compact", frontend={"name": "logmel", "num_bands": 80, "hop_length": 200})
    bundles.save(tmp_path / "b", loaded.encoder, loaded.encoder_config, loaded.frontend, provenance={})
    bundle = encoders.load(tmp_path / "b")
    assert bundle.frontend == loaded.frontend and isinstance(bundle.frontend, MelSpectrogram)
    assert bundle.manifest["frontend"]["name"] == "logmel" and bundle.manifest["frontend"]["num_bands"] == 80
    loaded.encoder.eval()
    expected = next(iter(embed_sequences(loaded.encoder, loaded.frontend, [audio()])))
    np.testing.assert_array_equal(bundle.embed(audio(), 16000), expected)


def test_embed_resamples_and_mixes_down_for_the_caller(exported):
    _, folder = exported
    bundle = encoders.load(folder)
    stereo = np.stack([audio(rate=44100), audio(rate=44100)], axis=1)
    assert bundle.embed(stereo, 44100).shape == (3, 128)
    with pytest.raises(ValueError, match="waveform must be"):
        bundle.embed(np.zeros((2, 2, 2)), 16000)


def test_a_flipped_byte_or_a_truncated_file_is_refused(exported):
    _, folder = exported
    weights = folder / "weights.safetensors"
    original = weights.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    weights.write_bytes(bytes(flipped))
    with pytest.raises(bundles.BundleError, match="does not match the SHA-256.*tampered"):
        encoders.load(folder)
    weights.write_bytes(original[:-100])
    with pytest.raises(bundles.BundleError, match="does not match the SHA-256"):
        encoders.load(folder)
    weights.write_bytes(original)
    assert encoders.load(folder).manifest["encoder"]["name"] == "compact"


def test_a_manifest_cannot_make_the_loader_run_anything(exported, tmp_path):
    _, folder = exported
    manifest = json.loads((folder / "manifest.json").read_text())
    marker = tmp_path / "pwned"

    def write(changed: dict) -> None:  # re-digested, as a forger would: validation must still refuse
        (folder / "manifest.json").write_text(json.dumps(changed | {"integrity": bundles.manifest_digest(changed)}))

    for encoder in (
        {"name": f"__import__('os').system('touch {marker}')", "options": {}},
        {"name": "compact", "options": {"__class__": "os.system"}},
    ):
        write(manifest | {"encoder": encoder})
        with pytest.raises(bundles.BundleError, match="unknown encoder|refused"):
            encoders.load(folder)
    write(manifest | {"format_version": 99})
    with pytest.raises(bundles.BundleError, match="format_version 99 is not one this toolkit reads"):
        encoders.load(folder)
    assert not marker.exists()


def test_embedding_cli_skips_and_lists_unreadable_files(exported, tmp_path):
    _, folder = exported
    (tmp_path / "audio" / "sub").mkdir(parents=True)
    sf.write(tmp_path / "audio" / "a.wav", audio(2.0), 16000)
    sf.write(tmp_path / "audio" / "sub" / "b.flac", audio(4.0, 22050), 22050)
    (tmp_path / "audio" / "broken.wav").write_bytes(b"RIFF....garbage")
    out = tmp_path / "emb.npz"
    result = subprocess.run(
        [sys.executable, "-m", "encoders.embed", f"--encoder={folder}", str(tmp_path / "audio"), f"--out={out}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "embedded 2 file(s)" in result.stdout and "skipped" in result.stdout and "broken.wav" in result.stdout
    data = np.load(out)
    assert [p.rsplit("/", 1)[-1] for p in data["paths"]] == ["a.wav", "b.flac"]
    assert data["offsets"].tolist() == [0, 2, 6] and data["embeddings"].shape == (6, 128)
    np.testing.assert_allclose(data["clip"][1], data["embeddings"][2:6].mean(0), rtol=1e-6)
    assert data["skipped"].tolist() == [str(tmp_path / "audio" / "broken.wav")]
    assert str(data["encoder_checksum"]) == load_encoder(str(folder)).checksum


@pytest.mark.parametrize(("name", "frontend"), [("compact", None), ("vggish", None), ("compact", {"name": "logmel"})])
def test_onnx_graph_matches_jax(name, frontend, tmp_path):
    """VGGish as an AudioSet import with its post-processing (one export checks the network and
    the PCA → clip → 8-bit step): PCA = 32 × a random rotation around random means, so values
    spread over the 256 levels and some clip, and one level is 4/255/32 ≈ 5e-4 of the raw output."""
    import onnxruntime as ort

    from encoders.onnx_export import export_onnx

    options = {"postprocess": True} if name == "vggish" else None
    loaded = load_encoder(f"random:{name}", frontend=frontend, options=options)
    if name == "compact":  # non-trivial batch statistics, so the inference-form batch-norm is checked
        loaded.encoder.blocks[1].norm.mean[...] = 0.1 * jax.numpy.arange(64.0)
        loaded.encoder.blocks[1].norm.var[...] = 1.5
    else:
        rng = np.random.default_rng(2)
        loaded.encoder.pca_eigen_vectors[...] = 32.0 * np.linalg.qr(rng.normal(size=(128, 128)))[0]
        loaded.encoder.pca_means[...] = rng.normal(scale=0.03, size=128)
    bundles.save(tmp_path / "b", loaded.encoder, loaded.encoder_config, loaded.frontend, provenance={})
    path = export_onnx(tmp_path / "b", tmp_path / "encoder.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    bundle = encoders.load(tmp_path / "b")
    noise = 0.2 * np.random.default_rng(1).normal(size=24000).astype(np.float32)
    for wave in (audio(3.0), noise, noise[:8000]):  # 0.5 s: zero-padded to one patch, as `embed` pads it
        got = session.run(None, {"waveform": wave})[0]
        want = bundle.embed(wave, 16000)
        assert got.shape == want.shape
        if name == "compact":
            np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)  # measured ≤ 4e-6 (float32 STFT in ONNX)
        else:  # that 4e-6 is 0.008 of a level: a value a hair from a level's edge may floor one apart
            assert 0 < (want == 0).mean() + (want == 255).mean() < 0.5 and len(np.unique(want)) > 50
            assert np.abs(got - want).max() <= 1 and (got == want).mean() > 0.97


def test_hear_api(exported):
    from encoders import hear

    _, folder = exported
    model = hear.load_model(str(folder))
    assert model.sample_rate == 16000 and model.scene_embedding_size == model.timestamp_embedding_size == 128
    batch = np.stack([audio(2.0), 0.5 * audio(2.0)])
    embeddings, timestamps = hear.get_timestamp_embeddings(batch, model)
    frames = 1 + (1 + (32000 - 400) // 160 - 96) // 5
    assert embeddings.shape == (2, frames, 128) and timestamps.shape == (2, frames)
    np.testing.assert_allclose(np.diff(timestamps[0]), 50.0)
    assert timestamps[0, 0] == pytest.approx(487.5)
    scene = hear.get_scene_embeddings(batch, model)
    np.testing.assert_allclose(scene[0], model.bundle.embed(batch[0], 16000).mean(0), rtol=1e-5)


def test_torchvggish_and_tf_slim_weights_import(tmp_path):
    import safetensors.numpy

    from encoders.import_vggish import TF_NAME, TORCH_INDEX, import_vggish

    rng = np.random.default_rng(0)
    shapes = {name: v.shape for name, v in bundles.flat_variables(encoders.VGGish(rngs=nnx.Rngs(0))).items()}
    ours = {k: (0.01 * rng.normal(size=s)).astype(np.float32) for k, s in shapes.items()}
    torch_like, tf_like = {}, {}
    for layer in TORCH_INDEX:
        kernel, bias = ours[f"{layer}/kernel"], ours[f"{layer}/bias"]
        torch_kernel = kernel.transpose(3, 2, 0, 1) if kernel.ndim == 4 else kernel.T
        torch_like[f"{TORCH_INDEX[layer]}.weight"], torch_like[f"{TORCH_INDEX[layer]}.bias"] = torch_kernel, bias
        tf_like[f"{TF_NAME[layer]}/weights"], tf_like[f"{TF_NAME[layer]}/biases"] = kernel, bias
    safetensors.numpy.save_file({k: np.ascontiguousarray(v) for k, v in torch_like.items()}, tmp_path / "t.safetensors")
    np.savez(tmp_path / "tf.npz", **tf_like)
    for source, relu in (("t.safetensors", True), ("tf.npz", False)):
        bundle = encoders.load(import_vggish(tmp_path / source, tmp_path / f"out_{source}"))
        assert bundle.manifest["encoder"]["options"] == {"final_relu": relu}
        for name, value in bundles.flat_variables(bundle.encoder).items():
            np.testing.assert_array_equal(value, ours[name])
    # the first convolution, computed the PyTorch way (OIHW, cross-correlation, padding 1), agrees
    patch = rng.normal(size=(96, 64)).astype(np.float32)
    padded = np.pad(patch, 1)
    weight, bias = torch_like["features.0.weight"], torch_like["features.0.bias"]
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3))  # (96, 64, 3, 3)
    torch_out = np.einsum("hwij,oij->hwo", windows, weight[:, 0]) + bias
    flax_out = np.asarray(bundle.encoder.conv1(jax.numpy.asarray(patch)[None, ..., None]))[0]
    np.testing.assert_allclose(flax_out, torch_out, atol=1e-5)
    with pytest.raises(KeyError, match="neither torchvggish"):
        np.savez(tmp_path / "bad.npz", x=np.zeros(3))
        import_vggish(tmp_path / "bad.npz", tmp_path / "bad")


def test_audioset_post_processing_is_vggish_postprocess(tmp_path):
    """--pca_params: the bundle's embeddings are the release's post-processed ones — numpy as
    vggish_postprocess.Postprocessor computes them, on the raw network's output."""
    from encoders.import_vggish import TF_NAME, import_vggish

    rng = np.random.default_rng(1)
    raw = encoders.VGGish(rngs=nnx.Rngs(0))
    weights = {k: (0.02 * rng.normal(size=v.shape)).astype(np.float32) for k, v in bundles.flat_variables(raw).items()}
    bundles.set_variables(raw, weights)
    tf_like = {}
    for layer, name in TF_NAME.items():
        tf_like[f"{name}/weights"], tf_like[f"{name}/biases"] = weights[f"{layer}/kernel"], weights[f"{layer}/bias"]
    np.savez(tmp_path / "tf.npz", **tf_like)
    vectors = np.linalg.qr(rng.normal(size=(128, 128)))[0]  # the released E is orthonormal too
    means = rng.normal(scale=1.5, size=(128, 1))  # stored (128, 1), as released; wide enough to clip
    np.savez(tmp_path / "vggish_pca_params.npz", pca_eigen_vectors=vectors, pca_means=means)
    bundle = encoders.load(
        import_vggish(tmp_path / "tf.npz", tmp_path / "pp", pca_params=tmp_path / "vggish_pca_params.npz")
    )
    assert bundle.manifest["encoder"]["options"] == {"final_relu": False, "postprocess": True}
    patches = rng.normal(size=(6, 96, 64)).astype(np.float32)
    embeddings = np.asarray(raw(jax.numpy.asarray(patches)), np.float64)
    clipped = np.clip(np.dot(vectors, embeddings.T - means).T, -2.0, 2.0)
    expected = ((clipped + 2.0) * (255.0 / 4.0)).astype(np.uint8)
    got = np.asarray(bundle.encoder(jax.numpy.asarray(patches)))
    assert 0 < (expected == 0).mean() + (expected == 255).mean() < 0.5  # some values clip, most do not
    # float32 against float64: a value a hair from an integer may floor one step apart, no more
    assert np.abs(got - expected).max() <= 1 and (got == expected).mean() > 0.99
    np.savez(tmp_path / "bad.npz", pca_means=means)
    with pytest.raises(BadValueError, match=r"lacks \['pca_eigen_vectors'\]"):
        import_vggish(tmp_path / "tf.npz", tmp_path / "bad", pca_params=tmp_path / "bad.npz")


def _leaves(tree, path=()):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, (*path, key))
    else:
        yield path, tree


def test_a_manifest_with_any_single_field_changed_does_not_load(exported):
    """One digest covers manifest and weights: a changed hop, log offset, step or name is refused."""
    _, folder = exported
    text = (folder / "manifest.json").read_text()
    manifest = json.loads(text)
    for path, value in _leaves(manifest):
        if path == ("integrity",):
            continue
        changed = json.loads(text)
        section = changed
        for key in path[:-1]:
            section = section[key]
        section[path[-1]] = (
            not value
            if isinstance(value, bool)
            else value + 1
            if isinstance(value, int | float)
            else f"{value}x"
            if isinstance(value, str)
            else [*value, 0]
            if isinstance(value, list)
            else 1
        )
        (folder / "manifest.json").write_text(json.dumps(changed))
        with pytest.raises(bundles.BundleError, match="integrity digest|not an overtone|format_version"):
            encoders.load(folder)
    (folder / "manifest.json").write_text(text)
    assert encoders.load(folder).manifest == manifest


def test_weights_of_another_dtype_or_checksum_are_refused(exported):
    import safetensors.numpy

    _, folder = exported
    weights = folder / "weights.safetensors"
    original, manifest_text = weights.read_bytes(), (folder / "manifest.json").read_text()
    stored = safetensors.numpy.load_file(weights)
    for name, change in ((next(iter(stored)), lambda a: a.astype(np.float16)), (next(iter(stored)), lambda a: a + 1)):
        altered = dict(stored) | {name: change(stored[name])}
        safetensors.numpy.save_file(altered, weights)
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["weights"]["sha256"] = bundles.sha256_file(weights)  # a recomputed SHA, as a careless tool would
        manifest["integrity"] = bundles.manifest_digest(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(bundles.BundleError, match="float16|parameter_checksum"):
            encoders.load(folder)
    weights.write_bytes(original)
    (folder / "manifest.json").write_text(manifest_text)


def test_loading_and_embedding_a_bundle_needs_no_trainer_and_no_reader(exported):
    """A team handed a bundle imports `encoders` alone: not the train loop, checkpoints or readers."""
    _, folder = exported
    code = (
        "import sys, numpy as np, encoders\n"
        f"bundle = encoders.load({str(folder)!r})\n"
        "assert bundle.embed(np.zeros(24000, np.float32), 16000).shape == (1, 128)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = set(ast.literal_eval(result.stdout.strip().splitlines()[-1]))
    assert not loaded & {"runtime", "corpora", "finetune", "pretrain", "objectives", "orbax", "grain", "configs"}
