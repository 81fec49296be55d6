"""The files sink: explain's outputs under the output folder.

Per input, mirroring the input tree: ``<stem>.<method>.png`` per map, ``<stem>.<method>.npy``
with raw scores when asked, ``<stem>.json`` (the record, written last); for the run,
``manifest.jsonl`` (one line per input, in input order) and ``run.json``. Every file is
written atomically. Rendering and writing run in threads, so the device loop never waits on
PNG encoding; the queue is bounded, so memory stays flat.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from xai_cli.core.results import ItemResult, RunInfo, RunSummary
from xai_cli.sinks.base import Sink
from xai_cli.sinks.files import atomic
from xai_cli.sinks.files.layout import Layout
from xai_cli.sinks.files.records import write_result
from xai_cli.sinks.files.resume import ResumeCheck
from xai_cli.sinks.files.runinfo import write_run_json
from xai_cli.sinks.files.scale import RunScale
from xai_cli.sinks.files.writer import Writer


class FilesSink(Sink):
    """Writes each result's files and the run's manifest and run.json under ``out``.

    Args:
        out: The output folder.
        save_raw: Also write each raw map as ``.npy`` (float32).
        threads: Writer threads (None: half the cores, at least one).
    """

    def __init__(self, out: Path, *, save_raw: bool = False, threads: int | None = None) -> None:
        self.out = Path(out)
        self.save_raw = save_raw
        self.threads = threads or max(1, (os.cpu_count() or 2) // 2)
        self._run: RunInfo | None = None
        self._layout: Layout | None = None
        self._writer: Writer | None = None
        self._scale: RunScale | None = None
        self._held: list[ItemResult] = []  # results held back until the run's colour scale is fixed

    def open(self, run: RunInfo) -> None:
        atomic.remove_stale_temps(self.out)
        self._run = run
        self._layout = Layout(self.out, [f.rel for f in run.files])
        self._writer = Writer(self.out, self.threads)
        self._scale = RunScale() if run.config.scale == "run" else None
        for path in run.not_walked:  # first in the manifest: found, not taken as inputs, and why
            self._writer.submit(path.manifest_line)

    def resume_check(self, run: RunInfo) -> ResumeCheck:
        layout = self._layout or Layout(self.out, [f.rel for f in run.files])
        return ResumeCheck(self.out, tuple(layout.abs(layout.record(f.rel)) for f in run.files), run.config_key)

    def consume(self, result: ItemResult) -> None:
        if self._scale is not None and not self._scale.ready:
            self._scale.feed(result)
            self._held.append(result)
            if self._scale.ready:
                self._release()
            return
        if self._scale is not None:
            self._scale.apply(result)
        self._writer.submit(partial(write_result, result, self._run, self._layout, self.save_raw))

    def _release(self) -> None:
        held, self._held = self._held, []
        for result in held:
            self._writer.submit(partial(write_result, self._scale.apply(result), self._run, self._layout, self.save_raw))

    def close(self, summary: RunSummary) -> None:
        if self._writer is None:
            return
        try:
            if self._held:
                self._release()
            self._writer.close()
        finally:
            write_run_json(self.out, self._run, summary, self._scale.fix() if self._scale else None)
