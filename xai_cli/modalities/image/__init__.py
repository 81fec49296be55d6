"""Images: decoded and preprocessed in the loader's workers, batched as one (N, 3, H, W)
tensor, maps in model-input pixels drawn over the original picture."""

from __future__ import annotations

from functools import partial

from xai_cli.inputs.discover import IMAGE_EXTENSIONS
from xai_cli.modalities import register_modality
from xai_cli.modalities.base import Modality


@register_modality
class ImageModality(Modality):
    name = "image"
    extensions = IMAGE_EXTENSIONS
    default_method = "gradcam"

    def decoder(self, loaded, decode="cpu"):
        if decode == "device":
            from xai_cli.modalities.image.device_decode import read_for_device

            return partial(read_for_device, preprocess=loaded.preprocess)
        from xai_cli.modalities.image.decode import decode_image

        return partial(decode_image, preprocess=loaded.preprocess)

    def finish(self, items, loaded, device):
        from xai_cli.modalities.image.device_decode import decode_batch

        return decode_batch(items, loaded.preprocess, device)

    def collate(self, items, loaded, device):
        import torch

        rows = [it.tensor for it in items]
        if device.type == "cuda" and all(t.device.type == "cpu" for t in rows):
            # Staged in pinned memory, so the copy to the GPU is asynchronous (the caching host
            # allocator keeps the buffer until the copy is done). Pinned here, in the main process:
            # a forked loader worker cannot use CUDA.
            staged = torch.empty((len(rows), *rows[0].shape), dtype=rows[0].dtype, pin_memory=True)
            return torch.stack(rows, out=staged).to(device, non_blocking=True)  # (N, 3, H, W)
        return torch.stack(rows).to(device, non_blocking=True)  # (N, 3, H, W)

    def num_classes(self, loaded):
        import torch

        p = loaded.preprocess
        device = next(loaded.module.parameters()).device
        with torch.no_grad():
            return int(loaded.module(torch.zeros(1, 3, p.crop_size, p.crop_size, device=device)).shape[1])

    def map_results(self, maps, items, method):
        from xai_cli.models.preprocess import to_original
        from xai_cli.modalities.image.stats import attribution_stats

        stats = attribution_stats(maps)
        arrays = maps.cpu().numpy()  # (N, H, W); waits for the device
        out = []
        for i, it in enumerate(items):
            peak = stats[i]["peak_input_px"]
            stats[i]["peak_xy"] = [round(v, 2) for v in to_original((peak[1], peak[0]), it.box, arrays.shape[-1])]
            out.append((arrays[i], stats[i], {}))
        return out

    def run_fields(self, loaded):
        return {"preprocess": loaded.preprocess.to_dict()}

    def record_fields(self, result, run):
        it = result.item
        return {
            "input": {"path": result.path, "rel": str(result.rel), "sha256": result.sha256, "size": list(it.size),
                      "mode": it.mode, "notes": it.notes},
            "preprocess": {**run.modality_fields["preprocess"], "crop_box": it.box.to_list()},
        }

    def map_fields(self, result, m):
        return {"layer": m.layer}

    def picture(self, result, m, run):
        from xai_cli.modalities.image.picture import picture

        return picture(result, m, run)
