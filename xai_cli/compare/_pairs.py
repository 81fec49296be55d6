"""Decode each input once for both models, in the loader's workers.

A's decoder reads and decodes the file (one read, one hash, one image decode or text
decode). When B's preprocessing is the same (same resize/crop/normalisation, or the same
tokenizer), B gets the very same item. When it differs, B's item is rebuilt from what A's
decode produced: an image is re-preprocessed from the decoded original pixels
(``ImageItem.original``), a text is re-tokenised from the decoded bytes with B's tokenizer.
The file is never read or decoded a second time, and the two models never see different
pixels or characters.

The region of interest (``--region``) of the input is loaded here too, in original pixels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from xai_cli.inputs.read import Failure
from xai_cli.models.registry import LoadedModel


@dataclass
class Pair:
    """One decoded input as each model takes it, and its region (bool ``(h, w)``, original pixels)."""

    index: int
    sha256: str
    a: Any
    b: Any
    region: np.ndarray | None = None
    region_note: str | None = None  # why the region is missing, when regions were given


def decode_pair(index: int, file, data: bytes, *, decode_a: Callable, rebuild_b: Callable | None,
                regions=None) -> Pair | Failure:
    """``decode_a`` the bytes once; B's item is A's, or ``rebuild_b(a_item, index, file, data)``."""
    a = decode_a(index, file, data)
    if isinstance(a, Failure):
        return a
    b = a if rebuild_b is None else rebuild_b(a, index, file, data)
    if isinstance(b, Failure):
        return b
    pair = Pair(index, a.sha256, a, b)
    if regions is not None:
        size = getattr(a, "original", None)
        pair.region, pair.region_note = regions.load(file, None if size is None else size.shape[:2])
    return pair


def _reimage(a, index, file, data, *, preprocess):
    from PIL import Image

    from xai_cli.models.preprocess import preprocess_image

    tensor, box = preprocess_image(Image.fromarray(a.original), preprocess)
    return dataclasses.replace(a, tensor=tensor, box=box, notes=list(a.notes))


def _retext(a, index, file, data, *, tokenizer, max_length):
    from xai_cli.modalities.text.decode import decode_text

    return decode_text(index, file, data, tokenizer, max_length)  # the bytes in hand: no second read


def same_preprocessing(modality: str, a: LoadedModel, b: LoadedModel) -> bool:
    """Whether B takes exactly A's decoded item (same image preprocessing, or same tokenizer)."""
    if modality == "image":
        return a.preprocess == b.preprocess
    ta, tb = a.extra.get("tokenizer"), b.extra.get("tokenizer")
    if a.extra.get("max_length") != b.extra.get("max_length") or ta is None or tb is None:
        return ta is tb
    try:
        return ta.backend_tokenizer.to_str() == tb.backend_tokenizer.to_str()
    except AttributeError:  # not a fast tokenizer: compare what can be compared
        return ta.get_vocab() == tb.get_vocab()


def pair_decoder(modality, a: LoadedModel, b: LoadedModel, regions=None) -> tuple[Callable, bool]:
    """The loader's decode function for both models, and whether B's items are rebuilt."""
    rebuild = None
    if not same_preprocessing(modality.name, a, b):
        if modality.name == "image":
            rebuild = partial(_reimage, preprocess=b.preprocess)
        else:
            rebuild = partial(_retext, tokenizer=b.extra["tokenizer"], max_length=b.extra["max_length"])
    return partial(decode_pair, decode_a=modality.decoder(a), rebuild_b=rebuild, regions=regions), rebuild is not None
