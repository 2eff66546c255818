"""What `python -m pretrain`, `python -m finetune` and `python -m finetune.probe` share: flags
with one-line errors, `--help`, absolute paths, logging and the work directory. Which configs
exist and how they load is the `configs` catalogue's business; entry points pass it in
(`catalog`), so the runtime imports no config."""

from __future__ import annotations

import ast
import json
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

from overtone.cli import absolute, print_help_and_exit, report_user_error, wants_help
from overtone.errors import BadValueError, OvertoneError, UnknownNameError, did_you_mean

# Config leaves that name files or folders; made absolute at the command line (empty stays empty,
# and pcm_cache's "auto" and "off" are keywords, not paths).
PATH_KEYS = frozenset(
    {
        "root",
        "manifest",
        "extract_dir",
        "pcm_cache",
        "embedding_cache",
        "cache_dir",
        "vectors_path",
        "tfds_dir",
        "val_split",
    }
)
NOT_PATHS = frozenset({"", "auto", "off"})


def config_spec(argv: list[str]) -> str | None:
    for i, item in enumerate(argv):
        if item.startswith("--config="):
            return item.split("=", 1)[1]
        if item == "--config" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def config_name(argv: list[str]) -> str:
    spec = config_spec(argv)
    return Path(spec.split(":")[0]).stem if spec else "run"


def check_override_keys(config, argv: list[str]) -> None:
    """Refuse `--config.KEY=VALUE` for a KEY the config does not have, naming the closest one."""
    for arg in argv[1:]:
        if not arg.startswith("--config."):
            continue
        section, walked = config, []
        for part in arg[len("--config.") :].split("=", 1)[0].split("."):
            if not hasattr(section, "keys") or part not in section:
                keys = list(section.keys()) if hasattr(section, "keys") else []
                where = "config" + "".join(f".{w}" for w in walked)
                flag = arg.split("=", 1)[0]
                hint = did_you_mean(part, keys)
                raise UnknownNameError(f"{flag}: {where} has no key {part!r}{hint}; its keys: {sorted(keys)}")
            section, walked = section[part], [*walked, part]


# Numeric config leaves by name: the range each must lie in, checked when flags are parsed so that a
# zero batch or a negative fraction is one line before any work, not a traceback minutes later.
POSITIVE = frozenset(
    {
        "batch_size",
        "learning_rate",
        "log_every_steps",
        "keep_checkpoints",
        "early_stopping_patience",
        "epochs",
        "seeds",
        "sample_rate",
        "fft_length",
        "window_length",
        "hop_length",
        "num_bands",
        "segment_patches",
        "window_patches",
        "patch_hop_seconds",
        "temperature",
        "vocabulary_size",
        "clips",
        "recordings",
        "test_excerpts",
        "pitch_step",
        "projection_dim",
        "hidden",
        "layers",
        "bins_per_octave",
        "mixup_alpha",
        "alpha",
        "max_seconds",
        "train_fraction",
        "trees",
        "max_depth",
        "vocabulary_no_below",
    }
)
FRACTIONS = frozenset(
    {
        "max_bad_fraction",
        "valid_fraction",
        "test_fraction",
        "dropout",
        "keep_prob",
        "mixup_prob",
        "prob",
        "concat_prob",
        "label_smoothing",
        "train_fraction",
        "vocabulary_no_above",
    }
)
PROBABILITY_SECTIONS = frozenset({"augment"})  # every number in data.augment is a probability


def check_values(config, where: str = "config") -> None:
    """Refuse a non-finite number, a non-positive size or count, a negative step count, or a
    fraction or probability outside [0, 1], naming the key."""
    for key, value in config.items():
        name = f"{where}.{key}"
        if hasattr(value, "items"):
            check_values(value, name)
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            problem = "must be a finite number"
        elif key in POSITIVE and value <= 0:
            problem = "must be > 0"
        elif (key in FRACTIONS or where.rsplit(".", 1)[-1] in PROBABILITY_SECTIONS) and not 0 <= value <= 1:
            problem = "must lie in [0, 1]"
        elif value < 0 and key not in ("fmin", "pitch_min", "pitch_max"):
            problem = "must be ≥ 0"
        elif key == "seed" and value >= 2**32:  # numpy's and grain's seeds are 32-bit
            problem = "must be < 2**32"
        else:
            continue
        raise BadValueError(f"--{name}={value}: {problem}")
    train = config.get("train") if where == "config" else None
    if train is not None and train.get("num_steps", 0) == 0 and train.get("num_epochs", 1) == 0:
        raise BadValueError("--config.train.num_steps=0 and --config.train.num_epochs=0: nothing to train")


