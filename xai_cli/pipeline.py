"""discover -> decode (workers) -> batched predict + explain (device) -> writers (threads).

Each batch's outputs are handed to the writer as soon as the batch is explained; the
device loop never waits on PNG encoding, and nothing accumulates in memory.
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import torch

from xai_cli import __version__, console
from xai_cli.config import RunConfig
from xai_cli.errors import ExitCode, UsageError, XaiError
from xai_cli.inputs.discover import discover
from xai_cli.inputs.loader import Batch, default_workers, iter_batches
from xai_cli.methods.base import Method, Normalization
from xai_cli.methods.registry import build_params, get_method, parse_method_list
from xai_cli.methods.targets import choose_targets, parse_target
from xai_cli.models.preprocess import to_original
from xai_cli.models.registry import LoadedModel, ModelRequest, load_model
from xai_cli.outputs import atomic
from xai_cli.outputs.items import ItemJob, MapResult, write_failure, write_item
from xai_cli.outputs.layout import Layout
from xai_cli.outputs.writer import Writer
from xai_cli.summary import SCHEMA_VERSION, attribution_stats, prediction_entry

PREDICTION_TOP = 5  # classes listed in each record's prediction


@dataclass
class RunSummary:
    """What a run did; ``--format json`` prints this."""

    out: str
    total: int = 0
    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    failures: list[dict] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.INPUTS_FAILED if self.failed else ExitCode.OK

    def to_dict(self) -> dict:
        return {"out": self.out, "total": self.total, "ok": self.ok, "failed": self.failed,
                "seconds": round(self.seconds, 3), "device": self.device, "exit_code": int(self.exit_code),
                "failures": self.failures}


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


def item_seed(seed: int, sha256: str) -> int:
    """A per-input seed from the run seed and the input's content: independent of input order."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{sha256}".encode()).digest()[:4], "little")


