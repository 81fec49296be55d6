"""Localisation scores against Quantus 0.6.0 on the same maps and masks, and by hand."""

from __future__ import annotations

import numpy as np
import pytest

from xai_cli.metrics.localisation import (
    box_masks,
    energy_pointing_game,
    masks_from_boxes,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    token_mask_from_words,
    word_mask_from_spans,
)

quantus = pytest.importorskip("quantus")


@pytest.fixture
def batch():
    """12 random maps (signed) and blob masks of varied size, one mask empty."""
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(12, 20, 20))
    yy, xx = np.mgrid[0:20, 0:20]
    masks = np.stack([(yy - rng.integers(3, 17)) ** 2 + (xx - rng.integers(3, 17)) ** 2 <= rng.integers(2, 6) ** 2
                      for _ in range(12)])
    masks[5] = False
    maps[3] = np.abs(maps[3])
    maps[3][masks[3]] += 3  # one sure hit
    return maps, masks


def _quantus(metric, maps, masks):
    x = np.zeros((len(maps), 1, *maps.shape[1:]), dtype=np.float32)
    y = np.zeros(len(maps), dtype=int)
    return np.array(metric(model=None, x_batch=x, y_batch=y, a_batch=maps[:, None].astype(np.float32),
                           s_batch=masks[:, None].astype(np.float32), channel_first=True), dtype=float)


def test_pointing_game_without_tolerance_is_quantus(batch):
    maps, masks = batch
    ours = pointing_game(maps, masks, tolerance=0)
    ref = _quantus(quantus.PointingGame(disable_warnings=True), maps, masks)
    # Quantus 0.6.0 writes NaN into a bool array for an empty mask, which reads back as a hit (1).
    scored = masks.any(axis=(1, 2))
    np.testing.assert_array_equal(ours[scored], ref[scored])
    assert ours[3] == 1 and np.isnan(ours[5]) and np.nanmin(ours) == 0


def test_pointing_game_tolerance_counts_a_near_miss():
    maps, masks = np.zeros((1, 60, 60)), np.zeros((1, 60, 60), bool)
    masks[0, 10:20, 10:20] = True
    maps[0, 15, 19 + 10] = 1  # 10 px right of the mask
    assert pointing_game(maps, masks, tolerance=15)[0] == 1
    assert pointing_game(maps, masks, tolerance=5)[0] == 0


def test_relevance_mass_is_quantus(batch):
    maps, masks = batch
    ref = _quantus(quantus.RelevanceMassAccuracy(abs=False, normalise=False, disable_warnings=True), maps, masks)
    np.testing.assert_allclose(relevance_mass_accuracy(maps, masks, positive_only=False), ref, rtol=1e-5)
    pos = np.clip(maps, 0, None)
    ref_pos = _quantus(quantus.RelevanceMassAccuracy(abs=False, normalise=False, disable_warnings=True), pos, masks)
    np.testing.assert_allclose(relevance_mass_accuracy(maps, masks), ref_pos, rtol=1e-5)


def test_relevance_rank_is_quantus(batch):
    maps, masks = batch
    ref = _quantus(quantus.RelevanceRankAccuracy(abs=False, normalise=False, disable_warnings=True), maps, masks)
    np.testing.assert_allclose(relevance_rank_accuracy(maps, masks), ref, rtol=1e-6)


def test_energy_pointing_game_uses_the_box_and_positive_energy():
    maps, masks = np.zeros((1, 10, 10)), np.zeros((1, 10, 10), bool)
    masks[0, 2, 2] = masks[0, 5, 5] = True  # box rows/cols 2..5
    maps[0, 3, 3] = 3.0  # inside the box, outside the mask
    maps[0, 8, 8] = 1.0  # outside
    maps[0, 0, 0] = -5.0  # negative: ignored
    assert energy_pointing_game(maps, masks)[0] == pytest.approx(0.75)
    assert energy_pointing_game(maps, masks, use_box=False)[0] == 0.0


def test_masks_from_boxes_and_back():
    m = masks_from_boxes([[(2, 1, 5, 4)], [], [(0, 0, 1, 1), (8, 8, 10, 10)]], 10, 10)
    assert m.shape == (3, 10, 10) and m[0].sum() == 9 and m[0, 1:4, 2:5].all() and not m[1].any()
    assert m[2].sum() == 5
    np.testing.assert_array_equal(box_masks(m[:1]), m[:1])


def test_rationale_spans_to_word_and_token_masks():
    text = "the movie was truly great fun"
    spans = [(0, 3), (4, 9), (10, 13), (14, 19), (20, 25), (26, 29)]
    words = word_mask_from_spans(spans, [(text.index("truly"), text.index("great") + 3)])
    assert words.tolist() == [False, False, False, True, True, False]
    tokens = token_mask_from_words(words, [-1, 0, 1, 1, 2, 3, 4, 5, -1])
    assert tokens.tolist() == [False, False, False, False, False, True, True, False, False]
