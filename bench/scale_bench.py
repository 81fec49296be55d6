"""Scaling on this machine, in one run: inputs/s with 1 and 2 engine processes, and Ray's overhead.

    python bench/scale_bench.py [--inputs 48] [--method ig] [--out bench/results]

Every row explains the same generated digit pictures with demo-digits into a fresh folder:
``local-1`` (one process, all cores), ``local-2`` (``--device cpu,cpu``: two engine processes,
one thread each), ``ray-2`` (``--backend ray``, two actors, on a local Ray instance started
before the clock). inputs/s counts the run after the model load (``timings`` in run.json); the
Ray overhead per input is (ray-2 seconds - local-2 seconds) / inputs: both use two engines, so
the difference is what Ray's tasks, object store and actor start add. Results go to
``OUT/scale-<date>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parents[1]))

from xai_cli import api  # noqa: E402
from xai_cli.config import build_config  # noqa: E402

DIGITS = Path(__file__).parents[1] / "sample_images" / "digits"


def make_inputs(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    src = sorted(DIGITS.glob("*.png"))
    root.mkdir(parents=True)
    for i in range(n):
        a = np.asarray(Image.open(src[i % len(src)]).convert("RGB")).astype(np.int16)
        Image.fromarray(np.clip(a + rng.integers(-20, 20, a.shape), 0, 255).astype(np.uint8)).save(root / f"x{i:04d}.png")
    return root


def timed(name: str, imgs: Path, work: Path, method: str, batch: int, **kw) -> dict:
    cfg = build_config(None, {"model": "demo-digits", "methods": (method,), "inputs": (imgs,), "out": work / name,
                              "workers": 1, "batch_size": batch, **kw})
    t = time.perf_counter()
    summary = api.run(cfg)
    wall = time.perf_counter() - t
    assert summary.ok == summary.total and not summary.failed, summary.to_dict()
    load = summary.timings.get("load_seconds", 0.0)
    return {"row": name, "inputs": summary.total, "wall_seconds": round(wall, 2), "load_seconds": round(load, 2),
            "inputs_per_second": round(summary.total / max(wall - load, 1e-9), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=48)
    ap.add_argument("--method", default="ig")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--no-ray", action="store_true", help="Leave out the Ray row.")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        imgs = make_inputs(work / "imgs", a.inputs)
        rows.append(timed("local-1", imgs, work, a.method, a.batch_size, device="cpu"))
        rows.append(timed("local-2", imgs, work, a.method, a.batch_size, device="cpu,cpu"))
        ray_init = None
        if not a.no_ray:
            import ray

            t = time.perf_counter()
            ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
            ray_init = round(time.perf_counter() - t, 2)
            try:
                rows.append(timed("ray-2", imgs, work, a.method, a.batch_size, device="cpu,cpu", backend="ray"))
            finally:
                ray.shutdown()
    by = {r["row"]: r for r in rows}
    result = {
        "date": date.today().isoformat(), "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
        "method": a.method, "batch_size": a.batch_size, "rows": rows, "ray_init_seconds": ray_init,
        "speedup_2_over_1": round(by["local-2"]["inputs_per_second"] / by["local-1"]["inputs_per_second"], 2),
    }
    if "ray-2" in by:
        result["ray_overhead_ms_per_input"] = round(
            1000 * (by["ray-2"]["wall_seconds"] - by["local-2"]["wall_seconds"]) / a.inputs, 1)
    a.out.mkdir(parents=True, exist_ok=True)
    stem = a.out / f"scale-{result['date']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Scaling, {result['date']} ({result['machine']}; {a.inputs} inputs, {a.method}, batch {a.batch_size})", "",
             "| row | inputs/s | wall s | load s |", "|---|---|---|---|"]
    lines += [f"| {r['row']} | {r['inputs_per_second']} | {r['wall_seconds']} | {r['load_seconds']} |" for r in rows]
    lines += ["", f"2 engine processes / 1: x{result['speedup_2_over_1']}"]
    if "ray_overhead_ms_per_input" in result:
        lines += [f"Ray over 2 local engine processes: {result['ray_overhead_ms_per_input']} ms per input "
                  f"(ray.init {ray_init} s, not counted)"]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
