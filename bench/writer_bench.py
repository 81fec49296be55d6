"""The writer's CPU cost per input, by stage: render (overlay, colour bar, fonts, text), PNG,
files + JSON record, manifest line (issue 14, goal 2: ≤ 5 ms per 224² input, ≤ 20 ms for a
1024² photo).

    python bench/writer_bench.py                  # photos of 256² (the 224² model input) and 1024²

Results come from xai's own pipeline (``api.explain``, Grad-CAM and IG on the bench's seeded
resnet18, so one unsigned and one signed map); each is then written ``--repeats`` times by
the files sink's own ``write_result`` into a temporary folder, in this thread, and the
thread's CPU time (``time.thread_time``: not the wall clock, so other jobs on a shared box
count little) is summed per stage by wrapping the stage functions.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from common import build_cnn, cpu_model, save_report, write_jpegs  # noqa: E402
from xai_runs import register_model  # noqa: E402
from xai_cli.config import RunConfig  # noqa: E402

# (label, module to patch, attribute): wrapped so their thread CPU time is summed.
STAGES = [
    ("render_panel (all)", "xai_cli.modalities.image.picture", "render_panel"),
    ("  overlay", "xai_cli.render.heatmap", "overlay"),
    ("    colour map (LUT)", "xai_cli.render.colormap", "apply"),
    ("    resample map to image", "xai_cli.render.heatmap", "to_image_grid"),
    ("  colour bar", "xai_cli.render.heatmap", "colour_bar"),
    ("  fonts", "xai_cli.render.heatmap", "font_pair"),
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
            fn = getattr(mod, attr)

            def wrapper(*a, _fn=fn, _label=label, **kw):
                t = time.thread_time()
                try:
                    return _fn(*a, **kw)
                finally:
                    totals[_label] += time.thread_time() - t

            stack.enter_context(mock.patch.object(mod, attr, wrapper))
        yield


def results_for(side: int, n: int, folder: Path, spec: str, max_side: int | None = None):
    from xai_cli import api, console

    console.configure(quiet=True)
    files = write_jpegs(folder / f"in{side}", n, side)
    cfg = api.RunConfig(model=spec, methods=("gradcam", "ig"), inputs=tuple(files), workers=0, device="cpu",
                        batch_size=n, params={"ig": {"steps": 4}},
                        **({"render_max_side": max_side} if max_side else {}))
    session = __import__("xai_cli.runner", fromlist=["prepare"]).prepare(cfg)
    return list(api.explain(cfg)), session.info


def measure(results, info, repeats: int, folder: Path) -> dict:
    from xai_cli.sinks.files.layout import Layout
    from xai_cli.sinks.files.records import write_result
    from xai_cli.sinks.files.writer import Writer

    totals: dict[str, float] = defaultdict(float)
    out = folder / "out"
    layout = Layout(out, [r.rel for r in results])
    writer = Writer(out, 1)
    pictures = sum(len(r.maps) for r in results)
    for r in results[:1]:
        write_result(r, info, layout, False)  # warm-up: fonts, first allocations
    with timed_stages(totals):
        t_all = time.thread_time()
        for _ in range(repeats):
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
    return {"pictures": n, "size": list(results[0].item.original.shape[:2]),
            "png_bytes": sum(p.stat().st_size for p in out.rglob("*.png")) / max(1, len(list(out.rglob("*.png")))),
            "ms_per_picture": {"total": 1000 * total / n,
                               **{k: 1000 * totals[k] / n for k in ["write_result (all)", *[s[0] for s in STAGES],
                                                                    "manifest line"]}}}


def markdown(report: dict) -> str:
    lines = [f"# Writer CPU per picture (thread CPU time): {report['cpu']}", "",
             f"{report['date']} · render_max_side {report['render_max_side']} · Grad-CAM + IG maps of the bench's resnet18 (224² input) · {report['repeats']} repeats · "
             "one map per picture; a 224² input with one method writes one picture, one record, one manifest line", "",
             "| stage | " + " | ".join(f"{k} photo ({v['size'][1]}×{v['size'][0]})" for k, v in report["sizes"].items()) + " |",
             "|---|" + "---|" * len(report["sizes"])]
    keys = list(next(iter(report["sizes"].values()))["ms_per_picture"])
    for k in keys:
        label = k.replace(" ", "&nbsp;", len(k) - len(k.lstrip()))
        lines.append(f"| {label} | " + " | ".join(f"{v['ms_per_picture'][k]:.2f} ms" for v in report["sizes"].values()) + " |")
    lines.append("| PNG size | " + " | ".join(f"{v['png_bytes'] / 1024:.0f} kB" for v in report["sizes"].values()) + " |")
    lines += ["", *[f"- {n}" for n in report["notes"]]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sides", default="256,1024", help="photo sides (256: the 224² model input's photo)")
    p.add_argument("--inputs", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--render-max-side", type=int, default=None,
                   help="RunConfig.render_max_side (pictures are shrunk to this; default: the run's default)")
    p.add_argument("--tag", default="", help="suffix of the result files (e.g. before/after)")
    p.add_argument("--note", action="append", default=[])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    started = dt.datetime.now()
    spec = register_model("resnet18", build_cnn("resnet18"), 224)
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="xai-writer-") as tmp:
        for side in (int(s) for s in args.sides.split(",")):
            results, info = results_for(side, args.inputs, Path(tmp), spec, args.render_max_side)
            sizes[f"{side}"] = measure(results, info, args.repeats, Path(tmp) / f"w{side}")
    cpu = cpu_model()
    report = {"date": started.isoformat(timespec="seconds"), "cpu": cpu, "repeats": args.repeats, "sizes": sizes,
              "render_max_side": args.render_max_side or RunConfig.render_max_side,
              "notes": args.note}
    text = markdown(report)
    print(text)
    save_report(args.out / f"writer-cpu-{started:%Y-%m-%d}{'-' + args.tag if args.tag else ''}", report, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
