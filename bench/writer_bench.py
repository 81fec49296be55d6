"""The writer's CPU cost per picture and per input, by stage: render (the input at display
size, the map's colours, text, colour bar), PNG, files + JSON record, manifest line (issue 14,
goal 2: ≤ 5 ms per 224² input and method, ≤ 20 ms for a 1024² photo).

    python bench/writer_bench.py                  # photos of 256² (the 224² model input) and 1024²
    python bench/writer_bench.py --methods gradcam    # one picture per input
    python bench/writer_bench.py --baseline /tmp/main-export --rounds 3   # before/after, interleaved

Results come from xai's own pipeline (``api.explain``, by default Grad-CAM and IG on the
bench's seeded resnet18, so one unsigned and one signed map per input); each is then written
``--repeats`` times by the files sink's own ``write_result`` into a temporary folder, in this
thread, and the thread's CPU time (``time.thread_time``: not the wall clock, so other jobs on a
shared box count little) is summed per stage by wrapping the stage functions. The writer's
caches are emptied before each repeat (the text masks, the input kept for its next map), so a
repeat costs what writing those inputs the first time costs: every input prepares its photo,
and only the lines the inputs share (the model, the legend, ...) are drawn from the cache.

``--baseline DIR`` measures another checkout's ``xai_cli`` (e.g. ``git archive main``) on the
same inputs in the same run: each round runs the baseline, then this checkout, each in its own
process (``--code``), and the table gives each stage's median over the rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from unittest import mock

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# The xai_cli to measure: this checkout, or the one after --code (a baseline's worker process).
_CODE = sys.argv[sys.argv.index("--code") + 1] if "--code" in sys.argv[:-1] else str(HERE.parent)
sys.path.insert(1, _CODE)

import torch  # noqa: E402

from common import build_cnn, cpu_model, save_report, write_jpegs  # noqa: E402
from xai_runs import register_model  # noqa: E402

# (label, module to patch, attribute): wrapped so their thread CPU time is summed.
STAGES = [
    ("picture (all)", "xai_cli.modalities.image", "ImageModality.picture"),
    ("  input at display size (once per input)", "xai_cli.modalities.image.picture", "prepare"),
    ("  panel_pixels", "xai_cli.modalities.image.picture", "panel_pixels"),
    ("    colour scale", "xai_cli.render.heatmap", "choose_scale"),
    ("    the map's colours", "xai_cli.render.heatmap", "_coloured_grey"),
    ("      resample map to image", "xai_cli.render.heatmap", "_resample_inside"),
    ("    text lines (bar labels too)", "xai_cli.render.heatmap", "draw_line"),
    ("      measured to wrap", "xai_cli.render.heatmap", "text_length"),
    ("      FreeType (lines not cached)", "xai_cli.render.fonts", "line_mask"),
    ("    colour bar", "xai_cli.render.heatmap", "_bar_pixels"),
    ("    peak marker", "xai_cli.render.heatmap", "_mark_pixels"),
    ("encode_png", "xai_cli.sinks.files.records", "encode_png"),
    ("atomic writes (PNG + record)", "xai_cli.sinks.files.atomic", "write_bytes"),
    ("record JSON (dumps + write)", "xai_cli.sinks.files.atomic", "write_json"),
]


@contextlib.contextmanager
def timed_stages(totals: dict[str, float]):
    """Patch each stage function with a wrapper adding its thread CPU seconds to ``totals``."""
    import importlib

    with contextlib.ExitStack() as stack:
        for label, module, attr in STAGES:
            mod = importlib.import_module(module)
            if "." in attr:  # a method: patch it on its class
                cls_name, attr = attr.split(".")
                mod = getattr(mod, cls_name)
            fn = getattr(mod, attr, None)
            if fn is None:  # another version of the writer (a before/after run): no such stage
                totals[label] = float("nan")
                continue

            def wrapper(*a, _fn=fn, _label=label, **kw):
                t = time.thread_time()
                try:
                    return _fn(*a, **kw)
                finally:
                    totals[_label] += time.thread_time() - t

            stack.enter_context(mock.patch.object(mod, attr, wrapper))
        yield


def results_for(side: int, n: int, folder: Path, spec: str, methods: tuple[str, ...], max_side: int | None = None):
    from xai_cli import api, console

    console.configure(quiet=True)
    files = write_jpegs(folder / f"in{side}", n, side)
    cfg = api.RunConfig(model=spec, methods=methods, inputs=tuple(files), workers=0, device="cpu",
                        batch_size=n, params={"ig": {"steps": 4}} if "ig" in methods else {},
                        **({"render_max_side": max_side} if max_side else {}))
    session = __import__("xai_cli.runner", fromlist=["prepare"]).prepare(cfg)
    return list(api.explain(cfg)), session.info


def cache_emptier():
    """A function emptying what the writer keeps between pictures, so repeats do not flatter it."""
    from xai_cli.modalities.image import picture
    from xai_cli.render import fonts

    def forget() -> None:
        getattr(fonts, "clear_caches", lambda: None)()  # (absent from writers before these caches)
        getattr(picture, "forget", lambda: None)()

    return forget


def measure(results, info, repeats: int, folder: Path) -> dict:
    from xai_cli.sinks.files.layout import Layout
    from xai_cli.sinks.files.records import write_result
    from xai_cli.sinks.files.writer import Writer

    totals: dict[str, float] = defaultdict(float)
    out = folder / "out"
    # A folder per repeat: a run writes new files (replacing a file frees the old one's pages,
    # which doubled the cost of a write here: 0.34 against 0.17 ms for a 330 kB PNG).
    rels = [r.rel for r in results]
    layouts = [Layout(out / f"repeat{i}", rels) for i in range(repeats)]
    writer = Writer(out, 1)
    pictures = sum(len(r.maps) for r in results)
    for r in results[:1]:
        write_result(r, info, Layout(out / "warm-up", rels), False)  # fonts, first allocations, colour tables
    forget_caches = cache_emptier()
    with timed_stages(totals):
        t_all = time.thread_time()
        for layout in layouts:
            forget_caches()  # (a few µs, inside the timed total: the total errs high, not low)
            for r in results:
                t = time.thread_time()
                line = write_result(r, info, layout, False)
                totals["write_result (all)"] += time.thread_time() - t
                t = time.thread_time()
                writer._write_line(line)
                totals["manifest line"] += time.thread_time() - t
        total = time.thread_time() - t_all
    writer.close()
    n = repeats * pictures
    return {"pictures": n, "inputs": repeats * len(results), "size": list(results[0].item.original.shape[:2]),
            "ms_per_input": 1000 * total / (repeats * len(results)),
            "png_bytes": sum(p.stat().st_size for p in out.rglob("*.png")) / max(1, len(list(out.rglob("*.png")))),
            "ms_per_picture": {"total": 1000 * total / n,
                               **{k: 1000 * totals[k] / n for k in ["write_result (all)", *[s[0] for s in STAGES],
                                                                    "manifest line"]}}}


def _cell(v: float) -> str:
    return "—" if v != v else f"{v:.2f} ms"  # NaN: a stage the other writer does not have


def markdown(report: dict) -> str:
    runs = report["runs"]  # {"this": [sizes per round], "baseline": [...]}
    versions = [v for v in ("this", "baseline") if runs.get(v)]
    sides = list(runs["this"][0])
    med = {v: {side: _median(runs[v], side) for side in sides} for v in versions}
    first = med["this"][sides[0]]
    head = [f"{side} photo ({first_size(runs, side)}) {'this' if v == 'this' else 'baseline'}"
            for side in sides for v in versions]
    lines = [f"# Writer CPU per picture (thread CPU time): {report['cpu']}", "",
             f"{report['date']} · render_max_side {report['render_max_side']} · {' + '.join(report['methods'])} maps of the bench's resnet18 (224² input) · "
             f"{report['inputs']} inputs × {report['repeats']} repeats × {report['rounds']} rounds"
             + (" (baseline, then this checkout, each round)" if "baseline" in versions else "")
             + ", medians over the rounds · caches emptied before each repeat, a new folder per repeat · "
             f"one map per picture, {len(report['methods'])} pictures + one record + one manifest line per input · "
             f"1-min load average {report['load']}", "",
             "Per picture (one method's PNG; the input's record, manifest line and photo shared by its pictures):", "",
             "| stage | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    for k in first["ms_per_picture"]:
        label = k.replace(" ", "&nbsp;", len(k) - len(k.lstrip()))
        lines.append(f"| {label} | " + " | ".join(_cell(med[v][side]["ms_per_picture"].get(k, float("nan")))
                                                  for side in sides for v in versions) + " |")
    lines.append("| PNG size | " + " | ".join(f"{med[v][side]['png_bytes'] / 1024:.0f} kB"
                                            for side in sides for v in versions) + " |")
    lines.append(f"| **per input** ({len(report['methods'])} pictures + record + manifest line) | "
                 + " | ".join(_cell(med[v][side]["ms_per_input"]) for side in sides for v in versions) + " |")
    lines.append("| total per picture, each round | " + " | ".join(
        " / ".join(f"{r[side]['ms_per_picture']['total']:.2f}" for r in runs[v]) for side in sides for v in versions) + " |")
    if "baseline" in versions:
        lines += ["", "Baseline / this, total per picture: " + ", ".join(
            f"{side}: {med['baseline'][side]['ms_per_picture']['total'] / med['this'][side]['ms_per_picture']['total']:.2f}×"
            for side in sides)]
    lines += ["", *[f"- {n}" for n in report["notes"]]]
    return "\n".join(lines) + "\n"


def first_size(runs: dict, side: str) -> str:
    h, w = runs["this"][0][side]["size"]
    return f"{w}×{h}"


def _median(rounds: list[dict], side: str) -> dict:
    """Each number's median over the rounds."""
    per = [r[side] for r in rounds]
    return {"size": per[0]["size"], "png_bytes": statistics.median(p["png_bytes"] for p in per),
            "ms_per_input": statistics.median(p["ms_per_input"] for p in per),
            "ms_per_picture": {k: statistics.median(p["ms_per_picture"][k] for p in per) for k in per[0]["ms_per_picture"]}}


