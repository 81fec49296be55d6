"""``xai compare``: parse options, build A's config, call ``compare.compare``, print the result."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from xai_cli import console
from xai_cli.cli import _options as o
from xai_cli.cli._errors import handle_errors
from xai_cli.cli.explain import write_report
from xai_cli.config import build_config

EXAMPLES = """\b
Examples:

  xai compare --model demo-digits --model-b demo-digits-shortcut --method gradcam sample_images/marked --region sample_images/marked_masks --gate configs/gate-compare-demo.toml --out cmp

  xai compare --model resnet50 --weights old.safetensors --model-b resnet50 --weights-b new.safetensors imgs/ --gate gate.toml

  xai compare --model demo-text --method ig --method-b saliency sample_texts/ --format json
"""
EXIT_CODES = ("Exit codes: 0 compared, gate passed; 1 some inputs failed (each recorded in manifest.jsonl); "
              "2 usage or configuration error; 3 a model could not be loaded; 4 a gate check of severity "
              "'fail' failed; 130 interrupted.")
HELP_EPILOG = EXAMPLES + "\n\n" + EXIT_CODES

ModelB = Annotated[str | None, typer.Option("--model-b", help="Model B (same names as --model). [default: --model, with --weights-b or --method-b]")]
WeightsB = Annotated[str | None, typer.Option("--weights-b", help="Model B's weights (as --weights).")]
MethodB = Annotated[str | None, typer.Option("--method-b", help="Model B's method. [default: --method]")]
Region = Annotated[Path | None, typer.Option("--region", help="Region of interest: a folder of masks mirroring the inputs (non-zero = inside), or a JSON file {input: [[x0, y0, x1, y1], ...]}.")]
Gate = Annotated[Path | None, typer.Option("--gate", help="TOML checks on the aggregates: [spearman] min, [iou] min, [flip_rate] max, [region_share_increase] max; severity, compare (see configs/gate-compare-demo.toml).")]


@handle_errors
def compare(
    inputs: o.Inputs = None,
    model: o.Model = None,
    model_b: ModelB = None,
    method: o.Methods = None,
    method_b: MethodB = None,
    weights: o.Weights = None,
    weights_b: WeightsB = None,
    labels: o.Labels = None,
    region: Region = None,
    gate: Gate = None,
    out: o.Out = None,
    layer: o.Layer = None,
    target: o.TargetClass = None,
    param: o.Param = None,
    batch_size: o.BatchSize = None,
    device: o.Device = None,
    workers: o.Workers = None,
    seed: o.Seed = None,
    max_pixels: o.MaxPixels = None,
    trust_checkpoint: o.TrustCheckpoint = None,
    trust_remote_code: o.TrustRemoteCode = None,
    allow_untrained_head: o.AllowUntrainedHead = None,
    max_failures: o.MaxFailures = None,
    fail_on_error: o.FailOnError = False,
    html_report: o.Report = False,
    config: o.ConfigFile = None,
    fmt: o.Format = o.OutputFormat.text,
    quiet: o.Quiet = False,
    verbose: o.Verbose = False,
) -> None:
    """Compare two models' (or two methods') explanations input by input, and gate the drift.

    Both models run in one pass over the inputs (each decoded once). Writes under --out:
    <stem>.compare.png per input (A | B | B - A), compare.json, junit.xml, summary.md,
    manifest.jsonl (so 'xai report OUT' can browse it).
    """
    console.configure(quiet=quiet, verbose=verbose)
    from xai_cli.cli._reporter import ConsoleReporter
    from xai_cli.compare import compare as run_compare

    overrides = o.run_options(
        inputs=inputs, model=model, method=method, weights=weights, labels=labels, out=out, layer=layer,
        target=target, top_k=None, param=param, batch_size=batch_size, device=device, workers=workers, seed=seed,
        max_pixels=max_pixels, trust_checkpoint=trust_checkpoint, trust_remote_code=trust_remote_code,
        allow_untrained_head=allow_untrained_head, force=None, max_failures=max_failures,
        fail_on_error=fail_on_error)
    cfg = build_config(config, overrides)
    if model_b is None and weights_b is None and method_b is None:
        from xai_cli.errors import UsageError

        raise UsageError("nothing to compare with: B is A", "name B with --model-b, --weights-b or --method-b")
    report = run_compare(cfg, model_b, weights_b=weights_b, method_b=method_b, regions=region, gate=gate,
                         reporter=ConsoleReporter())
    _step_summary(Path(report.out) / "summary.md")
    print_report(report, fmt)
    if html_report:
        write_report(cfg.out)
    raise typer.Exit(int(report.exit_code))


def _step_summary(path: Path) -> None:
    """Append summary.md to ``$GITHUB_STEP_SUMMARY`` when a GitHub Actions step sets it."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    try:
        with open(target, "a", encoding="utf-8") as f:
            f.write(path.read_text(encoding="utf-8") + "\n")
    except OSError as e:
        console.warn(f"could not append to $GITHUB_STEP_SUMMARY ({target}): {e.strerror or e}")


def print_report(report, fmt: o.OutputFormat) -> None:
    """The result on stdout (a line, or JSON without the per-input rows), failures on stderr."""
    if fmt == o.OutputFormat.json:
        doc = report.to_dict()
        doc.pop("inputs")
        doc["out"] = report.out
        console.result(json.dumps(doc, indent=2))
    else:
        agg = report.aggregates
        bits = [f"{m} {agg[m]['mean']:.3f}" for m in ("spearman", "iou", "region_share_increase") if agg[m]["n"]]
        bits.append(f"flips {sum(bool(r['flipped']) for r in report.inputs)}/{report.total - report.failed}")
        verdict = "" if report.gate is None else (" — gate FAILED" if report.gate_failed else " — gate passed")
        console.result(f"{report.total - report.failed}/{report.total} inputs compared, {report.failed} failed: "
                       f"{', '.join(bits)}{verdict} -> {report.out}")
    for r in report.checks:
        if r.passed is False:
            (console.error if r.severity == "fail" else console.warn)(f"gate {r.name}: {r.message}")
    failures = [r for r in report.inputs if r["status"] == "error"]
    for r in failures[:10]:
        console.warn(f"{r['input']}: {r['reason']}")
    if len(failures) > 10:
        console.warn(f"... and {len(failures) - 10} more failures: see {report.out}/manifest.jsonl")
