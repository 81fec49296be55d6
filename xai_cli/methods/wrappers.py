"""Method wrappers: SmoothGrad, SmoothGrad² and VarGrad around any image method.

SmoothGrad: Smilkov, Thorat, Kim, Viégas & Wattenberg, "SmoothGrad: removing noise by adding
noise", 2017 (https://arxiv.org/abs/1706.03825). VarGrad: Adebayo, Gilmer, Goodfellow & Kim,
"Local Explanation Methods for Deep Neural Networks Lack Sensitivity to Parameter Values",
ICLR workshop 2018 (https://arxiv.org/abs/1810.03307). With M(x) the wrapped method's map and
x_k = x + N(0, sigma^2), k = 1..n, exactly as Captum's ``NoiseTunnel``:

    smoothgrad     mean_k M(x_k)
    smoothgrad_sq  mean_k M(x_k)^2
    vargrad        mean_k M(x_k)^2 - (mean_k M(x_k))^2

sigma = noise_level * (max(x) - min(x)) per item (Smilkov et al. §3 use 10-20 % of the range).
The wrapper aggregates the wrapped method's maps, so it works on every method — saliency,
guided_backprop, ig, gradcam, ... — without copying any (Captum aggregates per channel before
a channel reduction; for ``smoothgrad`` the two agree whenever the reduction is a sum, as for
ig and guided_backprop, and for one-channel inputs always).

Selecting it: each variant is a registered method whose ``base`` parameter names the wrapped
one, and ``base_params`` passes that method's own parameters:

    methods=("smoothgrad",), params={"smoothgrad": {"base": "ig", "base_params": "steps=16,baseline=blur"}}

Noise for item i, copy k is drawn from the item's seed, copy by copy on the CPU; the wrapped
method gets seed ``seed * 7919 + k`` for copy k. ``samples_per_eval`` noisy copies (of one or
several items) go to the wrapped method per call; results do not depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from xai_cli.errors import UsageError
from xai_cli.methods._gradients import item_generator
from xai_cli.methods.base import Explanation, Method
from xai_cli.methods.registry import build_params, get_method, register_method

SEED_STRIDE = 7919  # copy k of an item with seed s gives the wrapped method seed s * 7919 + k


@dataclass(frozen=True)
class NoiseTunnelParams:
    base: str = "saliency"  # the wrapped method
    base_params: str = ""  # its parameters, "name=value,name=value"
    n_samples: int = 25  # noisy copies per item
    noise_level: float = 0.15  # noise sigma as a fraction of the item's value range
    samples_per_eval: int = 25  # noisy copies per call of the wrapped method (memory, not results)

    def validate(self) -> None:
        if self.n_samples < 1 or self.samples_per_eval < 1:
            raise UsageError(f"n_samples and samples_per_eval must be >= 1, got {self.n_samples}, {self.samples_per_eval}")
        if self.noise_level < 0:
            raise UsageError(f"noise_level must be >= 0, got {self.noise_level}", "Smilkov et al. use 0.1-0.2")


def parse_base_params(spec: str) -> dict[str, str]:
    """``"steps=16,baseline=blur"`` -> ``{"steps": "16", "baseline": "blur"}``."""
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"bad base_params entry {part!r}", "write name=value,name=value, e.g. steps=16,baseline=blur")
        out[key.strip()] = value.strip()
    return out


class NoiseTunnel(Method):
    """Aggregates a wrapped method's maps over noisy copies of each input (Captum's NoiseTunnel)."""

    Params = NoiseTunnelParams
    kind: ClassVar[str]
    bf16_fidelity = "follows the wrapped method (base); the default base, saliency, runs in fp32"

    def __init__(self, model, params=None, normalization=None) -> None:
        super().__init__(model, params, normalization)
        base_cls = get_method(self.params.base, "image")
        if issubclass(base_cls, NoiseTunnel):
            raise UsageError(f"{self.name} cannot wrap {base_cls.name}", "wrap a method such as saliency, ig or gradcam")
        self.base = base_cls(model, build_params(base_cls, parse_base_params(self.params.base_params)), self.normalization)
        self.signed = base_cls.signed if self.kind == "smoothgrad" else False
        self.needs_transformer = getattr(base_cls, "needs_transformer", False)

    def _explain(self, inputs, targets, seeds):
        p = self.params
        n = inputs.shape[0]
        span = inputs.flatten(1).amax(1) - inputs.flatten(1).amin(1)  # (N,)
        stdevs = (p.noise_level * span).tolist()
        gens = [item_generator(s) for s in seeds]
        total = sq = None
        layer = None
        rows = n * p.n_samples
        for start in range(0, rows, p.samples_per_eval):
            r = range(start, min(start + p.samples_per_eval, rows))
            items = [j // p.n_samples for j in r]
            noise = torch.stack([torch.randn(inputs.shape[1:], generator=gens[i]) * stdevs[i] for i in items])
            noisy = inputs[items] + noise.to(inputs.device, inputs.dtype)  # (B, C, H, W)
            out = self.base.explain(noisy, targets[items], [seeds[i] * SEED_STRIDE + j % p.n_samples
                                                            for i, j in zip(items, r)])
            maps, layer = out.maps.double(), out.layer  # (B, H, W)
            if total is None:
                total = maps.new_zeros((n,) + maps.shape[1:])  # (N, H, W)
                sq = maps.new_zeros((n,) + maps.shape[1:])
            for i in sorted(set(items)):  # per-item sums in a fixed order: reproducible
                rows_i = torch.tensor([b for b, it in enumerate(items) if it == i], device=maps.device)
                total[i] += maps[rows_i].sum(0)
                sq[i] += (maps[rows_i] ** 2).sum(0)
        mean, mean_sq = total / p.n_samples, sq / p.n_samples
        maps = {"smoothgrad": mean, "smoothgrad_sq": mean_sq, "vargrad": mean_sq - mean ** 2}[self.kind]
        details = [{"base": self.base.name, "n_samples": p.n_samples, "stdev": s} for s in stdevs]
        return Explanation(maps.float(), details, layer)

    def describe(self) -> dict:
        return {**super().describe(), "base_resolved": self.base.describe()}

    def bf16_policy(self) -> tuple[str, str]:
        return self.base.bf16_policy()


@register_method
class SmoothGrad(NoiseTunnel):
    name = "smoothgrad"
    kind = "smoothgrad"
    summary = "a method's map averaged over noisy copies of the input (base=saliency by default)"
    paper = "Smilkov et al. 2017, arXiv:1706.03825"


@register_method
class SmoothGradSquared(NoiseTunnel):
    name = "smoothgrad_sq"
    kind = "smoothgrad_sq"
    summary = "mean of the squared maps of a method over noisy copies of the input"
    paper = "Smilkov et al. 2017, arXiv:1706.03825; Hooker et al. 2019, arXiv:1806.10758"


@register_method
class VarGrad(NoiseTunnel):
    name = "vargrad"
    kind = "vargrad"
    summary = "variance of a method's maps over noisy copies of the input"
    paper = "Adebayo et al. 2018, arXiv:1810.03307"
