"""A text counterfactual's record holds the edited text, and the model really answers it with the
reported new class."""

from __future__ import annotations

import json
from pathlib import Path

from xai_cli import api

SAMPLES = Path(__file__).parents[3] / "sample_texts"


def test_the_counterfactual_text_gets_the_new_class(tmp_path):
    out = tmp_path / "out"
    api.run(api.RunConfig(model="demo-text", methods=("counterfactual",), inputs=(SAMPLES / "hotel.txt",), workers=0,
                          out=out))
    entry = json.loads((out / "hotel.json").read_text())["methods"]["counterfactual"][0]
    text, details = entry["counterfactual_text"], entry["details"]
    assert details["found"] and 1 <= len(details["removed_words"]) <= 10
    original = (SAMPLES / "hotel.txt").read_text()
    assert len(text.split()) == len(original.split()) - len(details["removed_words"])
    (tmp_path / "cf").mkdir()
    (tmp_path / "cf" / "cf.txt").write_text(text)
    again = next(api.explain(api.RunConfig(model="demo-text", methods=("saliency",), inputs=(tmp_path / "cf",),
                                           workers=0)))
    assert again.prediction.indices[0] == details["new_class"]
    assert abs(again.prediction.probabilities[0] - details["new_probability"]) < 1e-4
