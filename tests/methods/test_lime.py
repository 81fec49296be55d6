"""LIME against the lime package on identical samples, and on a model linear in the superpixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.conftest import frozen
from xai_cli.errors import UsageError
from xai_cli.methods._segments import grid_segments, segment
from xai_cli.methods.base import Normalization
from xai_cli.methods.lime import Lime, LimeParams, lime_samples
from xai_cli.methods.registry import build_params

IMAGENET = Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def smooth_pixels(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """(N, 3, size, size) pixels in [0, 1] with regions quickshift can find (upsampled 8x8 noise)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 8, 8, generator=g)
    fine = 0.05 * torch.rand(n, 3, size, size, generator=g)
    return (F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False) + fine).clamp(0, 1)


class _FixedSamples:
    """Stands in for lime's numpy RandomState: ``data_labels`` draws its whole (S, M) on/off
    matrix with one ``randint(0, 2, S * M)`` call, so this is the seam to feed our samples."""

    def __init__(self, samples: np.ndarray) -> None:
        self.samples = samples

    def randint(self, low, high=None, size=None):
        assert (low, high, size) == (0, 2, self.samples.size)
        return self.samples.reshape(-1).copy()


def _lime_package_map(model, pixels, target, segments, samples, output):
    """The lime package's explanation map, fed our segmentation and our sample matrix."""
    from lime.lime_image import LimeImageExplainer

    def classifier_fn(batch: np.ndarray) -> np.ndarray:
        x = Lime(model, normalization=IMAGENET).from_pixels(torch.from_numpy(batch).permute(0, 3, 1, 2).float())
        with torch.no_grad():
            out = model(x)
        return (out.softmax(1) if output == "probability" else out).double().numpy()

    explainer = LimeImageExplainer(random_state=0)  # defaults: kernel_width 0.25, 'auto' selection
    explainer.random_state = _FixedSamples(samples.astype(np.int64))
    image = pixels.permute(1, 2, 0).double().numpy()  # (H, W, 3) in [0, 1]
    exp = explainer.explain_instance(image, classifier_fn, labels=(target,), top_labels=None, hide_color=None,
                                     num_samples=samples.shape[0], batch_size=100,
                                     segmentation_fn=lambda _img: segments, random_seed=0)
    weights = np.zeros(segments.max() + 1)
    for feature, w in exp.local_exp[target]:
        weights[feature] = w
    return torch.from_numpy(weights[segments]).float(), exp.score, float(exp.intercept[target])


@pytest.mark.parametrize("segmentation,output", [("quickshift", "logit"), ("slic", "probability")])
def test_matches_lime_package_on_the_same_samples(one_conv, segmentation, output):
    pixels = smooth_pixels(2, 64, seed=1)
    x, targets, seeds = Lime(one_conv, normalization=IMAGENET).from_pixels(pixels), torch.tensor([0, 2]), [5, 6]
    params = LimeParams(n_samples=300, segmentation=segmentation, n_segments=30, output=output, perturbations_per_eval=64)
    ours = Lime(one_conv, params, IMAGENET).explain(x, targets, seeds)
    segments, counts = segment(pixels, segmentation, 30)
    for i in range(2):
        samples = lime_samples(counts[i], 300, seeds[i]).numpy()
        theirs, score, intercept = _lime_package_map(one_conv, pixels[i], int(targets[i]), segments[i].numpy(),
                                                     samples, output)
        assert counts[i] > 3 and ours.maps[i].abs().max() > 1e-3  # a comparison worth making
        torch.testing.assert_close(ours.maps[i], theirs, rtol=1e-4, atol=1e-4 * float(theirs.abs().max()))
        assert ours.details[i]["score"] == pytest.approx(score, abs=1e-4)
        assert ours.details[i]["intercept"] == pytest.approx(intercept, rel=1e-4, abs=1e-6)
        assert ours.details[i]["n_segments"] == counts[i]


def test_our_quickshift_is_limes_default_segmentation():
    from lime.wrappers.scikit_image import SegmentationAlgorithm

    pixels = smooth_pixels(1, 48, seed=2)
    lime_default = SegmentationAlgorithm("quickshift", kernel_size=4, max_dist=200, ratio=0.2, random_seed=0)
    theirs = lime_default(pixels[0].permute(1, 2, 0).double().numpy())
    ours, counts = segment(pixels, "quickshift", 0)
    np.testing.assert_array_equal(ours[0].numpy(), theirs)  # quickshift labels are already 0..M-1
    assert counts == [len(np.unique(theirs))]


