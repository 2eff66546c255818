"""Encoder registry: every registered encoder builds, has the right shapes and parameter count."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import encoders
from encoders.vggish import VGGish

PARAMETER_RANGES = {
    "vggish": (72_141_184, 72_141_184),
    "compact": (1_000_000, 2_000_000),
    "sinc": (1_333_812, 1_333_812),
    "sinc_zhong": (1_334_970, 1_334_970),  # their code's count (test_zhong_network_is_their_resnet34)
    "logmel_stats": (0, 0),
}
EMBEDDING = {"vggish": 128, "compact": 128, "sinc": 512, "sinc_zhong": 1024, "logmel_stats": 128}


def frontend_for(name: str):
    return encoders.FRONTENDS[getattr(encoders.ENCODERS[name], "frontend_name", "vggish_logmel")]()


@pytest.fixture(scope="module", params=sorted(encoders.ENCODERS))
def built(request):
    return request.param, encoders.build_encoder({"name": request.param}, rngs=nnx.Rngs(0))


def test_every_encoder_has_a_parameter_budget():
    assert set(PARAMETER_RANGES) == set(encoders.ENCODERS)


def test_parameter_count(built):
    name, encoder = built
    low, high = PARAMETER_RANGES[name]
    assert low <= encoders.parameter_count(encoder) <= high


def test_patches_to_embeddings(built):
    name, encoder = built
    frontend = frontend_for(name)
    patches = frontend.patches(frontend(0.1 * jax.random.normal(jax.random.key(1), (3, 16000))))[:, 0]
    out = encoder(patches)
    assert out.shape == (3, encoder.embedding_dim) == (3, EMBEDDING[name])
    assert np.all(np.isfinite(np.asarray(out)))


def test_clips_to_time_sequence(built):
    """A batch of 4-s clips becomes 4 embeddings each, equal to embedding each patch alone."""
    name, encoder = built
    encoder.eval()  # batch-norm with running statistics: patches independent of each other
    frontend = frontend_for(name)
    audio = 0.1 * jax.random.normal(jax.random.key(2), (2, 64000))
    sequence = encoders.encode_clips(encoder, frontend, audio)
    assert sequence.shape == (2, 4, EMBEDDING[name])
    patches = frontend.patches(frontend(audio))
    np.testing.assert_allclose(sequence[1, 3], encoder(patches[1, 3][None])[0], rtol=1e-4, atol=1e-4)
    encoder.train()


def test_vggish_layer_list():
    """Exact VGGish layers: six 3x3 convs, three dense layers, 12288 flattened features."""
    model = VGGish(rngs=nnx.Rngs(0))
    convs = [(n, m.kernel[...].shape) for n, m in vars(model).items() if isinstance(m, nnx.Conv)]
    assert convs == [
        ("conv1", (3, 3, 1, 64)),
        ("conv2", (3, 3, 64, 128)),
        ("conv3_1", (3, 3, 128, 256)),
        ("conv3_2", (3, 3, 256, 256)),
        ("conv4_1", (3, 3, 256, 512)),
        ("conv4_2", (3, 3, 512, 512)),
    ]
    dense = [(n, m.kernel[...].shape) for n, m in vars(model).items() if isinstance(m, nnx.Linear)]
    assert dense == [("fc1_1", (12288, 4096)), ("fc1_2", (4096, 4096)), ("fc2", (4096, 128))]


def test_vggish_has_no_final_relu_unless_asked():
    x = jax.random.normal(jax.random.key(3), (8, 96, 64))
    plain = VGGish(rngs=nnx.Rngs(0))(x)
    assert float(jnp.min(plain)) < 0.0  # the embedding is linear: negative values occur
    relu = VGGish(final_relu=True, rngs=nnx.Rngs(0))(x)
    np.testing.assert_allclose(relu, jnp.maximum(plain, 0.0), rtol=1e-5, atol=1e-6)


def test_glorot_uniform_initialisation():
    """Taenzer et al. use Glorot uniform: kernel bounds sqrt(6 / (fan_in + fan_out))."""
    model = VGGish(rngs=nnx.Rngs(0))
    kernel = np.asarray(model.fc1_2.kernel[...])
    limit = np.sqrt(6.0 / (4096 + 4096))
    assert np.abs(kernel).max() <= limit
    assert np.isclose(kernel.std(), limit / np.sqrt(3.0), rtol=0.01)
    assert np.all(np.asarray(model.fc1_2.bias[...]) == 0.0)


def test_vggish_refuses_other_patch_sizes():
    with pytest.raises(ValueError, match=r"\(batch, 96, 64\)"):
        VGGish(rngs=nnx.Rngs(0))(jnp.zeros((1, 100, 64)))


def test_registry_errors_name_the_valid_choices():
    with pytest.raises(KeyError, match=r"registered: \['compact', 'logmel_stats', 'sinc', 'sinc_zhong', 'vggish'\]"):
        encoders.build_encoder({"name": "resnet"}, rngs=nnx.Rngs(0))
    with pytest.raises(KeyError, match="has no option"):
        encoders.build_encoder({"name": "vggish", "width": 3}, rngs=nnx.Rngs(0))


def test_sinc_filters_follow_sincnet_and_pass_their_band():
    from encoders.sinc import SincResNet

    model = SincResNet(rngs=nnx.Rngs(0))
    kernels = np.asarray(model.kernels())
    assert kernels.shape == (801, 128)
    low = 50.0 + np.abs(np.asarray(model.low_hz[...], np.float64))
    high = np.minimum(low + 50.0 + np.abs(np.asarray(model.band_hz[...], np.float64)), 8000.0)
    t = (np.arange(801) - 400) / 16000
    for i in (0, 40, 127):  # independent re-derivation: difference of two windowed low-pass sincs
        band = 2 * high[i] * np.sinc(2 * high[i] * t) - 2 * low[i] * np.sinc(2 * low[i] * t)
        expected = band * np.hamming(801) / (2 * (high[i] - low[i]))
        np.testing.assert_allclose(kernels[:, i], expected, atol=5e-5)  # float32 sinc arguments near Nyquist
        response = np.abs(np.fft.rfft(kernels[:, i], 16000))
        peak = np.argmax(response)  # 1-Hz bins
        assert low[i] - 20 <= peak <= high[i] + 20
    assert np.all(np.diff(low) > 0)  # mel-spaced, increasing


def test_lde_pooling_equals_numpy():
    from encoders.sinc import SincResNet

    model = SincResNet(rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).normal(size=(2, 7, 128)).astype(np.float32)
    centres, scales = np.asarray(model.centres[...]), np.asarray(model.scales[...])
    expected = []
    for sample in x:
        residual = sample[:, None, :] - centres[None]  # (T, C, D)
        logits = -np.abs(scales) * (residual**2).sum(-1)
        weights = np.exp(logits - logits.max(1, keepdims=True))
        weights /= weights.sum(1, keepdims=True)
        expected.append(((weights[..., None] * residual).sum(0) / weights.sum(0)[:, None]).reshape(-1))
    np.testing.assert_allclose(np.asarray(model.lde(jnp.asarray(x))), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="waveform patches"):
        model(jnp.zeros((2, 96, 64)))


def test_logmel_stats_are_numpy_means_and_deviations_over_time():
    """The no-parameter baseline: per band (and channel), the mean then the population std over frames."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 96, 64)).astype(np.float32)
    out = np.asarray(encoders.build_encoder({"name": "logmel_stats"}, rngs=nnx.Rngs(0))(x))
    np.testing.assert_allclose(out, np.concatenate([x.mean(1), x.std(1)], -1), rtol=1e-5, atol=1e-5)
    stacked = rng.normal(size=(2, 10, 8, 3)).astype(np.float32)
    multi = encoders.build_encoder({"name": "logmel_stats", "bands": 8, "in_channels": 3}, rngs=nnx.Rngs(0))
    flat = stacked.reshape(2, 10, 24)
    np.testing.assert_allclose(
        np.asarray(multi(stacked)), np.concatenate([flat.mean(1), flat.std(1)], -1), rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match=r"takes \(batch, frames, 8, 3\)"):
        multi(stacked[..., :2])


def test_the_front_end_sets_the_band_and_channel_counts():
    completed = encoders.match_frontend({"name": "logmel_stats"}, {"name": "multistft"})
    assert completed == {"name": "logmel_stats", "bands": 128, "in_channels": 3}
    assert encoders.match_frontend({"name": "logmel_stats", "bands": 32}, {})["bands"] == 32


def test_a_random_encoders_identity_holds_its_options_and_draw():
    from encoders.pretrained import load_encoder

    plain, relu = load_encoder("random:vggish"), load_encoder("random:vggish", options={"final_relu": True})
    assert plain.checksum != relu.checksum  # same weights, other embeddings: never one cache entry
    assert load_encoder("random:compact", seed=1).checksum != load_encoder("random:compact", seed=2).checksum
    # nothing drawn: every seed is one encoder (its embeddings are computed once)
    assert load_encoder("random:logmel_stats", seed=1).checksum == load_encoder("random:logmel_stats", seed=2).checksum
