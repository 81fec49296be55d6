"""Numeric precision of the model's own work: ``fp32`` (default) or ``bf16``.

With ``bf16``, every call of the model runs under ``torch.autocast(dtype=torch.bfloat16)``
(CPUs with AMX/AVX-512 BF16, and GPUs) and returns float32 outputs; convolutional models are
kept ``channels_last``. Only the model's forward is autocast: the backward pass follows the
forward's dtypes, the gradient at the float32 input is float32, and everything a method does
around the model (CAM weighting, IG's quadrature, LIME's regression) and every statistic
stays float32. Fidelity against fp32 is measured in bench/fidelity.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

from xai_cli.config import PRECISIONS  # noqa: F401  (re-exported)


def wants_channels_last(model: nn.Module, precision: str) -> bool:
    """channels_last pays for convolutions under bf16 (oneDNN/cuDNN's native layout)."""
    return precision == "bf16" and any(isinstance(m, nn.Conv2d) for m in model.modules())


def prepare_model(model: nn.Module, precision: str) -> nn.Module:
    """Put a convolutional model in channels_last for bf16 (in place; values unchanged)."""
    if wants_channels_last(model, precision):
        model.to(memory_format=torch.channels_last)
    return model


def prepare_inputs(x: torch.Tensor, precision: str) -> torch.Tensor:
    """Images (N, C, H, W) as channels_last under bf16; anything else as it is."""
    if precision == "bf16" and x.dim() == 4 and x.is_floating_point():
        return x.contiguous(memory_format=torch.channels_last)
    return x


@contextmanager
def autocast_model(model: nn.Module, precision: str, device: torch.device) -> Iterator[None]:
    """During the block, ``model(...)`` runs under bf16 autocast and returns float32 tensors.

    The forward is wrapped on the instance (not the class), so hooks on its layers, layer
    names and every method's own ``self.model(x)`` calls are unchanged; the original forward
    is restored on exit, also after an error.
    """
    if precision == "fp32":
        yield
        return
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    own = model.__dict__.get("forward")  # an instance-level forward someone set before us
    inner = own if own is not None else model.forward
    device_type = "cuda" if device.type == "cuda" else "cpu"

    def forward(*args, **kwargs):
        with torch.autocast(device_type, dtype=torch.bfloat16):
            out = inner(*args, **kwargs)
        return _to_float(out)

    model.forward = forward
    try:
        yield
    finally:
        if own is not None:
            model.forward = own
        else:
            del model.forward


def autocast_calls(fn: Callable, precision: str, device: torch.device) -> Callable:
    """``fn(model, ...)`` with the model it is given under :func:`autocast_model` during each call.

    For callables handed several models, such as the explain callable of the randomisation
    test: its re-initialised deep copies must be wrapped themselves (a copy made while the
    original is wrapped would keep calling the original's forward).
    """
    if precision == "fp32":
        return fn

    def call(model: nn.Module, *args, **kwargs):
        with autocast_model(model, precision, device):
            return fn(model, *args, **kwargs)

    return call


def _to_float(out):
    """bf16 tensors in a model's output (a tensor, tuple, list or dict/ModelOutput) -> float32."""
    if isinstance(out, torch.Tensor):
        return out.float() if out.dtype == torch.bfloat16 else out
    if isinstance(out, Mapping) and hasattr(out, "__setitem__"):
        for k in list(out.keys()):
            out[k] = _to_float(out[k])
        return out
    if isinstance(out, tuple):
        return type(out)(*map(_to_float, out)) if hasattr(out, "_fields") else tuple(map(_to_float, out))
    if isinstance(out, list):
        return [_to_float(v) for v in out]
    return out


def precision_warning(precision: str, device: torch.device) -> str | None:
    """A line for the person when bf16 is asked of hardware without native bf16 (it runs, slowly)."""
    if precision != "bf16":
        return None
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
    else:
        ok = bool(getattr(torch.backends.mkldnn, "is_available", lambda: False)()) and bool(
            torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return None if ok else f"{{opt:precision}} bf16: this {device.type.upper()} has no native bf16, so it is emulated and slower than fp32"
