"""The demo quickstarts produce the same records (timings and paths aside) and pixel-identical PNGs
as the stored golden run (``tests/golden/golden.py`` made it; rerun it only for an intended change)."""

from __future__ import annotations

import json

import pytest

from tests.golden.golden import CASES, HERE, run_case


def _close(a, b, where="") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_quickstart_matches_golden(case, tmp_path):
    want = json.loads((HERE / f"{case}.json").read_text())
    got = run_case(case, tmp_path / "out")
    assert got["pngs"] == want["pngs"]
    _close(got["records"], want["records"], "records")
    _close(got["manifest"], want["manifest"], "manifest")
