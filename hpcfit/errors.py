"""Errors that the command line reports as one ``hpcfit: error: …`` line with exit status 2,
and the warning category of hpcfit's own advice."""


class InputError(Exception):
    """Bad user input (configuration or data). The message names the key or file and what was
    expected; the command line prints it without a traceback and exits with status 2."""

    exit_code = 2


class ConfigError(InputError):
    """A configuration key has an unknown name, a wrong type or an out-of-range value."""


class DataError(InputError):
    """A data file is missing, unreadable, of an unknown layout, or fails validation."""


class RunDirError(InputError):
    """The run directory cannot be created or written (exit 2)."""


class AdviceWarning(UserWarning):
    """hpcfit's own warning about the data, the configuration or a checkpoint: a run prints it
    as one console line (other libraries' warnings go to the rank log only)."""
