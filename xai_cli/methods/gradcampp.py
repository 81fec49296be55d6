"""Grad-CAM++: Chattopadhay, Sarkar, Howlader & Balasubramanian, "Grad-CAM++: Improved Visual
Explanations for Deep Convolutional Networks", WACV 2018. https://arxiv.org/abs/1710.11063

With g = d y^c / d A^k_ij (the target logit's gradient at the layer), eq. 19 under the
exponential-output assumption of the paper (higher derivatives = powers of g):

    a^kc_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3)          (0 where g = 0)
    w^c_k   = sum_ij a^kc_ij ReLU(g)
    L^c     = ReLU( sum_k w^c_k A^k )

as pytorch-grad-cam's ``GradCAMPlusPlus`` computes it (eps 1e-6 in the denominator). Layer
choice, ViT token grids and upsampling are Grad-CAM's (``_cam.CamMethod``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xai_cli.methods._cam import CamMethod, GradCamParams
from xai_cli.methods.registry import register_method

EPS = 1e-6  # pytorch-grad-cam's


@register_method
class GradCAMPlusPlus(CamMethod):
    name = "gradcampp"
    summary = "Grad-CAM with pixel-wise weights of the positive gradients (better for several objects)"
    paper = "Chattopadhay et al. 2018, arXiv:1710.11063"
    Params = GradCamParams

    def channel_weights(self, acts, grads, inputs, targets):
        g2 = grads.double() ** 2  # (N, K, h, w); float64: g^3 underflows in float32 for small gradients
        g3 = g2 * grads.double()
        total = acts.double().sum(dim=(2, 3), keepdim=True)  # (N, K, 1, 1)
        alpha = torch.where(grads != 0, g2 / (2 * g2 + total * g3 + EPS), 0.0)  # (N, K, h, w)
        return (alpha * F.relu(grads.double())).sum(dim=(2, 3), keepdim=True).to(acts.dtype)  # (N, K, 1, 1)