def build_methods(cfg: RunConfig, loaded: LoadedModel) -> list[Method]:
    names = parse_method_list(",".join(cfg.methods), loaded.modality)
    unused = set(cfg.params) - set(names)
    if unused:
        raise UsageError(f"parameters given for {sorted(unused)[0]!r}, which is not among --method {','.join(names)}")
    norm = Normalization(loaded.preprocess.mean, loaded.preprocess.std) if loaded.preprocess else None
    return [get_method(n)(loaded.module, build_params(get_method(n), cfg.params.get(n, {})), norm) for n in names]


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
    files = discover(list(cfg.inputs))
    if not files:
        raise UsageError(f"no images found in {', '.join(map(str, cfg.inputs))}",
                         "inputs are .jpg .jpeg .png .bmp .webp .tif .tiff .gif files, searched recursively")
    loaded = load_model(ModelRequest(cfg.model, cfg.weights, cfg.labels, cfg.trust_checkpoint, cfg.trust_remote_code), device)
    methods = build_methods(cfg, loaded)
    t_loaded = time.perf_counter()
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    atomic.remove_stale_temps(out)
    layout = Layout(out, [f.rel for f in files])
    summary = RunSummary(out=str(out), total=len(files), device=str(device))
    threads = cfg.writer_threads or max(1, (os.cpu_count() or 2) // 2)
    workers = default_workers() if cfg.workers is None else cfg.workers
    console.info(f"xai {__version__}: {len(files)} inputs, model {loaded.name} ({loaded.weights}), "
                 f"methods {', '.join(m.name for m in methods)}, device {device}")
    writer = Writer(out, threads)
    try:
        with console.progress(len(files)) as bar:
            for batch in iter_batches(files, loaded.preprocess, cfg.batch_size, workers, device.type == "cuda"):
                jobs = {f.index: partial(write_failure, files[f.index].rel, str(files[f.index].path), f.reason,
                                         f.sha256, loaded.identity(), layout) for f in batch.failures}
                if batch.items:
                    jobs.update(_explain_batch(batch, cfg, loaded, methods, files, layout, device))
                for index in sorted(jobs):  # the manifest follows input order
                    writer.submit(jobs[index])
                bar.advance(len(batch.items) + len(batch.failures))
    finally:
        writer.close()
    for line in writer.lines:
        if line["status"] == "ok":
            summary.ok += 1
        else:
            summary.failed += 1
            summary.failures.append({"input": line["input"], "reason": line.get("reason", "")})
    summary.seconds = time.perf_counter() - t0
    _write_run_json(cfg, loaded, summary, device, started, load_seconds=t_loaded - t0)
    return summary


def _explain_batch(batch: Batch, cfg: RunConfig, loaded: LoadedModel, methods: list[Method],
                   files, layout: Layout, device: torch.device) -> dict[int, Callable[[], dict]]:
    """Predict and explain one batch; returns each input's writer job, keyed by input index."""
    x = batch.stacked().to(device, non_blocking=True)  # (N, 3, H, W)
    with torch.no_grad():
        probs = torch.softmax(loaded.module(x).float(), dim=1)  # (N, classes)
    order = torch.sort(probs, dim=1, descending=True, stable=True)
    top_idx = order.indices[:, :PREDICTION_TOP].cpu().tolist()
    top_p = order.values[:, :PREDICTION_TOP].cpu().tolist()
    fixed = parse_target(cfg.target, loaded.labels, probs.shape[1])
    targets = choose_targets(probs, fixed, cfg.top_k)  # (N, K)
    target_p = probs.gather(1, targets).cpu().tolist()
    seeds = [item_seed(cfg.seed, it.sha256) for it in batch.items]
    n, k_count = x.shape[0], targets.shape[1]
    per_item: list[list[MapResult]] = [[] for _ in range(n)]
    for method in methods:
        for k in range(k_count):
            t = time.perf_counter()
            try:
                expl = method.explain(x, targets[:, k], seeds)
            except XaiError:
                raise
            except Exception as e:  # one batch failing must not end the run: record its inputs
                reason = f"{method.name} failed: {type(e).__name__}: {str(e)[:200]}"
                return {it.index: partial(write_failure, files[it.index].rel, str(files[it.index].path), reason,
                                          it.sha256, loaded.identity(), layout) for it in batch.items}
            stats = attribution_stats(expl.maps)
            maps = expl.maps.cpu().numpy()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = (time.perf_counter() - t) / n
            for i, it in enumerate(batch.items):
                idx = targets[i, k].item()
                peak = stats[i]["peak_input_px"]
                stats[i]["peak_xy"] = [round(v, 2) for v in to_original((peak[1], peak[0]), it.box, maps.shape[-1])]
                target = {"rank": k + 1, "index": idx, "label": loaded.label(idx), "probability": target_p[i][k]}
                per_item[i].append(MapResult(method.name, method.signed, target, maps[i], stats[i], method.describe(),
                                             expl.layer, seconds, expl.details[i] if expl.details else {}))
    p = loaded.preprocess
    jobs = {}
    for i, it in enumerate(batch.items):
        src = files[it.index]
        base = {
            "schema_version": SCHEMA_VERSION,
            "status": "ok",
            "input": {"path": str(src.path), "rel": str(src.rel), "sha256": it.sha256, "size": list(it.size),
                      "mode": it.mode, "notes": it.notes},
            "model": loaded.identity(),
            "preprocess": {**p.to_dict(), "crop_box": it.box.to_list()},
            "prediction": prediction_entry(top_idx[i], top_p[i], loaded.labels),
            "config_key": cfg.output_key(),
        }
        job = ItemJob(src.rel, str(src.path), base, it.original, tuple(it.box.to_list()), per_item[i],
                      k_count > 1, loaded.name, cfg.save_raw, cfg.render_max_side)
        jobs[it.index] = partial(write_item, job, layout)
    return jobs


def _write_run_json(cfg: RunConfig, loaded: LoadedModel, summary: RunSummary, device: torch.device,
                    started: datetime, load_seconds: float) -> None:
    import torchvision

    versions = {"xai": __version__, "python": platform.python_version(), "torch": torch.__version__,
                "torchvision": torchvision.__version__}
    dev = {"type": device.type, "name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()}
    run = {
        "schema_version": SCHEMA_VERSION,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": cfg.to_dict(),
        "config_key": cfg.output_key(),
        "model": loaded.identity(),
        "versions": versions,
        "device": dev,
        "counts": {"total": summary.total, "ok": summary.ok, "failed": summary.failed},
        "timings": {"total_seconds": round(summary.seconds, 3), "load_seconds": round(load_seconds, 3),
                    "inputs_per_second": round(summary.total / max(summary.seconds - load_seconds, 1e-9), 3)},
        "exit_code": int(summary.exit_code),
    }
    atomic.write_json(Path(cfg.out) / "run.json", run, Path(cfg.out))
