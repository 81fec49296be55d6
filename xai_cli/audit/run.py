"""``audit(config, ...)``: explain and score every input in one streamed pass; what ``xai audit``
is a thin shell over, and what a notebook calls.

    from xai_cli import api
    report = api.audit(api.RunConfig(model="demo-digits", methods=("gradcam",),
                                     inputs=(Path("sample_images/digits"),), out=Path("audit-out")),
                       masks=Path("sample_images/masks"), gate=Path("configs/gate-demo.toml"))
    report.metrics["gradcam"]["deletion_gain"]["mean"], report.gate_failed, int(report.exit_code)
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from xai_cli.audit.gate import load_gate
from xai_cli.audit.ground_truth import GroundTruth
from xai_cli.audit.settings import AuditSettings
from xai_cli.audit.sink import AuditReport, AuditSink
from xai_cli.config import RunConfig
from xai_cli.core.reporting import Reporter
from xai_cli.errors import UsageError


def audit(config: RunConfig, masks: Path | None = None, boxes: Path | None = None, gate: Path | None = None,
          baseline: Path | None = None, write_maps: bool = False, reporter: Reporter | None = None,
          settings: AuditSettings | None = None, step_summary: Path | None = None) -> AuditReport:
    """Explain and score every input of ``config``; write the audit's files under ``config.out``.

    Args:
        config: The run (model, methods, inputs, out, ...). Its ``params["audit"]``, if any, are
            the audit's settings (see ``AuditSettings``) unless ``settings`` is given.
        masks: A folder of masks mirroring the inputs (see ``ground_truth``).
        boxes: A JSON file of boxes per input.
        gate: A gate TOML file (see ``audit.gate``).
        baseline: A previous audit.json, for the gate's ``max_increase``/``max_decrease``.
        write_maps: Also write explain's pictures, records (with the scores) and manifest.
        reporter: Told what happens (default: silent).
        settings: The audit's knobs.
        step_summary: A markdown file to append summary.md to (default: ``$GITHUB_STEP_SUMMARY``).

    Returns:
        The :class:`AuditReport` (its ``exit_code``: 130 interrupted > 4 gate failed > 1 inputs failed > 0).

    Raises:
        UsageError: Bad settings, gate, baseline or ground truth, before anything runs.
        ModelLoadError: The model could not be loaded.
    """
    from xai_cli import runner
    from xai_cli.audit.scoring import Context
    from xai_cli.methods.base import Normalization

    reporter = reporter or Reporter()
    params = dict(config.params)
    if settings is None:
        settings = AuditSettings.from_params(params.get("audit"))
    params.pop("audit", None)
    config = dataclasses.replace(config, params=params, force=True)  # an audit scores every input: no resume
    checks = load_gate(gate) if gate is not None else []
    base = _baseline(baseline) if baseline is not None else None
    if base is not None and not checks:
        reporter.warning("{opt:baseline} given without {opt:gate}: nothing compares with it")
    truth = GroundTruth(masks, boxes)
    session = runner.prepare(config, reporter)
    if truth.kind and session.modality.name != "image":
        raise UsageError(f"{{opt:{truth.kind}}} are for image models", "give text rationales in a 'rationale' field of the .jsonl lines")
    if truth.kind:
        covered = truth.covers(session.files)
        if not covered:
            raise UsageError(f"no {truth.kind[:-2] if truth.kind == 'boxes' else 'mask'} in {truth.label()} matches any input",
                             f"{truth.kind} mirror the inputs' paths relative to their input folder, "
                             f"e.g. {truth.label()}/{session.files[0].rel}")
        if covered < len(session.files):
            reporter.warning(f"{len(session.files) - covered} of {len(session.files)} inputs have no ground truth in "
                             f"{truth.label()}: their localisation is not scored")
    loaded = session.loaded
    norm = Normalization(loaded.preprocess.mean, loaded.preprocess.std) if loaded.preprocess else None
    ctx = Context(loaded.module, session.engine.device, session.modality.name, session.engine.methods, norm, settings,
                  truth, config.seed, config.precision)
    inner = None
    if write_maps:
        from xai_cli.sinks.files import FilesSink

        inner = FilesSink(config.out, save_raw=config.save_raw, threads=config.writer_threads)
    sink = AuditSink(config.out, ctx, checks=checks, baseline=base,
                     sources={"gate": None if gate is None else str(gate), "baseline": None if baseline is None else str(baseline)},
                     inner=inner)
    summary = runner.run(config, [sink], reporter, session=session)
    report = sink.report
    if report is None:  # close() failed before writing: the runner re-raised already
        raise RuntimeError("the audit sink did not finish")
    if truth.resized:
        reporter.warning(f"{truth.resized} masks differ in size from their image: scaled to it (nearest)")
    target = step_summary if step_summary is not None else os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write((config.out / "summary.md").read_text(encoding="utf-8") + "\n")
    del summary
    return report


def _baseline(path: Path) -> dict:
    """The ``metrics`` of a previous audit.json."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read baseline {path}: {e}", "{opt:baseline} takes a previous run's audit.json") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("metrics"), dict):
        raise UsageError(f"baseline {path} has no 'metrics' table", "{opt:baseline} takes a previous run's audit.json")
    return doc["metrics"]
