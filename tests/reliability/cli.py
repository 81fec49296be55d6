"""Running ``xai`` as a cron job would: a subprocess, with this checkout on its path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).parents[2]


def env() -> dict:
    """The environment of a CLI subprocess: this checkout first on its path, no network."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [e.get("PYTHONPATH")])])
    e.setdefault("XAI_OFFLINE", "1")
    return e


def xai_cmd(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "xai_cli", *map(str, args)]


def explain_cmd(inputs, out, *extra) -> list[str]:
    return xai_cmd("explain", "--model", "resnet18", "--weights", "none", "--workers", "0", "--batch-size", "4",
                   "--format", "json", *(inputs if isinstance(inputs, list) else [inputs]), "--out", out, *extra)


def run(cmd: list[str], timeout: int = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env(), **kw)


def images(root: Path, names: list[str], seed: int = 0, size: int = 48) -> Path:
    rng = np.random.default_rng(seed)
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        fmt = "PNG" if name.lower().endswith(".png") else None
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / name, format=fmt or "JPEG")
    return root


def manifest(out: Path) -> list[dict]:
    path = out / "manifest.jsonl"
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
