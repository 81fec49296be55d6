"""torchvision classification models, by name, with their weights or a local checkpoint."""

from __future__ import annotations

import contextlib
import io
import os
from functools import cache
from pathlib import Path

import torch
import torchvision
from torch import nn

from xai_cli.errors import ModelLoadError, UsageError, did_you_mean
from xai_cli.models.checkpoint import file_identity, head_size, load_into, read_checkpoint
from xai_cli.models.labels import check_labels, read_labels
from xai_cli.models.preprocess import Preprocess
from xai_cli.models.registry import LoadedModel, ModelRequest, register_source


@cache
def _names() -> list[str]:
    # module=torchvision.models lists the classification models only (no detection/segmentation).
    return torchvision.models.list_models(module=torchvision.models)


def _claims(spec: str) -> bool:
    return spec.removeprefix("torchvision:") in _names()


def offline() -> bool:
    """True when the user said not to touch the network (XAI_OFFLINE, HF_HUB_OFFLINE)."""
    return any(os.environ.get(v, "") not in ("", "0", "false") for v in ("XAI_OFFLINE", "HF_HUB_OFFLINE"))


def _weights_enum(name: str, choice: str):
    enum = torchvision.models.get_model_weights(name)
    if choice.upper() == "DEFAULT":
        return enum.DEFAULT
    key = choice.split(".")[-1]
    if key in enum.__members__:
        return enum[key]
    raise UsageError(
        f"{name} has no weights {choice!r}",
        f"choose one of: DEFAULT, none, {', '.join(enum.__members__)}, or a path to a state dict",
    )


def _download(name: str, weights) -> dict[str, torch.Tensor]:
    filename = weights.url.rsplit("/", 1)[-1]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    hint = (f"use {{opt:weights}} none for random weights (to test the pipeline), {{opt:weights}} PATH for a local "
            f".pt/.safetensors state dict, or copy {filename} into {cached.parent}")
    if not cached.exists() and offline():
        raise ModelLoadError(f"{name} weights {weights} are not cached and the network is off", hint)
    try:
        # torch.hub writes 'Downloading: "https://..."' to stdout even with progress=False: stdout is for
        # results (--format json), and above an offline error it reads as if the download had started.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as e:  # URLError, socket errors, hash mismatch: all mean "no usable weights"
        why = " ".join(str(e).split())[:200]  # one line
        raise ModelLoadError(f"{name} weights {weights} are not cached and could not be downloaded "
                             f"({type(e).__name__}: {why})", hint) from e


@register_source(
    "torchvision",
    description="torchvision classification models by name (weights: DEFAULT, none, an enum name, or a file)",
    claims=_claims,
    names=_names,
)
def load_torchvision(req: ModelRequest) -> LoadedModel:
    name = req.spec.removeprefix("torchvision:")
    choice = req.weights or "DEFAULT"
    labels = read_labels(req.labels_file) if req.labels_file else None
    if choice.lower() == "none":
        model = torchvision.models.get_model(name, weights=None)
        default = _default_preprocess(name)
        return LoadedModel(model, name, "torchvision", "none", True, check_labels(labels, _num_classes(model), "{opt:labels}"), default)

    path = Path(choice).expanduser()
    if path.suffix in (".pt", ".pth", ".bin", ".safetensors", ".ckpt") or path.exists():
        return _from_file(name, path, labels, req.trust_checkpoint)

    if name not in _names():
        raise UsageError(f"unknown torchvision model {name!r}", did_you_mean(name, _names()))
    weights = _weights_enum(name, choice)
    model = torchvision.models.get_model(name, weights=None)
    model.load_state_dict(_download(name, weights))
    labels = labels or list(weights.meta.get("categories") or []) or None
    return LoadedModel(
        model, name, "torchvision", f"{type(weights).__name__}.{weights.name}", False,
        check_labels(labels, _num_classes(model), "{opt:labels}"), Preprocess.from_torchvision(weights.transforms()),
    )


def _from_file(name: str, path: Path, labels: list[str] | None, trust: bool) -> LoadedModel:
    obj = read_checkpoint(path, trust=trust)
    if isinstance(obj, nn.Module):
        model = obj
    else:
        model = torchvision.models.get_model(name, weights=None)
        classes = head_size(obj, model)
        if classes is not None:  # fine-tuned head: rebuild with the checkpoint's class count
            model = torchvision.models.get_model(name, weights=None, num_classes=classes)
        load_into(model, obj, path)
    loaded = LoadedModel(model, name, "torchvision", file_identity(path), False,
                         check_labels(labels, _num_classes(model), "{opt:labels}"), _default_preprocess(name))
    if labels is None:
        loaded.warnings.append(f"no labels for {path.name}: classes are shown by index (give {{opt:labels}} FILE to name them)")
    return loaded


def _default_preprocess(name: str) -> Preprocess:
    """The preprocessing of the model's DEFAULT weights (known without downloading them)."""
    try:
        return Preprocess.from_torchvision(torchvision.models.get_model_weights(name).DEFAULT.transforms())
    except Exception:  # a model without published weights: ImageNet's usual steps
        return Preprocess()


def _num_classes(model: nn.Module) -> int | None:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None
