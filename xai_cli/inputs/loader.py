"""Batches of decoded inputs from DataLoader workers; bad files travel as ``Failure`` records."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import torch
from torch.utils.data import DataLoader, Dataset

from xai_cli.inputs.decode import Failure, ImageItem, decode_image
from xai_cli.inputs.discover import InputFile
from xai_cli.models.preprocess import Preprocess


@dataclass
class Batch:
    """One loader batch: the decoded items (stacked) and the failures, in input order."""

    items: list[ImageItem]
    failures: list[Failure]

    def stacked(self) -> torch.Tensor:
        return torch.stack([it.tensor for it in self.items])  # (N, 3, crop, crop)


class _Images(Dataset):
    def __init__(self, files: list[InputFile], preprocess: Preprocess) -> None:
        self.files, self.preprocess = files, preprocess

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> ImageItem | Failure:
        return decode_image(i, self.files[i].path, self.preprocess)


def _collate(records: list[ImageItem | Failure], pin: bool) -> Batch:
    items = [r for r in records if isinstance(r, ImageItem)]
    if pin and items:
        for it in items:
            it.tensor = it.tensor.pin_memory()
    return Batch(items, [r for r in records if isinstance(r, Failure)])


def default_workers() -> int:
    """Decode workers: one per spare core, at most 8 (decode rarely needs more to feed a GPU)."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def iter_batches(files: list[InputFile], preprocess: Preprocess, batch_size: int,
                 workers: int, pin_memory: bool = False) -> Iterator[Batch]:
    """Decode ``files`` in ``workers`` processes, yielding batches in input order."""
    loader = DataLoader(
        _Images(files, preprocess), batch_size=batch_size, shuffle=False, num_workers=workers,
        collate_fn=partial(_collate, pin=pin_memory), prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )
    yield from loader
