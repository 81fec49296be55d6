"""The gate: limits, baseline deltas, severity, mean/bound, typed errors; junit.xml and summary.md."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from xai_cli.audit.gate import evaluate_gate, gate_failed, load_gate, parse_gate
from xai_cli.audit.junit import junit_xml
from xai_cli.audit.summary import summary_markdown
from xai_cli.errors import ConfigError

ROOT = Path(__file__).parents[2]
AUDIT = {"gradcam": {"deletion_gain": {"mean": 0.05, "median": 0.06, "p10": 0.0, "ci_low": 0.01, "ci_high": 0.09, "n": 20},
                     "randomisation_similarity": {"mean": 0.2, "median": 0.2, "p10": 0.1, "ci_low": 0.1, "ci_high": 0.3, "n": 16}}}
METHODS = ["gradcam", "ig", "guided_backprop"]


def results_for(text, baseline=None, audit=AUDIT):
    import tomllib

    return evaluate_gate(parse_gate(tomllib.loads(text), METHODS), audit, baseline)


def test_absolute_limits_on_the_mean_and_on_the_conservative_bound():
    r = results_for("""
[gradcam.deletion_gain]
min = 0.02
[gradcam.randomisation_similarity]
max = 0.25
compare = "bound"
severity = "warn"
""")
    assert [x.passed for x in r] == [True, False]
    assert r[0].value == 0.05 and r[1].value == 0.3 and r[1].severity == "warn"
    assert not gate_failed(r)  # only a warning failed
    bound = results_for('[gradcam.deletion_gain]\nmin = 0.02\ncompare = "bound"\n')
    assert bound[0].value == 0.01 and bound[0].passed is False and gate_failed(bound)


def test_baseline_changes_and_missing_values_skip():
    baseline = {"gradcam": {"deletion_gain": {"mean": 0.08}, "randomisation_similarity": {"mean": 0.15}}}
    r = results_for("""
[gradcam.deletion_gain]
max_decrease = 0.02
[gradcam.randomisation_similarity]
max_increase = 0.1
[ig.deletion_gain]
min = 0.0
""", baseline)
    assert r[0].passed is False and r[0].value == pytest.approx(0.03)
    assert r[1].passed is True and r[1].value == pytest.approx(0.05)
    assert r[2].passed is None and "not measured" in r[2].message
    no_base = results_for("[gradcam.deletion_gain]\nmax_decrease = 0.02\n")
    assert no_base[0].passed is None


@pytest.mark.parametrize("text, match", [
    ("[gradcm.deletion_gain]\nmin = 0\n", "gradcam"),
    ("[gradcam.deletion_gian]\nmin = 0\n", "deletion_gain"),
    ("[gradcam.deletion_gain]\nminimum = 0\n", "min"),
    ("[gradcam.deletion_gain]\nmin = '0.1'\n", "number"),
    ("[gradcam.deletion_gain]\nseverity = 'fail'\n", "no limit"),
    ("[gradcam.deletion_gain]\nmin = 0\nseverity = 'error'\n", "severity"),
])
def test_bad_gates_are_typed_errors_naming_near_matches(text, match, tmp_path):
    p = tmp_path / "gate.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_gate(p, METHODS)
    assert match in str(e.value)


def test_junit_and_summary():
    r = results_for("""
[gradcam.deletion_gain]
min = 0.02
[gradcam.randomisation_similarity]
max = 0.1
[ig.deletion_gain]
min = 0.0
[guided_backprop.deletion_gain]
min = 0.5
severity = "warn"
""", audit={**AUDIT, "guided_backprop": {"deletion_gain": AUDIT["gradcam"]["deletion_gain"]}})
    root = ET.fromstring(junit_xml(r))
    suite = root.find("testsuite")
    assert suite.get("tests") == "4" and suite.get("failures") == "1" and suite.get("skipped") == "2"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["gradcam.randomisation_similarity.max"].find("failure") is not None
    assert cases["gradcam.deletion_gain.min"].find("failure") is None and cases["gradcam.deletion_gain.min"].find("skipped") is None
    assert cases["guided_backprop.deletion_gain.min"].find("skipped").get("message").startswith("warning:")
    md = summary_markdown(AUDIT, r)
    assert "| gradcam | deletion_gain | ↑ | 0.050 |" in md and "**Gate: FAILED**" in md and "1 warnings" in md


def test_the_shipped_demo_gate_loads():
    checks = load_gate(ROOT / "configs" / "gate-demo.toml")
    assert {c.method for c in checks} >= {"gradcam"}
