"""Finding layers by name, the layer Grad-CAM should look at when none is named, and the
patch grid behind a vision transformer's tokens."""

from __future__ import annotations

import math

import torch
from torch import nn

from xai_cli.errors import MethodError, UsageError, did_you_mean

MAX_PREFIX_TOKENS = 32  # class + distillation + register tokens ahead of the patches


def get_layer(model: nn.Module, dotted: str) -> nn.Module:
    """``model.get_submodule`` with a one-line error that suggests near names."""
    try:
        return model.get_submodule(dotted)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        raise UsageError(f"the model has no layer {dotted!r}", did_you_mean(dotted, names, n=4)
                         or f"layers include: {', '.join(names[-5:])}") from None


def is_attention(module: nn.Module) -> bool:
    """An attention module: ``nn.MultiheadAttention`` or a class named ``*Attention`` (HF, timm)."""
    return isinstance(module, nn.MultiheadAttention) or type(module).__name__.endswith("Attention")


def find_spatial_layer(model: nn.Module, example: torch.Tensor) -> str:
    """The name of the last layer whose output still has a spatial grid.

    Runs ``example`` through the model once, recording for each module the shape of its
    output and the order in which modules start and finish. Modules that run more than once
    per forward (a shared ReLU) are skipped, since a hook on them would capture the wrong call.

    * CNNs: the module that finishes last with a (N, C, h, w) output where h, w > 1 — the last
      block before global pooling (``layer4`` in a ResNet, ``features`` in VGG/EfficientNet/
      ConvNeXt). Models whose attention layers all run before their last grid (Swin, MaxViT)
      are treated the same way.
    * Vision transformers (an attention module starts after the last grid, which is only the
      patch embedding): the last (N, T, C) token output that finishes before the last attention
      module starts — the last block's pre-attention LayerNorm (``encoder.layers[-1].ln_1`` in
      torchvision, ``encoder.layer[-1].layernorm_before`` in Hugging Face, ``blocks[-1].norm1``
      in timm, as pytorch-grad-cam recommends). Layers after the last attention are useless:
      the head reads only the class token, so the patch tokens there get zero gradient.
    """
    events: list[tuple[str, str, tuple[int, ...] | None]] = []  # (start|end, name, output shape)
    calls: dict[str, int] = {}
    handles = []

    def on_start(name):
        def fn(_module, _inputs):
            events.append(("start", name, None))
        return fn

    def on_end(name):
        def fn(_module, _inputs, output):
            calls[name] = calls.get(name, 0) + 1
            if isinstance(output, torch.Tensor):
                events.append(("end", name, tuple(output.shape)))
        return fn

    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(on_end(name)))
            if is_attention(module):
                handles.append(module.register_forward_pre_hook(on_start(name)))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    ends = [(i, n, s) for i, (kind, n, s) in enumerate(events) if kind == "end" and calls[n] == 1]
    grids = [(i, n) for i, n, s in ends if len(s) == 4 and s[2] > 1 and s[3] > 1]
    last_attention = max((i for i, (kind, _, _) in enumerate(events) if kind == "start"), default=-1)
    tokens = [(n, s) for i, n, s in ends if i < last_attention and len(s) == 3 and s[0] == example.shape[0]]
    if tokens and (not grids or last_attention > grids[-1][0]):
        name, shape = tokens[-1]
        try:
            token_grid(shape[1], tuple(example.shape[-2:]), patch_size(model))
            return name
        except MethodError:
            if not grids:
                raise
    if grids:
        return grids[-1][1]
    raise MethodError(
        "found no layer with a spatial output to take Grad-CAM from",
        "name one with {opt:layer}, or use a method that needs no layer, such as ig",
    )


def patch_size(model: nn.Module) -> tuple[int, int] | None:
    """A ViT's patch size: the stride of its first conv whose kernel equals its stride (> 1)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and tuple(m.kernel_size) == tuple(m.stride) and max(m.stride) > 1:
            return tuple(m.stride)
    return None


def token_grid(num_tokens: int, size: tuple[int, int], patch: tuple[int, int] | None = None) -> tuple[int, int, int]:
    """How ``num_tokens`` tokens of an (H, W) input split into prefix tokens and a patch grid.

    Prefix tokens (class, DeiT's distillation token, register tokens) come first. With a known
    patch size the grid is (H // ph, W // pw); otherwise, for a square input, the grid is the
    square gh = gw = isqrt(T - prefix) with the fewest prefix tokens (T = 197 -> 1 + 14 x 14,
    T = 198 -> 2 + 14 x 14), as pytorch-grad-cam's ViT ``reshape_transform`` assumes.

    Args:
        num_tokens: T, the token count of a (N, T, C) layer output.
        size: (H, W) of the model input.
        patch: (ph, pw) from ``patch_size``, if known.

    Returns:
        (prefix, gh, gw) with prefix + gh * gw == num_tokens.

    Raises:
        MethodError: No grid fits.
    """
    h, w = size
    if patch is not None:
        gh, gw = h // patch[0], w // patch[1]
        if gh * gw > 0 and 0 <= num_tokens - gh * gw <= MAX_PREFIX_TOKENS:
            return num_tokens - gh * gw, gh, gw
    if h == w:
        for prefix in range(min(MAX_PREFIX_TOKENS, num_tokens - 1) + 1):
            side = math.isqrt(num_tokens - prefix)
            if side * side == num_tokens - prefix:
                return prefix, side, side
    raise MethodError(f"cannot read {num_tokens} tokens as a patch grid of a {h}x{w} input",
                      "name a layer with a (N, C, h, w) or (N, tokens, C) output with {opt:layer}")


def tokens_to_grid(tokens: torch.Tensor, prefix: int, gh: int, gw: int) -> torch.Tensor:
    """(N, T, C) tokens -> (N, C, gh, gw) patch grid, dropping the ``prefix`` leading tokens."""
    n, _, c = tokens.shape
    patches = tokens[:, prefix:, :]  # (N, gh*gw, C), row-major over the grid
    return patches.transpose(1, 2).reshape(n, c, gh, gw)  # (N, C, gh, gw)
