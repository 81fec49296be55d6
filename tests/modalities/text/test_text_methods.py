"""Text methods: IG completeness, KernelSHAP = brute-force Shapley, LIME = the lime package on the
same samples and exact on a model linear in the words, and one loop over the text registry."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from xai_cli.errors import UsageError
from xai_cli.methods.registry import all_methods, parse_method_list
from xai_cli.methods.text import TokenBatch
from xai_cli.methods.text._base import masked_scores
from xai_cli.methods.text.ig import TextIGParams, TextIntegratedGradients
from xai_cli.methods.text.lime import TextLime, TextLimeParams, fit_lime_text, lime_text_samples, word_features
from xai_cli.methods.text.shap import TextShap, TextShapParams
from tests.modalities.text.helpers import tokenise

TEXTS = ["the hotel near the station was terrible", "overall the camera is really excellent",
         "my friend said the kettle we bought last week at the market looked rather flimsy , then the driver arrived"]
TEXT_METHODS = list(all_methods("text"))


class LinearWords(nn.Module):
    """logit 1 = sum over shown tokens of a weight per token id (0 for pad and mask); logit 0 = 0."""

    pad_id, mask_id = 0, 4

    def __init__(self, vocab: int = 64) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.randn(vocab, generator=g, dtype=torch.float64)
        self.w[[self.pad_id, self.mask_id]] = 0.0

    def forward(self, ids, attention_mask=None):
        mask = torch.ones_like(ids) if attention_mask is None else attention_mask
        s = (self.w[ids] * mask).sum(1)  # (N,)
        return torch.stack([torch.zeros_like(s), s], 1)  # (N, 2)


def linear_batch(ids: list[int]) -> TokenBatch:
    """[CLS]=2 ... [SEP]=3 around one-token words ``ids``."""
    return TokenBatch.from_lists([[2, *ids, 3]], [[-1, *range(len(ids)), -1]], pad_id=0)


def test_gradcam_on_text_is_a_usage_error_listing_the_text_methods():
    with pytest.raises(UsageError) as err:
        parse_method_list("gradcam,ig", "text")
    assert "does not apply to text models" in str(err.value)
    assert "attention, counterfactual, ig, lime, saliency, shap, transformer_attribution" in str(err.value)


def test_ig_completeness_below_one_percent(demo_text):
    items, batch = tokenise(demo_text, TEXTS)
    out = TextIntegratedGradients(demo_text.module, TextIGParams(steps=50)).explain(batch, torch.tensor([0, 1, 0]))
    for i, d in enumerate(out.details):
        assert d["completeness_error"] < 0.01
        assert out.maps[i].sum().item() == pytest.approx(d["f_x"] - d["f_baseline"], rel=0.01)
        assert out.maps[i][batch.word_ids[i] < 0].abs().sum() == 0  # special tokens and padding: 0


def test_kernel_shap_on_few_words_is_the_exact_shapley_value(demo_text):
    items, batch = tokenise(demo_text, ["the hotel was really terrible"])
    ids, word_ids = batch.item(0)
    target, params = torch.tensor(0), TextShapParams()
    phi, info = TextShap(demo_text.module, params).shapley(ids, word_ids, target, seed=3)
    m = int(word_ids.max()) + 1
    subsets = torch.tensor(list(itertools.product([False, True], repeat=m)))  # (2^M, M)
    values = masked_scores(demo_text.module, ids, word_ids, subsets, target, params)  # (2^M,)
    v = dict(zip(map(tuple, subsets.tolist()), values.tolist()))
    brute = np.zeros(m)
    for j in range(m):
        for s in v:
            if not s[j]:
                k = sum(s)
                with_j = s[:j] + (True,) + s[j + 1:]
                brute[j] += math.factorial(k) * math.factorial(m - k - 1) / math.factorial(m) * (v[with_j] - v[s])
    assert info["exact"] and info["n_evaluations"] == 2 ** m
    np.testing.assert_allclose(phi.numpy(), brute, atol=1e-6)


def test_shap_and_lime_recover_a_model_linear_in_the_words():
    model, words = LinearWords(), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]
    batch = linear_batch(words)
    expected = model.w[words].numpy()
    shap = TextShap(model, TextShapParams(output="logit", mask="pad", n_samples=300)).explain(batch, torch.tensor([1]), [0])
    np.testing.assert_allclose(shap.maps[0, 1:-1].numpy(), expected, atol=1e-5)  # sampled, and still exact
    lime = TextLime(model, TextLimeParams(output="logit")).explain(batch, torch.tensor([1]), [0])
    np.testing.assert_allclose(lime.maps[0, 1:-1].numpy(), expected, atol=0.02)  # Ridge(alpha=1) shrinks a little
    assert lime.details[0]["score"] > 0.999


def test_lime_bow_hides_every_occurrence_together():
    model = LinearWords()
    batch = linear_batch([10, 11, 10, 12])
    features, d = word_features(batch.input_ids[0], batch.word_ids[0], bow=True)
    assert features.tolist() == [0, 1, 0, 2] and d == 3
    out = TextLime(model, TextLimeParams(output="logit", alpha=0.0)).explain(batch, torch.tensor([1]), [0])
    w = model.w
    np.testing.assert_allclose(out.maps[0, 1:-1].numpy(), [2 * w[10], w[11], 2 * w[10], w[12]], atol=1e-6)


def test_lime_agrees_with_the_lime_package_on_the_same_samples(demo_text):
    from lime.lime_base import LimeBase
    from sklearn.metrics import pairwise_distances

    items, batch = tokenise(demo_text, ["the printer we bought today was awful"])
    ids, word_ids = batch.item(0)
    features, d = word_features(ids[0], word_ids, bow=True)
    z = lime_text_samples(d, 800, seed=5)
    params = TextLimeParams()
    y = masked_scores(demo_text.module, ids, word_ids, z[:, features], torch.tensor(0), params)  # P(negative)
    coef, intercept, r2 = fit_lime_text(z, y, params.kernel_width, params.alpha)
    zn = z.numpy().astype(float)
    distances = pairwise_distances(zn, zn[:1], metric="cosine").ravel() * 100
    base = LimeBase(lambda dist: np.sqrt(np.exp(-(dist ** 2) / 25 ** 2)), random_state=0)
    theirs = base.explain_instance_with_data(zn, np.stack([y.numpy(), 1 - y.numpy()], 1), distances, 0,
                                             num_features=d, feature_selection="auto")
    their_coef = dict(theirs[1])
    np.testing.assert_allclose(coef.numpy(), [their_coef[j] for j in range(d)], rtol=1e-6, atol=1e-9)
    assert float(intercept) == pytest.approx(theirs[0], rel=1e-6) and float(r2) == pytest.approx(theirs[2], rel=1e-6)
    hidden = (~z[1:]).sum(1)  # lime's neighbourhood: 1..d words hidden, uniformly
    assert hidden.min() >= 1 and hidden.max() == d and abs(hidden.double().mean() - (d + 1) / 2) < 0.4


def _cheap(cls):
    fields = {f.name for f in dataclasses.fields(cls.Params)}
    return cls.Params(**{k: v for k, v in {"steps": 8, "n_samples": 64}.items() if k in fields})


@pytest.mark.parametrize("name", TEXT_METHODS)
def test_finite_batch_invariant_seeded_and_no_hooks_left(name, demo_text):
    cls, model = all_methods("text")[name], demo_text.module

    def hooks():
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())

    items, batch = tokenise(demo_text, TEXTS)
    targets, seeds = torch.tensor([0, 1, 1]), [7, 8, 9]
    method = cls(model, _cheap(cls))
    whole = method.explain(batch, targets, seeds).maps
    # transformers 5 installs its output-capturing hooks once, on the first output_attentions call,
    # and keeps them: count after that call, and require that nothing grows or is left by errors.
    before = hooks()
    lengths = batch.lengths()
    assert whole.shape == batch.input_ids.shape and torch.isfinite(whole).all() and whole.abs().sum() > 0
    assert all(whole[i, n:].abs().sum() == 0 for i, n in enumerate(lengths))
    for i in range(3):
        _, one = tokenise(demo_text, [TEXTS[i]])
        alone = method.explain(one, targets[i:i + 1], seeds[i:i + 1]).maps[0]
        torch.testing.assert_close(whole[i, :lengths[i]], alone, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(cls(model, _cheap(cls)).explain(batch, targets, seeds).maps, whole, rtol=0, atol=0)
    with pytest.raises(Exception):
        method.explain(batch, torch.tensor([0, 99, 1]), seeds)  # class 99 does not exist
    assert hooks() == before


@pytest.mark.parametrize("name", TEXT_METHODS)
def test_given_embeddings_are_explained_or_refused(name, demo_text):
    """Max-sensitivity feeds noisy word embeddings: a method either explains exactly those (the
    ids' own embeddings give the ids' map; noisy ones another map) or refuses, never ignores them."""
    cls, model = all_methods("text")[name], demo_text.module
    _, batch = tokenise(demo_text, TEXTS)
    targets, seeds = torch.tensor([0, 1, 1]), [7, 8, 9]
    method = cls(model, _cheap(cls))
    with torch.no_grad():
        embeds = model.embed(batch.input_ids)  # (N, T, D)
    given = dataclasses.replace(batch, embeds=embeds)
    if not cls.takes_embeddings:
        assert name in ("lime", "shap", "counterfactual")  # they hide words by token id
        with pytest.raises(ValueError, match="token ids"):
            method.explain(given, targets, seeds)
        return
    own = method.explain(batch, targets, seeds).maps
    torch.testing.assert_close(method.explain(given, targets, seeds).maps, own, rtol=1e-5, atol=1e-7)
    noise = 0.5 * model.embedding_scale() * torch.randn(embeds.shape, generator=torch.Generator().manual_seed(0))
    noisy = method.explain(dataclasses.replace(batch, embeds=embeds + noise), targets, seeds).maps
    assert not torch.allclose(noisy, own, rtol=1e-3, atol=1e-6)
    assert all(noisy[i, n:].abs().sum() == 0 for i, n in enumerate(batch.lengths()))
