"""bf16 against fp32: the maps' fidelity and the speed-up, per method, on the bench inputs.

    python bench/fidelity.py --size medium --threads 2      # resnet18 224², the bench's JPEGs
    python bench/fidelity.py --size small --methods gradcam,ig

For each method, xai's ``Method.explain`` runs on the same preloaded batch twice per round,
fp32 (the model as built) and bf16 (a channels_last copy under ``core.precision``'s
autocast), rounds interleaved so a loaded box slows both alike. Reported: per-input Pearson r
of the bf16 map against the fp32 map (min and mean), IG's completeness error under both, the
top-1 agreement of the two precisions over ``--top1-inputs`` inputs, and the bf16/fp32 speed.
Bounds (issue 14): r ≥ 0.99, IG completeness < 5 %, top-1 unchanged on ≥ 99 % of inputs.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from common import IMAGENET_MEAN, IMAGENET_STD, SIZES, build_cnn, cpu_model, save_report, write_jpegs  # noqa: E402
from xai_runs import CASES, preload, register_model  # noqa: E402

BOUNDS = {"r": 0.99, "ig_completeness": 0.05, "top1": 0.99}
FAST = ("gradcam", "saliency", "guided_backprop")


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return 1.0 if np.allclose(a, b) else 0.0
    return float(np.corrcoef(a, b)[0, 1])


def runner(case_name: str, model, size, samples: int | None, precision: str):
    """``run(x, targets) -> (maps, details)`` of xai's method at ``precision``."""
    from xai_cli.core.precision import autocast_model, prepare_inputs
    from xai_cli.methods import Normalization, build_params, get_method

    case = CASES[case_name]
    params = case.params(size)
    if samples is not None:
        params = {**params, "steps" if case.method == "ig" else "n_samples": samples}
    cls = get_method(case.method, "image")
    method = cls(model, build_params(cls, params), Normalization(IMAGENET_MEAN, IMAGENET_STD))
    device = next(model.parameters()).device

    def run(x, targets):
        maps, details = [], []
        with autocast_model(model, precision, device):
            for s in range(0, x.shape[0], size.batch):
                xb = prepare_inputs(x[s:s + size.batch], precision)
                e = method.explain(xb, targets[s:s + size.batch], list(range(s, s + xb.shape[0])))
                maps.append(e.maps.float().cpu().numpy())
                details += e.details or [{}] * xb.shape[0]
        return np.concatenate(maps), details

    return run


def top1(models: dict, x: torch.Tensor, batch: int) -> dict:
    from xai_cli.core.precision import autocast_model, prepare_inputs

    out = {}
    for precision, model in models.items():
        with torch.no_grad(), autocast_model(model, precision, x.device):
            out[precision] = torch.cat([model(prepare_inputs(x[s:s + batch], precision)).argmax(1)
                                        for s in range(0, x.shape[0], batch)])
    return {"inputs": x.shape[0], "agree": float((out["fp32"] == out["bf16"]).float().mean())}


def measure_case(case_name: str, models: dict, size, x, targets, rounds: int, samples: int | None) -> dict:
    runs = {p: runner(case_name, m, size, samples, p) for p, m in models.items()}
    for p, run in runs.items():  # warm-up: one batch each
        run(x[:min(size.batch, 2)], targets[:min(size.batch, 2)])
    times = {p: [] for p in runs}
    results = {}
    for _ in range(rounds):
        for p, run in runs.items():
            t = time.perf_counter()
            results[p] = run(x, targets)
            times[p].append(time.perf_counter() - t)
    (m32, d32), (m16, d16) = results["fp32"], results["bf16"]
    rs = [pearson(a, b) for a, b in zip(m32, m16)]
    row = {"method": case_name, "inputs": x.shape[0], "samples": samples or CASES[case_name].samples(size),
           "r_min": min(rs), "r_mean": float(np.mean(rs)),
           "fp32_s_per_input": float(np.median(times["fp32"])) / x.shape[0],
           "bf16_s_per_input": float(np.median(times["bf16"])) / x.shape[0]}
    row["speedup"] = row["fp32_s_per_input"] / row["bf16_s_per_input"]
    if "completeness_error" in (d32[0] or {}):
        row["ig_completeness_fp32_max"] = max(d["completeness_error"] for d in d32)
        row["ig_completeness_bf16_max"] = max(d["completeness_error"] for d in d16)
    return row


