"""The errors a user can cause and fix (bad data, bad config, a diverging run).

Entry points report these as one line naming what and where; anything else is a bug and
keeps its traceback. `OVERTONE_TRACEBACK=1` shows the traceback for these too.
"""

from overtone.errors import OvertoneError

USER_ERRORS = (
    OvertoneError,  # the root of every error type the toolkit raises for a user's input
    FileNotFoundError,
)
