"""xai's side of the benchmark: its methods called directly on a preloaded batch (compute only),
and its whole pipeline, files in -> PNG + JSON on disk (end to end).

The pipeline loads the benchmark's own seeded model object through a model source registered
here (``bench:<name>``), so both sides run the very same module and preprocessing.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import torch
from torch import nn

from common import IMAGENET_MEAN, IMAGENET_STD, Size


@dataclass(frozen=True)
class Case:
    """One benchmark row's xai side: a registered method and its parameters."""

    method: str  # the registry name
    params: Callable[[Size], dict]  # from the size preset
    samples: Callable[[Size], int | None]  # steps/samples per input (None: one pass)
    slow: bool = False  # many passes per input: fewer inputs, one timed repeat
    vit: bool = False


CASES: dict[str, Case] = {
    "gradcam": Case("gradcam", lambda s: {}, lambda s: None),
    "saliency": Case("saliency", lambda s: {}, lambda s: None),
    "guided_backprop": Case("guided_backprop", lambda s: {}, lambda s: None),
    "ig": Case("ig", lambda s: {"steps": s.ig_steps, "internal_batch_size": s.rows}, lambda s: s.ig_steps, True),
    # perturbations_per_eval left at xai's default: the device's own batch (_perturb.eval_rows).
    # KernelSHAP too: at 32 rows (the preset's) its fp32 forwards took 18.9-20.9 s CPU per input,
    # at the default 8 rows on one thread 17.9-18.2 (bf16 within noise, 9.2-10.8 either way).
    "lime": Case("lime", lambda s: {"n_samples": s.lime_samples}, lambda s: s.lime_samples, True),
    "shap": Case("shap", lambda s: {"n_samples": s.kernel_evals}, lambda s: s.kernel_evals, True),
    "shap_gradient": Case("shap", lambda s: {"algorithm": "gradient", "n_samples": s.gradient_samples,
                                             "perturbations_per_eval": s.rows}, lambda s: s.gradient_samples, True),
    "attention": Case("attention", lambda s: {}, lambda s: None, vit=True),
}

_BENCH_MODELS: dict[str, tuple[nn.Module, object]] = {}
PRECISION = {"value": "fp32"}  # xai's --precision for every run of this process (bench.py --precision)


def register_model(name: str, module: nn.Module, side: int) -> str:
    """Make ``module`` loadable by ``xai_cli.api`` as ``bench:<name>``; returns that spec."""
    from xai_cli.models.preprocess import Preprocess
    from xai_cli.models.registry import register_source

    if not _BENCH_MODELS:
        register_source("bench", description="the benchmark's seeded models", claims=lambda s: s in _BENCH_MODELS,
                        names=lambda: sorted(_BENCH_MODELS))(_load)
    spec = f"bench:{name}"
    preprocess = Preprocess(resize_size=round(side * 256 / 224), crop_size=side, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    _BENCH_MODELS[spec] = (module, preprocess)
    return spec


def _load(request):
    from xai_cli.models.registry import LoadedModel

    module, preprocess = _BENCH_MODELS[request.spec]
    return LoadedModel(module, request.spec, "bench", "none (seeded random)", True, None, preprocess)


def preload(spec: str, files: list[Path], device: torch.device) -> torch.Tensor:
    """The files decoded and preprocessed by xai's own decoder, as one (N, 3, H, W) device tensor."""
    from xai_cli.modalities.image.decode import decode_image
    from xai_cli.inputs.discover import InputFile

    _, preprocess = _BENCH_MODELS[spec]
    items = [decode_image(i, InputFile(p, Path(p.name)), p.read_bytes(), preprocess) for i, p in enumerate(files)]
    return torch.stack([it.tensor for it in items]).to(device)


def method_runner(case: Case, size: Size, model: nn.Module, samples: int | None = None,
                  precision: str | None = None) -> Callable:
    """``run(x, targets)``: ``Method.explain`` on a preloaded batch, ``size.batch`` inputs per call,
    at the arithmetic the method's bf16 policy gives ``precision`` (default: this process's
    ``PRECISION``), as the engine runs it.

    Raises:
        Exception: Whatever the registry or the method's constructor raises (the caller notes it).
    """
    from xai_cli.methods import Normalization, build_params, get_method

    params = case.params(size)
    if samples is not None:
        params = {**params, "steps" if case.method == "ig" else "n_samples": samples}
    cls = get_method(case.method, "image")
    method = cls(model, build_params(cls, params), Normalization(IMAGENET_MEAN, IMAGENET_STD))

    from xai_cli.core.precision import arithmetic, autocast_model, prepare_inputs

    arith = arithmetic(precision or PRECISION["value"], method.bf16_policy()[0])

    def run(x, targets):
        with autocast_model(model, arith, x.device):
            for s in range(0, x.shape[0], size.batch):
                xb = prepare_inputs(x[s:s + size.batch], arith)
                method.explain(xb, targets[s:s + size.batch], list(range(s, s + xb.shape[0])))

    run.arithmetic = arith
    return run


def end_to_end(spec: str, files: list[Path], case: Case, size: Size, device: torch.device, workers: int | None = None,
               precision: str | None = None) -> dict:
    """Run ``xai_cli.api.run`` on ``files`` into a fresh folder at ``precision`` (default: this
    process's ``PRECISION``); return run.json's figures.

    Returns:
        ``inputs_per_second`` (run.json: inputs / (total - model load)), counts, the method's
        own seconds, ``peak_mib`` on CUDA, and ``out``'s run.json timings.
    """
    from xai_cli import console
    from xai_cli.config import build_config
    from xai_cli.api import run

    console.configure(quiet=True)
    with tempfile.TemporaryDirectory(prefix="xai-bench-out-") as out:
        cfg = build_config(None, {"model": spec, "inputs": tuple(files), "out": Path(out), "methods": (case.method,),
                                  "params": {case.method: case.params(size)}, "batch_size": size.batch,
                                  "device": str(device), "force": True, "workers": workers,
                                  "precision": precision or PRECISION["value"]})
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        summary = run(cfg)
        timings = json.loads((Path(out) / "run.json").read_text())["timings"]
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"inputs_per_second": timings["inputs_per_second"], "ok": summary.ok, "failed": summary.failed,
            "peak_mib": peak, "timings": timings}


