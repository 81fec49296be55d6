"""An HF image processor's resize, crop and normalisation, as our ``Preprocess``."""

from __future__ import annotations

from xai_cli.models.preprocess import Preprocess

_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}  # PIL resample codes the processors store


def preprocess_from_processor(proc) -> Preprocess:
    """Read resize, crop, mean/std and resampling from an HF image processor."""
    def get(d, key):
        return None if d is None else (d.get(key) if isinstance(d, dict) else getattr(d, key, None))

    size = getattr(proc, "size", None)
    crop = getattr(proc, "crop_size", None) if getattr(proc, "do_center_crop", False) else None
    interp = _interpolation(getattr(proc, "resample", None))
    mean = tuple(proc.image_mean) if getattr(proc, "do_normalize", True) else (0.0, 0.0, 0.0)
    std = tuple(proc.image_std) if getattr(proc, "do_normalize", True) else (1.0, 1.0, 1.0)
    common = {"mean": tuple(float(m) for m in mean), "std": tuple(float(s) for s in std), "interpolation": interp}
    crop_side = get(crop, "height")
    if get(size, "height"):  # ViT/DeiT: both sides to (height, width), then an optional centre crop
        side = int(get(size, "height"))
        return Preprocess(resize_size=side, crop_size=int(crop_side or side), mode="squash", **common)
    edge = int(get(size, "shortest_edge") or 224)
    crop_pct = getattr(proc, "crop_pct", None)
    if crop_pct and edge < 384:  # ConvNeXt: shorter side to edge / crop_pct, centre crop of edge
        return Preprocess(resize_size=int(edge / crop_pct), crop_size=edge, mode="shorter-side", **common)
    if crop_pct:  # ConvNeXt at >= 384 px warps to a square without cropping
        return Preprocess(resize_size=edge, crop_size=edge, mode="squash", **common)
    return Preprocess(resize_size=edge, crop_size=int(crop_side or edge), mode="shorter-side", **common)


def _interpolation(resample) -> str:
    """A PIL resample code (slow processors), or an enum holding one or a name (fast ones)."""
    value = getattr(resample, "value", resample)
    if isinstance(value, str):
        return next((k for k in ("bicubic", "nearest") if k in value.lower()), "bilinear")
    return _RESAMPLE.get(int(value) if value is not None else 2, "bilinear")
