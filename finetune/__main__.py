"""python -m finetune --config=NAME [--encoder=RUN|random:NAME] [--workdir=DIR] [--config.KEY=VALUE ...]

NAME is a config under configs/ (openmic_attention, openmic_attention_encoder, irmas_attention,
irmas_finetune) or a path; the work directory defaults to runs/<config name>. --encoder is a
pretraining work directory (its best checkpoint) or random:vggish / random:compact. Run the
same command again to resume from the last checkpoint.
"""

from runtime import cli


def announce(summary: dict) -> None:
    report = summary["report"]
    test = report["test"]
    print(
        f"done: step {summary['final_step']}; test F1 micro {test['f1_micro']:.3f}, macro {test['f1_macro']:.3f}, "
        f"OpenMIC per-instrument F1 {test['openmic_f1']:.3f}, LRAP {test['lrap']:.3f} "
        f"(threshold {report['threshold']['value']:.2f}, {report['threshold']['chosen_on']})"
    )


if __name__ == "__main__":
    from finetune.train import finetune_and_evaluate

    cli.main(finetune_and_evaluate, announce,
             shortcuts={"encoder": ("encoder.source", "pretraining work directory, or random:NAME")})  # fmt: skip
