"""The run: discover -> decode (loader workers) -> one engine per device -> sinks.

The runner owns what a run needs around the engine: the device, the model, the inputs, the
methods, the output lock, resume (asked of the sinks), SIGINT/SIGTERM, failure limits and
the summary. It streams one ``ItemResult`` per input, in input order, to every sink; nothing
here prints (a ``Reporter`` is told) or knows a command-line flag.

Where the engines run is the one thing that varies: in this process (one device), in one
process per device (``scale/devices.py``), or in a Ray actor pool (``scale/ray_backend.py``);
a shard (``core/shard.py``) explains its part of the inputs.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

import torch

from xai_cli import __version__, cancel
from xai_cli.config import MAX_TOP_K, RunConfig
from xai_cli.core.engine import Engine
from xai_cli.core.precision import policy_warning, precision_warning
from xai_cli.core.reporting import Reporter
from xai_cli.core.results import ItemResult, RunInfo, RunSummary
from xai_cli.core.shard import Shard, parse_shard
from xai_cli.core.targets import parse_target
from xai_cli.errors import MethodError, UsageError, words
from xai_cli.inputs.discover import InputFile, check_paths, discover_all
from xai_cli.inputs.loader import DoneCheck, default_workers, iter_batches
from xai_cli.methods.base import Method, Normalization
from xai_cli.methods.registry import build_params, canonical, get_method, parse_method_list
from xai_cli.modalities import get_modality
from xai_cli.modalities.base import Modality
from xai_cli.models.registry import LoadedModel, ModelRequest, load_model
from xai_cli.sinks.base import Sink
from xai_cli.sinks.files.atomic import preflight
from xai_cli.sinks.files.lock import OutputLock
from xai_cli.sinks.files.merge import lock_name


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


def resolve_devices(spec: str, shard: Shard | None = None) -> list[torch.device]:
    """``cuda:0,cuda:1`` / ``cuda:all`` / ``cpu,cpu`` -> one device per engine process; else one device.

    Under torchrun (a shard with ``LOCAL_RANK``), ``auto`` and ``cuda`` mean this rank's GPU.
    """
    spec = spec.strip()
    if spec == "cuda:all":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise UsageError("device cuda:all asked for, but CUDA is not available here", "use cpu, or auto")
        return [torch.device(f"cuda:{i}") for i in range(n)]
    if "," in spec:
        return [resolve_device(p.strip()) for p in spec.split(",")]
    if shard is not None and shard.local_rank is not None and spec in ("auto", "cuda") and torch.cuda.is_available():
        spec = f"cuda:{shard.local_rank % torch.cuda.device_count()}"
    return [resolve_device(spec)]


def build_engine(cfg: RunConfig, loaded: LoadedModel, device: torch.device, files, reporter: Reporter) -> Engine:
    """The engine of ``loaded`` on ``device``: its methods, warned about, and the fixed target."""
    modality = get_modality(loaded.modality)
    methods = build_methods(cfg, loaded, modality.default_method, reporter)
    for m in methods:
        for w in m.warnings:
            reporter.warning(w)
    fixed = parse_target(cfg.target, loaded.labels, modality.num_classes(loaded))
    return Engine(modality, loaded, methods, files, device, fixed, cfg.top_k, cfg.seed, cfg.precision)


def load_engine(cfg: RunConfig, device: str) -> Engine:
    """An engine of its own, for an engine process or a Ray actor: the model loaded once, on ``device``.

    Its ``files`` is a dict the caller fills with each batch's inputs (by index).
    """
    torch.manual_seed(cfg.seed)  # as ``prepare`` does: a randomly initialised model is the same one
    if cfg.max_pixels is not None:
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = cfg.max_pixels
    loaded = load_model(_request(cfg), torch.device(device))
    return build_engine(cfg, loaded, torch.device(device), {}, Reporter())


def _request(cfg: RunConfig) -> ModelRequest:
    return ModelRequest(cfg.model, cfg.weights, cfg.labels, cfg.trust_checkpoint, cfg.trust_remote_code,
                        cfg.allow_untrained_head)


def build_methods(cfg: RunConfig, loaded: LoadedModel, default: str, reporter: Reporter) -> list[Method]:
    """The configured methods, constructed for this model.

    With ``methods=("all",)``, a method that cannot apply to this architecture (attention on
    a CNN) is left out with a note; named explicitly, it is an error.
    """
    every = [m.strip().lower() for m in cfg.methods] == ["all"]
    names = parse_method_list(",".join(cfg.methods) or default, loaded.modality)
    params = {canonical(k): v for k, v in cfg.params.items()}  # --param GradCAM.layer=... names gradcam
    unused = set(params) - set(names)
    if unused:
        raise UsageError(f"parameters given for {sorted(unused)[0]!r}, which is not among the methods {','.join(names)}")
    norm = Normalization(loaded.preprocess.mean, loaded.preprocess.std) if loaded.preprocess else None
    methods = []
    for name in names:
        cls = get_method(name, loaded.modality)
        try:
            methods.append(cls(loaded.module, build_params(cls, params.get(name, {})), norm))
        except MethodError as e:
            if not every:
                raise
            reporter.note(f"method all: skipping {name}: {e.message}")
    return methods


def _clamp_top_k(cfg: RunConfig, classes: int, reporter: Reporter) -> RunConfig:
    """``top_k`` at most the model's classes and ``MAX_TOP_K``, with a warning; the run records
    the value it used (run.json's config, and the config key resume compares)."""
    k = min(cfg.top_k, classes, MAX_TOP_K)
    if k == cfg.top_k:
        return cfg
    why = f"the model has {classes} classes" if k == classes else f"at most {MAX_TOP_K} are explained per input"
    reporter.warning(f"{{opt:top_k}} {cfg.top_k} clamped to {k}: {why}")
    return dataclasses.replace(cfg, top_k=k)


@dataclass
class Session:
    """A run's fixed parts, ready to stream: the model, its modality, the inputs and the engine.

    ``files`` is every input (output names depend on all of them); ``todo`` the indices this
    run explains (a shard's part, else all). With several ``devices``, ``engine`` (on the CPU)
    only collects the engine processes' timings, warnings and OOM splits, and ``per_device``
    their counts.
    """

    cfg: RunConfig
    loaded: LoadedModel
    modality: Modality
    files: list[InputFile]
    engine: Engine
    info: RunInfo
    load_seconds: float
    todo: list[int] | None = None
    devices: list[torch.device] | None = None
    per_device: list[dict] | None = None

    def __post_init__(self) -> None:
        self.todo = list(range(len(self.files))) if self.todo is None else self.todo
        self.devices = [self.engine.device] if self.devices is None else self.devices


def prepare(cfg: RunConfig, reporter: Reporter | None = None) -> Session:
    """Check the inputs, load the model, build the methods and the engine.

    Raises:
        UsageError, ModelLoadError: For a bad configuration, before anything is written. No input
            found (an empty folder) is not an error: a warning, and a run of 0 inputs.
    """
    reporter = reporter or Reporter()
    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    shard = parse_shard(cfg.shard, os.environ)
    if cfg.backend == "ray":
        from xai_cli.scale.ray_backend import check_ray

        check_ray()  # before the (slow) model load
    devices = resolve_devices(cfg.device, shard)
    # Several devices, or Ray: the engines load their own model; this one (CPU) is for the run's facts.
    device = devices[0] if len(devices) == 1 and cfg.backend == "local" else torch.device("cpu")
    torch.manual_seed(cfg.seed)
    if cfg.max_pixels is not None:
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = cfg.max_pixels
    check_paths(list(cfg.inputs))  # missing paths fail before the (slow) model load
    loaded = load_model(_request(cfg), device)
    for w in loaded.warnings:
        reporter.warning(w)
    modality = get_modality(loaded.modality)
    warning = precision_warning(cfg.precision, device)
    if warning:
        reporter.warning(warning)
    found = discover_all(list(cfg.inputs), modality.extensions, exclude=cfg.out)
    files = modality.expand(found.files)
    if not files:  # a sometimes-empty inbox is not a typo: exit 0, run.json says 0 inputs (a missing path is exit 2)
        reporter.warning(f"no {modality.name} inputs found in {', '.join(map(str, cfg.inputs))} ({modality.name} inputs "
                         f"are {' '.join(sorted(modality.extensions))} files, searched recursively): nothing to explain")
    cfg = _clamp_top_k(cfg, modality.num_classes(loaded), reporter)
    engine = build_engine(cfg, loaded, device, files, reporter)
    warning = policy_warning(cfg.precision, engine.methods)
    if warning:
        reporter.warning(warning)
    where = "ray" if cfg.backend == "ray" else ",".join(map(str, devices))
    info = RunInfo(cfg, cfg.output_key(), loaded.identity(), loaded.name, modality.name, modality.run_fields(loaded),
                   files, [m.name for m in engine.methods], where, started, found.skipped, labels=loaded.labels,
                   shard=shard)
    todo = None if shard is None else [i for i, f in enumerate(files) if shard.owns(f.rel)]
    return Session(cfg, loaded, modality, files, engine, info, time.perf_counter() - t0, todo, devices)


def batches(session: Session, resume: DoneCheck | None = None,
            reporter: Reporter | None = None) -> Iterator[list[ItemResult]]:
    """One list of results per loader batch, in input order: decoded in the loader's workers,
    explained by the engine."""
    reporter = reporter or Reporter()
    cfg, engine, files = session.cfg, session.engine, session.files
    if cfg.backend == "ray":
        from xai_cli.scale.ray_backend import ray_batches

        yield from ray_batches(session, resume, reporter)
        return
    workers = default_workers() if cfg.workers is None else cfg.workers
    decode = session.modality.decoder(session.loaded, cfg.decode)
    engine.on_method = lambda name, i, k, n: reporter.step(f"{name} done on a batch of {n} ({i}/{k} methods)")
    said: set[str] = set()  # a method's warning is reported once per run, not once per batch
    loader = iter_batches(files, decode, cfg.batch_size, workers, resume, session.todo)
    if len(session.devices) > 1:
        from xai_cli.scale.devices import explain_on_devices

        stream = explain_on_devices(session, loader)
    else:
        stream = ((b, engine.explain(b.items) if b.items else []) for b in loader)
    for batch, explained in stream:
        out = [engine.failure(f.index, f.reason, f.sha256) for f in batch.failures]
        out += [ItemResult(s.index, files[s.index], session.modality.name, "skipped", sha256=s.sha256,
                           outputs=s.outputs) for s in batch.skipped]
        out += explained
        for w in dict.fromkeys(engine.warnings):
            if w not in said:
                said.add(w)
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
    t0 = time.perf_counter() - (session.load_seconds if session is not None else 0.0)  # a given session's load counts too
    folders = list(dict.fromkeys(s.out for s in sinks if s.out is not None))
    for folder in folders:
        preflight(folder)  # an unusable output folder is a usage error before the (slow) model load
    session = session or prepare(cfg, reporter)
    info = session.info
    summary = RunSummary(out=str(cfg.out), total=len(session.todo), device=info.device,
                         not_walked=len(info.not_walked))
    with ExitStack() as stack:
        for folder in folders:
            lock = stack.enter_context(OutputLock(folder, lock_name(info.shard)))
            if lock.took_over:
                reporter.warning(lock.took_over)
        checks = [] if cfg.force else [c for c in (s.resume_check(info) for s in sinks) if c is not None]
        resume = checks[0] if len(checks) == 1 else None  # several sinks that resume: redo all, never guess
        part = f" (shard {info.shard.index}/{info.shard.count} of {len(session.files)}, from {info.shard.source})" \
            if info.shard else ""
        reporter.note(f"xai {__version__}: {len(session.todo)} inputs{part}, model {session.loaded.name} "
                      f"({session.loaded.weights}), methods {', '.join(info.methods)}, device {info.device}, out {cfg.out}")
        opened: list[Sink] = []
        stop = _Stop(reporter)
        cancel.reset()
        with _signals(stop):  # also while the sinks close: a signal then cannot lose finished outputs
            try:
                for sink in sinks:
                    sink.open(info)
                    opened.append(sink)
                with reporter.progress(len(session.todo)) as advance, closing(batches(session, resume, reporter)) as stream:
                    for batch in stream:
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
                summary.devices = session.per_device or []
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

    def step(self, text: str) -> None:
        self.inner.step(text)

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
