"""Model sources: one decorator registers a source; ``load_model`` asks each in turn.

A source claims a model spec (``resnet50``, ``demo-digits``, ``hf:org/name``, a folder) and
loads it into a ``LoadedModel``. ``xai models`` lists what each source can name.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from xai_cli.errors import UsageError, did_you_mean
from xai_cli.models.preprocess import Preprocess


@dataclass(frozen=True)
class ModelRequest:
    """What the user asked for.

    Attributes:
        spec: Model name or path as typed (``resnet50``, ``demo-digits``, ``hf:org/name``).
        weights: ``None`` (the source's default), ``"DEFAULT"``, ``"none"``, a torchvision
            weights enum name, or a path to a state dict.
        labels_file: Optional file of class labels, overriding the weights' own.
        trust_checkpoint: Allow unpickling full-model checkpoints and TorchScript.
        trust_remote_code: Allow Hugging Face repos to run their own code.
        allow_untrained_head: Load an HF checkpoint whose classification head is missing (random).
    """

    spec: str
    weights: str | None = None
    labels_file: Path | None = None
    trust_checkpoint: bool = False
    trust_remote_code: bool = False
    allow_untrained_head: bool = False


@dataclass
class LoadedModel:
    """A model ready to explain, in eval mode, with what the records need to identify it."""

    module: nn.Module
    name: str
    source: str
    weights: str  # identity: enum name, "none", or "file:<name> sha256:<hex>"
    random_init: bool
    labels: list[str] | None
    preprocess: Preprocess | None
    modality: Literal["image", "text"] = "image"
    extra: dict = field(default_factory=dict)  # e.g. the tokenizer of a text model
    warnings: list[str] = field(default_factory=list)  # for a person, reported by the runner (never printed here)

    def label(self, index: int) -> str | None:
        if self.labels is not None and 0 <= index < len(self.labels):
            return self.labels[index]
        return None

    def identity(self) -> dict:
        return {"name": self.name, "source": self.source, "weights": self.weights, "random_init": self.random_init}


@dataclass(frozen=True)
class ModelSource:
    name: str
    description: str
    claims: Callable[[str], bool]
    load: Callable[[ModelRequest], LoadedModel]
    names: Callable[[], list[str]]


_SOURCES: list[ModelSource] = []


def register_source(name: str, *, description: str, claims: Callable[[str], bool], names: Callable[[], list[str]]):
    """Register ``fn(request) -> LoadedModel`` as the loader of the specs that ``claims`` accepts."""

    def wrap(fn: Callable[[ModelRequest], LoadedModel]):
        _SOURCES.append(ModelSource(name, description, claims, fn, names))
        return fn

    return wrap


def sources() -> list[ModelSource]:
    _ensure_sources()
    return list(_SOURCES)


def list_models(pattern: str = "*") -> list[tuple[str, str]]:
    """(name, source) pairs whose name matches the shell-style ``pattern``, sorted.

    A pattern that is itself a model spec some source claims (a save_pretrained folder, a
    checkpoint, ``hf:ORG/NAME``) is listed as that model, with the source that would load it.
    """
    out = []
    for src in sources():
        out += [(n, src.name) for n in src.names() if fnmatch.fnmatchcase(n, pattern)]
    if not out and not any(c in pattern for c in "*?["):
        out = [(pattern, src.name) for src in sources() if src.claims(pattern)][:1]
    return sorted(out)


def load_model(request: ModelRequest, device: torch.device) -> LoadedModel:
    """Load the model ``request`` names onto ``device``, in eval mode, gradients off for weights.

    Raises:
        UsageError: No source knows the spec (with near-match suggestions).
        ModelLoadError: A source knows it but could not load it.
    """
    for src in sources():
        if src.claims(request.spec):
            loaded = src.load(request)
            module = loaded.module.eval().to(device)
            for p in module.parameters():
                p.requires_grad_(False)  # methods differentiate w.r.t. inputs/activations only
            loaded.module = module
            if loaded.random_init:
                loaded.warnings.insert(0, f"{loaded.name} has random weights ({loaded.weights}): its explanations "
                                          "mean nothing; use it to test the pipeline only")
            return loaded
    known = [n for src in sources() for n in src.names()]
    raise UsageError(
        f"unknown model {request.spec!r}",
        did_you_mean(request.spec, known) or "run 'xai models' to list the model names",
    )


def _ensure_sources() -> None:
    # Importing the source modules runs their @register_source decorators.
    from xai_cli.models import embedded, torchvision_models  # noqa: F401
    try:
        from xai_cli.models import huggingface  # noqa: F401
    except ImportError:  # the [hf] extra is not installed
        pass
