"""Audit metrics: xai against Quantus 0.6.0 (and Captum's sensitivity_max) on the same inputs.

The shipped demo-digits model, the 20 sample digits and their masks, Grad-CAM maps; each metric
timed once per library on the same maps, then the whole Grad-CAM audit of the 20 digits (every
metric) timed for the issue's 30 s budget. Prints a markdown table and saves it in
bench/results/audit-<date>.md.

    python bench/audit_bench.py [--sample 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xai_cli.methods.base import Normalization  # noqa: E402
from xai_cli.metrics.aggregate import aggregate  # noqa: E402
from xai_cli.metrics.explainers import method_explainer  # noqa: E402
from xai_cli.metrics.faithfulness import deletion_insertion  # noqa: E402
from xai_cli.metrics.localisation import (  # noqa: E402
    energy_pointing_game, pointing_game, relevance_mass_accuracy, relevance_rank_accuracy)
from xai_cli.metrics.randomisation import model_randomisation, sample_indices  # noqa: E402
from xai_cli.metrics.stability import max_sensitivity  # noqa: E402
from xai_cli.models.preprocess import preprocess_image  # noqa: E402
from xai_cli.models.registry import ModelRequest, load_model  # noqa: E402


def load_digits(preprocess):
    index = json.loads((ROOT / "sample_images/masks/index.json").read_text())
    xs, masks, labels = [], [], []
    for rel, entry in sorted(index.items()):
        xs.append(preprocess_image(Image.open(ROOT / "sample_images" / rel).convert("RGB"), preprocess)[0])
        masks.append(np.asarray(Image.open(ROOT / "sample_images" / entry["mask"])) > 0)
        labels.append(entry["label"])
    return torch.stack(xs), np.stack(masks), torch.tensor(labels)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def audit(model, x, masks, targets, norm, explain, sample):
    """Every metric on Grad-CAM, as the audit sink will call them."""
    maps = explain(model, x, targets)
    values = {}
    for curves in deletion_insertion(model, x, maps, targets, normalization=norm, seeds=range(len(x))).values():
        values.update(curves.metrics())
    values.update(pointing_game=pointing_game(maps, masks), energy_pointing_game=energy_pointing_game(maps, masks),
                  relevance_mass=relevance_mass_accuracy(maps, masks), relevance_rank=relevance_rank_accuracy(maps, masks))
    idx = torch.as_tensor(sample_indices(len(x), sample))
    values.update(model_randomisation(explain, model, x[idx], targets[idx], maps=maps[idx]).metrics())
    values["max_sensitivity"] = max_sensitivity(explain, model, x[idx], targets[idx], maps=maps[idx], seeds=idx.tolist())
    return aggregate({"gradcam": values})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", type=int, default=8, help="inputs for randomisation and max-sensitivity (xai vs Quantus)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import quantus
    from captum.metrics import sensitivity_max

    loaded = load_model(ModelRequest("demo-digits"), torch.device("cpu"))
    model, p = loaded.module, loaded.preprocess
    norm = Normalization(p.mean, p.std)
    x, masks, targets = load_digits(p)
    explain = method_explainer("gradcam", None, norm)
    maps = explain(model, x, targets)
    a_np, s_np, x_np, y_np = maps.numpy()[:, None], masks[:, None].astype(np.float32), x.numpy(), targets.numpy()

    def q_explain(model, inputs, targets, **kw):
        return explain(model, torch.as_tensor(inputs), torch.as_tensor(targets)).numpy()[:, None]

    rows = []

    def row(name, work, ours, theirs, peer="Quantus", agree=""):
        (_, t_ours), (_, t_peer) = ours, theirs
        rows.append((name, work, t_ours, peer, t_peer, t_peer / t_ours, agree))

    # Localisation: same maps and masks.
    for name, ours, q in [("pointing game (tol 0)", lambda: pointing_game(maps, masks, 0), quantus.PointingGame()),
                          ("relevance mass", lambda: relevance_mass_accuracy(maps, masks), quantus.RelevanceMassAccuracy()),
                          ("relevance rank", lambda: relevance_rank_accuracy(maps, masks), quantus.RelevanceRankAccuracy())]:
        o, t = timed(ours)
        r, tq = timed(lambda: np.array(q(model=None, x_batch=x_np, y_batch=y_np, a_batch=a_np, s_batch=s_np,
                                         channel_first=True), float))
        row(name, f"{len(x)} maps", (o, t), (r, tq), agree=f"max diff {np.nanmax(np.abs(o - r)):.1e}")

    # Deletion: Quantus's PixelFlipping wants features_in_step to divide H*W, then flips that many
    # of the C*H*W values per step: 576 of 3 x 96 x 96 is 48 steps. xai: 48 steps of whole pixels.
    steps, hw = 48, x.shape[2] * x.shape[3]
    o = timed(lambda: deletion_insertion(model, x, maps, targets, normalization=norm, steps=steps, kinds=("deletion",)))
    q = quantus.PixelFlipping(features_in_step=hw // 16, perturb_baseline="black", disable_warnings=True)
    r = timed(lambda: q(model=model, x_batch=x_np, y_batch=y_np, a_batch=a_np, channel_first=True, softmax=True,
                        device="cpu", batch_size=64))
    row("deletion curve, 48 steps", f"{len(x)} inputs; xai also runs the random ordering", o, r)

    # Randomisation and max-sensitivity: a sample, Grad-CAM re-explained through the same callable.
    idx = torch.as_tensor(sample_indices(len(x), args.sample))
    xs, ts = x[idx], targets[idx]
    leaves = [n for n, m in model.named_modules() if hasattr(m, "reset_parameters")][::-1]  # Quantus's cascade
    o = timed(lambda: model_randomisation(explain, model, xs, ts, blocks=leaves, seed=43, constant_score=np.nan))
    q = quantus.MPRT(layer_order="top_down", seed=42, return_last_correlation=True, disable_warnings=True)
    r = timed(lambda: q(model=model, x_batch=xs.numpy(), y_batch=ts.numpy(), a_batch=None, explain_func=q_explain,
                        channel_first=True, device="cpu", batch_size=64))
    agree = np.nanmax(np.abs(o[0].similarity[:, -1] - np.array(r[0], float)))
    row("randomisation (MPRT, cascade)", f"{len(idx)} inputs, {len(leaves)} layers", o, r, agree=f"max diff {agree:.1e}")

    noise = torch.stack([(torch.rand((10, *x.shape[1:]), generator=torch.Generator().manual_seed(i)) * 2 - 1) * 0.02
                         for i in range(len(idx))])
    o = timed(lambda: max_sensitivity(explain, model, xs, ts, noise=noise))
    c = timed(lambda: sensitivity_max(lambda inp, target: (explain(model, inp[0], target),) if isinstance(inp, tuple)
                                      else explain(model, inp, target), xs, target=ts,
                                      perturb_func=lambda inp, radius: inp + noise.reshape(-1, *x.shape[1:])))
    row("max-sensitivity, 10 samples", f"{len(idx)} inputs", o, c, peer="Captum",
        agree=f"max diff {np.abs(o[0] - c[0].numpy()).max():.1e}")
    step = iter(range(10))
    q = quantus.MaxSensitivity(nr_samples=10, disable_warnings=True,
                               perturb_func=lambda arr, indices, **kw: arr + noise[:, next(step)].reshape(len(arr), -1).numpy())
    r = timed(lambda: q(model=model, x_batch=xs.numpy(), y_batch=ts.numpy(), a_batch=None, explain_func=q_explain,
                        channel_first=True, device="cpu", batch_size=64))
    row("max-sensitivity, 10 samples", f"{len(idx)} inputs", o, r, agree=f"max diff {np.abs(o[0] - np.array(r[0])).max():.1e}")

    summary, t_audit = timed(lambda: audit(model, x, masks, targets, norm, explain, 16))

    lines = [f"# Audit metrics: xai vs Quantus {quantus.__version__} / Captum ({datetime.date.today()})", "",
             f"CPU, {args.threads} torch threads, {platform.processor() or platform.machine()}; demo-digits (96 px), "
             f"Grad-CAM maps. One run each (no repeats): read ratios, not absolute times.", "",
             "| metric | work | xai s | peer | peer s | peer / xai | agreement |", "|---|---|---:|---|---:|---:|---|"]
    lines += [f"| {n} | {w} | {a:.3f} | {p} | {b:.3f} | {r:.1f}x | {g} |" for n, w, a, p, b, r, g in rows]
    lines += ["", f"**Full Grad-CAM audit of the 20 digits** (deletion + insertion with random orderings, 20 steps; "
                  f"4 localisation scores; randomisation and max-sensitivity on a 16-input sample): **{t_audit:.1f} s**", "",
              "| metric | mean | 95% interval | n |", "|---|---:|---|---:|"]
    lines += [f"| {m} | {s['mean']:.3f} | [{s['ci_low']:.3f}, {s['ci_high']:.3f}] | {s['n']} |"
              for m, s in summary["gradcam"].items()]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"audit-{datetime.date.today()}.md").write_text(text)


if __name__ == "__main__":
    main()
