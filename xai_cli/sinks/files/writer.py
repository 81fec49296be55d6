"""The writer: renders and writes each input's outputs in worker threads, so the GPU loop
never waits on PNG encoding, and appends manifest lines in input order.

PIL releases the GIL while it compresses, so threads give real parallelism for the PNG part.
The queue of pending items is bounded: memory stays flat however large the run.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from xai_cli.core.priority import lower_this_thread
from xai_cli.sinks.files import atomic

MANIFEST = "manifest.jsonl"


class Writer:
    """Runs ``job()`` callables in threads; each returns a manifest line (dict).

    Args:
        root: The output folder.
        threads: Worker threads rendering and writing.
        max_pending: Submissions beyond this wait for the oldest to finish.
        manifest: The manifest's name (a shard writes its own part).
    """

    def __init__(self, root: Path, threads: int, max_pending: int = 256, manifest: str = MANIFEST) -> None:
        self.root = root
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="xai-writer",
                                        initializer=lower_this_thread)  # the model's thread goes first
        self._pending: deque[Future] = deque()
        self._max_pending = max_pending
        root.mkdir(parents=True, exist_ok=True)
        # The manifest describes this run: one line per input, written as each input completes.
        self._manifest = atomic.open_manifest(root, manifest)

    def submit(self, job: Callable[[], dict]) -> None:
        self._pending.append(self._pool.submit(job))
        while len(self._pending) > self._max_pending:
            self._flush_one()
        while self._pending and self._pending[0].done():
            self._flush_one()

    def _flush_one(self) -> None:
        self._write_line(self._pending.popleft().result())

    def _write_line(self, line: dict) -> None:
        self._manifest.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._manifest.flush()  # a killed run keeps every line written so far

    def drain(self) -> None:
        """Wait for every submitted job and write its line."""
        while self._pending:
            self._flush_one()

    def close(self) -> None:
        """Wait for every job, write their lines, and fsync the manifest."""
        try:
            self.drain()
        finally:
            self._pool.shutdown(wait=True)
            self._manifest.flush()
            os.fsync(self._manifest.fileno())
            self._manifest.close()
