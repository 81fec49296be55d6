"""Saliency maps: Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks: Visualising
Image Classification Models and Saliency Maps", ICLR workshop 2014. https://arxiv.org/abs/1312.6034

    w = d S_c / d I |_{I0}        M_ij = max_c |w_(i,j,c)|

the magnitude of the class score's gradient at the input, reduced over colour channels by the
maximum, as in the paper (section 3.1). Unsigned.
"""

from __future__ import annotations

from xai_cli.methods._gradients import InputGradientMethod
from xai_cli.methods.registry import register_method


@register_method
class Saliency(InputGradientMethod):
    name = "saliency"
    summary = "magnitude of the class score's gradient at each pixel (max over channels)"
    paper = "Simonyan et al. 2013, arXiv:1312.6034"
    # A pixel's gradient is decided by every ReLU/max-pool switch on its way, and bf16 flips some
    # (as does half a grey level of input noise in fp32: r 0.92 too; bench/fidelity.py).
    bf16_fidelity = ("bf16 maps r 0.922 of fp32 on the bench's resnet18 224² (at 2.2x the speed), 0.969 with the "
                     "stem in fp32; the bound is 0.99")

    def reduce(self, grads):
        return grads.abs().amax(dim=1)  # (N, C, H, W) -> (N, H, W)
