"""python -m pretrain --config=nsynth_mixup [--workdir=DIR] [--config.KEY=VALUE ...]

The config is a name under configs/ or a path; the work directory defaults to
runs/<config name>. Run the same command again to resume from the last checkpoint.
"""

from runtime import cli


def announce(summary: dict) -> None:
    print(
        f"done: step {summary['final_step']}, best validation {summary['best_validation']}, test {summary.get('test')}"
    )


if __name__ == "__main__":
    from pretrain.train import train_and_evaluate

    cli.main(train_and_evaluate, announce)
