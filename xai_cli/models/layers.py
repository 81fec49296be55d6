"""Finding layers by name, and the layer Grad-CAM should look at when none is named."""

from __future__ import annotations

import torch
from torch import nn

from xai_cli.errors import MethodError, UsageError, did_you_mean


def get_layer(model: nn.Module, dotted: str) -> nn.Module:
    """``model.get_submodule`` with a one-line error that suggests near names."""
    try:
        return model.get_submodule(dotted)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        raise UsageError(f"the model has no layer {dotted!r}", did_you_mean(dotted, names, n=4)
                         or f"layers include: {', '.join(names[-5:])}") from None


def find_spatial_layer(model: nn.Module, example: torch.Tensor) -> str:
    """The name of the last layer whose output still has a spatial grid.

    Runs ``example`` through the model once, recording for each module the shape of its
    output and the order in which modules finish. The answer is the module that finishes
    last with a (N, C, h, w) output where h, w > 1 — for a CNN, the last block before global
    pooling (``layer4`` in a ResNet, ``features`` in VGG/EfficientNet/ConvNeXt). Modules that
    run more than once per forward (a shared ReLU) are skipped, since a hook on them would
    capture the wrong call. ViT-style token outputs (N, T, C) are used when there is no grid.
    """
    finished: list[tuple[str, tuple[int, ...]]] = []
    calls: dict[str, int] = {}
    handles = []

    def hook(name):
        def fn(_module, _inputs, output):
            calls[name] = calls.get(name, 0) + 1
            if isinstance(output, torch.Tensor):
                finished.append((name, tuple(output.shape)))
        return fn

    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(hook(name)))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    grids = [n for n, s in finished if len(s) == 4 and s[2] > 1 and s[3] > 1 and calls[n] == 1]
    if grids:
        return grids[-1]
    raise MethodError(
        "found no layer with a spatial output to take Grad-CAM from",
        "name one with --layer (see 'xai explain --help'), or use a method that needs no layer, such as ig",
    )
