"""The pipeline at the model's pace: end to end against compute only, stage by stage, in one process.

    python bench/pipeline_bench.py --inputs 128 --rounds 3 --threads 1
    python bench/pipeline_bench.py --methods saliency --inputs 256 --out bench/results/e2e-DATE

Three timings per method, interleaved round by round on the same generated JPEGs and the same
seeded resnet18 (224² input, batch 8):

- ``compute``: ``Method.explain`` on a preloaded batch, targets known (bench.py's compute only);
- ``stream``: ``runner.results`` of a prepared session, iterated: decode in the loader's worker,
  predict + explain + statistics in the engine, nothing written (the model load is excluded);
- ``e2e``: ``api.run`` with the files sink (PNG + record + manifest), run.json's
  ``inputs_per_second`` (model load excluded, loader start-up included).

For stream and e2e the main thread's time is split with Linux's schedstat into CPU, waiting
for a core (runqueue: the box's load, and our own loader and writer threads) and blocked
(waiting for the loader, the GIL or I/O): on a shared box that tells the pipeline's own
stalls apart from the load. Ratios are taken within one run; medians over the rounds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # xai_cli from a plain checkout

from common import SIZES, build_cnn, cpu_model, save_report, write_jpegs  # noqa: E402
from xai_runs import CASES, end_to_end, method_runner, preload, register_model  # noqa: E402


def main_thread_times() -> tuple[float, float]:
    """(CPU seconds, seconds waiting for a core) of the calling thread so far (Linux schedstat)."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as f:
            cpu, wait, _ = f.read().split()
        return int(cpu) / 1e9, int(wait) / 1e9
    except OSError:
        return time.thread_time(), 0.0


def split(run) -> dict:
    """``run()``'s wall seconds and the calling thread's CPU / runqueue / blocked shares of them."""
    c0, w0 = main_thread_times()
    t = time.perf_counter()
    value = run()
    wall = time.perf_counter() - t
    c1, w1 = main_thread_times()
    return {"value": value, "wall": wall, "cpu": c1 - c0, "runq": w1 - w0, "blocked": wall - (c1 - c0) - (w1 - w0)}


def config(spec: str, files: list[Path], method: str, out: Path):
    from xai_cli.config import build_config

    return build_config(None, {"model": spec, "inputs": tuple(files), "out": out, "methods": (method,),
                               "batch_size": SIZES["medium"].batch, "device": "cpu", "force": True})


def stream(spec: str, files: list[Path], method: str) -> dict:
    from xai_cli import runner

    with tempfile.TemporaryDirectory(prefix="xai-bench-stream-") as out:
        session = runner.prepare(config(spec, files, method, Path(out)))
        s = split(lambda: sum(1 for _ in runner.results(session)))
    return {**s, "img_s": len(files) / s["wall"]}


def e2e(spec: str, files: list[Path], method: str) -> dict:
    size = SIZES["medium"]
    s = split(lambda: end_to_end(spec, files, CASES[method], size, torch.device("cpu")))
    t = s["value"]["timings"]
    # run.json's rate excludes the model load; so do the thread shares, pro rata.
    share = (t["total_seconds"] - t["load_seconds"]) / t["total_seconds"]
    return {**{k: v * share for k, v in s.items() if k != "value"}, "img_s": s["value"]["inputs_per_second"]}


def compute(run, x: torch.Tensor, targets: torch.Tensor) -> dict:
    s = split(lambda: run(x, targets))
    return {**s, "img_s": x.shape[0] / s["wall"]}


