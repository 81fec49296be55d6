"""Options shared by commands, defined once so a flag has the same name and help everywhere.

Each command takes these as ``Annotated`` parameters and passes them to ``run_options`` to get
the config overrides; ``audit`` and ``compare`` reuse them as they are.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or info lines; warnings and errors still go to stderr.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug lines and tracebacks on stderr.")]
Format = Annotated[OutputFormat, typer.Option("--format", help="What goes to stdout: a text line, or the run summary as JSON.")]
ConfigFile = Annotated[Path | None, typer.Option("--config", "-c", help="A TOML run config (see configs/); flags override its keys.", exists=False)]

Inputs = Annotated[list[Path] | None, typer.Argument(help="Image or text (.txt, .jsonl) files or folders (walked recursively, sorted).", show_default=False)]
Model = Annotated[str | None, typer.Option("--model", "-m", help="Model name (see 'xai models'), e.g. resnet50 or demo-digits.")]
Methods = Annotated[str | None, typer.Option("--method", help="Methods, comma-separated, or 'all' (see 'xai methods'). [default: gradcam for images, ig for text]")]
Weights = Annotated[str | None, typer.Option("--weights", "-w", help="DEFAULT (torchvision's, downloaded once), none (random init), a weights enum name, or a .pt/.pth/.safetensors state dict.")]
Labels = Annotated[Path | None, typer.Option("--labels", help="Class labels: one per line, or a JSON list.")]
Out = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder; mirrors the input tree. [default: xai-out]")]
Layer = Annotated[str | None, typer.Option("--layer", help="Grad-CAM layer, dotted name (default: found automatically).")]
TargetClass = Annotated[str | None, typer.Option("--target", help="Explain this class (index or label) instead of the top prediction.")]
TopK = Annotated[int | None, typer.Option("--top-k", "-k", min=1, help="Explain the k most probable classes. [default: 1]")]
Param = Annotated[list[str] | None, typer.Option("--param", "-p", help="A method parameter, METHOD.NAME=VALUE (repeatable).")]
BatchSize = Annotated[int | None, typer.Option("--batch-size", "-b", min=1, help="Inputs per batch. Results do not depend on it. [default: 32]")]
Device = Annotated[str | None, typer.Option("--device", "-d", help="auto, cpu, cuda or cuda:N; several, comma-separated, or cuda:all: one engine process per device. [default: auto]")]
Precision = Annotated[str | None, typer.Option("--precision", help="The model's arithmetic: fp32, or bf16 autocast where the CPU (AMX/AVX-512 BF16) or GPU has it, for each method as far as its measured policy allows (xai methods; the others run in fp32, with a warning); maps and statistics stay fp32, each record says its maps' precision. [default: fp32]")]
Workers = Annotated[int | None, typer.Option("--workers", min=0, help="Decode processes (0: decode in the main process). [default: spare cores, ≤ 8]")]
Seed = Annotated[int | None, typer.Option("--seed", help="Seed of sampling methods, reset for every input. [default: 0]")]
MaxPixels = Annotated[int | None, typer.Option("--max-pixels", help="Refuse images larger than this many pixels (decompression-bomb guard). [default: PIL's 89 M]")]
TrustCheckpoint = Annotated[bool | None, typer.Option("--trust-checkpoint", help="Allow unpickling full-model checkpoints and TorchScript (runs code from the file).")]
TrustRemoteCode = Annotated[bool | None, typer.Option("--trust-remote-code", help="Let a Hugging Face repo run its own code.")]
AllowUntrainedHead = Annotated[bool | None, typer.Option("--allow-untrained-head", help="Explain a Hugging Face model whose classification head is not in its checkpoint (random): for testing only.")]
Force = Annotated[bool | None, typer.Option("--force", help="Redo every input. Default: resume, skipping inputs whose outputs are complete for the same content and settings.")]
MaxFailures = Annotated[int | None, typer.Option("--max-failures", min=0, help="Stop once more than N inputs have failed (exit 1).")]
Report = Annotated[bool, typer.Option("--report", help="Also write the run's HTML report (OUT/report/index.html, as 'xai report OUT').")]
Decode = Annotated[str | None, typer.Option("--decode", help="Where JPEGs are decoded: cpu (the loader's workers, with PIL) or device (torchvision.io on the run's device: nvJPEG on a GPU; pixels within a few levels of PIL's). Other formats always decode on the CPU. [default: cpu]")]
Overlay = Annotated[str | None, typer.Option("--overlay", help="side-by-side: the input, then the map over a grey copy of it; blend: the map over the grey copy only. [default: side-by-side]")]
Cmap = Annotated[str | None, typer.Option("--cmap", help="Colour map of non-negative maps: turbo, viridis, inferno or gray (signed maps: red for, blue against). [default: turbo]")]
ScaleOpt = Annotated[str | None, typer.Option("--scale", help="input: each picture's colours span its own map; run: one scale per method for the whole run, set by the first 8 inputs explained. [default: input]")]
Shard = Annotated[str | None, typer.Option("--shard", help="Explain part K of N of the inputs (K from 0), by a hash of each path; 'auto' reads Slurm arrays, Kubernetes indexed Jobs (with XAI_SHARD_COUNT) or torchrun. Shards share --out; the last to finish merges.")]
Backend = Annotated[str | None, typer.Option("--backend", help="local (this machine; --device cuda:0,cuda:1 runs one engine process per device) or ray (Ray Data; pip install 'xai-cli[ray]'). [default: local]")]
RayAddress = Annotated[str | None, typer.Option("--ray-address", help="The Ray cluster to join with --backend ray (default: RAY_ADDRESS, else a local instance).")]
FailOnError = Annotated[bool, typer.Option("--fail-on-error", help="Stop at the first failed input (same as --max-failures 0).")]


def run_options(*, inputs, model, method, weights, labels, out, layer, target, top_k, param, batch_size, device,
                workers, seed, max_pixels, trust_checkpoint, trust_remote_code, allow_untrained_head, force,
                max_failures, fail_on_error, overlay=None, cmap=None, scale=None,
                shard=None, backend=None, ray_address=None, precision=None, decode=None) -> dict:
    """The config overrides of the shared options (``None``: not given on the command line)."""
    from xai_cli.config import parse_param

    params = parse_param(param or [])
    if layer is not None:
        params.setdefault("gradcam", {})["layer"] = layer
    return {
        "model": model, "weights": weights, "labels": labels, "out": out, "target": target, "top_k": top_k,
        "methods": tuple(m.strip() for m in method.split(",")) if method else None,
        "inputs": tuple(inputs) if inputs else None, "batch_size": batch_size, "device": device,
        "precision": precision, "decode": decode,
        "workers": workers, "seed": seed, "max_pixels": max_pixels, "trust_checkpoint": trust_checkpoint,
        "trust_remote_code": trust_remote_code, "params": params, "allow_untrained_head": allow_untrained_head,
        "force": force, "max_failures": 0 if fail_on_error else max_failures,
        "overlay": overlay, "cmap": cmap, "scale": scale,
        "shard": shard, "backend": backend, "ray_address": ray_address,
    }
