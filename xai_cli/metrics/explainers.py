"""An ``explain(model, x, targets) -> maps`` callable from a registered method, for the metrics
that re-explain (randomisation, stability)."""

from __future__ import annotations

import torch
from torch import nn

from xai_cli.methods.base import Normalization
from xai_cli.methods.registry import get_method
from xai_cli.metrics.randomisation import ExplainFn


def method_explainer(name: str, params=None, normalization: Normalization | None = None,
                     modality: str = "image") -> ExplainFn:
    """The registered method ``name`` as an explain callable; a method object is built per model
    (methods bind their model), so the randomised copies are explained like the original."""
    cls = get_method(name, modality)
    cache: dict[int, object] = {}

    def explain(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        method = cache.get(id(model))
        if method is None or method.model is not model:
            method = cache[id(model)] = cls(model, params, normalization)
        return method.explain(x, targets).maps

    return explain
