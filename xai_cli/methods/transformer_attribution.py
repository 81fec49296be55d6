"""Class-specific transformer attribution: gradient-weighted attention rollout.

Chefer, Gur & Wolf, "Generic Attention-model Explainability for Interpreting Bi-Modal and
Encoder-Decoder Transformers", ICCV 2021 (https://arxiv.org/abs/2103.15679), eqs. 5-6 — the
gradient-only form of their "Transformer Interpretability Beyond Attention Visualization",
CVPR 2021 (https://arxiv.org/abs/2012.09838), which weighs the gradient by LRP relevance
instead of the attention itself. With A_b a block's (heads, T, T) softmax attention and
grad A_b = d y_c / d A_b for the target logit y_c:

    Abar_b = E_heads[ (grad A_b . A_b)^+ ]
    R      = I;   R <- R + Abar_b R    for b = 1..B (first block first)
    map    = R[CLS, patch tokens]      reshaped to the (gh, gw) patch grid, upsampled bilinearly

Unlike attention rollout (``attention``), the gradient makes it class-specific. Works on the
models ``attention`` reads (torchvision ``vit_*``, Hugging Face ViT/DeiT); the BERT-like text
variant is methods/text/transformer_attribution.py. One forward and one backward per target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xai_cli.errors import MethodError
from xai_cli.methods._vit import attention_gradients, capture_attention, model_logits
from xai_cli.methods.attention import require_attention
from xai_cli.methods.base import Explanation, Method, NoParams
from xai_cli.methods.registry import register_method
from xai_cli.models.layers import patch_size, token_grid


@register_method
class TransformerAttribution(Method):
    name = "transformer_attribution"
    summary = "class-specific relevance: attention weighted by its gradient, rolled out through the layers"
    paper = "Chefer et al. 2021, arXiv:2103.15679 (ICCV); arXiv:2012.09838 (CVPR)"
    needs_transformer = True
    Params = NoParams

    def __init__(self, model, params=None, normalization=None) -> None:
        super().__init__(model, params, normalization)
        require_attention(model, self.name)

    def _explain(self, inputs, targets, seeds):
        logits, attentions, grads = attention_and_gradients(self.model, inputs, targets)
        tokens = attentions[-1].shape[-1]
        prefix, gh, gw = token_grid(tokens, tuple(inputs.shape[-2:]), patch_size(self.model))
        if prefix < 1:
            raise MethodError(f"the model's {tokens} tokens have no class token", "use gradcam instead")
        relevance = chefer_relevance(attentions, grads)  # (N, T, T)
        grid = relevance[:, 0, prefix:].reshape(-1, 1, gh, gw)  # (N, 1, gh, gw)
        maps = F.interpolate(grid, size=inputs.shape[-2:], mode="bilinear", align_corners=False)[:, 0]  # (N, H, W)
        detail = {"class_specific": True, "grid": [gh, gw], "prefix_tokens": prefix, "layers": len(attentions)}
        return Explanation(maps, [dict(detail) for _ in range(inputs.shape[0])])


def attention_and_gradients(model, inputs: torch.Tensor, targets: torch.Tensor, forward=None
                            ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """One forward with attention captured and one backward of the targets' logits.

    Args:
        model: The transformer (hooks are added to it and always removed).
        inputs: Its input; made to require grad, as the frozen weights do not.
        targets: (N,) class indices.
        forward: ``inputs -> output`` (default ``model``).

    Returns:
        ``(logits (N, classes), attentions, gradients)``: one detached (N, heads, T, T) pair per layer.
    """
    forward = forward or model
    with capture_attention(model, keep_graph=True) as found, torch.enable_grad():
        logits = model_logits(forward(inputs.detach().requires_grad_(True))).float()  # (N, classes)
        if not found:
            raise MethodError("the model returned no attention weights", "transformer_attribution supports "
                              "torchvision vit_* and Hugging Face transformers with eager attention")
        if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= logits.shape[1]):
            raise IndexError(f"target class out of range: the model has classes 0..{logits.shape[1] - 1}")
        # Items are independent: the gradient of the sum is each item's own gradient.
        grads = attention_gradients(logits.gather(1, targets[:, None]).sum(), found)
    return logits.detach(), [a.detach() for a in found], grads


def chefer_relevance(attentions: list[torch.Tensor], grads: list[torch.Tensor]) -> torch.Tensor:
    """R = prod_b (I + E_h[(grad A_b . A_b)^+]) applied first block first (eq. 6), (N, T, T)."""
    relevance = None
    for a, g in zip(attentions, grads):
        weighted = (g.float() * a.float()).clamp(min=0).mean(dim=1)  # (N, T, T): Abar_b
        if relevance is None:
            eye = torch.eye(a.shape[-1], dtype=weighted.dtype, device=weighted.device)
            relevance = eye.expand_as(weighted).clone()  # (N, T, T)
        relevance = relevance + weighted @ relevance
    return relevance
