"""Expected gradients: shap.GradientExplainer in expectation, efficiency, seeds and batch knobs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import frozen, images
from xai_cli.methods._expected_gradients import expected_gradients


def test_agrees_with_shap_gradient_explainer_in_expectation(one_conv):
    import shap

    x, background = images(2, 8, seed=3), images(5, 8, seed=4)
    phis, ranks = shap.GradientExplainer(one_conv, background).shap_values(x, nsamples=2000, ranked_outputs=1, rseed=0)
    targets = torch.as_tensor(np.asarray(ranks))[:, 0].long()
    theirs = torch.as_tensor(np.asarray(phis))[..., 0]  # (N, C, H, W) for each item's top class
    ours, details = expected_gradients(one_conv, x, targets, background, 2000, [1, 2], internal_batch_size=500)
    for i in range(2):
        corr = np.corrcoef(ours[i].flatten().numpy(), theirs[i].flatten().numpy())[0, 1]
        assert corr >= 0.95, corr
        # Both estimate the same expectation: the sums agree within their Monte Carlo error.
        assert abs(float(theirs[i].sum()) - details[i]["sum_attributions"]) < 6 * details[i]["sum_std_error"]


def test_efficiency_holds_in_expectation(one_conv):
    x, background = images(3, 8, seed=5), images(4, 8, seed=6)
    _, details = expected_gradients(one_conv, x, torch.tensor([0, 1, 2]), background, 2000, [1, 2, 3], 500)
    for d in details:
        assert abs(d["delta"]) < 4 * d["sum_std_error"], d
    json.dumps(details)


def test_exact_on_a_linear_model():
    # f(x) = w . x + c: every sample's gradient is w, so phi = w * (x - mean of the drawn rows).
    torch.manual_seed(0)
    model = frozen(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3)))
    x, background = images(2, 4), images(1, 4, seed=1)
    t = torch.tensor([2, 0])
    attrs, details = expected_gradients(model, x, t, background, 5, [0, 1], 3)
    torch.testing.assert_close(attrs, model[1].weight[t].view(2, 3, 4, 4) * (x - background), rtol=1e-5, atol=1e-6)
    assert max(d["efficiency_error"] for d in details) < 1e-4


def test_batch_composition_and_internal_batch_size_do_not_matter(one_conv):
    x, background, t, seeds = images(4, 8, seed=7), images(6, 8, seed=8), torch.tensor([2, 0, 1, 2]), [11, 12, 13, 14]
    whole, details = expected_gradients(one_conv, x, t, background, 50, seeds, 64)
    parts = torch.cat([expected_gradients(one_conv, x[i:i + 1], t[i:i + 1], background, 50, seeds[i:i + 1], 64)[0]
                       for i in range(4)])
    torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-7)
    for size in (1, 7):
        other, other_details = expected_gradients(one_conv, x, t, background, 50, seeds, size)
        torch.testing.assert_close(other, whole, rtol=1e-5, atol=1e-7)
        assert [round(d["sum_std_error"], 6) for d in other_details] == [round(d["sum_std_error"], 6) for d in details]


def test_determined_by_the_seed(one_conv):
    x, background, t = images(2, 8, seed=9), images(3, 8, seed=10), torch.tensor([0, 1])
    first, _ = expected_gradients(one_conv, x, t, background, 20, [5, 6], 64)
    again, _ = expected_gradients(one_conv, x, t, background, 20, [5, 6], 64)
    other, _ = expected_gradients(one_conv, x, t, background, 20, [5, 7], 64)
    assert torch.equal(first, again)
    assert torch.equal(other[0], first[0]) and not torch.equal(other[1], first[1])


@pytest.mark.parametrize("kwargs", [{"n_samples": 0}, {"internal_batch_size": 0}, {"seeds": [1]},
                                    {"background": images(2, 6)}])
def test_bad_arguments(one_conv, kwargs):
    args = {"model": one_conv, "inputs": images(2, 8), "targets": torch.tensor([0, 1]), "background": images(2, 8),
            "n_samples": 4, "seeds": [1, 2], "internal_batch_size": 4}
    with pytest.raises(ValueError):
        expected_gradients(**{**args, **kwargs})
