"""Paper recipes against their reference code: the head's layers and initialisation, the
schedule's values, the reduced-data draw, the threshold sweep — and one recipe end to end."""

import json
import math

import jax
import numpy as np
import pytest
from conftest import configured
from flax import nnx

from finetune.heads import MLPHead
from finetune.protocol import threshold_grid
from runtime.optim import learning_rate_schedule


def test_zhong_irmas_is_their_fine_tuning_script():
    """experiments/finetune/irnet.sh and src/lms/irmas_mie.py, value by value."""
    config = configured("zhong_irmas")
    opt = config.optimizer
    assert (opt.name, opt.learning_rate, opt.weight_decay, opt.schedule) == ("adam", 2.5e-4, 5e-4, "cosine")
    assert (opt.warmup_epochs, opt.warmup_steps, opt.encoder_lr_scale) == (5, 0, 1.0)
    assert (config.train.batch_size, config.train.num_epochs, config.train.select_by) == (64, 40, "last")
    assert config.model.to_dict() == {"name": "mlp", "dropout": 0.15}
    assert config.mode == "finetune" and config.data.train_fraction == 1.0
    assert list(threshold_grid(*config.evaluation.threshold_grid)) == [round(0.02 * i, 2) for i in range(40)]


def test_the_warm_cosine_schedule_is_transformers_get_cosine_schedule_with_warmup():
    """Re-derived from transformers' formula: lr·s/w during warm-up, then lr·½(1 + cos(π·progress))."""
    config = configured("zhong_irmas").optimizer
    steps_per_epoch, epochs = 7, 40
    total, warmup = epochs * steps_per_epoch, 5 * steps_per_epoch
    schedule = learning_rate_schedule(config, total, steps_per_epoch)
    for step in (0, 1, 17, warmup, warmup + 1, 150, total - 1, total):
        if step < warmup:
            want = 2.5e-4 * step / warmup
        else:
            want = 2.5e-4 * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))
        # optax computes in float32: within 1e-5 of the peak rate (float32 cos near π loses relative digits)
        assert float(schedule(step)) == pytest.approx(want, abs=1e-5 * 2.5e-4), step


def test_warmup_in_steps_and_in_epochs_at_once_is_refused_before_a_work_directory_is_written():
    from finetune.train import check_names as finetune_names
    from pretrain.train import check_names as pretrain_names

    config = configured("zhong_irmas").optimizer
    with config.unlocked():
        config.warmup_steps = 10
    with pytest.raises(ValueError, match="both set"):
        learning_rate_schedule(config, 100, 5)
    for check, spec in ((pretrain_names, "zhong_pretrain:encoder=compact"), (finetune_names, "zhong_irmas")):
        with pytest.raises(ValueError, match="both set"):  # the names check runs before the work directory
            check(configured(spec, "--config.optimizer.warmup_steps=5"))


def test_the_mlp_head_is_relu_batchnorm_dropout_linear_initialised_as_pytorch():
    """Layer shapes and parameter count of their head (128-d embeddings, 11 classes), its
    evaluation-mode output against numpy, and PyTorch's U(±1/√128) initial weights."""
    head = MLPHead(11, features=128, dropout=0.15, rngs=nnx.Rngs(0))
    params = nnx.state(head, nnx.Param)
    assert head.dense.kernel[...].shape == (128, 11) and head.norm.scale[...].shape == (128,)
    assert sum(x.size for x in jax.tree.leaves(params)) == 2 * 128 + 128 * 11 + 11
    bound = 128**-0.5
    for weights in (np.asarray(head.dense.kernel[...]), np.asarray(head.dense.bias[...])):
        assert np.abs(weights).max() <= bound and np.abs(weights).max() > 0.9 * bound
    assert head.norm.momentum == pytest.approx(0.9) and head.norm.epsilon == pytest.approx(1e-5)
    head.eval()
    sequence = np.random.default_rng(0).normal(size=(4, 3, 128)).astype(np.float32)
    pooled = np.maximum(sequence.mean(axis=1), 0.0) / np.sqrt(1.0 + 1e-5)  # running mean 0, variance 1
    logits = pooled @ np.asarray(head.dense.kernel[...]) + np.asarray(head.dense.bias[...])
    np.testing.assert_allclose(np.asarray(head(sequence)), 1.0 / (1.0 + np.exp(-logits)), rtol=1e-5, atol=1e-6)


