"""``run.json``: the configuration, versions, device, counts, timings and ending of a run."""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from pathlib import Path

from xai_cli import __version__
from xai_cli.core.results import RunInfo, RunSummary
from xai_cli.sinks.files import atomic
from xai_cli.sinks.files.records import SCHEMA_VERSION


def write_run_json(out: Path, run: RunInfo, summary: RunSummary) -> None:
    import torch
    import torchvision

    versions = {"xai": __version__, "python": platform.python_version(), "torch": torch.__version__,
                "torchvision": torchvision.__version__}
    device = torch.device(run.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    doc = {
        "schema_version": SCHEMA_VERSION,
        "started": run.started.isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": run.config.to_dict(),
        "config_key": run.config_key,
        "model": run.model,
        "versions": versions,
        "device": {"type": device.type, "name": name, "precision": run.config.precision},
        "counts": {"total": summary.total, "ok": summary.ok, "skipped": summary.skipped, "failed": summary.failed,
                   "not_done": summary.not_done, "not_walked": summary.not_walked},
        "stopped": summary.stopped,
        "oom_batch_splits": summary.oom_splits,
        "timings": {k: round(v, 3) if isinstance(v, float) else v for k, v in summary.timings.items()},
        "warnings": summary.warnings,
        "exit_code": int(summary.exit_code),
    }
    atomic.write_json(out / "run.json", doc, out)