def absolute_paths(config) -> None:
    """Every path-valued leaf of `config` (PATH_KEYS, and encoder.source unless random:NAME) made
    absolute in place."""
    for key, value in config.items():
        if hasattr(value, "items"):
            absolute_paths(value)
        elif key in PATH_KEYS and isinstance(value, str) and value not in NOT_PATHS:
            config[key] = absolute(value)
    source = config.get("encoder", {}).get("source") if hasattr(config.get("encoder"), "get") else None
    if source and not source.startswith("random:"):
        config.encoder.source = absolute(source)


def build_config(catalog, spec: str, overrides=()):
    """The config `--config=SPEC --config.KEY=VALUE …` gives a command, built as the command line
    builds it: each KEY must exist (named in one line otherwise), a value is parsed as the key's
    current type (strings stay strings, as ml_collections does), then ranges are checked and
    paths made absolute. For stages run in process (the suite, the tests)."""
    config = catalog.load(catalog.resolve(spec))
    check_override_keys(config, ["", *(f"--config.{item.removeprefix('--config.')}" for item in overrides)])
    for item in overrides:
        key, eq, value = item.removeprefix("--config.").partition("=")
        if not eq:
            raise BadValueError(f"override {item!r} of --config={spec}: expected KEY=VALUE")
        *parents, leaf = key.split(".")
        section = config
        for parent in parents:
            section = section[parent]
        if isinstance(section[leaf], str):
            section[leaf] = value
            continue
        try:
            section[leaf] = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError) as err:
            raise BadValueError(f"override {item!r} of --config={spec}: {value!r} is not a Python literal") from err
    check_values(config)
    absolute_paths(config)
    return config


