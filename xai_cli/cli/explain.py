"""``xai explain``: parse options, build the config, call ``pipeline.run``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from xai_cli import console
from xai_cli.cli._errors import EXIT_CODES_HELP, handle_errors
from xai_cli.cli._options import ConfigFile, Format, OutputFormat, Quiet, Verbose
from xai_cli.config import build_config, parse_param

EXAMPLES = """\b
Examples:

  xai explain --model demo-digits --method gradcam sample_images/ --out xai-out

  xai explain --model resnet50 --method gradcam imgs/

  xai explain --model demo-text --method ig,shap,lime sample_texts/

  xai explain --model resnet18 --weights ft.safetensors --labels labels.txt --method gradcam --top-k 3 imgs/

  xai explain --config configs/resnet50-gradcam.toml --device cuda --batch-size 64 imgs/

  xai explain --model resnet50 --method gradcam --param gradcam.layer=layer3 --format json imgs/
"""


@handle_errors
def explain(
    inputs: Annotated[list[Path] | None, typer.Argument(help="Image or text (.txt, .jsonl) files or folders (walked recursively, sorted).", show_default=False)] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model name (see 'xai models'), e.g. resnet50 or demo-digits.")] = None,
    method: Annotated[str | None, typer.Option("--method", help="Methods, comma-separated, or 'all' (see 'xai methods'). [default: gradcam for images, ig for text]")] = None,
    weights: Annotated[str | None, typer.Option("--weights", "-w", help="DEFAULT (torchvision's, downloaded once), none (random init), a weights enum name, or a .pt/.pth/.safetensors state dict.")] = None,
    labels: Annotated[Path | None, typer.Option("--labels", help="Class labels: one per line, or a JSON list.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder; mirrors the input tree. [default: xai-out]")] = None,
    layer: Annotated[str | None, typer.Option("--layer", help="Grad-CAM layer, dotted name (default: found automatically).")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Explain this class (index or label) instead of the top prediction.")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", "-k", min=1, help="Explain the k most probable classes. [default: 1]")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="A method parameter, METHOD.NAME=VALUE (repeatable).")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", "-b", min=1, help="Inputs per batch. Results do not depend on it. [default: 32]")] = None,
    device: Annotated[str | None, typer.Option("--device", "-d", help="auto, cpu, cuda or cuda:N. [default: auto]")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=0, help="Decode processes (0: decode in the main process). [default: spare cores, ≤ 8]")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of sampling methods, reset for every input. [default: 0]")] = None,
    save_raw: Annotated[bool | None, typer.Option("--save-raw/--no-save-raw", help="Also write each raw map as .npy (float32, model-input pixels).")] = None,
    max_pixels: Annotated[int | None, typer.Option("--max-pixels", help="Refuse images larger than this many pixels (decompression-bomb guard). [default: PIL's 89 M]")] = None,
    trust_checkpoint: Annotated[bool | None, typer.Option("--trust-checkpoint", help="Allow unpickling full-model checkpoints and TorchScript (runs code from the file).")] = None,
    trust_remote_code: Annotated[bool | None, typer.Option("--trust-remote-code", help="Let a Hugging Face repo run its own code.")] = None,
    allow_untrained_head: Annotated[bool | None, typer.Option("--allow-untrained-head", help="Explain a Hugging Face model whose classification head is not in its checkpoint (random): for testing only.")] = None,
    force: Annotated[bool | None, typer.Option("--force", help="Redo every input. Default: resume, skipping inputs whose outputs are complete for the same content and settings.")] = None,
    max_failures: Annotated[int | None, typer.Option("--max-failures", min=0, help="Stop once more than N inputs have failed (exit 1).")] = None,
    fail_on_error: Annotated[bool, typer.Option("--fail-on-error", help="Stop at the first failed input (same as --max-failures 0).")] = False,
    config: ConfigFile = None,
    fmt: Format = OutputFormat.text,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Explain a model's predictions on a folder of images or texts.

    Writes, mirroring the input tree under --out: <stem>.<method>.png per method,
    <stem>.json per input, and manifest.jsonl + run.json for the run.
    """
    console.configure(quiet=quiet, verbose=verbose)
    from xai_cli import pipeline  # heavy imports (torch) only when a command runs

    params = parse_param(param or [])
    if layer is not None:
        params.setdefault("gradcam", {})["layer"] = layer
    cfg = build_config(config, {
        "model": model, "weights": weights, "labels": labels, "out": out, "target": target, "top_k": top_k,
        "methods": tuple(m.strip() for m in method.split(",")) if method else None,
        "inputs": tuple(inputs) if inputs else None, "batch_size": batch_size, "device": device,
        "workers": workers, "seed": seed, "save_raw": save_raw, "max_pixels": max_pixels,
        "trust_checkpoint": trust_checkpoint, "trust_remote_code": trust_remote_code, "params": params,
        "allow_untrained_head": allow_untrained_head,
        "force": force, "max_failures": 0 if fail_on_error else max_failures,
    })
    summary = pipeline.run(cfg)
    if fmt == OutputFormat.json:
        console.result(json.dumps(summary.to_dict(), indent=2))
    else:
        resumed = f" ({summary.skipped} already done)" if summary.skipped else ""
        console.result(f"{summary.ok}/{summary.total} inputs explained{resumed}, {summary.failed} failed -> {summary.out}")
    for f in summary.failures[:10]:
        console.warn(f"{f['input']}: {f['reason']}")
    if len(summary.failures) > 10:
        console.warn(f"... and {len(summary.failures) - 10} more failures: see {summary.out}/manifest.jsonl")
    raise typer.Exit(int(summary.exit_code))


HELP_EPILOG = EXAMPLES + "\n\n" + EXIT_CODES_HELP
