"""The golden outputs of the demo quickstarts: records (timings and paths aside) and PNG digests.

``python -m tests.golden.golden`` rewrites ``tests/golden/*.json`` from the current code; do that
only when a change means to alter the outputs, and say so in the commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
CASES = {
    "demo_image": ["--model", "demo-digits", "--method", "gradcam", str(ROOT / "sample_images" / "digits")],
    "demo_text": ["--model", "demo-text", "--method", "ig,shap,lime", str(ROOT / "sample_texts")],
}
VOLATILE = {"seconds", "path"}  # timings, and absolute input paths that depend on the checkout


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _pixels_sha256(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as img:
        return hashlib.sha256(f"{img.mode} {img.size}".encode() + img.tobytes()).hexdigest()


def snapshot(out: Path) -> dict:
    """{record name: stripped record} and {png name: sha256 of its pixels} for every file of a run
    (the decoded pixels, mode and size: the same picture however the PNG encoder packs it)."""
    records = {str(p.relative_to(out)): _strip(json.loads(p.read_text()))
               for p in sorted(out.rglob("*.json")) if p.name != "run.json"}
    pngs = {str(p.relative_to(out)): _pixels_sha256(p) for p in sorted(out.rglob("*.png"))}
    manifest = [_strip(json.loads(line)) for line in (out / "manifest.jsonl").read_text().splitlines()]
    return {"records": records, "pngs": pngs, "manifest": manifest}


def run_case(name: str, out: Path) -> dict:
    from typer.testing import CliRunner

    from xai_cli.cli import app

    result = CliRunner().invoke(app, ["explain", *CASES[name], "--out", str(out), "--quiet", "--workers", "0"])
    assert result.exit_code == 0, result.output
    return snapshot(out)


if __name__ == "__main__":
    import tempfile

    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            (HERE / f"{case}.json").write_text(json.dumps(run_case(case, Path(tmp) / "out"), indent=1, sort_keys=True) + "\n")
            print(f"wrote {case}.json", file=sys.stderr)
