"""Batches of decoded inputs from DataLoader workers.

Bad files travel as ``Failure`` records and finished ones (resume) as ``Skipped``: the
workers read and hash each file once, so neither costs the main process anything.

Workers die with the process that started them (``die_with_parent``): after a ``kill -9`` of
a run, none is left holding files open or blocked on a full queue.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from xai_cli.core.priority import lower_this_process
from xai_cli.inputs.discover import InputFile
from xai_cli.inputs.read import Failure, Skipped, read_input

# ``done(index, sha256)`` -> the outputs of an input finished by an earlier run, or None to do it.
# It runs in the workers, so it must pickle (the files sink's ``ResumeCheck`` does).
DoneCheck = Callable[[int, str], "list[str] | None"]


@dataclass
class Batch:
    """One loader batch: decoded items, failures and skipped inputs, each in input order."""

    items: list  # decoded inputs (ImageItem, or the text modality's items)
    failures: list[Failure]
    skipped: list[Skipped]
    rows: torch.Tensor | None = None  # in transit only: the items' ``tensor``s stacked (see ``_collate``)
    shared: torch.Tensor | None = None  # in transit only: ``rows`` and the items' arrays in one buffer
    layout: list | None = None  # where each of them lies in ``shared``

    def __len__(self) -> int:
        return len(self.items) + len(self.failures) + len(self.skipped)


class _Inputs(Dataset):
    def __init__(self, files: list[InputFile], decode: Callable, resume: DoneCheck | None,
                 indices: list[int] | None = None) -> None:
        self.files, self.decode, self.resume, self.indices = files, decode, resume, indices

    def __len__(self) -> int:
        return len(self.files) if self.indices is None else len(self.indices)

    def __getitem__(self, j: int):
        i = j if self.indices is None else self.indices[j]
        data, problem = read_input(self.files[i])
        if data is None:
            return Failure(i, problem)
        if self.resume is not None:
            digest = hashlib.sha256(data).hexdigest()
            done = self.resume(i, digest)
            if done is not None:
                return Skipped(i, digest, done)
        return self.decode(i, self.files[i], data)


def _collate(records: list) -> Batch:
    """In the worker: the batch, with its items' tensors stacked into one ``rows`` tensor and,
    when it crosses from a worker process, ``rows`` and the items' arrays (an image's decoded
    pixels) copied into one shared-memory buffer for the trip.

    A tensor crosses to the main process through shared memory, and the main process fetches
    each one's file descriptor from the worker (a round trip to the worker's sharing thread, which
    waits whenever the worker is not scheduled); a numpy array is pickled through the pipe
    instead: a batch of eight 256² photos was 512 reads of 1.5 MB in the main thread, 1.1 ms of
    its CPU per input (cProfile of a Grad-CAM run, resnet18 on 2 cores). One buffer per batch
    makes it one trip and no copy in the main process. ``_unpacked`` gives the items their
    tensors and arrays back, as views of it.
    """
    items = [r for r in records if not isinstance(r, (Failure, Skipped))]
    tensors = [getattr(it, "tensor", None) for it in items]
    rows = None
    if tensors and all(isinstance(t, torch.Tensor) and t.shape == tensors[0].shape and t.dtype == tensors[0].dtype
                       for t in tensors):
        rows = torch.stack(tensors)  # (N, ...)
        for it in items:
            it.tensor = None
    batch = Batch(items, [r for r in records if isinstance(r, Failure)],
                  [r for r in records if isinstance(r, Skipped)], rows)
    if get_worker_info() is not None:
        _share(batch)
    return batch


_ALIGN = 64  # each value starts on a cache line in the shared buffer (and is aligned for any dtype)
_MIN_ARRAY = 4096  # smaller arrays are cheaper to pickle than to place


def _share(batch: Batch) -> None:
    """Move ``batch.rows`` and its items' large numpy arrays into one shared uint8 buffer."""
    values: list[tuple[int | None, str, torch.Tensor | np.ndarray]] = []  # (item, attribute, value)
    if batch.rows is not None and batch.rows.device.type == "cpu":
        values.append((None, "rows", batch.rows))
    for k, it in enumerate(batch.items):
        for name, value in getattr(it, "__dict__", {}).items():
            # plain arrays only: a subclass (a masked array) or structured dtype would not come back whole
            if type(value) is np.ndarray and value.nbytes >= _MIN_ARRAY and not value.dtype.hasobject \
                    and value.dtype.fields is None:
                values.append((k, name, value))
    if not values:
        return
    offsets, total = [], 0
    for _, _, v in values:
        offsets.append(total)
        total += -(-v.nbytes // _ALIGN) * _ALIGN
    shared = torch.empty(total, dtype=torch.uint8).share_memory_()
    flat = shared.numpy()
    layout = []
    for (k, name, v), at in zip(values, offsets):
        if isinstance(v, torch.Tensor):
            shared[at:at + v.nbytes].view(v.dtype).view(v.shape).copy_(v)
            layout.append((k, name, "tensor", v.dtype, tuple(v.shape), at))
            batch.rows = None
        else:
            flat[at:at + v.nbytes] = np.ascontiguousarray(v).reshape(-1).view(np.uint8)
            layout.append((k, name, "array", v.dtype, v.shape, at))
            object.__setattr__(batch.items[k], name, None)  # (a frozen dataclass too)
    batch.shared, batch.layout = shared, layout


def _unpacked(batch: Batch) -> Batch:
    """In the main process: each item's ``tensor`` a row of the batch's tensor again, and its
    arrays views of the shared buffer."""
    if batch.shared is not None:
        flat = batch.shared.numpy()
        for k, name, kind, dtype, shape, at in batch.layout:
            size = int(np.prod(shape)) * dtype.itemsize
            if kind == "tensor":
                batch.rows = batch.shared[at:at + size].view(dtype).view(shape)
            else:
                object.__setattr__(batch.items[k], name, flat[at:at + size].view(dtype).reshape(shape))
        batch.shared = batch.layout = None
    if batch.rows is not None:
        for i, it in enumerate(batch.items):
            it.tensor = batch.rows[i]
        batch.rows = None
    return batch


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, _worker_id: int = 0) -> None:
    """In a worker process: ask the kernel to SIGKILL us when our parent dies (Linux).

    Used as the DataLoader's ``worker_init_fn``. ``PR_SET_PDEATHSIG`` fires when the *thread*
    that forked the worker exits, so the loader must be iterated from a thread that lives
    as long as the run (the main thread, or the run loop's own). If the parent died before
    this ran, the worker exits at once.
    (A parent that is not ``parent_pid``, e.g. a forkserver, is fine: the check is that
    ``parent_pid`` is alive.)
    """
    # Stopping is the parent's job: a Ctrl-C or a SIGTERM to the whole process group (systemd,
    # docker, `timeout`) must not kill a worker mid-batch, which would look like a failed input.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: PyTorch's own watchdog still ends workers when the parent is gone
    try:
        os.kill(parent_pid, 0)  # the parent may have died before prctl took effect
    except ProcessLookupError:
        os._exit(0)
    except PermissionError:
        pass


def _decode_worker(parent_pid: int, worker_id: int) -> None:
    """A decode worker's start: it dies with the run and yields the CPU to the model's thread."""
    die_with_parent(parent_pid, worker_id)
    lower_this_process()


def default_workers() -> int:
    """Decode workers: one per spare core, at most 8 (decode rarely needs more to feed a GPU)."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def iter_batches(files: list[InputFile], decode: Callable, batch_size: int, workers: int,
                 resume: DoneCheck | None = None,
                 indices: list[int] | None = None) -> Iterator[Batch]:
    """Decode ``files`` (those at ``indices`` if given) with ``decode(index, file, data)`` in ``workers``
    processes, yielding batches in input order; results carry each input's index in ``files``."""
    loader = DataLoader(
        _Inputs(files, decode, resume, indices), batch_size=batch_size, shuffle=False, num_workers=workers,
        collate_fn=_collate, prefetch_factor=4 if workers else None,
        worker_init_fn=partial(_decode_worker, os.getpid()) if workers else None,
    )
    for batch in loader:
        yield _unpacked(batch)
