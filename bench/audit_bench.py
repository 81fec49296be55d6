"""Audit metrics: xai against Quantus 0.6.0 (and Captum's sensitivity_max), each beside its model floor.

The shipped demo-digits model, the 20 sample digits and their masks, Grad-CAM maps. Per metric,
xai at fp32 and at bf16 (autocast + channels_last) and the peers on the same maps. Every forward
call a run makes is recorded (rows, and whether it ran with gradients), and the **model floor**
replays those very calls through the bare model at the same batch sizes and precision: forward
only, or forward + backward to Grad-CAM's layer for calls made with gradients (re-explaining metrics).
``s / floor`` is then what a library spends beyond its model calls, and the row counts show who
needs fewer rows. Also: xai's deletion/insertion at several ``perturbations_per_eval``, the whole
``xai audit`` of the 20 digits at fp32 and bf16 (with bf16-vs-fp32 agreement and gate verdicts),
and one line per library at its own default settings.

The box is shared: every case runs once to warm up (and record its calls), then ``--rounds``
interleaved rounds (each case, then its floor, case after case); medians are reported with the
load average seen. Saves bench/results/audit-<date>.md/.json (``-2``, ``-3``... when taken).

    python bench/audit_bench.py [--rounds 3] [--sample 8] [--threads 2] [--no-defaults]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import cpu_model, save_report  # noqa: E402

from xai_cli.core.precision import autocast_calls, autocast_model, prepare_model  # noqa: E402
from xai_cli.methods.base import Normalization  # noqa: E402
from xai_cli.metrics.explainers import method_explainer  # noqa: E402
from xai_cli.metrics.faithfulness import deletion_insertion  # noqa: E402
from xai_cli.metrics.localisation import pointing_game, relevance_mass_accuracy, relevance_rank_accuracy  # noqa: E402
from xai_cli.metrics.randomisation import model_randomisation, sample_indices  # noqa: E402
from xai_cli.metrics.stability import max_sensitivity  # noqa: E402
from xai_cli.models.layers import find_spatial_layer  # noqa: E402
from xai_cli.models.preprocess import preprocess_image  # noqa: E402
from xai_cli.models.registry import ModelRequest, load_model  # noqa: E402

CPU = torch.device("cpu")
DIGITS, MASKS, GATE = ROOT / "sample_images/digits", ROOT / "sample_images/masks", ROOT / "configs/gate-demo.toml"


def load_digits(preprocess):
    index = json.loads((MASKS / "index.json").read_text())
    xs, masks, labels = [], [], []
    for rel, entry in sorted(index.items()):
        xs.append(preprocess_image(Image.open(ROOT / "sample_images" / rel).convert("RGB"), preprocess)[0])
        masks.append(np.asarray(Image.open(ROOT / "sample_images" / entry["mask"])) > 0)
        labels.append(entry["label"])
    return torch.stack(xs), np.stack(masks), torch.tensor(labels)


@contextmanager
def recorded_calls(root: type):
    """Every forward call of a ``root``-type module in the block (deep copies included): (rows, grad)."""
    calls: list[tuple[int, bool]] = []

    def hook(module, args, output):
        if type(module) is root and args and isinstance(args[0], torch.Tensor):
            calls.append((args[0].shape[0], torch.is_grad_enabled()))

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


@dataclass
class Case:
    """One timed workload: a metric by one library at one precision."""

    metric: str
    library: str
    precision: str
    work: str
    run: Callable[[], object]
    floor: bool = True  # replay its model calls as the floor
    values: Callable[[object], np.ndarray] | None = None  # per-input values, for the agreement column
    result: object = None
    calls: list = field(default_factory=list)
    times: list = field(default_factory=list)
    floor_times: list = field(default_factory=list)
    agree: str = ""

    @property
    def rows(self) -> int:
        return sum(b for b, _ in self.calls)

    def batches(self) -> str:
        sizes = sorted({b for b, _ in self.calls}, reverse=True)
        grad = sum(g for _, g in self.calls)
        return f"{len(self.calls)} calls of {'/'.join(map(str, sizes[:3]))}{'/...' if len(sizes) > 3 else ''}" + (
            f", {grad} with backward" if grad else "")


class Floor:
    """Replays recorded forward calls through the bare model (fp32 and bf16 copies): forward
    only, or, for calls made with gradients, forward + backward from the target's logit to
    Grad-CAM's layer (the backward Grad-CAM itself runs: it stops at that layer)."""

    def __init__(self, models: dict[str, torch.nn.Module], x: torch.Tensor, targets: torch.Tensor, layer: str) -> None:
        self.models, self.layer = models, layer
        reps = 1 + 512 // len(x)
        self.x, self.t = x.repeat(reps, 1, 1, 1), targets.repeat(reps)

    def __call__(self, calls, precision: str) -> None:
        model = self.models[precision]
        acts = {}

        def keep(module, inputs, output):
            if torch.is_grad_enabled():  # weights are frozen: make the layer's output the leaf
                acts["a"] = output = output.detach().requires_grad_(True)
            return output

        handle = model.get_submodule(self.layer).register_forward_hook(keep)
        try:
            with autocast_model(model, precision, CPU):
                for b, grad in calls:
                    with torch.set_grad_enabled(grad):
                        logits = model(self.x[:b])
                    if grad:
                        torch.autograd.grad(logits.gather(1, self.t[:b, None]).sum(), acts["a"])
        finally:
            handle.remove()