def test_train_fraction_keeps_that_share_of_each_class():
    from corpora import ClipSet

    labels = np.repeat(np.arange(3), [10, 20, 3])
    targets = np.eye(3, dtype=np.float32)[labels]

    def clip_set() -> ClipSet:
        paths = {"train": [f"{i}.wav" for i in range(len(labels))]}
        return ClipSet("t", None, True, ["a", "b", "c"], paths, {"train": targets}, {"train": targets > 0})

    clips, again, other = clip_set(), clip_set(), clip_set()
    clips.keep_fraction("train", 0.3, seed=1)
    kept = clips.targets["train"].argmax(1)
    assert np.bincount(kept, minlength=3).tolist() == [3, 6, 1]  # round(0.3·n), at least one
    rows = [int(path[:-4]) for path in clips.paths["train"]]
    assert rows == sorted(rows) and (labels[rows] == kept).all()  # rows kept in order, with their targets
    again.keep_fraction("train", 0.3, seed=1)
    other.keep_fraction("train", 0.3, seed=2)
    assert again.paths == clips.paths != other.paths  # the seed fixes the draw


def test_zhong_irmas_end_to_end_on_a_fraction_of_the_data(in_process, tmp_path):
    """A few steps of the recipe: the last checkpoint is the one evaluated, the threshold comes from
    their grid, and training used half the excerpts."""
    summary = in_process(
        "finetune",
        tmp_path,
        "zhong_irmas",
        "--config.encoder.name=compact",
        "--config.train.num_epochs=2",
        "--config.train.batch_size=8",
        "--config.data.train_fraction=0.5",
        "--config.data.embedded.recordings=3",
        "--config.data.embedded.test_excerpts=12",
    )
    full = in_process(
        "finetune",
        tmp_path / "full",
        "zhong_irmas",
        "--config.encoder.name=compact",
        "--config.train.num_steps=1",
        "--config.train.batch_size=8",
        "--config.data.embedded.recordings=3",
        "--config.data.embedded.test_excerpts=12",
    )
    assert abs(summary["data"]["train"] - full["data"]["train"] / 2) <= 11 / 2  # half of each of 11 classes
    assert summary["evaluated"]["step"] == summary["final_step"]  # their last.ckpt
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["threshold"]["chosen_on"] == "valid"
    assert metrics["threshold"]["value"] in [round(0.02 * i, 2) for i in range(40)]
    assert metrics["extra"]["test_optimistic"]["threshold"] <= 0.78


def test_openmic_attention_is_attention_mics_multirun_command():
    """SiddGururani/AttentionMIC multirun_commands.txt (attention model) and arguments.py."""
    config = configured("openmic_attention")
    opt = config.optimizer
    assert (opt.name, opt.learning_rate, opt.weight_decay, opt.schedule) == ("adam", 5e-4, 1e-5, "constant")
    assert (config.train.num_epochs, config.train.batch_size, config.train.select_by) == (250, 128, "openmic_f1")
    assert (config.model.hidden, config.model.layers, config.model.dropout) == (128, 3, 0.6)
    assert config.data.val_split == "auto" and config.evaluation.threshold == "0.5"


def test_openmic_attention_validates_on_the_split_file_and_keeps_the_best_f1_epoch(
    in_process, embedded_cache, tmp_path
):
    """With AttentionMIC's split file given, validation is the clips it names; every epoch's
    validation row carries the per-instrument F1, and the evaluated checkpoint is the epoch with
    the highest — whose report scores the validation clips to the same number."""
    from corpora.embedded.openmic import ensure_openmic_corpus
    from runtime.workdir import read_metrics

    root = ensure_openmic_corpus(embedded_cache, clips=80)
    training = len((root / "partitions" / "split01_train.csv").read_text().split())
    with open(tmp_path / "train_val.split", "wb") as out:
        np.savez(out, train=np.arange(12, training), val=np.arange(12))
    summary = in_process(
        "finetune",
        tmp_path / "run",
        "openmic_attention",
        f"--config.data.root={root}",
        f"--config.data.val_split={tmp_path / 'train_val.split'}",
        "--config.train.num_epochs=6",
        "--config.train.batch_size=16",
        "--config.optimizer.learning_rate=1e-2",
    )
    assert summary["data"]["valid"] == 12 and "train_val.split" in summary["data"]["validation"]
    assert summary["data"]["train"] == training - 12
    rows = [r for r in read_metrics(tmp_path / "run") if r["split"] == "validation"]
    assert len(rows) == 6 and all(0.0 <= r["openmic_f1"] <= 1.0 for r in rows)
    best = max(rows, key=lambda r: (r["openmic_f1"], -r["step"]))  # the first of equals: only better replaces
    assert summary["best_step"] == summary["evaluated"]["step"] == best["step"]
    report = json.loads((tmp_path / "run" / "report" / "metrics.json").read_text())
    assert report["valid"]["openmic_f1"] == pytest.approx(best["openmic_f1"], abs=1e-6)


def test_a_validation_metric_does_not_select_end_to_end_fine_tuning():
    from finetune.train import check_names
    from overtone.errors import BadValueError

    with pytest.raises(BadValueError, match="mode finetune selects by loss or last"):
        check_names(configured("openmic_attention_cqt_aug", "--config.train.select_by=openmic_f1"))
