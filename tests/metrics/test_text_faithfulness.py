"""ERASER's comprehensiveness and sufficiency against a hand computation on a bag-of-words model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from xai_cli.methods.text import TokenBatch
from xai_cli.metrics.text_faithfulness import comprehensiveness_sufficiency

PAD, MASK, CLS = 0, 1, 2


class BagOfWords(nn.Module):
    """logits = sum over attended tokens of a per-token weight row; pad, mask and CLS weigh 0."""

    pad_id, mask_id = PAD, MASK

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.weights = torch.randn(20, 2, generator=g, dtype=torch.float64)
        self.weights[:3] = 0

    def forward(self, ids, attention_mask=None):
        w = self.weights[ids]  # (N, T, 2)
        if attention_mask is not None:
            w = w * attention_mask[..., None]
        return w.sum(1)


def p_target(model, token_ids, target):
    logits = model.weights[token_ids].sum(0).numpy() if token_ids else np.zeros(2)
    e = np.exp(logits - logits.max())
    return e[target] / e.sum()


def test_aopc_matches_a_hand_computation():
    model = BagOfWords()
    # Document 0: 6 words, word 2 has two tokens; document 1: 3 words. CLS at the start is never hidden.
    ids = [[CLS, 5, 6, 7, 8, 9, 10, 11], [CLS, 12, 13, 14]]
    words = [[-1, 0, 1, 2, 2, 3, 4, 5], [-1, 0, 1, 2]]
    batch = TokenBatch.from_lists(ids, words, PAD)
    maps = torch.tensor([[0, .1, .9, .3, .3, -.5, .2, .05], [0, .2, -.1, .5, 0, 0, 0, 0]])
    targets = torch.tensor([1, 0])
    out = comprehensiveness_sufficiency(model, batch, maps, targets, seeds=[3, 4], perturbations_per_eval=5)
    fractions = (0.1, 0.2, 0.3, 0.4, 0.5)
    for i in range(2):
        toks = [(t, w) for t, w in zip(ids[i], words[i]) if w >= 0]
        n_words = max(words[i]) + 1
        scores = np.zeros(n_words)
        for (t, w), s in zip(toks, maps[i, 1:len(toks) + 1].tolist()):
            scores[w] += s
        order = sorted(range(n_words), key=lambda w: (-scores[w], w))
        full = p_target(model, [t for t, _ in toks], int(targets[i]))
        comp = np.mean([full - p_target(model, [t for t, w in toks if w not in order[:math.ceil(f * n_words)]],
                                        int(targets[i])) for f in fractions])
        suff = np.mean([full - p_target(model, [t for t, w in toks if w in order[:math.ceil(f * n_words)]],
                                        int(targets[i])) for f in fractions])
        m = out.metrics()
        assert out.full[i] == pytest.approx(full)
        assert m["comprehensiveness"][i] == pytest.approx(comp, rel=1e-6)
        assert m["sufficiency"][i] == pytest.approx(suff, rel=1e-6)
        rand = np.random.default_rng(3 + i).permutation(n_words)
        rcomp = np.mean([full - p_target(model, [t for t, w in toks if w not in rand[:math.ceil(f * n_words)]],
                                         int(targets[i])) for f in fractions])
        assert m["random_comprehensiveness"][i] == pytest.approx(rcomp, rel=1e-6)
        assert m["comprehensiveness_gain"][i] == pytest.approx(comp - rcomp, rel=1e-6)


@pytest.mark.parametrize("mask", ["remove", "mask", "pad"])
def test_chunk_size_does_not_change_results(mask):
    model = BagOfWords()
    g = torch.Generator().manual_seed(1)
    ids = [[CLS] + torch.randint(3, 20, (n,), generator=g).tolist() for n in (9, 4, 12)]
    batch = TokenBatch.from_lists(ids, [[-1] + list(range(len(r) - 1)) for r in ids], PAD)
    maps = torch.randn(batch.input_ids.shape, generator=g)
    targets = torch.tensor([0, 1, 1])
    a = comprehensiveness_sufficiency(model, batch, maps, targets, mask=mask, perturbations_per_eval=1).metrics()
    b = comprehensiveness_sufficiency(model, batch, maps, targets, mask=mask, perturbations_per_eval=1000).metrics()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-9)
