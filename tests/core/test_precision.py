"""--precision bf16: fidelity against fp32 on the trained demo model, and what the outputs record.

The bounds are issue 14's: per-input map Pearson r ≥ 0.99, IG completeness < 5 %, top-1
unchanged. bench/fidelity.py measures the same on the bench's resnet18 inputs.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.reliability.cli import env
from xai_cli import api
from xai_cli.core.precision import autocast_calls, autocast_model, prepare_inputs, prepare_model
from xai_cli.methods.registry import all_methods, build_params, method_cards

DIGITS = Path(__file__).parents[2] / "sample_images" / "digits"


def _explain(precision: str, methods: tuple[str, ...], n: int = 4, params: dict | None = None):
    files = tuple(sorted(DIGITS.glob("*.png"))[:n])
    cfg = api.RunConfig(model="demo-digits", methods=methods, inputs=files, precision=precision, workers=0,
                        device="cpu", batch_size=4, params={"ig": {"steps": 16}} if params is None else params)
    return list(api.explain(cfg))


def _policy(name: str) -> str:
    cls = all_methods()[name]
    return cls(nn.Identity()).bf16_policy()[0]


def _r(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.slow  # ~10 s on a quiet 2-core box, 40 s while other jobs load it
def test_bf16_maps_match_fp32_on_the_demo_model():
    methods = ("gradcam", "saliency", "guided_backprop", "ig")
    fp32, bf16 = _explain("fp32", methods), _explain("bf16", methods)
    assert [r.prediction.indices[0] for r in fp32] == [r.prediction.indices[0] for r in bf16]
    for a, b in zip(fp32, bf16):
        for ma, mb in zip(a.maps, b.maps):
            assert ma.method == mb.method and mb.scores.dtype == np.float32
            assert ma.precision == "fp32" and mb.precision == _policy(mb.method)
            if mb.precision == "fp32":
                assert np.array_equal(ma.scores, mb.scores)
                continue
            assert not np.array_equal(ma.scores, mb.scores), "bf16 must actually change the arithmetic"
            assert _r(ma.scores, mb.scores) >= 0.99, f"{a.rel} {ma.method}"
            if ma.method == "ig":
                assert mb.details["completeness_error"] < 0.05


@pytest.mark.parametrize("methods", [("gradcam", "saliency"), ("saliency", "gradcam")])
def test_a_method_on_the_fp32_list_gives_bitwise_its_fp32_map_under_bf16(methods):
    """First or not (the prediction then comes from a bf16 forward of its own), saliency's map is
    fp32's to the bit in a bf16 run, while Grad-CAM's changes: the run really was bf16."""
    assert _policy("saliency") == "fp32" and _policy("gradcam") == "bf16"
    fp32, bf16 = _explain("fp32", methods, n=3, params={}), _explain("bf16", methods, n=3, params={})
    for a, b in zip(fp32, bf16):
        maps_a, maps_b = a.by_method(), b.by_method()
        assert maps_b["saliency"][0].precision == "fp32" and maps_b["gradcam"][0].precision == "bf16"
        assert maps_a["saliency"][0].target.index == maps_b["saliency"][0].target.index
        assert np.array_equal(maps_a["saliency"][0].scores, maps_b["saliency"][0].scores)
        assert not np.array_equal(maps_a["gradcam"][0].scores, maps_b["gradcam"][0].scores)


BF16_METHODS = [n for n in ("gradcam", "guided_backprop", "ig", "lime", "shap") if _policy(n) != "fp32"]


@pytest.mark.parametrize("name", BF16_METHODS)
def test_a_method_run_in_bf16_stays_within_r_099_of_fp32(name):
    params = {"ig": {"steps": 16}, "lime": {"n_samples": 200}, "shap": {"n_samples": 200}}
    fp32, bf16 = (_explain(p, (name,), n=3, params={name: params.get(name, {})}) for p in ("fp32", "bf16"))
    for a, b in zip(fp32, bf16):
        (ma,), (mb,) = a.maps, b.maps
        assert mb.precision == _policy(name) != "fp32"
        assert not np.array_equal(ma.scores, mb.scores)
        assert _r(ma.scores, mb.scores) >= 0.99, f"{a.rel} {name}"


def test_every_method_declares_a_measured_policy():
    from xai_cli.core.precision import ARITHMETIC

    for modality in ("image", "text"):
        for name, cls in all_methods(modality).items():
            assert cls.bf16 in ARITHMETIC, name
            assert cls.bf16 == "fp32" or " r " in f" {cls.bf16_fidelity}", f"{name}: a bf16 policy cites its measurement"
    for card in method_cards():
        assert card.bf16.split(":")[0] in ARITHMETIC, card.name
    shap = all_methods()["shap"]
    assert shap(nn.Identity(), build_params(shap, {"algorithm": "gradient"})).bf16_policy()[1] != shap.bf16_fidelity
    smooth = all_methods()["smoothgrad"]
    for base in ("saliency", "ig"):
        wrapped = smooth(nn.Identity(), build_params(smooth, {"base": base}))
        assert wrapped.bf16_policy() == all_methods()[base](nn.Identity()).bf16_policy()


def test_the_outputs_say_which_precision_made_each_map(tmp_path):
    files = tuple(sorted(DIGITS.glob("*.png"))[:2])
    keys = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        cfg = api.RunConfig(model="demo-digits", methods=("gradcam", "saliency", "ig"), inputs=files, out=out,
                            precision=precision, workers=0, device="cpu", params={"ig": {"steps": 8}})
        summary = api.run(cfg)
        assert summary.ok == 2
        record = json.loads((out / files[0].with_suffix(".json").name).read_text())
        run = json.loads((out / "run.json").read_text())
        assert record["precision"] == precision
        assert run["device"]["precision"] == run["config"]["precision"] == precision
        expected = {"gradcam": "bf16", "saliency": "fp32", "ig": "bf16-hires-fp32"} if precision == "bf16" else {}
        assert {m: e[0]["precision"] for m, e in record["methods"].items()} == {
            m: expected.get(m, "fp32") for m in ("gradcam", "saliency", "ig")}
        said = [w for w in summary.warnings if "saliency runs in fp32" in w]
        assert len(said) == (precision == "bf16"), summary.warnings
        if said:
            assert "ig keeps its high-resolution layers in fp32" in said[0] and "gradcam" not in said[0]
        keys[precision] = record["config_key"]
    assert keys["fp32"] != keys["bf16"]  # a bf16 run never resumes an fp32 one, and back


def test_fp32_keeps_the_output_key_of_earlier_runs():
    import hashlib

    cfg = api.RunConfig(model="demo-digits", methods=("gradcam",))
    keep = ("model", "weights", "labels", "methods", "params", "target", "top_k", "seed", "save_raw", "render_max_side",
            "overlay", "cmap", "scale")
    before = {k: v for k, v in cfg.to_dict().items() if k in keep}  # the key as computed before --precision existed
    assert cfg.output_key() == hashlib.sha256(json.dumps(before, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _dtypes(model: nn.Module, names: list[str], precision: str, x: torch.Tensor) -> dict[str, torch.dtype]:
    seen = {}

    def keep(name):
        def hook(_m, _i, out):
            seen.setdefault(name, out.dtype)  # returns None: the output is left alone
        return hook

    handles = [model.get_submodule(n).register_forward_hook(keep(n)) for n in names]
    try:
        with autocast_model(model, precision, x.device):
            assert model(x).dtype == torch.float32
    finally:
        for h in handles:
            h.remove()
    return seen


def test_autocast_wraps_only_the_forward_and_always_restores_it(resnet18):
    x = prepare_inputs(torch.randn(2, 3, 32, 32), "bf16")
    assert x.is_contiguous(memory_format=torch.channels_last)
    before = _hooks(resnet18)
    assert _dtypes(resnet18, ["layer4"], "bf16", x) == {"layer4": torch.bfloat16}
    for precision in ("bf16", "bf16-hires-fp32"):
        with pytest.raises(RuntimeError), autocast_model(resnet18, precision, x.device):
            resnet18(torch.randn(2, 5, 32, 32))  # wrong channels: the forward raises inside autocast (an fp32 island)
        assert "forward" not in resnet18.__dict__ and not torch.is_autocast_enabled("cpu")
        assert _hooks(resnet18) == before
    assert resnet18.conv1.weight.is_contiguous()  # weights stay as built: fp32 methods of a bf16 run are fp32's
    copy_ = prepare_model(copy.deepcopy(resnet18), "bf16")  # a bf16-only copy may go channels_last
    assert copy_.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(copy_.conv1.weight, resnet18.conv1.weight)
    assert resnet18(torch.randn(1, 3, 32, 32)).dtype == torch.float32


def test_the_head_and_under_hires_the_early_layers_run_in_fp32(resnet18):
    """The classifier head never rounds logits to bf16; bf16-hires-fp32 also keeps every layer whose
    input is at least half the image's side (64 px: the stem, conv1 to maxpool) in fp32."""
    x = prepare_inputs(torch.randn(2, 3, 64, 64), "bf16")
    names = ["conv1", "bn1", "maxpool", "layer1.0.conv1", "layer4", "fc"]
    f32, b16 = torch.float32, torch.bfloat16
    assert _dtypes(resnet18, names, "bf16", x) == {
        "conv1": b16, "bn1": b16, "maxpool": b16, "layer1.0.conv1": b16, "layer4": b16, "fc": f32}
    assert _dtypes(resnet18, names, "bf16-hires-fp32", x) == {
        "conv1": f32, "bn1": f32, "maxpool": f32, "layer1.0.conv1": b16, "layer4": b16, "fc": f32}
    with torch.no_grad():
        ref = resnet18(x)
        with autocast_model(resnet18, "bf16", x.device):
            logits = resnet18(x)
        assert (logits - ref).abs().max() < 0.05 * ref.abs().max()
        assert not torch.equal(logits, logits.bfloat16().float()), "the logits keep more than bf16's 8 bits"


