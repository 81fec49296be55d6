"""LIME over words: Ribeiro et al., "'Why Should I Trust You?': Explaining the Predictions of
Any Classifier", KDD 2016. https://arxiv.org/abs/1602.04938

As lime's ``LimeTextExplainer`` with its defaults: 5000 samples, the first the text itself;
each other sample hides k features, k uniform in 1..d, chosen uniformly; features are the
distinct words (``bow=True``: every occurrence of a word hides together; two words are the
same when their token ids are, so an uncased model's "Good" and "good" are one) or each word
position (``bow=False``); hidden words are removed (``mask="remove"``, lime's default; "mask"
and "pad" put a token in their place instead). Then

    d(z)  = 100 * cosine distance(z, 1) = 100 (1 - sqrt(|z| / d))
    pi(z) = sqrt(exp(-d(z)^2 / 25^2))
    w, b  = argmin  sum_z pi(z) (f(z) - b - w.z)^2 + |w|^2          (Ridge, alpha 1)

keeping every feature (lime's ``num_features`` = d). f is the target's probability (lime's
classifier_fn returns probabilities). Each occurrence of a word shows its feature's weight,
split evenly over the word's tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xai_cli.methods._gradients import item_generator
from xai_cli.methods._perturb import weighted_ridge
from xai_cli.methods.lime import check_kernel
from xai_cli.methods.base import Explanation
from xai_cli.methods.registry import register_method
from xai_cli.methods.text._base import Mask, TextMethod, WordMaskParams, masked_scores, words_to_tokens


@dataclass(frozen=True)
class TextLimeParams(WordMaskParams):
    n_samples: int | None = 5000  # lime's LimeTextExplainer default
    mask: Mask = "remove"  # lime removes the words from the string
    kernel_width: float = 25.0  # lime's text default (distances are cosine x 100)
    alpha: float = 1.0  # Ridge penalty, lime's default
    bow: bool = True  # lime's default: a feature per distinct word, not per position

    def validate(self) -> None:
        super().validate()
        check_kernel(self.kernel_width, self.alpha)


@register_method
class TextLime(TextMethod):
    name = "lime"
    summary = "weights of a local linear model fitted to the outputs of copies with words removed"
    paper = "Ribeiro et al. 2016, arXiv:1602.04938"
    signed = True
    Params = TextLimeParams

    def _explain(self, batch, targets, seeds):
        p, width = self.params, batch.input_ids.shape[1]
        maps, details = [], []
        for i, seed in enumerate(seeds):
            ids, word_ids = batch.item(i)  # (1, L), (L,)
            features, d = word_features(ids[0], word_ids, p.bow)  # (W,), d
            z = lime_text_samples(d, p.n_samples or 5000, seed)  # (S, d)
            y = masked_scores(self.model, ids, word_ids, z[:, features], targets[i], p)  # (S,)
            coef, intercept, r2 = fit_lime_text(z.to(y.device), y, p.kernel_width, p.alpha)  # (d,)
            maps.append(words_to_tokens(coef[features.to(coef.device)], word_ids, width))  # (T,)
            details.append({"n_features": d, "n_words": int(features.shape[0]), "score": float(r2),
                            "intercept": float(intercept), "local_pred": float(intercept + coef.sum()),
                            "mask": p.mask, "bow": p.bow})
        return Explanation(torch.stack(maps), details)  # (N, T)


def word_features(ids: torch.Tensor, word_ids: torch.Tensor, bow: bool) -> tuple[torch.Tensor, int]:
    """The feature of each word: its position, or (bow) the first word with the same tokens.

    Returns:
        ``(feature index per word (W,) int64 on the CPU, number of features d)``.
    """
    n = int(word_ids.max()) + 1
    if not bow:
        return torch.arange(n), n
    ids, word_ids = ids.tolist(), word_ids.tolist()
    pieces: list[list[int]] = [[] for _ in range(n)]
    for t, w in zip(ids, word_ids):
        if w >= 0:
            pieces[w].append(t)
    seen: dict[tuple[int, ...], int] = {}
    return torch.tensor([seen.setdefault(tuple(p), len(seen)) for p in pieces], dtype=torch.long), len(seen)


def lime_text_samples(d: int, n_samples: int, seed: int) -> torch.Tensor:
    """lime's text neighbourhood: row 0 all shown; each other row hides k ~ U{1..d} features.

    Returns:
        (n_samples, d) bool, on the CPU (drawn from this item's seed only).
    """
    g = item_generator(seed)
    if d == 0:
        return torch.ones((n_samples, 0), dtype=torch.bool)
    hidden = torch.randint(1, d + 1, (n_samples - 1, 1), generator=g)  # (S - 1, 1)
    ranks = torch.rand((n_samples - 1, d), generator=g).argsort(1).argsort(1)  # (S - 1, d) random permutations
    return torch.cat([torch.ones((1, d), dtype=torch.bool), ranks >= hidden])  # (S, d)


def fit_lime_text(z: torch.Tensor, y: torch.Tensor, kernel_width: float, alpha: float
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """lime's ``LimeBase.explain_instance_with_data`` keeping every feature, for text distances.

    Args:
        z: (S, d) bool samples, row 0 the text itself.
        y: (S,) the target's outputs.

    Returns:
        ``(coef (d,), intercept, r2)`` in float64.
    """
    x = z.double()  # (S, d)
    if x.shape[1] == 0:
        zero = y.new_zeros((), dtype=torch.float64)
        return y.new_zeros(0, dtype=torch.float64), y.double().mean(), zero
    # sklearn's cosine distance to the all-ones row in closed form; an empty row has distance 1.
    distance = 100 * (1 - torch.sqrt(x.sum(1) / x.shape[1]))  # (S,)
    weights = torch.sqrt(torch.exp(-(distance ** 2) / kernel_width ** 2))  # (S,)
    return weighted_ridge(x, y, weights, alpha)
