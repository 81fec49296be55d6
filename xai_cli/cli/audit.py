"""``xai audit``: parse options, build the config, call ``audit``, print the result."""

from __future__ import annotations

import json
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

  xai audit --model demo-digits --method gradcam sample_images/digits --masks sample_images/masks --gate configs/gate-demo.toml --out audit-out

  xai audit --model demo-digits --method gradcam,ig --param ig.steps=16 --param audit.sample=8 sample_images/digits --out audit-out

  xai audit --model resnet50 --method gradcam imgs/ --boxes boxes.json --gate gate.toml --baseline last/audit.json --out audit-out

  xai audit --model demo-text --method ig sample_texts/reviews.jsonl --out audit-text
"""

AUDIT_EXIT_CODES = (
    "Exit codes: 0 every check passed (or no gate) and every input was scored; 4 a check of severity 'fail' "
    "failed (wins over 1); 1 some inputs failed (each in audit.jsonl and audit.json); 2 usage or configuration "
    "error (gate, masks, baseline); 3 the model could not be loaded; 130 interrupted."
)

Masks = Annotated[Path | None, typer.Option("--masks", help="Folder of masks mirroring the inputs (non-zero = object), in the original images' pixels.")]
Boxes = Annotated[Path | None, typer.Option("--boxes", help='JSON {"<input path>": [[x0, y0, x1, y1], ...]} in the original images\' pixels.')]
Gate = Annotated[Path | None, typer.Option("--gate", help="A gate TOML file of checks (see configs/gate-demo.toml); a failed 'fail' check exits 4.")]
Baseline = Annotated[Path | None, typer.Option("--baseline", help="A previous audit.json, for the gate's max_increase / max_decrease.")]
WriteMaps = Annotated[bool, typer.Option("--write-maps", help="Also write explain's pictures, records (with the scores) and manifest.")]


@handle_errors
def audit(
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
    masks: Masks = None,
    boxes: Boxes = None,
    gate: Gate = None,
    baseline: Baseline = None,
    write_maps: WriteMaps = False,
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
    """Explain and score every input: faithfulness, localisation, sanity, stability; gate CI on them.

    Writes under --out: audit.json (per method and metric: mean, median, p10, 95% interval, n),
    audit.jsonl (per input, in input order), junit.xml (one test case per gate check) and
    summary.md (appended to $GITHUB_STEP_SUMMARY when set). Audit settings: --param audit.NAME=VALUE.
    """
    console.configure(quiet=quiet, verbose=verbose)
    from xai_cli.audit.run import audit as run_audit
    from xai_cli.cli._reporter import ConsoleReporter

    overrides = o.run_options(
        inputs=inputs, model=model, method=method, weights=weights, labels=labels, out=out, layer=layer,
        target=target, top_k=top_k, param=param, batch_size=batch_size, device=device, workers=workers, seed=seed,
        precision=precision, max_pixels=max_pixels, trust_checkpoint=trust_checkpoint, trust_remote_code=trust_remote_code,
        allow_untrained_head=allow_untrained_head, force=None, max_failures=max_failures,
        fail_on_error=fail_on_error)
    cfg = build_config(config, overrides)
    report = run_audit(cfg, masks=masks, boxes=boxes, gate=gate, baseline=baseline, write_maps=write_maps,
                       reporter=ConsoleReporter())
    print_report(report, fmt)
    if html_report:
        write_report(cfg.out)
    raise typer.Exit(int(report.exit_code))


def print_report(report, fmt: o.OutputFormat) -> None:
    """The audit's result on stdout (a table and a line, or audit.json), failures on stderr."""
    doc = report.to_dict()
    if fmt == o.OutputFormat.json:
        console.result(json.dumps(doc, indent=2, default=str))
    else:
        for method, metrics in report.metrics.items():
            for metric, s in metrics.items():
                if s.get("n"):
                    console.result(f"{method:16} {metric:30} {s['mean']:8.4f}  [{s['ci_low']:.4f}, {s['ci_high']:.4f}]  n={s['n']}")
        gate = doc.get("gate")
        verdict = "no gate" if gate is None else ("gate FAILED" if gate["failed"] else "gate passed") + (
            f" ({gate['passed']} passed, {gate['failures']} failed, {gate['warnings']} warnings, {gate['skipped']} skipped)")
        s = report.summary
        console.result(f"{s.ok}/{s.total} inputs audited, {s.failed} failed, {verdict} -> {report.out}")
    for c in (doc.get("gate") or {}).get("checks", []):
        if c["passed"] is False:
            (console.error if c["severity"] == "fail" else console.warn)(f"{c['name']}: {c['message']}")
    for f in report.summary.failures[:10]:
        console.warn(f"{f['input']}: {f['reason']}")


HELP_EPILOG = EXAMPLES + "\n\n" + AUDIT_EXIT_CODES
