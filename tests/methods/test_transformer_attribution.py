"""Transformer attribution (Chefer et al. 2021) against the paper's formula worked out on a tiny
ViT written out by hand (explicit softmax attention, gradients by autograd), and on a tiny BERT."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import frozen, images
from xai_cli.errors import MethodError
from xai_cli.methods.text import TokenBatch
from xai_cli.methods.text.transformer_attribution import TextTransformerAttribution
from xai_cli.methods.transformer_attribution import TransformerAttribution


def by_hand(vit, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """torchvision's ViT forward, attention spelled out, then eqs. 5-6 of arXiv:2103.15679."""
    n = x.shape[0]
    tokens = vit.conv_proj(x).flatten(2).transpose(1, 2)  # (N, 16, D)
    h = torch.cat([vit.class_token.expand(n, -1, -1), tokens], 1) + vit.encoder.pos_embedding  # (N, T, D)
    attns = []
    for block in vit.encoder.layers:
        mha, d = block.self_attention, h.shape[-1]
        heads, hd = mha.num_heads, d // mha.num_heads
        q, k, v = F.linear(block.ln_1(h), mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(n, -1, heads, hd).transpose(1, 2) for t in (q, k, v))  # (N, heads, T, hd)
        a = torch.softmax(q @ k.transpose(-1, -2) / hd ** 0.5, dim=-1)  # (N, heads, T, T)
        a.retain_grad()
        attns.append(a)
        h = h + mha.out_proj((a @ v).transpose(1, 2).reshape(n, -1, d))
        h = h + block.mlp(block.ln_2(h))
    logits = vit.heads(vit.encoder.ln(h)[:, 0])
    torch.testing.assert_close(logits, vit(x), rtol=1e-4, atol=1e-5)  # the hand forward is the model's
    logits.gather(1, targets[:, None]).sum().backward()
    r = torch.eye(h.shape[1]).expand(n, -1, -1)
    for a in attns:
        r = r + (a.grad * a).clamp(min=0).mean(1) @ r
    grid = r[:, 0, 1:].reshape(n, 1, 4, 4)
    return F.interpolate(grid, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0].detach()


def test_matches_the_formula_by_hand_on_a_tiny_vit(tiny_vit):
    x, t = images(3, 32, seed=6), torch.tensor([0, 4, 2])
    ours = TransformerAttribution(tiny_vit).explain(x, t)
    torch.testing.assert_close(ours.maps, by_hand(tiny_vit, x.clone().requires_grad_(), t), rtol=1e-4, atol=1e-6)
    assert ours.details[0]["class_specific"]


def test_is_class_specific(tiny_vit):
    x = images(2, 32, seed=7)
    method = TransformerAttribution(tiny_vit)
    a, b = method.explain(x, torch.tensor([0, 0])).maps, method.explain(x, torch.tensor([3, 3])).maps
    assert not torch.allclose(a, b)


def test_refuses_a_cnn(one_conv):
    with pytest.raises(MethodError):
        TransformerAttribution(one_conv)


def test_hugging_face_vit():
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    model = frozen(ViTForImageClassification(ViTConfig(image_size=32, patch_size=8, num_hidden_layers=2, num_attention_heads=2,
                                                       hidden_size=16, intermediate_size=32, num_labels=5)))
    out = TransformerAttribution(model).explain(images(2, 32, seed=5), torch.tensor([0, 1]))
    assert out.maps.shape == (2, 32, 32) and torch.isfinite(out.maps).all() and out.maps.abs().sum() > 0


def test_text_matches_the_formula_on_a_tiny_bert():
    from transformers import BertConfig, BertForSequenceClassification

    from xai_cli.models.huggingface.wrappers import TextClassifier

    torch.manual_seed(0)
    hf = frozen(BertForSequenceClassification(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                                         intermediate_size=32, max_position_embeddings=16, num_labels=3,
                                                         attn_implementation="eager")))
    model = TextClassifier(hf, pad_id=0, mask_id=4, max_length=16)
    batch = TokenBatch.from_lists([[2, 10, 11, 12, 3], [2, 13, 14, 3]], [[-1, 0, 1, 2, -1], [-1, 0, 1, -1]], pad_id=0)
    t = torch.tensor([2, 1])
    ours = TextTransformerAttribution(model).explain(batch, t).maps
    for i, length in enumerate(batch.lengths()):  # each item alone, no padding, HF's own attentions
        embeds = model.embed(batch.input_ids[i:i + 1, :length]).detach().requires_grad_()
        out = hf(inputs_embeds=embeds, output_attentions=True)
        for a in out.attentions:
            a.retain_grad()
        out.logits[0, t[i]].backward()
        r = torch.eye(length)[None]
        for a in out.attentions:
            r = r + (a.grad * a).clamp(min=0).mean(1) @ r
        want = r[0, 0] * (batch.word_ids[i, :length] >= 0)
        torch.testing.assert_close(ours[i, :length], want, rtol=1e-4, atol=1e-6)
        assert ours[i, length:].abs().sum() == 0
