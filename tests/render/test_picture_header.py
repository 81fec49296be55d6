"""What an image picture says: the explained target and the top prediction, the legend, the
method's caveats; no peak marker on region methods."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import numpy as np
import pytest

from xai_cli.config import RunConfig
from xai_cli.core.results import ItemResult, MapResult, Prediction, RunInfo, Target
from xai_cli.modalities.header import header
from xai_cli.modalities.image import picture as image_picture


def _case(method="ig", signed=True, target=None, index=3, details=None, stats=None):
    run = RunInfo(RunConfig(model="m", target=target), "key", {"random_init": False}, "m", "image", {}, [], [method],
                  "cpu", datetime.now(timezone.utc))
    item = SimpleNamespace(original=np.zeros((96, 96, 3), np.uint8), box=SimpleNamespace(to_list=lambda: [0, 0, 96, 96]))
    prediction = Prediction((7, 3), (0.95, 0.013), ("seven", "three"))
    t = Target(1 if target else 2, index, "three" if index == 3 else "seven", 0.013 if index == 3 else 0.95)
    scores = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    m = MapResult(method, signed, t, scores, {"min": -1.0, "max": 1.0, "peak_xy": [0.0, 0.0], "degenerate": None,
                                              **(stats or {})}, {}, details=details or {})
    return ItemResult(0, None, "image", "ok", item=item, prediction=prediction, maps=[m]), m, run


def test_a_chosen_target_shows_the_top_prediction_too():
    result, m, run = _case(target="3")
    title, lines, _ = header(result, m, run, "")
    assert "explains 'three' (1.3%)" in title
    assert "top prediction: 'seven' (95.0%) · explained: the class asked for" in lines
    result, m, run = _case(index=7)
    assert header(result, m, run, "")[1][0] == "the model's top prediction"


def test_legend_and_caveats_are_on_the_picture():
    result, m, run = _case(details={"completeness_error": 0.0123, "class_specific": False})
    _, lines, _ = header(result, m, run, "red: for · blue: against · white: 0")
    assert "red: for · blue: against · white: 0 · not class-specific: the same map for every class · completeness error 1.23%" in lines


@pytest.mark.parametrize("method,marked", [("lime", False), ("shap", False), ("occlusion", False), ("rise", False),
                                           ("saliency", True), ("gradcam", True)])
def test_region_methods_get_no_peak_marker(monkeypatch, method, marked):
    seen = {}
    monkeypatch.setattr(image_picture, "panel_pixels", lambda *a, **kw: seen.update(kw))
    result, m, run = _case(method=method)
    image_picture.picture(result, m, run)
    assert (seen["peak_xy"] is not None) == marked
