"""Throughput of xai's methods against the peer libraries, on the same model and inputs, in one process.

    python bench/bench.py --size full --device cuda            # resnet50 224², batch 64; ViT-B/16
    python bench/bench.py --size small --device cpu --methods gradcam,ig

For each method: the peers (pytorch-grad-cam, Captum, lime, shap), compute only, on a batch
preloaded on the device; xai's ``Method.explain`` on that same batch (compute only); and xai's
pipeline end to end (generated JPEGs in, PNG + JSON out, model load excluded). The model's own
forward(+backward) throughput is the ceiling. The table is printed and saved as markdown + JSON.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import re
import sys
import tempfile
import traceback
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # lime's per-image progress bar; read when tqdm is imported
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # xai_cli from a plain checkout

from common import SIZES, Size, Timing, build_cnn, build_vit, ceiling, measure, set_weight_grads, write_jpegs  # noqa: E402
from common import cpu_model, save_report  # noqa: E402
from peers import Context, peers_for  # noqa: E402
from xai_runs import CASES, PRECISION, end_to_end, method_runner, preload, profile_end_to_end, register_model  # noqa: E402

NAMES = {"shap": "shap (kernel)", "shap_gradient": "shap (gradient)"}


def note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr, flush=True)


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model, cores and torch threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


def _count(case: str, size: Size) -> int:
    return size.n_ig if case == "ig" else size.n_slow if CASES[case].slow else size.n_fast


def _try(label: str, fn, notes: list[str]):
    """``fn()``, or None with a note (a method still being written, a peer API that changed)."""
    try:
        return fn()
    except Exception as e:  # a broken row must not end the benchmark
        msg = f"{label}: skipped ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})"
        note(msg)
        if os.environ.get("BENCH_TRACEBACK"):
            traceback.print_exc()
        notes.append(msg)
        return None


def timed_xai(case_name: str, size: Size, model, x, targets, device, notes, precision: str = "fp32"
              ) -> tuple[Timing | None, str | None]:
    """xai's ``Method.explain`` on the preloaded batch, weights frozen, at ``precision`` (each method at
    its policy's arithmetic); ``(timing, arithmetic)``, or Nones (and a note) if it fails."""
    case, samples = CASES[case_name], CASES[case_name].samples(size)
    arith = []

    def go():
        set_weight_grads(model, False)
        run = method_runner(case, size, model, precision=precision)
        arith.append(run.arithmetic)
        if case.slow:  # warm up on one input with one forward pass worth of samples
            warm = method_runner(case, size, model, min(samples, size.rows), precision)
            return measure(lambda: run(x, targets), x.shape[0], device, 1, lambda: warm(x[:1], targets[:1]))
        return measure(lambda: run(x, targets), x.shape[0], device, size.repeats, lambda: run(x[:size.batch], targets[:size.batch]))

    return _try(f"xai {case_name} compute-only ({precision})", go, notes), (arith or [None])[0]


def timed_peer(case_name: str, peer, ctx: Context, size: Size, x, targets, device, notes) -> Timing | None:
    """One peer on the same batch, ``size.batch`` inputs per call (one for per-input explainers)."""
    case, samples = CASES[case_name], CASES[case_name].samples(size)

    def batches(run):
        step = 1 if peer.per_item else size.batch
        return lambda: [run(x[s:s + step], targets[s:s + step]) for s in range(0, x.shape[0], step)]

    def go():
        set_weight_grads(ctx.model, True)
        try:
            run = peer.make(ctx, samples)
            if case.slow:
                warm = peer.make(ctx, min(samples, size.rows))
                return measure(batches(run), x.shape[0], device, 1, lambda: warm(x[:1], targets[:1]))
            return measure(batches(run), x.shape[0], device, size.repeats, lambda: run(x[:size.batch], targets[:size.batch]))
        finally:
            set_weight_grads(ctx.model, False)

    if not peer.installed():
        notes.append(f"{peer.label}: not installed (pip install -e '.[bench]')")
        note(notes[-1])
        return None
    return _try(f"{peer.label} ({case_name})", go, notes)


def timed_e2e(case_name: str, spec: str, files, size: Size, device, notes, precision: str) -> dict | None:
    """xai's pipeline on the JPEG files (after a one-batch warm-up run for the one-pass methods)."""
    case = CASES[case_name]

    def go():
        if not case.slow:  # imports, fonts, first allocations: not part of a long run's rate
            end_to_end(spec, files[:size.batch], case, size, device, precision=precision)
        result = end_to_end(spec, files, case, size, device, precision=precision)
        if result["failed"] or result["ok"] != len(files):
            notes.append(f"xai {case_name} end to end: {result['ok']} ok, {result['failed']} failed of {len(files)}")
        return result

    return _try(f"xai {case_name} end to end ({precision})", go, notes)


