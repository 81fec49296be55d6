"""Fixtures of the text tests: the shipped demo-text model, one torch thread."""

from __future__ import annotations

import pytest
import torch

from xai_cli.models.registry import LoadedModel, ModelRequest, load_model

CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The text models here are tiny (hidden size 16-32): a second thread only adds synchronisation,
    which on a busy machine costs more than the matmuls. Restored after each module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def demo_text() -> LoadedModel:
    return load_model(ModelRequest("demo-text"), CPU)
