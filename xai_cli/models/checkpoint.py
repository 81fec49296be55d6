"""Reading weights from local files, safely.

Never unpickles by default: ``.safetensors`` is read with safetensors, ``.pt``/``.pth``/``.bin``
with ``torch.load(weights_only=True)``. A full pickled model or TorchScript needs
``--trust-checkpoint``, because unpickling runs arbitrary code.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import torch
from torch import nn

from xai_cli.errors import ModelLoadError

_TRUST_HINT = "re-save it with torch.save(model.state_dict(), path) or as .safetensors, or allow it with {opt:trust_checkpoint} if you trust where it came from"


def file_identity(path: Path) -> str:
    """``file:<name> sha256:<hex>`` — how a local checkpoint is named in records."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return f"file:{path.name} sha256:{h.hexdigest()}"


def read_checkpoint(path: Path, *, trust: bool = False) -> dict[str, torch.Tensor] | nn.Module:
    """Read a state dict (or, with ``trust``, a whole module) from ``path``.

    Raises:
        ModelLoadError: Missing file, unreadable file, or pickled code without ``trust``.
    """
    if not path.is_file():
        raise ModelLoadError(f"weights file not found: {path}", "give the path of a .pt, .pth or .safetensors file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as e:  # safetensors raises its own SafetensorError on bad headers
            raise ModelLoadError(f"cannot read {path.name}: {e}", "is it a complete .safetensors file?") from e
    if _is_torchscript(path):
        if not trust:
            raise ModelLoadError(f"{path.name} is a TorchScript archive, which runs code when loaded", _TRUST_HINT)
        return torch.jit.load(str(path), map_location="cpu")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not trust:
            raise ModelLoadError(f"{path.name} holds pickled Python objects; refusing to unpickle it", _TRUST_HINT) from e
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ModelLoadError(f"cannot read {path.name}: {type(e).__name__}: {e}", "is it a complete PyTorch checkpoint?") from e
    if isinstance(obj, nn.Module):
        return obj
    return _unwrap_state_dict(obj, path)


def _is_torchscript(path: Path) -> bool:
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") or n.endswith("/code/") or "/code/" in n for n in z.namelist())


def _unwrap_state_dict(obj, path: Path) -> dict[str, torch.Tensor]:
    # Training scripts often save {"state_dict": ..., "epoch": ...} or {"model": ...}.
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model", "net"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelLoadError(f"{path.name} is not a state dict of tensors", "save model.state_dict(), not other objects")
    # DataParallel / DDP prefix
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
    return obj


def head_size(state: dict[str, torch.Tensor], model: nn.Module) -> int | None:
    """The number of classes a state dict's last Linear layer outputs, if it differs from ``model``'s."""
    last = None
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            last = name
    if last is None or f"{last}.weight" not in state:
        return None
    n = state[f"{last}.weight"].shape[0]
    return n if n != model.get_submodule(last).out_features else None


def load_into(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """``load_state_dict(strict=True)`` with a one-line error naming the first mismatches."""
    result = None
    try:
        result = model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1:3]
        raise ModelLoadError(
            f"{path.name} does not fit this architecture: {' '.join(s.strip() for s in first)[:300]}",
            "check that {opt:model} names the architecture the weights were trained with",
        ) from e
    return result
