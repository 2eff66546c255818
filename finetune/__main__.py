"""python -m finetune --config=openmic_attention [--workdir=DIR] [--config.KEY=VALUE ...]

The config is a name under configs/ or a path; the work directory defaults to
runs/<config name>. Run the same command again to resume from the last checkpoint.
"""

from runtime import cli


def announce(summary: dict) -> None:
    test = summary["report"]["test"]
    print(
        f"done: step {summary['final_step']}; test F1 micro {test['f1_micro']:.3f}, macro {test['f1_macro']:.3f}, "
        f"OpenMIC per-instrument F1 {test['openmic_f1']:.3f}, LRAP {test['lrap']:.3f}"
    )


if __name__ == "__main__":
    from finetune.train import finetune_and_evaluate

    cli.main(finetune_and_evaluate, announce)
