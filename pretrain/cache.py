"""python -m pretrain.cache --config=nsynth_mixup [--out=DIR] [--workers=N] [--config.data.root=...]

Decode every audio file the config's corpus reads (all splits, after its filters) once, at
the front-end's sample rate, into the pre-decoded 16-bit PCM cache of corpora/pcm_cache.py.
Without --out it goes where `data.pcm_cache="auto"` (the default) looks, so the next
`python -m pretrain --config=...` on the same corpus reads it without being told. Run it again
to finish an interrupted build or to bring a cache up to date: unchanged shards are kept.
"""

from __future__ import annotations

import json
import logging
import sys

from absl import app, flags
from ml_collections import config_flags

import configs
from overtone.cli import absolute, run_absl, wants_help
from overtone.errors import OvertoneError
from runtime import cli

_CONFIG = config_flags.DEFINE_config_file("config", None, "config name (configs/NAME.py) or path", lock_config=True)
_OUT = flags.DEFINE_string("out", None, "cache folder (default: where data.pcm_cache='auto' looks)")
_WORKERS = flags.DEFINE_integer("workers", 2, "decoding threads")
flags.mark_flag_as_required("config")


def build_cache(config, out: str | None, workers: int) -> dict:
    import encoders
    from corpora import get_dataset
    from corpora.pcm_cache import build, default_dir
    from overtone.audio import BadFileLog
    from pretrain.train import corpus_paths

    corpus = get_dataset(config.data.dataset)(config.data, bad_log=BadFileLog(config.data.max_bad_fraction))
    folder = out or default_dir(corpus.root)
    sample_rate = encoders.build_frontend(config.frontend).sample_rate
    report = build(corpus_paths(corpus), folder, sample_rate=sample_rate, workers=workers)
    return {"folder": str(folder), "sample_rate": sample_rate, **report}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    cli.setup_logging()
    cli.absolute_paths(_CONFIG.value)
    report = build_cache(_CONFIG.value, absolute(_OUT.value) if _OUT.value else None, _WORKERS.value)
    logging.info("pcm cache: %s", json.dumps(report))
    counts = f"{report['shards_built']} shard(s) built, {report['shards_kept']} kept, {report['unreadable']} unreadable"
    print(f"pcm cache {report['folder']}: {report['files']} files, {report['bytes'] / 1e6:.1f} MB, {counts}")


if __name__ == "__main__":
    if not wants_help(sys.argv):
        try:
            sys.argv = configs.resolve_flag(sys.argv)
        except OvertoneError as err:
            cli.flag_error(str(err))
    run_absl(main, __doc__, examples=["python -m pretrain.cache --config=nsynth_mixup --config.data.root=/data/nsynth"])
