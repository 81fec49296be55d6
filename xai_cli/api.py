"""The Python API: what every ``xai`` command is a thin shell over, and what a notebook calls.

    from xai_cli import api

    cfg = api.RunConfig(model="demo-digits", methods=("gradcam", "ig"), inputs=(Path("sample_images/digits"),))
    for r in api.explain(cfg):                      # nothing is written
        print(r.rel, r.prediction.top.label, [m.method for m in r.maps])
        heat = r.maps[0].scores                     # (H, W) numpy, model-input pixels

    summary = api.run(cfg)                          # explain's files under cfg.out (resumable)
    summary = api.run(cfg, sinks=[MySink()])        # or your own consumer of the stream
    report = api.audit(cfg, masks=Path("sample_images/masks"), gate=Path("configs/gate-demo.toml"))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from xai_cli.config import RunConfig
from xai_cli.core.reporting import Reporter
from xai_cli.core.results import ItemResult, MapResult, Prediction, RunInfo, RunSummary, Target
from xai_cli.sinks.base import Sink

__all__ = ["ItemResult", "MapResult", "Prediction", "Reporter", "RunConfig", "RunInfo", "RunSummary", "Sink",
           "Target", "audit", "compare", "explain", "files_sink", "report", "run"]


def explain(config: RunConfig, reporter: Reporter | None = None) -> Iterator[ItemResult]:
    """Explain every input of ``config`` and yield one result per input, in input order.

    Failed inputs are results too (``status == "error"`` with a ``reason``). Nothing is
    written; no lock, no resume.

    Raises:
        UsageError, ModelLoadError: For a bad configuration, before the first result.
    """
    from xai_cli.precheck import precheck

    precheck(config)  # usage errors before torch is imported
    from xai_cli import runner

    session = runner.prepare(config, reporter)
    yield from runner.results(session, None, reporter)


def files_sink(config: RunConfig) -> Sink:
    """The sink that writes explain's outputs (PNGs, records, manifest, run.json) under ``config.out``."""
    from xai_cli.sinks.files import FilesSink

    return FilesSink(config.out, save_raw=config.save_raw, threads=config.writer_threads)


def run(config: RunConfig, sinks: Sequence[Sink] | None = None, reporter: Reporter | None = None) -> RunSummary:
    """Run ``config`` and feed every result to ``sinks`` (default: the files sink); return the summary.

    Raises:
        UsageError, ModelLoadError: For a bad configuration, before anything is written.
    """
    from xai_cli.precheck import precheck

    precheck(config)  # usage errors before torch is imported
    from xai_cli import runner

    return runner.run(config, list(sinks) if sinks is not None else [files_sink(config)], reporter)


def audit(config: RunConfig, masks=None, boxes=None, gate=None, baseline=None, write_maps: bool = False,
          reporter: Reporter | None = None, **kwargs):
    """Explain and score every input of ``config``; returns an ``AuditReport`` (see ``xai_cli.audit.run.audit``)."""
    from xai_cli.audit.run import audit as _audit

    return _audit(config, masks=masks, boxes=boxes, gate=gate, baseline=baseline, write_maps=write_maps,
                  reporter=reporter, **kwargs)


def compare(config: RunConfig, b: RunConfig | str | None = None, **kwargs):
    """Compare model (or method) A of ``config`` with B on its inputs, in one pass; returns a
    ``CompareReport`` (see ``xai_cli.compare.run.compare`` for ``weights_b``, ``method_b``,
    ``regions``, ``gate``, ``write``)."""
    from xai_cli.compare.run import compare as _compare

    return _compare(config, b, **kwargs)


def report(run_dir, **kwargs):
    """Write the static HTML report of a run folder; returns the path of its index.html."""
    from xai_cli.report import build_report

    return build_report(run_dir, **kwargs)