def markdown(report: dict) -> str:
    t = report["top1"]
    lines = [f"# bf16 vs fp32 fidelity and speed: {report['cpu']}", "",
             f"{report['date']} · size `{report['size_name']}` · {report['model']} {report['side']}² · batch "
             f"{report['batch']} · torch threads {report['threads']} · rounds interleaved fp32/bf16: {report['rounds']}",
             "", f"Top-1 unchanged under bf16: {t['agree']:.1%} of {t['inputs']} inputs (bound ≥ 99 %)", "",
             "| method | inputs × samples | map r min | map r mean | IG completeness fp32 / bf16 (max) "
             "| fp32 s/input | bf16 s/input | bf16 speed-up | within bounds |", "|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        comp = (f"{r['ig_completeness_fp32_max']:.2%} / {r['ig_completeness_bf16_max']:.2%}"
                if "ig_completeness_bf16_max" in r else "-")
        ok = r["r_min"] >= BOUNDS["r"] and r.get("ig_completeness_bf16_max", 0) < BOUNDS["ig_completeness"]
        lines.append(f"| {r['method']} | {r['inputs']} × {r['samples'] or 1} | {r['r_min']:.4f} | {r['r_mean']:.4f} | "
                     f"{comp} | {r['fp32_s_per_input']:.3f} | {r['bf16_s_per_input']:.3f} | {r['speedup']:.2f}x | "
                     f"{'yes' if ok else 'NO'} |")
    lines += ["", *[f"- {n}" for n in report["notes"]]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--methods", default="gradcam,saliency,guided_backprop,ig,lime,shap,shap_gradient")
    p.add_argument("--threads", type=int)
    p.add_argument("--rounds", type=int, default=2, help="interleaved fp32/bf16 rounds for the one-pass methods")
    p.add_argument("--slow-inputs", type=int, default=2, help="inputs for ig, lime, shap")
    p.add_argument("--slow-samples", type=int, help="override lime/shap samples (default: the size's)")
    p.add_argument("--top1-inputs", type=int, default=128)
    p.add_argument("--note", action="append", default=[], help="a line for the report (e.g. the box's load)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    size, started = SIZES[args.size], dt.datetime.now()
    n = max(size.n_fast, args.top1_inputs)
    with tempfile.TemporaryDirectory(prefix="xai-fidelity-") as tmp:
        files = write_jpegs(Path(tmp), n, size.photo)
        fp32 = build_cnn(size.cnn)
        bf16 = copy.deepcopy(fp32).to(memory_format=torch.channels_last)
        spec = register_model(size.cnn, fp32, size.side)
        x = preload(spec, files, torch.device("cpu"))
    models = {"fp32": fp32, "bf16": bf16}
    with torch.no_grad():
        targets = torch.cat([fp32(x[s:s + size.batch]).argmax(1) for s in range(0, n, size.batch)])
    rows = []
    for c in [c.strip() for c in args.methods.split(",") if c.strip()]:
        print(f"measuring {c} ...", file=sys.stderr, flush=True)
        k = size.n_fast if c in FAST else args.slow_inputs
        samples = args.slow_samples if c in ("lime", "shap", "shap_gradient") and args.slow_samples else None
        rows.append(measure_case(c, models, size, x[:k], targets[:k], args.rounds if c in FAST else 1, samples))
    cpu = cpu_model()
    report = {"date": started.isoformat(timespec="seconds"), "size_name": args.size, "model": size.cnn,
              "side": size.side, "batch": size.batch, "threads": torch.get_num_threads(), "rounds": args.rounds,
              "cpu": cpu, "top1": top1(models, x, size.batch), "rows": rows, "bounds": BOUNDS,
              "notes": ["weights: seeded random init (no pretrained weights offline); inputs: the bench's generated JPEGs",
                        *args.note]}
    text = markdown(report)
    print(text)
    save_report(args.out / f"fidelity-cpu-{args.size}-{started:%Y-%m-%d}", report, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
