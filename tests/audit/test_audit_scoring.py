"""The audit's scoring pass against the straightforward computation, and its precision.

- Several methods scored together (their random orderings, inputs, blurs and baseline evaluated
  once per input, the input's probability taken from the explain pass) give each method the
  curves that a separate deletion/insertion call on its maps gives.
- ``precision="bf16"`` covers the audit's own forward passes (deletion/insertion, randomisation,
  max-sensitivity), not only the explain pass, and audit.json records it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from xai_cli import api
from xai_cli.core.engine import item_seed
from xai_cli.methods.base import Normalization
from xai_cli.metrics.faithfulness import deletion_insertion
from xai_cli.models.registry import ModelRequest, load_model

DIGITS = Path(__file__).parents[2] / "sample_images" / "digits"
FILES = tuple(sorted(DIGITS.glob("*.png"))[:4])


def _audit(out: Path, methods: tuple[str, ...], metrics: str, precision: str = "fp32"):
    cfg = api.RunConfig(model="demo-digits", methods=methods, inputs=FILES, out=out, workers=0, device="cpu",
                        precision=precision, params={"audit": {"metrics": metrics, "steps": 5, "sample": 3}})
    report = api.audit(cfg)
    lines = [json.loads(x) for x in (out / "audit.jsonl").read_text().splitlines()]
    return report, lines


def test_methods_scored_together_get_the_curves_of_separate_calls(tmp_path):
    methods = ("gradcam", "saliency")
    _, lines = _audit(tmp_path, methods, "faithfulness")
    cfg = api.RunConfig(model="demo-digits", methods=methods, inputs=FILES, workers=0, device="cpu")
    results = list(api.explain(cfg))
    loaded = load_model(ModelRequest("demo-digits"), torch.device("cpu"))
    norm = Normalization(loaded.preprocess.mean, loaded.preprocess.std)
    x = torch.stack([r.item.tensor for r in results])
    seeds = [item_seed(cfg.seed, r.sha256) for r in results]
    for name in methods:
        ms = [next(m for m in r.maps if m.method == name) for r in results]
        maps = torch.stack([torch.from_numpy(m.scores) for m in ms])
        targets = torch.tensor([m.target.index for m in ms])
        ref = deletion_insertion(loaded.module, x, maps, targets, normalization=norm, steps=5, seeds=seeds)
        for i, line in enumerate(lines):
            scored = line["methods"][name]
            for kind, c in ref.items():
                np.testing.assert_allclose(scored["curves"][kind]["curve"], c.curve[i], atol=2e-6)
                np.testing.assert_allclose(scored["curves"][kind]["random_curve"], c.random_curve[i], atol=2e-6)
                assert scored["metrics"][f"{kind}_gain"] == pytest.approx(c.gain[i], abs=2e-6)


@pytest.mark.slow  # two audits with a 3-input sanity sample: ~15 s on a quiet 2-core box
def test_bf16_covers_the_audits_own_forward_passes(tmp_path):
    metrics = "faithfulness,randomisation,stability"
    (fp32, lines32), (bf16, lines16) = (_audit(tmp_path / p, ("gradcam",), metrics, p) for p in ("fp32", "bf16"))
    assert fp32.document["precision"] == "fp32" and bf16.document["precision"] == "bf16"
    # The random ordering's curves do not depend on the map: their interior steps differ only
    # if the scoring pass itself ran in bf16.
    for a, b in zip(lines32, lines16):
        ra, rb = (np.array(line["methods"]["gradcam"]["curves"]["deletion"]["random_curve"][1:-1]) for line in (a, b))
        assert not np.allclose(ra, rb, rtol=0, atol=1e-6)
        np.testing.assert_allclose(ra, rb, atol=0.05)
    sa, sb = fp32.document["sample"]["values"]["gradcam"], bf16.document["sample"]["values"]["gradcam"]
    for metric in ("randomisation_similarity", "max_sensitivity"):
        assert not np.allclose(sa[metric], sb[metric], rtol=1e-4, atol=0), metric
        np.testing.assert_allclose(sa[metric], sb[metric], atol=0.1)
