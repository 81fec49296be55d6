"""Loader batches: in input order, failures kept, and each item's tensor and pixels exactly its
decoded ones (a worker sends a batch's tensors stacked, with the items' pixels, in one shared
buffer; the items get their rows and arrays back)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xai_cli.inputs.discover import discover
from xai_cli.inputs.loader import iter_batches
from xai_cli.inputs.read import Failure
from xai_cli.modalities.image.decode import decode_image
from xai_cli.models.preprocess import Preprocess

P = Preprocess(resize_size=36, crop_size=32, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def _inputs(root: Path) -> list:
    rng = np.random.default_rng(0)
    for i in range(7):
        size = (40 + 3 * i, 36 + i)  # different shapes: the originals differ, the model inputs do not
        Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(root / f"{i}.png")
    (root / "3.png").write_bytes(b"not a png")
    return discover([root])


@pytest.mark.parametrize("workers", [0, 1])
def test_batches_carry_each_items_own_tensor_and_failures_in_order(tmp_path, workers):
    files = _inputs(tmp_path)
    decode = partial(decode_image, preprocess=P)
    batches = list(iter_batches(files, decode, 3, workers))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert [f.index for b in batches for f in b.failures] == [3]
    assert all(isinstance(b.failures[0], Failure) for b in batches if b.failures)
    items = [it for b in batches for it in b.items]
    assert [it.index for it in items] == [0, 1, 2, 4, 5, 6]
    for it in items:
        want = decode(it.index, files[it.index], files[it.index].path.read_bytes())
        assert it.tensor.shape == (3, 32, 32)
        assert torch.equal(it.tensor, want.tensor)
        assert it.original.dtype == want.original.dtype and it.original.shape == want.original.shape
        assert np.array_equal(it.original, want.original)
    assert all(b.rows is None and b.shared is None for b in batches)  # the buffers only travel


def test_a_worker_sends_a_batch_in_one_shared_buffer(tmp_path):
    """The stacked tensor and every item's pixels cross as views of one buffer, not pickled bytes."""
    files = _inputs(tmp_path)
    batch = next(iter_batches(files, partial(decode_image, preprocess=P), 3, 1))
    storages = {it.tensor.untyped_storage().data_ptr() for it in batch.items}
    assert len(storages) == 1
    base = storages.pop()
    for it in batch.items:
        start = it.original.__array_interface__["data"][0]
        assert base <= start < base + it.tensor.untyped_storage().nbytes()  # inside the same buffer


@dataclass(frozen=True)
class _Frozen:
    index: int
    pixels: np.ndarray
    masked: np.ndarray


def _frozen_decode(index, file, data):
    rng = np.random.default_rng(index)
    pixels = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    return _Frozen(index, pixels, np.ma.masked_less(pixels.astype(np.float32), 128))


def test_frozen_items_and_array_subclasses_come_back_whole(tmp_path):
    """A frozen dataclass's arrays are moved as well; a masked array is pickled as it is (mask kept)."""
    files = _inputs(tmp_path)
    items = [it for b in iter_batches(files, _frozen_decode, 3, 1) for it in b.items]
    assert len(items) == len(files)
    for it in items:
        want = _frozen_decode(it.index, None, None)
        assert np.array_equal(it.pixels, want.pixels)
        assert isinstance(it.masked, np.ma.MaskedArray) and np.array_equal(it.masked.mask, want.masked.mask)
