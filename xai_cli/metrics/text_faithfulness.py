"""Comprehensiveness and sufficiency of text explanations as AOPC (DeYoung et al., "ERASER: A
Benchmark to Evaluate Rationalized NLP Models", ACL 2020, https://arxiv.org/abs/1911.03429).

For each bin k in 10, 20, 30, 40, 50 % the top ``ceil(k * W)`` words (W words in the document,
ranked by the sum of their tokens' scores) are

- removed: comprehensiveness = mean_k [p(x) - p(x without the top words)] (higher is better);
- kept alone: sufficiency = mean_k [p(x) - p(only the top words)] (lower is better),

where p is the target's softmax probability. Both come beside the same scores for a seeded random
ordering of the words. Words are hidden the way the text methods hide them
(``xai_cli.methods.text._base.perturbed_rows``: ``remove`` by default, as ERASER deletes tokens);
special tokens are never hidden. All rows of all documents go through the model in chunks of
``perturbations_per_eval``, padded to the batch's width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from xai_cli.methods.text._base import Mask, TokenBatch, merge_words, perturbed_rows
from xai_cli.metrics._forward import DEFAULT_CHUNK, item_seeds, target_probabilities

ERASER_FRACTIONS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)


@dataclass
class TextFaithfulness:
    """AOPC scores of a batch of documents.

    Attributes:
        fractions: (K,) the bins.
        full: (N,) target probability on the whole document.
        removed, kept: (N, K) probability with the top words removed / kept alone.
        random_removed, random_kept: (N, K) the same for a random ordering.
    """

    fractions: np.ndarray
    full: np.ndarray
    removed: np.ndarray
    kept: np.ndarray
    random_removed: np.ndarray
    random_kept: np.ndarray

    def metrics(self) -> dict[str, np.ndarray]:
        """Per-item AOPC values under their audit names."""
        def aopc(p: np.ndarray) -> np.ndarray:
            return (self.full[:, None] - p).mean(axis=1)

        comp, suff = aopc(self.removed), aopc(self.kept)
        rcomp, rsuff = aopc(self.random_removed), aopc(self.random_kept)
        return {"comprehensiveness": comp, "random_comprehensiveness": rcomp, "comprehensiveness_gain": comp - rcomp,
                "sufficiency": suff, "random_sufficiency": rsuff, "sufficiency_gain": rsuff - suff}


def word_orders(batch: TokenBatch, maps: torch.Tensor, seeds: Sequence[int] | None = None
                ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per document: its words most relevant first, and a seeded random order of them."""
    orders = []
    for i, (n_words, seed) in enumerate(zip(batch.n_words(), item_seeds(seeds, len(batch)))):
        ids, word_ids = batch.item(i)
        scores = merge_words(maps[i].detach().cpu().numpy(), word_ids.cpu().numpy(), n_words)  # (W,)
        order = np.argsort(-scores, kind="stable")
        orders.append((order, np.random.default_rng(seed).permutation(n_words)))
    return orders


def comprehensiveness_sufficiency(
    model,
    batch: TokenBatch,
    maps: torch.Tensor,
    targets: torch.Tensor,
    *,
    fractions: Sequence[float] = ERASER_FRACTIONS,
    mask: Mask = "remove",
    seeds: Sequence[int] | None = None,
    perturbations_per_eval: int = DEFAULT_CHUNK,
) -> TextFaithfulness:
    """ERASER's comprehensiveness and sufficiency, beside a random ordering's.

    Args:
        model: A ``TextClassifier``: ``model(ids, attention_mask)`` -> logits, with ``pad_id``/``mask_id``.
        batch: The documents (padded), on the model's device.
        maps: (N, T) token attributions.
        targets: (N,) class explained.
        fractions: The bins of words removed/kept.
        mask: How a word is hidden: ``remove`` (ERASER), ``mask`` or ``pad``.
        seeds: One seed per document for its random ordering.
        perturbations_per_eval: Rows per forward pass (results do not depend on it).

    Returns:
        A :class:`TextFaithfulness`.
    """
    n, k = len(batch), len(fractions)
    rows, attns = [], []
    for i, (order, rand) in enumerate(word_orders(batch, maps, seeds)):
        ids, word_ids = batch.item(i)  # (1, L), (L,)
        n_words = len(order)
        keep = [torch.ones(n_words, dtype=torch.bool)]
        for o in (order, rand):
            for top in (_top(o, f, n_words) for f in fractions):
                keep.append(~top)  # the top words removed
            for top in (_top(o, f, n_words) for f in fractions):
                keep.append(top)  # the top words kept alone
        r, a = perturbed_rows(ids[0], word_ids, torch.stack(keep).to(ids.device), mask, model)  # (1 + 4K, L)
        rows.append(_pad(r, batch.input_ids.shape[1], model.pad_id)), attns.append(_pad(a, batch.input_ids.shape[1], 0))
    ids, attn = torch.cat(rows), torch.cat(attns)  # (N (1 + 4K), T)
    per = 1 + 4 * k
    row_targets = targets.to(ids.device).repeat_interleave(per)

    def build(lo: int, hi: int):
        return (ids[lo:hi], attn[lo:hi]), row_targets[lo:hi]

    p = target_probabilities(model, ids.shape[0], build, perturbations_per_eval).reshape(n, per)
    return TextFaithfulness(np.asarray(fractions, dtype=np.float64), p[:, 0], p[:, 1:1 + k], p[:, 1 + k:1 + 2 * k],
                            p[:, 1 + 2 * k:1 + 3 * k], p[:, 1 + 3 * k:])


def _top(order: np.ndarray, fraction: float, n_words: int) -> torch.Tensor:
    """(W,) bool: the first ``ceil(fraction * W)`` words of ``order``."""
    top = torch.zeros(n_words, dtype=torch.bool)
    top[torch.as_tensor(order[:math.ceil(fraction * n_words - 1e-9)], dtype=torch.long)] = True
    return top


def _pad(t: torch.Tensor, width: int, value: int) -> torch.Tensor:
    return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=value)
