"""``xai explain``: parse options, build the config, call ``api.run``, print the summary."""

from __future__ import annotations

import json

import typer

from xai_cli import console
from xai_cli.cli import _options as o
from xai_cli.cli._errors import EXIT_CODES_HELP, handle_errors
from xai_cli.config import build_config

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
    inputs: o.Inputs = None,
    model: o.Model = None,
    method: o.Methods = None,
    weights: o.Weights = None,
    labels: o.Labels = None,
    out: o.Out = None,
    layer: o.Layer = None,
    target: o.TargetClass = None,
    top_k: o.TopK = None,
    param: o.Param = None,
    batch_size: o.BatchSize = None,
    device: o.Device = None,
    precision: o.Precision = None,
    workers: o.Workers = None,
    seed: o.Seed = None,
    save_raw: bool | None = typer.Option(None, "--save-raw/--no-save-raw", help="Also write each raw map as .npy (float32, model-input pixels)."),
    max_pixels: o.MaxPixels = None,
    trust_checkpoint: o.TrustCheckpoint = None,
    trust_remote_code: o.TrustRemoteCode = None,
    allow_untrained_head: o.AllowUntrainedHead = None,
    force: o.Force = None,
    max_failures: o.MaxFailures = None,
    fail_on_error: o.FailOnError = False,
    config: o.ConfigFile = None,
    fmt: o.Format = o.OutputFormat.text,
    quiet: o.Quiet = False,
    verbose: o.Verbose = False,
) -> None:
    """Explain a model's predictions on a folder of images or texts.

    Writes, mirroring the input tree under --out: <stem>.<method>.png per method,
    <stem>.json per input, and manifest.jsonl + run.json for the run.
    """
    console.configure(quiet=quiet, verbose=verbose)
    from xai_cli import api  # heavy imports (torch) only when a command runs
    from xai_cli.cli._reporter import ConsoleReporter

    overrides = o.run_options(
        inputs=inputs, model=model, method=method, weights=weights, labels=labels, out=out, layer=layer,
        target=target, top_k=top_k, param=param, batch_size=batch_size, device=device, workers=workers, seed=seed,
        precision=precision,
        max_pixels=max_pixels, trust_checkpoint=trust_checkpoint, trust_remote_code=trust_remote_code,
        allow_untrained_head=allow_untrained_head, force=force, max_failures=max_failures,
        fail_on_error=fail_on_error)
    cfg = build_config(config, {**overrides, "save_raw": save_raw})
    summary = api.run(cfg, reporter=ConsoleReporter())
    quiet_exit()
    print_summary(summary, fmt, "explained")
    raise typer.Exit(int(summary.exit_code))


def quiet_exit() -> None:
    """Everything is written: a late Ctrl-C or SIGTERM only ends a process that is ending anyway,
    so it must not turn the exit status (130 after a stop, 0 or 1 after a run) into a signal death."""
    import signal

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)


def print_summary(summary, fmt: o.OutputFormat, verb: str) -> None:
    """The run's result on stdout (a line, or JSON), and its first failures on stderr."""
    if fmt == o.OutputFormat.json:
        console.result(json.dumps(summary.to_dict(), indent=2))
    else:
        resumed = f" ({summary.skipped} already done)" if summary.skipped else ""
        console.result(f"{summary.ok}/{summary.total} inputs {verb}{resumed}, {summary.failed} failed -> {summary.out}")
    for f in summary.failures[:10]:
        console.warn(f"{f['input']}: {f['reason']}")
    if len(summary.failures) > 10:
        console.warn(f"... and {len(summary.failures) - 10} more failures: see {summary.out}/manifest.jsonl")


HELP_EPILOG = EXAMPLES + "\n\n" + EXIT_CODES_HELP