def test_autocast_calls_wraps_each_model_it_is_given_and_not_a_copy_of_a_wrapped_one():
    """The randomisation test explains deep copies of the model: each must run its own weights
    under bf16 (all but the classifier head, which stays fp32). A copy made while the original is
    wrapped would call the original's forward."""
    import copy

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 3)).eval()
    seen = []
    model[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    run = autocast_calls(lambda m, x: m(x), "bf16", torch.device("cpu"))
    x = torch.randn(2, 4)
    assert run(model, x).dtype == torch.float32 and seen == [torch.bfloat16]
    blank = copy.deepcopy(model)
    torch.nn.init.zeros_(blank[1].weight), torch.nn.init.zeros_(blank[1].bias)
    assert torch.equal(run(blank, x), torch.zeros(2, 3)) and seen[-1] == torch.bfloat16
    assert "forward" not in model.__dict__ and "forward" not in blank.__dict__
    with autocast_model(model, "bf16", x.device):
        wrapped_copy = copy.deepcopy(model)
    torch.nn.init.zeros_(wrapped_copy[1].weight), torch.nn.init.zeros_(wrapped_copy[1].bias)
    assert not torch.equal(wrapped_copy(x), torch.zeros(2, 3))  # why the wrapper is per call
    assert autocast_calls(len, "fp32", x.device) is len


def test_an_unknown_precision_is_a_usage_error_before_torch():
    code = ("import sys; sys.argv = ['xai', 'explain', '--model', 'demo-digits', '--precision', 'fp16', 'sample_images'];"
            "from xai_cli.cli import main\ntry:\n    main()\nfinally:\n    print('TORCH', 'torch' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env(),
                       cwd=Path(__file__).parents[2])
    assert p.returncode == 2, p.stderr
    assert "unknown precision 'fp16'" in p.stderr and "fp32 or bf16" in p.stderr
    assert "TORCH False" in p.stdout
