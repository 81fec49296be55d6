"""The metrics on the shipped demo-digits model: the results the audit's gate relies on.

- Grad-CAM's deletion curve beats a random pixel order on the trained model, not on the same
  model with random weights (there is nothing to explain).
- Adebayo et al.'s sanity check: guided backprop's maps stay similar while the model's blocks
  are randomised; Grad-CAM's and IG's do not.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xai_cli.methods.base import Normalization
from xai_cli.methods.registry import build_params, get_method
from xai_cli.metrics.aggregate import summarise
from xai_cli.metrics.explainers import method_explainer
from xai_cli.metrics.faithfulness import deletion_insertion
from xai_cli.metrics.randomisation import model_randomisation
from xai_cli.models.preprocess import preprocess_image
from xai_cli.models.registry import ModelRequest, load_model

ROOT = Path(__file__).parents[2]
CPU = torch.device("cpu")
SIMILAR = 0.5  # configs/gate-demo.toml's randomisation_similarity limit


@pytest.fixture(scope="module")
def digits():
    loaded = load_model(ModelRequest("demo-digits"), CPU)
    index = json.loads((ROOT / "sample_images/masks/index.json").read_text())
    items = sorted(index.items())
    x = torch.stack([preprocess_image(Image.open(ROOT / "sample_images" / rel).convert("RGB"), loaded.preprocess)[0]
                     for rel, _ in items])
    targets = torch.tensor([e["label"] for _, e in items])
    return loaded, x, targets, Normalization(loaded.preprocess.mean, loaded.preprocess.std)


@pytest.mark.slow  # 2 x 1680 forward passes: ~10 s on a quiet 2-core box
def test_gradcam_deletion_beats_random_only_with_trained_weights(digits):
    loaded, x, targets, norm = digits
    random_model = load_model(ModelRequest("demo-digits", weights="none"), CPU).module
    explain = method_explainer("gradcam", None, norm)
    gains = {}
    for name, model in (("trained", loaded.module), ("random", random_model)):
        # All 20 digits at RISE's 20 steps: on 12 digits or 10 steps the interval reached 0
        # (deleting a digit to black leaves a dark shape that some classes still like).
        maps = explain(model, x, targets)
        d = deletion_insertion(model, x, maps, targets, normalization=norm, kinds=("deletion",),
                               seeds=range(len(x)))["deletion"]
        gains[name] = summarise(d.gain)
    assert gains["trained"].mean > 0.02 and gains["trained"].ci_low > 0, gains
    assert abs(gains["random"].mean) < 0.005, gains


@pytest.mark.parametrize("method, params, similar", [
    ("guided_backprop", {}, True),
    ("gradcam", {}, False),
    pytest.param("ig", {"steps": 8}, False, marks=pytest.mark.slow),  # 6 x 12 x 8 backward passes
])
def test_randomisation_sanity_check(digits, method, params, similar):
    loaded, x, targets, norm = digits
    explain = method_explainer(method, build_params(get_method(method), params), norm)
    idx = torch.arange(0, 20, 3)[:6]  # 6 digits, 6 different classes
    r = model_randomisation(explain, loaded.module, x[idx], targets[idx], seed=0)
    score = float(np.mean(r.metrics()["randomisation_similarity"]))
    assert (score > SIMILAR) == similar, (method, score, r.similarity.mean(0).round(2))