def run_rounds(cases: list[Case], floor: Floor, rounds: int, root: type, loads: list) -> None:
    """Warm-up (records each case's calls and result), then ``rounds`` interleaved timed rounds."""
    for c in cases:
        with recorded_calls(root) as calls:
            c.result = c.run()
        c.calls = list(calls)
    for _ in range(rounds):
        loads.append(os.getloadavg()[0])
        for c in cases:
            t0 = time.perf_counter()
            c.run()
            c.times.append(time.perf_counter() - t0)
            if c.floor and c.calls:
                t0 = time.perf_counter()
                floor(c.calls, c.precision)
                c.floor_times.append(time.perf_counter() - t0)


def med(v: list[float]) -> float:
    return statistics.median(v) if v else float("nan")


def table(cases: list[Case]) -> list[str]:
    """One line per case; peers get the speed-up of xai fp32 / bf16 over them."""
    lines = ["| metric | library | precision | work | forward rows (calls) | s | floor s | s / floor | xai fp32 / bf16 faster by | agreement |",
             "|---|---|---|---|---|---:|---:|---:|---|---|"]
    for c in cases:
        s, f = med(c.times), med(c.floor_times)
        ours = {x.precision: med(x.times) for x in cases if x.metric == c.metric and x.library == "xai"}
        speed = "" if c.library == "xai" else " / ".join(f"{s / ours[p]:.1f}x" for p in ("—", "fp32", "bf16") if p in ours)
        floor = f"{f:.3f}" if c.calls and c.floor else "—"
        ratio = f"{s / f:.2f}" if c.calls and c.floor else "—"
        rows = f"{c.rows} ({c.batches()})" if c.calls else "0"
        lines.append(f"| {c.metric} | {c.library} | {c.precision} | {c.work} | {rows} | {s:.3f} | {floor} | {ratio} | "
                     f"{speed} | {c.agree} |")
    return lines


