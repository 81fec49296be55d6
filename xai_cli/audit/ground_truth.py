"""Where the evidence is, per input: masks, boxes or text rationales, in the map's own grid.

- ``--masks DIR``: a folder mirroring the inputs (``DIR/<input path relative to its input
  folder>``; a mask may have another image extension than its input, e.g. ``a.jpg`` ->
  ``a.png``). Non-zero pixels are the object. Masks are in the original image's pixels.
- ``--boxes FILE``: JSON ``{"<relative input path>": [[x0, y0, x1, y1], ...]}``, boxes in the
  original image's pixels (a box covers the pixels whose centres lie in [x0, x1) x [y0, y1)).
- Text: a ``rationale`` field in a ``.jsonl`` line, a list of ``[start, end)`` character spans
  of its ``text``.

Image maps are in model-input pixels (after resize and centre crop), so each model-input pixel
takes the mask value at its centre mapped back into the original with the input's crop box
(``models.preprocess.to_original``); mask pixels outside the crop are not scored. A mask of
another size than its image is scaled to it (nearest), with a warning.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xai_cli.errors import UsageError
from xai_cli.inputs.discover import IMAGE_EXTENSIONS, InputFile
from xai_cli.metrics.localisation import masks_from_boxes
from xai_cli.models.preprocess import CropBox


class GroundTruth:
    """Looks up the ground truth of an input; ``kind`` is "masks", "boxes", "rationale" or None."""

    def __init__(self, masks: Path | None = None, boxes: Path | None = None) -> None:
        if masks is not None and boxes is not None:
            raise UsageError("give {opt:masks} or {opt:boxes}, not both")
        self.masks, self.boxes_file = masks, boxes
        self.boxes: dict[str, list] = {}
        self.kind = "masks" if masks else "boxes" if boxes else None
        self.resized = 0  # masks scaled to their image's size
        if masks is not None and not Path(masks).is_dir():
            raise UsageError(f"mask folder {masks} not found", "{opt:masks} takes a folder mirroring the inputs")
        if boxes is not None:
            try:
                data = json.loads(Path(boxes).read_text())
            except (OSError, ValueError) as e:
                raise UsageError(f"cannot read boxes file {boxes}: {e}",
                                 'write JSON {"<input path>": [[x0, y0, x1, y1], ...]}') from None
            if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
                raise UsageError(f"boxes file {boxes} must map each input path to a list of [x0, y0, x1, y1] boxes")
            self.boxes = data

    def label(self) -> str | None:
        return str(self.masks or self.boxes_file) if self.kind else None

    def covers(self, files: list[InputFile]) -> int:
        """How many of ``files`` have image ground truth (masks or boxes)."""
        return sum(self._mask_path(f) is not None if self.kind == "masks" else self._box_key(f) is not None
                   for f in files)

    def _mask_path(self, f: InputFile) -> Path | None:
        exact = Path(self.masks) / Path(f.rel)
        if exact.is_file():
            return exact
        for ext in sorted(IMAGE_EXTENSIONS):
            p = exact.with_suffix(ext)
            if p.is_file():
                return p
        return None

    def _box_key(self, f: InputFile) -> str | None:
        for key in (str(f.rel), f"{f.path.parent.name}/{f.rel}", f.path.name):
            if key in self.boxes:
                return key
        return None

    def original_mask(self, f: InputFile, size: tuple[int, int]) -> np.ndarray | None:
        """(h, w) bool in the original's pixels (``size`` = (w, h)), or None without ground truth."""
        w, h = size
        if self.kind == "masks":
            path = self._mask_path(f)
            if path is None:
                return None
            from PIL import Image

            with Image.open(path) as im:
                im = im.convert("L")
                if im.size != (w, h):
                    self.resized += 1
                    im = im.resize((w, h), Image.NEAREST)
                return np.asarray(im) > 0
        if self.kind == "boxes":
            key = self._box_key(f)
            return None if key is None else masks_from_boxes([self.boxes[key]], h, w)[0]
        return None

    def input_mask(self, f: InputFile, size: tuple[int, int], box: CropBox, crop: int) -> np.ndarray | None:
        """(crop, crop) bool in model-input pixels, or None without ground truth."""
        mask = self.original_mask(f, size)
        return None if mask is None else to_input_pixels(mask, box, crop)


def to_input_pixels(mask: np.ndarray, box: CropBox, crop: int) -> np.ndarray:
    """A mask in original pixels -> (crop, crop) bool: each model-input pixel's centre, mapped into
    the original with ``box`` (as ``to_original`` does), takes the nearest mask pixel."""
    h, w = mask.shape
    centres = np.arange(crop) + 0.5
    xs = np.floor(box.left + centres * box.width / crop).astype(int)  # original column of each input column
    ys = np.floor(box.top + centres * box.height / crop).astype(int)
    inside = (ys[:, None] >= 0) & (ys[:, None] < h) & (xs[None, :] >= 0) & (xs[None, :] < w)
    out = mask[np.clip(ys, 0, h - 1)[:, None], np.clip(xs, 0, w - 1)[None, :]]
    return out & inside


def rationale_spans(f: InputFile) -> list[tuple[int, int]] | None:
    """The ``rationale`` character spans of a ``.jsonl`` line, or None (no field, not a line).

    Raises:
        UsageError: A rationale that is not a list of [start, end] pairs.
    """
    if f.span is None:
        return None
    with open(f.path, "rb") as stream:
        stream.seek(f.span[0])
        data = stream.read(f.span[1] - f.span[0])
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    spans = obj.get("rationale") if isinstance(obj, dict) else None
    if spans is None:
        return None
    if not isinstance(spans, list) or not all(isinstance(s, list) and len(s) == 2 and all(isinstance(v, int) for v in s)
                                              for s in spans):
        raise UsageError(f"{f.path}: 'rationale' of {f.key!r} must be a list of [start, end] character spans")
    return [(int(a), int(b)) for a, b in spans]
