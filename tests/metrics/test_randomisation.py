"""Cascading model-parameter randomisation against Quantus 0.6.0's MPRT on the same model and maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import images
from xai_cli.metrics.randomisation import cascade_blocks, model_randomisation, sample_indices, spearman_rows


def grad_x_input(model, x, targets):
    """(N, H, W) gradient x input summed over channels: a map that depends on every weight."""
    with torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        model(x).gather(1, targets.view(-1, 1)).sum().backward()
    return (x.grad * x).sum(1).detach()


def test_similarity_is_quantus_mprt(one_conv):
    quantus = pytest.importorskip("quantus")
    x, targets = images(6, 12, seed=1), torch.tensor([0, 1, 2, 0, 1, 2])

    def q_explain(model, inputs, targets, **kwargs):
        return grad_x_input(model, torch.as_tensor(inputs), torch.as_tensor(targets)).numpy()[:, None]

    metric = quantus.MPRT(layer_order="top_down", seed=42, return_last_correlation=False, disable_warnings=True)
    ref = metric(model=one_conv, x_batch=x.numpy(), y_batch=targets.numpy(), a_batch=None, explain_func=q_explain,
                 channel_first=True, device="cpu")
    # Quantus re-initialises the modules with reset_parameters, output first, seeding seed + 1 before each.
    ours = model_randomisation(grad_x_input, one_conv, x, targets, blocks=["fc", "conv"], seed=43)
    assert list(ref)[1:] == ["fc", "conv"]
    np.testing.assert_allclose(ours.similarity[:, 0], ref["fc"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.similarity[:, 1], ref["conv"], rtol=1e-5, atol=1e-6)
    assert ours.metrics()["randomisation_last_similarity"].tolist() == ours.similarity[:, 1].tolist()


def test_the_callers_model_is_untouched_and_seeds_repeat(one_conv):
    x, targets = images(3, 10, seed=2), torch.tensor([0, 1, 2])
    before = {k: v.clone() for k, v in one_conv.state_dict().items()}
    rng_before = torch.random.get_rng_state()
    a = model_randomisation(grad_x_input, one_conv, x, targets, seed=3)
    b = model_randomisation(grad_x_input, one_conv, x, targets, seed=3)
    c = model_randomisation(grad_x_input, one_conv, x, targets, seed=4)
    for k, v in one_conv.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    np.testing.assert_array_equal(a.similarity, b.similarity)
    assert not np.allclose(a.similarity, c.similarity)
    assert a.blocks == ["fc", "conv"]


def test_default_cascade_opens_containers_output_first(resnet18):
    blocks = cascade_blocks(resnet18)
    assert blocks[:4] == ["fc", "layer4.1", "layer4.0", "layer3.1"]
    assert blocks[-2:] == ["bn1", "conv1"]


def test_spearman_and_sample_helpers():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 30)), rng.normal(size=(4, 30))
    b[1] = a[1] * 2 + 1
    a[2, :10] = 0  # ties
    expected = [spearmanr(a[i], b[i])[0] for i in range(4)]
    np.testing.assert_allclose(spearman_rows(a, b), expected, rtol=1e-10)
    assert np.isnan(spearman_rows(np.zeros((1, 5)), b[:1, :5]))[0]
    # Rows of different lengths (a padded text batch): each row ranked over its own entries only.
    mask = np.arange(30)[None] < np.array([[30], [12], [20], [3]])
    padded_a, padded_b = np.where(mask, a, 0.0), np.where(mask, b, 5.0)
    expected = [spearmanr(a[i, mask[i]], b[i, mask[i]])[0] for i in range(4)]
    np.testing.assert_allclose(spearman_rows(padded_a, padded_b, mask), expected, rtol=1e-10)
    s = sample_indices(100, 16, seed=1)
    assert len(s) == 16 and (np.diff(s) > 0).all() and (s == sample_indices(100, 16, seed=1)).all()
    assert sample_indices(5, 16).tolist() == [0, 1, 2, 3, 4]
