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
from datetime import datetime

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

_stderr = Console(stderr=True, highlight=False, soft_wrap=True)
_state = {"quiet": False, "verbose": False}
_current: list = []  # the progress reporter in use, for ``step``


def _stamp(message: str) -> str:
    """A log line (stderr not a terminal: cron, CI, a file) starts with its local time, ISO 8601."""
    if _stderr.is_terminal:
        return message
    return f"{datetime.now().astimezone().isoformat(timespec='seconds')} {message}"


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
        _stderr.print(_stamp(message), markup=False)


def debug(message: str) -> None:
    """A line shown only with ``--verbose``."""
    if _state["verbose"]:
        _stderr.print(_stamp(message), markup=False, style="dim")


def warn(message: str) -> None:
    """A warning: always shown, even with ``--quiet``."""
    _stderr.print(_stamp(f"warning: {message}"), markup=False, style="yellow")


def error(message: str) -> None:
    """An error line: always shown."""
    _stderr.print(_stamp(f"error: {message}"), markup=False, style="bold red")


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
        self._line(force=self.done == self.total)

    def step(self, text: str) -> None:
        """Work within a batch (a method finished on it): a line when one is due."""
        self._line(text)

    def _line(self, within: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if now - self.last >= self.every or force:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            info(f"{self.label}: {self.done}/{self.total} inputs ({rate:.1f}/s)" + (f"; {within}" if within else ""))


class _RichProgress:
    def __init__(self, progress: Progress, task: int, label: str) -> None:
        self._progress, self._task, self._label = progress, task, label

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)

    def step(self, text: str) -> None:
        self._progress.update(self._task, description=f"{self._label} ({text})")


class _NoProgress:
    def advance(self, n: int = 1) -> None:
        pass

    def step(self, text: str) -> None:
        pass


def step(text: str) -> None:
    """Tell the progress in use about work within a batch (nothing when none is shown)."""
    if _current:
        _current[-1].step(text)


@contextmanager
def progress(total: int, label: str = "explaining") -> Iterator[_PlainProgress | _RichProgress | _NoProgress]:
    """A progress reporter: a bar on a terminal, plain periodic lines otherwise."""
    if _state["quiet"]:
        shown = _NoProgress()
    elif _stderr.is_terminal:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=_stderr, transient=False) as bar:
            shown = _RichProgress(bar, bar.add_task(label, total=total), label)
            _current.append(shown)
            try:
                yield shown
            finally:
                _current.pop()
        return
    else:
        shown = _PlainProgress(total, label)
    _current.append(shown)
    try:
        yield shown
    finally:
        _current.pop()
