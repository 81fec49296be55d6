"""A comparison's files under ``--out``, all written atomically and only inside it.

* ``<stem>.compare.png`` per input (the input tree mirrored, as ``xai explain`` does), drawn
  in writer threads so the models do not wait on PNG encoding;
* ``manifest.jsonl``: one line per input, failures included, in input order, written as the
  inputs finish (``xai report OUT`` reads it: input, status, reason, prediction, outputs);
* at the end: ``compare.json``, ``junit.xml``, ``summary.md``.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from xai_cli.audit.junit import junit_xml
from xai_cli.compare.report import CompareReport
from xai_cli.compare.summary import summary_markdown
from xai_cli.sinks.files import atomic
from xai_cli.sinks.files.layout import Layout

PICTURE_TAG = "compare"


class CompareWriter:
    """Streams pictures and manifest lines as inputs finish; ``close`` writes the run's documents."""

    def __init__(self, out: Path, rels: list, threads: int | None = None, queue: int = 64) -> None:
        self.root = out
        self.layout = Layout(out, list(rels))
        atomic.remove_stale_temps(out)
        self.manifest = atomic.open_manifest(out)
        self.pool = ThreadPoolExecutor(threads or max(1, (os.cpu_count() or 2) // 2), thread_name_prefix="xai-compare")
        self.pending: deque[tuple[dict, Future | None]] = deque()
        self.queue = queue
        self.errors: list[str] = []

    def add(self, row: dict, draw: Callable | None) -> None:
        """Queue one input's row; ``draw()`` returns its picture (None: no picture, e.g. failed)."""
        future = None
        if draw is not None:
            path = self.layout.picture(self._rel(row), PICTURE_TAG, None)
            future = self.pool.submit(self._draw, draw, path)
        self.pending.append((row, future))
        self._flush(wait=len(self.pending) > self.queue)

    def _rel(self, row: dict):
        from pathlib import PurePosixPath

        return PurePosixPath(row["input"])

    def _draw(self, draw: Callable, path) -> str:
        from xai_cli.render.png import encode_png

        atomic.write_bytes(self.layout.abs(path), encode_png(draw()), self.root)
        return str(path)

    def _flush(self, wait: bool = False, all_: bool = False) -> None:
        while self.pending:
            row, future = self.pending[0]
            if future is not None and not future.done() and not (wait or all_):
                return
            self.pending.popleft()
            wait = False  # one wait frees one slot
            if future is not None:
                try:
                    row["picture"] = future.result()
                except Exception as e:  # a picture that cannot be drawn must not lose the input's numbers
                    row["picture"] = None
                    self.errors.append(f"{row['input']}: picture not drawn ({type(e).__name__}: {str(e)[:120]})")
            line = {"input": row["input"], "status": row["status"]}
            if row.get("reason"):
                line["reason"] = row["reason"]
            if row.get("a"):
                line["prediction"] = row["a"]
                line["prediction_b"] = row["b"]
            line["outputs"] = [row["picture"]] if row.get("picture") else []
            self.manifest.write(json.dumps(line, ensure_ascii=False) + "\n")
            self.manifest.flush()

    def close(self, report: CompareReport | None) -> None:
        """Finish the pictures and the manifest; with a report, write compare.json, junit.xml, summary.md."""
        try:
            self._flush(all_=True)
        finally:
            self.pool.shutdown(wait=True)
            self.manifest.close()
        if report is None:
            return
        report.warnings += self.errors
        atomic.write_json(self.root / "compare.json", report.to_dict(), self.root)
        atomic.write_bytes(self.root / "junit.xml", junit_xml(report.checks, suite="xai compare").encode(), self.root)
        atomic.write_bytes(self.root / "summary.md", summary_markdown(report).encode(), self.root)
