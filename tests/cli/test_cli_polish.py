"""The command line as a new user meets it (issue 15): help examples, method catalogue and names,
JSON errors, config types, empty inboxes, --top-k, manifest lines, logs, model folders."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.reliability.cli import REPO, run, xai_cmd
from xai_cli.cli import app
from xai_cli.cli.explain import EXAMPLE_LINES

runner = CliRunner()
DIGITS = REPO / "sample_images" / "digits"


@pytest.fixture(scope="module")
def two_digits(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("two")
    for name in ("digit_03_label_3.png", "digit_07_label_7.png"):
        shutil.copy(DIGITS / name, root / name)
    return root


@pytest.mark.parametrize("columns", ["60", "200"])
def test_help_examples_are_whole_lines_that_name_real_paths(columns):
    text = runner.invoke(app, ["explain", "--help"], env={"COLUMNS": columns}).output
    lines = [line.strip() for line in text.splitlines()]
    for example in EXAMPLE_LINES:
        assert example in lines  # never broken mid-word or mid-line
        for word in example.split():
            if word.startswith(("sample_", "configs/")):
                assert (REPO / word).exists(), word
    assert "sample_images/digits/" in EXAMPLE_LINES[0]  # the digit model on digits, not on masks and photos


def test_the_first_help_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    args = EXAMPLE_LINES[0].split()[1:]
    args[args.index("--out") + 1] = str(tmp_path / "out")
    result = runner.invoke(app, [*args, "--workers", "0", "--quiet"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out").glob("*.gradcam.png"))) == 20


def test_methods_lists_every_parameter_with_type_default_choices_and_meaning():
    from xai_cli.methods.registry import _METHODS, _ensure_loaded

    cards = json.loads(runner.invoke(app, ["methods", "--format", "json"]).output)
    text = runner.invoke(app, ["methods"], env={"COLUMNS": "80"}).output
    _ensure_loaded()
    expected = {(n, f) for table in _METHODS.values() for n, cls in table.items()
                for f in cls.Params.__dataclass_fields__}
    listed = {(c["name"], p["name"]) for c in cards for p in c["params"]}
    assert listed == expected
    for c in cards:
        for p in c["params"]:
            assert p["doc"] and p["type"], (c["name"], p["name"])
            assert f"--param {c['name']}.{p['name']}=VALUE" in text
    lime = next(p for c in cards if c["name"] == "lime" for p in c["params"] if p["name"] == "segmentation")
    assert lime["choices"] == ["quickshift", "slic", "grid"] and lime["default"] == "quickshift"
    assert "…" not in text  # nothing cut


def test_a_bad_choice_names_the_choices_and_json_errors_go_to_stdout(two_digits, tmp_path):
    result = runner.invoke(app, ["explain", "-m", "demo-digits", "--method", "lime", "-p", "lime.segmentation=foo",
                                 str(two_digits), "-o", str(tmp_path / "o"), "--format", "json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["code"] == 2 and error["type"] == "UsageError" and "quickshift, slic, grid" in error["hint"]
    missing = runner.invoke(app, ["explain", "-m", "no-such-model", str(two_digits), "--format", "json"])
    assert missing.exit_code == 2 and json.loads(missing.stdout)["error"]["message"] == "unknown model 'no-such-model'"


@pytest.mark.parametrize("spelling,name", [("GradCAM", "gradcam"), ("Grad-CAM", "gradcam"), ("integrated_gradients", "ig"),
                                           ("IntegratedGradients", "ig"), ("KernelSHAP", "shap"), ("GradCAM++", "gradcampp"),
                                           ("Guided-Backprop", "guided_backprop"), ("LIME", "lime")])
def test_common_spellings_name_the_method(spelling, name):
    from xai_cli.methods.registry import get_method

    assert get_method(spelling, "image").name == name


def test_near_misses_suggest_the_method():
    from xai_cli.errors import UsageError
    from xai_cli.methods.registry import get_method

    with pytest.raises(UsageError) as e:
        get_method("GradCm", "image")
    assert "'gradcam'" in e.value.hint
    with pytest.raises(UsageError) as e:
        get_method("integrated_gradiants", "image")
    assert "'ig'" in e.value.hint


def test_a_config_value_of_the_wrong_type_names_key_and_type(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('model = "demo-digits"\ntop_k = "3"\n')
    result = runner.invoke(app, ["explain", "--config", str(cfg), str(DIGITS)])
    assert result.exit_code == 2
    assert "top_k = '3' is not an integer" in result.output


def test_an_empty_inbox_exits_0_with_a_warning_and_a_run_json(tmp_path):
    (tmp_path / "inbox").mkdir()
    result = runner.invoke(app, ["explain", "-m", "demo-digits", str(tmp_path / "inbox"), "-o", str(tmp_path / "out"),
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    run_json = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run_json["counts"]["total"] == 0 and run_json["exit_code"] == 0
    assert any("no image inputs found" in w for w in run_json["warnings"])
    assert runner.invoke(app, ["explain", "-m", "demo-digits", str(tmp_path / "nope")]).exit_code == 2  # a typo still is


def test_top_k_is_clamped_recorded_and_ranks_sort(two_digits, tmp_path):
    """Also: one input's pictures share a width; manifest lines carry the top-1; logs are timestamped."""
    out = tmp_path / "out"
    proc = run(xai_cmd("explain", "-m", "demo-digits", "--method", "gradcam,saliency", "--top-k", "11", two_digits,
                       "-o", out, "--workers", "0"))
    assert proc.returncode == 0, proc.stderr
    assert "--top-k 11 clamped to 10: the model has 10 classes" in proc.stderr
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d ")
    assert all(stamp.match(line) for line in proc.stderr.splitlines() if line.strip())
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["config"]["top_k"] == 10
    names = sorted(p.name for p in out.glob("digit_03_label_3.gradcam.*.png"))
    assert len(names) == 10 and [n.split(".")[2][:5] for n in names] == [f"top{r:02d}" for r in range(1, 11)]
    widths = {Image.open(p).width for p in out.glob("digit_03_label_3.*.png")}
    assert len(widths) == 1 and widths.pop() >= 2 * 320  # side by side, each at least 320 px
    for line in map(json.loads, (out / "manifest.jsonl").read_text().splitlines()):
        record = json.loads((out / line["record"]).read_text())
        top = record["prediction"][0]
        assert line["top1"] == {"index": top["index"], "label": top["label"], "probability": top["probability"]}


