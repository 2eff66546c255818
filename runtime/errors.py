"""The errors a user can cause and fix (bad data, bad config, a diverging run).

Entry points report these as one line naming what and where; anything else is a bug and
keeps its traceback. `OVERTONE_TRACEBACK=1` shows the traceback for these too.
"""

from corpora.audio import AudioError, TooManyBadFilesError
from corpora.nsynth import NSynthFormatError
from runtime.checkpoint import CheckpointWriteError
from runtime.disk import DiskSpaceError
from runtime.loop import NonFiniteLossError

USER_ERRORS = (
    AudioError,
    TooManyBadFilesError,
    NSynthFormatError,
    NonFiniteLossError,
    CheckpointWriteError,
    DiskSpaceError,
    FileNotFoundError,
    KeyError,  # unknown registry names and options
    ValueError,  # invalid option values
)
