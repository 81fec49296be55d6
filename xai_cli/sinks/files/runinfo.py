"""The run's summary: what ``--format json`` prints and ``run.json`` records."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from xai_cli import __version__
from xai_cli.errors import ExitCode
from xai_cli.outputs import atomic
from xai_cli.summary import SCHEMA_VERSION


@dataclass
class RunSummary:
    """Counts and timings of a run.

    ``ok`` counts inputs explained now plus those resumed (``skipped``: already complete).
    ``stopped`` is set when the run ended early: "SIGINT"/"SIGTERM", or "max-failures".
    """

    out: str
    total: int = 0
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    stopped: str | None = None
    failures: list[dict] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        if self.stopped in ("SIGINT", "SIGTERM"):
            return ExitCode.INTERRUPTED
        return ExitCode.INPUTS_FAILED if self.failed else ExitCode.OK

    @property
    def not_done(self) -> int:
        return self.total - self.ok - self.failed

    def count(self, lines: list[dict]) -> None:
        for line in lines:
            if line["status"] == "ok":
                self.ok += 1
                self.skipped += bool(line.get("resumed"))
            else:
                self.failed += 1
                self.failures.append({"input": line["input"], "reason": line.get("reason", "")})

    def to_dict(self) -> dict:
        return {"out": self.out, "total": self.total, "ok": self.ok, "skipped": self.skipped, "failed": self.failed,
                "not_done": self.not_done, "stopped": self.stopped, "seconds": round(self.seconds, 3),
                "device": self.device, "exit_code": int(self.exit_code), "failures": self.failures}


def write_run_json(out: Path, *, config: dict, config_key: str, model: dict, summary: RunSummary, device,
                   started: datetime, timings: dict, oom_splits: int) -> None:
    import torch
    import torchvision

    versions = {"xai": __version__, "python": platform.python_version(), "torch": torch.__version__,
                "torchvision": torchvision.__version__}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    run = {
        "schema_version": SCHEMA_VERSION,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "config_key": config_key,
        "model": model,
        "versions": versions,
        "device": {"type": device.type, "name": name},
        "counts": {"total": summary.total, "ok": summary.ok, "skipped": summary.skipped, "failed": summary.failed,
                   "not_done": summary.not_done},
        "stopped": summary.stopped,
        "oom_batch_splits": oom_splits,
        "timings": {k: round(v, 3) if isinstance(v, float) else v for k, v in timings.items()},
        "exit_code": int(summary.exit_code),
    }
    atomic.write_json(out / "run.json", run, out)
