"""Training-time augmentation of downstream runs: SpecAugment masks and mixing with label union."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from encoders.augment import spec_augment
from finetune.train import mix_examples


def runs(mask: np.ndarray) -> list[int]:
    """Lengths of the runs of True in a 1-D mask."""
    edges = np.diff(np.r_[0, mask.astype(int), 0])
    return list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))


def test_spec_augment_masks_runs_with_the_patch_mean_and_nothing_else():
    rng = np.random.default_rng(0)
    patches = jnp.asarray(rng.normal(size=(16, 96, 64)).astype(np.float32))
    out = np.asarray(spec_augment(patches, jax.random.key(3), time_masks=2, time_width=10, freq_masks=1, freq_width=8))
    original = np.asarray(patches)
    for p in range(16):
        mean = original[p].mean()
        changed = ~np.isclose(out[p], original[p])
        np.testing.assert_allclose(out[p][changed], mean, rtol=1e-6)
        frames = np.isclose(out[p], mean).all(axis=1)  # whole frames masked
        bands = np.isclose(out[p], mean).all(axis=0)
        assert len(runs(frames)) <= 2 and sum(runs(frames)) <= 2 * 10  # two runs may touch and merge
        assert len(runs(bands)) <= 1 and sum(runs(bands)) <= 8
        np.testing.assert_array_equal(changed, frames[:, None] | bands[None, :])
    assert (out != original).any()
    same = spec_augment(patches, jax.random.key(3), time_masks=2, time_width=10, freq_masks=1, freq_width=8)
    np.testing.assert_array_equal(np.asarray(same), out)  # keyed: deterministic
    untouched = spec_augment(patches, jax.random.key(3), time_masks=0, time_width=10, freq_masks=0, freq_width=8)
    np.testing.assert_array_equal(np.asarray(untouched), original)


def test_mixing_takes_the_label_union_and_needs_both_observations():
    batch = {
        "x": jnp.asarray([[1.0, 1.0], [3.0, 5.0], [0.0, 2.0]]),
        "y": jnp.asarray([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
        "observed": jnp.asarray([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]),
        "weight": jnp.asarray([1.0, 1.0, 0.0]),
    }
    key = jax.random.key(0)
    union = mix_examples(batch, key, prob=1.0, alpha=0.4, labels="union")
    soft = mix_examples(batch, key, prob=1.0, alpha=0.4, labels="soft")
    partner = np.roll(np.asarray(batch["x"]), 1, axis=0)
    lam = float((union["x"][0, 0] - partner[0, 0]) / (batch["x"][0, 0] - partner[0, 0]))
    assert 0.0 < lam < 1.0
    np.testing.assert_allclose(union["x"], lam * np.asarray(batch["x"]) + (1 - lam) * partner, rtol=1e-5)
    np.testing.assert_array_equal(union["y"], [[1, 0, 1], [1, 1, 0], [0, 1, 1]])
    y = np.asarray(batch["y"])
    np.testing.assert_allclose(soft["y"], lam * y + (1 - lam) * np.roll(y, 1, axis=0), rtol=1e-5)
    np.testing.assert_array_equal(union["observed"], [[1, 1, 1], [1, 0, 1], [1, 0, 1]])
    np.testing.assert_array_equal(union["weight"], [0.0, 1.0, 0.0])  # example 0's partner never loaded
    unmixed = mix_examples(batch, key, prob=0.0, alpha=0.4, labels="union")
    for name in batch:
        np.testing.assert_array_equal(unmixed[name], batch[name])


def test_masked_patches_wraps_any_frontend_and_masks_only_its_patches():
    import encoders
    from encoders.augment import MaskedPatches

    frontend = encoders.LogMel()
    spec = dict(time_masks=1, time_width=20, freq_masks=1, freq_width=10)
    key = jax.random.key(7)
    masked = MaskedPatches(frontend, key, spec)
    audio = 0.1 * jax.random.normal(jax.random.key(1), (2, frontend.samples_for_patches(3)))
    np.testing.assert_array_equal(masked(audio), frontend(audio))  # the spectrogram itself is untouched
    assert masked.num_bands == 64 and masked.samples_for_patches(1) == frontend.samples_for_patches(1)
    plain = frontend.patches(frontend(audio))
    expected = spec_augment(plain.reshape(6, 96, 64), key, **spec).reshape(plain.shape)
    np.testing.assert_array_equal(masked.patches(masked(audio)), expected)
    assert (np.asarray(expected) != np.asarray(plain)).any()


@pytest.mark.parametrize("config", ["nsynth_denoise_add", "nsynth_mixup_denoise"])
def test_pretraining_refuses_spec_augment_with_denoising(config, in_process, tmp_path):
    """Refused before any data is read (a denoising part inside `multi` too), leaving no folder."""
    from overtone.errors import BadValueError

    with pytest.raises(BadValueError, match="spec_augment masks the input patches"):
        in_process("pretrain", tmp_path / "run", f"{config}:encoder=compact", "--config.spec_augment.time_masks=2")
    assert not (tmp_path / "run").exists()
