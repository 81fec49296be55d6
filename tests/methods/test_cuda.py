"""Every registered image method gives the CPU's maps on CUDA, at fp32 and under bf16 autocast
(issue 14, goal 6). Skipped without CUDA; run them on a GPU box with ``pytest -m gpu``."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from tests.conftest import images
from tests.methods.test_contract import IMAGE_METHODS, _cheap, _model_for
from xai_cli.core.precision import autocast_model, prepare_inputs
from xai_cli.methods.registry import all_methods

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_cuda_gives_the_cpu_maps(name, one_conv, tiny_vit):
    cls = all_methods()[name]
    model, size = _model_for(cls, one_conv, tiny_vit)
    x, t, seeds = images(3, size, seed=2), torch.tensor([0, 1, 2]), [4, 5, 6]
    cpu = cls(model, _cheap(cls)).explain(x, t, seeds).maps
    gpu_model = copy.deepcopy(model).cuda()
    gpu = cls(gpu_model, _cheap(cls)).explain(x.cuda(non_blocking=True), t.cuda(), seeds).maps
    assert gpu.is_cuda and gpu.dtype == torch.float32
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-4)

    bf16_model = copy.deepcopy(model).cuda()
    with autocast_model(bf16_model, "bf16", torch.device("cuda")):
        bf16 = cls(bf16_model, _cheap(cls)).explain(prepare_inputs(x.cuda(), "bf16"), t.cuda(), seeds).maps
    assert bf16.dtype == torch.float32
    for a, b in zip(cpu.numpy(), bf16.cpu().numpy()):
        if a.std() > 0:
            assert np.corrcoef(a.ravel(), b.ravel())[0, 1] >= 0.95, name  # fixture models are random: looser than 0.99
