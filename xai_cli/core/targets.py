"""Which class each input is explained for: top-1, top-k, or a fixed class by index or label."""

from __future__ import annotations

import torch

from xai_cli.errors import UsageError, did_you_mean


def parse_target(target: str | None, labels: list[str] | None, num_classes: int) -> int | None:
    """Turn ``--target`` (an index or a label) into a class index; ``None`` means top-k."""
    if target is None:
        return None
    if target.strip().lstrip("-").isdigit():
        index = int(target)
        if not 0 <= index < num_classes:
            raise UsageError(f"{{opt:target}} {index} is out of range", f"the model has classes 0..{num_classes - 1}")
        return index
    if labels:
        folded = {label.casefold(): i for i, label in enumerate(labels)}
        if target.casefold() in folded:
            return folded[target.casefold()]
        raise UsageError(f"no class labelled {target!r}", did_you_mean(target, labels) or "give a class index instead")
    raise UsageError(f"{{opt:target}} {target!r} is not a class index and the model has no labels",
                     "give {opt:labels} FILE, or a class index")


def choose_targets(probs: torch.Tensor, fixed: int | None, top_k: int) -> torch.Tensor:
    """(N, C) probabilities -> (N, K) class indices to explain, best first."""
    if fixed is not None:
        return torch.full((probs.shape[0], 1), fixed, dtype=torch.long, device=probs.device)
    k = min(top_k, probs.shape[1])
    # stable=True breaks ties by class index, so the choice never depends on the batch.
    return torch.sort(probs, dim=1, descending=True, stable=True).indices[:, :k]


def tied_with_top(probs: torch.Tensor, tolerance: float) -> torch.Tensor:
    """(N, C) probabilities -> (N,) how many classes are within ``tolerance`` (a share of the top
    probability) of the top one: 1 when the top class is clear."""
    top = probs.max(dim=1, keepdim=True).values
    return (probs >= top * (1 - tolerance)).sum(dim=1)
