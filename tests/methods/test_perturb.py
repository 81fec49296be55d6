"""The shared pieces of LIME and KernelSHAP: segments, fill, batched masked evaluation, the fits,
and the coalition design against shap's KernelExplainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import images
from xai_cli.methods._coalitions import kernel_coalitions
from xai_cli.methods._perturb import perturbed_scores, segment_means, weighted_ridge
from xai_cli.methods._segments import grid_segments, segment
from tests.methods.test_lime import smooth_pixels


def test_grid_segments_are_a_near_even_row_major_grid():
    seg = grid_segments(10, 7, 9)
    assert seg.shape == (10, 7) and seg.unique().tolist() == list(range(9))
    assert seg[0, 0] == 0 and seg[0, -1] == 2 and seg[-1, 0] == 6 and seg[-1, -1] == 8
    counts = torch.bincount(seg.flatten())
    assert counts.max() - counts.min() <= 7  # cells differ by at most one row or column
    assert grid_segments(4, 4, 1000).max() == 15  # never more cells than pixels


@pytest.mark.parametrize("kind", ["quickshift", "slic", "grid"])
def test_segment_ids_are_contiguous_per_item(kind):
    seg, counts = segment(smooth_pixels(2, 48, seed=1), kind, 25)
    assert seg.shape == (2, 48, 48) and seg.dtype == torch.int64
    for s, m in zip(seg, counts):
        assert s.unique().tolist() == list(range(m))


def test_segment_means_fill_each_segment_with_its_mean():
    x = images(2, 12, seed=1).double()
    seg = torch.stack([grid_segments(12, 12, 4), grid_segments(12, 12, 9)])
    fill = segment_means(x, seg, 9)
    for i in range(2):
        for j in seg[i].unique():
            inside = seg[i] == j
            torch.testing.assert_close(fill[i][:, inside], x[i][:, inside].mean(1, keepdim=True).expand(-1, int(inside.sum())))


def test_perturbed_scores_equal_explicit_images_whatever_the_chunking(one_conv):
    x, targets = images(3, 16, seed=2), torch.tensor([0, 2, 1])
    seg = torch.stack([grid_segments(16, 16, m) for m in (4, 9, 16)])
    fill = segment_means(x, seg, 16)
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(5 + 7 + 6, 16, generator=g) > 0.5  # (R, M): 5, 7 and 6 rows for the three items
    offsets = [0, 5, 12, 18]
    item = torch.tensor([0] * 5 + [1] * 7 + [2] * 6)
    explicit = torch.stack([torch.where(masks[r][seg[item[r]]], x[item[r]], fill[item[r]]) for r in range(18)])
    with torch.no_grad():
        expected = one_conv(explicit).softmax(1)[torch.arange(18), targets[item]].double()
    for per_eval in (1, 4, 18, 100):
        got = perturbed_scores(one_conv, x, fill, seg, masks, offsets, targets, "probability", per_eval)
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)


class _Nchw(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x.contiguous())


class _Layouts(torch.nn.Module):
    """Records whether each batch it is given is channels_last, then runs ``inner``."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.seen = inner, []

    def forward(self, x):
        self.seen.append(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
        return self.inner(x)


def test_a_conv_net_gets_channels_last_batches_on_the_cpu_with_the_same_scores(one_conv):
    """lime's numpy (B, H, W, C) images reach a PyTorch model as channels_last, oneDNN's fast
    layout; ours must too (NCHW batches made xai's LIME 0.90x the lime package)."""
    x, targets = images(2, 16, seed=3), torch.tensor([1, 0])
    seg = torch.stack([grid_segments(16, 16, 9)] * 2)
    fill = segment_means(x, seg, 9)
    masks = torch.rand(10, 9, generator=torch.Generator().manual_seed(1)) > 0.5
    conv = _Layouts(one_conv)
    got = perturbed_scores(conv, x, fill, seg, masks, [0, 4, 10], targets, "logit", 3)
    assert conv.seen and all(conv.seen)
    mlp = _Layouts(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 3)))
    perturbed_scores(mlp, x, fill, seg, masks, [0, 4, 10], targets, "logit", 3)
    assert mlp.seen and not any(mlp.seen)  # nothing to gain without convolutions
    nchw = perturbed_scores(_Nchw(one_conv), x, fill, seg, masks, [0, 4, 10], targets, "logit", 3)
    torch.testing.assert_close(got, nchw, rtol=1e-6, atol=1e-6)


def test_perturbed_scores_reject_a_target_the_model_lacks(one_conv):
    x = images(1, 8)
    seg = grid_segments(8, 8, 4)[None]
    with pytest.raises(IndexError, match="out of range"):
        perturbed_scores(one_conv, x, x, seg, torch.ones(2, 4, dtype=torch.bool), [0, 2], torch.tensor([3]), "logit", 8)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 10.0])
