"""Gradient saliency on the word embeddings: Simonyan, Vedaldi & Zisserman, "Deep Inside
Convolutional Networks", 2014 (arXiv:1312.6034), read for text as Li et al., "Visualizing and
Understanding Neural Models in NLP", NAACL 2016 (arXiv:1506.01066):

    g_t   = d f / d e_t                     (f the target logit, e_t token t's word embedding)
    norm:          S_t = ||g_t||_2           unsigned: how sensitive f is to token t
    grad_x_input:  S_t = g_t . e_t           signed (Shrikumar et al. 2016, arXiv:1605.01713)

A word's ``norm`` is the L2 norm over its tokens' gradients; ``grad_x_input`` sums them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from xai_cli.errors import UsageError
from xai_cli.methods._perturb import check_targets
from xai_cli.methods.base import Explanation
from xai_cli.methods.registry import register_method
from xai_cli.methods.text._base import TextMethod


@dataclass(frozen=True)
class TextSaliencyParams:
    mode: Literal["norm", "grad_x_input"] = "norm"  # |gradient| per token, or gradient . embedding

    def validate(self) -> None:
        if self.mode not in ("norm", "grad_x_input"):
            raise UsageError(f"unknown saliency mode {self.mode!r}", "use norm or grad_x_input")


@register_method
class TextSaliency(TextMethod):
    name = "saliency"
    summary = "norm of the class score's gradient at each token's embedding (or gradient x embedding)"
    paper = "Simonyan et al. 2013, arXiv:1312.6034; Li et al. 2016, arXiv:1506.01066"
    Params = TextSaliencyParams
    takes_embeddings = True

    def __init__(self, model, params=None, normalization=None) -> None:
        super().__init__(model, params, normalization)
        self.signed = self.params.mode == "grad_x_input"
        self.word_merge = "sum" if self.signed else "l2"

    def _explain(self, batch, targets, seeds):
        attn = batch.attention_mask  # (N, T)
        x = self.embeddings(batch).requires_grad_(True)  # (N, T, D)
        with torch.enable_grad():
            logits = self.model.forward_embeds(x, attn)  # (N, C)
            check_targets(targets, logits.shape[1])
            # Items are independent: the gradient of the sum is each item's own gradient.
            (grad,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), x)  # (N, T, D)
        scores = (grad * x.detach()).sum(-1) if self.signed else grad.norm(dim=-1)  # (N, T)
        return Explanation(scores * attn, [{"mode": self.params.mode} for _ in range(len(batch))])
