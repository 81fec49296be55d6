"""The peer libraries, compute only, used the way their docs show.

Each peer is a ``make(ctx, samples) -> run(x, targets)`` pair: ``make`` builds the explainer
once (as a user would), ``run`` explains one batch of preloaded inputs on the device.
Peers get the model with weight gradients on (torchvision's default, and what
pytorch-grad-cam needs to find a gradient at all); xai runs it with weights frozen.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from common import IMAGENET_MEAN, IMAGENET_STD

# Captum's notes that it set requires_grad and hooked ReLUs: expected here, noise in the log.
warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\.")

Run = Callable[[torch.Tensor, torch.Tensor], object]


@dataclass
class Context:
    """What a peer needs besides the inputs."""

    model: nn.Module
    layer: nn.Module | None  # Grad-CAM's layer: the one xai picks, so both explain the same tensor
    device: torch.device
    rows: int  # rows per forward pass, where the peer has such a knob
    background: torch.Tensor  # (B, C, H, W) model inputs, for shap's GradientExplainer

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(IMAGENET_MEAN, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=pixels.device).view(1, 3, 1, 1)
        return (pixels - mean) / std

    def pixels_hwc(self, x: torch.Tensor) -> np.ndarray:
        """(N, 3, H, W) model inputs -> (N, H, W, 3) float64 pixels in [0, 1], what lime and shap take."""
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        return (x * std + mean).clamp(0, 1).permute(0, 2, 3, 1).double().cpu().numpy()

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """A classifier function for lime and shap: (B, H, W, 3) pixels -> (B, classes) softmax, on the device."""
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device, torch.float32).permute(0, 3, 1, 2)
            return torch.softmax(self.model(self.normalize(x)), dim=1).cpu().numpy()


def _grad_cam(ctx: Context, samples: int | None) -> Run:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam = GradCAM(model=ctx.model, target_layers=[ctx.layer])

    def run(x, targets):
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])

    return run


def _captum_layer_gradcam(ctx: Context, samples: int | None) -> Run:
    from captum.attr import LayerAttribution, LayerGradCam

    explainer = LayerGradCam(ctx.model, ctx.layer)

    def run(x, targets):
        cam = explainer.attribute(x, target=targets, relu_attributions=True)  # (N, 1, h, w)
        return LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")

    return run


def _captum_ig(ctx: Context, samples: int | None) -> Run:
    from captum.attr import IntegratedGradients

    explainer = IntegratedGradients(ctx.model)

    def run(x, targets):
        black = ctx.normalize(torch.zeros_like(x))  # xai's default baseline
        return explainer.attribute(x, baselines=black, target=targets, n_steps=samples, internal_batch_size=ctx.rows)

    return run


def _captum_saliency(ctx: Context, samples: int | None) -> Run:
    from captum.attr import Saliency

    explainer = Saliency(ctx.model)
    return lambda x, targets: explainer.attribute(x, target=targets, abs=True)


def _captum_guided_backprop(ctx: Context, samples: int | None) -> Run:
    from captum.attr import GuidedBackprop

    explainer = GuidedBackprop(ctx.model)
    return lambda x, targets: explainer.attribute(x, target=targets)


def _lime(batch_size: int) -> Callable[[Context, int | None], Run]:
    def make(ctx: Context, samples: int | None) -> Run:
        from lime.lime_image import LimeImageExplainer

        explainer = LimeImageExplainer(random_state=0)

        def run(x, targets):  # lime explains its own top label; the targets are the top-1 class too
            for image in ctx.pixels_hwc(x):
                explainer.explain_instance(image, ctx.probabilities, top_labels=1, hide_color=None,
                                           num_samples=samples, batch_size=batch_size, random_seed=0)

        return run

    return make


def _shap_gradient(ctx: Context, samples: int | None) -> Run:
    import shap

    explainer = shap.GradientExplainer(ctx.model, ctx.background)  # batch_size: its default, 50

    def run(x, targets):
        return explainer.shap_values(x, nsamples=samples, ranked_outputs=1, rseed=0)

    return run


def _shap_partition(ctx: Context, samples: int | None) -> Run:
    import shap

    side = ctx.background.shape[-1]
    k = min(128, side)  # shap's PyTorch image example: Image("blur(128,128)", shape)
    explainer = shap.explainers.Partition(ctx.probabilities, shap.maskers.Image(f"blur({k},{k})", (side, side, 3)))

    def run(x, targets):
        return explainer(ctx.pixels_hwc(x), max_evals=samples, batch_size=50,
                         outputs=shap.Explanation.argsort.flip[:1], silent=True)

    return run


@dataclass(frozen=True)
class Peer:
    label: str
    module: str  # the import that tells whether it is installed
    make: Callable[[Context, int | None], Run]
    per_item: bool = False  # explains one input at a time: fed one input per call

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


def peers_for(case: str, rows: int) -> list[Peer]:
    """The peers compared with xai's ``case`` (a bench case name, see ``xai_runs.CASES``)."""
    table = {
        "gradcam": [Peer("pytorch-grad-cam GradCAM", "pytorch_grad_cam", _grad_cam),
                    Peer("Captum LayerGradCam + interpolate", "captum", _captum_layer_gradcam)],
        "saliency": [Peer("Captum Saliency", "captum", _captum_saliency)],
        "guided_backprop": [Peer("Captum GuidedBackprop", "captum", _captum_guided_backprop)],
        "ig": [Peer("Captum IntegratedGradients", "captum", _captum_ig)],
        "lime": [Peer("lime LimeImageExplainer, batch_size=10", "lime", _lime(10), True),
                 Peer(f"lime LimeImageExplainer, batch_size={rows}", "lime", _lime(rows), True)],
        "shap": [Peer("shap Partition, Image blur masker", "shap", _shap_partition, True)],
        "shap_gradient": [Peer("shap GradientExplainer", "shap", _shap_gradient, True)],
        "attention": [],  # none of the peers has attention rollout
    }
    return table.get(case, [])
