"""Several devices on one machine: one engine process per device, fed from the one loader.

The run's loader decodes in the main process's workers as for one device; each loader batch
goes to the engine process with the least work in flight, and the results come back through
a reorder buffer, so the runner still sees one batch of results at a time, in input order,
and writes them as it always does. Each engine process loads the model once, on its device,
halves its own batches on running out of memory, and uses ``cores / processes`` CPU threads
(one each for ``cpu,cpu`` on two cores).

Stopping: engine processes ignore SIGINT/SIGTERM (the run decides) and die with the run
(``die_with_parent``); the run's cancellation flag is a multiprocessing event they share, so
a stop reaches the method loops of every device at their next chunk of work.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from xai_cli import cancel
from xai_cli.core.results import ItemResult
from xai_cli.errors import ExitCode, XaiError
from xai_cli.inputs.loader import Batch, die_with_parent

IN_FLIGHT = 2  # loader batches queued per engine process: one running, one waiting
POLL_S = 1.0  # how often a wait for results checks that the engine processes are alive


class EngineError(XaiError):
    """An engine process could not start, or every one of them died."""

    exit_code = ExitCode.USAGE


@dataclass
class _Slot:
    device: str
    process: object
    inbox: object
    in_flight: list[int] = field(default_factory=list)
    inputs: int = 0
    oom_splits: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    dead: bool = False


def explain_on_devices(session, loader: Iterator[Batch]) -> Iterator[tuple[Batch, list[ItemResult]]]:
    """``(batch, results of its decoded items)`` per loader batch, in order, explained on ``session.devices``.

    Timings, OOM splits and warnings are added to ``session.engine``; per-device counts go to
    ``session.per_device``.

    Raises:
        XaiError: An engine process failed to start (e.g. the model does not load on its device).
    """
    ctx = torch.multiprocessing.get_context("spawn")  # CUDA cannot be used in a forked child
    stop, results = ctx.Event(), ctx.Queue()
    devices = [str(d) for d in session.devices]
    n_cpu = sum(d.startswith("cpu") for d in devices)
    threads = max(1, (os.cpu_count() or 1) // max(1, n_cpu))
    slots = []
    previous = cancel.bind(stop)  # the runner's stop request now reaches every engine process
    try:
        for k, device in enumerate(devices):
            inbox = ctx.Queue()
            p = ctx.Process(target=_serve, args=(session.cfg, device, k, threads, inbox, results, stop, os.getpid()),
                            name=f"xai-engine-{k}", daemon=True)
            p.start()
            slots.append(_Slot(device, p, inbox))
        pool = _Pool(session, slots, results)
        pool.wait_ready()
        yield from pool.stream(loader)
    finally:
        stop.set()  # a stopped or failed run: engines drop their work at the next chunk
        for s in slots:
            if s.process.is_alive():
                s.inbox.put(None)
        for s in slots:
            s.process.join(timeout=10)
            if s.process.is_alive():
                s.process.kill()
        cancel.bind(previous)
        session.per_device = [{"device": s.device, "inputs": s.inputs, "oom_batch_splits": s.oom_splits,
                               "seconds": {k: round(v, 3) for k, v in s.seconds.items()}} for s in slots]


class _Pool:
    def __init__(self, session, slots: list[_Slot], results) -> None:
        self.session, self.slots, self.results = session, slots, results
        self.done: dict[int, list[ItemResult]] = {}
        self._batches: dict[int, Batch] = {}  # sent, not yet back

    def wait_ready(self) -> None:
        ready = 0
        while ready < len(self.slots):
            kind, k, payload = self._get()
            if kind != "ready":
                self._fail(k, payload)
            ready += 1

    def stream(self, loader: Iterator[Batch]) -> Iterator[tuple[Batch, list[ItemResult]]]:
        waiting: dict[int, Batch] = {}
        next_out = 0
        for seq, batch in enumerate(loader):
            waiting[seq] = batch
            if batch.items:
                self._send(seq, batch)
            else:
                self.done[seq] = []
            while next_out in self.done:  # the reorder buffer: hand on what is next in input order
                yield waiting.pop(next_out), self.done.pop(next_out)
                next_out += 1
        while waiting:
            while next_out not in self.done:
                self._receive()
            yield waiting.pop(next_out), self.done.pop(next_out)
            next_out += 1

    def _send(self, seq: int, batch: Batch) -> None:
        while True:
            alive = [s for s in self.slots if not s.dead]
            if not alive:
                raise EngineError("every engine process has died", "see the messages above; run on one device")
            slot = min(alive, key=lambda s: len(s.in_flight))
            if len(slot.in_flight) < IN_FLIGHT:
                break
            self._receive()
        files = self.session.files
        slot.inbox.put((seq, batch.items, {it.index: files[it.index] for it in batch.items}))
        slot.in_flight.append(seq)
        self._batches[seq] = batch

    def _receive(self) -> None:
        kind, k, payload = self._get()
        slot = self.slots[k]
        if kind == "error":
            self._fail(k, payload)
        seq, results, warnings, splits, seconds = payload
        slot.in_flight.remove(seq)
        self._batches.pop(seq, None)
        slot.inputs += len(results)
        slot.oom_splits += splits
        engine = self.session.engine
        engine.oom_splits += splits
        for name, s in seconds.items():
            engine.seconds[name] = engine.seconds.get(name, 0.0) + s - slot.seconds.get(name, 0.0)
        slot.seconds = seconds
        engine.warnings += warnings
        self.done[seq] = results

    def _get(self):
        while True:
            try:
                return self.results.get(timeout=POLL_S)
            except queue.Empty:
                self._check_alive()

    def _check_alive(self) -> None:
        for s in self.slots:
            if not s.dead and not s.process.is_alive():
                s.dead = True  # its batches in flight are failed inputs, not lost ones
                why = f"the engine process on {s.device} died (exit code {s.process.exitcode})"
                for seq in s.in_flight:
                    batch = self._batches.pop(seq)
                    self.done[seq] = [self.session.engine.failure(it.index, why, it.sha256) for it in batch.items]
                s.in_flight.clear()
        if all(s.dead for s in self.slots):
            raise EngineError("every engine process has died", "see the messages above; run on one device")

    def _fail(self, k: int, payload) -> None:
        kind, message, hint = payload
        error = kind(message, hint) if isinstance(kind, type) and issubclass(kind, XaiError) else \
            EngineError(f"the engine on {self.slots[k].device} failed: {message}", hint)
        raise error


def _serve(cfg, device: str, k: int, threads: int, inbox, outbox, stop, parent: int) -> None:
    """An engine process: load the model on ``device``, then explain batches until told to stop."""
    die_with_parent(parent)  # also ignores SIGINT/SIGTERM: the run decides when to stop
    torch.set_num_threads(threads)
    cancel.bind(stop)
    from xai_cli.runner import load_engine

    try:
        engine = load_engine(cfg, device)
    except XaiError as e:
        outbox.put(("error", k, (type(e), e.message, e.hint)))
        return
    except Exception as e:  # noqa: BLE001 - reported to the run, which raises it
        outbox.put(("error", k, (None, f"{type(e).__name__}: {e}", None)))
        return
    outbox.put(("ready", k, None))
    while (msg := inbox.get()) is not None:
        seq, items, files = msg
        engine.files = files  # results name their inputs by index
        before = engine.oom_splits
        try:
            results = engine.explain(items)
        except XaiError as e:  # a configuration problem every input would share: the run stops
            outbox.put(("error", k, (type(e), e.message, e.hint)))
            return
        outbox.put(("done", k, (seq, results, list(engine.warnings), engine.oom_splits - before, dict(engine.seconds))))
        engine.warnings.clear()
