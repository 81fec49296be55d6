"""Model-parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps",
NeurIPS 2018, https://arxiv.org/abs/1810.03292).

The model's blocks are re-initialised one after the other, from the output down (cascading:
a step keeps the blocks randomised before it), and each step's maps are compared with the
original's by the Spearman rank correlation of their absolute values. A method whose maps
stay similar once the weights are gone does not explain the model: the check fails when the
similarity stays high. The caller's model is never touched (the test works on a deep copy).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

ExplainFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
"""``explain(model, x (N, C, H, W), targets (N,)) -> maps (N, H, W)``: any method, any knobs."""


@dataclass
class RandomisationScores:
    """Similarity of each cascade step's maps to the original maps.

    Attributes:
        blocks: The blocks randomised at each step, output first (step j has blocks[:j+1] random).
        similarity: (N, B) Spearman correlation of |map| with the original, per item and step;
            a map that became constant (e.g. Grad-CAM's ReLU zeroing it) has no ranking left
            and scores ``constant_score`` (0 by default: nothing of the original survives).
    """

    blocks: list[str]
    similarity: np.ndarray

    def metrics(self) -> dict[str, np.ndarray]:
        """``randomisation_similarity``: averaged over the cascade (how long the maps stay
        similar as the model is destroyed: the gated value); ``randomisation_last_similarity``:
        with every block random (Adebayo's final step)."""
        return {"randomisation_similarity": self.similarity.mean(axis=1),
                "randomisation_last_similarity": self.similarity[:, -1]}


def cascade_blocks(model: nn.Module) -> list[str]:
    """The default cascade, output first: the model's top-level children that have parameters,
    with a container (``nn.Sequential``, ``nn.ModuleList``) opened one level (resnet's
    ``layer4.1``, ``layer4.0``, ...; a ``features`` stack's layers)."""
    blocks = []
    for name, child in model.named_children():
        parts = list(child.named_children()) if isinstance(child, (nn.Sequential, nn.ModuleList)) else []
        for sub, module in parts or [("", child)]:
            if any(True for _ in module.parameters()):
                blocks.append(f"{name}.{sub}" if sub else name)
    return blocks[::-1]


def randomise_block(model: nn.Module, name: str, seed: int) -> None:
    """Re-initialise, in place, every module under ``name`` that has ``reset_parameters``.

    The global RNG is seeded with ``seed`` before each module's reset (as Quantus does) inside
    ``torch.random.fork_rng``, so the caller's random state is left as it was.
    """
    block = model.get_submodule(name)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for module in block.modules():
            if hasattr(module, "reset_parameters"):
                torch.manual_seed(seed)
                module.reset_parameters()


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, F), (N, F) -> (N,) Spearman correlation of each pair of rows (average ranks for ties)."""
    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra, rb = ra - ra.mean(1, keepdims=True), rb - rb.mean(1, keepdims=True)
    denom = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (ra * rb).sum(1) / np.where(denom > 0, denom, 1), np.nan)


def model_randomisation(
    explain: ExplainFn,
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    blocks: Sequence[str] | None = None,
    seed: int = 0,
    absolute: bool = True,
    maps: torch.Tensor | None = None,
    constant_score: float = 0.0,
) -> RandomisationScores:
    """Cascading model-parameter randomisation on a (small) batch of inputs.

    Args:
        explain: Makes maps for a model; called once per step on the whole batch.
        model: The trained model (not modified).
        x: (N, C, H, W) inputs, typically a seeded sample (see :func:`sample_indices`).
        targets: (N,) classes explained; kept fixed across steps, as in the paper.
        blocks: Module names randomised in turn, output first (default :func:`cascade_blocks`).
        seed: Seeds the re-initialisation.
        absolute: Compare |map| (the paper's main variant).
        maps: The original model's maps, if already computed (else ``explain`` makes them).
        constant_score: The similarity given when either map is constant (Spearman undefined);
            NaN keeps Quantus's behaviour.

    Returns:
        :class:`RandomisationScores`.
    """
    blocks = list(blocks) if blocks is not None else cascade_blocks(model)
    if not blocks:
        raise ValueError("the model has no block with parameters to randomise")

    def flat(m: torch.Tensor) -> np.ndarray:
        m = m.detach().float().cpu().reshape(m.shape[0], -1).numpy()
        return np.abs(m) if absolute else m

    original = flat(maps if maps is not None else explain(model, x, targets))  # (N, HW)
    randomised = copy.deepcopy(model)
    similarity = np.empty((x.shape[0], len(blocks)))
    for j, name in enumerate(blocks):
        randomise_block(randomised, name, seed)
        rho = spearman_rows(original, flat(explain(randomised, x, targets)))
        similarity[:, j] = np.where(np.isnan(rho), constant_score, rho)
    return RandomisationScores(blocks, similarity)


def sample_indices(n: int, k: int = 16, seed: int = 0) -> np.ndarray:
    """A seeded sample of ``min(k, n)`` item indices, sorted (the inputs the sanity checks use)."""
    return np.sort(np.random.default_rng(seed).choice(n, size=min(k, n), replace=False))
