"""`xai report` at scale: build time and first-page time for a synthetic run of N inputs.

    python bench/report_bench.py --n 100000            # writes the run under /tmp, prints the times
    python bench/report_bench.py --n 100000 --no-thumbnails

The synthetic run has today's run-folder format: manifest.jsonl, one record per input (3
methods, top-5 prediction, per-entry audit metrics), 1 % failed inputs, and the heatmap PNGs
(hard links to three small pictures, so the disk holds them once). First-page time is measured
in Debian's Chromium through playwright, from navigation start to the first card on screen.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

METHODS = ("gradcam", "ig", "saliency")


def synthetic_run(out: Path, n: int, seed: int = 0, fail_every: int = 100) -> Path:
    """Write a run folder of ``n`` inputs (explain's format) and return it."""
    from PIL import Image

    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    def picture(m: str, i: int) -> Path:  # a new source every 50,000 links (ext4 allows 65,000 per file)
        src = out / f".src.{m}.{i // 50_000}.png"
        if not src.exists():
            k = METHODS.index(m)
            Image.new("RGB", (169, 136), (40 + 60 * k, 90, 200 - 50 * k)).save(src)
        return src
    original = out / ".src.input.png"
    Image.new("RGB", (96, 96), (200, 120, 40)).save(original)
    labels = [f"class_{c}" for c in range(20)]
    with open(out / "manifest.jsonl", "w") as manifest:
        for i in range(n):
            sub = f"d{i // 1000:03d}"
            stem = f"{sub}/img_{i:06d}"
            name = f"{stem}.png"
            if i % fail_every == fail_every - 1:
                manifest.write(json.dumps({"input": name, "status": "error", "reason": "not a decodable image (synthetic)", "record": f"{stem}.json", "outputs": []}) + "\n")
                continue
            (out / sub).mkdir(exist_ok=True)
            probs = sorted((rng.random() for _ in range(5)), reverse=True)
            classes = rng.sample(range(len(labels)), 5)
            prediction = [{"rank": r + 1, "index": c, "label": labels[c], "probability": p / sum(probs)} for r, (c, p) in enumerate(zip(classes, probs))]
            methods = {}
            for m in METHODS:
                png = f"{stem}.{m}.png"
                os.link(picture(m, i), out / png)
                methods[m] = [{
                    "target": prediction[0], "params": {}, "layer": None, "png": png, "raw": None, "seconds": 0.01,
                    "stats": {"min": 0.0, "max": rng.random(), "mean": rng.random() / 10, "top10_mass": rng.random(), "finite": True, "peak_xy": [10.0, 20.0]},
                    "details": {}, "metrics": {"deletion_auc": rng.random(), "insertion_auc": rng.random()},
                }]
            record = {"schema_version": "1.0", "status": "ok", "input": {"path": str(original), "rel": name, "size": [96, 96], "mode": "RGB"},
                      "model": {"name": "synthetic"}, "prediction": prediction, "methods": methods}
            with open(out / f"{stem}.json", "w") as f:
                json.dump(record, f)
            outputs = [f"{stem}.{m}.png" for m in METHODS]
            manifest.write(json.dumps({"input": name, "status": "ok", "record": f"{stem}.json", "outputs": outputs}) + "\n")
    (out / "run.json").write_text(json.dumps({"model": {"name": "synthetic"}, "config": {"methods": list(METHODS)}}))
    return out


def first_page_seconds(index_html: Path, repeats: int = 3) -> list[float]:
    """Seconds from navigation start to the first page of cards on screen, in headless Chromium."""
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(index_html.as_uri(), wait_until="commit")
            page.wait_for_selector(".card", timeout=30_000)
            times.append(page.evaluate("performance.now()") / 1000)
            page.close()
        browser.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--run", type=Path, default=None, help="Run folder (default /tmp/xai-report-bench-N); made when missing.")
    ap.add_argument("--no-thumbnails", action="store_true")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from xai_cli.report import build_report

    run = args.run or Path(f"/tmp/xai-report-bench-{args.n}")
    if not (run / "manifest.jsonl").is_file():
        t = time.perf_counter()
        synthetic_run(run, args.n)
        print(f"synthetic run of {args.n} inputs written in {time.perf_counter() - t:.1f} s: {run}")
    shutil.rmtree(run / "report", ignore_errors=True)
    for label in ("first build", "rebuild (thumbnails reused)"):
        t = time.perf_counter()
        index = build_report(run, thumbnails=not args.no_thumbnails, workers=args.workers)
        print(f"{label}: {time.perf_counter() - t:.1f} s")
    size = sum(f.stat().st_size for f in (run / "report" / "data").rglob("*.js"))
    print(f"data: {(run / 'report' / 'data' / 'index.js').stat().st_size / 1e6:.1f} MB index, {size / 1e6:.1f} MB in all")
    times = first_page_seconds(index)
    print("first page on screen: " + ", ".join(f"{s:.2f} s" for s in times) + f" (Chromium, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
