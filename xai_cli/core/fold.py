"""A copy of the model for forward-only evaluation: every BatchNorm folded into the convolution
that feeds it, and under bf16 the convolutions' weights stored in bf16 once.

The methods that only read the model's outputs, hundreds of forward passes per input (LIME,
KernelSHAP, occlusion, RISE, Score-CAM's channel scores), and the audit's metrics that do
(deletion, insertion, ROAD, AOPC) run that copy (``forward_only``);
every other use of the model (gradients, hooks on named layers, activations, the randomisation
test) keeps the model as loaded. An inference-mode BatchNorm is an affine map of its input, so
folding it into the convolution before it gives the same function, computed once per channel
instead of once per pixel (outputs equal to float32 rounding: 2e-6 of logits up to 4.7 on
resnet18).

Measured on resnet18 224², batch 8, one thread (AMD EPYC, 2 cores): the forward pass fp32
26.1 -> 29.0 img/s (1.11x); bf16 autocast 53.9 -> 57.3 img/s (1.06x), of which folding is 1.02x
and the weights cast to bf16 once (autocast casts them again at every call) the rest. Whole
methods (bench/fold_bench.py, bench/results/fold-2026-11-24.md): KernelSHAP and LIME 1.10-1.11x
at fp32, 1.08-1.09x at bf16, in CPU time.

The structure comes from ``torch.fx``'s symbolic trace: a BatchNorm is folded only where its
sole input is a convolution's output that nothing else reads. A model fx cannot trace, or one
with nothing to fold, is evaluated as it is.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.fusion import fuse_conv_bn_eval

from xai_cli.core.precision import active_arithmetic, autocast_model, channels_last_on

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# model -> (its parameters' identity and versions, {arithmetic: the copy, or None: nothing to fold})
_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@contextmanager
def forward_only(model: nn.Module, device: torch.device) -> Iterator[Callable[..., torch.Tensor]]:
    """What to call during the block for ``model``'s outputs alone (no gradients, no hooks): its
    forward-only copy at the arithmetic the model runs at now, under autocast like the model, or
    the model itself where there is no copy; a convolutional net on the CPU gets its batches of
    images channels_last (``_channels_last``)."""
    arithmetic = active_arithmetic(model)
    fast = forward_copy(model, arithmetic)
    target = model if fast is None else fast
    call = _channels_last(target) if channels_last_on(model, device) else target
    if fast is None:
        yield call
        return
    with autocast_model(fast, arithmetic, device):
        yield call


def _channels_last(module: nn.Module) -> Callable[..., torch.Tensor]:
    """``module`` called with its (N, C, H, W) float arguments channels_last: oneDNN's native
    layout on the CPU. Occlusion's, RISE's and the audit's batches were built NCHW, where the
    max-pool of resnet18 alone took 53 ms per batch of 8 (3.3 channels_last): the audit's
    forward over 64 rows (fp32, 1 thread) 2.83 -> 2.32 s, probabilities equal to 2e-6. The
    gradient, LIME and SHAP batches already were (``methods._gradients.batch_layout``)."""
    def call(*args, **kwargs):
        return module(*(a.contiguous(memory_format=torch.channels_last)
                        if isinstance(a, torch.Tensor) and a.dim() == 4 and a.is_floating_point() else a
                        for a in args), **kwargs)

    return call


def forward_copy(model: nn.Module, arithmetic: str) -> nn.Module | None:
    """The model's forward-only copy for ``arithmetic`` ("fp32" or a bf16 one), made once and
    kept while the model's parameters are unchanged; None where there is nothing to fold, or
    the model (any of its layers) is in training mode, or it cannot be copied or traced: use
    ``model`` itself then.

    The copy carries none of the model's hooks or wrappers: run it under
    ``precision.autocast_model`` for bf16 like the model. Only under "bf16" (classifier head
    in fp32, every other layer under autocast) are its convolutions' weights stored in bf16;
    "fp32" and "bf16-hires-fp32" share one float32 copy. A parameter changed in place through
    ``.data`` (not by ``load_state_dict`` or an optimiser) is not noticed.
    """
    if not any(isinstance(m, _NORMS) for m in model.modules()) or any(m.training for m in model.modules()):
        return None  # (checked before any copy: a transformer without BatchNorm is never copied)
    key = _fingerprint(model)
    held = _COPIES.get(model)
    if held is None or held[0] != key:
        held = (key, {})
        _COPIES[model] = held
    copies, kind = held[1], "bf16" if arithmetic == "bf16" else "fp32"
    if kind not in copies:
        try:
            folded = _folded(model)
        except Exception:  # noqa: BLE001 - a model deepcopy or fusion refuses (a non-leaf tensor kept
            folded = None  # as an attribute, an unusual conv): evaluated as it is, as before folding
        if folded is not None and kind == "bf16":
            _bf16_convs(folded)
        copies[kind] = folded
    return copies[kind]


def _fingerprint(model: nn.Module) -> tuple:
    """Which tensors the model's parameters and buffers are, and their in-place versions."""
    return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))


def _folded(model: nn.Module) -> nn.Module | None:
    clone = _bare_copy(model)
    pairs = _conv_norm_pairs(clone)
    if not pairs:
        return None
    for conv_name, norm_name in pairs:
        conv, norm = clone.get_submodule(conv_name), clone.get_submodule(norm_name)
        _replace(clone, conv_name, fuse_conv_bn_eval(conv, norm))
        _replace(clone, norm_name, nn.Identity())
    return clone.eval()


def _conv_norm_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(convolution, BatchNorm) module names where the norm's only input is that convolution's
    output and nothing else reads it, each module called once in the forward."""
    try:
        import torch.fx

        graph = torch.fx.Tracer().trace(model)
    except Exception:  # noqa: BLE001 - any model fx cannot trace (control flow, HF's checks): no folding
        return []
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in graph.nodes:
        norm = modules.get(node.target) if node.op == "call_module" else None
        if not isinstance(norm, _NORMS) or not norm.track_running_stats or norm.running_var is None:
            continue
        source = node.args[0] if len(node.args) == 1 and not node.kwargs else None
        conv = modules.get(source.target) if isinstance(source, torch.fx.Node) and source.op == "call_module" else None
        if (isinstance(conv, _CONVS) and not parametrize.is_parametrized(conv) and len(source.users) == 1
                and calls[source.target] == 1 and calls[node.target] == 1):
            pairs.append((source.target, node.target))
    return pairs


def _bare_copy(model: nn.Module) -> nn.Module:
    """A deep copy without instance-level forwards or hooks (those of a wrapper active now)."""
    clone = copy.deepcopy(model)
    for m in clone.modules():
        m.__dict__.pop("forward", None)
        m._forward_pre_hooks.clear()
        m._forward_hooks.clear()
        m._backward_hooks.clear()
        m._backward_pre_hooks.clear()
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


def _bf16_convs(model: nn.Module) -> None:
    """Store the convolutions' weights in bf16 (channels-last for 2-D ones), in place."""
    for m in model.modules():
        if isinstance(m, _CONVS):
            m.to(torch.bfloat16)
            if isinstance(m, nn.Conv2d):
                m.to(memory_format=torch.channels_last)


def _replace(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, module)
