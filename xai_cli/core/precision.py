"""Numeric precision of the model's own work: ``fp32`` (default) or ``bf16``.

With ``bf16``, a method's calls of the model run under ``torch.autocast(dtype=torch.bfloat16)``
(CPUs with AMX/AVX-512 BF16, and GPUs) and return float32 outputs; image inputs are passed
``channels_last``. The backward pass follows the forward's dtypes, the gradient at the float32
input is float32, and everything a method does around the model (CAM weighting, IG's
quadrature, LIME's regression) and every statistic stays float32.

Not every method keeps its maps within issue 14's bounds under bf16 (per-input Pearson r >= 0.99
of the fp32 map, IG completeness < 5 %, bench/fidelity.py), so each method declares how it
runs when bf16 is asked for (``Method.bf16``), one of ``ARITHMETIC``'s keys:

- ``bf16``: the whole model under autocast, except its classifier head (the last ``nn.Linear``),
  which runs in fp32, so logits are never rounded to bf16's 8 bits: KernelSHAP's map went from
  r 0.987 to 0.998 with it, at no measured cost (resnet18 224², 1 thread: fwd+bwd 14.7 img/s
  against 15.2 all-bf16, 7.2 fp32; bench/results/fidelity-cpu-medium-2026-11-24-policy.md).
- ``bf16-hires-fp32``: as ``bf16``, and the layers that see the input at half its side or more
  (a ResNet's stem: conv1, bn1, relu, maxpool) run in fp32 too. Input gradients are decided by
  the ReLU and max-pool switches, most finely in the stem, and bf16's rounding flips some: IG went
  from r 0.953 to 0.9986 with the stem in fp32 (0.9993 with the first stage too, but 1.48x the
  fp32 speed instead of 1.85x), guided backprop from 0.987 to 0.9998.
- ``fp32``: no autocast at all (the map is bitwise the fp32 run's).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

from xai_cli.config import PRECISIONS  # noqa: F401  (re-exported)

# What a map's ``precision`` in the records means (a method's arithmetic under the run's precision).
ARITHMETIC = {
    "fp32": "float32 throughout",
    "bf16": "bf16 autocast; the classifier head (last nn.Linear) in fp32",
    "bf16-hires-fp32": "bf16 autocast; the layers at half the input's side or more and the classifier head in fp32",
}
_ACTIVE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> the arithmetic it runs at now
HIRES = 2  # under bf16-hires-fp32, a layer whose 4-D input is at least the model input's side / HIRES runs in fp32


def arithmetic(asked: str, policy: str) -> str:
    """What a method whose bf16 policy is ``policy`` runs at when the run asks for ``asked``."""
    if asked not in PRECISIONS or policy not in ARITHMETIC:
        raise ValueError(f"precision {asked!r} / policy {policy!r}: use {PRECISIONS} / {tuple(ARITHMETIC)}")
    return "fp32" if asked == "fp32" else policy


def wants_channels_last(model: nn.Module, precision: str) -> bool:
    """channels_last is oneDNN's/cuDNN's native layout for convolutions under bf16."""
    return precision != "fp32" and any(isinstance(m, nn.Conv2d) for m in model.modules())


def channels_last_on(model: nn.Module, device: torch.device) -> bool:
    """A convolutional net on the CPU runs its batches of images fastest channels_last, at any
    precision (oneDNN's native layout; ``methods._gradients.batch_layout`` has the figures)."""
    return device.type == "cpu" and any(isinstance(m, nn.Conv2d) for m in model.modules())


def prepare_model(model: nn.Module, precision: str) -> nn.Module:
    """Put a convolutional model's weights in channels_last for bf16 (in place; values unchanged).

    The engine does not: channels_last inputs are as fast (see ``prepare_inputs``) and keep the
    weights usable by a method that runs in fp32. Kept for callers that own a bf16-only copy.
    """
    if wants_channels_last(model, precision):
        model.to(memory_format=torch.channels_last)
    return model


def prepare_inputs(x: torch.Tensor, precision: str) -> torch.Tensor:
    """Images (N, C, H, W) as channels_last under bf16; anything else as it is.

    The weights stay as built: channels_last inputs alone get oneDNN's bf16 kernels (fwd+bwd
    15.2 img/s, 14.9 with channels_last weights too: same), and an fp32 method in a bf16 run
    then gives exactly its fp32 map.
    """
    if precision != "fp32" and isinstance(x, torch.Tensor) and x.dim() == 4 and x.is_floating_point():
        return x.contiguous(memory_format=torch.channels_last)
    return x


@contextmanager
def autocast_model(model: nn.Module, precision: str, device: torch.device) -> Iterator[None]:
    """During the block, ``model(...)`` runs at ``precision`` (a key of ``ARITHMETIC``) and
    returns float32 tensors.

    The forward is wrapped on the instance (not the class), so hooks on its layers, layer
    names and every method's own ``self.model(x)`` calls are unchanged; the original forward
    and every hook added here are removed on exit, also after an error.
    """
    if precision == "fp32":
        yield
        return
    if precision not in ARITHMETIC:
        raise ValueError(f"precision {precision!r}: use one of {', '.join(ARITHMETIC)}")
    own = model.__dict__.get("forward")  # an instance-level forward someone set before us
    inner = own if own is not None else model.forward
    device_type = "cuda" if device.type == "cuda" else "cpu"
    side = [0]  # the current call's input side, for the hires rule

    def forward(*args, **kwargs):
        first = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None)
        side[0] = max(first.shape[-2:]) if first is not None and first.dim() == 4 else 0
        with torch.autocast(device_type, dtype=torch.bfloat16):
            out = inner(*args, **kwargs)
        return _to_float(out)

    islands = fp32_islands(model, precision, lambda: side[0])
    handles = [h for m, wants in islands for h in _fp32_hooks(m, wants, device_type)]
    model.forward = forward
    outer = _ACTIVE.get(model)
    _ACTIVE[model] = precision
    try:
        yield
    finally:
        if outer is None:
            _ACTIVE.pop(model, None)
        else:
            _ACTIVE[model] = outer
        for h in handles:
            h.remove()
        if own is not None:
            model.forward = own
        else:
            del model.forward


