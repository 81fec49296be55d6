"""Randomisation and max-sensitivity of text maps (token scores of a Hugging Face classifier).

- The cascade of a BERT classifier runs from the head down to the embeddings; its similarity
  is scipy's Spearman over the tokens of words of maps made by hand (HF called directly) after
  resetting the same blocks with the same seed.
- A map that depends on the input only keeps similarity 1 at every step; saliency's falls.
- Max-sensitivity with the noise in embedding space is Captum's ``sensitivity_max`` on the same
  noise, for saliency (a hand computation on Captum's side) and IG (per-item, padded batch).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from tests.conftest import frozen
from xai_cli.methods.registry import build_params, get_method
from xai_cli.methods.text import TokenBatch
from xai_cli.metrics.explainers import method_explainer
from xai_cli.metrics.randomisation import cascade_blocks, model_randomisation
from xai_cli.metrics.stability import token_max_sensitivity, uniform_noise

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_bert():
    """A seeded 2-layer BERT classifier (3 classes) seen as the text methods see it."""
    from xai_cli.models.huggingface.wrappers import TextClassifier

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=3,
                                     attn_implementation="eager")
    return frozen(TextClassifier(transformers.BertForSequenceClassification(config), pad_id=0, mask_id=4, max_length=16))


@pytest.fixture(scope="module")
def docs():
    """Three documents of different lengths ([CLS] ... [SEP], one word split in two tokens), padded."""
    ids = [[2, 10, 11, 12, 13, 14, 15, 3], [2, 16, 17, 18, 19, 3], [2, 20, 21, 22, 23, 24, 3]]
    words = [[-1, 0, 1, 2, 3, 4, 5, -1], [-1, 0, 1, 1, 2, -1], [-1, 0, 1, 2, 3, 4, -1]]
    return TokenBatch.from_lists(ids, words, pad_id=0), torch.tensor([0, 1, 2])


def hand_saliency(hf, ids: torch.Tensor, target: int, embeds: torch.Tensor | None = None) -> torch.Tensor:
    """(L,) ||d logit / d e_t|| of one unpadded document, HF called directly."""
    e = (hf.get_input_embeddings()(ids) if embeds is None else embeds).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        hf(inputs_embeds=e).logits[0, target].backward()
    return e.grad[0].norm(dim=-1)


def test_the_cascade_runs_from_the_head_to_the_embeddings(tiny_bert, tiny_vit):
    assert cascade_blocks(tiny_bert) == ["hf.classifier", "hf.bert.pooler", "hf.bert.encoder.layer.1",
                                         "hf.bert.encoder.layer.0", "hf.bert.embeddings"]
    distil = transformers.DistilBertForSequenceClassification(
        transformers.DistilBertConfig(vocab_size=40, dim=16, n_layers=2, n_heads=2, hidden_dim=32))
    assert cascade_blocks(distil) == ["classifier", "pre_classifier", "distilbert.transformer.layer.1",
                                      "distilbert.transformer.layer.0", "distilbert.embeddings"]
    assert cascade_blocks(tiny_vit) == ["heads.head", "encoder", "conv_proj"]  # torchvision: as before


def test_similarity_is_scipy_spearman_of_hand_randomised_maps(tiny_bert, docs):
    from scipy.stats import spearmanr

    batch, targets = docs
    blocks = cascade_blocks(tiny_bert)
    before = {k: v.clone() for k, v in tiny_bert.state_dict().items()}
    ours = model_randomisation(method_explainer("saliency", modality="text"), tiny_bert, batch, targets,
                               seed=7, mask=batch.word_ids >= 0)
    assert ours.blocks == blocks
    randomised = copy.deepcopy(tiny_bert.hf)
    original = [hand_saliency(tiny_bert.hf, batch.item(i)[0], int(targets[i])) for i in range(len(batch))]
    for j, block in enumerate(blocks):
        for module in randomised.get_submodule(block.removeprefix("hf.")).modules():  # Quantus's way: seed, reset
            if hasattr(module, "reset_parameters"):
                torch.manual_seed(7)
                module.reset_parameters()
        for i in range(len(batch)):
            ids, word_ids = batch.item(i)
            words = (word_ids >= 0).numpy()
            a, b = original[i].numpy()[words], hand_saliency(randomised, ids, int(targets[i])).numpy()[words]
            assert ours.similarity[i, j] == pytest.approx(spearmanr(np.abs(a), np.abs(b))[0], abs=1e-9), (i, block)
    assert all(torch.equal(v, before[k]) for k, v in tiny_bert.state_dict().items())  # the caller's model untouched


def test_a_model_independent_map_stays_similar_and_saliency_does_not(tiny_bert, docs):
    batch, targets = docs

    def by_token_id(model, x, targets):  # depends on the text only, never on a weight
        return ((x.input_ids * 7919) % 101).float() * x.attention_mask

    mask = batch.word_ids >= 0
    fixed = model_randomisation(by_token_id, tiny_bert, batch, targets, seed=0, mask=mask)
    np.testing.assert_array_equal(fixed.similarity, 1.0)
    saliency = model_randomisation(method_explainer("saliency", modality="text"), tiny_bert, batch, targets,
                                   seed=0, mask=mask).metrics()
    assert saliency["randomisation_last_similarity"].mean() < 0.5
    assert (saliency["randomisation_similarity"] < 1).all()


@pytest.mark.parametrize("method", ["saliency", "ig"])
def test_max_sensitivity_in_embedding_space_is_captum_sensitivity_max(tiny_bert, docs, method):
    from captum.metrics import sensitivity_max

    batch, targets = docs
    params = build_params(get_method(method, "text"), {"steps": 8} if method == "ig" else {})
    explain = method_explainer(method, params, modality="text")
    seeds, k, radius = [3, 4, 5], 6, 0.5  # a wide ball, so that the maps visibly move
    ours = token_max_sensitivity(explain, tiny_bert, batch, targets, radius=radius, n_samples=k, seeds=seeds,
                                 inputs_per_explain=4)
    # The same noise, drawn as documented: uniform in radius x std(embedding matrix), padding kept clean.
    embeds = tiny_bert.embed(batch.input_ids).detach()
    scale = float(tiny_bert.hf.get_input_embeddings().weight.std())
    noise = uniform_noise(tuple(embeds.shape), k, radius * scale, seeds) * batch.attention_mask[:, None, :, None]

    def perturb(inputs, r):  # Captum repeats each input k times in a row
        return inputs + noise.reshape(-1, *embeds.shape[1:])

    def hand(inputs, target, additional_forward_args):
        e = inputs[0] if isinstance(inputs, tuple) else inputs
        ids, attn, words = additional_forward_args
        if method == "ig":
            maps = explain(tiny_bert, TokenBatch(ids, attn, words, e), target)
        else:  # each document alone, unpadded, HF called directly
            maps = torch.zeros(ids.shape)
            for i in range(len(ids)):
                n = int(attn[i].sum())
                maps[i, :n] = hand_saliency(tiny_bert.hf, ids[i:i + 1, :n], int(target[i]), e[i:i + 1, :n])
        return (maps,) if isinstance(inputs, tuple) else maps

    ref = sensitivity_max(hand, embeds, perturb_func=perturb, n_perturb_samples=k, target=targets,
                          additional_forward_args=(batch.input_ids, batch.attention_mask, batch.word_ids))
    np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-4)
    assert (ours > 1e-3).all()  # the noise reached the maps
