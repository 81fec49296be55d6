"""The sink interface."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from xai_cli.core.results import ItemResult, RunInfo, RunSummary
    from xai_cli.inputs.loader import DoneCheck


class Sink:
    """Consumes the results of one run. Every method has a do-nothing default.

    The runner calls ``open`` once before the first result, ``consume`` once per input in
    input order, and ``close`` once at the end (also after an interruption, with
    ``summary.stopped`` set). A sink must not keep every result: runs can be millions long.
    """

    #: The folder this sink writes into, if any: the runner locks it for the run.
    out: Path | None = None

    def open(self, run: RunInfo) -> None:
        """The run is about to start."""

    def resume_check(self, run: RunInfo) -> DoneCheck | None:
        """A picklable ``done(index, sha256) -> outputs | None`` if this sink can tell which inputs an
        earlier run finished (they are then not explained again), else None."""
        return None

    def consume(self, result: ItemResult) -> None:
        """One input's result."""

    def close(self, summary: RunSummary) -> None:
        """The run is over; ``summary`` has its counts and timings."""
