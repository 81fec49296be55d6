"""Vision-transformer helpers: capture per-head attention weights, read logits from any output.

Attention weights are captured without copying any model code: the model's own modules
compute them, asked through their public arguments.

* torchvision (``nn.MultiheadAttention``; its ``EncoderBlock`` calls it with
  ``need_weights=False``): a forward pre-hook rewrites each call's arguments to
  ``need_weights=True, average_attn_weights=False``, and a forward hook keeps the returned
  (N, heads, T, T) weights. The block discards them, so its output is unchanged — up to
  float rounding, since the weights force MHA's explicit softmax path instead of its fused one.
* Hugging Face (``PreTrainedModel``, e.g. ``ViTForImageClassification``, also when wrapped
  in a module that returns ``.logits``): a pre-hook on the outermost HF model adds
  ``output_attentions=True`` and a forward hook keeps ``outputs.attentions``. sdpa/flash
  attention cannot return weights, so such a model is switched to eager attention
  (``set_attn_implementation``) for the call and back afterwards.

Every hook is removed and every switch undone when the ``with`` block exits, also on error.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from xai_cli.errors import MethodError


def model_logits(output) -> torch.Tensor:
    """(N, classes) logits from a model's output: a tensor, an HF ``ModelOutput`` or a tuple."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    return logits if isinstance(logits, torch.Tensor) else output[0]


def hf_model(model: nn.Module) -> nn.Module | None:
    """The outermost Hugging Face ``PreTrainedModel`` in ``model`` (itself or a submodule), if any."""
    modeling = sys.modules.get("transformers.modeling_utils")  # not imported: no HF model can exist
    if modeling is None:
        return None
    return next((m for m in model.modules() if isinstance(m, modeling.PreTrainedModel)), None)


def has_attention(model: nn.Module) -> bool:
    """True when ``capture_attention`` can read this model's attention weights."""
    return hf_model(model) is not None or any(isinstance(m, nn.MultiheadAttention) for m in model.modules())


@contextmanager
def capture_attention(model: nn.Module, keep_graph: bool = False) -> Iterator[list[torch.Tensor]]:
    """Within the block, every forward of ``model`` appends its attention weights to the list.

    Args:
        model: A torchvision or Hugging Face vision/text transformer.
        keep_graph: Keep the weights in the autograd graph (not detached), for
            ``attention_gradients``.

    Yields:
        A list that receives one (N, heads, T, T) tensor per attention call, in call order
        (= layer order for ViTs); rows are softmax distributions over the T keys.

    Raises:
        MethodError: The model has no attention this can read.
    """
    found: list[torch.Tensor] = []
    hf = hf_model(model)
    if hf is not None:
        with _hf_capture(hf, found, keep_graph):
            yield found
        return
    modules = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    if not modules:
        raise MethodError("the model has no attention layers to read",
                          "attention needs a vision transformer (torchvision vit_*, or a Hugging Face ViT/DeiT)")

    signatures = {m: inspect.signature(m.forward) for m in modules}

    def want_weights(module, args, kwargs):
        bound = signatures[module].bind(*args, **kwargs)
        bound.arguments.update(need_weights=True, average_attn_weights=False)
        return bound.args, bound.kwargs

    def keep(_module, _args, output):
        if isinstance(output, tuple) and isinstance(output[1], torch.Tensor) and output[1].dim() == 4:
            found.append(output[1] if keep_graph else output[1].detach().float())  # (N, heads, T, T); fp32 under bf16

    handles = []
    try:
        for m in modules:
            handles.append(m.register_forward_pre_hook(want_weights, with_kwargs=True))
            handles.append(m.register_forward_hook(keep))
        yield found
    finally:
        for h in handles:
            h.remove()


@contextmanager
def _hf_capture(hf: nn.Module, found: list[torch.Tensor], keep_graph: bool = False) -> Iterator[None]:
    def ask(_module, args, kwargs):
        return args, {**kwargs, "output_attentions": True}

    def keep(_module, _args, output):
        found.extend(a if keep_graph else a.detach().float() for a in (getattr(output, "attentions", None) or ()) if a is not None)

    before = hf.config._attn_implementation
    handles = []
    try:
        if before != "eager":
            if not hasattr(hf, "set_attn_implementation"):
                raise MethodError(f"the model uses {before} attention, which returns no weights",
                                  "load it with attn_implementation='eager'")
            hf.set_attn_implementation("eager")
        handles.append(hf.register_forward_pre_hook(ask, with_kwargs=True))
        handles.append(hf.register_forward_hook(keep))
        yield
    finally:
        for h in handles:
            h.remove()
        if hf.config._attn_implementation != before:
            hf.set_attn_implementation(before)


def attention_gradients(score: torch.Tensor, attentions: list[torch.Tensor]) -> list[torch.Tensor]:
    """d score / d A for each attention tensor captured with ``keep_graph=True``.

    ``nn.MultiheadAttention`` returns its weights as a fresh (N, heads, T, T) view of the
    (N*heads, T, T) softmax it multiplied with the values: the view itself is not in the graph
    of the output, its base is. Gradients are taken w.r.t. whichever tensor the model used.

    Returns:
        One (N, heads, T, T) gradient per attention tensor.
    """
    used = [a._base if a._base is not None and a._base.numel() == a.numel() else a for a in attentions]
    grads = torch.autograd.grad(score, used)
    return [g.reshape(a.shape) for g, a in zip(grads, attentions)]
