"""The Python API: what every ``xai`` command is a thin shell over, and what a notebook calls.

    from xai_cli import api

    cfg = api.RunConfig(model="demo-digits", methods=("gradcam", "ig"), inputs=(Path("sample_images/digits"),))
    for r in api.explain(cfg):                      # nothing is written
        print(r.rel, r.prediction.top.label, [m.method for m in r.maps])
        heat = r.maps[0].scores                     # (H, W) numpy, model-input pixels

    summary = api.run(cfg)                          # explain's files under cfg.out (resumable)
    summary = api.run(cfg, sinks=[MySink()])        # or your own consumer of the stream
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from xai_cli.config import RunConfig
from xai_cli.core.reporting import Reporter
from xai_cli.core.results import ItemResult, MapResult, Prediction, RunInfo, RunSummary, Target
from xai_cli.sinks.base import Sink

__all__ = ["ItemResult", "MapResult", "Prediction", "Reporter", "RunConfig", "RunInfo", "RunSummary", "Sink",
           "Target", "explain", "files_sink", "run"]


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
