"""Attention of a text transformer, from its first token ([CLS]): rollout or the last layer.

Rollout: Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020
(https://arxiv.org/abs/2005.00928), computed by the image method's ``rollout`` (heads fused by
mean or max, half the flow through the residual, optional ``discard_ratio``):

    map_t = rollout[0, t]        how much of the first token's final state flows from token t
    raw:    map_t = fuse_heads(A_L)[0, t]

Neither depends on the target class (the details say so). Each item's rollout uses its own
tokens only, so the batch's padding never enters it.
"""

from __future__ import annotations

import torch

from xai_cli.errors import MethodError
from xai_cli.methods._perturb import check_targets
from xai_cli.methods.attention import AttentionParams, fuse_heads, rollout
from xai_cli.methods.base import Explanation
from xai_cli.methods.registry import register_method
from xai_cli.methods.text._base import TextMethod


@register_method
class TextAttention(TextMethod):
    name = "attention"
    summary = "attention rollout (or last-layer attention) from the [CLS] token to every token; not class-specific"
    paper = "Abnar & Zuidema 2020, arXiv:2005.00928"
    Params = AttentionParams
    takes_embeddings = True

    def _explain(self, batch, targets, seeds):
        with torch.no_grad():
            attentions, logits = self.model.attentions(batch.input_ids, batch.attention_mask,
                                                       embeds=batch.embeds)  # L x (N, H, T, T)
        check_targets(targets, logits.shape[1])  # not used, but a wrong class is still an error
        if not attentions:
            raise MethodError("the model returned no attention weights", "load it with attn_implementation='eager'")
        maps = torch.zeros(batch.input_ids.shape, dtype=torch.float32, device=batch.input_ids.device)  # (N, T)
        p = self.params
        for i, length in enumerate(batch.lengths()):
            own = [a[i:i + 1, :, :length, :length] for a in attentions]  # L x (1, H, L, L)
            if p.mode == "rollout":
                flow = rollout(own, p.head_fusion, p.discard_ratio)  # (1, L, L)
            else:
                flow = fuse_heads(own[-1].float(), p.head_fusion)  # (1, L, L)
            maps[i, :length] = flow[0, 0]
        detail = {"class_specific": False, "mode": p.mode, "from_token": 0, "layers": len(attentions)}
        return Explanation(maps, [dict(detail) for _ in range(len(batch))])
