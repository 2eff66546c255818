"""Denoising objective and multi-objective: corruption statistics, decoder shapes, losses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import encoders
import objectives
from objectives.denoise import Denoise, TimeDecoder, corrupt, match_frames


def context():
    return objectives.Context(embedding_dim=128, num_classes={"family": 11}, num_bands=64, rngs=nnx.Rngs(0))


def test_additive_noise_has_the_configured_mean_and_std():
    clean = jnp.full((64, 96, 64), 2.0)
    noise = np.asarray(corrupt(jax.random.key(0), clean, noise="additive", noise_std=0.1, keep_prob=0.5)) - 2.0
    n = noise.size
    assert abs(noise.mean()) < 4 * 0.1 / np.sqrt(n)
    assert noise.std() == pytest.approx(0.1, rel=0.01)


def test_multiplicative_mask_keeps_the_configured_fraction_untouched():
    clean = jax.random.uniform(jax.random.key(1), (64, 96, 64), minval=1.0, maxval=2.0)
    floor = float(np.log(0.01))
    noisy = np.asarray(
        corrupt(jax.random.key(2), clean, noise="multiplicative", noise_std=0.1, keep_prob=0.3, floor=floor)
    )
    kept = noisy != np.float32(floor)
    assert kept.mean() == pytest.approx(0.3, abs=4 * np.sqrt(0.3 * 0.7 / kept.size))
    np.testing.assert_array_equal(noisy[kept], np.asarray(clean)[kept])  # kept bins untouched
    assert np.all(noisy[~kept] == np.float32(floor))  # dropped bins silenced, not set to log-mel 0


def test_decoder_turns_one_embedding_into_one_96_frame_patch():
    decoder = TimeDecoder(128, 64, rngs=nnx.Rngs(0))
    assert decoder(jnp.zeros((5, 128))).shape == (5, 96, 64)
    shapes = [(layer.kernel_size, layer.in_features, layer.out_features) for layer in decoder.layers]
    assert shapes == [((10,), 128, 128), ((21,), 128, 64), ((31,), 64, 64), ((37,), 64, 64)]


def test_decoder_matches_a_numpy_forward_pass():
    """Unpadded transposed convolution = full convolution, then leaky ReLU (0.1, 0.25, 0.5)."""
    decoder = TimeDecoder(8, 3, rngs=nnx.Rngs(0))
    x = np.asarray(jax.random.normal(jax.random.key(7), (2, 8)), np.float64)
    h = x[:, None, :]  # (N, T, C)
    for layer, slope in zip(decoder.layers, (0.1, 0.25, 0.5, None), strict=True):
        # flax keeps the kernel in correlation order: reversed, it is the full convolution's
        kernel = np.asarray(layer.kernel[...], np.float64)  # (k, in, out)
        k = kernel.shape[0]
        out = np.zeros((h.shape[0], h.shape[1] + k - 1, kernel.shape[2]))
        for t in range(h.shape[1]):
            out[:, t : t + k, :] += np.einsum("ni,kio->nko", h[:, t, :], kernel[::-1])
        out += np.asarray(layer.bias[...], np.float64)
        h = out if slope is None else np.where(out > 0, out, slope * out)
    np.testing.assert_allclose(np.asarray(decoder(jnp.asarray(x, jnp.float32))), h, rtol=1e-4, atol=1e-5)


def test_match_frames_crops_or_edge_pads():
    x = jnp.arange(2 * 5 * 3, dtype=jnp.float32).reshape(2, 5, 3)
    np.testing.assert_array_equal(match_frames(x, 3), x[:, :3])
    padded = np.asarray(match_frames(x, 7))
    np.testing.assert_array_equal(padded[:, 5], padded[:, 4])
    np.testing.assert_array_equal(padded[:, 6], np.asarray(x)[:, 4])


@pytest.mark.parametrize(
    "name", sorted(n for n, cls in encoders.ENCODERS.items() if not hasattr(cls, "frontend_name"))
)  # waveform input
def test_loss_is_the_weighted_mse_of_the_reconstruction(name):
    encoder = encoders.build_encoder({"name": name}, rngs=nnx.Rngs(0))
    encoder.eval()
    frontend = encoders.LogMel()
    objective = Denoise(128, num_bands=64, noise="additive", rngs=nnx.Rngs(1))
    batch = {
        "audio": 0.1 * jax.random.normal(jax.random.key(3), (3, frontend.samples_for_patches(2))),
        "weight": jnp.array([1.0, 0.0, 1.0]),
    }
    key = jax.random.key(4)
    loss, metrics = objective(encoder, frontend, batch, key, train=False)
    clean = np.asarray(frontend.patches(frontend(batch["audio"])))
    noisy = corrupt(key, jnp.asarray(clean), noise="additive", noise_std=0.1, keep_prob=0.5, floor=np.log(0.01))
    embeddings = encoders.encode_patches(encoder, noisy)
    decoded = np.asarray(objective.decoder(embeddings.reshape(6, 128))).reshape(clean.shape)
    per_example = ((decoded - clean) ** 2).mean(axis=(1, 2, 3))
    assert float(loss) == pytest.approx((per_example[0] + per_example[2]) / 2, rel=1e-5)
    corrupted = ((np.asarray(noisy) - clean) ** 2).mean(axis=(1, 2, 3))
    assert float(metrics["corrupted_input_mse"]) == pytest.approx((corrupted[0] + corrupted[2]) / 2, rel=1e-4)
    again, _ = objective(encoder, frontend, batch, key, train=False)
    assert float(again) == float(loss)  # the evaluation key makes validation deterministic


def test_options_are_checked():
    with pytest.raises(ValueError, match="noise must be one of"):
        objectives.build_objective({"name": "denoise", "noise": "pink"}, context())
    with pytest.raises(ValueError, match="keep_prob"):
        objectives.build_objective({"name": "denoise", "keep_prob": 0.0}, context())


def test_multi_objective_sums_weighted_parts_and_names_their_metrics():
    config = {
        "name": "multi",
        "parts": {
            "mixup": {"name": "family_mixup", "weight": 0.5, "mixup_prob": 0.0},
            "rebuild": {"name": "denoise", "weight": 2.0},
        },
    }
    multi = objectives.build_objective(config, context())
    encoder = encoders.build_encoder({"name": "compact"}, rngs=nnx.Rngs(0))
    encoder.eval()
    frontend = encoders.LogMel()
    batch = {
        "audio": 0.1 * jax.random.normal(jax.random.key(5), (4, 15600)),
        "family": jnp.array([1, 2, 3, 4]),
        "weight": jnp.ones(4),
    }
    key = jax.random.key(6)
    total, metrics = multi(encoder, frontend, batch, key, train=True)
    mix, _ = multi.parts["mixup"](encoder, frontend, batch, jax.random.fold_in(key, 0), train=True)
    rebuild, _ = multi.parts["rebuild"](encoder, frontend, batch, jax.random.fold_in(key, 1), train=True)
    assert float(total) == pytest.approx(0.5 * float(mix) + 2.0 * float(rebuild), rel=1e-5)
    assert {"mixup/loss", "mixup/accuracy", "rebuild/loss", "rebuild/mse"} <= set(metrics)


def test_multi_objective_refuses_nesting_and_stray_options():
    with pytest.raises(ValueError, match="do not nest"):
        objectives.build_objective({"name": "multi", "parts": {"a": {"name": "multi"}}}, context())
    with pytest.raises(KeyError, match="unknown option"):
        objectives.build_objective({"name": "multi", "parts": {}, "mode": "x"}, context())
    with pytest.raises(ValueError, match="at least one part"):
        objectives.build_objective({"name": "multi", "parts": {}}, context())
