"""The method registry: one decorator adds a method to ``--method``, ``xai methods`` and the tests.

Modelled on timm's ``@register_model``: nothing central is edited to add a method.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xai_cli.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from xai_cli.methods.base import Method

_METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: register ``cls`` under ``cls.name``."""
    if cls.name in _METHODS:
        raise ValueError(f"method {cls.name!r} registered twice")
    _METHODS[cls.name] = cls
    return cls


def _ensure_loaded() -> None:
    # Importing the package imports every method file, which runs their decorators.
    import xai_cli.methods  # noqa: F401


def all_methods() -> dict[str, type[Method]]:
    _ensure_loaded()
    return dict(sorted(_METHODS.items()))


def get_method(name: str) -> type[Method]:
    methods = all_methods()
    if name not in methods:
        raise UsageError(f"unknown method {name!r}", did_you_mean(name, methods) or "run 'xai methods' to list them")
    return methods[name]


def parse_method_list(spec: str, modality: str) -> list[str]:
    """``"gradcam,ig"`` or ``"all"`` -> method names that apply to ``modality``, in the order given.

    Raises:
        UsageError: An unknown name, or a method that does not apply to this kind of model.
    """
    methods = all_methods()
    if spec.strip().lower() == "all":
        return [n for n, cls in methods.items() if modality in cls.modalities]
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise UsageError("no method given", "pass --method gradcam (or several: --method gradcam,ig)")
    for n in names:
        cls = get_method(n)
        if modality not in cls.modalities:
            fits = [m for m, c in methods.items() if modality in c.modalities]
            raise UsageError(f"method {n!r} does not apply to {modality} models", f"use one of: {', '.join(fits)}")
    return list(dict.fromkeys(names))


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
    raise UsageError(f"bad value {value!r} for {where}", f"expected {getattr(hint, '__name__', hint)}")


@dataclass(frozen=True)
class MethodCard:
    """What ``xai methods`` shows for one method."""

    name: str
    modalities: tuple[str, ...]
    summary: str
    paper: str
    params: dict[str, object]


def method_cards() -> list[MethodCard]:
    cards = []
    for name, cls in all_methods().items():
        defaults = {f.name: f.default for f in dataclasses.fields(cls.Params)}
        cards.append(MethodCard(name, tuple(cls.modalities), cls.summary, cls.paper, defaults))
    return cards
