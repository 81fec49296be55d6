"""Integrated Gradients over the word-embedding layer: Sundararajan, Taly & Yan, "Axiomatic
Attribution for Deep Networks", ICML 2017. https://arxiv.org/abs/1703.01365

With e the document's word embeddings (positions and segments are added inside the model,
equally for every point of the path) and b the embeddings of the baseline document,

    IG_t = sum_d (e_td - b_td) * sum_k w_k  d f(b + a_k (e - b)) / d e_td

with f the target logit and (a_k, w_k) the image IG's quadrature rule. The baseline keeps the
special tokens ([CLS], [SEP]) and replaces every other token by ``[PAD]`` (Captum's BERT
tutorial) or ``[MASK]``, so special tokens get exactly 0 (given embeddings, e.g. noisy copies,
the baseline keeps the special tokens' given embeddings). Completeness, sum_t IG_t = f(e) -
f(b), is checked per item and reported, as for images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from xai_cli.errors import UsageError
from xai_cli.methods._perturb import check_targets
from xai_cli.methods.base import Explanation
from xai_cli.methods.ig import completeness, incompleteness, quadrature
from xai_cli.methods.registry import register_method
from xai_cli.methods.text._base import TextMethod
from xai_cli import cancel


@dataclass(frozen=True)
class TextIGParams:
    steps: int = 50  # quadrature nodes along the path
    baseline: Literal["pad", "mask"] = "pad"  # the token that replaces every non-special token
    method: Literal["gausslegendre", "riemann_trapezoid"] = "gausslegendre"  # quadrature rule along the path
    internal_batch_size: int = 64  # path points per forward/backward; bounds memory only

    def validate(self) -> None:
        if self.steps < (2 if self.method == "riemann_trapezoid" else 1):
            raise UsageError(f"ig.steps must be >= 2 for {self.method}, got {self.steps}", "try ig.steps=50")
        if self.baseline not in ("pad", "mask"):
            raise UsageError(f"unknown ig.baseline {self.baseline!r} for text", "use pad or mask")
        if self.method not in ("gausslegendre", "riemann_trapezoid"):
            raise UsageError(f"unknown ig.method {self.method!r}", "use gausslegendre or riemann_trapezoid")
        if self.internal_batch_size < 1:
            raise UsageError(f"ig.internal_batch_size must be >= 1, got {self.internal_batch_size}")


@register_method
class TextIntegratedGradients(TextMethod):
    name = "ig"
    summary = "gradients integrated from a [PAD] baseline to the word embeddings; sums to f(x) - f(baseline)"
    paper = "Sundararajan et al. 2017, arXiv:1703.01365"
    signed = True
    Params = TextIGParams
    takes_embeddings = True

    def _explain(self, batch, targets, seeds):
        maps = torch.zeros(batch.input_ids.shape, dtype=torch.float32, device=batch.input_ids.device)  # (N, T)
        details = []
        for i in range(len(batch)):  # per item, on its own tokens: no padding enters its path
            ids, word_ids = batch.item(i)  # (1, L), (L,)
            embeds = None if batch.embeds is None else batch.embeds[i:i + 1, :ids.shape[1]]  # (1, L, D)
            attr, f_x, f_b = self.attribute(ids, word_ids, targets[i], embeds)  # (L,)
            maps[i, :attr.shape[0]] = attr.float()
            details += completeness(attr[None], f_x.view(1), f_b.view(1))
        return Explanation(maps, details, warnings=incompleteness(details, self.params.steps, "texts"))

    def attribute(self, ids: torch.Tensor, word_ids: torch.Tensor, target: torch.Tensor,
                  embeds: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-token IG of one document.

        Args:
            ids: (1, L) token ids.
            word_ids: (L,), -1 on special tokens.
            target: () class index.
            embeds: (1, L, D) embeddings to explain instead of the ids' own.

        Returns:
            ``(attributions (L,) float64, f(x) (), f(baseline) ())``.
        """
        p, model = self.params, self.model
        fill = model.pad_id if p.baseline == "pad" else model.mask_id
        base_ids = torch.where(word_ids[None] >= 0, fill, ids)  # (1, L): special tokens kept
        with torch.no_grad():
            x = model.embed(ids) if embeds is None else embeds.detach()  # (1, L, D)
            b = torch.where((word_ids >= 0)[None, :, None], model.embed(base_ids), x)  # (1, L, D)
            attn = torch.ones_like(ids)  # (1, L)
            logits = model.forward_embeds(torch.cat([x, b]), attn.expand(2, -1)).float()  # (2, C)
        check_targets(target.view(1), logits.shape[1])
        f_x, f_b = logits[0, target], logits[1, target]
        diff = x - b  # (1, L, D)
        nodes, weights = quadrature(p.method, p.steps)
        alphas = torch.tensor(nodes, dtype=x.dtype, device=x.device)  # (S,)
        steps = torch.tensor(weights, dtype=x.dtype, device=x.device)  # (S,)
        total = torch.zeros_like(x[0], dtype=torch.float64)  # (L, D)
        for start in range(0, p.steps, p.internal_batch_size):
            cancel.check()  # a stop takes one chunk, not a whole batch
            ks = slice(start, min(start + p.internal_batch_size, p.steps))
            points = (b + alphas[ks, None, None] * diff).requires_grad_(True)  # (R, L, D)
            with torch.enable_grad():
                score = model.forward_embeds(points, attn.expand(points.shape[0], -1))[:, target].sum()
                (grad,) = torch.autograd.grad(score, points)  # (R, L, D): rows are independent
            total += (steps[ks, None, None] * grad).double().sum(0)
        return (total * diff[0].double()).sum(-1), f_x, f_b  # (L,)

