"""The files sink: explain's outputs under the output folder.

Per input, mirroring the input tree: ``<stem>.<method>.png`` per map, ``<stem>.<method>.npy``
with raw scores when asked, ``<stem>.json`` (the record, written last); for the run,
``manifest.jsonl`` (one line per input, in input order) and ``run.json``; a shard writes its
parts of those two instead, and the last shard to finish merges them (merge.py). Every file
is written atomically. Rendering and writing run in threads, so the device loop never waits on
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
from xai_cli.sinks.files.merge import manifest_name, merge, run_name
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
        self.merged = None  # a shard that merged the run: merge.Merged

    def open(self, run: RunInfo) -> None:
        shard = run.shard
        if shard is None:
            atomic.remove_stale_temps(self.out)  # shards share the folder: the merge does it once all are done
        else:
            atomic.remove(self.out / run_name(shard), self.out)  # no part on disk while this shard runs
        self._run = run
        self._layout = Layout(self.out, [f.rel for f in run.files])
        self._writer = Writer(self.out, self.threads, manifest=manifest_name(shard))
        self._scale = RunScale() if run.config.scale == "run" else None
        if shard is None or shard.index == 0:
            for path in run.not_walked:  # first in the manifest: found, not taken as inputs, and why
                self._writer.submit(self._line(-1, path.manifest_line))

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
        self._submit(result)

    def _submit(self, result: ItemResult) -> None:
        self._writer.submit(self._line(result.index, partial(write_result, result, self._run, self._layout,
                                                             self.save_raw)))

    def _line(self, index: int, job):
        # A shard's manifest lines carry the input's index, so the merge can put them in input order.
        return job if self._run.shard is None else partial(_indexed, index, job)

    def _release(self) -> None:
        held, self._held = self._held, []
        for result in held:
            self._submit(self._scale.apply(result))

    def close(self, summary: RunSummary) -> None:
        if self._writer is None:
            return
        try:
            if self._held:
                self._release()
            self._writer.close()
        finally:
            write_run_json(self.out, self._run, summary, self._scale.fix() if self._scale else None,
                           run_name(self._run.shard))
        if self._run.shard is not None and not summary.stopped:
            self.merged = merge(self.out, partial_ok=True)  # the last shard to finish writes the whole run's files


def _indexed(index: int, job) -> dict:
    return {**job(), "index": index}
