"""The pipeline's helpers (decode workers, writer threads) yield the CPU to the thread that
drives the model: when every core is busy, the scheduler runs the model's thread first.

Measured on the 2-core box (resnet18 224², Grad-CAM, 1 torch thread, 256 inputs,
bench/pipeline_bench.py, 4 rounds each, interleaved): end to end ÷ compute-only 0.93–0.95 with
the helpers 5 steps nicer, 0.91–0.94 without. Only the helpers are lowered, relative to the
run's own priority (a run started with ``nice -n 10`` keeps its helpers 5 below that), and
never below 19. Best effort: where the platform refuses, nothing changes.
"""

from __future__ import annotations

import os
import sys
import threading

HELPER_STEP = 5  # niceness added to a helper


def lower_this_thread(step: int = HELPER_STEP) -> None:
    """Make the calling thread ``step`` nicer, on Linux, where a thread has a niceness of its own.
    Elsewhere nothing changes: there the niceness is the process's, the model's thread included."""
    if sys.platform.startswith("linux"):
        _lower(threading.get_native_id(), step)


def lower_this_process(step: int = HELPER_STEP) -> None:
    """Make a helper process ``step`` nicer (call it first thing in the process: on Linux it
    lowers the calling thread, which threads started later inherit)."""
    _lower(0, step)


def _lower(who: int, step: int) -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, who, min(19, os.getpriority(os.PRIO_PROCESS, who) + step))
    except (AttributeError, OSError):  # no setpriority (Windows), or a sandbox that forbids it
        pass