def test_weighted_ridge_is_sklearns_ridge_with_sample_weights(alpha):
    from sklearn.linear_model import Ridge

    g = np.random.default_rng(0)
    x = g.integers(0, 2, (200, 12)).astype(float)
    y = x @ g.normal(size=12) + 0.1 * g.normal(size=200)
    w = g.uniform(0.1, 1, 200)
    ridge = Ridge(alpha=alpha, fit_intercept=True).fit(x, y, sample_weight=w)
    coef, intercept, r2 = weighted_ridge(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(w), alpha)
    np.testing.assert_allclose(coef.numpy(), ridge.coef_, rtol=1e-9, atol=1e-12)
    assert float(intercept) == pytest.approx(ridge.intercept_, rel=1e-9)
    assert float(r2) == pytest.approx(ridge.score(x, y, sample_weight=w), rel=1e-9)


def test_weighted_ridge_survives_a_feature_that_never_changes():
    x = torch.ones(50, 3, dtype=torch.float64)
    x[:, 1] = torch.arange(50) % 2
    coef, intercept, r2 = weighted_ridge(x, 2 * x[:, 1] + 1, torch.ones(50, dtype=torch.float64), 0.0)
    assert torch.isfinite(coef).all() and float(coef[1]) == pytest.approx(2) and float(r2) == pytest.approx(1)


def _shap_design(m: int, n_samples: int) -> tuple[np.ndarray, np.ndarray, int]:
    """shap's KernelExplainer coalitions and weights, and how many were enumerated (not drawn)."""
    import shap

    explainer = shap.KernelExplainer(lambda z: z.sum(1), np.zeros((1, m)))
    explainer.shap_values(np.ones((1, m)), nsamples=n_samples, l1_reg=False, silent=True)
    return explainer.maskMatrix.astype(bool), explainer.kernelWeights, _n_enumerated(m, n_samples)


def _n_enumerated(m: int, n_samples: int) -> int:
    # Sizes 1 and M-1 are enumerated for M=10 at 100 samples (20 rows); everything for small M.
    return {(10, 100): 20, (6, 1000): 62, (7, 126): 126}[(m, n_samples)]


@pytest.mark.parametrize("m,n_samples", [(10, 100), (6, 1000), (7, 126)])
def test_enumerated_coalitions_and_weights_are_shaps(m, n_samples):
    theirs, their_w, fixed = _shap_design(m, n_samples)
    ours, our_w = kernel_coalitions(m, n_samples, torch.Generator().manual_seed(0))
    assert ours.shape[0] == theirs.shape[0] and float(our_w.sum()) == pytest.approx(1.0)
    order = lambda z: np.lexsort(z.T)  # noqa: E731 — compare as sets of rows
    a, b = theirs[:fixed], ours.numpy()[:fixed]
    np.testing.assert_array_equal(a[order(a)], b[order(b)])
    np.testing.assert_allclose(np.sort(their_w[:fixed]), np.sort(our_w.numpy()[:fixed]), rtol=1e-12)


def test_sampled_coalitions_are_unique_paired_and_follow_the_seed():
    z, w = kernel_coalitions(40, 500, torch.Generator().manual_seed(1))
    assert z.shape == (500, 40) and torch.unique(z, dim=0).shape[0] == 500
    sizes = z.sum(1)
    assert (sizes > 0).all() and (sizes < 40).all()
    assert float(w.sum()) == pytest.approx(1.0) and (w > 0).all()
    assert ((sizes == 1).sum() == 40) and ((sizes == 39).sum() == 40)  # sizes 1 and M-1 enumerated
    # a drawn coalition of a paired size comes with its complement, but for the last one when
    # the budget has room for only one more row (as in shap)
    rows = {tuple(r.tolist()) for r in z}
    assert sum(tuple((~r).tolist()) not in rows for r in z if int(r.sum()) < 20) <= 1
    again, _ = kernel_coalitions(40, 500, torch.Generator().manual_seed(1))
    other, _ = kernel_coalitions(40, 500, torch.Generator().manual_seed(2))
    assert torch.equal(z, again) and not torch.equal(z, other)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name,params", [("lime", {"segmentation": "slic"}), ("lime", {"segmentation": "grid"}),
                                         ("shap", {"segmentation": "slic"})])
def test_cuda_gives_the_cpu_maps(name, params, one_conv):
    """Samples are drawn on the CPU from each item's seed, so a GPU run explains the same
    perturbations: only float rounding may differ."""
    import copy

    from xai_cli.methods.registry import get_method

    cls = get_method(name)
    x, t, seeds = smooth_pixels(3, 48, seed=4) * 4 - 2, torch.tensor([0, 1, 2]), [1, 2, 3]
    p = cls.Params(n_samples=300, n_segments=30, **params)
    cpu = cls(one_conv, p).explain(x, t, seeds).maps
    gpu_model = copy.deepcopy(one_conv).cuda()
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # TF32 convolutions round at 1e-3, more than this test allows
    try:
        gpu = cls(gpu_model, p).explain(x.cuda(), t.cuda(), seeds).maps
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    assert gpu.is_cuda
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-4 * float(cpu.abs().max()))
