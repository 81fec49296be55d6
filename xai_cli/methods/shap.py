"""SHAP values of superpixels: Lundberg & Lee, "A Unified Approach to Interpreting Model
Predictions", NeurIPS 2017. https://arxiv.org/abs/1705.07874

``algorithm="kernel"`` (default) is KernelSHAP: with f(z) the target's output when the
superpixels with z_j = 0 show their mean colour (lime's fill, so the two methods explain the
same perturbations), phi minimises

    sum_z  pi(z) (f(z) - f(0) - phi.z)^2,   pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|)),
    subject to  sum_j phi_j = f(1) - f(0)   (efficiency)

over shap's coalition design (see ``_coalitions``). With 2^M - 2 or more samples every
coalition is used and phi is exactly the Shapley value of this game.

``algorithm="gradient"`` is expected gradients (shap's GradientExplainer) on the target's
logit, over a background built from the input itself, so that a result depends on its item
only: ``n_background`` copies blurred at scales from 2 px to the whole image (the last is the
mean colour), "what the model sees without detail at scale s" (the blur baselines of
Sturmfels et al., Distill 2020), or ``"uniform"`` noise images drawn from the item's seed.
The map sums the attribution over channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from xai_cli.errors import UsageError
from xai_cli.methods._coalitions import constrained_shapley_fit, kernel_coalitions
from xai_cli.methods._perturb import (Output, SuperpixelMethod, SuperpixelParams, check_targets, eval_rows,
                                     item_generator)
from xai_cli.methods._segments import Segmentation
from xai_cli.methods.base import Explanation
from xai_cli.methods.registry import register_method

DEFAULT_SAMPLES = {"kernel": 1000, "gradient": 200}  # gradient: shap's GradientExplainer default
DEFAULT_OUTPUT = {"kernel": "probability", "gradient": "logit"}


@dataclass(frozen=True)
class ShapParams(SuperpixelParams):
    n_samples: int | None = None  # kernel: coalitions evaluated (1000); gradient: samples (200)
    # slic keeps M near n_segments whatever the image (KernelSHAP's variance grows with M), as
    # in shap's own superpixel example; quickshift's M varies from image to image.
    segmentation: Segmentation = "slic"  # how the image is cut into players (superpixels)
    output: Output | None = None  # kernel: probability; gradient: logit (the only choice)
    algorithm: Literal["kernel", "gradient"] = "kernel"  # KernelSHAP over superpixels, or GradientSHAP
    n_background: int = 8  # gradient: background images per item
    background: Literal["blur", "uniform"] = "blur"  # gradient: how they are made from the input

    def __post_init__(self) -> None:
        # Resolve per-algorithm defaults here so that the JSON record names the values used.
        if self.n_samples is None:
            object.__setattr__(self, "n_samples", DEFAULT_SAMPLES.get(self.algorithm, 1000))
        if self.output is None:
            object.__setattr__(self, "output", DEFAULT_OUTPUT.get(self.algorithm, "probability"))

    def validate(self) -> None:
        super().validate()
        if self.algorithm not in DEFAULT_SAMPLES:
            raise UsageError(f"unknown shap algorithm {self.algorithm!r}", "use 'kernel' or 'gradient'")
        if self.algorithm == "gradient" and self.output != "logit":
            raise UsageError("shap's gradient algorithm explains the logit", "drop output= or use the kernel algorithm")
        if self.background not in ("blur", "uniform") or self.n_background < 1:
            raise UsageError(f"bad background {self.background!r} x {self.n_background}",
                             "use background='blur' or 'uniform' and n_background >= 1")


@register_method
class Shap(SuperpixelMethod):
    name = "shap"
    regions = True
    summary = "Shapley values of superpixels (KernelSHAP), or expected gradients"
    paper = "Lundberg & Lee 2017, arXiv:1705.07874"
    bf16 = "bf16"
    bf16_fidelity = ("KernelSHAP maps r 0.998 of fp32 on the bench's resnet18 224², 2.0x the fp32 speed (0.987 "
                     "with bf16 logits); algorithm=gradient: r 0.992, 1.7x")
    bf16_gradient = ("bf16", "expected-gradients maps r 0.992 of fp32 on the bench's resnet18 224², 1.7x the fp32 speed")
    signed = True
    Params = ShapParams

    def bf16_policy(self) -> tuple[str, str]:
        return self.bf16_gradient if self.params.algorithm == "gradient" else super().bf16_policy()

    def _explain(self, inputs, targets, seeds):
        if self.params.algorithm == "gradient":
            return self._gradient(inputs, targets, seeds)
        return self._kernel(inputs, targets, seeds)

    def _kernel(self, inputs, targets, seeds) -> Explanation:
        segments, counts, fill = self.superpixels(inputs)  # (N, H, W), [M_i], (N, C, H, W)
        designs = [kernel_coalitions(m, self.params.n_samples, item_generator(seed)) for m, seed in zip(counts, seeds)]
        # Each item's rows: everything shown, everything hidden, then its coalitions.
        masks = [torch.cat([torch.ones((1, m), dtype=torch.bool), torch.zeros((1, m), dtype=torch.bool), z])
                 for m, (z, _) in zip(counts, designs)]
        scores = self.scores(inputs, targets, segments, fill, masks)  # [(2 + S_i,)]
        maps, details = [], []
        for i, ((z, weights), y) in enumerate(zip(designs, scores)):
            f_x, f_empty = y[0], y[1]
            phi = constrained_shapley_fit(z.to(y.device), weights.to(y.device), y[2:], f_x, f_empty)  # (M,)
            maps.append(phi.float()[segments[i]])  # (H, W)
            details.append({"n_segments": counts[i], "n_evaluations": int(y.shape[0]),
                            **_efficiency(float(phi.sum()), float(f_x), float(f_empty))})
        return Explanation(torch.stack(maps), details)  # (N, H, W)

    def _gradient(self, inputs, targets, seeds) -> Explanation:
        from xai_cli.methods._expected_gradients import expected_gradients

        p = self.params
        with torch.no_grad():  # one row tells the class count: fail on a bad target before the loop
            check_targets(targets, self.model(inputs[:1]).shape[1])
        maps, details, rows = [], [], eval_rows(p.perturbations_per_eval, inputs.device)
        for i, seed in enumerate(seeds):  # per item: the background is built from the item itself
            background = self.background(inputs[i], seed)  # (B, C, H, W)
            attr, info = expected_gradients(self.model, inputs[i:i + 1], targets[i:i + 1], background,
                                            p.n_samples, [seed], rows)  # (1, C, H, W)
            maps.append(attr[0].sum(0).float())  # (H, W)
            d = info[0]
            details.append({**d, **_efficiency(float(attr.double().sum()), d["f_x"], d["f_background_mean"])})
        return Explanation(torch.stack(maps), details)  # (N, H, W)

    def background(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        """The gradient algorithm's background for one item.

        Args:
            x: (C, H, W) one model input.
            seed: The item's seed (only ``"uniform"`` draws).

        Returns:
            (n_background, C, H, W) model inputs.
        """
        n, (c, h, w) = self.params.n_background, x.shape
        if self.params.background == "uniform":
            # A stream of its own: expected_gradients draws from item_generator(seed) too.
            g = item_generator(int(np.random.SeedSequence([seed, 1]).generate_state(1)[0]))
            return self.from_pixels(torch.rand((n, c, h, w), generator=g).to(x.device, x.dtype))
        # Average-pool to a coarser grid and resample back: a blur at that scale that is cheap
        # and exact for any size; scales 2 px .. the whole image, geometrically spaced.
        scales = np.geomspace(2, max(h, w), n) if n > 1 else np.array([float(max(h, w))])
        copies = []
        for s in scales:
            coarse = F.adaptive_avg_pool2d(x[None], (max(1, round(h / s)), max(1, round(w / s))))
            copies.append(F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False))
        return torch.cat(copies)


def _efficiency(total: float, f_x: float, expected: float) -> dict:
    """How far sum(phi) is from f(x) - E[f(background)], absolutely and relative to that gap."""
    gap = total - (f_x - expected)
    return {"expected_value": expected, "f_x": f_x, "efficiency_gap": gap,
            "efficiency_gap_relative": abs(gap) / abs(f_x - expected) if f_x != expected else None}
