"""The pipeline's helpers (decode workers, writer threads) run nicer than the thread that drives
the model, relative to the run's own niceness; the model's thread is left as it was."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xai_cli.core import priority
from xai_cli.core.priority import HELPER_STEP, lower_this_thread
from xai_cli.inputs.discover import discover
from xai_cli.inputs.loader import iter_batches
from xai_cli.sinks.files.writer import Writer

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own niceness is Linux's")


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _in_a_thread(fn) -> int:
    seen = []
    t = threading.Thread(target=lambda: (fn(), seen.append(_nice())))
    t.start()
    t.join()
    return seen[0]


@pytest.fixture(autouse=True)
def _lowering_is_allowed():
    """A sandbox may forbid setpriority: lowering then (by design) changes nothing."""
    probe = []
    t = threading.Thread(target=lambda: (priority._lower(threading.get_native_id(), 1), probe.append(_nice())))
    t.start()
    t.join()
    if probe[0] == _nice() and _nice() < 19:
        pytest.skip("this sandbox refuses setpriority")


def test_off_linux_a_thread_is_left_alone(monkeypatch):
    """Elsewhere the niceness is the whole process's: lowering a writer thread would lower the model's."""
    monkeypatch.setattr(sys, "platform", "darwin")
    assert _in_a_thread(lower_this_thread) == _nice()


def test_a_lowered_thread_is_nicer_and_its_caller_is_not():
    before = _nice()
    assert _in_a_thread(lower_this_thread) == min(19, before + HELPER_STEP)
    assert _nice() == before


def test_lowering_never_goes_past_19():
    assert _in_a_thread(lambda: [lower_this_thread(12) for _ in range(3)]) == 19


def test_the_writers_threads_are_nicer_than_the_run(tmp_path):
    seen: list[int] = []
    writer = Writer(tmp_path, threads=2)
    for i in range(4):
        writer.submit(lambda i=i: (seen.append(_nice()), {"input": str(i)})[1])
    writer.close()
    assert seen == [min(19, _nice() + HELPER_STEP)] * 4
    assert (tmp_path / "manifest.jsonl").read_text().count("\n") == 4


@dataclass
class _Seen:
    index: int
    nice: int


def _decode_noting_nice(index, file, data):
    return _Seen(index, os.getpriority(os.PRIO_PROCESS, 0))


def test_decode_workers_are_nicer_than_the_run(tmp_path: Path):
    for i in range(4):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / f"{i}.png")
    items = [it for b in iter_batches(discover([tmp_path]), _decode_noting_nice, 2, 1) for it in b.items]
    assert [it.nice for it in items] == [min(19, _nice() + HELPER_STEP)] * 4
    in_process = [it for b in iter_batches(discover([tmp_path]), _decode_noting_nice, 2, 0) for it in b.items]
    assert [it.nice for it in in_process] == [_nice()] * 4  # no workers: decoding is the run's own thread
