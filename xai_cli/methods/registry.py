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


def get_method(name: str, modality: str = "image") -> type[Method]:
    """The class implementing ``name`` for ``modality``.

    Raises:
        UsageError: Unknown name (with suggestions), or a method that does not apply here.
    """
    methods = all_methods(modality)
    if name in methods:
        return methods[name]
    if name in _all_names():
        raise UsageError(f"method {name!r} does not apply to {modality} models", f"use one of: {', '.join(methods)}")
    raise UsageError(f"unknown method {name!r}", did_you_mean(name, _all_names()) or "run 'xai methods' to list them")


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
    for n in names:
        get_method(n, modality)
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
    """One card per method name; parameters are those of its first registered modality."""
    _ensure_loaded()
    cards: dict[str, MethodCard] = {}
    for modality in sorted(_METHODS):
        for name, cls in _METHODS[modality].items():
            if name in cards:
                cards[name] = dataclasses.replace(cards[name], modalities=cards[name].modalities + (modality,))
                continue
            defaults = {f.name: f.default for f in dataclasses.fields(cls.Params)}
            cards[name] = MethodCard(name, (modality,), cls.summary, cls.paper, defaults)
    return [cards[n] for n in sorted(cards)]
