"""python -m finetune --config=openmic_attention [--workdir=DIR] [--config.KEY=VALUE ...]

The config is a name under configs/ or a path; the work directory defaults to
runs/<config name>. Run the same command again to resume from the last checkpoint.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from runtime import cli

_CONFIG = config_flags.DEFINE_config_file("config", None, "config name (configs/NAME.py) or path", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "work directory (default: runs/<config name>)")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from finetune.train import finetune_and_evaluate

    summary = cli.run(finetune_and_evaluate, _CONFIG.value, _WORKDIR.value)
    test = summary["report"]["test"]
    print(f"done: step {summary['final_step']}; test F1 micro {test['f1_micro']:.3f}, macro {test['f1_macro']:.3f}, "
          f"OpenMIC per-instrument F1 {test['openmic_f1']:.3f}, LRAP {test['lrap']:.3f}")  # fmt: skip


if __name__ == "__main__":
    flags.mark_flag_as_required("config")
    sys.argv = cli.resolve_config_flag(sys.argv)
    app.run(main)
