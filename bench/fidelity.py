"""bf16 against fp32: each method's map fidelity and speed-up per arithmetic, and the policy's choice.

    python bench/fidelity.py --size medium --threads 2      # resnet18 224², the bench's JPEGs
    python bench/fidelity.py --size small --methods gradcam,ig
    python bench/fidelity.py --model demo-digits            # the trained demo model, its sample digits

For each method, xai's ``Method.explain`` runs on the same preloaded batch at fp32 (the model
as built) and at each arithmetic, rounds interleaved so a loaded box slows them alike:

- ``autocast``: every layer under bf16 autocast, logits included (``--precision bf16`` before
  the per-method policy; kept here to measure what the fp32 islands buy);
- ``bf16``: autocast with the classifier head in fp32 (``core.precision``);
- ``bf16-hires-fp32``: also the layers at half the input's side or more in fp32 (gradient methods).

With ``--noise-row``, a reference row too: fp32 on the inputs plus uniform noise of half a grey
level (±0.5/255, below the JPEG's own quantisation), i.e. how far the fp32 map itself moves
under a perturbation the input cannot even represent.

Reported per row: per-input Pearson r of the map against the fp32 map (min and mean), IG's
completeness error, seconds per input and the speed-up over fp32; the row of the arithmetic
the method's policy picks (``Method.bf16_policy``) is marked. Also the top-1 agreement of the
prediction's arithmetic with fp32 over ``--top1-inputs`` inputs, and the model's own forward +
backward throughput per arithmetic and weight layout (the ceiling of every gradient method).
Bounds (issue 14): r ≥ 0.99, IG completeness < 5 %, top-1 unchanged on ≥ 99 % of inputs.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from unittest import mock

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from common import IMAGENET_MEAN, IMAGENET_STD, SIZES, build_cnn, cpu_model, save_report, write_jpegs  # noqa: E402
from xai_runs import CASES, preload, register_model  # noqa: E402

BOUNDS = {"r": 0.99, "ig_completeness": 0.05, "top1": 0.99}
FAST = ("gradcam", "saliency", "guided_backprop")
GRADIENT = ("saliency", "guided_backprop", "ig", "shap_gradient")  # input gradients: the hires islands matter
ROOT = Path(__file__).resolve().parent.parent


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return 1.0 if np.allclose(a, b) else 0.0
    return float(np.corrcoef(a, b)[0, 1])


@contextmanager
def at(model, arithmetic: str, device: torch.device):
    """``model`` at ``arithmetic``: fp32, a key of ``core.precision.ARITHMETIC``, or ``autocast``."""
    from xai_cli.core.precision import autocast_model

    if arithmetic == "autocast":  # no fp32 islands at all
        with mock.patch("xai_cli.core.precision.fp32_islands", lambda *a: []), autocast_model(model, "bf16", device):
            yield
    else:
        with autocast_model(model, arithmetic, device):
            yield


def make_method(case_name: str, model, size, samples: int | None, norm):
    from xai_cli.methods import build_params, get_method

    case = CASES[case_name]
    params = case.params(size)
    if samples is not None:
        params = {**params, "steps" if case.method == "ig" else "n_samples": samples}
    cls = get_method(case.method, "image")
    return cls(model, build_params(cls, params), norm)


def runner(method, model, batch: int, arithmetic: str):
    """``run(x, targets) -> (maps, details)`` of ``method`` at ``arithmetic``."""
    from xai_cli.core.precision import prepare_inputs

    device = next(model.parameters()).device
    layout = "fp32" if arithmetic == "fp32" else "bf16"

    def run(x, targets):
        maps, details = [], []
        with at(model, arithmetic, device) if arithmetic != "fp32" else nullcontext():
            for s in range(0, x.shape[0], batch):
                xb = prepare_inputs(x[s:s + batch], layout)
                e = method.explain(xb, targets[s:s + batch], list(range(s, s + xb.shape[0])))
                maps.append(e.maps.float().cpu().numpy())
                details += e.details or [{}] * xb.shape[0]
        return np.concatenate(maps), details

    return run


def top1(model, x: torch.Tensor, batch: int, arithmetics: tuple[str, ...]) -> dict:
    from xai_cli.core.precision import prepare_inputs

    out = {}
    for a in ("fp32", *arithmetics):
        with torch.no_grad(), at(model, a, x.device) if a != "fp32" else nullcontext():
            out[a] = torch.cat([model(prepare_inputs(x[s:s + batch], "fp32" if a == "fp32" else "bf16")).argmax(1)
                                for s in range(0, x.shape[0], batch)])
    return {"inputs": x.shape[0], **{a: float((out["fp32"] == out[a]).float().mean()) for a in arithmetics}}


def ceilings(model, x: torch.Tensor, targets: torch.Tensor, rounds: int) -> dict:
    """Forward + backward to the input, img/s, per arithmetic and weight layout, rounds interleaved."""
    from xai_cli.core.precision import prepare_inputs

    cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    variants = {"fp32": (model, "fp32"), "fp32, channels_last weights + inputs": (cl_model, "fp32-cl"),
                "autocast": (model, "autocast"), "autocast, channels_last weights": (cl_model, "autocast"),
                "bf16": (model, "bf16"), "bf16-hires-fp32": (model, "bf16-hires-fp32")}

    def once(m, a):
        xx = prepare_inputs(x, "fp32" if a == "fp32" else "bf16").detach().requires_grad_(True)
        with at(m, a, x.device) if a not in ("fp32", "fp32-cl") else nullcontext(), torch.enable_grad():
            score = m(xx).gather(1, targets[:, None]).sum()
        torch.autograd.grad(score, xx)

    times = {k: [] for k in variants}
    for m, a in variants.values():
        once(m, a)
    for _ in range(rounds):
        for k, (m, a) in variants.items():
            t = time.perf_counter()
            once(m, a)
            times[k].append(time.perf_counter() - t)
    return {k: x.shape[0] / statistics.median(v) for k, v in times.items()}


NOISE = "fp32, input ± half a grey level"


def half_grey_noise(x: torch.Tensor, norm) -> torch.Tensor:
    """Seeded uniform noise of ±0.5/255 in pixel units, in model-input units."""
    g = torch.Generator().manual_seed(1)
    std = torch.tensor(norm.std, dtype=x.dtype).view(1, -1, 1, 1)
    return ((torch.rand(x.shape, generator=g) - 0.5) / 255 / std).to(x.device)


def measure_case(case_name: str, model, size, x, targets, rounds: int, samples: int | None, norm,
                 noise_row: bool = False) -> list[dict]:
    arithmetics = ("autocast", "bf16", "bf16-hires-fp32") if case_name in GRADIENT else ("autocast", "bf16")
    method = make_method(case_name, model, size, samples, norm)
    policy, why = method.bf16_policy()
    runs = {a: runner(method, model, size.batch, a) for a in ("fp32", *arithmetics)}
    if noise_row:
        noise = half_grey_noise(x, norm)
        runs[NOISE] = lambda xx, tt, run=runner(method, model, size.batch, "fp32"): run(xx + noise[:xx.shape[0]], tt)
        arithmetics = (*arithmetics, NOISE)
    for run in runs.values():  # warm-up: one or two inputs each
        run(x[:min(size.batch, 2)], targets[:min(size.batch, 2)])
    times = {a: [] for a in runs}
    results = {}
    for _ in range(rounds):
        for a, run in runs.items():
            t = time.perf_counter()
            results[a] = run(x, targets)
            times[a].append(time.perf_counter() - t)
    m32, d32 = results["fp32"]
    fp32_s = statistics.median(times["fp32"]) / x.shape[0]
    rows = []
    for a in arithmetics:
        maps, details = results[a]
        rs = [pearson(u, v) for u, v in zip(m32, maps)]
        s = statistics.median(times[a]) / x.shape[0]
        row = {"method": case_name, "arithmetic": a, "policy": a == policy, "inputs": x.shape[0],
               "samples": samples or CASES[case_name].samples(size), "r_min": min(rs), "r_mean": float(np.mean(rs)),
               "fp32_s_per_input": fp32_s, "s_per_input": s, "speedup": fp32_s / s, "rounds": rounds}
        if "completeness_error" in (d32[0] or {}):
            row["ig_completeness_fp32_max"] = max(d["completeness_error"] for d in d32)
            row["ig_completeness_max"] = max(d["completeness_error"] for d in details)
        rows.append(row)
    if policy == "fp32":
        rows.append({"method": case_name, "arithmetic": "fp32", "policy": True, "inputs": x.shape[0],
                     "samples": samples or CASES[case_name].samples(size), "r_min": 1.0, "r_mean": 1.0,
                     "fp32_s_per_input": fp32_s, "s_per_input": fp32_s, "speedup": 1.0, "rounds": rounds})
    for r in rows:
        r["policy_why"] = why if r["policy"] else None
    return rows


def within(row: dict) -> bool:
    return row["r_min"] >= BOUNDS["r"] and row.get("ig_completeness_max", 0) < BOUNDS["ig_completeness"]


def markdown(report: dict) -> str:
    t = report["top1"]
    agree = ", ".join(f"{a} {v:.1%}" for a, v in t.items() if a != "inputs")
    lines = [f"# bf16 vs fp32 fidelity and speed, per method and arithmetic: {report['cpu']}", "",
             f"{report['date']} · model `{report['model']}` {report['side']}² · batch {report['batch']} · torch threads "
             f"{report['threads']} · fp32 and each arithmetic interleaved, median of the rounds", "",
             f"Top-1 unchanged against fp32 over {t['inputs']} inputs: {agree} (bound ≥ 99 %)", "",
             "| method | arithmetic | policy | inputs × samples | map r min | map r mean | IG completeness fp32 / this (max) "
             "| fp32 s/input | s/input | speed-up | within bounds |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        comp = (f"{r['ig_completeness_fp32_max']:.2%} / {r['ig_completeness_max']:.2%}"
                if "ig_completeness_max" in r else "-")
        lines.append(f"| {r['method']} | {r['arithmetic']} | {'**policy**' if r['policy'] else ''} | "
                     f"{r['inputs']} × {r['samples'] or 1} | {r['r_min']:.4f} | {r['r_mean']:.4f} | {comp} | "
                     f"{r['fp32_s_per_input']:.3f} | {r['s_per_input']:.3f} | {r['speedup']:.2f}x | "
                     f"{'yes' if within(r) else 'NO'} |")
    c = report["ceiling"]
    lines += ["", f"Model's own forward + backward to the input, batch {report['batch']} (img/s, median of "
              f"{report['rounds']} interleaved rounds):", "", "| arithmetic, layout | img/s | vs fp32 |", "|---|---|---|"]
    lines += [f"| {k} | {v:.1f} | {v / c['fp32']:.2f}x |" for k, v in c.items()]
    lines += ["", *[f"- {n}" for n in report["notes"]]]
    return "\n".join(lines) + "\n"


def bench_inputs(size, n: int):
    """The bench's seeded resnet and ``n`` of its generated JPEGs, preloaded."""
    with tempfile.TemporaryDirectory(prefix="xai-fidelity-") as tmp:
        files = write_jpegs(Path(tmp), n, size.photo)
        model = build_cnn(size.cnn)
        spec = register_model(size.cnn, model, size.side)
        x = preload(spec, files, torch.device("cpu"))
    from xai_cli.methods import Normalization

    return model, x, Normalization(IMAGENET_MEAN, IMAGENET_STD), size.cnn, size.side