def measure_here(args, methods: tuple[str, ...]) -> dict:
    """{side: measure(...)} for the xai_cli on sys.path (this process)."""
    torch.set_num_threads(1)
    spec = register_model("resnet18", build_cnn("resnet18"), 224)
    sizes = {}
    with contextlib.ExitStack() as stack:
        tmp = args.work or stack.enter_context(tempfile.TemporaryDirectory(prefix="xai-writer-", dir=args.write_dir))
        for side in (int(s) for s in args.sides.split(",")):
            results, info = results_for(side, args.inputs, Path(tmp), spec, methods, args.render_max_side)
            sizes[f"{side}"] = measure(results, info, args.repeats, Path(tmp) / f"w{side}")
    return sizes


def _file_system(folder: Path) -> str:
    """``folder`` and the type of the file system it is on (from /proc/mounts; "?" elsewhere)."""
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return f"{folder} (?)"
    here = str(folder.resolve())
    point, kind = max(((m, t) for m, t in mounts if here == m or here.startswith(m.rstrip("/") + "/")),
                      key=lambda mt: len(mt[0]), default=("?", "?"))
    return f"{folder} ({kind}, mounted at {point})"


def measure_in_process(code: Path, argv: list[str]) -> dict:
    """One round for the checkout ``code``, in a fresh process (its own imports)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run([sys.executable, __file__, *argv, "--code", str(code), "--worker-json", f.name], check=True)
        return json.loads(Path(f.name).read_text())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sides", default="256,1024", help="photo sides (256: the 224² model input's photo)")
    p.add_argument("--inputs", type=int, default=4)
    p.add_argument("--methods", default="gradcam,ig", help="methods explained (one picture each per input)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rounds", type=int, default=1, help="rounds (each: the baseline, then this checkout)")
    p.add_argument("--baseline", type=Path, default=None, help="another checkout's root, measured in the same run")
    p.add_argument("--code", type=Path, default=None, help=argparse.SUPPRESS)  # read before the imports
    p.add_argument("--worker-json", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)  # a round's folder, kept
    p.add_argument("--write-dir", type=Path, default=None,
                   help="where the pictures are written (default: the temporary folder), e.g. /dev/shm to leave "
                        "the disk's file system out")
    p.add_argument("--render-max-side", type=int, default=None,
                   help="RunConfig.render_max_side (pictures are shrunk to this; default: the run's default)")
    p.add_argument("--tag", default="", help="suffix of the result files (e.g. before/after)")
    p.add_argument("--note", action="append", default=[])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args(argv)
    methods = tuple(args.methods.split(","))
    if args.worker_json:
        args.worker_json.write_text(json.dumps(measure_here(args, methods)))
        return 0
    started = dt.datetime.now()
    load = os.getloadavg()
    common = ["--sides", args.sides, "--inputs", str(args.inputs), "--methods", args.methods,
              "--repeats", str(args.repeats)] + (["--render-max-side", str(args.render_max_side)] if args.render_max_side else [])
    runs: dict[str, list[dict]] = {"this": [], "baseline": []}
    # Every round's files stay until the last round is done: on ext4, deleting thousands of
    # files made the next creations scan the freed inodes (``recently_deleted``, for a minute
    # or more): a file's creation went from 0.2 to 0.7 ms of kernel CPU here.
    with tempfile.TemporaryDirectory(prefix="xai-writer-", dir=args.write_dir) as parent:
        for i in range(args.rounds):
            if args.baseline:
                runs["baseline"].append(measure_in_process(args.baseline, [*common, "--work", f"{parent}/b{i}"]))
            runs["this"].append(measure_in_process(HERE.parent, [*common, "--work", f"{parent}/t{i}"]))
    from xai_cli.config import RunConfig

    load = " → ".join(f"{a:.1f}" for a in (load[0], os.getloadavg()[0]))  # at the start → at the end
    report = {"date": started.isoformat(timespec="seconds"), "cpu": cpu_model(), "repeats": args.repeats,
              "rounds": args.rounds, "runs": runs, "methods": methods, "inputs": args.inputs, "load": load,
              "baseline": str(args.baseline) if args.baseline else None,
              "render_max_side": args.render_max_side or RunConfig.render_max_side,
              "notes": [f"files written on {_file_system(args.write_dir or Path(tempfile.gettempdir()))}", *args.note]}
    text = markdown(report)
    print(text)
    save_report(args.out / f"writer-{started:%Y-%m-%d}{'-' + args.tag if args.tag else ''}", report, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
