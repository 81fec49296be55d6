"""The shipped demo-text checkpoint: small, accurate, and its explanations find the words that
decide each label (the synthetic data put exactly one sentiment word in each sentence)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from tools.train_text_demo import make_sentence
from xai_cli.methods.registry import all_methods
from xai_cli.methods.text import merge_words
from xai_cli.models.huggingface import DEMO_TEXT_DIR
from tests.modalities.text.helpers import tokenise, word_text

N_SENTENCES = 30


def test_checkpoint_is_a_small_save_pretrained_folder_with_its_accuracy():
    files = {p.name for p in DEMO_TEXT_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "training.json"} <= files
    assert sum(p.stat().st_size for p in DEMO_TEXT_DIR.iterdir()) <= 5 * 2 ** 20
    assert json.loads((DEMO_TEXT_DIR / "training.json").read_text())["heldout_accuracy"] >= 0.95


@pytest.fixture(scope="module")
def sentences():
    rng = random.Random(20240)  # neither the training (0) nor the held-out (1) seed
    return [make_sentence(rng) for _ in range(N_SENTENCES)]


@pytest.mark.parametrize("name", ["ig", "shap", "lime"])
def test_explanations_rank_the_deciding_word_in_the_top_three(name, demo_text, sentences):
    items, batch = tokenise(demo_text, [s for s, _, _ in sentences])
    labels = torch.tensor([label for _, label, _ in sentences])
    with torch.no_grad():
        assert (demo_text.module(batch.input_ids, batch.attention_mask).argmax(1) == labels).all()
    cls = all_methods("text")[name]
    method = cls(demo_text.module)  # default parameters, as a user gets them
    maps = method.explain(batch, labels, list(range(N_SENTENCES))).maps.numpy()
    hits = []
    for i, (it, (_, _, word)) in enumerate(zip(items, sentences)):
        scores = merge_words(maps[i], it.word_ids, it.n_words, method.word_merge)
        top3 = np.argsort(-scores, kind="stable")[:3]
        hits.append(any(word_text(it, w).lower() == word for w in top3))
    assert np.mean(hits) >= 0.9, f"{name}: top-3 hit rate {np.mean(hits):.0%}"