def demo_inputs():
    """The trained demo-digits model and the sample digits (marked ones included), preloaded."""
    from xai_cli.inputs.discover import InputFile
    from xai_cli.methods import Normalization
    from xai_cli.modalities.image.decode import decode_image
    from xai_cli.models.registry import ModelRequest, load_model

    loaded = load_model(ModelRequest("demo-digits", None, None, False, False, False), torch.device("cpu"))
    files = sorted((ROOT / "sample_images" / "digits").glob("*.png")) + sorted((ROOT / "sample_images" / "marked").glob("*.png"))
    items = [decode_image(i, InputFile(p, Path(p.name)), p.read_bytes(), loaded.preprocess) for i, p in enumerate(files)]
    pre = loaded.preprocess
    return (loaded.module, torch.stack([it.tensor for it in items]), Normalization(pre.mean, pre.std), "demo-digits",
            pre.crop_size)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--model", choices=("bench", "demo-digits"), default="bench",
                   help="bench: the size's seeded resnet on generated JPEGs; demo-digits: the trained demo model")
    p.add_argument("--methods", default="gradcam,saliency,guided_backprop,ig,lime,shap,shap_gradient")
    p.add_argument("--threads", type=int)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds for the one-pass methods and the ceiling")
    p.add_argument("--slow-inputs", type=int, default=2, help="inputs for ig, lime, shap")
    p.add_argument("--slow-samples", type=int, help="override lime/shap samples (default: the size's)")
    p.add_argument("--top1-inputs", type=int, default=128)
    p.add_argument("--noise-row", action="store_true", help="also fp32 on inputs moved by half a grey level (a reference)")
    p.add_argument("--note", action="append", default=[], help="a line for the report (e.g. the box's load)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    p.add_argument("--suffix", default="", help="appended to the result's file name")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    size, started = SIZES[args.size], dt.datetime.now()
    if args.model == "bench":
        model, x, norm, name, side = bench_inputs(size, max(size.n_fast, args.top1_inputs))
    else:
        model, x, norm, name, side = demo_inputs()
    for q in model.parameters():
        q.requires_grad_(False)  # as load_model leaves them
    n = x.shape[0]
    with torch.no_grad():
        targets = torch.cat([model(x[s:s + size.batch]).argmax(1) for s in range(0, n, size.batch)])
    rows = []
    for c in [c.strip() for c in args.methods.split(",") if c.strip()]:
        print(f"measuring {c} ...", file=sys.stderr, flush=True)
        k = min(n, size.n_fast if c in FAST else args.slow_inputs)
        samples = args.slow_samples if c in ("lime", "shap", "shap_gradient") and args.slow_samples else None
        rows += measure_case(c, model, size, x[:k], targets[:k], args.rounds if c in FAST else 1, samples, norm,
                             args.noise_row)
    b = min(size.batch, n)
    report = {"date": started.isoformat(timespec="seconds"), "size_name": args.size, "model": name, "side": side,
              "batch": size.batch, "threads": torch.get_num_threads(), "rounds": args.rounds, "cpu": cpu_model(),
              "top1": top1(model, x, size.batch, ("autocast", "bf16")),
              "ceiling": ceilings(model, x[:b], targets[:b], args.rounds), "rows": rows, "bounds": BOUNDS,
              "notes": ([f"weights: seeded random init (no pretrained weights offline); inputs: the bench's generated JPEGs"]
                        if args.model == "bench" else ["weights: the shipped demo-digits; inputs: sample_images/digits and marked"])
              + args.note}
    text = markdown(report)
    print(text)
    stem = f"fidelity-cpu-{args.size if args.model == 'bench' else args.model}-{started:%Y-%m-%d}{args.suffix}"
    save_report(args.out / stem, report, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
