"""Every config under configs/ loads, resolves by name and builds its model; bad input is refused."""

import importlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

import configs
from configs import parse_arg
from corpora.nsynth import FAMILIES
from finetune.heads import build_head
from finetune.train import MODES
from overtone.errors import UnknownNameError
from pretrain import build_model

NUM_CLASSES = {"family": len(FAMILIES), "instrument": 1006, "tags": 1000}
VARIANTS = {
    "nsynth_mixup": [
        "",
        "encoder=compact",
        "recipe=zhong",
        "encoder=compact,recipe=zhong",
        "encoder=sinc,recipe=zhong",
    ],
    "nsynth_denoise_add": ["", "encoder=compact"],
    "nsynth_denoise_mul": ["", "encoder=compact"],
    "nsynth_mixup_denoise": ["", "encoder=compact"],
    "nsynth_textual": ["", "encoder=compact"],
    "freesound_align": ["", "encoder=compact"],
    "openmic_attention": [""],
    "openmic_attention_encoder": [""],
    "irmas_attention": [""],
    "irmas_finetune": [""],
    "zhong_irmas": [""],
    "zhong_pretrain": ["", "encoder=compact"],
    "openmic_forest": [""],
    "probe": [""],
    "folder_4class_cnn": [""],
    "irmas_multistft": [""],
    "openmic_attention_cqt_aug": [""],
    "objectives_table": ["", "encoder=vggish"],
}


def test_every_config_has_its_variants_listed():
    assert set(VARIANTS) == set(configs.names())


@pytest.mark.parametrize(("name", "arg"), [(n, a) for n, args in VARIANTS.items() for a in args])
def test_config_loads_and_builds(name, arg):
    config = importlib.import_module(f"configs.{name}").get_config(arg or None)
    if configs.kind(config) == "suite":  # every pretraining config it names builds, every baseline loads
        from suite import check_suite

        built = check_suite(config, configs)
        assert {c.encoder.name for runs in built.values() for c in runs} == {arg.partition("=")[2] or "compact"}
        return
    if "task" in config:  # linear probe
        import corpora

        assert config.task in corpora.names("clips") and config.grid.learning_rate and config.grid.weight_decay
        assert {t.split("_")[0] for t in corpora.names("clips")} <= set(config.data)
        return
    if "objective" in config:  # pretraining
        model = nnx.eval_shape(lambda: build_model(config, NUM_CLASSES))  # shapes only: fast
        assert model.encoder.embedding_dim == {"sinc": 512, "sinc_zhong": 1024}.get(config.encoder.name, 128)
        assert (config.frontend.name == "waveform") == (config.encoder.name in ("sinc", "sinc_zhong"))
        import encoders

        completed = encoders.match_frontend(config.encoder.to_dict(), config.frontend.to_dict())
        assert completed.get("in_channels", 1) == (3 if config.frontend.name == "multistft" else 1)
    elif config.model.name == "forest":  # fitted on fixed embeddings, no head to build
        from finetune.forest import check_forest

        assert check_forest(config.model) and config.mode in ("features", "frozen")
    else:  # downstream
        x = jnp.zeros((2, config.protocol.window_patches, 128))
        out = jax.eval_shape(lambda: build_head(config.model, 20, 128, rngs=nnx.Rngs(0))(x))
        assert out.shape == (2, 20)
        assert config.mode in MODES and config.protocol.scale in ("none", "minmax")
    assert config.train.batch_size > 0 and config.optimizer.learning_rate > 0


def test_bare_name_resolves_to_the_config_file():
    resolved = configs.resolve_flag(["prog", "--config=nsynth_mixup:encoder=compact", "--x=1"])
    assert resolved[1] == f"--config={configs.config_dir() / 'nsynth_mixup.py'}:encoder=compact"
    assert configs.resolve_flag(["p", "--config", "nsynth_mixup"])[2].endswith("configs/nsynth_mixup.py")
    probe = configs.config_dir() / "probe.py"
    assert configs.resolve_flag(["p", "--config=configs/probe.py"])[1] == f"--config={probe}"
    with pytest.raises(UnknownNameError, match="no config file .*some/where.py"):
        configs.resolve_flag(["p", "--config=some/where.py"])
    with pytest.raises(UnknownNameError, match=r"available: \[.*'nsynth_mixup'"):
        configs.resolve_flag(["p", "--config=nsynth_mixupp"])


def test_configs_folder_can_be_overridden(tmp_path, monkeypatch):
    (tmp_path / "mine.py").write_text("def get_config(arg=None):\n    return None\n")
    monkeypatch.setenv("OVERTONE_CONFIGS", str(tmp_path))
    assert configs.resolve("mine") == str(tmp_path / "mine.py")


def test_variant_strings():
    parsed = parse_arg("encoder=compact", encoder="vggish", recipe="taenzer")
    assert parsed == {"encoder": "compact", "recipe": "taenzer"}
    with pytest.raises(ValueError, match="valid keys"):
        parse_arg("width=3", encoder="vggish")


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--config.train.nope=1", "nope"),
        ("--config.train.batch_size=many", "batch_size"),
        (
            "--config=nsynth_mixup:encoder=resnet",
            "registered: ['compact', 'logmel_stats', 'sinc', 'sinc_zhong', 'vggish']",
        ),
    ],
)
def test_cli_refuses_unknown_keys_bad_types_and_names(flag, message, tmp_path, subprocess_env):
    args = [sys.executable, "-m", "pretrain", "--config=nsynth_mixup", f"--workdir={tmp_path}", flag]
    if flag.startswith("--config="):
        args = [sys.executable, "-m", "pretrain", flag, f"--workdir={tmp_path}"]
    result = subprocess.run(args, capture_output=True, text=True, env=subprocess_env, timeout=300)
    assert result.returncode == 1
    assert message in result.stderr
