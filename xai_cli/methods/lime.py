"""LIME over superpixels: Ribeiro et al., "'Why Should I Trust You?': Explaining the Predictions
of Any Classifier", KDD 2016. https://arxiv.org/abs/1602.04938

For samples z in {0, 1}^M (z_j = 1: superpixel j shown, else filled with its mean colour; the
first sample is all ones), with f(z) the target's output:

    d(z)  = cosine distance(z, 1) = 1 - sqrt(|z| / M)
    pi(z) = sqrt(exp(-d(z)^2 / width^2))
    w, b  = argmin  sum_z pi(z) (f(z) - b - w.z)^2 + alpha |w|^2

with lime's defaults (1000 samples, width 0.25, Ridge alpha 1, quickshift 4/200/0.2) and all
features kept (lime's ``num_features=100000``). Each pixel's value is its superpixel's w_j.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xai_cli.errors import UsageError
from xai_cli.methods._perturb import SuperpixelMethod, SuperpixelParams, item_generator, weighted_ridge
from xai_cli.methods.base import Explanation
from xai_cli.methods.registry import register_method


@dataclass(frozen=True)
class LimeParams(SuperpixelParams):
    kernel_width: float = 0.25  # lime's LimeImageExplainer default
    alpha: float = 1.0  # Ridge penalty, lime's default

    def validate(self) -> None:
        super().validate()
        check_kernel(self.kernel_width, self.alpha)


def check_kernel(kernel_width: float, alpha: float) -> None:
    """LIME's proximity kernel and ridge penalty must be usable (images and text alike)."""
    if kernel_width <= 0 or alpha < 0:
        raise UsageError("lime needs kernel_width > 0 and alpha >= 0", f"got kernel_width={kernel_width}, alpha={alpha}")


@register_method
class Lime(SuperpixelMethod):
    name = "lime"
    regions = True
    bf16 = "bf16"
    bf16_fidelity = "maps r 0.9999 of fp32 on the bench's resnet18 224², 1.9x the fp32 speed"
    summary = "weights of a local linear model fitted to the outputs of superpixel-masked copies"
    paper = "Ribeiro et al. 2016, arXiv:1602.04938"
    signed = True
    Params = LimeParams

    def _explain(self, inputs, targets, seeds):
        return self._explain_each(inputs, targets[:, None], seeds)[0]

    def explain_targets(self, inputs, targets, seeds=None):
        """Every target from the same masked images, as the lime package's ``top_labels`` does:
        segments, samples and forward passes are shared (K targets, 1/K of the forward
        passes); only the K ridge fits differ. resnet18 224², 200 samples, top-3, CPU: 25.5 s
        as three runs, 8.1 s as one."""
        seeds = self._checked_seeds(inputs, targets, seeds)
        return self._explain_each(inputs.detach(), targets.to(inputs.device), seeds)

    def _explain_each(self, inputs, targets, seeds) -> list[Explanation]:
        """(N, K) targets -> K explanations of (N, H, W) maps."""
        segments, counts, fill = self.superpixels(inputs)  # (N, H, W), [M_i], (N, C, H, W)
        masks = [lime_samples(m, self.params.n_samples, seed) for m, seed in zip(counts, seeds)]
        scores = self.scores(inputs, targets, segments, fill, masks)  # [(S, K)]
        out = []
        for k in range(targets.shape[1]):
            maps, details = [], []
            for i, (mask, y) in enumerate(zip(masks, scores)):
                coef, intercept, r2 = fit_lime(mask.to(y.device), y[:, k], self.params.kernel_width, self.params.alpha)
                maps.append(coef.float()[segments[i]])  # (H, W)
                details.append({"n_segments": counts[i], "score": float(r2), "intercept": float(intercept)})
            out.append(Explanation(torch.stack(maps), details))  # (N, H, W)
        return out


def lime_samples(n_segments: int, n_samples: int, seed: int) -> torch.Tensor:
    """lime's neighbourhood: uniform random on/off per superpixel, the first row all on.

    Returns:
        (n_samples, n_segments) bool, on the CPU (drawn from this item's seed only).
    """
    masks = torch.randint(0, 2, (n_samples, n_segments), generator=item_generator(seed)).bool()  # (S, M)
    masks[0] = True
    return masks


def fit_lime(masks: torch.Tensor, y: torch.Tensor, kernel_width: float, alpha: float
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """LimeBase.explain_instance_with_data with feature_selection keeping every feature.

    Args:
        masks: (S, M) bool samples, row 0 the instance itself.
        y: (S,) the target's outputs.
        kernel_width: Width of the exponential kernel.
        alpha: Ridge penalty.

    Returns:
        ``(coef (M,), intercept, r2)`` in float64.
    """
    z = masks.double()  # (S, M)
    # sklearn's cosine distance to the all-ones row, in closed form: 1 - |z| / (sqrt|z| sqrt M);
    # a row with nothing shown has norm 0, which sklearn gives similarity 0 (distance 1).
    distance = 1 - torch.sqrt(z.sum(1) / z.shape[1])  # (S,)
    weights = torch.sqrt(torch.exp(-(distance ** 2) / kernel_width ** 2))  # (S,)
    return weighted_ridge(z, y, weights, alpha)
