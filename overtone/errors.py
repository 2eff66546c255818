"""The root of the errors a user can cause and fix, and the did-you-mean every name error uses.

Entry points print an `OvertoneError` as one line; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class OvertoneError(Exception):
    """A problem with the user's input (data, config, flags, paths) that the message explains."""

    def __str__(self) -> str:  # KeyError subclasses would otherwise print their message quoted
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class BadValueError(OvertoneError, ValueError):
    """A value outside what the toolkit accepts: a config setting, an option, a field of a file."""


class UnknownNameError(OvertoneError, KeyError):
    """A name that is not in its registry (an encoder, an objective, a config...)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_name(kind: str, name: str, choices: Iterable[str], *, where: str = "") -> UnknownNameError:
    """The one message for a name missing from a registry: what, the closest valid name, all of them."""
    choices = sorted(choices)
    place = f"{where}: " if where else ""
    return UnknownNameError(f"{place}unknown {kind} {name!r}{did_you_mean(name, choices)}; registered: {choices}")