def case_dict(c: Case) -> dict:
    return {"metric": c.metric, "library": c.library, "precision": c.precision, "work": c.work, "rows": c.rows,
            "calls": len(c.calls), "seconds": c.times, "floor_seconds": c.floor_times, "agreement": c.agree}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds after the warm-up (median)")
    ap.add_argument("--sample", type=int, default=8, help="inputs for randomisation and max-sensitivity (xai vs peers)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-defaults", action="store_true", help="skip the libraries-at-their-defaults line")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import quantus
    from captum.metrics import sensitivity_max

    loaded = load_model(ModelRequest("demo-digits"), CPU)
    model, p = loaded.module, loaded.preprocess
    model16 = prepare_model(load_model(ModelRequest("demo-digits"), CPU).module, "bf16")  # channels_last copy
    models = {"fp32": model, "bf16": model16}
    root = type(model)
    norm = Normalization(p.mean, p.std)
    x, masks, targets = load_digits(p)
    explain = method_explainer("gradcam", None, norm)
    explainers = {"fp32": explain, "bf16": autocast_calls(method_explainer("gradcam", None, norm), "bf16", CPU)}
    maps = explain(model, x, targets)
    a_np, s_np, x_np, y_np = maps.numpy()[:, None], masks[:, None].astype(np.float32), x.numpy(), targets.numpy()
    floor = Floor(models, x, targets, find_spatial_layer(model, x[:1]))  # Grad-CAM's layer
    loads: list[float] = []

    def q_explain(model, inputs, targets, **kw):
        return explain(model, torch.as_tensor(inputs), torch.as_tensor(targets)).numpy()[:, None]

    def on(prec: str, fn: Callable[[torch.nn.Module], object]) -> Callable[[], object]:
        """``fn(model)`` at ``prec``: the bf16 copy with its forward autocast, or the fp32 model."""
        def run():
            with autocast_model(models[prec], prec, CPU):
                return fn(models[prec])
        return run

    as_array = lambda r: np.asarray(r, dtype=float).reshape(-1)  # noqa: E731

    # Localisation: same maps and masks, no model.
    cases = []
    for name, ours, q in [("pointing game (tol 0)", lambda: pointing_game(maps, masks, 0), quantus.PointingGame()),
                          ("relevance mass", lambda: relevance_mass_accuracy(maps, masks), quantus.RelevanceMassAccuracy()),
                          ("relevance rank", lambda: relevance_rank_accuracy(maps, masks), quantus.RelevanceRankAccuracy())]:
        cases += [Case(name, "xai", "—", f"{len(x)} maps", ours, floor=False, values=as_array),
                  Case(name, "Quantus", "—", f"{len(x)} maps", lambda q=q: q(
                      model=None, x_batch=x_np, y_batch=y_np, a_batch=a_np, s_batch=s_np, channel_first=True),
                      floor=False, values=as_array)]

    # Deletion: Quantus's PixelFlipping wants features_in_step to divide H*W, then flips that many
    # of the C*H*W values per step: 576 of 3 x 96 x 96 is 48 steps. xai: 48 steps of whole pixels,
    # beside its seeded random ordering (the audit always computes both).
    steps, hw = 48, x.shape[2] * x.shape[3]
    work = f"{len(x)} inputs, 48 steps; xai also the random ordering"

    def xai_deletion(m):
        return deletion_insertion(m, x, maps, targets, normalization=norm, steps=steps, kinds=("deletion",),
                                  seeds=range(len(x)))["deletion"]

    q_del = quantus.PixelFlipping(features_in_step=hw // 16, perturb_baseline="black", disable_warnings=True)
    auc = lambda r: r.auc  # noqa: E731
    cases += [Case("deletion curve", "xai", "fp32", work, on("fp32", xai_deletion), values=auc),
              Case("deletion curve", "Quantus", "fp32", work, lambda: q_del(
                  model=model, x_batch=x_np, y_batch=y_np, a_batch=a_np, channel_first=True, softmax=True, device="cpu",
                  batch_size=64)),
              Case("deletion curve", "xai", "bf16", work, on("bf16", xai_deletion), values=auc)]

    # Randomisation and max-sensitivity: a sample, Grad-CAM re-explained through the same callable.
    idx = torch.as_tensor(sample_indices(len(x), args.sample))
    xs, ts = x[idx], targets[idx]
    leaves = [n for n, m in model.named_modules() if hasattr(m, "reset_parameters")][::-1]  # Quantus's cascade
    work = f"{len(idx)} inputs, {len(leaves)} layers"
    q_mprt = quantus.MPRT(layer_order="top_down", seed=42, return_last_correlation=True, disable_warnings=True)
    last = lambda r: r.similarity[:, -1]  # noqa: E731
    cases += [Case("randomisation (MPRT)", "xai", prec, work, lambda prec=prec: model_randomisation(
                  explainers[prec], models[prec], xs, ts, blocks=leaves, seed=43, constant_score=np.nan), values=last)
              for prec in ("fp32", "bf16")]
    cases.insert(-1, Case("randomisation (MPRT)", "Quantus", "fp32", work, lambda: q_mprt(
        model=model, x_batch=xs.numpy(), y_batch=ts.numpy(), a_batch=None, explain_func=q_explain, channel_first=True,
        device="cpu", batch_size=64), values=as_array))

    noise = torch.stack([(torch.rand((10, *x.shape[1:]), generator=torch.Generator().manual_seed(i)) * 2 - 1) * 0.02
                         for i in range(len(idx))])
    work = f"{len(idx)} inputs, 10 samples"
    step = {"i": 0}

    def q_noise(arr, indices, **kw):
        out = arr + noise[:, step["i"] % 10].reshape(len(arr), -1).numpy()
        step["i"] += 1
        return out

    def q_sensitivity():
        step["i"] = 0
        return quantus.MaxSensitivity(nr_samples=10, disable_warnings=True, perturb_func=q_noise)(
            model=model, x_batch=xs.numpy(), y_batch=ts.numpy(), a_batch=None, explain_func=q_explain,
            channel_first=True, device="cpu", batch_size=64)

    cases += [Case("max-sensitivity", "xai", "fp32", work, lambda: max_sensitivity(explain, model, xs, ts, noise=noise),
                   values=as_array),
              Case("max-sensitivity", "Captum", "fp32", work, lambda: sensitivity_max(
                  explain_captum(explain, model), xs, target=ts,
                  perturb_func=lambda inp, radius: inp + noise.reshape(-1, *x.shape[1:])), values=as_array),
              Case("max-sensitivity", "Quantus", "fp32", work, q_sensitivity, values=as_array),
              Case("max-sensitivity", "xai", "bf16", work, lambda: max_sensitivity(
                  explainers["bf16"], model16, xs, ts, noise=noise), values=as_array)]

    # xai's own knob: rows per forward pass (results do not depend on it; speed does).
    work = f"{len(x)} inputs, deletion + insertion, 20 steps"
    chunk_cases = [Case(f"perturbations_per_eval={c}", "xai", prec, work, on(prec, lambda m, c=c: deletion_insertion(
        m, x, maps, targets, normalization=norm, seeds=range(len(x)), perturbations_per_eval=c)))
        for prec in ("fp32", "bf16") for c in (32, 64, 128, 256)]

    # The whole audit, as `xai audit` runs it (explain + score + write), at both precisions.
    from xai_cli import api

    tmp = Path(tempfile.mkdtemp(prefix="audit-bench-"))

    def whole(prec: str):
        def run():
            cfg = api.RunConfig(model="demo-digits", methods=("gradcam",), inputs=(DIGITS,), out=tmp / prec, workers=0,
                                device="cpu", precision=prec, params={"audit": {"sample": 16}})
            return api.audit(cfg, masks=MASKS, gate=GATE)
        return run

    audit_cases = [Case("xai audit, 20 digits", "xai", prec, "explain + every metric (sample 16) + files", whole(prec))
                   for prec in ("fp32", "bf16")]

    t_start = time.perf_counter()
    run_rounds(cases + chunk_cases + audit_cases, floor, args.rounds, root, loads)
    agreement(cases)
    defaults = [] if args.no_defaults else at_defaults(model, x, maps, targets, norm, q_explain, explain, xs, ts, x_np,
                                                        y_np, a_np, root, floor)
    loads.append(os.getloadavg()[0])
    bench_seconds = time.perf_counter() - t_start

    lines = [f"# Audit metrics: xai vs Quantus {quantus.__version__} / Captum, with the model floor ({datetime.date.today()})",
             "", f"{cpu_model()}, {args.threads} torch threads; demo-digits (96 px), Grad-CAM maps. Warm-up, then "
             f"{args.rounds} interleaved rounds, medians; load average (1 min) seen at each round: "
             f"{', '.join(f'{v:.1f}' for v in loads)}. Floor = the same forward calls (rows, batch sizes, "
             f"precision) through the bare model; calls made with gradients replayed as forward + backward "
             f"from the target's logit to Grad-CAM's layer (the backward Grad-CAM runs).", ""]
    lines += table(cases) + ["", "## perturbations_per_eval (rows per forward pass)", ""] + table(chunk_cases)
    lines += ["", "## The whole audit", ""] + table(audit_cases) + [""] + audit_agreement(audit_cases)
    if defaults:
        lines += ["", "## Each library at its own default settings (one run each)", ""] + defaults
    lines += ["", f"Bench wall time: {bench_seconds:.0f} s."]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    stem = args.out / f"audit-{datetime.date.today()}"
    k = 2
    while stem.with_suffix(".md").exists():
        stem, k = args.out / f"audit-{datetime.date.today()}-{k}", k + 1
    save_report(stem, {"cpu": cpu_model(), "threads": args.threads, "rounds": args.rounds, "load_average": loads,
                       "cases": [case_dict(c) for c in cases + chunk_cases + audit_cases], "defaults": defaults}, text)


def agreement(cases: list[Case]) -> None:
    """Fills the agreement column: peers and xai bf16 against xai fp32 on the same metric."""
    for c in cases:
        ref = next((r for r in cases if r.metric == c.metric and r.library == "xai" and r.precision in ("fp32", "—")), None)
        if ref is None or ref is c or c.values is None:
            continue
        diff = np.nanmax(np.abs(c.values(c.result) - ref.values(ref.result)))
        c.agree = f"max diff {diff:.1e}" + (" vs fp32" if c.library == "xai" else "")


AUC_METRICS = ("deletion_auc", "deletion_random_auc", "deletion_gain", "insertion_auc", "insertion_random_auc",
               "insertion_gain", "pointing_game", "energy_pointing_game", "relevance_mass", "relevance_rank")


def audit_agreement(audit_cases: list[Case]) -> list[str]:
    """bf16 against fp32 on the whole audit: mean |difference| per metric and the gate's verdicts."""
    a, b = (c.result for c in audit_cases)
    la, lb = ([json.loads(x) for x in (r.out / "audit.jsonl").read_text().splitlines()] for r in (a, b))
    lines = ["| metric | fp32 mean | bf16 mean | mean \\|bf16 − fp32\\| per input | max |", "|---|---:|---:|---:|---:|"]
    for m in AUC_METRICS:
        va = np.array([x["methods"]["gradcam"]["metrics"][m] for x in la], dtype=float)
        vb = np.array([x["methods"]["gradcam"]["metrics"][m] for x in lb], dtype=float)
        lines.append(f"| {m} | {np.nanmean(va):.4f} | {np.nanmean(vb):.4f} | {np.nanmean(np.abs(va - vb)):.4f} | "
                     f"{np.nanmax(np.abs(va - vb)):.4f} |")
    sa, sb = (r.document["sample"]["values"]["gradcam"] for r in (a, b))
    for m in sa:
        va, vb = np.array(sa[m], dtype=float), np.array(sb[m], dtype=float)
        lines.append(f"| {m} (sample) | {np.nanmean(va):.4f} | {np.nanmean(vb):.4f} | {np.nanmean(np.abs(va - vb)):.4f} | "
                     f"{np.nanmax(np.abs(va - vb)):.4f} |")
    verdicts = [(ca.name, ca.passed, cb.passed) for ca, cb in zip(a.checks, b.checks)]
    same = all(pa == pb for _, pa, pb in verdicts)
    lines += ["", f"Gate (configs/gate-demo.toml): fp32 {'FAILED' if a.gate_failed else 'passed'}, bf16 "
                  f"{'FAILED' if b.gate_failed else 'passed'}; {'the same verdict on every check' if same else 'verdicts differ'}: "
                  + ", ".join(f"{n} {pa}/{pb}" for n, pa, pb in verdicts) + ".",
              f"Precision recorded in audit.json: {a.document.get('precision')} / {b.document.get('precision')}."]
    return lines


def at_defaults(model, x, maps, targets, norm, q_explain, explain, xs, ts, x_np, y_np, a_np, root, floor) -> list[str]:
    """Each library called with no settings but the required ones, once; Quantus's PixelFlipping
    default (one value per step: C*H*W forward passes of the batch) is estimated from 96 steps."""
    import quantus
    from captum.metrics import sensitivity_max

    lines = ["| metric | library | its defaults | forward rows | s | note |", "|---|---|---|---:|---:|---|"]

    def timed(fn):
        with recorded_calls(root) as calls:
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0, sum(b for b, _ in calls)

    s, rows = timed(lambda: deletion_insertion(model, x, maps, targets, normalization=norm, seeds=range(len(x))))
    lines.append(f"| faithfulness | xai | deletion + insertion, 20 steps, random orderings | {rows} | {s:.2f} | measured |")
    n_values = x[0].numel()
    probe = n_values // 96
    s, rows = timed(lambda: quantus.PixelFlipping(features_in_step=probe, disable_warnings=True)(
        model=model, x_batch=x_np, y_batch=y_np, a_batch=a_np, channel_first=True, device="cpu"))
    lines.append(f"| faithfulness | Quantus | PixelFlipping: features_in_step=1, deletion only | {rows * probe} | "
                 f"{s * probe:.0f} ({s * probe / 60:.0f} min) | estimated: 96 steps took {s:.2f} s, x {probe} "
                 f"for its {n_values} steps |")
    s, rows = timed(lambda: model_randomisation(explain, model, xs, ts))
    lines.append(f"| randomisation | xai | cascade by blocks | {rows} | {s:.2f} | measured |")
    s, rows = timed(lambda: quantus.MPRT(disable_warnings=True)(model=model, x_batch=xs.numpy(), y_batch=ts.numpy(),
                                                                 a_batch=None, explain_func=q_explain, channel_first=True,
                                                                 device="cpu"))
    lines.append(f"| randomisation | Quantus | MPRT: every layer, top down | {rows} | {s:.2f} | measured |")
    s, rows = timed(lambda: max_sensitivity(explain, model, xs, ts))
    lines.append(f"| max-sensitivity | xai | 10 samples, radius 0.02 | {rows} | {s:.2f} | measured |")
    s, rows = timed(lambda: sensitivity_max(explain_captum(explain, model), xs, target=ts))
    lines.append(f"| max-sensitivity | Captum | 10 samples, radius 0.02 | {rows} | {s:.2f} | measured |")
    s, rows = timed(lambda: quantus.MaxSensitivity(disable_warnings=True)(
        model=model, x_batch=xs.numpy(), y_batch=ts.numpy(), a_batch=None, explain_func=q_explain, channel_first=True,
        device="cpu"))
    lines.append(f"| max-sensitivity | Quantus | 200 samples, uniform noise 0.2 | {rows} | {s:.2f} | measured |")
    lines.append("")
    lines.append(f"The rows are {len(x)} digits for faithfulness, {len(xs)} for the others. Different work per "
                 "library: this is what a user gets when calling each with no settings.")
    return lines


def explain_captum(explain, model):
    """Captum's explanation_func: it passes a tuple of inputs, or a tensor."""
    return lambda inp, target: (explain(model, inp[0], target),) if isinstance(inp, tuple) else explain(model, inp, target)


if __name__ == "__main__":
    main()