def bench(methods: list[str], n: int, rounds: int) -> dict:
    size = SIZES["medium"]
    files = write_jpegs(Path(tempfile.gettempdir()) / "xai-bench-pipeline", n, size.photo)
    model = build_cnn(size.cnn)
    spec = register_model(size.cnn, model, size.side)
    x = preload(spec, files, torch.device("cpu"))
    with torch.no_grad():
        targets = torch.cat([model(x[s:s + size.batch]).argmax(1) for s in range(0, n, size.batch)])
    from xai_cli import console

    console.configure(quiet=True)
    runners = {m: method_runner(CASES[m], size, model) for m in methods}
    for m in methods:  # warm-up: the layer search, oneDNN's kernels, the loader's first fork
        runners[m](x[:size.batch], targets[:size.batch])
        stream(spec, files[:2 * size.batch], m)
    loads = [os.getloadavg()[0]]
    runs: dict[str, dict[str, list[dict]]] = {m: {"compute": [], "stream": [], "e2e": []} for m in methods}
    for r in range(rounds):
        for m in methods:
            runs[m]["compute"].append(compute(runners[m], x, targets))
            runs[m]["stream"].append(stream(spec, files, m))
            runs[m]["e2e"].append(e2e(spec, files, m))
            loads.append(os.getloadavg()[0])
            c, s, e = (runs[m][k][-1]["img_s"] for k in ("compute", "stream", "e2e"))
            print(f"round {r + 1} {m}: compute {c:.2f} stream {s:.2f} ({s / c:.2f}x) e2e {e:.2f} ({e / c:.2f}x) "
                  f"img/s, load {loads[-1]:.2f}", file=sys.stderr, flush=True)
    rows = {}
    for m, by in runs.items():
        med = {k: statistics.median(v["img_s"] for v in vs) for k, vs in by.items()}
        ratios = {k: [by[k][i]["img_s"] / by["compute"][i]["img_s"] for i in range(rounds)] for k in ("stream", "e2e")}
        rows[m] = {"img_s": med, "img_s_rounds": {k: [v["img_s"] for v in vs] for k, vs in by.items()},
                   "ratio_of_medians": {k: med[k] / med["compute"] for k in ("stream", "e2e")},
                   "ratio_rounds": ratios,
                   "ms_per_input": {k: {part: 1000 * statistics.median(v[part] for v in vs) / n
                                        for part in ("wall", "cpu", "runq", "blocked")} for k, vs in by.items()}}
    return {"date": dt.datetime.now().isoformat(timespec="seconds"), "machine": cpu_model(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "inputs": n, "rounds": rounds, "model": f"{size.cnn} {size.side}²",
            "batch": size.batch, "load_average": {"min": min(loads), "max": max(loads), "seen": loads}, "rows": rows}


def markdown(report: dict) -> str:
    lines = [f"# Pipeline against compute only: {report['machine']}", "",
             f"{report['date']} · {report['model']}, batch {report['batch']}, {report['inputs']} inputs, "
             f"{report['rounds']} interleaved rounds (medians) · {report['cores']} cores, torch threads "
             f"{report['torch_threads']} · load average {report['load_average']['min']:.1f}–"
             f"{report['load_average']['max']:.1f}", "",
             "| method | compute img/s | stream img/s | e2e img/s | stream / compute | e2e / compute | "
             "e2e / compute per round |", "|---|---|---|---|---|---|---|"]
    for m, r in report["rows"].items():
        i, q = r["img_s"], r["ratio_of_medians"]
        per = ", ".join(f"{v:.2f}" for v in r["ratio_rounds"]["e2e"])
        lines.append(f"| {m} | {i['compute']:.2f} | {i['stream']:.2f} | {i['e2e']:.2f} | {q['stream']:.2f} | "
                     f"{q['e2e']:.2f} | {per} |")
    lines += ["", "Main thread per input (ms, medians): wall = CPU + waiting for a core + blocked (loader, GIL, I/O)",
              "", "| method | stage | wall | CPU | runqueue | blocked |", "|---|---|---|---|---|---|"]
    for m, r in report["rows"].items():
        for k, v in r["ms_per_input"].items():
            lines.append(f"| {m} | {k} | {v['wall']:.1f} | {v['cpu']:.1f} | {v['runq']:.1f} | {v['blocked']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default="gradcam,saliency,guided_backprop")
    ap.add_argument("--inputs", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: the model on one core, the "
                    "pipeline's decode and writer on the other)")
    ap.add_argument("--out", type=Path, default=None, help="stem of the .md/.json to save")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    report = bench([m.strip() for m in args.methods.split(",")], args.inputs, args.rounds)
    text = markdown(report)
    print(text)
    if args.out is not None:
        save_report(args.out, report, text)


if __name__ == "__main__":
    main()
