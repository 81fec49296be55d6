"""One batch of images on the device: predict, choose targets, run every method, hand each
input's results to a writer job. A batch that runs out of GPU memory is halved and retried,
down to single inputs; an input that fails alone is recorded as failed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import torch

from xai_cli.engines.base import PREDICTION_TOP, Engine, Job, item_seed
from xai_cli.inputs.decode import ImageItem
from xai_cli.methods.targets import choose_targets
from xai_cli.models.preprocess import to_original
from xai_cli.outputs.items import ItemJob, MapResult, write_item
from xai_cli.summary import SCHEMA_VERSION, attribution_stats, prediction_entry


@dataclass
class ImageEngine(Engine):
    """Predict and explain a batch of ImageItems."""

    def _explain(self, items: list[ImageItem]) -> dict[int, Job]:
        x = torch.stack([it.tensor for it in items]).to(self.device, non_blocking=True)  # (N, 3, H, W)
        seeds = [item_seed(self.cfg.seed, it.sha256) for it in items]
        t = time.perf_counter()
        # The first method predicts too: Grad-CAM's hooked forward already yields the logits.
        probs, targets, first = self.methods[0].explain_predicted(
            x, lambda p: choose_targets(p, self.fixed_target, self.cfg.top_k), seeds)  # (N, C), (N, K)
        order = torch.sort(probs, dim=1, descending=True, stable=True)
        top_idx = order.indices[:, :PREDICTION_TOP].cpu().tolist()
        top_p = order.values[:, :PREDICTION_TOP].cpu().tolist()
        target_p = probs.gather(1, targets).cpu().tolist()
        n, k_count = len(items), targets.shape[1]
        per_item: list[list[MapResult]] = [[] for _ in range(n)]
        for method in self.methods:
            if method is not self.methods[0]:
                t = time.perf_counter()
            expls = first if method is self.methods[0] else [method.explain(x, targets[:, k], seeds) for k in range(k_count)]
            stats = [attribution_stats(e.maps) for e in expls]
            maps = [e.maps.cpu().numpy() for e in expls]  # waits for the device: the timing below is real
            seconds = time.perf_counter() - t
            self.add_seconds(method.name, seconds)
            for k, expl in enumerate(expls):
                for i, it in enumerate(items):
                    idx = int(targets[i, k])
                    st = stats[k][i]
                    peak = st["peak_input_px"]
                    st["peak_xy"] = [round(v, 2) for v in to_original((peak[1], peak[0]), it.box, maps[k].shape[-1])]
                    target = {"rank": k + 1, "index": idx, "label": self.loaded.label(idx), "probability": target_p[i][k]}
                    per_item[i].append(MapResult(method.name, method.signed, target, maps[k][i], st, method.describe(),
                                                 expl.layer, seconds / (n * k_count), expl.details[i] if expl.details else {}))
        return {it.index: self._job(it, top_idx[i], top_p[i], per_item[i], k_count > 1) for i, it in enumerate(items)}

    def _job(self, it: ImageItem, top_idx: list[int], top_p: list[float], results: list[MapResult], several: bool) -> Job:
        src = self.files[it.index]
        base = {
            "schema_version": SCHEMA_VERSION,
            "status": "ok",
            "input": {"path": str(src.path), "rel": str(src.rel), "sha256": it.sha256, "size": list(it.size),
                      "mode": it.mode, "notes": it.notes},
            "model": self.loaded.identity(),
            "preprocess": {**self.loaded.preprocess.to_dict(), "crop_box": it.box.to_list()},
            "prediction": prediction_entry(top_idx, top_p, self.loaded.labels),
            "config_key": self.cfg.output_key(),
        }
        job = ItemJob(src.rel, str(src.path), base, it.original, tuple(it.box.to_list()), results, several,
                      self.loaded.name, self.cfg.save_raw, self.cfg.render_max_side)
        return partial(write_item, job, self.layout)

