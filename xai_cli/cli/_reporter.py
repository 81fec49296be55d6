"""The console's side of a run: the runner's reports as stderr lines and a progress bar."""

from __future__ import annotations

from contextlib import contextmanager

from xai_cli import console
from xai_cli.core.reporting import Reporter
from xai_cli.errors import words


class ConsoleReporter(Reporter):
    """Notes and warnings on stderr (options worded as flags), a bar or periodic lines for progress."""

    def note(self, text: str) -> None:
        console.info(words(text, flags=True))

    def warning(self, text: str) -> None:
        console.warn(words(text, flags=True))

    def step(self, text: str) -> None:
        console.step(text)

    @contextmanager
    def progress(self, total: int):
        with console.progress(total) as bar:
            yield bar.advance
