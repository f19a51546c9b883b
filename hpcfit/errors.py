"""Errors that the command line reports as one ``hpcfit: error: …`` line with exit status 2,
the one-line description of a configuration error, and the warning category of hpcfit's own
advice."""


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


def describe_omegaconf_error(exc: BaseException) -> str:
    """One line naming the key from an OmegaConf/Hydra composition error."""
    missing = getattr(exc, "missing_cfg_file", None)  # hydra.errors.MissingConfigException
    if missing and "/" in missing:
        group, option = missing.rsplit("/", 1)
        known = sorted(o for o in getattr(exc, "options", None) or [] if not o.endswith("_schema"))
        return f"{group}: unknown option '{option}'; expected one of {known}"
    cause = exc
    while cause.__cause__ is not None and not hasattr(cause, "full_key"):
        cause = cause.__cause__
    key = getattr(cause, "full_key", None)
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    if "Missing mandatory value" in first and key:
        return f"{key}: missing mandatory value; set {key}=..."
    return f"{key}: {first}" if key else first
