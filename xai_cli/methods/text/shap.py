"""SHAP values of words: Lundberg & Lee, "A Unified Approach to Interpreting Model
Predictions", NeurIPS 2017. https://arxiv.org/abs/1705.07874

KernelSHAP with the words as players: f(z) is the target's output (probability by default)
when the words with z_j = 0 are hidden (each of their tokens replaced by the mask token, as
shap's ``Text`` masker does; or the pad token, or removed), special tokens always kept, and

    phi = argmin  sum_z pi(z) (f(z) - f(0) - phi.z)^2,   pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|)),
          subject to  sum_j phi_j = f(1) - f(0)

over shap's coalition design (``_coalitions``, shared with the image method). The default
budget is shap's ``nsamples="auto"``, 2 M + 2048; when it covers all 2^M - 2 coalitions
(M <= 11 words) every one is evaluated and phi is exactly the Shapley value of this game.
A word's tokens share its value equally in the per-token scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xai_cli.methods._coalitions import constrained_shapley_fit, kernel_coalitions
from xai_cli.methods._gradients import item_generator
from xai_cli.methods.base import Explanation
from xai_cli.methods.registry import register_method
from xai_cli.methods.text._base import Mask, TextMethod, WordMaskParams, masked_scores, words_to_tokens


@dataclass(frozen=True)
class TextShapParams(WordMaskParams):
    n_samples: int | None = None  # coalitions per text; None: shap's auto, 2 * words + 2048
    mask: Mask = "mask"  # how a word is hidden: the mask token, the pad token, or removed


@register_method
class TextShap(TextMethod):
    name = "shap"
    summary = "Shapley values of words (KernelSHAP; exact for up to 11 words)"
    paper = "Lundberg & Lee 2017, arXiv:1705.07874"
    signed = True
    Params = TextShapParams

    def _explain(self, batch, targets, seeds):
        width = batch.input_ids.shape[1]
        maps, details = [], []
        for i, seed in enumerate(seeds):
            ids, word_ids = batch.item(i)  # (1, L), (L,)
            phi, info = self.shapley(ids, word_ids, targets[i], seed)  # (W,)
            maps.append(words_to_tokens(phi, word_ids, width))  # (T,)
            details.append(info)
        return Explanation(torch.stack(maps), details)  # (N, T)

    def shapley(self, ids: torch.Tensor, word_ids: torch.Tensor, target: torch.Tensor, seed: int
                ) -> tuple[torch.Tensor, dict]:
        """KernelSHAP values of one document's words: ``(phi (W,) float64, details)``."""
        m = int(word_ids.max()) + 1
        budget = self.params.n_samples or 2 * m + 2048
        if m >= 2:
            z, weights = kernel_coalitions(m, budget, item_generator(seed))  # (S, M), (S,)
        else:
            z, weights = torch.zeros((0, max(m, 1)), dtype=torch.bool), torch.zeros(0, dtype=torch.float64)
        # Rows: every word shown, every word hidden, then the coalitions.
        keep = torch.cat([torch.ones((1, max(m, 1)), dtype=torch.bool), torch.zeros((1, max(m, 1)), dtype=torch.bool), z])
        y = masked_scores(self.model, ids, word_ids, keep, target, self.params)  # (2 + S,)
        f_x, f_empty = y[0], y[1]
        if m == 0:
            phi = torch.zeros(0, dtype=torch.float64, device=y.device)
        else:
            phi = constrained_shapley_fit(z.to(y.device), weights.to(y.device), y[2:], f_x, f_empty)  # (M,)
        exact = m <= 30 and z.shape[0] >= 2 ** m - 2
        return phi, {"n_words": m, "n_evaluations": int(y.shape[0]), "exact": bool(exact), "mask": self.params.mask,
                     "output": self.params.output, "f_x": float(f_x), "expected_value": float(f_empty),
                     "efficiency_gap": float(phi.sum() - (f_x - f_empty))}
