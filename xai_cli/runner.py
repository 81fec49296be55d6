"""discover -> decode (workers) -> batched predict + explain (device) -> writers (threads).

Each batch's outputs are handed to the writer as soon as the batch is explained; the device
loop never waits on PNG encoding, and nothing accumulates in memory. The run holds a lock
on its output folder, skips inputs already done (resume), and stops cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import partial

import torch

from xai_cli import __version__, console
from xai_cli.config import RunConfig
from xai_cli.errors import MethodError, UsageError
from xai_cli.inputs.discover import check_paths, discover
from xai_cli.inputs.loader import ResumeCheck, default_workers, iter_batches
from xai_cli.methods.base import Method, Normalization
from xai_cli.methods.registry import build_params, get_method, parse_method_list
from xai_cli.methods.targets import parse_target
from xai_cli.modalities import MODALITIES
from xai_cli.models.registry import LoadedModel, ModelRequest, load_model
from xai_cli.outputs import atomic
from xai_cli.outputs.items import write_failure
from xai_cli.outputs.layout import Layout
from xai_cli.outputs.lock import OutputLock
from xai_cli.outputs.runinfo import RunSummary, write_run_json
from xai_cli.outputs.writer import Writer


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> the first GPU if there is one, else the CPU; ``cuda[:N]`` checked to exist."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"bad --device {spec!r}", "use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda but CUDA is not available here", "use --device cpu, or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {spec}: there are {torch.cuda.device_count()} GPUs", "use cuda:0 .. cuda:N-1")
    return device


def build_methods(cfg: RunConfig, loaded: LoadedModel, default: str) -> list[Method]:
    """The configured methods, constructed for this model.

    With ``--method all``, a method that cannot apply to this architecture (attention on a
    CNN) is left out with a note; named explicitly, it is an error.
    """
    every = [m.strip().lower() for m in cfg.methods] == ["all"]
    names = parse_method_list(",".join(cfg.methods) or default, loaded.modality)
    unused = set(cfg.params) - set(names)
    if unused:
        raise UsageError(f"parameters given for {sorted(unused)[0]!r}, which is not among --method {','.join(names)}")
    norm = Normalization(loaded.preprocess.mean, loaded.preprocess.std) if loaded.preprocess else None
    methods = []
    for name in names:
        cls = get_method(name, loaded.modality)
        try:
            methods.append(cls(loaded.module, build_params(cls, cfg.params.get(name, {})), norm))
        except MethodError as e:
            if not every:
                raise
            console.info(f"--method all: skipping {name}: {e.message}")
    return methods


class _Stop:
    """SIGINT/SIGTERM: the first asks to stop after the batch in flight; a second aborts at once."""

    def __init__(self) -> None:
        self.signal: str | None = None

    def __call__(self, signum, _frame) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        console.warn(f"{self.signal}: finishing the batch in flight, then stopping (again to abort)")


@contextmanager
def _signals(stop: _Stop):
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread (e.g. when embedded)
        return
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run(cfg: RunConfig) -> RunSummary:
    """Explain every input of ``cfg`` and write the outputs; returns counts.

    Raises:
        UsageError, ModelLoadError: Before anything is written, for a bad configuration.
    """
    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    if cfg.max_pixels is not None:
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = cfg.max_pixels
    check_paths(list(cfg.inputs))  # missing paths fail before the (slow) model load
    request = ModelRequest(cfg.model, cfg.weights, cfg.labels, cfg.trust_checkpoint, cfg.trust_remote_code,
                           cfg.allow_untrained_head)
    loaded = load_model(request, device)
    modality = MODALITIES[loaded.modality]
    files = modality.expand(discover(list(cfg.inputs), modality.extensions))
    if not files:
        raise UsageError(f"no {modality.name} inputs found in {', '.join(map(str, cfg.inputs))}",
                         f"{modality.name} inputs are {' '.join(sorted(modality.extensions))} files, searched recursively")
    methods = build_methods(cfg, loaded, modality.default_method)
    fixed = parse_target(cfg.target, loaded.labels, modality.num_classes(loaded))
    load_s = time.perf_counter() - t0
    with OutputLock(cfg.out):
        return _run_locked(cfg, modality, files, loaded, methods, fixed, device, started, t0, load_s)


def _run_locked(cfg, modality, files, loaded, methods, fixed, device, started, t0, load_s) -> RunSummary:
    out = cfg.out
    atomic.remove_stale_temps(out)
    layout = Layout(out, [f.rel for f in files])
    engine = modality.engine(cfg, loaded, methods, files, layout, device, fixed)
    resume = None if cfg.force else ResumeCheck(out, tuple(layout.abs(layout.record(f.rel)) for f in files), cfg.output_key())
    summary = RunSummary(out=str(out), total=len(files), device=str(device))
    workers = default_workers() if cfg.workers is None else cfg.workers
    console.info(f"xai {__version__}: {len(files)} inputs, model {loaded.name} ({loaded.weights}), "
                 f"methods {', '.join(m.name for m in methods)}, device {device}, out {out}")
    writer = Writer(out, cfg.writer_threads or max(1, (os.cpu_count() or 2) // 2))
    stop = _Stop()
    try:
        with _signals(stop), console.progress(len(files)) as bar:
            batches = iter_batches(files, modality.decoder(loaded), cfg.batch_size, workers, device.type == "cuda", resume)
            for batch in batches:
                jobs = {f.index: partial(write_failure, files[f.index].rel, str(files[f.index].path), f.reason,
                                         f.sha256, loaded.identity(), layout) for f in batch.failures}
                jobs |= {s.index: partial(_resumed_line, files[s.index].rel, layout, s.outputs) for s in batch.skipped}
                if batch.items:
                    jobs |= engine.explain(batch.items)
                for index in sorted(jobs):  # the manifest follows input order
                    writer.submit(jobs[index])
                bar.advance(len(batch))
                if stop.signal or _too_many_failures(cfg, writer):
                    summary.stopped = stop.signal or "max-failures"
                    break
    finally:
        writer.close()
    summary.count(writer.lines)
    summary.seconds = time.perf_counter() - t0
    if summary.stopped:
        console.warn(f"stopped ({summary.stopped}) after {summary.ok + summary.failed} of {summary.total} inputs; "
                     "run the same command again to resume")
    timings = {"total_seconds": summary.seconds, "load_seconds": load_s, "predict_seconds": engine.stats["predict_s"],
               **{f"{m}_seconds": s for m, s in engine.stats["methods_s"].items()},
               "inputs_per_second": (summary.ok - summary.skipped + summary.failed) / max(summary.seconds - load_s, 1e-9)}
    write_run_json(out, config=cfg.to_dict(), config_key=cfg.output_key(), model=loaded.identity(), summary=summary,
                   device=device, started=started, timings=timings, oom_splits=engine.oom_splits)
    return summary


def _resumed_line(rel, layout: Layout, outputs: list[str]) -> dict:
    return {"input": str(rel), "status": "ok", "resumed": True, "record": str(layout.record(rel)), "outputs": outputs}


def _too_many_failures(cfg: RunConfig, writer: Writer) -> bool:
    if cfg.max_failures is None:
        return False
    writer.drain()  # exact counts, at the cost of overlap: only when a limit was asked for
    return writer.failed > cfg.max_failures

