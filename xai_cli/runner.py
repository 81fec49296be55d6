"""The run: discover -> decode (loader workers) -> one engine -> sinks.

The runner owns what a run needs around the engine: the device, the model, the inputs, the
methods, the output lock, resume (asked of the sinks), SIGINT/SIGTERM, failure limits and
the summary. It streams one ``ItemResult`` per input, in input order, to every sink; nothing
here prints (a ``Reporter`` is told) or knows a command-line flag.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

import torch

from xai_cli import __version__, cancel
from xai_cli.config import RunConfig
from xai_cli.core.engine import Engine
from xai_cli.core.precision import precision_warning, prepare_model
from xai_cli.core.reporting import Reporter
from xai_cli.core.results import ItemResult, RunInfo, RunSummary
from xai_cli.core.targets import parse_target
from xai_cli.errors import MethodError, UsageError, words
from xai_cli.inputs.discover import InputFile, check_paths, discover_all
from xai_cli.inputs.loader import DoneCheck, default_workers, iter_batches
from xai_cli.methods.base import Method, Normalization
from xai_cli.methods.registry import build_params, get_method, parse_method_list
from xai_cli.modalities import get_modality
from xai_cli.modalities.base import Modality
from xai_cli.models.registry import LoadedModel, ModelRequest, load_model
from xai_cli.sinks.base import Sink
from xai_cli.sinks.files.atomic import preflight
from xai_cli.sinks.files.lock import OutputLock


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> the first GPU if there is one, else the CPU; ``cuda[:N]`` checked to exist."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"bad {{opt:device}} {spec!r}", "use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("device cuda asked for, but CUDA is not available here", "use cpu, or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"device {spec}: there are {torch.cuda.device_count()} GPUs", "use cuda:0 .. cuda:N-1")
    return device


def build_methods(cfg: RunConfig, loaded: LoadedModel, default: str, reporter: Reporter) -> list[Method]:
    """The configured methods, constructed for this model.

    With ``methods=("all",)``, a method that cannot apply to this architecture (attention on
    a CNN) is left out with a note; named explicitly, it is an error.
    """
    every = [m.strip().lower() for m in cfg.methods] == ["all"]
    names = parse_method_list(",".join(cfg.methods) or default, loaded.modality)
    unused = set(cfg.params) - set(names)
    if unused:
        raise UsageError(f"parameters given for {sorted(unused)[0]!r}, which is not among the methods {','.join(names)}")
    norm = Normalization(loaded.preprocess.mean, loaded.preprocess.std) if loaded.preprocess else None
    methods = []
    for name in names:
        cls = get_method(name, loaded.modality)
        try:
            methods.append(cls(loaded.module, build_params(cls, cfg.params.get(name, {})), norm))
        except MethodError as e:
            if not every:
                raise
            reporter.note(f"method all: skipping {name}: {e.message}")
    return methods


@dataclass
class Session:
    """A run's fixed parts, ready to stream: the model, its modality, the inputs and the engine."""

    cfg: RunConfig
    loaded: LoadedModel
    modality: Modality
    files: list[InputFile]
    engine: Engine
    info: RunInfo
    load_seconds: float


def prepare(cfg: RunConfig, reporter: Reporter | None = None) -> Session:
    """Check the inputs, load the model, build the methods and the engine.

    Raises:
        UsageError, ModelLoadError: For a bad configuration, before anything is written.
    """
    reporter = reporter or Reporter()
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
    for w in loaded.warnings:
        reporter.warning(w)
    modality = get_modality(loaded.modality)
    warning = precision_warning(cfg.precision, device)
    if warning:
        reporter.warning(warning)
    prepare_model(loaded.module, cfg.precision)
    found = discover_all(list(cfg.inputs), modality.extensions, exclude=cfg.out)
    files = modality.expand(found.files)
    if not files:
        raise UsageError(f"no {modality.name} inputs found in {', '.join(map(str, cfg.inputs))}",
                         f"{modality.name} inputs are {' '.join(sorted(modality.extensions))} files, searched recursively")
    methods = build_methods(cfg, loaded, modality.default_method, reporter)
    for m in methods:
        for w in m.warnings:
            reporter.warning(w)
    fixed = parse_target(cfg.target, loaded.labels, modality.num_classes(loaded))
    engine = Engine(modality, loaded, methods, files, device, fixed, cfg.top_k, cfg.seed, cfg.precision)
    info = RunInfo(cfg, cfg.output_key(), loaded.identity(), loaded.name, modality.name, modality.run_fields(loaded),
                   files, [m.name for m in methods], str(device), started, found.skipped)
    return Session(cfg, loaded, modality, files, engine, info, time.perf_counter() - t0)


def batches(session: Session, resume: DoneCheck | None = None,
            reporter: Reporter | None = None) -> Iterator[list[ItemResult]]:
    """One list of results per loader batch, in input order: decoded in the loader's workers,
    explained by the engine."""
    reporter = reporter or Reporter()
    cfg, engine, files = session.cfg, session.engine, session.files
    workers = default_workers() if cfg.workers is None else cfg.workers
    decode = session.modality.decoder(session.loaded)
    for batch in iter_batches(files, decode, cfg.batch_size, workers, engine.device.type == "cuda", resume):
        out = [engine.failure(f.index, f.reason, f.sha256) for f in batch.failures]
        out += [ItemResult(s.index, files[s.index], session.modality.name, "skipped", sha256=s.sha256,
                           outputs=s.outputs) for s in batch.skipped]
        if batch.items:
            out += engine.explain(batch.items)
        for w in dict.fromkeys(engine.warnings):
            reporter.warning(w)
        engine.warnings.clear()
        yield sorted(out, key=lambda r: r.index)


