"""The drift measures against scipy and against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from xai_cli.metrics import drift


def test_average_ranks_match_scipy_with_ties():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 5, (6, 40)).astype(float)  # many ties
    np.testing.assert_array_equal(drift.average_ranks(values), stats.rankdata(values, axis=1))


@pytest.mark.parametrize("ties", [False, True])
def test_spearman_matches_scipy(ties):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 12, 12))
    b = a + rng.normal(scale=0.7, size=a.shape)
    if ties:  # Grad-CAM-like maps: ReLU zeros and coarse steps
        a, b = np.maximum(np.round(a), 0), np.maximum(np.round(b), 0)
    ours = drift.spearman(a, b)
    for i in range(len(a)):
        expected = stats.spearmanr(np.abs(a[i]).ravel(), np.abs(b[i]).ravel()).statistic
        assert ours[i] == pytest.approx(expected, abs=1e-12)


def test_spearman_by_hand_and_edge_cases():
    # |a| = 1 2 3 4, |b| = 4 3 1 2 -> d = -3 -1 2 2, rho = 1 - 6*18/(4*15) = -0.8
    a = np.array([[1.0, -2.0, 3.0, 4.0]])
    b = np.array([[4.0, 3.0, -1.0, 2.0]])
    assert drift.spearman(a, b)[0] == pytest.approx(-0.8)
    assert drift.spearman(a, a)[0] == pytest.approx(1.0)
    assert drift.spearman(a, -a)[0] == pytest.approx(1.0)  # magnitudes: sign does not matter
    assert np.isnan(drift.spearman(a, np.zeros_like(a))[0])  # constant map, as scipy


def test_top_iou_by_hand():
    # 20 pixels: the top 10 % is 2 pixels.
    a = np.zeros((1, 20))
    b = np.zeros((1, 20))
    a[0, [0, 1]] = [5, 4]
    b[0, [1, 2]] = [-6, 3]  # |value| counts
    assert drift.top_iou(a, b)[0] == pytest.approx(1 / 3)  # {0,1} vs {1,2}
    assert drift.top_iou(a, a)[0] == 1.0
    # Ties at the cut are all kept: {0, 1, 2} (three 4s) vs {0, 1}.
    c = np.zeros((1, 20))
    c[0, [0, 1, 2]] = 4
    assert drift.top_mask(c).sum() == 3
    assert drift.top_iou(a, c)[0] == pytest.approx(2 / 3)
    # Zeros are never top: an all-zero map against itself agrees, against another does not.
    assert drift.top_iou(np.zeros((1, 20)), np.zeros((1, 20)))[0] == 1.0
    assert drift.top_iou(a, np.zeros((1, 20)))[0] == 0.0


def test_top_iou_is_batched_and_takes_10_percent_of_an_image():
    rng = np.random.default_rng(2)
    maps = rng.random((3, 10, 10))
    assert drift.top_mask(maps).sum(axis=1).tolist() == [10, 10, 10]
    both = drift.top_iou(maps, maps[::-1])
    singles = [drift.top_iou(maps[i:i + 1], maps[::-1][i:i + 1])[0] for i in range(3)]
    np.testing.assert_allclose(both, singles)


def test_region_share_by_hand():
    m = np.array([[[1.0, 3.0], [-5.0, 4.0]]])  # positive mass 8
    region = np.array([[1, 0], [1, 0]])
    assert drift.region_share(m, region)[0] == pytest.approx(1 / 8)  # negatives ignored
    assert drift.region_share(m, 1 - region)[0] == pytest.approx(7 / 8)
    assert np.isnan(drift.region_share(-np.abs(m), region)[0])
    tokens = np.array([[0.5, -1.0, 1.5], [0.0, 2.0, 2.0]])
    np.testing.assert_allclose(drift.region_share(tokens, np.array([[1, 1, 0], [0, 0, 1]])), [0.25, 0.5])


def test_region_mask_on_another_grid_is_resized_nearest():
    m = np.zeros((1, 4, 4))
    m[0, :2, :2] = 1.0  # top-left quarter
    region = np.zeros((8, 8), np.uint8)
    region[:4, :4] = 255
    assert drift.region_share(m, region)[0] == pytest.approx(1.0)


def test_prediction_flip():
    assert drift.prediction_flip(np.array([1, 2, 3]), np.array([1, 0, 3])).tolist() == [False, True, False]
    probs_a = np.array([[0.9, 0.1], [0.4, 0.6]])
    probs_b = np.array([[0.2, 0.8], [0.3, 0.7]])
    assert drift.prediction_flip(probs_a, probs_b).tolist() == [True, False]


def test_different_sizes_go_to_the_larger_grid():
    yy, xx = np.mgrid[0:96, 0:96]
    fine = np.stack([np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 400.0) for cy, cx in ((20, 30), (70, 50))])
    coarse = fine.reshape(2, 12, 8, 12, 8).mean(axis=(2, 4))
    a, b = drift.align(coarse, fine)
    assert a.shape == b.shape == (2, 96, 96)
    assert drift.common_grid((12, 20), (24, 10)) == (24, 20)
    # A constant map stays constant through bilinear resizing.
    np.testing.assert_allclose(drift.to_grid(np.full((1, 3, 3), 2.5), (7, 7)), 2.5, rtol=1e-6)
    scores = drift.drift(coarse, fine, regions=np.ones((96, 96)))
    assert scores.spearman.shape == (2,) and np.all(scores.spearman > 0.95)
    np.testing.assert_allclose(scores.region_share_a, 1.0)
    with pytest.raises(ValueError, match="token maps"):
        drift.align(np.zeros((1, 5)), np.zeros((1, 6)))


def test_identical_maps_score_perfectly():
    rng = np.random.default_rng(4)
    maps = np.maximum(rng.normal(size=(4, 16, 16)), 0)
    scores = drift.drift(maps, maps.copy())
    np.testing.assert_allclose(scores.spearman, 1.0)
    np.testing.assert_allclose(scores.top_iou, 1.0)
    assert scores.region_share_a is None
