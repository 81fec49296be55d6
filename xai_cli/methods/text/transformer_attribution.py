"""Class-specific transformer attribution of a BERT-like text classifier (Chefer et al. 2021,
arXiv:2103.15679, eqs. 5-6; see methods/transformer_attribution.py for the formula):

    map_t = R[CLS, t]      R = prod_b (I + E_heads[(d y_c / d A_b . A_b)^+])

taken w.r.t. the attention of each item's own tokens (padding keys have zero attention, so
they neither receive nor pass relevance). Special tokens get 0, as in the other text methods.
"""

from __future__ import annotations

import torch

from xai_cli.methods.base import Explanation, NoParams
from xai_cli.methods.registry import register_method
from xai_cli.methods.text._base import TextMethod
from xai_cli.methods.transformer_attribution import attention_and_gradients, chefer_relevance


@register_method
class TextTransformerAttribution(TextMethod):
    name = "transformer_attribution"
    summary = "class-specific relevance: attention weighted by its gradient, rolled out through the layers"
    paper = "Chefer et al. 2021, arXiv:2103.15679 (ICCV); arXiv:2012.09838 (CVPR)"
    Params = NoParams
    takes_embeddings = True

    def _explain(self, batch, targets, seeds):
        embeds = self.embeddings(batch)  # (N, T, D)
        _, attentions, grads = attention_and_gradients(
            self.model, embeds, targets, forward=lambda x: self.model.forward_embeds(x, batch.attention_mask))
        relevance = chefer_relevance(attentions, grads)  # (N, T, T)
        maps = relevance[:, 0] * (batch.word_ids >= 0)  # (N, T): the [CLS] row, words only
        detail = {"class_specific": True, "from_token": 0, "layers": len(attentions)}
        return Explanation(maps, [dict(detail) for _ in range(len(batch))])
