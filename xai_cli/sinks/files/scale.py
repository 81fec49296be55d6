"""``scale="run"``: one colour scale per method for the whole run, with a streaming writer.

Pictures are written as results stream in, so the scale cannot wait for the last input.
It is calibrated instead on the first ``CALIBRATION`` inputs explained (in input order, so it
does not depend on the batch size): their results are held back until then, and every
picture of the run, those first ones included, is drawn with that scale. Per method, the
range is the largest of the calibration maps' own ranges (``choose_scale``: max for
non-negative maps, the 99.5th percentile of |value| for signed ones); a later map going
beyond it is drawn saturated, its colour bar marked ≥ / ≤. The range used is in each map's
record (``colour_range``) and in run.json (``colour_ranges``). A resumed run calibrates on
the inputs it explains itself.
"""

from __future__ import annotations

import numpy as np

from xai_cli.core.results import ItemResult

CALIBRATION = 8  # inputs whose maps set the run's colour scale (held back until then)


class RunScale:
    """Collects the calibration inputs' ranges, then fixes each method's range."""

    def __init__(self, calibration: int = CALIBRATION) -> None:
        self.calibration = calibration
        self.seen = 0
        self.tops: dict[str, float] = {}
        self.signed: dict[str, bool] = {}
        self.ranges: dict[str, tuple[float, float]] | None = None

    def feed(self, result: ItemResult) -> None:
        if self.ranges is not None or result.status != "ok" or not result.maps:
            return
        self.seen += 1
        for m in result.maps:
            if m.stats.get("degenerate") or not m.finite:
                continue
            scores = m.extra.get("word_scores", m.scores)  # what the picture colours (text: words)
            values = np.abs(scores[np.isfinite(scores)])
            neg = bool(m.signed or (scores < 0).any())
            top = float(np.percentile(values, 99.5)) if neg else float(values.max())
            self.tops[m.method] = max(self.tops.get(m.method, 0.0), top)
            self.signed[m.method] = self.signed.get(m.method, False) or neg

    @property
    def ready(self) -> bool:
        return self.ranges is not None or self.seen >= self.calibration

    def fix(self) -> dict[str, tuple[float, float]]:
        """The ranges, fixed from what was fed (also when fewer inputs than the calibration exist)."""
        if self.ranges is None:
            self.ranges = {m: ((-t if self.signed[m] else 0.0), t) for m, t in self.tops.items() if t > 0}
        return self.ranges

    def apply(self, result: ItemResult) -> ItemResult:
        ranges = self.fix()
        for m in result.maps:
            m.colour_range = ranges.get(m.method)
        return result
