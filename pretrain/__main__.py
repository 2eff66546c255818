"""python -m pretrain --config=nsynth_mixup [--workdir=DIR] [--config.KEY=VALUE ...]

The config is a name under configs/ or a path; the work directory defaults to
runs/<config name>. Run the same command again to resume from the last checkpoint.
"""

import logging
import os
import sys

from absl import app, flags
from ml_collections import config_flags

from runtime import cli
from runtime.mesh import initialize_distributed

_CONFIG = config_flags.DEFINE_config_file("config", None, "config name (configs/NAME.py) or path", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "work directory (default: runs/<config name>)")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    cli.setup_logging()
    initialize_distributed()
    from pretrain.train import train_and_evaluate
    from runtime.errors import USER_ERRORS

    workdir = _WORKDIR.value or f"runs/{cli.config_name(sys.argv)}"
    try:
        summary = train_and_evaluate(_CONFIG.value, workdir)
    except USER_ERRORS as err:
        if os.environ.get("OVERTONE_TRACEBACK") == "1":
            raise
        logging.error("%s: %s", type(err).__name__, err)
        sys.exit(1)
    print(
        f"done: step {summary['final_step']}, best validation {summary['best_validation']}, "
        f"test {summary.get('test')}; outputs in {workdir}"
    )


if __name__ == "__main__":
    flags.mark_flag_as_required("config")
    sys.argv = cli.resolve_config_flag(sys.argv)
    app.run(main)
