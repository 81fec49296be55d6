"""Fixtures of the text tests: the shipped demo-text model, one torch thread."""

from __future__ import annotations

import pytest
import torch

from xai_cli.models.registry import LoadedModel, ModelRequest, load_model

CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def _text_one_thread(one_thread):
    """Every text test runs on one thread (see ``one_thread`` in tests/conftest.py)."""
    yield


@pytest.fixture(scope="session")
def demo_text() -> LoadedModel:
    return load_model(ModelRequest("demo-text"), CPU)
