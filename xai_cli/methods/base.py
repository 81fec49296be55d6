"""What every method is: ``explain()`` validates and formats, ``_explain()`` does the maths.

Methods see tensors on the model's device, never paths or CLI options. Hooks they add to
the model are removed before ``explain`` returns, also when it raises.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn


@dataclass
class Explanation:
    """A batch of attribution maps.

    Attributes:
        maps: (N, H, W) float32, in model-input pixels (image methods) or (N, T) per token.
        details: One JSON-able dict per item (e.g. the completeness error of IG).
        layer: The layer the maps were taken from, for layer methods.
        warnings: Things a person should know about this batch (one line each; options as
            ``{opt:NAME}`` placeholders, see ``xai_cli.errors.words``). Methods never print.
    """

    maps: torch.Tensor
    details: list[dict] = field(default_factory=list)
    layer: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Predicted:
    """What ``explain_predicted`` returns: the prediction and one explanation per target rank.

    Attributes:
        probs: (N, classes) softmax probabilities.
        targets: (N, K) the classes explained, best first.
        explanations: K explanations, one per target rank.
        predict_seconds: Time of the forward pass that gave ``probs`` (shared with the
            explanation for methods like Grad-CAM, whose hooked forward yields the logits).
    """

    probs: torch.Tensor
    targets: torch.Tensor
    explanations: list[Explanation]
    predict_seconds: float


@dataclass(frozen=True)
class Normalization:
    """The per-channel mean/std the model's preprocessing applied (identity by default)."""

    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)

    def tensors(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, len(self.mean)) + (1,) * (like.dim() - 2)
        mean = torch.tensor(self.mean, dtype=like.dtype, device=like.device).view(shape)
        std = torch.tensor(self.std, dtype=like.dtype, device=like.device).view(shape)
        return mean, std


@dataclass(frozen=True)
class NoParams:
    """A method without parameters."""


class Method(ABC):
    """Base class of every explanation method.

    Subclasses set the class attributes, define a frozen ``Params`` dataclass, and implement
    ``_explain``. Register them with ``@register_method``.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    paper: ClassVar[str]
    modalities: ClassVar[tuple[str, ...]] = ("image",)
    signed: ClassVar[bool] = False  # maps take both signs: render with a diverging colormap
    regions: ClassVar[bool] = False  # maps are constant over regions (superpixels, patches): no peak marker, whose
    #                                  "largest pixel" would be an arbitrary corner of the best region
    Params: ClassVar[type] = NoParams
    # How the model runs for this method under --precision bf16: a key of core.precision.ARITHMETIC
    # ("bf16", "bf16-hires-fp32" or "fp32"), chosen from its maps' fidelity to fp32 on the bench
    # (bench/fidelity.py; issue 14 asks r >= 0.99), and that measurement in a few words.
    # Undeclared means unmeasured, hence fp32.
    bf16: ClassVar[str] = "fp32"
    bf16_fidelity: ClassVar[str] = "not measured under bf16"

    def __init__(self, model: nn.Module, params=None, normalization: Normalization | None = None) -> None:
        self.model = model
        self.params = params if params is not None else self.Params()
        self.normalization = normalization or Normalization()
        if hasattr(self.params, "validate"):
            self.params.validate()  # also when built in Python, not through the registry
        self.warnings: list[str] = []  # about this method on this model, found at construction

    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Model inputs -> pixel values in [0, 1] (for segmenting, or for baselines like 'black')."""
        mean, std = self.normalization.tensors(x)
        return x * std + mean

    def from_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixel values in [0, 1] -> model inputs."""
        mean, std = self.normalization.tensors(pixels)
        return (pixels - mean) / std

    def explain(self, inputs: torch.Tensor, targets: torch.Tensor, seeds: list[int] | None = None) -> Explanation:
        """Explain ``model(inputs)[i, targets[i]]`` for each item i.

        Args:
            inputs: (N, C, H, W) model inputs, already preprocessed, on the model's device.
            targets: (N,) class indices.
            seeds: One seed per item, for sampling methods; a result depends only on its seed.

        Returns:
            An ``Explanation`` with (N, H, W) float32 maps.
        """
        seeds = self._checked_seeds(inputs, targets, seeds)
        out = self._explain(inputs.detach(), targets.to(inputs.device), seeds)
        out.maps = out.maps.detach().float()
        return out

    def explain_targets(self, inputs: torch.Tensor, targets: torch.Tensor, seeds: list[int] | None = None
                        ) -> list[Explanation]:
        """One explanation per column of ``targets`` (N, K), in column order.

        The default explains each column on its own; a method whose costly part does not depend
        on the target (LIME's masked images) overrides this to do that part once.
        """
        return [self.explain(inputs, targets[:, k], seeds) for k in range(targets.shape[1])]

    @staticmethod
    def _checked_seeds(inputs: torch.Tensor, targets: torch.Tensor, seeds: list[int] | None) -> list[int]:
        """``seeds``, or 0 per item; raises ``ValueError`` when inputs and targets differ in count."""
        if inputs.shape[0] != targets.shape[0]:
            raise ValueError(f"{inputs.shape[0]} inputs but {targets.shape[0]} targets")
        return seeds if seeds is not None else [0] * inputs.shape[0]

    def predict(self, inputs) -> torch.Tensor:
        """(N, classes) softmax probabilities of the model on ``inputs`` (no gradients), a batch of
        images in the model's fastest layout (``batch_layout``)."""
        from xai_cli.methods._gradients import batch_layout
        from xai_cli.methods._vit import model_logits

        if isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=batch_layout(self.model, inputs))
        with torch.no_grad():
            return torch.softmax(model_logits(self.model(inputs)).float(), dim=1)

    def explain_predicted(self, inputs, pick: Callable[[torch.Tensor], torch.Tensor],
                          seeds: list[int] | None = None) -> Predicted:
        """Predict, choose targets with ``pick(probs) -> (N, K)``, and explain each of the K targets.

        The default predicts with its own no-grad forward; a method whose forward already
        yields the logits (Grad-CAM) overrides this to save that pass.
        """
        t = time.perf_counter()
        probs = self.predict(inputs)  # (N, classes)
        seconds = time.perf_counter() - t
        targets = pick(probs)  # (N, K)
        return Predicted(probs, targets, self.explain_targets(inputs, targets, seeds), seconds)

    @abstractmethod
    def _explain(self, inputs: torch.Tensor, targets: torch.Tensor, seeds: list[int]) -> Explanation:
        """The method's maths on one batch."""

    def bf16_policy(self) -> tuple[str, str]:
        """``(bf16, bf16_fidelity)`` of this instance: parameters may change them (shap's algorithm,
        a wrapper's base method)."""
        return self.bf16, self.bf16_fidelity

    def describe(self) -> dict:
        """Parameters for the JSON record."""
        from dataclasses import asdict

        return asdict(self.params)
