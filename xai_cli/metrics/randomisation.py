"""Model-parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps",
NeurIPS 2018, https://arxiv.org/abs/1810.03292).

The model's blocks are re-initialised one after the other, from the output down (cascading:
a step keeps the blocks randomised before it), and each step's maps are compared with the
original's by the Spearman rank correlation of their absolute values. A method whose maps
stay similar once the weights are gone does not explain the model: the check fails when the
similarity stays high. The caller's model is never touched (the test works on a deep copy).

Images and texts take the same path: ``x`` is whatever the explain callable takes (an image
batch, or a ``TokenBatch`` of documents), and ``mask`` says which entries of the maps are
compared (for text, the tokens of words: padding and special tokens left out).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

ExplainFn = Callable[[nn.Module, Any, torch.Tensor], torch.Tensor]
"""``explain(model, x, targets (N,)) -> maps``: any method, any knobs; x (N, C, H, W) images and
maps (N, H, W), or x a ``TokenBatch`` and maps (N, T) per token."""


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
    ``layer4.1``, ``layer4.0``, ...; a ``features`` stack's layers).

    A child that is not a container but holds an ``nn.ModuleList`` further down (a Hugging Face
    wrapper -> model -> encoder -> list of layers) is opened the same way, down to that list:
    a BERT classifier gives ``classifier``, ``pooler``, ``encoder.layer.1``, ``encoder.layer.0``,
    ``embeddings`` (each under ``hf.bert.``): the head first, the embeddings last. Without this
    the whole transformer is one block, and the cascade has a single step after the head.
    torchvision models keep their ``nn.Sequential`` stacks and so their blocks (tested).
    """
    return _blocks(model, "")[::-1]


def _blocks(module: nn.Module, prefix: str) -> list[str]:
    """Blocks under ``module`` in definition order (input first), named from the root."""
    blocks = []
    for name, child in module.named_children():
        path = prefix + name
        if isinstance(child, (nn.Sequential, nn.ModuleList)):
            parts = [(f"{path}.{sub}", m) for sub, m in child.named_children()]
        elif any(isinstance(m, nn.ModuleList) for m in child.modules()):
            blocks += _blocks(child, path + ".")
            continue
        else:
            parts = [(path, child)]
        blocks += [p for p, m in parts if any(True for _ in m.parameters())]
    return blocks


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


def spearman_rows(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(N, F), (N, F) -> (N,) Spearman correlation of each pair of rows (average ranks for ties).

    Args:
        mask: (N, F) bool, the entries of each row to compare (default all); rows of a padded
            text batch have different lengths. A row's ranks are taken over its own entries.
    """
    if mask is not None:
        # Left-out entries rank last (+inf, tied only with each other), so a row's own entries
        # get the ranks 1..n_i they would get alone; then they are zeroed out of the sums.
        a, b = np.where(mask, a, np.inf), np.where(mask, b, np.inf)
    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    keep = np.ones(ra.shape, dtype=bool) if mask is None else mask
    mean = (keep.sum(1, keepdims=True) + 1) / 2  # the mean of ranks 1..n
    ra, rb = np.where(keep, ra - mean, 0.0), np.where(keep, rb - mean, 0.0)
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
    mask: torch.Tensor | np.ndarray | None = None,
) -> RandomisationScores:
    """Cascading model-parameter randomisation on a (small) batch of inputs.

    Args:
        explain: Makes maps for a model; called once per step on the whole batch.
        model: The trained model (not modified).
        x: What ``explain`` takes: (N, C, H, W) images or a ``TokenBatch``, typically a seeded
            sample (see :func:`sample_indices`).
        targets: (N,) classes explained; kept fixed across steps, as in the paper.
        blocks: Module names randomised in turn, output first (default :func:`cascade_blocks`).
        seed: Seeds the re-initialisation.
        absolute: Compare |map| (the paper's main variant).
        maps: The original model's maps, if already computed (else ``explain`` makes them).
        constant_score: The similarity given when either map is constant (Spearman undefined);
            NaN keeps Quantus's behaviour.
        mask: (N, *map shape) bool, the map entries compared (default all; for text the
            tokens of words, see the module docstring).

    Returns:
        :class:`RandomisationScores`.
    """
    blocks = list(blocks) if blocks is not None else cascade_blocks(model)
    if not blocks:
        raise ValueError("the model has no block with parameters to randomise")

    def flat(m: torch.Tensor) -> np.ndarray:
        m = m.detach().float().cpu().reshape(m.shape[0], -1).numpy()
        return np.abs(m) if absolute else m

    original = flat(maps if maps is not None else explain(model, x, targets))  # (N, F)
    keep = None if mask is None else np.asarray(torch.as_tensor(mask).cpu()).reshape(original.shape).astype(bool)
    randomised = copy.deepcopy(model)
    similarity = np.empty((original.shape[0], len(blocks)))
    for j, name in enumerate(blocks):
        randomise_block(randomised, name, seed)
        rho = spearman_rows(original, flat(explain(randomised, x, targets)), keep)
        similarity[:, j] = np.where(np.isnan(rho), constant_score, rho)
    return RandomisationScores(blocks, similarity)


def sample_indices(n: int, k: int = 16, seed: int = 0) -> np.ndarray:
    """A seeded sample of ``min(k, n)`` item indices, sorted (the inputs the sanity checks use)."""
    return np.sort(np.random.default_rng(seed).choice(n, size=min(k, n), replace=False))