def _median(timings: list[Timing | None]) -> Timing | None:
    """The round whose seconds per input is the median (the lower middle of an even count)."""
    done = sorted((t for t in timings if t is not None), key=lambda t: t.seconds_per_item)
    return done[(len(done) - 1) // 2] if done else None


def _median_e2e(results: list[dict | None]) -> dict | None:
    done = sorted((r for r in results if r is not None), key=lambda r: r["inputs_per_second"])
    return done[(len(done) - 1) // 2] if done else None


def run_case(case_name: str, size: Size, env: dict, notes: list[str], rounds: int = 1) -> list[dict]:
    """The rows of one method: one per peer (or one with no peer) and xai precision.

    With ``rounds`` > 1 every measurement of the case (xai compute-only and end to end at each
    precision, each peer) is taken once per round, round after round, so that a change in the
    shared machine's load hits every side alike; the median round is reported.
    """
    case = CASES[case_name]
    n = _count(case_name, size)
    _, _, x, targets, files = env["vit" if case.vit else "cnn"]
    models = env["models"]["vit" if case.vit else "cnn"]  # {precision: (module, spec)}
    e2e_files = files[:max(n, env["e2e_inputs"])]
    x, targets, files = x[:n], targets[:n], files[:n]
    peers = peers_for(case_name, size.rows)
    xai = {p: [] for p in models}
    e2e = {p: [] for p in models}
    arith: dict[str, str | None] = {}  # the arithmetic each precision ran xai's method at (its bf16 policy)
    peer_t = {peer.label: [] for peer in peers}
    loads = []
    for r in range(rounds):
        if rounds > 1:
            note(f"{case_name}: round {r + 1} of {rounds} (load average {os.getloadavg()[0]:.1f})")
        for p, (model, spec) in models.items():
            timing, arith[p] = (timed_xai(case_name, size, model, x, targets, env["device"], notes, p) if env["xai"]
                                else (None, arith.get(p)))
            xai[p].append(timing)
            e2e[p].append(timed_e2e(case_name, spec, e2e_files, size, env["device"], notes, p)
                          if env["xai"] and env["e2e"] else None)
        for peer in peers:
            peer_t[peer.label].append(timed_peer(case_name, peer, env["ctx"], size, x, targets, env["device"], notes))
        loads.append(round(os.getloadavg()[0], 2))
    rows = []
    for p in models:
        x_med, e_med = _median(xai[p]), _median_e2e(e2e[p])
        for peer in peers or [None]:
            t = _median(peer_t[peer.label]) if peer else None
            peer_rate = t.items_per_second if t else None
            xai_rate = x_med.items_per_second if x_med else None
            e2e_rate = e_med["inputs_per_second"] if e_med else None
            rows.append({
                "method": NAMES.get(case_name, case_name), "case": case_name, "precision": p,
                "arithmetic": arith.get(p), "peer": peer.label if peer else None,
                "peer_img_s": peer_rate, "xai_compute_img_s": xai_rate, "xai_e2e_img_s": e2e_rate,
                "ratio_compute": xai_rate / peer_rate if xai_rate and peer_rate else None,
                "ratio_e2e": e2e_rate / peer_rate if e2e_rate and peer_rate else None,
                "peak_mib": {"peer": t.peak_mib if t else None, "xai": x_med.peak_mib if x_med else None,
                             "e2e": e_med["peak_mib"] if e_med else None},
                "inputs": n, "e2e_inputs": len(e2e_files), "samples": case.samples(size), "params": case.params(size),
                "e2e_run_json_timings": e_med["timings"] if e_med else None,
                "rounds": {"n": rounds, "load_average_1min": loads,
                           "peer_img_s": [v and v.items_per_second for v in peer_t[peer.label]] if peer else None,
                           "xai_compute_img_s": [v and v.items_per_second for v in xai[p]],
                           "xai_e2e_img_s": [v and v["inputs_per_second"] for v in e2e[p]]},
            })
    return rows


def rate(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v:,.1f} img/s" if v >= 1 else f"{1 / v:.2f} s/img"


def e2e_n(row: dict) -> str:
    """`` (e2e 256)`` when the end-to-end run had more inputs than compute-only."""
    n = row.get("e2e_inputs", row["inputs"])
    return f" (e2e {n})" if n != row["inputs"] else ""


def markdown(report: dict) -> str:
    def num(v, f="{:.2f}x"):
        return "-" if v is None else f.format(v)

    c = report["ceiling"]
    lines = [
        f"# xai throughput vs peers: {report['device']['name']} ({report['device']['type']})",
        "",
        f"{report['date']} · size `{report['size_name']}` · xai precision {report.get('precision', 'fp32')} · "
        f"{report.get('rounds', 1)} round(s), median · torch {report['versions']['torch']} · "
        f"torchvision {report['versions']['torchvision']} · {report['size']['cnn']} {report['size']['side']}² "
        f"(ViT: {report['size']['vit']}) · batch {report['size']['batch']} · rows/pass {report['size']['rows']}",
        "",
        f"Ceiling ({report['size']['cnn']}, batch {report['size']['batch']}): forward+backward to the input "
        f"{rate(c.get('fwd_bwd_img_s'))}, forward only {rate(c.get('fwd_img_s'))}"
        + (f"; {report['size']['vit']} forward only {rate(c['vit_fwd_img_s'])}" if c.get("vit_fwd_img_s") else ""),
        "",
        "| method | peer | peer figure | xai precision (arithmetic) | xai compute-only | xai end to end | xai/peer compute "
        "| xai/peer e2e | peak GPU MiB peer / xai / e2e | inputs × samples |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        mem = " / ".join("-" if v is None else f"{v:,.0f}" for v in r["peak_mib"].values())
        arith = r.get("arithmetic")
        prec = r.get("precision", "fp32") + (f" ({arith})" if arith and arith != r.get("precision", "fp32") else "")
        lines.append(f"| {r['method']} | {r['peer'] or '(none has it)'} | {rate(r['peer_img_s'])} | {prec} | "
                     f"{rate(r['xai_compute_img_s'])} | {rate(r['xai_e2e_img_s'])} | {num(r['ratio_compute'])} | "
                     f"{num(r['ratio_e2e'])} | {mem} | {r['inputs']}{e2e_n(r)} × {r['samples'] or 1} |")
    if report.get("rounds", 1) > 1:
        loads = sorted({v for r in report["rows"] for v in r["rounds"]["load_average_1min"]})
        lines += ["", f"Median of {report['rounds']} interleaved rounds per figure (each round measures every "
                      f"side once); 1-minute load average after each round {loads[0]:.1f}–{loads[-1]:.1f}. "
                      "Per-round figures: the .json."]
    lines += ["", *[f"- {n}" for n in dict.fromkeys(report["notes"])]]
    if report.get("profile"):
        p = report["profile"]
        lines += ["", f"## xai Grad-CAM end to end, cProfile, {p['inputs']} inputs, everything in one thread", "",
                  "| stage | ms per input |", "|---|---|",
                  *[f"| {k.replace(' ', '&nbsp;', len(k) - len(k.lstrip()))} | {v:.2f} |" for k, v in p["ms_per_input"].items()]]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--size", choices=sorted(SIZES), default="small", help="preset (see bench/common.py)")
    p.add_argument("--methods", default=",".join(CASES), help=f"comma list from: {', '.join(CASES)}")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results", help="where the table goes")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (CPU); on a busy shared box 1 can beat 2 by 10x")
    p.add_argument("--profile", action="store_true", help="also cProfile xai's Grad-CAM path end to end")
    p.add_argument("--e2e-inputs", type=int, default=0,
                   help="inputs for the end-to-end runs (default: as compute-only); e.g. 256 (one-pass methods) or 4 "
                        "(LIME, SHAP) so start-up does not dominate")
    p.add_argument("--precision", default="fp32",
                   help="xai's precision (compute-only and end to end): fp32, bf16, or fp32,bf16 for both "
                        "against the same peer runs")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure every side of a case this many times, interleaved, and report the median (default 1)")
    p.add_argument("--name", help="the result files' name before the date (default: <device>-<size>, and the "
                                  "precisions after the date)")
    p.add_argument("--no-e2e", action="store_true", help="compute-only rows (skip xai's end-to-end runs)")
    return p.parse_args(argv)


def prepare(size: Size, cases: list[str], device: torch.device, xai_ok: bool, folder: Path, e2e_inputs: int = 0,
            precisions: tuple[str, ...] = ("fp32",), e2e: bool = True) -> tuple[dict, dict]:
    """Inputs, models, targets and the ceiling: what every row shares."""
    n_max = max(_count(c, size) for c in cases)
    files = write_jpegs(folder, max(n_max, e2e_inputs), size.photo)
    cnn = build_cnn(size.cnn).to(device)
    spec = register_model(size.cnn, cnn, size.side)
    x = preload(spec, files[:n_max], device)
    with torch.no_grad():
        targets = torch.cat([cnn(x[s:s + size.batch]).argmax(1) for s in range(0, n_max, size.batch)])  # top-1
    layer = None
    if xai_ok:
        from xai_cli.models.layers import find_spatial_layer, get_layer

        layer = get_layer(cnn, find_spatial_layer(cnn, x[:1]))  # the layer xai's Grad-CAM uses: peers get it too
    models = {}
    for p in precisions:
        if p == "bf16":  # xai's copy goes channels_last; the peers keep the model as built
            import copy

            bf16_cnn = copy.deepcopy(cnn).to(memory_format=torch.channels_last)
            models[p] = (bf16_cnn, register_model(f"{size.cnn}-bf16", bf16_cnn, size.side))
        else:
            models[p] = (cnn, spec)
    xai_cnn, xai_spec = models[precisions[0]]
    env = {"device": device, "xai": xai_ok, "e2e": e2e, "e2e_inputs": e2e_inputs, "cnn": (xai_cnn, xai_spec, x, targets, files),
           "models": {"cnn": models}, "ctx": Context(cnn, layer, device, size.rows, x[:8])}
    b = min(size.batch, n_max)
    ceil = {"fwd_bwd_img_s": ceiling(cnn, x[:b], targets[:b], device, size.repeats).items_per_second,
            "fwd_img_s": ceiling(cnn, x[:b], targets[:b], device, size.repeats, backward=False).items_per_second}
    if "attention" in cases:
        vit = build_vit(size.vit, size.side).to(device)
        env["vit"] = (vit, register_model(size.vit, vit, size.side), x, targets, files)
        env["models"]["vit"] = {p: env["vit"][:2] for p in precisions}  # autocast only: no layout change
        ceil["vit_fwd_img_s"] = ceiling(vit, x[:b], targets[:b], device, size.repeats, backward=False).items_per_second
    return env, ceil


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cases = [c.strip() for c in args.methods.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown or not cases:
        print(f"error: unknown method {(unknown or [''])[0]!r}; choose from {', '.join(CASES)}", file=sys.stderr)
        return 2
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    precisions = tuple(dict.fromkeys(p.strip() for p in args.precision.split(",") if p.strip()))
    if not precisions or any(p not in ("fp32", "bf16") for p in precisions) or args.rounds < 1:
        print(f"error: --precision takes fp32, bf16 or fp32,bf16 (got {args.precision!r}); --rounds at least 1",
              file=sys.stderr)
        return 2
    size, notes, started, load_start = SIZES[args.size], [], dt.datetime.now(), os.getloadavg()
    PRECISION["value"] = precisions[0]
    if args.threads:
        torch.set_num_threads(args.threads)
    slug = re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower() if device.type == "cuda" else "cpu")
    suffix = "" if args.name or precisions == ("fp32",) else "-" + "-".join(precisions)
    stem = args.out / f"{args.name or slug.strip('-') + '-' + args.size}-{started:%Y-%m-%d}{suffix}"
    args.out.mkdir(parents=True, exist_ok=True)
    xai_ok = bool(_try("xai's methods (import xai_cli.methods)", lambda: __import__("xai_cli.methods") and True, notes))
    with tempfile.TemporaryDirectory(prefix="xai-bench-in-") as tmp:
        env, ceil = prepare(size, cases, device, xai_ok, Path(tmp), args.e2e_inputs, precisions, not args.no_e2e)
        rows = []
        for c in cases:
            note(f"measuring {c} ...")
            rows += run_case(c, size, env, notes, args.rounds)
        profile = None
        if args.profile and xai_ok:
            _, spec, _, _, files = env["cnn"]
            profile = _try("profile", lambda: profile_end_to_end(spec, files[:size.n_fast], size, device,
                                                                 stem.with_suffix(".prof")), notes)
    import torchvision

    report = {"date": started.isoformat(timespec="seconds"), "size_name": args.size, "size": size.to_dict(),
              "precision": ",".join(precisions), "precisions": list(precisions), "rounds": args.rounds,
              "e2e_inputs": args.e2e_inputs, "load_average": {"start": load_start, "end": os.getloadavg()},
              "device": {"type": device.type, "name": device_name(device)},
              "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                           "python": platform.python_version()},
              "ceiling": ceil, "rows": rows, "notes": notes, "profile": profile}
    text = markdown(report)
    print(text)
    save_report(stem, report, text)
    print(f"saved {stem}.md and .json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
