"""The method registry: one decorator adds a method to ``--method``, ``xai methods`` and the tests.

Modelled on timm's ``@register_model``: nothing central is edited to add a method.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xai_cli.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from xai_cli.methods.base import Method

_METHODS: dict[str, dict[str, type[Method]]] = {}  # modality -> name -> class


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: register ``cls`` under ``cls.name`` for each of ``cls.modalities``.

    One name may have one class per modality (``ig`` for images and ``ig`` for text), each
    in its own file.
    """
    for modality in cls.modalities:
        table = _METHODS.setdefault(modality, {})
        if cls.name in table:
            raise ValueError(f"method {cls.name!r} registered twice for {modality}")
        table[cls.name] = cls
    return cls


def _ensure_loaded() -> None:
    # Importing the package imports every method file, which runs their decorators.
    import xai_cli.methods  # noqa: F401


def all_methods(modality: str = "image") -> dict[str, type[Method]]:
    """name -> class of the methods that apply to ``modality``, sorted by name."""
    _ensure_loaded()
    return dict(sorted(_METHODS.get(modality, {}).items()))


def _all_names() -> set[str]:
    _ensure_loaded()
    return {n for table in _METHODS.values() for n in table}


# Spellings people type for our methods (folded: lower case, "-" and " " as "_"): accepted as the method.
ALIASES = {
    "grad_cam": "gradcam", "gradcam++": "gradcampp", "grad_cam++": "gradcampp", "gradcam_pp": "gradcampp",
    "gradcamplusplus": "gradcampp", "grad_cam_plus_plus": "gradcampp", "score_cam": "scorecam",
    "integrated_gradients": "ig", "integratedgradients": "ig", "intgrad": "ig",
    "kernel_shap": "shap", "kernelshap": "shap", "gradient_shap": "shap", "gradientshap": "shap",
    "guidedbackprop": "guided_backprop", "guided_backpropagation": "guided_backprop", "guided_bp": "guided_backprop",
    "vanilla_gradient": "saliency", "vanilla_gradients": "saliency", "gradient": "saliency", "gradients": "saliency",
    "smooth_grad": "smoothgrad", "smoothgrad2": "smoothgrad_sq", "smoothgrad_squared": "smoothgrad_sq",
    "var_grad": "vargrad", "attention_rollout": "attention", "rollout": "attention",
    "transformer_attribution": "transformer_attribution", "chefer": "transformer_attribution",
    "occlusion_sensitivity": "occlusion", "sliding_window": "occlusion", "lime_image": "lime",
}


