"""The colour map's fast path gives exactly the colours of the plain formula (pictures unchanged)."""

from __future__ import annotations

import numpy as np
import pytest

from xai_cli.render.colormap import LUTS, apply


def _reference(values01, name):
    idx = np.nan_to_num(np.asarray(values01, dtype=np.float64) if not np.issubdtype(np.asarray(values01).dtype, np.floating)
                        else values01, nan=0.0).clip(0, 1) * 255
    return LUTS[name][idx.round().astype(np.uint8)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(LUTS))
def test_fast_path_equals_the_formula(dtype, name):
    rng = np.random.default_rng(0)
    v = rng.normal(0.5, 0.6, (67, 45)).astype(dtype)
    v[0, :4] = [np.nan, np.inf, -np.inf, 0.5 / 255]  # NaN -> 0, saturation, a value on a rounding edge
    v[1, :256] = np.arange(256) / 255 if v.shape[1] >= 256 else v[1, :256]
    before = v.copy()
    out = apply(v, name)
    assert out.dtype == np.uint8 and out.shape == (67, 45, 3)
    np.testing.assert_array_equal(out, _reference(v, name))
    np.testing.assert_array_equal(v, before, err_msg="the caller's array must not be changed")


def test_every_level_and_integer_input():
    levels = np.arange(256) / 255
    np.testing.assert_array_equal(apply(levels, "turbo"), LUTS["turbo"])
    np.testing.assert_array_equal(apply(np.array([[0, 1, 2]]), "rdbu_r"), LUTS["rdbu_r"][[[0, 255, 255]]])
