"""``xai explain``: parse options, build the config, call ``api.run``, print the summary."""

from __future__ import annotations

import json

import typer

from xai_cli import console
from xai_cli.cli import _options as o
from xai_cli.cli._errors import EXIT_CODES_HELP, handle_errors
from xai_cli.config import build_config

# Each runs as written from the repository's root (resnet50's weights are downloaded once).
# One \b paragraph: click neither rewraps nor breaks these lines, whatever the terminal width.
EXAMPLE_LINES = (
    "xai explain --model demo-digits --method gradcam sample_images/digits/ --out xai-out",
    "xai explain --model demo-digits --method gradcam,ig,lime --top-k 2 sample_images/digits/ --out xai-out/top2",
    "xai explain --model demo-text --method ig,shap,lime sample_texts/ --out xai-out/texts",
    "xai explain --config configs/demo.toml --batch-size 8 --format json",
    "xai explain --model resnet18 --weights none --method gradcam,ig --overlay blend sample_images/photos/ --out xai-out/random",
    "xai explain --model resnet50 --method gradcam --param gradcam.layer=layer3 sample_images/photos/ --out xai-out/photos",
    "xai explain --model demo-digits --device cpu,cpu sample_images/digits/ --out xai-out/two-engines",
    "xai explain --model demo-digits --shard 0/2 sample_images/digits/ --out xai-out/shards",
)
EXAMPLES = "Examples (from the repository's root):\n\n\b\n" + "\n".join(f"  {line}" for line in EXAMPLE_LINES) + "\n"


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
    decode: o.Decode = None,
    seed: o.Seed = None,
    save_raw: bool | None = typer.Option(None, "--save-raw/--no-save-raw", help="Also write each raw map as .npy (float32, model-input pixels)."),
    max_pixels: o.MaxPixels = None,
    overlay: o.Overlay = None,
    cmap: o.Cmap = None,
    scale: o.ScaleOpt = None,
    trust_checkpoint: o.TrustCheckpoint = None,
    trust_remote_code: o.TrustRemoteCode = None,
    allow_untrained_head: o.AllowUntrainedHead = None,
    force: o.Force = None,
    max_failures: o.MaxFailures = None,
    fail_on_error: o.FailOnError = False,
    report: o.Report = False,
    shard: o.Shard = None,
    backend: o.Backend = None,
    ray_address: o.RayAddress = None,
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
        precision=precision, decode=decode,
        max_pixels=max_pixels, trust_checkpoint=trust_checkpoint, trust_remote_code=trust_remote_code,
        allow_untrained_head=allow_untrained_head, force=force, max_failures=max_failures,
        fail_on_error=fail_on_error, overlay=overlay, cmap=cmap, scale=scale,
        shard=shard, backend=backend, ray_address=ray_address)
    cfg = build_config(config, {**overrides, "save_raw": save_raw})
    summary = api.run(cfg, reporter=ConsoleReporter())
    quiet_exit()
    print_summary(summary, fmt, "explained")
    if report:
        write_report(cfg.out)
    raise typer.Exit(int(summary.exit_code))


def quiet_exit() -> None:
    """Everything is written: a late Ctrl-C or SIGTERM only ends a process that is ending anyway,
    so it must not turn the exit status (130 after a stop, 0 or 1 after a run) into a signal death."""
    import signal

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)


def write_report(out) -> None:
    """The HTML report of the run just written, its path on stderr (stdout keeps the summary)."""
    from xai_cli.report import build_report

    console.info(f"report: {build_report(out)}")


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