# Stages of the end-to-end path, as (file suffix, function) whose cumulative time is reported.
STAGES = [
    ("read file", "inputs/read.py", "read_input"),
    ("decode + preprocess (incl. sha256)", "modalities/image/decode.py", "decode_image"),
    ("  of which preprocess_image", "models/preprocess.py", "preprocess_image"),
    ("engine: predict + gradcam + stats", "core/engine.py", "_explain"),
    ("  gradcam (Method._explain)", "methods/gradcam.py", "_explain"),
    ("  attribution_stats", "modalities/image/stats.py", "attribution_stats"),
    ("writer: write_result (all below)", "sinks/files/records.py", "write_result"),
    ("  input at display size", "render/heatmap.py", "prepare"),
    ("  panel_pixels", "render/heatmap.py", "panel_pixels"),
    ("    the map's colours", "render/heatmap.py", "_coloured_grey"),
    ("    text lines", "render/fonts.py", "draw_line"),
    ("    colour bar", "render/heatmap.py", "_bar_pixels"),
    ("  encode_png", "render/png.py", "encode_png"),
    ("  atomic.write_bytes (PNG + JSON)", "sinks/files/atomic.py", "write_bytes"),
    ("    of which os.fsync", "~", "<built-in method posix.fsync>"),
    ("  atomic.write_json (dumps + write)", "sinks/files/atomic.py", "write_json"),
    ("manifest line", "sinks/files/writer.py", "_write_line"),
]


def profile_end_to_end(spec: str, files: list[Path], size: Size, device: torch.device, dump: Path | None = None
                       ) -> dict:
    """cProfile one Grad-CAM pipeline run with everything in the main thread (decode: workers=0;
    the writer runs each job inline), so every stage is seen; returns ms per input per stage."""
    from xai_cli.sinks.files.writer import Writer

    class InlineWriter(Writer):
        def submit(self, job):
            self._write_line(job())

    profiler = cProfile.Profile()
    with mock.patch("xai_cli.sinks.files.Writer", InlineWriter):
        profiler.enable()
        result = end_to_end(spec, files, CASES["gradcam"], size, device, workers=0)
        profiler.disable()
    stats = pstats.Stats(profiler)
    if dump is not None:
        stats.dump_stats(str(dump))
    n = len(files)
    cumulative = {}
    for label, suffix, name in STAGES:
        cumulative[label] = 1000 * sum(v[3] for (f, _, fn), v in stats.stats.items()
                                       if fn == name and f.replace("\\", "/").endswith(suffix)) / n
    t = result["timings"]
    return {"inputs": n, "inputs_per_second_profiled": result["inputs_per_second"],
            "ms_per_input": {"total minus load (profiled)": 1000 * (t["total_seconds"] - t["load_seconds"]) / n,
                             "predict forward (engine's clock)": 1000 * t["predict_seconds"] / n,
                             **cumulative}}