def _linear_in_superpixels(size: int, n_classes: int = 2) -> nn.Module:
    """A linear model over pixels: hiding segment j moves the logit by a fixed amount beta_j."""
    torch.manual_seed(3)
    return frozen(nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, n_classes)))


def test_recovers_the_weights_of_a_model_linear_in_superpixels():
    size, grid = 24, 16
    model = _linear_in_superpixels(size)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(4))
    params = LimeParams(n_samples=500, segmentation="grid", n_segments=grid, output="logit", alpha=0.0)
    out = Lime(model, params).explain(x, torch.tensor([1]), [0])
    # beta_j = v . (x - fill) over segment j's pixels, fill = the segment's mean.
    seg = grid_segments(size, size, grid)  # (H, W)
    onehot = F.one_hot(seg, grid).permute(2, 0, 1).float()  # (M, H, W)
    fill = (x[0] * onehot[:, None]).sum((2, 3)) / onehot.sum((1, 2))[:, None]  # (M, C)
    centred = x[0] - (fill.T[:, :, None, None] * onehot[None]).sum(1)  # (C, H, W)
    v = model[1].weight[1].view(3, size, size)
    beta = ((v * centred).sum(0) * onehot).sum((1, 2))  # (M,)
    torch.testing.assert_close(out.maps[0], beta[seg], rtol=1e-3, atol=1e-4)
    assert out.details[0]["score"] == pytest.approx(1.0, abs=1e-6)
    # lime's default penalty (alpha=1) only shrinks them a little at 500 samples
    shrunk = Lime(model, LimeParams(n_samples=500, segmentation="grid", n_segments=grid, output="logit")).explain(
        x, torch.tensor([1]), [0])
    torch.testing.assert_close(shrunk.maps[0], beta[seg], rtol=0.05, atol=0.02 * float(beta.abs().max()))


def test_chunking_does_not_change_results(one_conv):
    x, t, seeds = smooth_pixels(3, 24, seed=5) * 2 - 1, torch.tensor([0, 1, 2]), [1, 2, 3]
    maps = [Lime(one_conv, LimeParams(n_samples=200, segmentation="slic", n_segments=20,
                                      perturbations_per_eval=ppe)).explain(x, t, seeds).maps
            for ppe in (7, 200, 1000, None)]  # None: the device's own choice (eval_rows)
    for other in maps[1:]:
        torch.testing.assert_close(maps[0], other, rtol=1e-5, atol=1e-7)


class _Rows(nn.Module):
    """Counts the rows it is given, then runs ``inner``."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.rows = inner, 0

    def forward(self, x):
        self.rows += x.shape[0]
        return self.inner(x)


def test_several_targets_share_one_set_of_masked_images(one_conv):
    """Top-k: the k maps are those of k single-target runs, from one set of forward passes."""
    x, seeds = smooth_pixels(2, 32, seed=6) * 2 - 1, [4, 9]
    targets = torch.tensor([[0, 2, 1], [1, 0, 2]])  # (N, K)
    counted = _Rows(one_conv)
    params = LimeParams(n_samples=150, segmentation="slic", n_segments=20, perturbations_per_eval=64)
    together = Lime(counted, params).explain_targets(x, targets, seeds)
    assert counted.rows == 2 * 150
    for k in range(3):
        alone = Lime(one_conv, params).explain(x, targets[:, k], seeds)
        torch.testing.assert_close(together[k].maps, alone.maps, rtol=1e-5, atol=1e-7)
        for ours, theirs in zip(together[k].details, alone.details):
            assert ours == pytest.approx(theirs, rel=1e-6)
    assert not torch.allclose(together[0].maps, together[1].maps)  # the targets differ


def test_first_sample_is_the_instance_and_samples_follow_the_seed():
    a, b = lime_samples(30, 50, seed=1), lime_samples(30, 50, seed=2)
    assert a[0].all() and b[0].all()
    assert torch.equal(a, lime_samples(30, 50, seed=1)) and not torch.equal(a, b)
    assert 0.4 < a[1:].float().mean() < 0.6


def test_bad_params_are_usage_errors():
    with pytest.raises(UsageError):
        build_params(Lime, {"segmentation": "watershed"})
    with pytest.raises(UsageError):
        build_params(Lime, {"kernel_width": "0"})
    assert build_params(Lime, {"n_samples": "64", "segmentation": "grid"}).n_samples == 64
