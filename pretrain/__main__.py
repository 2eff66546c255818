"""python -m pretrain --config=NAME[:VARIANTS] [--workdir=DIR] [--config.KEY=VALUE ...]

Pretrains an encoder with the config's objective and exports it as a bundle
(WORKDIR/export) at the end. The config is a name under configs/ or a path; the work
directory defaults to runs/<config name>. Run the same command again to resume from the
last checkpoint; a finished run is left alone.
"""

from runtime import cli

EXAMPLES = [
    "python -m pretrain --config=nsynth_mixup --workdir=runs/nsynth_mixup --config.train.num_steps=200",
    "python -m pretrain --config=nsynth_mixup:encoder=compact --workdir=runs/mixup_small",
    "python -m pretrain --config=nsynth_denoise_add --config.data.root=/data/nsynth --workdir=runs/denoise_add",
    "python -m pretrain --config=nsynth_mixup --help     # that config's variants",
]


def _metrics(values: dict | None) -> str:
    """'loss 2.341, accuracy 0.412 (190 examples)' from an evaluation's metrics."""
    if not values:
        return "none"
    # the collapse diagnostics stay in metrics.jsonl and summary.json; the line keeps the scores
    values = {k: v for k, v in values.items() if not k.startswith("embedding_")}
    examples = values.pop("examples", None)
    ordered = sorted(values, key=lambda k: (k != "loss", k))
    text = ", ".join(f"{k} {values[k]:.4g}" for k in ordered if isinstance(values[k], int | float))
    return text + (f" ({examples:.0f} examples)" if examples is not None else "")


def announce(summary: dict) -> None:
    line = f"done: step {summary['final_step']}; best validation (step {summary['best_step']}): "
    evaluated = summary.get("evaluated", {})
    where = f" ({evaluated['checkpoint']} checkpoint, step {evaluated['step']})" if evaluated else ""
    line += f"{_metrics(summary.get('best_validation'))}; test{where}: {_metrics(summary.get('test'))}"
    if summary.get("export"):
        line += f"; encoder bundle: {summary['export']}"
    print(line)


if __name__ == "__main__":
    import configs
    from pretrain.train import train_and_evaluate

    cli.main(train_and_evaluate, announce, doc=__doc__, kind="pretrain", examples=EXAMPLES, catalog=configs)
