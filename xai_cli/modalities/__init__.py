"""Modalities as plug-ins: ``@register_modality`` adds one; the runner looks it up by name.

Each subpackage (``image/``, ``text/``) holds one modality: its decoding, batching, statistics,
record fields and pictures. See ``base.Modality`` for what a modality provides.
"""

from __future__ import annotations

from xai_cli.errors import UsageError
from xai_cli.modalities.base import Modality

_MODALITIES: dict[str, Modality] = {}


def register_modality(cls: type[Modality]) -> type[Modality]:
    """Class decorator: make ``cls`` the modality named ``cls.name``."""
    if cls.name in _MODALITIES:
        raise ValueError(f"modality {cls.name!r} registered twice")
    _MODALITIES[cls.name] = cls()
    return cls


def get_modality(name: str) -> Modality:
    """The registered modality ``name``.

    Raises:
        UsageError: No modality of that name (a model source produced an unknown kind).
    """
    _ensure_loaded()
    if name not in _MODALITIES:
        raise UsageError(f"no modality {name!r}", f"known: {', '.join(sorted(_MODALITIES))}")
    return _MODALITIES[name]


def all_modalities() -> dict[str, Modality]:
    _ensure_loaded()
    return dict(sorted(_MODALITIES.items()))


def _ensure_loaded() -> None:
    # Importing each subpackage runs its decorator; they import torch only when used.
    from xai_cli.modalities import image, text  # noqa: F401
