"""One batch of texts on the device: predict, choose targets, run every method, hand each
input's token and word scores to a writer job. Mirrors the image engine: a batch that runs out
of GPU memory is halved and retried; a batch that fails otherwise is recorded input by input.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from xai_cli.engines.base import PREDICTION_TOP, Engine, Job, item_seed
from xai_cli.inputs.text import TextItem
from xai_cli.methods.targets import choose_targets
from xai_cli.methods.text._base import TokenBatch, merge_words
from xai_cli.outputs.text_items import TextItemJob, TextResult, write_text_item
from xai_cli.summary import SCHEMA_VERSION, prediction_entry

MAX_RECORD_CHARS = 200_000  # a longer text is stored in its record only as far as its tokens reach


@dataclass
class TextEngine(Engine):
    """Predict and explain a batch of TextItems."""

    def _explain(self, items: list[TextItem]) -> dict[int, Job]:
        t0 = time.perf_counter()
        model = self.loaded.module
        batch = TokenBatch.from_lists([it.input_ids for it in items], [it.word_ids for it in items],
                                      model.pad_id, self.device)
        with torch.no_grad():
            probs = torch.softmax(model(batch.input_ids, batch.attention_mask).float(), dim=1)  # (N, classes)
        order = torch.sort(probs, dim=1, descending=True, stable=True)
        top_idx = order.indices[:, :PREDICTION_TOP].cpu().tolist()
        top_p = order.values[:, :PREDICTION_TOP].cpu().tolist()
        targets = choose_targets(probs, self.fixed_target, self.cfg.top_k)  # (N, K)
        target_p = probs.gather(1, targets).cpu().tolist()
        self.stats["predict_s"] += time.perf_counter() - t0
        seeds = [item_seed(self.cfg.seed, it.sha256) for it in items]
        n, k_count = len(items), targets.shape[1]
        per_item: list[list[TextResult]] = [[] for _ in range(n)]
        for method in self.methods:
            for k in range(k_count):
                t = time.perf_counter()
                expl = method.explain(batch, targets[:, k], seeds)
                maps = expl.maps.cpu().numpy()  # (N, T); waits for the device: the timing is real
                seconds = time.perf_counter() - t
                self.add_seconds(method.name, seconds)
                for i, it in enumerate(items):
                    idx = int(targets[i, k])
                    tokens = maps[i, :len(it.input_ids)].astype(np.float64)
                    words = merge_words(tokens, it.word_ids, it.n_words, getattr(method, "word_merge", "sum"))
                    target = {"rank": k + 1, "index": idx, "label": self.loaded.label(idx), "probability": target_p[i][k]}
                    per_item[i].append(TextResult(method.name, method.signed, target, tokens, words, method.describe(),
                                                  seconds / n, expl.details[i] if expl.details else {}))
        return {it.index: self._job(it, top_idx[i], top_p[i], per_item[i], k_count > 1) for i, it in enumerate(items)}

    def _job(self, it: TextItem, top_idx: list[int], top_p: list[float], results: list[TextResult], several: bool) -> Job:
        src = self.files[it.index]
        stored = it.text if len(it.text) <= MAX_RECORD_CHARS else it.text[:it.covered_chars()]
        base = {
            "schema_version": SCHEMA_VERSION,
            "status": "ok",
            "modality": "text",
            "input": {"path": str(src.path), "rel": str(src.rel), "sha256": it.sha256, "encoding": it.encoding,
                      "key": src.key, "line": getattr(src, "line", None), "span": list(src.span) if src.span else None,
                      "chars": len(it.text), "notes": it.notes},
            "model": self.loaded.identity(),
            "tokenization": {"max_length": self.loaded.extra.get("max_length"), "truncated": it.truncated,
                             "tokens_kept": len(it.input_ids), "tokens_total": it.total_tokens,
                             "chars_covered": it.covered_chars()},
            "prediction": prediction_entry(top_idx, top_p, self.loaded.labels),
            "config_key": self.cfg.output_key(),
            "text": stored,
            "text_complete": len(stored) == len(it.text),
        }
        job = TextItemJob(src.rel, it, base, results, several, self.loaded.name, self.cfg.save_raw)
        return partial(write_text_item, job, self.layout)
