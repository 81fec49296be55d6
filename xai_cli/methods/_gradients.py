"""Input gradients of the target logit, and their weighted sums over many points per item.

Shared by the gradient methods (saliency, guided backprop, integrated gradients, expected
gradients). Path and sampling methods evaluate the gradient at ``n_samples`` points per item;
those (item, sample) rows are flattened and cut into chunks of ``batch_size`` rows, so memory
is bounded by the chunk whatever the number of items or samples. Rows are independent (eval
mode), so the chunking changes results only by float rounding.

Every forward pass gets a copy of its inputs: a model whose first layer works in place
(``ReLU(inplace=True)``) must not write into the caller's tensors. That copy is made in the
layout the model runs fastest in (``batch_layout``: channels_last for a conv net on the CPU),
which changes results only by float rounding: resnet18 224², 32 rows, forward + backward to the
input, 1 thread, CPU time 3.26 s NCHW against 2.87 s channels_last (IG maps r 0.999999 of the
NCHW run's), and that alone had kept xai's IG at Captum's speed instead of ahead of it.
"""

from __future__ import annotations

from abc import abstractmethod

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn
from xai_cli import cancel
from xai_cli.core.precision import channels_last_on
from xai_cli.methods._vit import model_logits
from xai_cli.methods.base import Explanation, Method, Predicted