def _fold(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def canonical(name: str) -> str:
    """The registered name a user's spelling means: ``GradCAM`` and ``grad-cam`` are ``gradcam``,
    ``integrated_gradients`` is ``ig``; an unknown name comes back as typed."""
    folded = _fold(name)
    if folded in _all_names():
        return folded
    return ALIASES.get(folded, ALIASES.get(folded.replace("_", ""), name))


def get_method(name: str, modality: str = "image") -> type[Method]:
    """The class implementing ``name`` (any case, or an alias in ``ALIASES``) for ``modality``.

    Raises:
        UsageError: Unknown name (with near matches, case-insensitive), or a method that does
            not apply here.
    """
    methods = all_methods(modality)
    key = canonical(name)
    if key in methods:
        return methods[key]
    if key in _all_names():
        raise UsageError(f"method {name!r} does not apply to {modality} models", f"use one of: {', '.join(methods)}")
    spellings = {n: n for n in _all_names()} | ALIASES
    near = list(dict.fromkeys(spellings[m] for m in difflib.get_close_matches(_fold(name), list(spellings), n=5, cutoff=0.6)))
    hint = "did you mean " + ", ".join(map(repr, near[:3])) + "?" if near else "run 'xai methods' to list them"
    raise UsageError(f"unknown method {name!r}", hint)


def parse_method_list(spec: str, modality: str) -> list[str]:
    """``"gradcam,ig"`` or ``"all"`` -> method names that apply to ``modality``, in the order given.

    Raises:
        UsageError: An unknown name, or a method that does not apply to this kind of model.
    """
    if spec.strip().lower() == "all":
        return list(all_methods(modality))
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise UsageError("no method given", "name one, e.g. {opt:method} gradcam (or several: gradcam,ig)")
    return list(dict.fromkeys(get_method(n, modality).name for n in names))


def build_params(cls: type[Method], overrides: dict[str, object]):
    """Build ``cls.Params`` from ``overrides`` (strings from the CLI are converted to field types).

    Raises:
        UsageError: An unknown parameter name or a value of the wrong type.
    """
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    kwargs = {}
    for key, value in overrides.items():
        if key not in fields:
            raise UsageError(f"method {cls.name!r} has no parameter {key!r}",
                             did_you_mean(key, fields) or f"its parameters: {', '.join(fields) or 'none'}")
        kwargs[key] = _convert(value, typing.get_type_hints(cls.Params)[key], f"{cls.name}.{key}")
    params = cls.Params(**kwargs)
    if hasattr(params, "validate"):
        params.validate()
    return params


def _convert(value: object, hint, where: str):
    if not isinstance(value, str):
        return value
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else (hint,)
    if type(None) in options and value.lower() in ("none", "null", ""):
        return None
    for t in options:
        try:
            if t is bool:
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if t in (int, float, str):
                return t(value)
            if typing.get_origin(t) is typing.Literal:
                if value in typing.get_args(t):
                    return value
                raise ValueError
        except ValueError:
            continue
    choices = _choices(hint)
    expected = f"one of: {', '.join(map(str, choices))}" if choices else f"expected {_type_text(hint)}"
    raise UsageError(f"bad value {value!r} for {where}", expected)


@dataclass(frozen=True)
class ParamCard:
    """One parameter of a method, as ``xai methods`` lists it."""

    name: str
    type: str
    default: object
    choices: tuple | None
    doc: str


@dataclass(frozen=True)
class MethodCard:
    """What ``xai methods`` shows for one method."""

    name: str
    modalities: tuple[str, ...]
    summary: str
    paper: str
    params: list[ParamCard]
    bf16: str = ""  # how it runs under --precision bf16 (Method.bf16) and the measurement behind it


def param_cards(params_cls: type) -> list[ParamCard]:
    """Every field of a ``Params`` dataclass with its type, default, choices and one line of meaning.

    The meaning is ``field(metadata={"doc": ...})`` when given, else the comment ending the
    field's line in the class (or base class) that declares it: a method file documents a
    parameter where it defines it, and a test checks that none is left undocumented.
    """
    hints = typing.get_type_hints(params_cls)
    return [ParamCard(f.name, _type_text(hints[f.name]), f.default, _choices(hints[f.name]),
                      f.metadata.get("doc") or _comment(params_cls, f.name)) for f in dataclasses.fields(params_cls)]


def _options(hint) -> tuple:
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    return typing.get_args(hint) if union else (hint,)


def _choices(hint) -> tuple | None:
    values = [v for t in _options(hint) if typing.get_origin(t) is typing.Literal for v in typing.get_args(t)]
    return tuple(values) or None


def _type_text(hint) -> str:
    names = ["choice" if typing.get_origin(t) is typing.Literal else "none" if t is type(None)
             else getattr(t, "__name__", str(t)) for t in _options(hint)]
    return " | ".join(dict.fromkeys(names))


def _comment(params_cls: type, name: str) -> str:
    import inspect
    import re

    line = re.compile(rf"^\s+{name}\s*:[^#\n]*#\s*(.+)$", re.M)
    for klass in params_cls.__mro__:
        try:
            found = line.search(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        if found:
            return found.group(1).strip()
    return ""


def method_cards() -> list[MethodCard]:
    """One card per method name, or per name and modality where their parameters differ
    (``ig`` for images and for text take different baselines)."""
    _ensure_loaded()
    cards: dict[tuple, MethodCard] = {}
    for modality in sorted(_METHODS):
        for name, cls in _METHODS[modality].items():
            params = param_cards(cls.Params)
            bf16 = f"{cls.bf16}: {cls.bf16_fidelity}"
            key = (name, repr(params), bf16)
            if key in cards:
                cards[key] = dataclasses.replace(cards[key], modalities=cards[key].modalities + (modality,))
            else:
                cards[key] = MethodCard(name, (modality,), cls.summary, cls.paper, params, bf16)
    return sorted(cards.values(), key=lambda c: (c.name, c.modalities))
