"""Zhong et al.'s recipe against their reference code (nii-yamagishilab/predominant-instrument-
recognition): the network's layer shapes and parameter count, the sinc layer's taper, padding and
frame count, the LDE, the pooled NSynth split, the pretraining head and the schedule."""

import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from encoders import parameter_count
from encoders.zhong import ZhongSincNet, zhong_window


def reference_shapes() -> list[tuple[int, ...]]:
    """Every parameter of their model (irnet.py: SincConv, spec_bn, resnet34, LDE D=8) in flax's
    layout (convolutions HWIO), re-derived from `resnet.py`'s ResNet/_make_layer/BasicBlock."""
    shapes = [(128,), (128,), (1,), (1,), (7, 7, 1, 16), (16,), (16,)]  # low/band, spec_bn, conv1, bn1
    inplanes = 16
    for planes, blocks, stride in ((16, 3, 1), (32, 4, 2), (64, 6, 2), (128, 3, 2)):
        for b in range(blocks):
            shapes += [(3, 3, inplanes, planes), (planes,), (planes,), (3, 3, planes, planes), (planes,), (planes,)]
            if b == 0 and (stride != 1 or inplanes != planes):  # downsample: 1×1 conv + bn
                shapes += [(1, 1, inplanes, planes), (planes,), (planes,)]
            inplanes = planes
    return shapes + [(8, 128), (8,)]  # LDE dic, wei


