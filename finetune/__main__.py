"""python -m finetune --config=NAME [--encoder=BUNDLE|RUN|random:NAME] [--workdir=DIR] [--config.KEY=VALUE ...]

Trains a downstream classifier (OpenMIC-2018, IRMAS or your own folder of audio) on shipped
features, on a frozen encoder's embeddings, or fine-tunes the encoder with it, as the config's
mode says. NAME is a config under configs/ (listed below) or a path; the work directory
defaults to runs/<config name>. --encoder is an exported bundle, a pretraining work directory
(its bundle, RUN/export) or random:vggish / random:compact. Run the same command again
to resume from the last checkpoint.
"""

import configs
from runtime import cli

EXAMPLES = [
    "python -m finetune --config=irmas_attention --encoder=runs/nsynth_mixup --workdir=runs/irmas_mixup",
    "python -m finetune --config=openmic_attention --config.data.root=/data/openmic-2018 --workdir=runs/openmic",
    "python -m finetune --config=folder_4class_cnn --config.data.root=/data/my_instruments --workdir=runs/my4",
]


def announce(summary: dict) -> None:
    report = summary["report"]
    test = report["test"]
    parts = [f"done: step {summary['final_step']}; test F1 micro {test['f1_micro']:.3f}, macro {test['f1_macro']:.3f}"]
    if str(report.get("task", "")).startswith("openmic"):
        parts.append(f"OpenMIC per-instrument F1 {test['openmic_f1']:.3f}")
    if "single_label" in test:
        parts.append(f"accuracy {test['single_label']['accuracy']:.3f}")
    threshold = report["threshold"]
    rule = (
        "top-1" if threshold["chosen_on"] == "top1" else f"threshold {threshold['value']:.2f}, {threshold['chosen_on']}"
    )
    parts.append(f"LRAP {test['lrap']:.3f} ({rule})")
    print(", ".join(parts))


if __name__ == "__main__":
    from finetune.train import finetune_and_evaluate

    shortcuts = {"encoder": ("encoder.source", "exported bundle, pretraining work directory, or random:NAME")}
    cli.main(
        finetune_and_evaluate,
        announce,
        doc=__doc__,
        kind="finetune",
        examples=EXAMPLES,
        catalog=configs,
        shortcuts=shortcuts,
    )
