"""The results stream: an extra sink sees every input of a run, in input order, failures and
resumed inputs included, and writes nothing; ``api.explain`` streams without writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xai_cli import api
from xai_cli.config import build_config
from xai_cli.sinks.base import Sink

ROOT = Path(__file__).resolve().parents[2]


class Recorder(Sink):
    """Keeps what it is given (fine in a test: real sinks must not keep every result)."""

    def __init__(self):
        self.events: list = []

    def open(self, run):
        self.events.append(("open", run))

    def consume(self, result):
        self.events.append(("result", result))

    def close(self, summary):
        self.events.append(("close", summary))


@pytest.fixture
def inputs(tmp_path) -> Path:
    root = tmp_path / "in"
    root.mkdir()
    for i, name in enumerate(["a.png", "b.png", "d.png", "e.png"]):
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(root / name)
    (root / "c.png").write_bytes(b"not an image")  # a failure between two good inputs
    return root


def _cfg(inputs: Path, out: Path, **kw):
    return build_config(None, {"model": "demo-digits", "inputs": (inputs,), "out": out, "workers": 0, "batch_size": 2,
                               "methods": ("gradcam", "saliency"), **kw})


def test_an_extra_sink_gets_every_result_in_input_order_and_writes_nothing(inputs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    rec = Recorder()
    summary = api.run(_cfg(inputs, tmp_path / "out"), sinks=[rec])
    assert [e[0] for e in rec.events] == ["open"] + ["result"] * 5 + ["close"]
    results = [e[1] for e in rec.events if e[0] == "result"]
    assert [str(r.rel) for r in results] == ["a.png", "b.png", "c.png", "d.png", "e.png"]
    assert [r.index for r in results] == list(range(5))
    bad = results[2]
    assert bad.status == "error" and "not an image format" in bad.reason and bad.maps == []
    for r in results[:2] + results[3:]:
        assert r.status == "ok" and [m.method for m in r.maps] == ["gradcam", "saliency"]
        assert r.maps[0].scores.shape == (96, 96) and np.isfinite(r.maps[0].scores).all()
        assert r.prediction.indices[0] == r.maps[0].target.index
    assert rec.events[-1][1] is summary and (summary.ok, summary.failed) == (4, 1)
    assert sorted(p for p in tmp_path.rglob("*")) == before  # the sink wrote nothing, nor did the run


def test_resumed_inputs_reach_every_sink_as_skipped(inputs, tmp_path):
    out = tmp_path / "out"
    api.run(_cfg(inputs, out))
    rec = Recorder()
    summary = api.run(_cfg(inputs, out), sinks=[api.files_sink(_cfg(inputs, out)), rec])
    statuses = [e[1].status for e in rec.events if e[0] == "result"]
    assert statuses == ["skipped", "skipped", "error", "skipped", "skipped"]  # failures are retried
    assert summary.skipped == 4
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 5


def test_api_explain_streams_results_without_writing(inputs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    results = list(api.explain(_cfg(inputs, tmp_path / "out", methods=("ig",), params={"ig": {"steps": 8}})))
    assert [r.status for r in results] == ["ok", "ok", "error", "ok", "ok"]
    r = results[0]
    assert r.maps[0].method == "ig" and "completeness_error" in r.maps[0].details
    assert sorted(tmp_path.rglob("*")) == before
