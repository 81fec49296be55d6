"""Guided backpropagation: Springenberg, Dosovitskiy, Brox & Riedmiller, "Striving for Simplicity:
The All Convolutional Net", ICLR workshop 2015. https://arxiv.org/abs/1412.6806

The input gradient of the class score, except that every ReLU passes back only positive
gradients, and only where its input was positive (the paper's eq. for R_i^l, fig. 1):

    R^l = (f^l > 0) * (R^{l+1} > 0) * R^{l+1}

The map is the per-pixel sum over colour channels, signed: the paper shows the reconstruction
itself (zero is grey, both signs visible), and summing channels keeps that sign (Captum's
``visualize_image_attr`` reduces channels the same way).

How the ReLUs are modified: a forward hook on every ``nn.ReLU`` puts a gradient hook on the
module's output that clamps the incoming gradient at zero; ReLU's own backward then applies
(f^l > 0). Hooking the output tensor, rather than ``register_full_backward_hook``, works with
``ReLU(inplace=True)`` (torchvision's ResNets), which full backward hooks reject. Captum's
``GuidedBackprop`` does the same with pre-hooks that clone the ReLU's input.
Limits: only ``nn.ReLU`` modules are modified. A ``torch.relu`` / ``F.relu`` call inside a
``forward`` cannot be hooked and backpropagates as a plain ReLU; other activations (GELU,
SiLU, ReLU6) are left alone. A warning says so when a model has no ``nn.ReLU`` at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from xai_cli.methods._gradients import InputGradientMethod
from xai_cli.methods.registry import register_method


@register_method
class GuidedBackprop(InputGradientMethod):
    name = "guided_backprop"
    summary = "input gradient with only positive signals passed back through each ReLU (sum over channels)"
    paper = "Springenberg et al. 2014, arXiv:1412.6806"
    bf16 = "bf16-hires-fp32"
    bf16_fidelity = ("maps r 0.9998 of fp32 on the bench's resnet18 224² with the stem in fp32, 1.6x the fp32 "
                     "speed (0.987 with every layer in bf16)")
    signed = True

    def __init__(self, model, params=None, normalization=None) -> None:
        super().__init__(model, params, normalization)
        self._relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
        if not self._relus:
            self.warnings.append("guided_backprop: the model has no nn.ReLU modules, so the map is the plain gradient "
                                 "(functional relu calls and other activations cannot be guided)")

    @contextmanager
    def modified(self) -> Iterator[None]:
        handles = [relu.register_forward_hook(_guide) for relu in self._relus]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def reduce(self, grads):
        return grads.sum(dim=1)  # (N, C, H, W) -> (N, H, W)


def _guide(_module: nn.Module, _inputs, output: torch.Tensor) -> None:
    # The tensor hook belongs to this forward's graph and goes with it; only the module hooks
    # need removing. The clamp sees the output's total gradient, summed over all its uses.
    if output.requires_grad:
        output.register_hook(lambda grad: grad.clamp(min=0))
