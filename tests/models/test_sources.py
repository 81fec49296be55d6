"""Model sources: torchvision by name, local checkpoints (safely), labels, offline errors."""

from __future__ import annotations

import pickle

import pytest
import torch
import torchvision

from xai_cli.errors import ModelLoadError, UsageError
from xai_cli.models.registry import ModelRequest, list_models, load_model

CPU = torch.device("cpu")


def test_list_models_filters_with_shell_patterns():
    names = [n for n, _ in list_models("res*")]
    assert "resnet50" in names and "resnet18" in names
    assert all(n.startswith("res") for n in names)
    assert ("demo-digits", "embedded") in list_models("demo*")


def test_unknown_model_suggests_near_names():
    with pytest.raises(UsageError) as err:
        load_model(ModelRequest("resnet5O"), CPU)
    assert "resnet50" in str(err.value)


def test_weights_none_is_random_and_recorded(capsys):
    m = load_model(ModelRequest("resnet18", weights="none"), CPU)
    assert m.random_init and m.weights == "none"
    assert any("random weights" in w for w in m.warnings)  # returned as data, reported by the runner
    assert capsys.readouterr().err == ""  # models never print
    assert not any(p.requires_grad for p in m.module.parameters())
    assert m.preprocess.crop_size == 224 and m.preprocess.resize_size == 256


def test_default_weights_offline_and_uncached_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("XAI_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelRequest("resnet50"), CPU)
    msg = err.value.render(flags=True)
    assert "--weights none" in msg and "--weights PATH" in msg and str(tmp_path) in msg


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_state_dict_files_load_with_a_finetuned_head(tmp_path, suffix):
    torch.manual_seed(0)
    src = torchvision.models.resnet18(weights=None, num_classes=7)
    path = tmp_path / f"ft{suffix}"
    if suffix == ".pt":
        torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}, "epoch": 3}, path)
    else:
        from safetensors.torch import save_file

        save_file(src.state_dict(), str(path))
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"c{i}" for i in range(7)))
    m = load_model(ModelRequest("resnet18", weights=str(path), labels_file=labels), CPU)
    assert m.weights.startswith(f"file:ft{suffix} sha256:") and not m.random_init
    assert m.labels == [f"c{i}" for i in range(7)]
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(m.module(x), src.eval()(x))


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_is_refused_without_trust(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"weight": Evil()}, f)
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelRequest("resnet18", weights=str(path)), CPU)
    assert "--trust-checkpoint" in err.value.render(flags=True)
    assert "pwned" not in capsys.readouterr().out


def test_full_model_pickle_needs_trust_checkpoint(tmp_path):
    path = tmp_path / "full.pt"
    torch.save(torchvision.models.resnet18(weights=None, num_classes=3), path)
    with pytest.raises(ModelLoadError):
        load_model(ModelRequest("resnet18", weights=str(path)), CPU)
    m = load_model(ModelRequest("resnet18", weights=str(path), trust_checkpoint=True), CPU)
    assert m.module(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_mismatched_checkpoint_names_the_problem(tmp_path):
    path = tmp_path / "r34.pt"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelRequest("resnet18", weights=str(path)), CPU)
    assert "does not fit" in str(err.value)


def test_labels_count_must_match_classes(tmp_path):
    labels = tmp_path / "labels.json"
    labels.write_text('["a", "b"]')
    with pytest.raises(UsageError):
        load_model(ModelRequest("resnet18", weights="none", labels_file=labels), CPU)
