"""``compare``: two models (or two methods) explained on the same inputs in one pass, input by input.

Both models are prepared as ``xai explain`` prepares one (``runner.prepare``), then one loader
decodes every input once (``_pairs``) and each decoded batch goes to A's engine and to B's.
Per input: both predictions, whether the top-1 flipped, the drift measures, the picture.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import ExitStack
from functools import partial
from pathlib import Path

from xai_cli import runner
from xai_cli.audit.gate import load_measure_gate
from xai_cli.compare._measures import measure
from xai_cli.compare._pairs import Pair, pair_decoder
from xai_cli.compare.picture import picture
from xai_cli.compare.regions import Regions
from xai_cli.compare.report import GATE_KINDS, MEASURES, CompareReport
from xai_cli.config import RunConfig
from xai_cli.core.reporting import Reporter
from xai_cli.core.results import ItemResult
from xai_cli.errors import UsageError
from xai_cli.inputs.loader import default_workers, iter_batches

MAX_PANEL_SIDE = 1024


def config_b(config_a: RunConfig, model_b: str | None = None, *, weights_b: str | None = None,
             method_b: str | None = None) -> RunConfig:
    """B's configuration: A's, with B's model, weights and method (the parameters of B's method kept).

    ``model_b`` None compares A's model with itself under ``method_b`` (or ``weights_b``).
    """
    methods = (method_b,) if method_b else config_a.methods
    names = {m.strip().lower() for m in methods}
    return dataclasses.replace(config_a, model=model_b or config_a.model,
                               weights=weights_b if (weights_b or model_b) else config_a.weights, methods=methods,
                               params={k: v for k, v in config_a.params.items() if k in names or not methods})


def compare(config_a: RunConfig, b: RunConfig | str | None = None, *, weights_b: str | None = None,
            method_b: str | None = None, regions: Path | str | None = None, gate: Path | str | None = None,
            reporter: Reporter | None = None, write: bool = True) -> CompareReport:
    """Compare model (or method) A with B on ``config_a.inputs``; write the results under ``config_a.out``.

    Args:
        config_a: A's run configuration (model, one method, inputs, out, batch size, device...).
        b: B's configuration, or B's model spec (``demo-digits-shortcut``, a folder, ``hf:...``);
            None: A's model again (with ``method_b`` or ``weights_b``).
        weights_b: B's weights, when ``b`` is a spec.
        method_b: B's method, when ``b`` is a spec (default: A's).
        regions: A folder of masks mirroring the inputs, or a JSON file of boxes (see ``regions``).
        gate: A TOML file of checks on the aggregates (``[spearman] min = 0.5``...).
        reporter: Told of progress and warnings (default: silent).
        write: Write ``compare.json``, ``junit.xml``, ``summary.md``, ``manifest.jsonl`` and the
            pictures under ``config_a.out``; False keeps everything in the returned report.

    Returns:
        The report: ``inputs`` (one row per input), ``aggregates``, ``worst``, ``checks``, ``exit_code``.

    Raises:
        UsageError, ConfigError, ModelLoadError: Before anything is written.
    """
    reporter = reporter or Reporter()
    cfg_b = b if isinstance(b, RunConfig) else config_b(config_a, b, weights_b=weights_b, method_b=method_b)
    for tag, cfg in (("A", config_a), ("B", cfg_b)):
        _check(tag, cfg)
    checks = load_measure_gate(Path(gate), MEASURES, GATE_KINDS) if gate is not None else []
    region_src = Regions.open(Path(regions)) if regions is not None else None
    out = Path(config_a.out)
    if write:
        from xai_cli.sinks.files.atomic import preflight

        preflight(out)  # an unusable output folder is a usage error before the (slow) model loads
    t0 = time.perf_counter()
    sa = runner.prepare(config_a, reporter)
    sb = runner.prepare(cfg_b, reporter)
    if sa.modality.name != sb.modality.name:
        raise UsageError(f"A is a {sa.modality.name} model but B a {sb.modality.name} model",
                         "compare two models of the same kind of input")
    if region_src is not None and sa.modality.name != "image":
        raise UsageError("{opt:region} applies to image inputs only")
    decode, rebuilt = pair_decoder(sa.modality, sa.loaded, sb.loaded, region_src)
    if rebuilt:
        how = "re-preprocessed from the decoded pixels" if sa.modality.name == "image" else "re-tokenised from the decoded text"
        reporter.note(f"B's preprocessing differs from A's: each input is decoded once and {how} for B")
    report = CompareReport(_side(sa), _side(sb), gate=str(gate) if gate is not None else None,
                           out=str(out) if write else None)
    names = _names(sa.loaded, sb.loaded)
    load_seconds = time.perf_counter() - t0
    reporter.note(f"comparing {names[0]} ({report.a['method']}) with {names[1]} ({report.b['method']}) on "
                  f"{len(sa.files)} inputs, device {sa.info.device}" + (f", out {out}" if write else ""))
    with ExitStack() as stack:
        writer = None
        if write:
            from xai_cli.compare._write import CompareWriter
            from xai_cli.sinks.files.lock import OutputLock

            lock = stack.enter_context(OutputLock(out))
            if lock.took_over:
                reporter.warning(lock.took_over)
            writer = CompareWriter(out, [f.rel for f in sa.files], config_a.writer_threads)
        try:
            _loop(sa, sb, decode, report, writer, names, reporter)
        except BaseException:
            if writer is not None:
                writer.close(None)  # the finished inputs' pictures and manifest lines are kept
            raise
        report.finish(checks, config_a.seed)
        missing = sum(1 for r in report.inputs if r.get("region_note"))
        if missing:
            report.warnings.append(f"{missing} inputs have no region of interest (see region_note in compare.json)")
        report.seconds = time.perf_counter() - t0
        report.timings = _timings(sa, sb, report, load_seconds)
        if writer is not None:
            writer.close(report)
    for w in report.warnings:
        reporter.warning(w)
    return report


def _check(tag: str, cfg: RunConfig) -> None:
    methods = [m.strip().lower() for m in cfg.methods]
    if len(methods) > 1 or methods == ["all"]:
        opt = "{opt:method}" if tag == "A" else "{opt:method_b}"
        raise UsageError(f"compare explains with one method per model; {tag} was given {', '.join(cfg.methods)}",
                         f"name one method with {opt}")
    if cfg.top_k != 1:
        raise UsageError("compare explains each model's top-1 class (or {opt:target}); top_k does not apply")


def _side(session) -> dict:
    loaded = session.loaded
    return {"model": loaded.name, "source": loaded.source, "weights": loaded.weights,
            "method": session.engine.methods[0].name, "random_init": loaded.random_init}


def _names(a, b) -> tuple[str, str]:
    """How the pictures name A and B: the model names, told apart by their weights if those are all that differ."""
    if a.name == b.name and a.weights != b.weights:
        return f"{a.name} [{a.weights.split()[0]}]", f"{b.name} [{b.weights.split()[0]}]"
    return a.name, b.name


def _loop(sa, sb, decode, report: CompareReport, writer, names, reporter: Reporter) -> None:
    cfg, files = sa.cfg, sa.files
    methods = (report.a["method"], report.b["method"])
    workers = default_workers() if cfg.workers is None else cfg.workers
    max_side = min(cfg.render_max_side, MAX_PANEL_SIDE)
    failed = 0
    with reporter.progress(len(files)) as advance:
        for batch in iter_batches(files, decode, cfg.batch_size, workers):
            rows: dict[int, tuple[dict, object]] = {f.index: (_failed_row(files[f.index], f.reason), None)
                                                     for f in batch.failures}
            if batch.items:
                res_a = {r.index: r for r in sa.engine.explain([p.a for p in batch.items])}
                res_b = {r.index: r for r in sb.engine.explain([p.b for p in batch.items])}
                for engine in (sa.engine, sb.engine):
                    for w in dict.fromkeys(engine.warnings):
                        reporter.warning(w)
                    engine.warnings.clear()
                for p in batch.items:
                    if p.index in res_a and p.index in res_b:  # else stopped (a signal): not done, not failed
                        rows[p.index] = _compare_one(res_a[p.index], res_b[p.index], p, names, methods, max_side,
                                                     writer is not None)
            for index in sorted(rows):
                row, draw = rows[index]
                report.inputs.append(row)
                failed += row["status"] == "error"
                if writer is not None:
                    writer.add(row, draw)
                advance(1)
            if cfg.max_failures is not None and failed > cfg.max_failures:
                report.stopped = "max-failures"
                reporter.warning(f"stopped after {failed} failed inputs ({{opt:max_failures}} {cfg.max_failures})")
                return


def _failed_row(file, reason: str) -> dict:
    return {"input": str(file.rel), "status": "error", "reason": reason, "a": None, "b": None, "flipped": None,
            "spearman": None, "iou": None, "region_share_a": None, "region_share_b": None, "picture": None}


def _prediction(r: ItemResult) -> dict:
    top = r.prediction.top
    return {"index": top.index, "label": top.label, "probability": top.probability}


def _compare_one(ra: ItemResult, rb: ItemResult, pair: Pair, names, methods, max_side: int, draw: bool):
    bad = [f"{tag}: {r.reason}" for tag, r in (("A", ra), ("B", rb)) if r.status == "error"]
    if bad:
        return _failed_row(ra.file, "; ".join(bad)), None
    try:
        m = measure(ra, rb, pair.region)
    except ValueError as e:
        return _failed_row(ra.file, str(e)), None
    a, b = _prediction(ra), _prediction(rb)
    row = {"input": str(ra.rel), "status": "ok", "a": a, "b": b, "flipped": a["index"] != b["index"],
           "spearman": m.spearman, "iou": m.iou, "region_share_a": m.region_share_a,
           "region_share_b": m.region_share_b, "unit": m.unit, "picture": None}
    if pair.region_note:
        row["region_note"] = pair.region_note
    return row, (partial(picture, ra, rb, names, methods, max_side) if draw else None)


def _timings(sa, sb, report: CompareReport, load_seconds: float) -> dict[str, float]:
    out = {"total_seconds": report.seconds, "load_seconds": load_seconds}
    for tag, s in (("a", sa), ("b", sb)):
        out.update({f"{tag}_{k}_seconds": v for k, v in s.engine.seconds.items()})
    done = report.total
    out["inputs_per_second"] = done / max(report.seconds - load_seconds, 1e-9)
    return out
