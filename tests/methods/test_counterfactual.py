"""Counterfactuals: on the demo digits the removed superpixels flip the class and lie on the
digit; on the demo texts the deciding word is among the deleted words."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xai_cli.methods._segments import segment
from xai_cli.methods.base import Normalization
from xai_cli.methods.counterfactual import Counterfactual
from xai_cli.methods.ig import BLUR_SIGMA_PER_224, gaussian_blur

ROOT = Path(__file__).parents[2] / "sample_images"


@pytest.fixture(scope="module")
def digits():
    from xai_cli.models.preprocess import preprocess_image
    from xai_cli.models.registry import ModelRequest, load_model

    loaded = load_model(ModelRequest("demo-digits"), torch.device("cpu"))
    index = json.loads((ROOT / "masks" / "index.json").read_text())
    keys = sorted(index)[::2]  # 10 of the 20 digits keep the test at seconds
    xs, masks = [], []
    for key in keys:
        x, box = preprocess_image(Image.open(ROOT / key).convert("RGB"), loaded.preprocess)
        assert box.to_list()[2] - box.to_list()[0] == x.shape[-1]  # no crop: mask pixels = input pixels
        xs.append(x)
        masks.append(torch.from_numpy(np.asarray(Image.open(ROOT / index[key]["mask"])) > 0))
    return loaded, torch.stack(xs), torch.stack(masks)


def test_digits_flip_and_the_removed_set_is_on_the_digit(digits):
    loaded, x, masks = digits
    norm = Normalization(tuple(loaded.preprocess.mean), tuple(loaded.preprocess.std))
    method = Counterfactual(loaded.module, normalization=norm)
    with torch.no_grad():
        targets = loaded.module(x).argmax(1)
    out = method.explain(x, targets)
    # Rebuild each counterfactual image from the details and check the model's answer on it.
    segments, _ = segment(method.to_pixels(x), "slic", 50)
    fill = gaussian_blur(x, BLUR_SIGMA_PER_224 * x.shape[-1] / 224)
    flipped, on_digit = [], []
    for i, d in enumerate(out.details):
        hide = torch.isin(segments[i], torch.tensor(d["removed_segments"]))  # (H, W)
        assert torch.equal(out.maps[i] > 0, hide)  # the map marks exactly the removed set
        with torch.no_grad():
            probs = loaded.module(torch.where(hide, fill[i], x[i])[None]).softmax(1)[0]
        assert int(probs.argmax()) == d["new_class"] and float(probs.max()) == pytest.approx(d["new_probability"], abs=1e-5)
        flipped.append(d["found"] and d["new_class"] != int(targets[i]))
        on_digit.append(bool((hide & masks[i]).any()))
    assert np.mean(flipped) >= 0.9, out.details
    assert np.mean(on_digit) >= 0.8


def test_text_deletes_the_deciding_word():
    from tests.modalities.text.helpers import tokenise, word_text
    from tools.train_text_demo import make_sentence
    from xai_cli.methods.text.counterfactual import TextCounterfactual
    from xai_cli.models.registry import ModelRequest, load_model

    loaded = load_model(ModelRequest("demo-text"), torch.device("cpu"))
    rng = random.Random(20240)  # the sentences of tests/modalities/text/test_text_demo.py
    sentences = [make_sentence(rng) for _ in range(30)]
    items, batch = tokenise(loaded, [s for s, _, _ in sentences])
    labels = torch.tensor([label for _, label, _ in sentences])
    out = TextCounterfactual(loaded.module).explain(batch, labels)
    hits = [any(word_text(it, w).lower() == word for w in d["removed_words"])
            for it, d, (_, _, word) in zip(items, out.details, sentences)]
    assert np.mean(hits) >= 0.9
    assert all(len(d["removed_words"]) <= 10 for d in out.details)
    for i, d in enumerate(out.details):
        assert d["new_class"] != int(labels[i]) or not d["found"]
        assert out.maps[i].sum() == (batch.word_ids[i][:, None] == torch.tensor(d["removed_words"])).any(1).sum()
