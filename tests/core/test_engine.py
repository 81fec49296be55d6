"""The one engine: a batch of decoded items in, one typed result per item out, for any modality;
a stop request drops the batch (not done, not failed); an error in one batch fails only its items."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xai_cli import cancel, runner
from xai_cli.config import build_config
from xai_cli.core.engine import Engine

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def session():
    cfg = build_config(None, {"model": "demo-digits", "inputs": (ROOT / "sample_images" / "digits",), "workers": 0,
                              "methods": ("gradcam", "ig"), "params": {"ig": {"steps": "8"}}, "top_k": 2})
    return runner.prepare(cfg)


def _items(session, n):
    decode = session.modality.decoder(session.loaded)
    from xai_cli.inputs.read import read_input

    return [decode(i, f, read_input(f)[0]) for i, f in enumerate(session.files[:n])]


def test_one_result_per_item_in_order_with_every_method_and_target(session):
    items = _items(session, 3)
    results = session.engine.explain(items)
    assert [r.index for r in results] == [0, 1, 2]
    for r in results:
        assert r.status == "ok" and r.modality == "image" and r.item is not None
        assert [(m.method, m.target.rank) for m in r.maps] == [("gradcam", 1), ("gradcam", 2), ("ig", 1), ("ig", 2)]
        assert r.maps[0].target.index == r.prediction.indices[0]  # rank 1 explains the top prediction
        assert r.maps[1].target.index == r.prediction.indices[1]
        assert all(isinstance(m.scores, np.ndarray) and m.scores.shape == (96, 96) for m in r.maps)
        assert "completeness_error" in r.maps[2].details
    assert session.engine.seconds["predict"] > 0 and session.engine.seconds["ig"] > 0


def test_results_do_not_depend_on_the_batch(session):
    items = _items(session, 4)
    together = session.engine.explain(items)
    alone = [session.engine.explain([it])[0] for it in items]
    for a, b in zip(together, alone):
        for ma, mb in zip(a.maps, b.maps):
            np.testing.assert_allclose(ma.scores, mb.scores, rtol=1e-4, atol=1e-6)


def test_a_stop_request_drops_the_batch_and_fails_nothing(session):
    cancel.request()
    try:
        assert session.engine.explain(_items(session, 2)) == []
    finally:
        cancel.reset()


def test_an_error_fails_only_that_batch(session, monkeypatch):
    items = _items(session, 2)
    real = Engine._explain

    def boom(self, batch):
        if any(it.index == 1 for it in batch):
            raise RuntimeError("simulated")
        return real(self, batch)

    monkeypatch.setattr(Engine, "_explain", boom)
    bad = session.engine.explain(items)
    assert [r.status for r in bad] == ["error", "error"] and "simulated" in bad[0].reason
    assert session.engine.explain(items[:1])[0].status == "ok"
