"""What LIME and KernelSHAP share: superpixels, their fill, masked images in large batches, and
the weighted linear fit.

The lime and shap packages build one perturbed image at a time in a Python loop over samples
(lime: a boolean mask per hidden segment per sample) and fit on the CPU. Here a batch of
samples is an (R, M) boolean mask tensor on the model's device, turned into images by one
gather over the (H, W) segment-id map and one ``where``, ``perturbations_per_eval`` rows per
forward pass (channels_last for a conv net on the CPU, see ``batch_layout``), and the fit is a
float64 ``torch.linalg.solve``.

Measured on the dev box (2 busy CPU cores; 224x224, 1000 samples, 37-49 superpixels), with a
model that costs nearly nothing (average pool + linear) so that what remains is each
implementation's own work: lime's LimeImageExplainer 13.5-15.7 s/img, this 1.7-2.1 s/img
(6.7-8.2x); shap's KernelExplainer with its superpixel example's masking loop 20-24 s/img,
this 1.9-2.2 s/img (10-13x). What remains here is writing the images (memory bandwidth),
which a GPU does some thousand times faster; lime's and shap's Python loops stay on the CPU.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from xai_cli.core.fold import forward_only
from xai_cli.errors import UsageError
from xai_cli.methods._gradients import batch_layout, item_generator  # noqa: F401  (item_generator re-exported for lime.py, shap.py)
from xai_cli.methods._segments import SEGMENTATIONS, Segmentation, segment
from xai_cli.methods.base import Method
from xai_cli import cancel

Output = Literal["probability", "logit"]


@dataclass(frozen=True)
class SuperpixelParams:
    """Knobs shared by the superpixel methods.

    ``output="probability"`` explains the softmax probability of the target, as lime's and
    shap's image examples do (their classifier functions return probabilities).
    """

    n_samples: int = 1000  # perturbed images evaluated per item
    segmentation: Segmentation = "quickshift"  # how the image is cut into superpixels (the features)
    n_segments: int = 50  # for slic and grid; quickshift picks its own number
    output: Output = "probability"  # the score explained: softmax probability or raw logit
    perturbations_per_eval: int | None = None  # per forward pass, not results; none: 8 on 1 CPU thread, 16/thread, GPU 256

    def validate(self) -> None:
        if self.segmentation not in SEGMENTATIONS:
            raise UsageError(f"unknown segmentation {self.segmentation!r}", f"use one of: {', '.join(SEGMENTATIONS)}")
        if self.output not in ("probability", "logit"):
            raise UsageError(f"unknown output {self.output!r}", "use 'probability' or 'logit'")
        for name in ("n_samples", "n_segments", "perturbations_per_eval"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")


class SuperpixelMethod(Method):
    """Base of the methods that hide superpixels: segmentation, fill and batched evaluation."""

    Params = SuperpixelParams

    def superpixels(self, inputs: torch.Tensor) -> tuple[torch.Tensor, list[int], torch.Tensor]:
        """Segment each item and build its fill (each segment's mean colour, as lime's hide_color=None).

        Returns:
            ``(segments (N, H, W) int64, counts [M_i], fill (N, C, H, W))``, on the inputs' device.
        """
        segments, counts = segment(self.to_pixels(inputs), self.params.segmentation, self.params.n_segments)
        return segments, counts, segment_means(inputs, segments, max(counts))

    def scores(self, inputs: torch.Tensor, targets: torch.Tensor, segments: torch.Tensor, fill: torch.Tensor,
               masks: list[torch.Tensor]) -> list[torch.Tensor]:
        """The target's output for each item's masked images (True = segment shown).

        Args:
            targets: (N,) class indices, or (N, K): K classes per item from the same images.
            masks: Per item, an (S_i, M_i) bool tensor (any device); S_i may differ per item.

        Returns:
            Per item, an (S_i,) float64 tensor, (S_i, K) for (N, K) targets, on the inputs' device.
        """
        width = max(m.shape[1] for m in masks)
        # Padding columns are ids no pixel has, so their value never matters.
        padded = torch.cat([torch.nn.functional.pad(m, (0, width - m.shape[1]), value=True) for m in masks])  # (R, M)
        offsets = [0]
        for m in masks:
            offsets.append(offsets[-1] + m.shape[0])
        rows = eval_rows(self.params.perturbations_per_eval, inputs.device)
        flat = perturbed_scores(self.model, inputs, fill, segments, padded.to(inputs.device), offsets, targets,
                                self.params.output, rows)  # (R,)
        return list(flat.split([m.shape[0] for m in masks]))


def eval_rows(requested: int | None, device: torch.device) -> int:
    """Rows per forward pass: ``requested``, or what suits the device when None.

    resnet18 224², AMD EPYC, 2 cores shared with other jobs. One thread (CPU time) is fastest at
    small batches, whose activations stay in cache: fp32 26.4 img/s at 8 rows, 24.4 at 32, 22.5
    at 256; bf16 autocast 50.9, 48.3, 43.0; forward + backward 10.8 at 8, 10.1 at 32. Two
    threads (wall time) meet at a barrier in every layer and want wider batches: in rounds
    with the box to themselves fp32 7.9 img/s at 8 rows, 12.4 at 16, 43.3 at 32, 41.0 at 64,
    40.4 at 256, bf16 82.9 at 32, 77.7 at 256; under load (average 4-5) bf16 15.4 at 16, 18.6
    at 32, 21.8 at 64. So: 8 rows on one thread, 16 per thread on more; 256 on a GPU (the
    knob's former default).
    """
    if requested is not None:
        return requested
    if device.type != "cpu":
        return 256
    threads = torch.get_num_threads()
    return 8 if threads == 1 else 16 * threads


def segment_means(inputs: torch.Tensor, segments: torch.Tensor, n_max: int) -> torch.Tensor:
    """Each pixel replaced by the mean of its segment, per channel (lime's ``fudged_image``).

    Normalisation is per-channel affine, so the mean of model inputs is the model input of
    lime's mean of pixels.

    Args:
        inputs: (N, C, H, W) model inputs.
        segments: (N, H, W) ids below ``n_max``.
        n_max: The largest number of segments of any item.

    Returns:
        (N, C, H, W), in the inputs' dtype.
    """
    n, c = inputs.shape[:2]
    ids = segments.flatten(1)  # (N, HW)
    # float64 sums: scatter order (atomics on CUDA) cannot show after the cast back to float32.
    sums = inputs.new_zeros((n, c, n_max), dtype=torch.float64)  # (N, C, M)
    sums.scatter_add_(2, ids[:, None].expand(n, c, -1), inputs.flatten(2).double())
    sizes = torch.zeros((n, n_max), dtype=torch.float64, device=inputs.device)  # (N, M)
    sizes.scatter_add_(1, ids, torch.ones_like(ids, dtype=torch.float64))
    means = (sums / sizes.clamp(min=1)[:, None]).to(inputs.dtype)  # (N, C, M)
    return means.gather(2, ids[:, None].expand(n, c, -1)).view_as(inputs)  # (N, C, H, W)


@torch.no_grad()  # inference_mode measured the same: resnet18 fp32 19.2 img/s under either
def perturbed_scores(model: nn.Module, inputs: torch.Tensor, fill: torch.Tensor, segments: torch.Tensor,
                     masks: torch.Tensor, offsets: list[int], targets: torch.Tensor, output: Output,
                     rows_per_eval: int) -> torch.Tensor:
    """Evaluate ``model`` on masked images: row r shows segment j of its item where masks[r, j].

    Rows of all items are evaluated ``rows_per_eval`` at a time, so a forward pass is full
    whatever the number of items; a row's image depends only on its own mask.

    Args:
        model: The classifier.
        inputs: (N, C, H, W) model inputs.
        fill: (N, C, H, W) what a hidden segment shows.
        segments: (N, H, W) int64 segment ids.
        masks: (R, M) bool, the rows of item i being ``offsets[i]:offsets[i + 1]``.
        offsets: N + 1 row offsets.
        targets: (N,) class indices, or (N, K) for K classes per item.
        output: ``"probability"`` (softmax) or ``"logit"``.
        rows_per_eval: Rows per forward pass.

    Returns:
        (R,) float64 target scores, or (R, K) for (N, K) targets.

    Raises:
        IndexError: A target the model does not have (checked before any device-side gather).
    """
    total = offsets[-1]
    per_item = targets.view(len(offsets) - 1, -1)  # (N, K)
    scores = torch.empty((total, per_item.shape[1]), dtype=torch.float64, device=inputs.device)  # (R, K)
    row_item = torch.repeat_interleave(torch.arange(len(offsets) - 1, device=inputs.device),
                                       torch.tensor(offsets, device=inputs.device).diff())  # (R,)
    layout = batch_layout(model, inputs)
    with forward_only(model, inputs.device) as fast:  # BatchNorms folded (fp32 1.11x, bf16 1.06x: core/fold.py)
        for start in range(0, total, rows_per_eval):
            cancel.check()  # a stop takes one chunk, not a whole batch
            stop = min(start + rows_per_eval, total)
            batch = torch.empty((stop - start,) + inputs.shape[1:], dtype=inputs.dtype, device=inputs.device,
                                memory_format=layout)  # (B, C, H, W)
            # A chunk spans a few items: loop over those, never over rows.
            for i in range(bisect.bisect_right(offsets, start) - 1, bisect.bisect_left(offsets, stop)):
                lo, hi = max(offsets[i], start), min(offsets[i + 1], stop)
                ids = segments[i].view(1, -1).expand(hi - lo, -1)  # (b, HW), a view: no copy per row
                # One gather over the segment-id map: 100 ms per 256 rows of 224x224 on the dev box's
                # CPU, against 157 ms for the advanced index masks[:, segments[i]].
                keep = masks[lo:hi].gather(1, ids).view(hi - lo, 1, *segments.shape[1:])  # (b, 1, H, W)
                torch.where(keep, inputs[i], fill[i], out=batch[lo - start:hi - start])
            logits = fast(batch).float()  # (B, classes)
            if start == 0:
                check_targets(targets, logits.shape[1])
            if output == "probability":
                logits = logits.softmax(dim=1)
            scores[start:stop] = logits.gather(1, per_item[row_item[start:stop]]).double()
    return scores if targets.dim() == 2 else scores[:, 0]


def check_targets(targets: torch.Tensor, n_classes: int) -> None:
    """Raise ``IndexError`` for a target outside 0..n_classes-1."""
    # An out-of-range gather index is a device-side assert on CUDA, which poisons the context
    # for the rest of the run; a Python error fails this batch only.
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= n_classes):
        raise IndexError(f"target class out of range: the model has classes 0..{n_classes - 1}")


def weighted_ridge(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, alpha: float
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's ``Ridge(alpha, fit_intercept=True).fit(x, y, sample_weight=weights)`` and
    its weighted R^2 ``score``, in float64 on the tensors' device.

    As scikit-learn does, x and y are centred on their weighted means so that the intercept is
    not penalised; the M x M normal equations are then solved directly.

    Args:
        x: (S, M) features.
        y: (S,) targets.
        weights: (S,) sample weights.
        alpha: L2 penalty (0 = weighted least squares).

    Returns:
        ``(coef (M,), intercept (), r2 ())``, float64.
    """
    x, y, weights = x.double(), y.double(), weights.double()
    total = weights.sum()
    x_mean = weights @ x / total  # (M,)
    y_mean = weights @ y / total  # ()
    xc, yc = x - x_mean, y - y_mean  # (S, M), (S,)
    wx = weights[:, None] * xc  # (S, M)
    gram = xc.T @ wx + alpha * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)  # (M, M)
    coef = solve_psd(gram, wx.T @ yc)  # (M,)
    intercept = y_mean - x_mean @ coef
    residual = (weights * (y - x @ coef - intercept) ** 2).sum()
    spread = (weights * yc ** 2).sum()
    # scikit-learn's r2_score for a constant target: 1 if predicted exactly, else 0.
    r2 = 1 - residual / spread if spread > 0 else (residual == 0).double()
    return coef, intercept, r2


def solve_psd(gram: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """gram @ out = rhs; the minimum-norm least-squares answer when gram is singular (as shap
    falls back to lstsq), e.g. a segment shown in every sample."""
    out, info = torch.linalg.solve_ex(gram, rhs)
    if int(info) != 0 or not torch.isfinite(out).all():
        out = torch.linalg.pinv(gram, hermitian=True) @ rhs
    return out
