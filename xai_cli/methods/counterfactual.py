"""Counterfactuals of images: SEDC, Vermeire, Brughmans, Goethals, de Oliveira & Martens,
"Explainable image classification with evidence counterfactual", Pattern Analysis and
Applications 2022. https://arxiv.org/abs/2004.07511

The smallest set of superpixels whose removal (each replaced by the blurred image) changes
the prediction, by best-first search:

    frontier = {{}}
    repeat: S = the evaluated, unexpanded set with the lowest p(target)
            evaluate S + {j} for every superpixel j not in S       (one batched forward)
            stop at the first step where some S + {j} is no longer predicted as the target
            (of those, the one with the lowest p(target))

When the target is not the predicted class, the search is SEDC-T (the paper's targeted
variant): it maximises p(target) and stops when the target becomes the predicted class.

The map is 0 outside the removed set and, inside, 1 + how much the pixel changed (|x - blur|,
scaled to [0, 1]), so that it marks the set and peaks where the removal changed most.
``details`` hold the removed superpixel ids, the new class and its probability. The items of
a batch search side by side: each step's candidates of all items go through the model together,
``perturbations_per_eval`` per forward pass. Deterministic (no sampling).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import torch

from xai_cli.errors import UsageError
from xai_cli.methods._perturb import check_targets
from xai_cli.methods._segments import SEGMENTATIONS, Segmentation, segment
from xai_cli.methods._vit import model_logits
from xai_cli.methods.base import Explanation, Method
from xai_cli.methods.ig import BLUR_SIGMA_PER_224, gaussian_blur
from xai_cli.methods.registry import register_method


@dataclass(frozen=True)
class CounterfactualParams:
    segmentation: Segmentation = "slic"  # how the image is cut into the regions removed
    n_segments: int = 50  # for slic and grid
    max_steps: int = 30  # expansions before giving up (each one batched forward over <= M candidates)
    blur_sigma: float | None = None  # px; None = 10 px per 224 px of image side
    perturbations_per_eval: int = 256  # candidate images per forward pass (memory, not results)

    def validate(self) -> None:
        if self.segmentation not in SEGMENTATIONS:
            raise UsageError(f"unknown segmentation {self.segmentation!r}", f"use one of: {', '.join(SEGMENTATIONS)}")
        if min(self.n_segments, self.max_steps, self.perturbations_per_eval) < 1:
            raise UsageError("counterfactual needs n_segments, max_steps and perturbations_per_eval >= 1")


@dataclass
class _Search:
    """One item's best-first search."""

    target: int
    targeted: bool  # SEDC-T: make the target the prediction
    n_segments: int
    frontier: list = None  # sorted [(key, ids)]; key = p(target), negated for SEDC-T
    seen: set = None
    result: tuple | None = None  # (ids, probs, found)
    best: tuple | None = None  # the best evaluated (key, ids, probs), for a search that gives up

    def __post_init__(self) -> None:
        self.frontier, self.seen = [(0.0, ())], {()}

    def candidates(self) -> list[tuple[int, ...]]:
        """Expand the best unexpanded set: one more superpixel each."""
        while self.frontier:
            _, parent = self.frontier.pop(0)
            kids = [tuple(sorted(parent + (j,))) for j in range(self.n_segments) if j not in parent]
            kids = [k for k in kids if k not in self.seen]
            if kids:
                self.seen.update(kids)
                return kids
        return []

    def update(self, kids: list[tuple[int, ...]], probs: torch.Tensor) -> None:
        p_t = probs[:, self.target]  # (K,)
        keys = (-p_t if self.targeted else p_t).tolist()
        pred = probs.argmax(1)
        flipped = (pred == self.target) if self.targeted else (pred != self.target)
        order = sorted(range(len(kids)), key=lambda r: (keys[r], kids[r]))
        if self.best is None or (keys[order[0]], kids[order[0]]) < self.best[:2]:
            self.best = (keys[order[0]], kids[order[0]], probs[order[0]])
        for r in order:
            if flipped[r]:
                self.result = (kids[r], probs[r], True)
                return
        for r in order:
            bisect.insort(self.frontier, (keys[r], kids[r]))


@register_method
class Counterfactual(Method):
    name = "counterfactual"
    summary = "the fewest superpixels whose blurring changes the prediction (SEDC best-first search)"
    paper = "Vermeire et al. 2022, arXiv:2004.07511"
    Params = CounterfactualParams

    @torch.no_grad()
    def _explain(self, inputs, targets, seeds):
        p = self.params
        n = inputs.shape[0]
        segments, counts = segment(self.to_pixels(inputs), p.segmentation, p.n_segments)  # (N, H, W), [M_i]
        sigma = p.blur_sigma if p.blur_sigma is not None else BLUR_SIGMA_PER_224 * min(inputs.shape[-2:]) / 224
        fill = gaussian_blur(inputs, sigma)  # (N, C, H, W)
        probs0 = self._probs(inputs, fill, segments, [(i, ()) for i in range(n)])  # (N, classes)
        check_targets(targets, probs0.shape[1])
        searches = [_Search(int(t), int(probs0[i].argmax()) != int(t), counts[i]) for i, t in enumerate(targets)]
        steps = [0] * n
        for _ in range(p.max_steps):
            active = [i for i, s in enumerate(searches) if s.result is None]
            rows = [(i, kid) for i in active for kid in searches[i].candidates()]
            if not rows:
                break
            probs = self._probs(inputs, fill, segments, rows)  # (R, classes), one batched evaluation
            for i in active:
                idx = [r for r, (j, _) in enumerate(rows) if j == i]
                if idx:
                    steps[i] += 1
                    searches[i].update([rows[r][1] for r in idx], probs[idx])
        maps, details = [], []
        change = (inputs - fill).abs().mean(1)  # (N, H, W)
        for i, s in enumerate(searches):
            ids, probs, found = s.result or (s.best[1], s.best[2], False)
            removed = torch.zeros(counts[i], dtype=torch.bool, device=inputs.device)
            removed[list(ids)] = True
            where = removed[segments[i]]  # (H, W)
            inside = change[i] * where
            maps.append(where * (1 + inside / inside.max().clamp(min=1e-12)))
            details.append({"removed_segments": list(ids), "n_segments": counts[i], "found": found,
                            "mode": "sedc-t" if s.targeted else "sedc", "steps": steps[i],
                            "new_class": int(probs.argmax()), "new_probability": float(probs.max()),
                            "target_probability": float(probs[s.target]),
                            "original_target_probability": float(probs0[i, s.target])})
        return Explanation(torch.stack(maps).float(), details)

    def _probs(self, inputs, fill, segments, rows: list[tuple[int, tuple[int, ...]]]) -> torch.Tensor:
        """Softmax of the model on each (item, removed superpixels) row, ``perturbations_per_eval`` per pass."""
        out = []
        for start in range(0, len(rows), self.params.perturbations_per_eval):
            chunk = rows[start:start + self.params.perturbations_per_eval]
            items = torch.tensor([i for i, _ in chunk], device=inputs.device)
            removed = torch.zeros((len(chunk), int(segments.max()) + 1), dtype=torch.bool, device=inputs.device)  # (B, M)
            for r, (_, ids) in enumerate(chunk):
                removed[r, list(ids)] = True
            hide = removed.gather(1, segments[items].flatten(1)).view(len(chunk), 1, *segments.shape[1:])  # (B, 1, H, W)
            images = torch.where(hide, fill[items], inputs[items])  # (B, C, H, W)
            out.append(model_logits(self.model(images)).float().softmax(1))
        return torch.cat(out)  # (R, classes)
