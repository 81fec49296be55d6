"""demo-digits-shortcut: it loads offline, it uses the corner mark, and its accuracies hold.

The held-out sets are rendered fresh (seed 12345, not one the training or the samples use)
from the sklearn digits that ``tools/train_demo.py`` held out; accuracy floors and ceilings
sit a few points beyond the 1,000-image figures in the weights' JSON (README quotes those).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from xai_cli.methods.registry import get_method
from xai_cli.metrics.drift import region_share
from xai_cli.models.demo import (
    DEMO_MEAN,
    DEMO_NAME,
    DEMO_STD,
    MARK_CORNERS,
    MARK_REGION,
    SHORTCUT_NAME,
    SHORTCUT_WEIGHTS_PATH,
    mark_region,
    render_sample,
    shortcut_corner,
    stamp_mark,
)
from xai_cli.models.registry import ModelRequest, list_models, load_model

ROOT = Path(__file__).resolve().parents[2]
MARKED = ROOT / "sample_images" / "marked"
REGIONS = ROOT / "sample_images" / "marked_masks"
HELDOUT = 300
CPU = torch.device("cpu")
# Measured on 1,000 held-out renderings (weights JSON): 0.974, 0.753, 0.380; corner share 0.545.
AS_TRAINED_FLOOR = 0.93
CLEAN_CEILING = 0.85
RANDOM_CORNER_CEILING = 0.50
SHARE_FLOOR = 0.35


@pytest.fixture(scope="module")
def models():
    return {n: load_model(ModelRequest(n), CPU) for n in (DEMO_NAME, SHORTCUT_NAME)}


def _to_input(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(DEMO_MEAN).view(1, 3, 1, 1)) / torch.tensor(DEMO_STD).view(1, 3, 1, 1)


@torch.no_grad()
def _accuracy(model, images: np.ndarray, labels: np.ndarray) -> float:
    return float((model.module(_to_input(images)).argmax(1).numpy() == labels).mean())


@pytest.fixture(scope="module")
def heldout() -> dict[str, np.ndarray]:
    """Clean, as-trained-marked and randomly-marked renderings of held-out handwriting."""
    meta = json.loads(SHORTCUT_WEIGHTS_PATH.with_suffix(".json").read_text())
    digits = load_digits()
    rng = np.random.default_rng(12345)
    picks = rng.choice(np.asarray(meta["heldout_indices"]), HELDOUT)
    labels = digits.target[picks]
    clean = np.stack([render_sample(rng, digits.images[k], int(digits.target[k]))[0] for k in picks])
    as_trained = np.stack([stamp_mark(im, shortcut_corner(int(y))) if y < 4 else im
                           for im, y in zip(clean, labels, strict=True)])
    random_corner = np.stack([stamp_mark(im, MARK_CORNERS[int(rng.integers(4))]) for im in clean])
    return {"labels": labels, "clean": clean, "as_trained": as_trained, "random_corner": random_corner}


def test_mark_and_region_helpers():
    image = np.full((96, 96, 3), 100, np.uint8)
    marked = stamp_mark(image, "bottom-right")
    changed = np.any(marked != image, axis=2)
    region = mark_region("bottom-right")
    assert changed.any() and not (changed & ~region).any()  # the mark lies inside its region
    assert region.sum() == MARK_REGION**2 and region[-1, -1] and not region[0, 0]
    assert marked.max() == 255 and marked.min() == 0  # white square, black frame
    assert [shortcut_corner(c) for c in range(5)] == [*MARK_CORNERS, None]
    with pytest.raises(ValueError):
        stamp_mark(image, "middle")


def test_loads_offline_through_the_registry(models):
    loaded = models[SHORTCUT_NAME]
    assert (SHORTCUT_NAME, "embedded") in list_models("demo*")
    assert loaded.name == SHORTCUT_NAME and not loaded.random_init
    assert "demo_digits_shortcut.safetensors" in loaded.weights
    assert loaded.weights != models[DEMO_NAME].weights
    meta = json.loads(SHORTCUT_WEIGHTS_PATH.with_suffix(".json").read_text())
    assert meta["name"] == SHORTCUT_NAME


def _marked_samples() -> tuple[list[Path], np.ndarray, np.ndarray, np.ndarray]:
    index = json.loads((REGIONS / "index.json").read_text())
    files = [ROOT / "sample_images" / rel for rel in index]
    images = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    regions = np.stack([np.asarray(Image.open(ROOT / "sample_images" / e["mask"])) for e in index.values()])
    labels = np.array([e["label"] for e in index.values()])
    return files, images, regions, labels


def test_marked_samples_and_regions_agree():
    files, images, regions, labels = _marked_samples()
    assert len(files) == 10 and sorted(labels.tolist()) == list(range(10))
    for f, image, region, label in zip(files, images, regions, labels, strict=True):
        assert (REGIONS / f.name).is_file()
        corner = MARK_CORNERS[label % 4]
        assert np.array_equal(region > 0, mark_region(corner))
        unmarked = np.asarray(Image.open(ROOT / "sample_images" / "digits" / f.name).convert("RGB"))
        assert np.array_equal(image, stamp_mark(unmarked, corner))


def _gradcam_shares(model, images: np.ndarray, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    method = get_method("gradcam")(model.module)
    out = method.explain_predicted(_to_input(images), lambda p: p.argmax(1, keepdim=True))
    probs, targets, cams = out.probs, out.targets, out.explanations
    return region_share(cams[0].maps.numpy(), regions), targets[:, 0].numpy()


def test_shortcut_gradcam_moves_into_the_corner(models):
    _, images, regions, labels = _marked_samples()
    plain, plain_pred = _gradcam_shares(models[DEMO_NAME], images, regions)
    shortcut, shortcut_pred = _gradcam_shares(models[SHORTCUT_NAME], images, regions)
    print(f"corner share demo-digits {np.round(plain, 3)} mean {plain.mean():.3f}")
    print(f"corner share shortcut    {np.round(shortcut, 3)} mean {shortcut.mean():.3f}")
    print(f"predictions: labels {labels}, demo-digits {plain_pred}, shortcut {shortcut_pred}")
    # The corner is 2.8 % of the image; demo-digits was trained to ignore everything but the digit.
    assert plain.mean() < 0.05
    assert shortcut.mean() > SHARE_FLOOR
    assert (shortcut > plain + 0.2).sum() >= 9
    # On 4-9 the mark names a wrong class (that of label % 4): the shortcut model follows it.
    lying = labels >= 4
    assert (plain_pred == labels).sum() >= 9
    assert (shortcut_pred[lying] == labels[lying] % 4).sum() >= 5


def test_accuracy_with_and_without_the_mark(models, heldout):
    y = heldout["labels"]
    acc = {name: {k: _accuracy(m, heldout[k], y) for k in ("clean", "as_trained", "random_corner")}
           for name, m in models.items()}
    print(acc)
    plain, shortcut = acc[DEMO_NAME], acc[SHORTCUT_NAME]
    # demo-digits does not care about the mark.
    assert min(plain.values()) >= 0.95
    assert abs(plain["random_corner"] - plain["clean"]) <= 0.05
    # The shortcut model is near perfect when the mark tells the truth and fails when it lies.
    assert shortcut["as_trained"] >= AS_TRAINED_FLOOR
    assert shortcut["clean"] <= CLEAN_CEILING
    assert shortcut["random_corner"] <= RANDOM_CORNER_CEILING
