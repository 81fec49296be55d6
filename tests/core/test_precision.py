"""--precision bf16: fidelity against fp32 on the trained demo model, and what the outputs record.

The bounds are issue 14's: per-input map Pearson r ≥ 0.99, IG completeness < 5 %, top-1
unchanged. bench/fidelity.py measures the same on the bench's resnet18 inputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.reliability.cli import env
from xai_cli import api
from xai_cli.core.precision import autocast_calls, autocast_model, prepare_inputs, prepare_model

DIGITS = Path(__file__).parents[2] / "sample_images" / "digits"


def _explain(precision: str, methods: tuple[str, ...]):
    files = tuple(sorted(DIGITS.glob("*.png"))[:4])
    cfg = api.RunConfig(model="demo-digits", methods=methods, inputs=files, precision=precision, workers=0,
                        device="cpu", batch_size=4, params={"ig": {"steps": 16}})
    return list(api.explain(cfg))


@pytest.mark.slow  # ~10 s on a quiet 2-core box, 40 s while other jobs load it
def test_bf16_maps_match_fp32_on_the_demo_model():
    methods = ("gradcam", "saliency", "guided_backprop", "ig")
    fp32, bf16 = _explain("fp32", methods), _explain("bf16", methods)
    assert [r.prediction.indices[0] for r in fp32] == [r.prediction.indices[0] for r in bf16]
    for a, b in zip(fp32, bf16):
        for ma, mb in zip(a.maps, b.maps):
            assert ma.method == mb.method and mb.scores.dtype == np.float32
            assert not np.array_equal(ma.scores, mb.scores), "bf16 must actually change the arithmetic"
            r = np.corrcoef(ma.scores.ravel(), mb.scores.ravel())[0, 1]
            assert r >= 0.99, f"{a.rel} {ma.method}: r = {r:.4f}"
            if ma.method == "ig":
                assert mb.details["completeness_error"] < 0.05


def test_the_outputs_say_which_precision_made_them(tmp_path):
    files = tuple(sorted(DIGITS.glob("*.png"))[:2])
    keys = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        cfg = api.RunConfig(model="demo-digits", methods=("gradcam",), inputs=files, out=out, precision=precision,
                            workers=0, device="cpu")
        assert api.run(cfg).ok == 2
        record = json.loads((out / files[0].with_suffix(".json").name).read_text())
        run = json.loads((out / "run.json").read_text())
        assert record["precision"] == precision
        assert run["device"]["precision"] == run["config"]["precision"] == precision
        keys[precision] = record["config_key"]
    assert keys["fp32"] != keys["bf16"]  # a bf16 run never resumes an fp32 one, and back


def test_fp32_keeps_the_output_key_of_earlier_runs():
    import hashlib

    cfg = api.RunConfig(model="demo-digits", methods=("gradcam",))
    keep = ("model", "weights", "labels", "methods", "params", "target", "top_k", "seed", "save_raw", "render_max_side",
            "overlay", "cmap", "scale")
    before = {k: v for k, v in cfg.to_dict().items() if k in keep}  # the key as computed before --precision existed
    assert cfg.output_key() == hashlib.sha256(json.dumps(before, sort_keys=True, default=str).encode()).hexdigest()[:16]


def test_autocast_wraps_only_the_forward_and_always_restores_it(resnet18):
    model = prepare_model(resnet18, "bf16")
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = prepare_inputs(torch.randn(2, 3, 32, 32), "bf16")
    seen = []
    handle = model.layer4.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    try:
        with autocast_model(model, "bf16", x.device):
            assert model(x).dtype == torch.float32
        assert seen == [torch.bfloat16]
        with pytest.raises(RuntimeError), autocast_model(model, "bf16", x.device):
            model(torch.randn(2, 5, 32, 32))  # wrong channels: the forward raises inside autocast
    finally:
        handle.remove()
        model.to(memory_format=torch.contiguous_format)
    assert "forward" not in model.__dict__ and not torch.is_autocast_enabled("cpu")
    assert model(torch.randn(1, 3, 32, 32)).dtype == torch.float32


def test_autocast_calls_wraps_each_model_it_is_given_and_not_a_copy_of_a_wrapped_one():
    """The randomisation test explains deep copies of the model: each must run its own weights
    under bf16. A copy made while the original is wrapped would call the original's forward."""
    import copy

    model = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()
    seen = []
    model[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    run = autocast_calls(lambda m, x: m(x), "bf16", torch.device("cpu"))
    x = torch.randn(2, 4)
    assert run(model, x).dtype == torch.float32 and seen == [torch.bfloat16]
    blank = copy.deepcopy(model)
    torch.nn.init.zeros_(blank[0].weight), torch.nn.init.zeros_(blank[0].bias)
    assert torch.equal(run(blank, x), torch.zeros(2, 3)) and seen[-1] == torch.bfloat16
    assert "forward" not in model.__dict__ and "forward" not in blank.__dict__
    with autocast_model(model, "bf16", x.device):
        wrapped_copy = copy.deepcopy(model)
    torch.nn.init.zeros_(wrapped_copy[0].weight), torch.nn.init.zeros_(wrapped_copy[0].bias)
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
