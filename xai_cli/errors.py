"""The exception family, and the one table that maps each to an exit code.

Code deep inside raises these; only the CLI layer turns them into a message and an exit
status (never ``sys.exit`` below ``xai_cli.cli``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit statuses, documented in the README and ``xai explain --help``."""

    OK = 0  # every input explained
    INPUTS_FAILED = 1  # the run finished, some inputs failed (each recorded in the manifest)
    USAGE = 2  # bad option, config file or input path: nothing was run
    MODEL_LOAD = 3  # the model or its weights could not be loaded
    INTERRUPTED = 130  # SIGINT/SIGTERM: the batch in flight was finished, the manifest flushed


class XaiError(Exception):
    """Base of every error the CLI reports as one line plus advice.

    Args:
        message: What went wrong, one line.
        hint: What to do about it, one line (optional).
    """

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(XaiError):
    """A bad option, config key, method name or input path."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """A config file that cannot be read or has unknown keys."""


class ModelLoadError(XaiError):
    """The model, its weights or its labels could not be loaded."""

    exit_code = ExitCode.MODEL_LOAD


class InputError(XaiError):
    """One input could not be decoded or explained; the run goes on without it."""

    exit_code = ExitCode.INPUTS_FAILED


class MethodError(XaiError):
    """A method cannot run on this model or input (e.g. no spatial layer for Grad-CAM)."""

    exit_code = ExitCode.USAGE


class Interrupted(XaiError):
    """The run was stopped by SIGINT/SIGTERM after flushing what was done."""

    exit_code = ExitCode.INTERRUPTED


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str | None:
    """Return a hint naming the closest matches of ``name`` among ``choices``, if any."""
    matches = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)
    if not matches:
        return None
    return "did you mean " + ", ".join(repr(m) for m in matches) + "?"
