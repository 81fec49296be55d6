"""Cooperative stopping: the run asks, long loops check between chunks.

Methods evaluate thousands of perturbations or path points in chunks; each chunk calls
``check()``, which raises ``Cancelled`` once a stop was requested (SIGINT/SIGTERM in the
runner). The engine drops the batch in flight — its inputs are not done, not failed, and the
next run resumes them — so a stop takes one chunk's time (seconds on a CPU), not a whole batch.
Methods know nothing of signals; this is a flag.
"""

from __future__ import annotations

import threading

_requested = threading.Event()


class Cancelled(Exception):
    """A stop was requested; the work in flight is abandoned."""


def bind(event):
    """Use ``event`` as the flag (a ``multiprocessing`` event shared with engine processes, so one
    request stops them all); returns the flag it replaces, to bind back afterwards."""
    global _requested
    previous, _requested = _requested, event
    return previous


def request() -> None:
    _requested.set()


def reset() -> None:
    _requested.clear()


def requested() -> bool:
    return _requested.is_set()


def check() -> None:
    """Raise ``Cancelled`` if a stop was requested (call between chunks of work)."""
    if _requested.is_set():
        raise Cancelled
