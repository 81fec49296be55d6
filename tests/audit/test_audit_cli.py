"""``xai audit`` through the CLI: the demo gate on the shipped digits, exit codes asserted.

- Grad-CAM on the trained demo model passes configs/gate-demo.toml (exit 0); the same model with
  random weights fails it (exit 4: deletion no better than a random pixel order).
- Adebayo et al.'s sanity check: guided backprop fails the randomisation check, Grad-CAM and IG
  pass it.
- A baseline comparison passes against itself and fails against a doctored baseline.
- junit.xml parses with one test case per check, summary.md has the table and is appended to
  $GITHUB_STEP_SUMMARY; a text audit scores ERASER's comprehensiveness/sufficiency.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from typer.testing import CliRunner

from xai_cli.cli import app

ROOT = Path(__file__).parents[2]
DIGITS, MASKS, GATE = ROOT / "sample_images/digits", ROOT / "sample_images/masks", ROOT / "configs/gate-demo.toml"
runner = CliRunner()


def audit(*args: str, env: dict | None = None):
    return runner.invoke(app, ["audit", "--model", "demo-digits", "--device", "cpu", "--workers", "0", "--quiet", *args],
                         env=env)


@pytest.fixture(scope="module")
def six_digits(tmp_path_factory) -> Path:
    """Digits 0, 3, 6, 9, 12, 15: six different classes."""
    root = tmp_path_factory.mktemp("six")
    for p in sorted(DIGITS.glob("*.png"))[0:18:3]:
        shutil.copy(p, root / p.name)
    return root


@pytest.fixture(scope="module")
def gradcam_audit(tmp_path_factory):
    """The demo audit of Grad-CAM on the 20 digits with masks, --write-maps and a step summary."""
    out = tmp_path_factory.mktemp("gradcam")
    step = out.parent / "step_summary.md"
    step.write_text("earlier step\n")
    r = audit("--method", "gradcam", str(DIGITS), "--masks", str(MASKS), "--gate", str(GATE), "--write-maps",
              "--param", "audit.sample=8", "--out", str(out), "--format", "json", env={"GITHUB_STEP_SUMMARY": str(step)})
    return r, out, step


@pytest.mark.slow  # ~20 s on a quiet 2-core box (1680 forward passes, 8-input sanity sample)
def test_gradcam_passes_the_demo_gate(gradcam_audit):
    r, out, step = gradcam_audit
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc == json.loads((out / "audit.json").read_text())
    g = doc["metrics"]["gradcam"]
    assert g["deletion_gain"]["mean"] > 0.02 and g["pointing_game"]["mean"] >= 0.9 and g["deletion_gain"]["n"] == 20
    assert g["randomisation_similarity"]["n"] == 8 and doc["sample"]["indices"] == sorted(doc["sample"]["indices"])
    assert doc["gate"]["failed"] is False and doc["exit_code"] == 0
    # ig/guided_backprop checks of the demo gate are skipped (not run), not failed
    skipped = {c["name"] for c in doc["gate"]["checks"] if c["passed"] is None}
    assert skipped == {"ig.randomisation_similarity.max", "guided_backprop.randomisation_similarity.max"}

    lines = [json.loads(x) for x in (out / "audit.jsonl").read_text().splitlines()]
    assert [x["index"] for x in lines] == list(range(20))
    assert len(lines[0]["methods"]["gradcam"]["curves"]["deletion"]["curve"]) == 21
    record = json.loads((out / "digit_00_label_0.json").read_text())  # --write-maps: explain's record, with the scores
    assert record["methods"]["gradcam"][0]["details"]["audit"] == lines[0]["methods"]["gradcam"]
    assert (out / "digit_00_label_0.gradcam.png").is_file() and (out / "manifest.jsonl").is_file()

    suite = ET.parse(out / "junit.xml").getroot()
    cases = suite.findall(".//testcase")
    assert [c.get("name") for c in cases] == [c["name"] for c in doc["gate"]["checks"]]
    assert not suite.findall(".//failure")
    summary = (out / "summary.md").read_text()
    assert "| gradcam | deletion_gain |" in summary and "**Gate: passed**" in summary
    assert step.read_text() == "earlier step\n" + summary + "\n"


@pytest.mark.slow  # ~15 s: 1680 forward passes
def test_random_weights_fail_the_demo_gate(tmp_path):
    r = audit("--method", "gradcam", "--weights", "none", str(DIGITS), "--masks", str(MASKS), "--gate", str(GATE),
              "--param", "audit.metrics=faithfulness,localisation", "--out", str(tmp_path))
    assert r.exit_code == 4, r.output
    doc = json.loads((tmp_path / "audit.json").read_text())
    assert abs(doc["metrics"]["gradcam"]["deletion_gain"]["mean"]) < 0.005  # deletion ~ random
    failed = {c["name"] for c in doc["gate"]["checks"] if c["passed"] is False}
    assert "gradcam.deletion_gain.min" in failed
    cases = ET.parse(tmp_path / "junit.xml").getroot().findall(".//testcase")
    assert "gradcam.deletion_gain.min" in {c.get("name") for c in cases if c.find("failure") is not None}


def test_guided_backprop_fails_the_randomisation_check(six_digits, tmp_path):
    r = audit("--method", "guided_backprop", str(six_digits), "--gate", str(GATE),
              "--param", "audit.metrics=randomisation", "--param", "audit.sample=6", "--out", str(tmp_path))
    assert r.exit_code == 4, r.output
    checks = {c["name"]: c for c in json.loads((tmp_path / "audit.json").read_text())["gate"]["checks"]}
    assert checks["guided_backprop.randomisation_similarity.max"]["passed"] is False
    assert checks["gradcam.deletion_gain.min"]["passed"] is None  # not run: skipped, not failed


@pytest.mark.slow  # IG: 6 inputs x 12 cascade steps x 8 steps
def test_gradcam_and_ig_pass_the_randomisation_check(six_digits, tmp_path):
    r = audit("--method", "gradcam,ig", str(six_digits), "--gate", str(GATE), "--param", "ig.steps=8",
              "--param", "audit.metrics=randomisation", "--param", "audit.sample=6", "--out", str(tmp_path))
    assert r.exit_code == 0, r.output
    checks = {c["name"]: c for c in json.loads((tmp_path / "audit.json").read_text())["gate"]["checks"]}
    assert checks["ig.randomisation_similarity.max"]["passed"] is True
    assert checks["gradcam.randomisation_similarity.max"]["passed"] is True


def test_baseline_passes_against_itself_and_fails_against_a_worse_one(six_digits, tmp_path):
    gate = tmp_path / "gate.toml"
    gate.write_text("[gradcam.deletion_auc]\nmax_increase = 0.02\n\n[ig.completeness_error]\nmax = 0.5\n")
    common = ["--method", "gradcam,ig", "--param", "ig.steps=8", str(six_digits), "--gate", str(gate),
              "--param", "audit.metrics=faithfulness,completeness", "--param", "audit.steps=5"]
    first = audit(*common, "--out", str(tmp_path / "a"))
    assert first.exit_code == 0, first.output
    baseline = tmp_path / "a" / "audit.json"
    doc = json.loads(baseline.read_text())
    assert doc["metrics"]["ig"]["completeness_error"]["n"] == 6  # IG's completeness error is gated like any metric
    again = audit(*common, "--baseline", str(baseline), "--out", str(tmp_path / "b"))
    assert again.exit_code == 0, again.output
    check = json.loads((tmp_path / "b" / "audit.json").read_text())["gate"]["checks"][0]
    assert check["passed"] is True and check["value"] == pytest.approx(0.0)
    doc["metrics"]["gradcam"]["deletion_auc"]["mean"] -= 0.1  # a baseline that deleted better
    (tmp_path / "worse.json").write_text(json.dumps(doc))
    worse = audit(*common, "--baseline", str(tmp_path / "worse.json"), "--out", str(tmp_path / "c"))
    assert worse.exit_code == 4, worse.output
    assert "gradcam.deletion_auc.max_increase" in worse.output


def test_usage_errors_exit_2(six_digits, tmp_path):
    missing = audit(str(six_digits), "--masks", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert missing.exit_code == 2 and "mask folder" in missing.output
    bad_gate = tmp_path / "bad.toml"
    bad_gate.write_text("[gradcam.deletion_gian]\nmin = 0.1\n")
    r = audit(str(six_digits), "--gate", str(bad_gate), "--out", str(tmp_path / "o"))
    assert r.exit_code == 2 and "deletion_gain" in r.output  # did you mean
    (tmp_path / "masks").mkdir()
    r = audit(str(six_digits), "--masks", str(tmp_path / "masks"), "--out", str(tmp_path / "o"))
    assert r.exit_code == 2 and "matches any input" in r.output
    r = audit(str(six_digits), "--param", "audit.stpes=3", "--out", str(tmp_path / "o"))
    assert r.exit_code == 2 and "steps" in r.output


def test_text_audit_scores_eraser_and_rationales(tmp_path, one_thread):
    docs = tmp_path / "docs.jsonl"
    text = "The printer we bought today was awful."
    docs.write_text(json.dumps({"id": "a", "text": text, "rationale": [[text.index("awful"), len(text) - 1]]}) + "\n"
                    + (ROOT / "sample_texts/reviews.jsonl").read_text())
    r = runner.invoke(app, ["audit", "--model", "demo-text", "--method", "ig", "--param", "ig.steps=8", "--workers", "0",
                            "--quiet", str(docs), "--out", str(tmp_path / "o"), "--format", "json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)["metrics"]["ig"]
    assert m["comprehensiveness"]["n"] == 5 and m["sufficiency"]["n"] == 5
    assert m["relevance_mass"]["n"] == 1  # only the first line has a rationale
    lines = [json.loads(x) for x in (tmp_path / "o" / "audit.jsonl").read_text().splitlines()]
    assert len(lines[0]["methods"]["ig"]["curves"]["aopc"]["removed"]) == 5


def test_text_audit_runs_the_sanity_checks_and_gates_them(tmp_path, one_thread):
    """demo-text on the shipped texts: randomisation and max-sensitivity per gradient method;
    LIME's max-sensitivity is not measured, with its reason in audit.json and the skipped check."""
    gate = tmp_path / "gate.toml"
    gate.write_text("[ig.randomisation_last_similarity]\nmax = 0.5\n\n"
                    "[saliency.max_sensitivity]\nmax = 0.0\n\n"  # any change at all fails: exit 4
                    "[lime.max_sensitivity]\nmax = 1.0\n")
    r = runner.invoke(app, ["audit", "--model", "demo-text", "--method", "ig,saliency,lime", "--param", "ig.steps=8",
                            "--param", "lime.n_samples=50", "--param", "audit.metrics=randomisation,stability",
                            "--workers", "0", "--quiet", str(ROOT / "sample_texts"), "--gate", str(gate),
                            "--out", str(tmp_path / "o")])
    assert r.exit_code == 4, r.output
    doc = json.loads((tmp_path / "o" / "audit.json").read_text())
    n = doc["counts"]["ok"]
    assert n == 9 and doc["sample"]["indices"] == list(range(n))  # fewer inputs than audit.sample=16: all of them
    assert doc["sample"]["randomisation_blocks"][0] == "hf.classifier"
    assert doc["sample"]["randomisation_blocks"][-1] == "hf.bert.embeddings"
    for method in ("ig", "saliency"):
        m = doc["metrics"][method]
        for metric in ("randomisation_similarity", "randomisation_last_similarity", "max_sensitivity"):
            assert m[metric]["n"] == n and "reason" not in m[metric], (method, metric)
        assert m["randomisation_last_similarity"]["mean"] < 0.5  # the maps follow the weights
        assert 0 < m["max_sensitivity"]["mean"] < 0.5  # and barely move within the noise ball
    lime = doc["metrics"]["lime"]
    assert lime["randomisation_similarity"]["n"] == n
    assert lime["max_sensitivity"]["n"] == 0 and "hiding words" in lime["max_sensitivity"]["reason"]
    assert doc["sample"]["not_measured"]["lime"]["max_sensitivity"] == lime["max_sensitivity"]["reason"]
    checks = {c["name"]: c for c in doc["gate"]["checks"]}
    assert checks["ig.randomisation_last_similarity.max"]["passed"] is True
    assert checks["saliency.max_sensitivity.max"]["passed"] is False
    skipped = checks["lime.max_sensitivity.max"]
    assert skipped["passed"] is None and "hiding words" in skipped["message"]
    failed = [c.get("name") for c in ET.parse(tmp_path / "o" / "junit.xml").getroot().findall(".//testcase")
              if c.find("failure") is not None]
    assert failed == ["saliency.max_sensitivity.max"]
    assert "lime max_sensitivity: not measured" in (tmp_path / "o" / "summary.md").read_text()
