"""Aggregates: the interval covers the mean, is seeded, drops NaN."""

from __future__ import annotations

import math

import numpy as np

from xai_cli.metrics.aggregate import Summary, aggregate, summarise


def test_summary_values_and_seeded_interval():
    v = np.random.default_rng(0).normal(0.3, 0.1, size=50).tolist() + [float("nan")]
    s = summarise(v, seed=1)
    clean = np.array(v[:-1])
    assert s.n == 50 and math.isclose(s.mean, clean.mean()) and math.isclose(s.median, np.median(clean))
    assert math.isclose(s.p10, np.quantile(clean, 0.1))
    assert s.ci_low < s.mean < s.ci_high
    # A 95 % interval of the mean is about +-1.96 standard errors wide.
    assert abs((s.ci_high - s.ci_low) / 2 - 1.96 * clean.std() / np.sqrt(50)) < 0.01
    assert summarise(v, seed=1) == s and summarise(v, seed=2) != s


def test_empty_and_round_trip():
    s = summarise([float("nan")])
    assert s.n == 0 and s.to_dict()["mean"] is None
    d = aggregate({"gradcam": {"deletion_auc": [0.1, 0.2, 0.3]}})
    assert d["gradcam"]["deletion_auc"]["n"] == 3 and math.isclose(d["gradcam"]["deletion_auc"]["mean"], 0.2)
    assert Summary.from_dict(d["gradcam"]["deletion_auc"]).to_dict() == d["gradcam"]["deletion_auc"]
