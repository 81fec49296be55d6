"""A corrupt or pickled Hugging Face folder: exit 3 with one line, and the pickle never runs
without --trust-checkpoint."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import torch

from tests.reliability.cli import run, xai_cmd

transformers = pytest.importorskip("transformers")


class Evil:
    """Unpickling this runs code: it creates the file named ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mknod, (self.marker,))


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    from xai_cli.models.huggingface import DEMO_TEXT_DIR

    folder = tmp_path_factory.mktemp("hf") / "tiny-bert"
    tok = transformers.AutoTokenizer.from_pretrained(DEMO_TEXT_DIR)
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=32, num_labels=2)
    transformers.BertForSequenceClassification(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def explain(folder: Path, tmp_path: Path, *extra: str):
    (tmp_path / "in").mkdir(parents=True, exist_ok=True)
    (tmp_path / "in" / "a.txt").write_text("a fine day\n")
    return run(xai_cmd("explain", "--model", folder, "--workers", "0", *extra, tmp_path / "in", "--out", tmp_path / "out"))


def one_error_line(stderr: str) -> bool:
    lines = [x for x in stderr.splitlines() if re.match(r"^(\S+ )?error:", x)]  # after the log's timestamp
    return len(lines) == 1 and "Traceback" not in stderr


def test_a_truncated_safetensors_file_is_a_model_load_error(tiny_bert, tmp_path):
    folder = shutil.copytree(tiny_bert, tmp_path / "truncated")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    r = explain(folder, tmp_path)
    assert r.returncode == 3 and one_error_line(r.stderr), r.stderr
    assert "weights" in r.stderr


def test_a_pickle_that_runs_code_never_runs(tiny_bert, tmp_path):
    folder = shutil.copytree(tiny_bert, tmp_path / "pickled")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "PWNED"
    state = dict(model.state_dict())
    state["payload"] = Evil(marker)
    torch.save(state, folder / "pytorch_model.bin")
    r = explain(folder, tmp_path)
    assert r.returncode == 3 and one_error_line(r.stderr), r.stderr
    assert "pickled" in r.stderr and "--trust-checkpoint" in r.stderr
    assert not marker.exists()


def test_a_truncated_pickle_is_a_model_load_error_and_a_clean_one_loads(tiny_bert, tmp_path):
    folder = shutil.copytree(tiny_bert, tmp_path / "bin")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder)
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    (folder / "training_args.bin").write_bytes(b"a pickled TrainingArguments: never read")
    r = explain(folder, tmp_path)
    assert r.returncode == 0, r.stderr
    data = (folder / "pytorch_model.bin").read_bytes()
    (folder / "pytorch_model.bin").write_bytes(data[: len(data) // 3])
    r = explain(folder, tmp_path / "t")
    assert r.returncode == 3 and one_error_line(r.stderr), r.stderr
