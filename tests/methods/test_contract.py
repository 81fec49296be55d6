"""Properties every registered image method must have: one loop over the registry."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from xai_cli.methods.registry import all_methods
from tests.conftest import images

IMAGE_METHODS = [n for n, cls in all_methods().items() if "image" in cls.modalities]


def _model_for(cls, one_conv, tiny_vit):
    # Methods that need a transformer declare it; everything else must work on a plain CNN.
    return (tiny_vit, 32) if getattr(cls, "needs_transformer", False) else (one_conv, 16)


def _cheap(cls):
    """Small sample/step counts so the loop stays fast; results must not depend on batch knobs anyway."""
    fields = {f.name for f in dataclasses.fields(cls.Params)}
    cheap = {k: v for k, v in {"steps": 8, "n_samples": 64, "samples": 8, "n_background": 4}.items() if k in fields}
    return cls.Params(**cheap)


@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_finite_maps_of_input_size(name, one_conv, tiny_vit):
    cls = all_methods()[name]
    model, size = _model_for(cls, one_conv, tiny_vit)
    x = images(3, size)
    out = cls(model, _cheap(cls)).explain(x, torch.tensor([0, 1, 2]), seeds=[1, 2, 3])
    assert out.maps.shape == (3, size, size)
    assert torch.isfinite(out.maps).all()
    assert out.maps.abs().sum() > 0, "an all-zero map explains nothing"


@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_batch_invariance_and_seed_determinism(name, one_conv, tiny_vit):
    cls = all_methods()[name]
    model, size = _model_for(cls, one_conv, tiny_vit)
    x, t, seeds = images(4, size, seed=1), torch.tensor([2, 0, 1, 2]), [7, 8, 9, 10]
    method = cls(model, _cheap(cls))
    whole = method.explain(x, t, seeds).maps
    parts = torch.cat([method.explain(x[i:i + 1], t[i:i + 1], seeds[i:i + 1]).maps for i in range(4)])
    torch.testing.assert_close(whole, parts, rtol=1e-4, atol=1e-5)
    again = cls(model, _cheap(cls)).explain(x, t, seeds).maps
    torch.testing.assert_close(whole, again, rtol=0, atol=0)


@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_hooks_released_after_success_and_error(name, one_conv, tiny_vit):
    cls = all_methods()[name]
    model, size = _model_for(cls, one_conv, tiny_vit)

    def hooks():
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                   + len(getattr(m, "_full_backward_hooks", {}) or {}) for m in model.modules())

    before = hooks()
    method = cls(model, _cheap(cls))
    method.explain(images(2, size), torch.tensor([0, 1]), [0, 1])
    assert hooks() == before
    with pytest.raises(Exception):
        method.explain(images(2, size), torch.tensor([0, 99]), [0, 1])  # class 99 does not exist
    assert hooks() == before


TEXT_METHODS = list(all_methods("text"))
SENTENCES = ["a lovely and great little kettle", "the worst hotel , awful staff", "fine", "camera is okay I guess"]


@pytest.fixture(scope="module")
def demo_text():
    from xai_cli.models.registry import ModelRequest, load_model

    return load_model(ModelRequest("demo-text"), torch.device("cpu"))


def _text_batch(loaded, texts):
    from tests.modalities.text.helpers import tokenise

    return tokenise(loaded, texts)[1]


@pytest.mark.parametrize("name", TEXT_METHODS)
def test_text_methods_finite_batch_invariant_deterministic(name, demo_text):
    """The registry-wide properties for text methods: finite per-token maps (zero on padding),
    the same scores whatever the batch, the same again for the same seeds."""
    from xai_cli.methods.text import TokenBatch

    cls = all_methods("text")[name]
    batch, t, seeds = _text_batch(demo_text, SENTENCES), torch.tensor([1, 0, 1, 0]), [7, 8, 9, 10]
    method = cls(demo_text.module, _cheap(cls))
    whole = method.explain(batch, t, seeds).maps  # (N, T)
    assert whole.shape == batch.input_ids.shape and torch.isfinite(whole).all()
    assert (whole[batch.attention_mask == 0] == 0).all(), "padding got a score"
    for i in range(len(SENTENCES)):
        one = _text_batch(demo_text, SENTENCES[i:i + 1])
        part = method.explain(TokenBatch(one.input_ids, one.attention_mask, one.word_ids), t[i:i + 1], seeds[i:i + 1]).maps
        n = part.shape[1]
        torch.testing.assert_close(whole[i, :n], part[0], rtol=1e-4, atol=1e-5)
    again = cls(demo_text.module, _cheap(cls)).explain(batch, t, seeds).maps
    torch.testing.assert_close(whole, again, rtol=0, atol=0)