def active_arithmetic(model: nn.Module) -> str:
    """The arithmetic ``model`` runs at now: that of the innermost :func:`autocast_model` block
    around it, else "fp32"."""
    return _ACTIVE.get(model, "fp32")


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


def fp32_islands(model: nn.Module, precision: str, input_side: Callable[[], int]
                 ) -> list[tuple[nn.Module, Callable[[tuple], bool]]]:
    """The modules that leave autocast at ``precision``, each with a test of its call's inputs."""
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1:]  # the classifier head
    out: list[tuple[nn.Module, Callable[[tuple], bool]]] = [(m, lambda args: True) for m in head]
    if precision == "bf16-hires-fp32":
        def hires(args) -> bool:
            x = args[0] if args else None
            return (isinstance(x, torch.Tensor) and x.dim() == 4 and input_side() > 0
                    and max(x.shape[-2:]) * HIRES >= input_side())

        out += [(m, hires) for m in model.modules() if not next(m.children(), None) and m not in head]
    return out


def _fp32_hooks(module: nn.Module, wants: Callable[[tuple], bool], device_type: str) -> list:
    """Hooks that run ``module`` outside autocast, on float32 inputs, when ``wants(args)``.

    The pre-hook turns autocast off and the forward hook back on; after an error inside the
    module, the model-level ``torch.autocast`` block restores the state on its way out.
    """
    stack: list[bool] = []

    def pre(_m, args):
        off = torch.is_autocast_enabled(device_type) and wants(args)
        stack.append(off)
        if not off:
            return None
        torch.set_autocast_enabled(device_type, False)
        return tuple(a.float() if isinstance(a, torch.Tensor) and a.dtype == torch.bfloat16 else a for a in args)

    def post(_m, _args, _out):
        if stack and stack.pop():
            torch.set_autocast_enabled(device_type, True)

    return [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]

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


def policy_warning(precision: str, methods) -> str | None:
    """A line naming the methods that do not run plain bf16 in a bf16 run, and why (None: all do).

    Args:
        precision: The precision asked for the run.
        methods: The run's ``Method`` instances (their ``bf16_policy()``).
    """
    if precision == "fp32":
        return None
    parts = []
    for m in methods:
        policy, why = m.bf16_policy()
        if policy == "fp32":
            parts.append(f"{m.name} runs in fp32 ({why})")
        elif policy != "bf16":
            parts.append(f"{m.name} keeps its high-resolution layers in fp32 ({why})")
    if not parts:
        return None
    return (f"{{opt:precision}} {precision}: " + "; ".join(parts)
            + "; each map's record says its precision (bench/fidelity.py measures the policy)")
