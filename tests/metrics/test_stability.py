"""Max-sensitivity against Captum's sensitivity_max and Quantus 0.6.0's MaxSensitivity on the same noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import images
from xai_cli.metrics.stability import max_sensitivity, uniform_noise


def saliency(model, x, targets):
    with torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        model(x).gather(1, targets.view(-1, 1)).sum().backward()
    return (x.grad * x).abs().amax(1).detach()  # (N, H, W): gradient x input, varies with the noise


@pytest.fixture
def setup(one_conv):
    x, targets = images(4, 10, seed=3), torch.tensor([0, 1, 2, 1])
    noise = uniform_noise(tuple(x.shape), 10, 0.02, seeds=[0, 1, 2, 3])  # (N, K, C, H, W)
    return one_conv, x, targets, noise


def test_is_captum_sensitivity_max(setup):
    from captum.metrics import sensitivity_max

    model, x, targets, noise = setup

    def perturb(inputs, radius):
        return inputs + noise.reshape(-1, *x.shape[1:])  # Captum repeats each input K times in a row

    def explain(inputs, target):  # Captum hands a tuple of inputs to the first call, wants a tuple back
        return (saliency(model, inputs[0], target),) if isinstance(inputs, tuple) else saliency(model, inputs, target)

    ref = sensitivity_max(explain, x, perturb_func=perturb,
                          target=targets, n_perturb_samples=10)
    ours = max_sensitivity(saliency, model, x, targets, noise=noise)
    np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-5)


def test_is_quantus_max_sensitivity(setup):
    quantus = pytest.importorskip("quantus")
    model, x, targets, noise = setup
    steps = iter(range(10))

    def perturb(arr, indices, **kwargs):
        return arr + noise[:, next(steps)].reshape(len(arr), -1).numpy()

    metric = quantus.MaxSensitivity(nr_samples=10, perturb_func=perturb, disable_warnings=True)
    ref = metric(model=model, x_batch=x.numpy(), y_batch=targets.numpy(), a_batch=None, channel_first=True,
                 explain_func=lambda model, inputs, targets, **kw: saliency(
                     model, torch.as_tensor(inputs), torch.as_tensor(targets)).numpy()[:, None], device="cpu")
    np.testing.assert_allclose(max_sensitivity(saliency, model, x, targets, noise=noise), ref, rtol=1e-4)


@pytest.mark.parametrize("chunk", [1, 7])
def test_does_not_depend_on_the_chunk_and_seeds_repeat(setup, chunk):
    model, x, targets, _ = setup
    ref = max_sensitivity(saliency, model, x, targets, seeds=[4, 5, 6, 7], inputs_per_explain=64)
    out = max_sensitivity(saliency, model, x, targets, seeds=[4, 5, 6, 7], inputs_per_explain=chunk)
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    other = max_sensitivity(saliency, model, x, targets, seeds=[0, 5, 6, 7])
    assert other[0] != ref[0]
    np.testing.assert_allclose(other[1:], ref[1:], rtol=1e-6)
    noise = uniform_noise((2, 3, 4, 4), 10, 0.02)
    assert noise.shape == (2, 10, 3, 4, 4) and noise.abs().max() <= 0.02
