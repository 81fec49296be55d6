"""What a modality is: everything that differs between kinds of input (images, text, ...).

A modality owns which files are inputs, how one is decoded (in a loader worker), how a batch
goes onto the device, how a batch of maps becomes per-input scores and statistics, which
fields an input adds to its record, and its pictures. The engine, the runner and the sinks
are the same for every modality: they look one up with ``get_modality(name)``.

To add one (tabular, audio, ...): a folder under ``xai_cli/modalities/`` with a subclass of
``Modality`` registered by ``@register_modality``, plus its methods in ``xai_cli/methods/``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL import Image

    from xai_cli.core.results import ItemResult, MapResult, RunInfo
    from xai_cli.inputs.discover import InputFile
    from xai_cli.methods.base import Method
    from xai_cli.models.registry import LoadedModel

TOP_SHARE = 0.10  # statistics' ``top10_mass``: the share of sum |A| held by the top 10 % of features
NEAR_ZERO = 1e-12  # a map whose largest |value| is below this is numerical noise, not an explanation
FLAT = 1e-6  # a map whose values differ by less than this share of its largest |value| is constant


def degenerate(lo: float, hi: float) -> str | None:
    """Why a map with smallest value ``lo`` and largest ``hi`` shows nothing, or None.

    Returns:
        "zero" (every value is 0), "near_zero" (largest |value| below ``NEAR_ZERO``, e.g. the
        1e-15 gradients of a saturated network), "constant" (every value the same up to
        ``FLAT`` of the largest), or None for a map worth drawing.
    """
    top = max(abs(lo), abs(hi))
    if top == 0:
        return "zero"
    if top < NEAR_ZERO:
        return "near_zero"
    if hi - lo <= FLAT * top:
        return "constant"
    return None


DEGENERATE_TEXT = {"zero": "every value is 0", "near_zero": "every value is below 1e-12 (numerical noise)",
                   "constant": "every value is the same"}


class Modality(ABC):
    """One kind of input, as a plug-in.

    Attributes:
        name: ``LoadedModel.modality`` of the models it serves ("image", "text").
        extensions: File suffixes discovery picks up.
        default_method: What a run explains with when no method is named.
    """

    name: ClassVar[str]
    extensions: ClassVar[frozenset[str]]
    default_method: ClassVar[str]

    def expand(self, files: list[InputFile]) -> list[InputFile]:
        """Discovered files -> inputs (e.g. one input per JSONL line). Default: one each."""
        return files

    @abstractmethod
    def decoder(self, loaded: LoadedModel, decode: str = "cpu") -> Callable:
        """A picklable ``fn(index, file, data) -> item | Failure`` run in the loader's workers.

        ``decode="device"`` lets it leave part of the decoding to ``finish`` (on the device).
        """

    def finish(self, items: list, loaded: LoadedModel, device: torch.device) -> list:
        """Complete, in the engine's process, what the workers left undone (e.g. decoding on the
        device): the items in order, an undecodable one replaced by its ``Failure``. Called
        again on finished items, it returns them unchanged. Default: nothing left to do."""
        return items

    @abstractmethod
    def collate(self, items: list, loaded: LoadedModel, device: torch.device) -> Any:
        """A batch of decoded items -> what the methods take, on ``device``."""

    @abstractmethod
    def num_classes(self, loaded: LoadedModel) -> int:
        """How many classes the model scores."""

    @abstractmethod
    def map_results(self, maps: torch.Tensor, items: list, method: Method) -> list[tuple[np.ndarray, dict, dict]]:
        """A batch of maps -> per item ``(CPU scores, stats, extra arrays)``; waits for the device."""

    def run_fields(self, loaded: LoadedModel) -> dict:
        """Facts of the run every record of this modality repeats (e.g. the preprocessing)."""
        return {}

    @abstractmethod
    def record_fields(self, result: ItemResult, run: RunInfo) -> dict:
        """The fields an explained input adds to its record (input details, preprocessing, ...)."""

    def map_fields(self, result: ItemResult, m: MapResult) -> dict:
        """Fields a map adds to its record entry (e.g. the layer, or per-token scores)."""
        return {}

    @abstractmethod
    def picture(self, result: ItemResult, m: MapResult, run: RunInfo) -> Image.Image | np.ndarray:
        """The labelled picture of one map (a PIL image, or (H, W, 3) uint8 pixels)."""
