"""The exception family, and the one table that maps each to an exit code.

Code deep inside raises these; only the CLI layer turns them into a message and an exit
status (never ``sys.exit`` below ``xai_cli.cli``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from enum import IntEnum

_OPTION = re.compile(r"\{opt:([a-z_]+)\}")


def words(text: str, *, flags: bool = False) -> str:
    """Render the option placeholders in a message or hint.

    Code below the CLI never names a flag: it writes ``{opt:top_k}``, which the CLI shows as
    ``--top-k`` and a Python caller sees as ``top_k`` (the ``RunConfig`` field).
    """
    return _OPTION.sub(lambda m: "--" + m.group(1).replace("_", "-") if flags else m.group(1), text)


class ExitCode(IntEnum):
    """Process exit statuses, documented in the README and ``xai explain --help``."""

    OK = 0  # every input explained
    INPUTS_FAILED = 1  # the run finished, some inputs failed (each recorded in the manifest)
    USAGE = 2  # bad option, config file or input path: nothing was run
    MODEL_LOAD = 3  # the model or its weights could not be loaded
    GATE_FAILED = 4  # audit/compare: a check of severity "fail" failed
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

    def render(self, *, flags: bool = False) -> str:
        """One line: the message, and the hint in brackets; option placeholders rendered (see ``words``)."""
        text = f"{self.message} ({self.hint})" if self.hint else self.message
        return words(text, flags=flags)

    def __str__(self) -> str:
        return self.render()


class UsageError(XaiError):
    """A bad option, config key, method name or input path."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """A config file that cannot be read or has unknown keys."""


class ModelLoadError(XaiError):
    """The model, its weights or its labels could not be loaded."""

    exit_code = ExitCode.MODEL_LOAD


class MethodError(XaiError):
    """A method cannot run on this model or input (e.g. no spatial layer for Grad-CAM)."""

    exit_code = ExitCode.USAGE


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str | None:
    """Return a hint naming the closest matches of ``name`` among ``choices``, if any."""
    matches = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)
    if not matches:
        return None
    return "did you mean " + ", ".join(repr(m) for m in matches) + "?"