def test_zhong_network_is_their_resnet34():
    model = ZhongSincNet(rngs=nnx.Rngs(0))
    ours = sorted(tuple(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert ours == sorted(reference_shapes())
    assert parameter_count(model) == sum(int(np.prod(s)) for s in reference_shapes()) == 1_334_970
    assert model.embedding_dim == 1024 and model.taps == 801 and model.stride == 192


def test_their_taper_and_initial_bands():
    taps = 801
    n_lin = np.linspace(0, taps / 2 - 1, int(taps / 2))  # transforms.py, _init_sinc_conv_mel
    left = 0.54 - 0.46 * np.cos(2 * np.pi * n_lin / taps)
    np.testing.assert_allclose(zhong_window(taps), np.concatenate([left, [1.0], left[::-1]]))
    assert np.abs(zhong_window(taps) - np.hamming(taps)).max() < 3e-3  # close to, not equal to, Hamming
    model = ZhongSincNet(rngs=nnx.Rngs(0))
    to_mel = lambda hz: 2595 * np.log10(1 + hz / 700)  # noqa: E731
    hz = 700 * (10 ** (np.linspace(to_mel(5), to_mel(8000 - 10), 129) / 2595) - 1)
    np.testing.assert_allclose(np.asarray(model.low_hz[...]), hz[:-1], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(model.band_hz[...]), np.diff(hz), rtol=1e-5)


def test_sinc_layer_pads_by_reflection_and_gives_84_frames_per_second():
    model = ZhongSincNet(rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    out = np.asarray(model.filterbank(jnp.asarray(x)[None, :, None]))[0]
    assert out.shape == (84, 128)  # floor((16000 + 800 - 801) / 192) + 1
    padded = np.pad(x.astype(np.float64), 400, mode="reflect")  # torch F.pad(mode="reflect")
    kernels = np.asarray(model.kernels(), np.float64)
    for f in (0, 64, 127):  # conv1d is a correlation; the kernels are symmetric anyway
        expected = [padded[i * 192 : i * 192 + 801] @ kernels[:, f] for i in range(84)]
        np.testing.assert_allclose(out[:, f], expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_lde_uses_squared_precision_and_normalises_over_time():
    model = ZhongSincNet(rngs=nnx.Rngs(0))
    model.precision_root[...] = jnp.asarray(np.linspace(-1.5, 1.5, 8), jnp.float32)
    x = np.random.default_rng(1).normal(size=(2, 5, 128)).astype(np.float32)
    from encoders.sinc import lde

    got = np.asarray(lde(jnp.asarray(x), model.centres[...], model.precision_root[...] ** 2))
    dic, wei = np.asarray(model.centres[...], np.float64), np.asarray(model.precision_root[...], np.float64)
    r = x[:, :, None, :].astype(np.float64) - dic  # necks.py, LDE.forward
    logits = -(r**2).sum(-1) * wei**2
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    w = w / (w.sum(1, keepdims=True) + 1e-9)
    np.testing.assert_allclose(got, (w[..., None] * r).sum(1).reshape(2, -1), rtol=1e-4, atol=1e-5)
    assert np.all(np.abs(np.asarray(ZhongSincNet(rngs=nnx.Rngs(3)).centres[...])) <= 1.0)  # uniform(-1, 1)


def test_zhong_pretrain_is_their_training_script():
    """experiments/irnet.sh, model_configs/irnet.py and src/lms/mie.py, value by value."""
    from conftest import configured

    import encoders

    config = configured("zhong_pretrain")
    assert config.encoder.name == "sinc_zhong" and config.seed == 906
    frontend = encoders.build_frontend(config.frontend)
    assert frontend.samples_for_patches(1) == 16000 and frontend.num_patches(16000) == 1  # --seg_dur 1
    objective = config.objective.to_dict()
    assert objective == {
        "name": "family_mixup",
        "target": "instrument",
        "label_smoothing": 0.05,
        "mixup_prob": 0.5,
        "mixup_alpha": 0.4,
        "hidden_dim": 512,
    }
    opt = config.optimizer
    assert (opt.name, opt.learning_rate, opt.weight_decay, opt.schedule) == ("adam", 1e-3, 5e-4, "cosine")
    assert (opt.warmup_epochs, opt.warmup_steps) == (3, 0)
    assert (config.train.batch_size, config.train.num_epochs, config.train.select_by) == (128, 30, "last")
    data = config.data
    assert (data.splits, data.silence_measure, data.silence_threshold) == ("zhong_pooled", "mean_abs", 5e-4)
    assert data.crop_max_offset_seconds == 0.0  # waveform[0][:seg_dur]: each note's first second
    augment = data.augment.to_dict()
    assert (augment["concat_prob"], augment["chain_prob"]) == (0.5, 0.3)  # 'stitch' at 0.5; aug_p 0.3
    chain = {k: augment[k] for k in ("noise", "gain", "delay", "pitch_shift", "reverb")}
    assert chain == {"noise": 0.3, "gain": 0.2, "delay": 0.5, "pitch_shift": 0.4, "reverb": 0.3}


def test_pooled_splits_are_theirs_note_for_note(tmp_path):
    """write_metadata_nsynth.py's split, re-derived with its own calls, and its silence test."""
    import json

    from conftest import configured, nsynth_entry, tone, write_nsynth_split

    from corpora.notes import load_corpus
    from overtone.audio import BadFileLog

    order = np.random.default_rng(0).permutation(40)  # examples.json in an order that is not sorted
    quiet = np.zeros(16000, np.float32)
    quiet[100] = 0.5  # a click: peak 0.5, mean |x| 3e-5 — silent by their test, not by a peak test
    for split, ids in (("train", order[:30]), ("valid", order[30:36]), ("test", order[36:])):
        notes = {}
        for i in ids:
            name = f"keyboard_acoustic_{i % 5:03d}-{40 + i:03d}-100"
            entry = nsynth_entry(name, instrument=int(i % 5), family=4, source=0, pitch=40 + int(i), velocity=100)
            notes[name] = (entry, quiet if i == order[3] else tone(220.0 + i, seconds=1.0))
        write_nsynth_split(tmp_path, split, notes)
    keys = [
        k for split in ("train", "valid") for k in json.loads((tmp_path / f"nsynth-{split}/examples.json").read_text())
    ]
    state = random.getstate()
    random.seed(39)
    random.shuffle(keys)
    random.setstate(state)
    split = int(0.96 * len(keys))
    silent = f"keyboard_acoustic_{order[3] % 5:03d}-{40 + order[3]:03d}-100"
    config = configured("zhong_pretrain", f"--config.data.root={tmp_path}", "--config.data.workers=1")
    corpus = load_corpus(config.data, bad_log=BadFileLog(0.5))
    assert [n.note_str for n in corpus.splits["train"]] == [k for k in keys[:split] if k != silent]
    assert [n.note_str for n in corpus.splits["valid"]] == [k for k in keys[split:] if k != silent]
    assert len(corpus.splits["test"]) == 4
    assert sum(s["silent_dropped"] for s in corpus.report["splits"].values()) == 1


def test_their_pretraining_head():
    """fc0 (1024 → 512, PyTorch's default init) → bn0 → LinearClsHead (leaky ReLU, linear with
    weights N(1, 0.01²) and bias 0), evaluation-mode logits against numpy."""
    from objectives.family_mixup import FamilyMixup

    head = FamilyMixup(1024, num_classes=1006, target="instrument", hidden_dim=512, rngs=nnx.Rngs(0))
    params = nnx.state(head, nnx.Param)
    assert sum(x.size for x in jax.tree.leaves(params)) == 1024 * 512 + 512 + 2 * 512 + 512 * 1006 + 1006
    w1, b1 = np.asarray(head.hidden.kernel[...]), np.asarray(head.hidden.bias[...])
    assert np.abs(w1).max() <= 1024**-0.5 and np.abs(b1).max() <= 1024**-0.5
    w2, b2 = np.asarray(head.classifier.kernel[...]), np.asarray(head.classifier.bias[...])
    assert abs(w2.mean() - 1.0) < 1e-3 and w2.std() == pytest.approx(0.01, rel=0.02) and not b2.any()
    head.eval()
    x = np.random.default_rng(2).normal(size=(3, 1024)).astype(np.float32)
    h = (x @ w1 + b1) / np.sqrt(1.0 + 1e-5)  # running mean 0, variance 1
    h = np.where(h > 0, h, 0.01 * h)
    identity = type("Identity", (), {"__call__": lambda self, p: p})()
    clips = type("Frontend", (), {"__call__": lambda self, a: a, "patches": lambda self, a: a[:, None]})()
    got = np.asarray(head.logits(identity, clips, jnp.asarray(x)))
    np.testing.assert_allclose(got, h @ w2 + b2, rtol=1e-4, atol=1e-3)


def test_the_effect_chain_runs_with_its_own_probability():
    from corpora.augment import AudioEffects

    effects = AudioEffects({"gain": 1.0, "chain_prob": 0.3})
    rng = np.random.default_rng(0)
    x = np.full(64, 0.1, np.float32)
    changed = np.mean([not np.array_equal(effects(x, rng), x) for _ in range(2000)])
    assert abs(changed - 0.3) < 5 * np.sqrt(0.3 * 0.7 / 2000)  # five binomial standard deviations
    assert not AudioEffects({"gain": 1.0, "chain_prob": 0.0}).active
