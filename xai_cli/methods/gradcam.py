"""Grad-CAM: Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", ICCV 2017. https://arxiv.org/abs/1610.02391

    alpha_k^c = mean_ij  d y^c / d A^k_ij
    L^c       = ReLU( sum_k alpha_k^c A^k )

upsampled bilinearly to the input size, as Captum's ``LayerAttribution.interpolate`` and
pytorch-grad-cam do.

Vision transformers: a layer with a (N, T, C) token output is read as a (N, C, gh, gw) image
after dropping its prefix tokens (class, distillation, registers) — pytorch-grad-cam's ViT
``reshape_transform``, with the grid inferred from T instead of passed in. The default layer
is the last block's pre-attention LayerNorm (see ``find_spatial_layer``). The layer handling
is shared with Grad-CAM++ and Score-CAM (``_cam.CamMethod``).
"""

from __future__ import annotations

from xai_cli.methods._cam import CamMethod, GradCamParams, _captured  # noqa: F401  (re-exported)
from xai_cli.methods.registry import register_method


@register_method
class GradCAM(CamMethod):
    name = "gradcam"
    summary = "class activation map from the last spatial layer's gradient-weighted channels"
    paper = "Selvaraju et al. 2017, arXiv:1610.02391"
    bf16 = "bf16"
    bf16_fidelity = "maps r 1.000 of fp32 on the bench's resnet18 224², 2.0x the fp32 speed"
    Params = GradCamParams

    def channel_weights(self, acts, grads, inputs, targets):
        return grads.mean(dim=(2, 3), keepdim=True)  # (N, K, 1, 1)
