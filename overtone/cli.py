"""What every command-line edge does: absolute paths, `--help` that exits 0, and one line for a
user's error.

Paths a user types are made absolute here, once: orbax and other libraries below refuse or
misread relative paths, and a run's records should name files that can be found again from
any folder.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from overtone.errors import OvertoneError

HELP_FLAGS = ("-h", "--help", "-help", "--helpshort", "--helpfull")


def absolute(path: str | os.PathLike) -> str:
    """`path` with `~` expanded, made absolute against the current folder (not resolved: links stay)."""
    return str(Path(path).expanduser().absolute())


def wants_help(argv: list[str]) -> bool:
    return any(arg in HELP_FLAGS for arg in argv[1:])


def print_help_and_exit(doc: str, flag_lines: list[tuple[str, str]], sections: dict[str, list[str]]) -> None:
    """The entry point's docstring, its flags one per line, then named sections; exit 0."""
    width = max((len(name) for name, _ in flag_lines), default=0) + 2
    text = [doc.strip(), "", "flags:"] + [f"  {name:<{width}}{what}" for name, what in flag_lines]
    for title, lines in sections.items():
        text += ["", f"{title}:", *[f"  {line}" for line in lines]]
    print("\n".join(text))
    sys.exit(0)


def absl_flag_lines() -> list[tuple[str, str]]:
    """(--name=<default>, help) for the flags the running `python -m` module defined."""
    from absl import flags

    main = sys.modules["__main__"]
    key = getattr(main, "__file__", None) or sys.argv[0]
    defined = flags.FLAGS.flags_by_module_dict().get(key, []) or flags.FLAGS.flags_by_module_dict().get("__main__", [])
    lines = []
    for flag in defined:
        default = "" if flag.default in (None, "") else f" (default: {flag.default})"
        lines.append((f"--{flag.name}", f"{flag.help}{default}"))
    return lines


def report_user_error(err: BaseException) -> None:
    """Log a user's error as `Type: message` on one line and exit 1 (a traceback with
    OVERTONE_TRACEBACK=1)."""
    if os.environ.get("OVERTONE_TRACEBACK") == "1":
        raise err
    message = " ".join(str(err).split("\n")[0].split()) or repr(err)
    logging.error("%s: %s", type(err).__name__, message)
    sys.stderr.flush()
    sys.exit(1)


def run_absl(main: Callable[[list[str]], None], doc: str, *, examples: list[str] = ()) -> None:
    """`absl.app.run(main)` for a tool with its own flags: `--help` lists them and exits 0;
    an OvertoneError (or a missing file) is one line and exit status 1."""
    from absl import app

    if wants_help(sys.argv):
        print_help_and_exit(doc, absl_flag_lines(), {"example": list(examples)} if examples else {})

    def guarded(argv):
        try:
            main(argv)
        except (
            OvertoneError,
            FileNotFoundError,
            FileExistsError,
            NotADirectoryError,
            IsADirectoryError,
            PermissionError,
        ) as err:
            report_user_error(err)

    app.run(guarded)
