"""How a run tells a person what happens, without printing: the runner calls a ``Reporter``.

The CLI passes one that writes to the console (wording options as flags); the Python API's
default stays silent, and every warning also lands in ``RunSummary.warnings`` and run.json.
Texts may hold ``{opt:NAME}`` placeholders (see ``xai_cli.errors.words``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Reporter:
    """Silent by default; subclass and override what to show."""

    def note(self, text: str) -> None:
        """A status line (what is about to run, a method left out)."""

    def warning(self, text: str) -> None:
        """Something a person should know about the results."""

    def step(self, text: str) -> None:
        """Work done within a batch (a method finished on it), between two ``advance`` calls."""

    @contextmanager
    def progress(self, total: int) -> Iterator[Callable[[int], None]]:
        """Yields ``advance(n)``, called as inputs finish."""
        yield lambda n: None