# rows(items, ks) -> (points (R, C, H, W), targets (R,), multipliers (R, C, H, W) or broadcastable)
RowBuilder = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def target_gradients(model: nn.Module, points: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """d model(points)[r, targets[r]] / d points[r] for every row r, in one forward and backward.

    Args:
        model: The classifier (frozen weights, so only the input gets a gradient).
        points: (R, C, H, W) model inputs.
        targets: (R,) class indices.

    Returns:
        ``(grads, scores)``: (R, C, H, W) gradients and the (R,) target logits.
    """
    points, given = _grad_points(model, points)
    with torch.enable_grad():
        scores = model(points.clone()).gather(1, targets[:, None])[:, 0]  # (R,)
        # Rows are independent, so the gradient of the sum is each row's own gradient.
        (grads,) = torch.autograd.grad(scores.sum(), points)
    grads = grads.detach()
    return (grads if given else grads.contiguous()), scores.detach()


def _grad_points(model: nn.Module, points: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``points`` detached, in ``batch_layout``, requiring grad; and whether they came in that layout
    (if not, the caller hands its gradients back contiguous)."""
    layout = batch_layout(model, points)
    given = points.is_contiguous(memory_format=layout)
    return points.detach().contiguous(memory_format=layout).requires_grad_(True), given


class InputGradientMethod(Method):
    """Base of the methods whose map is a reduction of the target's gradient at the input itself
    (saliency, guided backprop): subclasses define ``reduce`` and, if they modify the backward
    pass, ``modified``.

    The prediction comes from the gradient pass's own forward (``explain_predicted``), as
    Grad-CAM's does: the separate no-grad prediction forward was 29 % of the engine's saliency
    time (resnet18 224², 1 CPU thread: 138.7 ms per input against 97.7 for the method alone).
    """

    @abstractmethod
    def reduce(self, grads: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) input gradients -> (N, H, W) map."""

    def modified(self) -> AbstractContextManager:
        """The model as the method's backward pass needs it, during the block (default: as it is)."""
        return nullcontext()

    def _explain(self, inputs, targets, seeds):
        return self.explain_predicted(inputs, lambda probs: targets[:, None], seeds).explanations[0]

    def explain_predicted(self, inputs, pick, seeds=None):
        """One forward gives the prediction and, through ``retain_graph``, every target's gradient."""
        points, given = _grad_points(self.model, inputs)  # the layout target_gradients uses (batch_layout)
        with self.modified(), torch.enable_grad():
            t = time.perf_counter()
            logits = model_logits(self.model(points.clone()))  # (N, classes); the clone: see the module docstring
            probs = torch.softmax(logits.detach().float(), dim=1)
            seconds = time.perf_counter() - t
            targets = pick(probs).to(logits.device)  # (N, K)
            scores = logits.gather(1, targets)  # (N, K)
            grads = []
            for k in range(targets.shape[1]):
                # Rows are independent, so the gradient of the sum is each row's own gradient.
                (grad,) = torch.autograd.grad(scores[:, k].sum(), points, retain_graph=k + 1 < targets.shape[1])
                grads.append(grad.detach() if given else grad.detach().contiguous())  # (N, C, H, W)
        return Predicted(probs, targets, [Explanation(self.reduce(g).float()) for g in grads], seconds)


@torch.no_grad()
def target_scores(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The (N,) target logits of ``inputs``, ``batch_size`` rows per forward pass."""
    inputs = inputs.contiguous(memory_format=batch_layout(model, inputs))
    chunks = [model(inputs[s:s + batch_size].clone()).gather(1, targets[s:s + batch_size, None])[:, 0]
              for s in range(0, inputs.shape[0], batch_size)]
    return torch.cat(chunks).float()  # (N,)


def summed_gradients(
    model: nn.Module, n_items: int, n_samples: int, batch_size: int, rows: RowBuilder, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """sum_k multiplier[i, k] * grad(point[i, k]) for every item i, ``batch_size`` rows at a time.

    Args:
        model: The classifier.
        n_items: N, the number of items explained.
        n_samples: S, the number of points per item (path steps or samples).
        batch_size: (item, sample) rows per forward/backward pass.
        rows: Builds the chunk's points, targets and multipliers from its (R,) item and sample
            indices.
        device: Where the indices live (the inputs' device).

    Returns:
        ``(totals, row_sums)``: (N, C, H, W) float32 sums over samples, and the (N, S) sum over
        C, H, W of each row's weighted gradient (its contribution to the item's total).
    """
    totals: torch.Tensor | None = None
    row_sums: torch.Tensor | None = None
    n_rows = n_items * n_samples
    for start in range(0, n_rows, batch_size):
        cancel.check()  # a stop takes one chunk, not a whole batch
        stop = min(start + batch_size, n_rows)
        r = torch.arange(start, stop, device=device)  # (R,)
        points, targets, multipliers = rows(r // n_samples, r % n_samples)
        grads, _ = target_gradients(model, points, targets)
        weighted = (grads * multipliers).float()  # (R, C, H, W)
        if totals is None:
            totals = weighted.new_zeros((n_items,) + weighted.shape[1:])  # (N, C, H, W)
            row_sums = weighted.new_zeros(n_rows)  # (N * S,)
        row_sums[start:stop] = weighted.flatten(1).sum(1)
        # An item's rows are contiguous: sum each item's slice of the chunk. A segment sum in
        # a fixed order keeps runs reproducible (index_add_ uses atomics on CUDA).
        for item in range(start // n_samples, (stop - 1) // n_samples + 1):
            lo, hi = max(item * n_samples, start) - start, min((item + 1) * n_samples, stop) - start
            totals[item] += weighted[lo:hi].sum(0)
    if totals is None or row_sums is None:
        raise ValueError("no rows to evaluate: n_items and n_samples must be > 0")
    return totals, row_sums.view(n_items, n_samples)


def batch_layout(model: nn.Module, inputs: torch.Tensor) -> torch.memory_format:
    """The memory format of a batch of images for ``model`` (LIME's and SHAP's masked images,
    the gradient methods' points): channels_last for a convolutional net on the CPU, or when
    the inputs already are (``--precision bf16``); else the inputs' own.

    lime's classifier function gets its images as (B, H, W, C) numpy arrays, so a PyTorch model
    behind it sees channels_last tensors; ours were built NCHW, and that alone made xai's LIME
    0.90x the lime package. resnet18 224² forward, batch 32, 1 thread, CPU time (AMD EPYC,
    fp32): 18.7 img/s NCHW, 24.3 channels_last (oneDNN's convolutions and max-pool run in
    their native layout). A ViT-B/16 (only its patch embedding is a convolution) measured
    458 vs 469 ms per image, within noise. CUDA at fp32 keeps NCHW: not measured there.
    """
    if inputs.dim() != 4:
        return torch.contiguous_format
    if inputs.is_contiguous(memory_format=torch.channels_last) and not inputs.is_contiguous():
        return torch.channels_last
    if channels_last_on(model, inputs.device):
        return torch.channels_last
    return torch.contiguous_format


def relative_error(delta: torch.Tensor, f_a: torch.Tensor, f_b: torch.Tensor, floor: float = 0.01) -> torch.Tensor:
    """|delta| / |f_a - f_b|, elementwise, for an attribution sum that should equal f_a - f_b.

    The denominator is floored at ``floor`` (1 %) of max(|f_a|, |f_b|), so that a near-zero gap
    does not make a tiny absolute error look huge.
    """
    scale = torch.maximum((f_a - f_b).abs(), floor * torch.maximum(f_a.abs(), f_b.abs()))
    return delta.abs() / scale.clamp(min=1e-12)


def item_generator(seed: int) -> torch.Generator:
    """A CPU generator for one item's random draws.

    Draws are made on the CPU and then moved: the same seed gives the same baseline or
    samples on a laptop and on a GPU (CUDA generators give different streams), and per-item
    draws are small next to the forward passes.
    """
    return torch.Generator(device="cpu").manual_seed(int(seed))
