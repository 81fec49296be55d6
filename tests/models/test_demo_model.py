"""The embedded demo model: shipped weights, held-out accuracy, sample images and their masks.

CPU only, offline, a few seconds: the held-out set is rendered fresh from the sklearn digits
that ``tools/train_demo.py`` held out (their indices are in the weights' JSON metadata).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits
from torchvision.transforms import functional as TF

from xai_cli.models.demo import (
    DEMO_INPUT_SIZE,
    DEMO_LABELS,
    DEMO_MEAN,
    DEMO_NAME,
    DEMO_STD,
    WEIGHTS_PATH,
    build_demo_model,
    render_sample,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_images"
INDEX = SAMPLES / "masks" / "index.json"
HELDOUT_SAMPLES = 400


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return build_demo_model()


def _preprocess(image: Image.Image) -> torch.Tensor:
    """What the tool does to a demo input: squash-resize, ToTensor, normalize."""
    image = image.convert("RGB").resize((DEMO_INPUT_SIZE, DEMO_INPUT_SIZE), Image.Resampling.BILINEAR)
    return TF.normalize(TF.to_tensor(image), DEMO_MEAN, DEMO_STD)


def test_constants():
    assert DEMO_NAME == "demo-digits"
    assert DEMO_LABELS == [str(d) for d in range(10)]
    assert len(DEMO_MEAN) == len(DEMO_STD) == 3


def test_weights_file_is_small():
    assert WEIGHTS_PATH.is_file()
    assert WEIGHTS_PATH.stat().st_size <= 5 * 1024 * 1024


def test_weights_load_in_eval_mode(model):
    assert not model.training
    out = model(torch.zeros(2, 3, DEMO_INPUT_SIZE, DEMO_INPUT_SIZE))
    assert out.shape == (2, len(DEMO_LABELS))
    # Grad-CAM's automatic layer choice takes the last Conv2d: it must be the last feature conv.
    convs = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[-1].startswith("features.")


def test_render_sample_is_seeded_and_well_formed():
    digits = load_digits()
    a_img, a_mask = render_sample(np.random.default_rng(3), digits.images[0], int(digits.target[0]))
    b_img, b_mask = render_sample(np.random.default_rng(3), digits.images[0], int(digits.target[0]))
    assert a_img.shape == (DEMO_INPUT_SIZE, DEMO_INPUT_SIZE, 3) and a_img.dtype == np.uint8
    assert a_mask.shape == (DEMO_INPUT_SIZE, DEMO_INPUT_SIZE) and a_mask.dtype == bool
    assert np.array_equal(a_img, b_img) and np.array_equal(a_mask, b_mask)
    assert 0 < a_mask.mean() < 0.5
    with pytest.raises(ValueError):
        render_sample(np.random.default_rng(0), digits.images[0], 10)


@torch.no_grad()
def test_heldout_accuracy(model):
    meta = json.loads(WEIGHTS_PATH.with_suffix(".json").read_text())
    heldout = np.asarray(meta["heldout_indices"])
    digits = load_digits()
    rng = np.random.default_rng(12345)  # not a seed the training or the samples use
    picks = rng.choice(heldout, HELDOUT_SAMPLES)
    images, labels = [], []
    for k in picks:
        image, _ = render_sample(rng, digits.images[k], int(digits.target[k]))
        images.append(_preprocess(Image.fromarray(image)))
        labels.append(int(digits.target[k]))
    preds = model(torch.stack(images)).argmax(1)
    accuracy = (preds == torch.tensor(labels)).float().mean().item()
    print(f"held-out accuracy {accuracy:.3f} on {HELDOUT_SAMPLES} fresh renderings")
    assert accuracy >= 0.95


def _index() -> dict:
    return json.loads(INDEX.read_text())


def test_sample_index_covers_all_classes():
    index = _index()
    assert len(index) >= 20
    assert {entry["label"] for entry in index.values()} == set(range(10))


@torch.no_grad()
def test_sample_digits_are_classified_as_labelled(model):
    index = _index()
    batch = torch.stack([_preprocess(Image.open(SAMPLES / rel)) for rel in index])
    preds = model(batch).argmax(1).tolist()
    correct = sum(p == entry["label"] for p, entry in zip(preds, index.values(), strict=True))
    assert correct >= 0.9 * len(index)


@pytest.mark.parametrize("rel", sorted(_index()))
def test_sample_mask_matches_its_image(rel):
    entry = _index()[rel]
    image = Image.open(SAMPLES / rel)
    mask_path = SAMPLES / entry["mask"]
    assert mask_path.is_file()
    mask = Image.open(mask_path)
    assert mask.mode == "L"
    assert mask.size == image.size
    values = np.asarray(mask)
    assert set(np.unique(values)) <= {0, 255}
    assert (values > 0).any()
