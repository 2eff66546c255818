"""Does pretraining help? Each objective's encoder against random init and log-mel statistics, probed.

    python -m suite --config=objectives_table --workdir=runs/objectives
    python -m suite --config=objectives_table:encoder=vggish --config.probe.data.irmas.root=/data/IRMAS

Taenzer et al.'s central comparison (docs/methods.md §4): every pretraining config in
`pretrain` is trained (a finished run in WORKDIR/pretrain/NAME is reused, a stopped one
resumed) and its exported encoder probed on every task in `tasks` with `seeds` seeds, beside
the `baselines` (the same encoder untrained, a new draw per seed; log-mel statistics, nothing
learned). Writes WORKDIR/table.md, table.json and table.png. Variant: `encoder=compact|vggish`.
On the real datasets, set NSYNTH_DIR (pretraining and the NSynth probe) and the probe's roots
(`--config.probe.data.irmas.root`, …); the probe settings are `configs/probe.py`'s.
"""

from ml_collections import ConfigDict

from configs import parse_arg, probe


def get_config(arg=None):
    values = parse_arg(arg, encoder="compact")
    encoder = values["encoder"]
    config = ConfigDict()
    config.seed = 0
    config.seeds = 3  # probe seeds: mean ± sample std over them
    # 1: one pretraining run per objective, probed with every seed; = seeds: a run per seed too
    config.pretrain_seeds = 1
    # row label → "SPEC [KEY=VALUE ...]": a pretraining config as --config= takes it, then the row's
    # own overrides (after pretrain_overrides), e.g. "nsynth_textual objective.centre=False";
    # empty: the row is left out
    config.pretrain = dict(
        mixup=f"nsynth_mixup:encoder={encoder}",
        denoise_add=f"nsynth_denoise_add:encoder={encoder}",
        denoise_mul=f"nsynth_denoise_mul:encoder={encoder}",
        textual=f"nsynth_textual:encoder={encoder}",
    )
    # --config.KEY=VALUE for every pretraining run (e.g. data.root=/data/nsynth)
    config.pretrain_overrides = ("train.num_steps=600", "train.eval_every_steps=50")
    # row label → encoder, as --encoder= takes it (random:NAME draws a new encoder per seed; empty: left out)
    config.baselines = dict(logmel_stats="random:logmel_stats", random=f"random:{encoder}")
    config.reference = "random"  # the row every other is judged against (empty: none)
    config.tasks = ("nsynth_family", "irmas")
    config.probe = probe.get_config()
    for key in ("task", "seeds", "seed", "encoder"):  # set per table cell by the suite
        del config.probe[key]
    return config
