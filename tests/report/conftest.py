"""Real runs to report on (made through the CLI), and a headless Chromium to look at them.

The browser tests need Debian's chromium and the playwright package. Without them they skip,
saying how to install them; with CI=true (as .ci/run sets up) they fail instead of skipping.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xai_cli.cli import app

ROOT = Path(__file__).parents[2]
CHROMIUM = os.environ.get("XAI_CHROMIUM", "/usr/bin/chromium")
INSTALL = "apt-get install -y chromium && pip install playwright (or pip install -e '.[dev]')"


def explain(args: list[str]) -> None:
    result = CliRunner().invoke(app, ["explain", *args, "--workers", "0", "-q"])
    assert result.exit_code in (0, 1), result.output


@pytest.fixture(scope="session")
def image_run(tmp_path_factory) -> Path:
    """Six digits explained with gradcam and saliency, plus two inputs that fail."""
    inputs = tmp_path_factory.mktemp("digits")
    for src in sorted((ROOT / "sample_images" / "digits").glob("*.png"))[:6]:
        shutil.copy(src, inputs / src.name)
    (inputs / "broken.png").write_text("not an image")
    (inputs / "truncated.png").write_bytes((ROOT / "sample_images" / "digits" / "digit_06_label_6.png").read_bytes()[:100])
    out = tmp_path_factory.mktemp("image-run")
    explain(["--model", "demo-digits", "--method", "gradcam,saliency", str(inputs), "--out", str(out)])
    return out


@pytest.fixture(scope="session")
def text_run(tmp_path_factory) -> Path:
    """Three texts explained with ig and saliency."""
    inputs = tmp_path_factory.mktemp("texts")
    for name in ("hotel.txt", "camera.txt", "kettle.txt"):
        shutil.copy(ROOT / "sample_texts" / name, inputs / name)
    out = tmp_path_factory.mktemp("text-run")
    explain(["--model", "demo-text", "--method", "ig,saliency", str(inputs), "--out", str(out)])
    return out


@pytest.fixture(scope="session")
def audit_compare_run(image_run, tmp_path_factory) -> Path:
    """The image run plus an audit.json and a compare.json as the audit/compare commands describe them."""
    out = tmp_path_factory.mktemp("audit-run")
    shutil.copytree(image_run, out, dirs_exist_ok=True)
    shutil.rmtree(out / "report", ignore_errors=True)
    ok = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    ok = [e["input"] for e in ok if e["status"] == "ok"]
    (out / "audit.json").write_text(json.dumps({
        "methods": {"gradcam": {"insertion_auc": {"mean": 0.61, "median": 0.6, "p10": 0.4, "ci": [0.55, 0.67], "n": len(ok)}},
                    "saliency": {"insertion_auc": {"mean": 0.31, "median": 0.3, "p10": 0.2, "ci": [0.25, 0.37], "n": len(ok)}}},
        "checks": [
            {"method": "gradcam", "metric": "insertion_auc", "limit": "min 0.5", "passed": True, "severity": "fail", "message": "0.61 ≥ 0.5"},
            {"method": "saliency", "metric": "insertion_auc", "limit": "min 0.5", "passed": False, "severity": "fail", "message": "0.31 < 0.5"},
        ],
        "inputs": [{"input": name, "methods": {"gradcam": {"insertion_auc": 0.5 + k / 20}}} for k, name in enumerate(ok)],
    }))
    (out / "compare.json").write_text(json.dumps({
        "aggregates": {"spearman": {"mean": 0.8}, "flip_rate": {"mean": 1 / len(ok)}},
        "inputs": [{"input": name, "spearman": 1 - k / 10, "iou": 0.9 - k / 20, "flipped": k == 2,
                    "region_share_a": 0.1, "region_share_b": 0.1 + k / 10,
                    "picture": f"{Path(name).stem}.gradcam.png"}  # stands in for the A | B | difference picture
                   for k, name in enumerate(ok)],
    }))
    return out


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} is missing")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _missing(what: str):
    message = f"browser tests need Chromium: {what}; install with: {INSTALL}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: these tests must run)")
    pytest.skip(message)


class Page:
    """A page of the report, with everything it logged and every request it made."""

    def __init__(self, browser, index: Path, width: int = 1280) -> None:
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: m.type in ("error", "warning") and self.errors.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))
        self.page.goto(index.as_uri())
        self.page.wait_for_selector("body[data-ready]")

    def rows(self) -> list[int]:
        return [int(x) for x in self.page.eval_on_selector_all("#grid .card", "cs => cs.map(c => c.dataset.row)")]

    def texts(self, selector: str) -> list[str]:
        return self.page.eval_on_selector_all(selector, "es => es.map(e => e.textContent)")


@pytest.fixture
def open_page(browser):
    pages = []

    def make(index: Path, width: int = 1280) -> Page:
        pages.append(Page(browser, index, width))
        return pages[-1]

    yield make
    for p in pages:
        p.page.close()
