"""The shipped demo model's maps land on the digit: the pointing game against the sample masks.

Grad-CAM must hit for >= 90 % of the sample digits (issue 2); every other method for most of
them (issue 3). The scores are printed for the README's table (tools/pointing_game.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from xai_cli import api
from xai_cli.config import build_config
from xai_cli.metrics.pointing import score_run

ROOT = Path(__file__).parents[1]
DIGITS = ROOT / "sample_images" / "digits"
INDEX = ROOT / "sample_images" / "masks" / "index.json"
# quickshift (lime's default) is tuned for photo-sized inputs: on these 96 px digits it scores 35 %, slic 85 %.
CHEAP = {"ig": {"steps": "32"}, "lime": {"n_samples": "500", "segmentation": "slic"}, "shap": {"n_samples": "300"},
         "rise": {"n_samples": "500"}, "counterfactual": {"max_steps": "10"}, "activations": {"mode": "sum"},
         "smoothgrad": {"n_samples": "8"}, "smoothgrad_sq": {"n_samples": "8"}, "vargrad": {"n_samples": "8"},
         "occlusion": {"window": "16", "stride": "16"}}
FLOOR = {"gradcam": 0.9}  # issue 2's bar; the others must point right "for most inputs"


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    cfg = build_config(None, {"model": "demo-digits", "methods": ("all",), "inputs": (DIGITS,), "out": out,
                              "workers": 0, "params": CHEAP})
    summary = api.run(cfg)
    assert summary.failed == 0 and summary.ok >= 10
    return score_run(out, INDEX, DIGITS)


@pytest.mark.parametrize("method", ["gradcam", "ig", "saliency", "guided_backprop", "lime", "shap", "gradcampp",
                                    "scorecam", "rise", "occlusion", "smoothgrad", "smoothgrad_sq", "vargrad",
                                    "counterfactual", "activations"])
def test_maps_point_at_the_digit(scores, method):
    s = scores[method]
    print(f"{method}: {s['hits']}/{s['total']} = {s['score']:.0%}")
    assert s["total"] >= 10
    assert s["score"] >= FLOOR.get(method, 0.5), s