def setup_logging() -> None:
    logging.getLogger().setLevel(logging.INFO)
    for noisy in ("absl", "jax._src", "orbax", "grain"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# --fresh on the command line: move a run with another config aside instead of refusing it
START_FRESH = {"value": False}


def prepare_workdir(workdir: str | Path, config, identity: dict | None = None) -> Path:
    """The run's work directory, created with its config or checked against it (runtime.workdir:
    the fingerprint rule, one process per directory). `identity`: more result-determining facts
    recorded beside the config (e.g. the encoder's weight checksum)."""
    from runtime import processes
    from runtime.workdir import fingerprint, open_workdir

    resolved = json.loads(config.to_json_best_effort()) | (identity or {})
    processes.check_agree({"the config": fingerprint(resolved)})  # before anything is written
    if processes.several():  # every process checks (and refuses alike) before process 0 writes
        open_workdir(workdir, resolved, fresh=START_FRESH["value"], write=False)
        processes.barrier("work directory checked")
    if processes.primary():
        workdir = open_workdir(workdir, resolved, fresh=START_FRESH["value"])
    processes.barrier("work directory created")  # the others write into it later
    return Path(workdir)


def check_workdir_early(workdir: str | Path, config) -> None:
    """Refuse a work directory holding another run before any data is read (runtime.workdir);
    nothing to do with --fresh, which moves that run aside when the directory is prepared."""
    from runtime.workdir import check_early

    if not START_FRESH["value"]:
        check_early(workdir, json.loads(config.to_json_best_effort()))


def run(train: Callable, config, workdir: str | None) -> dict:
    """What `python -m pretrain` and `python -m finetune` do after flag parsing: set up logging
    and multi-host, train into the work directory (default runs/<config name>), and report a
    user's error (bad data, bad config, divergence) as one line with exit status 1."""
    from runtime import processes
    from runtime.checkpoint import CheckpointWriteError
    from runtime.errors import USER_ERRORS
    from runtime.performance import enable_compilation_cache, keep_freed_memory

    setup_logging()
    keep_freed_memory()
    enable_compilation_cache()
    try:
        processes.initialize()
        if not processes.several():
            processes.exit_on_sigterm()
        return train(config, absolute(workdir or f"runs/{config_name(sys.argv)}"))
    except processes.Preempted as stop:  # SIGTERM: checkpointed on every process; a rerun resumes
        logging.warning("%s", stop)
        sys.exit(0)
    except USER_ERRORS as err:
        if isinstance(err, CheckpointWriteError) and os.environ.get("OVERTONE_TRACEBACK") != "1":
            # orbax's background writer threads may still be failing (and printing); leave now
            # rather than wait on them at interpreter shutdown
            logging.error("%s: %s", type(err).__name__, err)
            logging.shutdown()
            sys.stderr.flush()
            os._exit(1)
        if processes.several():  # tell the others, leave without jax's shutdown barrier (minutes)
            processes.fail(f"{type(err).__name__}: {' '.join(str(err).split())}")
        report_user_error(err)
    except Exception as err:  # noqa: BLE001 - re-raised unless a collective failed with a peer gone
        if not processes.lost_peer(err):
            raise
        logging.error("%s", processes.lost_peer(err))
        logging.shutdown()
        os._exit(1)  # not jax's shutdown barrier, which would wait minutes for the dead process


def flag_error(message: str) -> None:
    """A refused flag: one line and exit status 1, as absl's own flag errors and every other
    refusal of the toolkit (a traceback, also status 1, means a bug)."""
    print(f"FATAL flag error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(1)


def main(
    train: Callable,
    announce: Callable[[dict], None],
    *,
    doc: str,
    kind: str,
    examples: list[str],
    catalog,
    shortcuts: dict[str, tuple[str, str]] | None = None,
) -> None:
    """The whole of an entry point: `--config` (name or path, `--config.KEY=VALUE` overrides) and
    `--workdir` flags, then `run(train, …)`, then `announce(summary)` (the entry point's result line).
    `catalog` is the `configs` package (resolve, load, listing); `kind` (pretrain | finetune |
    probe) picks the configs `--help` lists; `shortcuts`: flag name →
    (config field it sets, help), e.g. --encoder for encoder.source."""
    from absl import app, flags
    from ml_collections import config_flags

    shortcuts = shortcuts or {}
    if wants_help(sys.argv):
        _help(doc, kind, examples, shortcuts, catalog)
    try:
        sys.argv = catalog.resolve_flag(sys.argv)
        if config_spec(sys.argv):
            loaded = catalog.load(config_spec(sys.argv))
            runs_it = catalog.kind(loaded)
            if runs_it not in (None, kind):
                name = Path(config_spec(sys.argv).partition(":")[0]).stem
                flag_error(f"--config={name} is a {runs_it} config: run it with {catalog.ENTRY_POINTS[runs_it]}")
            check_override_keys(loaded, sys.argv)
    except OvertoneError as err:
        flag_error(str(err))

    config = config_flags.DEFINE_config_file("config", None, "config name (configs/NAME.py) or path", lock_config=True)
    workdir = flags.DEFINE_string("workdir", None, "work directory (default: runs/<config name>)")
    fresh = flags.DEFINE_bool("fresh", False, "move a run with another config in --workdir aside and start anew")
    extra = {name: (field, flags.DEFINE_string(name, None, text)) for name, (field, text) in shortcuts.items()}
    flags.mark_flag_as_required("config")

    started = []

    def entry(argv):
        started.append(True)
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        for name, (field, flag) in extra.items():
            if flag.value is not None:
                _set_shortcut(config.value, name, field, flag.value)
        try:
            check_values(config.value)
        except OvertoneError as err:
            flag_error(str(err))
        absolute_paths(config.value)
        START_FRESH["value"] = fresh.value
        summary = run(train, config.value, workdir.value)
        from runtime import processes

        if processes.primary():  # the job's results, said once
            announce(summary)

    try:
        app.run(entry)
    except (KeyError, AttributeError, TypeError, ValueError) as err:
        if started or os.environ.get("OVERTONE_TRACEBACK") == "1":
            raise  # raised by the run itself, past flag parsing: a bug, keep its traceback
        # ml_collections refuses an unknown --config.KEY or a value of the wrong type while absl
        # parses the flags; say which in one line, as absl does for its own flag errors
        detail = err.args[0] if err.args and isinstance(err.args[0], str) else str(err)
        flag_error(f"{type(err).__name__}: " + detail.replace("\\n", " ").replace("\\", "").replace("'", ""))


def _set_shortcut(config, name: str, field: str, value: str) -> None:
    from absl import app

    *parents, leaf = field.split(".")
    section = config
    for parent in parents:
        section = section[parent]
    if leaf not in section:
        raise app.UsageError(f"--{name} sets config.{field}, which this config does not have")
    current = section[leaf]
    try:
        section[leaf] = value if isinstance(current, str) else type(current)(value)
    except ValueError:
        flag_error(f"--{name}={value}: expected {type(current).__name__}")


def _help(doc: str, kind: str, examples: list[str], shortcuts: dict[str, tuple[str, str]], catalog) -> None:
    spec = config_spec(sys.argv)
    sections = {}
    if spec:  # --config=NAME --help: that config's own documentation too
        try:
            path = catalog.resolve(spec).partition(":")[0]
            text = ast.get_docstring(ast.parse(Path(path).read_text())) or ""
            sections[f"config {Path(path).stem}"] = text.splitlines()
        except OvertoneError as err:
            sections["config"] = [str(err)]
    flag_lines = [
        (
            "--config=NAME[:VARIANTS]",
            "a config below (or a path to one); variants as in its docstring, e.g. :encoder=compact",
        ),
        ("--config.KEY=VALUE", "override any key of the config, e.g. --config.train.num_steps=200"),
        ("--workdir=DIR", "work directory (default: runs/<config name>); rerun the command to resume"),
        ("--fresh", "a run with another config is in --workdir: move it aside (DIR.replaced-<time>), start anew"),
    ] + [(f"--{name}=VALUE", text) for name, (_, text) in shortcuts.items()]
    flag_lines.append(("--help", "this text; --config=NAME --help adds that config's documentation"))
    sections = {"configs": catalog.listing(kind), **sections, "examples": examples}
    print_help_and_exit(doc, flag_lines, sections)
