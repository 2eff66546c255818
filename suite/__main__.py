"""python -m suite --config=objectives_table [--workdir=DIR] [--config.KEY=VALUE ...]

Pretrains every objective the config lists (reusing finished runs, resuming stopped ones),
probes each exported encoder and the baselines on every task with several seeds, and writes
the table (WORKDIR/table.md, table.json, table.png). Run it again to finish an interrupted
suite: every finished pretraining run is reused, the probes run again from the embedding
cache (seconds).
"""

from runtime import cli

EXAMPLES = [
    "python -m suite --config=objectives_table --workdir=runs/objectives",
    "python -m suite --config=objectives_table:encoder=vggish --config.probe.data.irmas.root=/data/IRMAS",
]


def announce(summary: dict) -> None:
    print(summary["table"], end="")
    print(f"written: {summary['workdir']}/table.md, table.json, table.png")


if __name__ == "__main__":
    import configs
    from suite import run_suite

    cli.main(run_suite, announce, doc=__doc__, kind="suite", examples=EXAMPLES, catalog=configs)
