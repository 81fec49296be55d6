"""Regions of interest for ``--region``: a folder of masks mirroring the inputs, or a boxes JSON.

* A folder: the mask of input ``sub/cat.jpg`` (its path relative to its input root) is
  ``REGION/sub/cat.jpg``, else ``REGION/sub/cat.png``; any image, non-zero = inside, resized
  nearest-neighbour to the input's size if it differs.
* A JSON file: ``{"sub/cat.jpg": [[x0, y0, x1, y1], ...], ...}`` boxes in the input's pixels
  (their union is the region); a value may also be ``{"boxes": [...]}``.

An input without a region gets no region share (and the run a warning), never a failure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from xai_cli.errors import UsageError


@dataclass(frozen=True)
class Regions:
    """Picklable (it travels to the loader's workers): a masks folder or parsed boxes."""

    folder: Path | None = None
    boxes: dict[str, list[list[float]]] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path) -> Regions:
        """Read ``path`` (a folder of masks, or a JSON file of boxes).

        Raises:
            UsageError: Missing path, or a JSON file that is not ``{input: boxes}``.
        """
        path = Path(path)
        if path.is_dir():
            return cls(folder=path)
        if not path.is_file():
            raise UsageError(f"{{opt:region}} {path} does not exist",
                             "give a folder of masks mirroring the inputs, or a JSON file of boxes")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise UsageError(f"{{opt:region}} {path} is not a folder and not a JSON file ({str(e)[:120]})",
                             'write {"input.png": [[x0, y0, x1, y1]]}, or give a folder of masks') from None
        if not isinstance(data, dict):
            raise UsageError(f"{{opt:region}} {path}: expected an object mapping inputs to boxes",
                             'write {"input.png": [[x0, y0, x1, y1]]}')
        boxes = {}
        for name, value in data.items():
            value = value.get("boxes") if isinstance(value, dict) else value
            if not _is_boxes(value):
                raise UsageError(f"{{opt:region}} {path}: the boxes of {name!r} are not a list of [x0, y0, x1, y1]",
                                 'write {"input.png": [[x0, y0, x1, y1]]}')
            boxes[str(PurePosixPath(name))] = [[float(v) for v in b] for b in value]
        return cls(boxes=boxes)

    def load(self, file, size: tuple[int, int] | None) -> tuple[np.ndarray | None, str | None]:
        """The region of ``file`` as bool ``(h, w)`` for an image of ``size``, or (None, why not)."""
        if size is None:
            return None, "regions apply to images only"
        rel = PurePosixPath(str(file.rel))
        if self.folder is None:
            if str(rel) not in self.boxes:
                return None, f"no boxes for {rel} in the region file"
            from xai_cli.metrics.localisation import masks_from_boxes

            return masks_from_boxes([self.boxes[str(rel)]], *size)[0], None
        for candidate in (self.folder / rel, self.folder / rel.with_suffix(".png")):
            if candidate.is_file():
                return _read_mask(candidate, size)
        return None, f"no mask {rel} (or .png) in {self.folder}"


def _is_boxes(value) -> bool:
    return isinstance(value, list) and all(
        isinstance(b, list) and len(b) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in b)
        for b in value)


def _read_mask(path: Path, size: tuple[int, int]) -> tuple[np.ndarray | None, str | None]:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img = img.convert("L")
            if img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.NEAREST)
            return np.asarray(img) > 0, None
    except Exception as e:  # any unreadable mask: that input has no region, said once per input
        return None, f"mask {path.name} is not a readable image ({type(e).__name__})"
