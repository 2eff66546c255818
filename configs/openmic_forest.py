"""The OpenMIC-2018 baseline: a random forest per instrument on the shipped VGGish features.

    python -m finetune --config=openmic_forest --config.data.root=/data/openmic-2018 --workdir=runs/openmic_forest

Humphrey, Durand & McFee's baseline as cosmir/openmic-2018's `examples/modeling-baseline.ipynb`
runs it (`finetune.forest`): per instrument, the clips where it is observed, features averaged
over the 10 time steps, `RandomForestClassifier(max_depth=8, n_estimators=100)`, threshold 0.5.
Published: mean per-instrument F1 ≈ 0.78. Deviation: the forests are fitted on split01_train
less the 10 % held out for validation (scored too, for the report); the notebook used all of
it. `--config.mode=frozen --encoder=RUN` fits the same forests on an encoder's embeddings.
"""

from configs import _common


def get_config(arg=None):
    del arg
    config = _common.downstream("openmic", "features", batch_size=128, embedded=dict(cache_dir="", clips=240))
    config.model = dict(name="forest", trees=100, max_depth=8)
    return config
