"""``run.json``: the configuration, versions, device, counts, timings and ending of a run."""

from __future__ import annotations

import platform
import socket
from datetime import datetime, timezone
from pathlib import Path

from xai_cli import __version__
from xai_cli.core.results import RunInfo, RunSummary
from xai_cli.sinks.files import atomic
from xai_cli.sinks.files.records import SCHEMA_VERSION


def write_run_json(out: Path, run: RunInfo, summary: RunSummary, colour_ranges: dict | None = None,
                   name: str = "run.json") -> None:
    import torch
    import torchvision

    versions = {"xai": __version__, "python": platform.python_version(), "torch": torch.__version__,
                "torchvision": torchvision.__version__}
    first = run.device.split(",")[0]  # several devices (cuda:0,cuda:1): per-device counts are in "devices"
    if first == "ray":
        kind, label = "ray", "a Ray actor pool"
    else:
        device = torch.device(first)
        kind = device.type
        label = torch.cuda.get_device_name(device) if kind == "cuda" else (platform.processor() or platform.machine())
    doc = {
        "schema_version": SCHEMA_VERSION,
        "started": run.started.isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": run.config.to_dict(),
        "config_key": run.config_key,
        "model": run.model,
        "versions": versions,
        "device": {"type": kind, "name": label, "precision": run.config.precision, **({"spec": run.device} if run.device != first else {})},
        "counts": {"total": summary.total, "ok": summary.ok, "skipped": summary.skipped, "failed": summary.failed,
                   "not_done": summary.not_done, "not_walked": summary.not_walked,
                   "degenerate_maps": summary.degenerate_maps, "tied_predictions": summary.tied_predictions,
                   "warnings": len(summary.warnings)},
        "stopped": summary.stopped,
        "oom_batch_splits": summary.oom_splits,
        "timings": {k: round(v, 3) if isinstance(v, float) else v for k, v in summary.timings.items()},
        "warnings": summary.warnings,
        "colour_ranges": {m: list(r) for m, r in colour_ranges.items()} if colour_ranges is not None else None,
        "exit_code": int(summary.exit_code),
    }
    if summary.devices:
        doc["devices"] = summary.devices  # one entry per engine process: its device, inputs and OOM splits
    if run.shard is not None:
        doc["shard"], doc["host"] = run.shard.to_dict(), socket.gethostname()
    atomic.write_json(out / name, doc, out)