def test_run_scale_gives_every_map_of_a_method_one_range(two_digits, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["explain", "-m", "demo-digits", "--method", "gradcam,ig", "--scale", "run",
                                 str(two_digits), "-o", str(out), "--workers", "0", "--quiet"])
    assert result.exit_code == 0, result.output
    ranges = json.loads((out / "run.json").read_text())["colour_ranges"]
    assert set(ranges) == {"gradcam", "ig"} and ranges["ig"][0] == -ranges["ig"][1] and ranges["gradcam"][0] == 0
    for rec in out.glob("*.json"):
        if rec.name != "run.json":
            methods = json.loads(rec.read_text())["methods"]
            assert all(methods[m][0]["colour_range"] == ranges[m] for m in ranges)
    assert runner.invoke(app, ["explain", "-m", "demo-digits", "--scale", "global", str(two_digits)]).exit_code == 2


def test_models_accepts_a_model_folder():
    folder = REPO / "xai_cli" / "models" / "weights" / "demo_text"
    result = runner.invoke(app, ["models", str(folder)])
    assert result.exit_code == 0 and result.stdout.strip() == f"{folder}\thuggingface"


def test_flat_maps_and_tied_classes_are_said_in_records_and_run_json(two_digits, tmp_path):
    """A demo-digits with every weight 0: all 10 classes tie, gradients and Grad-CAM are all zero."""
    import torch
    from safetensors.torch import load_file, save_file

    state = load_file(REPO / "xai_cli" / "models" / "weights" / "demo_digits.safetensors")
    save_file({k: torch.zeros_like(v) if v.is_floating_point() else v for k, v in state.items()}, tmp_path / "zero.safetensors")
    out = tmp_path / "out"
    result = runner.invoke(app, ["explain", "-m", "demo-digits", "--weights", str(tmp_path / "zero.safetensors"),
                                 "--method", "gradcam,saliency", str(two_digits), "-o", str(out), "--workers", "0",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["degenerate_maps"] == 4
    record = json.loads((out / "digit_03_label_3.json").read_text())
    assert record["prediction_tie"] == 10
    assert {m: e[0]["stats"]["degenerate"] for m, e in record["methods"].items()} == {"gradcam": "zero", "saliency": "zero"}
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["counts"]["degenerate_maps"] == 4 and run_json["counts"]["tied_predictions"] == 2
    assert sum("flat" in w for w in run_json["warnings"]) == 2 and any("tie" in w for w in run_json["warnings"])
    assert run_json["counts"]["warnings"] == len(run_json["warnings"])


def test_progress_steps_within_a_batch_as_each_method_finishes(two_digits, tmp_path):
    from xai_cli import api
    from xai_cli.config import RunConfig
    from xai_cli.core.reporting import Reporter

    class Steps(Reporter):
        def __init__(self):
            self.steps = []

        def step(self, text):
            self.steps.append(text)

    reporter = Steps()
    cfg = RunConfig(model="demo-digits", methods=("gradcam", "saliency"), inputs=(two_digits,), out=tmp_path / "o",
                    batch_size=1, workers=0)
    assert api.run(cfg, reporter=reporter).ok == 2
    assert reporter.steps == ["gradcam done on a batch of 1 (1/2 methods)", "saliency done on a batch of 1 (2/2 methods)"] * 2


def test_results_agree_across_batch_sizes_within_the_documented_tolerance(two_digits):
    """README and configs/README: probabilities within 1e-6, maps within 1e-5 of their largest |value|."""
    import numpy as np

    from xai_cli import api
    from xai_cli.config import RunConfig

    def results(bs):
        cfg = RunConfig(model="demo-digits", methods=("gradcam", "ig"), inputs=(two_digits,), batch_size=bs, workers=0)
        return list(api.explain(cfg))

    for a, b in zip(results(1), results(2)):
        assert a.prediction.indices == b.prediction.indices
        assert np.allclose(a.prediction.probabilities, b.prediction.probabilities, rtol=0, atol=1e-6)
        for ma, mb in zip(a.maps, b.maps):
            assert np.abs(ma.scores - mb.scores).max() <= 1e-5 * np.abs(ma.scores).max()


def test_the_record_schema_describes_every_field_a_record_has():
    """Every key of the golden image and text records (method params and details aside: `xai methods`
    documents those) has a description in xai_cli/schemas/record.schema.json."""
    schema = json.loads((REPO / "xai_cli" / "schemas" / "record.schema.json").read_text())
    missing = []

    def walk(value, node, where):
        if isinstance(value, dict):
            props = node.get("properties")
            extra = node.get("additionalProperties")
            for key, v in value.items():
                child = props.get(key) if props else extra if isinstance(extra, dict) else None
                if child is None or "description" not in child:
                    missing.append(f"{where}.{key}")
                elif key not in ("params", "details"):
                    walk(v, child, f"{where}.{key}")
        elif isinstance(value, list) and "items" in node:
            for v in value:
                walk(v, node["items"], where + "[]")

    for case in ("demo_image", "demo_text"):
        golden = json.loads((REPO / "tests" / "golden" / f"{case}.json").read_text())
        for record in golden["records"].values():
            walk(record, schema, case)
    assert not missing, sorted(set(missing))
