"""Model load errors a person reads in one line: Hugging Face not cached / not found; torchvision
weights that cannot be downloaded, with nothing printed before the error."""

from __future__ import annotations

from urllib.error import URLError

import pytest

from xai_cli.errors import ModelLoadError


def _named(kind: str) -> Exception:
    return type(kind, (Exception,), {})("An error happened while trying to locate the files on the Hub\n"
                                        "and we cannot find the requested files in the local cache. Please check\n"
                                        "your connection or log in with `huggingface-cli login`.")


def test_hub_errors_are_one_line_saying_what_to_do():
    from xai_cli.models.huggingface import _hub_error

    offline = _hub_error("org/name", _named("LocalEntryNotFoundError"), "download it once with 'hf download org/name'")
    assert "not in the local Hugging Face cache" in offline.message and "hf download org/name" in offline.hint
    missing = _hub_error("org/name", _named("RepositoryNotFoundError"), "unused")
    assert "was not found on the Hugging Face Hub" in missing.message
    for e in (offline, missing):
        assert "\n" not in e.render() and "login" not in offline.render()


def test_torchvision_download_failure_prints_nothing_before_the_error(capfd, tmp_path, monkeypatch):
    import torch

    from xai_cli.models import torchvision_models

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.delenv("XAI_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    class Weights:
        url = "https://download.pytorch.org/models/tiny-0000.pth"

        def get_state_dict(self, **kw):
            import sys

            sys.stdout.write(f'Downloading: "{self.url}" to {tmp_path}\n')  # what torch.hub does
            raise URLError("[Errno -2] Name or service not known")

        def __str__(self):
            return "Tiny_Weights.V1"

    with pytest.raises(ModelLoadError) as e:
        torchvision_models._download("tiny", Weights())
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert "\n" not in e.value.render() and "could not be downloaded" in e.value.message
