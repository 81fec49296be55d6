"""Per method and metric: mean, median, 10th percentile, a seeded 95 % bootstrap interval, n;
and the table of metric names the audit knows (with which direction is better)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class MetricInfo:
    """What a metric name means: ``higher_is_better`` orients gates and summaries."""

    higher_is_better: bool
    description: str


METRICS: dict[str, MetricInfo] = {
    "deletion_auc": MetricInfo(False, "area under the deletion curve (Petsiuk et al. 2018)"),
    "deletion_random_auc": MetricInfo(False, "deletion AUC of a random ordering"),
    "deletion_gain": MetricInfo(True, "random ordering's deletion AUC minus the map's"),
    "insertion_auc": MetricInfo(True, "area under the insertion curve (Petsiuk et al. 2018)"),
    "insertion_random_auc": MetricInfo(True, "insertion AUC of a random ordering"),
    "insertion_gain": MetricInfo(True, "the map's insertion AUC minus a random ordering's"),
    "comprehensiveness": MetricInfo(True, "AOPC of removing the top words (DeYoung et al. 2020)"),
    "random_comprehensiveness": MetricInfo(True, "comprehensiveness of a random ordering"),
    "comprehensiveness_gain": MetricInfo(True, "comprehensiveness minus a random ordering's"),
    "sufficiency": MetricInfo(False, "AOPC of keeping only the top words (DeYoung et al. 2020)"),
    "random_sufficiency": MetricInfo(False, "sufficiency of a random ordering"),
    "sufficiency_gain": MetricInfo(True, "a random ordering's sufficiency minus the map's"),
    "pointing_game": MetricInfo(True, "peak within 15 px of the object (Zhang et al. 2018)"),
    "energy_pointing_game": MetricInfo(True, "positive energy in the object's box (Wang et al. 2020)"),
    "relevance_mass": MetricInfo(True, "positive relevance inside the mask (Arras et al. 2022)"),
    "relevance_rank": MetricInfo(True, "top-K pixels inside the K-pixel mask (Arras et al. 2022)"),
    "randomisation_similarity": MetricInfo(False, "rank correlation of |map| with the randomised models', mean over the cascade (Adebayo et al. 2018)"),
    "randomisation_last_similarity": MetricInfo(False, "the same, with every block randomised"),
    "max_sensitivity": MetricInfo(False, "max relative change of the map under noise of radius 0.02 (text: x the embeddings' std; Yeh et al. 2019)"),
    "road_morf": MetricInfo(False, "ROAD: probability with the most relevant pixels imputed, mean over 10-90 % (Rong et al. 2022)"),
    "road_lerf": MetricInfo(True, "ROAD: probability with the least relevant pixels imputed"),
    "road_gain": MetricInfo(True, "ROAD: road_lerf minus road_morf"),
    "completeness_error": MetricInfo(False, "IG's completeness error, relative"),
}


@dataclass(frozen=True)
class Summary:
    """Aggregate of one metric over the items (NaNs dropped; all NaN if n == 0)."""

    mean: float
    median: float
    p10: float
    ci_low: float
    ci_high: float
    n: int

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping) -> Summary:
        return cls(**{k: (np.nan if d.get(k) is None else d[k]) for k in ("mean", "median", "p10", "ci_low", "ci_high")},
                   n=int(d.get("n", 0)))


def summarise(values: Iterable[float], *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> Summary:
    """Mean, median, 10th percentile and a percentile-bootstrap interval of the mean.

    Args:
        values: Per-item values (NaN = not scored, dropped).
        n_boot: Bootstrap resamples.
        seed: Seeds the resampling (same values and seed, same interval).
        level: Coverage of the interval.
    """
    v = np.asarray(list(values), dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return Summary(np.nan, np.nan, np.nan, np.nan, np.nan, 0)
    means = v[np.random.default_rng(seed).integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Summary(float(v.mean()), float(np.median(v)), float(np.quantile(v, 0.1)), float(lo), float(hi), int(v.size))


def aggregate(per_item: Mapping[str, Mapping[str, Iterable[float]]], seed: int = 0) -> dict[str, dict[str, dict]]:
    """``{method: {metric: values}}`` -> ``{method: {metric: Summary.to_dict()}}`` (audit.json's shape)."""
    return {method: {metric: summarise(values, seed=seed).to_dict() for metric, values in metrics.items()}
            for method, metrics in per_item.items()}
