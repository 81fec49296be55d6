"""The one output sink.

Results (paths, ``--format json``) go to stdout; progress, logs and warnings go to stderr
through one rich Console. Progress bars only on a terminal: a cron or CI log gets plain
periodic lines instead.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

_stderr = Console(stderr=True, highlight=False, soft_wrap=True)
_state = {"quiet": False, "verbose": False}


def configure(*, quiet: bool = False, verbose: bool = False) -> None:
    """Set the verbosity for the rest of the process (called once by the CLI)."""
    _state["quiet"] = quiet
    _state["verbose"] = verbose


def stderr() -> Console:
    """The shared stderr console."""
    return _stderr


def info(message: str) -> None:
    """A progress or status line (hidden by ``--quiet``)."""
    if not _state["quiet"]:
        _stderr.print(message, markup=False)


def debug(message: str) -> None:
    """A line shown only with ``--verbose``."""
    if _state["verbose"]:
        _stderr.print(message, markup=False, style="dim")


def warn(message: str) -> None:
    """A warning: always shown, even with ``--quiet``."""
    _stderr.print(f"warning: {message}", markup=False, style="yellow")


def error(message: str) -> None:
    """An error line: always shown."""
    _stderr.print(f"error: {message}", markup=False, style="bold red")


def result(text: str) -> None:
    """A result for stdout (paths, JSON). Never decorated, never wrapped."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


class _PlainProgress:
    """Periodic one-line progress for logs: at most one line per ``every`` seconds."""

    def __init__(self, total: int, label: str, every: float = 10.0) -> None:
        self.total, self.label, self.every = total, label, every
        self.done = 0
        self.start = self.last = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            info(f"{self.label}: {self.done}/{self.total} inputs ({rate:.1f}/s)")


class _RichProgress:
    def __init__(self, progress: Progress, task: int) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)


class _NoProgress:
    def advance(self, n: int = 1) -> None:
        pass


@contextmanager
def progress(total: int, label: str = "explaining") -> Iterator[_PlainProgress | _RichProgress | _NoProgress]:
    """A progress reporter: a bar on a terminal, plain periodic lines otherwise."""
    if _state["quiet"]:
        yield _NoProgress()
    elif _stderr.is_terminal:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=_stderr, transient=False) as bar:
            yield _RichProgress(bar, bar.add_task(label, total=total))
    else:
        yield _PlainProgress(total, label)