def results(session: Session, resume: DoneCheck | None = None, reporter: Reporter | None = None) -> Iterator[ItemResult]:
    """One result per input, in input order (see ``batches``)."""
    for batch in batches(session, resume, reporter):
        yield from batch


def run(cfg: RunConfig, sinks: list[Sink], reporter: Reporter | None = None, session: Session | None = None
        ) -> RunSummary:
    """Explain every input of ``cfg`` and hand each result to every sink; returns the summary.

    The folders the sinks write into are locked for the run; inputs a sink reports done by an
    earlier run (resume) are skipped unless ``cfg.force``. SIGINT/SIGTERM stop after the batch
    in flight (a second one aborts at once); ``cfg.max_failures`` stops after that many
    failures. The sinks are closed in every case, with ``summary.stopped`` saying why.

    ``session`` is a ``prepare``d one, for callers whose sinks need the loaded model (audit).

    Raises:
        UsageError, ModelLoadError: For a bad configuration, before anything is written.
    """
    reporter = _Recording(reporter or Reporter())
    t0 = time.perf_counter()
    folders = list(dict.fromkeys(s.out for s in sinks if s.out is not None))
    for folder in folders:
        preflight(folder)  # an unusable output folder is a usage error before the (slow) model load
    session = session or prepare(cfg, reporter)
    info = session.info
    summary = RunSummary(out=str(cfg.out), total=len(session.files), device=info.device,
                         not_walked=len(info.not_walked))
    with ExitStack() as stack:
        for folder in folders:
            lock = stack.enter_context(OutputLock(folder))
            if lock.took_over:
                reporter.warning(lock.took_over)
        checks = [] if cfg.force else [c for c in (s.resume_check(info) for s in sinks) if c is not None]
        resume = checks[0] if len(checks) == 1 else None  # several sinks that resume: redo all, never guess
        reporter.note(f"xai {__version__}: {len(session.files)} inputs, model {session.loaded.name} ({session.loaded.weights}), "
                      f"methods {', '.join(info.methods)}, device {info.device}, out {cfg.out}")
        opened: list[Sink] = []
        stop = _Stop(reporter)
        cancel.reset()
        with _signals(stop):  # also while the sinks close: a signal then cannot lose finished outputs
            try:
                for sink in sinks:
                    sink.open(info)
                    opened.append(sink)
                with reporter.progress(len(session.files)) as advance:
                    for batch in batches(session, resume, reporter):
                        for result in batch:
                            summary.count(result)
                            for sink in sinks:
                                sink.consume(result)
                            advance(1)
                            if cfg.max_failures is not None and summary.failed > cfg.max_failures:
                                summary.stopped = "max-failures"  # at once: the rest is not recorded as done
                                break
                        if summary.stopped or stop.signal:
                            break
            finally:
                stop.closing = True
                cancel.reset()
                summary.stopped = summary.stopped or stop.signal
                summary.seconds = time.perf_counter() - t0
                summary.timings = _timings(session, summary)
                summary.oom_splits = session.engine.oom_splits
                if summary.stopped:
                    reporter.warning(f"stopped ({summary.stopped}) after {summary.ok + summary.failed} of "
                                     f"{summary.total} inputs; run the same command again to resume")
                summary.warnings = reporter.warnings
                for sink in opened:
                    sink.close(summary)
    return summary


def _timings(session: Session, summary: RunSummary) -> dict[str, float]:
    seconds = session.engine.seconds
    done = summary.ok - summary.skipped + summary.failed
    return {"total_seconds": summary.seconds, "load_seconds": session.load_seconds,
            "predict_seconds": seconds["predict"],
            **{f"{m}_seconds": s for m, s in seconds.items() if m != "predict"},
            "inputs_per_second": done / max(summary.seconds - session.load_seconds, 1e-9)}


class _Recording(Reporter):
    """Passes reports on and keeps the distinct warnings for the summary (at most ``keep``)."""

    def __init__(self, inner: Reporter, keep: int = 100) -> None:
        self.inner, self.keep = inner, keep
        self.warnings: list[str] = []

    def note(self, text: str) -> None:
        self.inner.note(text)

    def warning(self, text: str) -> None:
        self.inner.warning(text)
        plain = words(text)
        if plain not in self.warnings and len(self.warnings) < self.keep:
            self.warnings.append(plain)

    def progress(self, total: int):
        return self.inner.progress(total)


class _Stop:
    """SIGINT/SIGTERM: the first stops at the next chunk of work (the batch in flight is dropped,
    not failed: resume redoes it) and writes what is finished; a second abandons the run at once,
    still writing every finished input; while the outputs are being closed, signals only say so."""

    def __init__(self, reporter: Reporter) -> None:
        self.signal: str | None = None
        self.closing = False
        self._reporter = reporter

    def __call__(self, signum, _frame) -> None:
        name = signal.Signals(signum).name
        if self.closing:
            self._reporter.warning(f"{name}: writing the finished inputs' outputs, almost done (kill -9 to abort)")
            return
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = name
        cancel.request()
        self._reporter.warning(f"{name}: stopping after the current chunk of work (again to abort at once)")


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
