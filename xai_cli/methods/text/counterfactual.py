"""Counterfactuals of texts: greedy word deletion, after Martens & Provost, "Explaining
Data-Driven Document Classifications", MIS Quarterly 38(1), 2014 (SEDC for documents).

    S = {}
    repeat up to max_words times:
        evaluate the text without S + {w} for every word w not in S      (one batched forward)
        S = the S + {w} with the lowest p(target)
        stop when the target is no longer the predicted class

Words are deleted from the token sequence (``mask="remove"``, the gap closes) or replaced by
the mask or pad token. When the target is not the predicted class, the search maximises
p(target) and stops when the target becomes the prediction (the targeted variant). The map is
1 on the tokens of the deleted words; ``details`` hold the words (indices), the new class and
its probability. The items of a batch search side by side, their candidates evaluated together.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xai_cli.errors import UsageError
from xai_cli.methods._perturb import check_targets
from xai_cli.methods.base import Explanation
from xai_cli.methods.registry import register_method
from xai_cli.methods.text._base import Mask, TextMethod, perturbed_rows


@dataclass(frozen=True)
class TextCounterfactualParams:
    max_words: int = 10  # give up after deleting this many words
    mask: Mask = "remove"  # how a word is deleted: removed, or the mask or pad token
    perturbations_per_eval: int = 256  # candidate texts per forward pass (memory, not results)

    def validate(self) -> None:
        if self.max_words < 1 or self.perturbations_per_eval < 1:
            raise UsageError("counterfactual needs max_words and perturbations_per_eval >= 1")
        if self.mask not in ("mask", "pad", "remove"):
            raise UsageError(f"unknown mask {self.mask!r}", "use mask, pad or remove")


@register_method
class TextCounterfactual(TextMethod):
    name = "counterfactual"
    summary = "the fewest words whose deletion changes the prediction (greedy search)"
    paper = "Martens & Provost 2014, MIS Quarterly 38(1)"
    Params = TextCounterfactualParams

    @torch.no_grad()
    def _explain(self, batch, targets, seeds):
        n, words = len(batch), batch.n_words()
        none = [torch.ones((1, w), dtype=torch.bool) for w in words]
        probs0 = self._probs(batch, [(i, none[i]) for i in range(n)])  # (N, classes)
        check_targets(targets, probs0.shape[1])
        targeted = [int(probs0[i].argmax()) != int(targets[i]) for i in range(n)]
        removed: list[list[int]] = [[] for _ in range(n)]
        result: list[tuple | None] = [None] * n
        for _ in range(self.params.max_words):
            active = [i for i in range(n) if result[i] is None and len(removed[i]) < words[i]]
            if not active:
                break
            cands = {i: [w for w in range(words[i]) if w not in removed[i]] for i in active}
            rows = []
            for i in active:
                keep = torch.ones((len(cands[i]), words[i]), dtype=torch.bool)  # (K, W)
                keep[:, removed[i]] = False
                keep[torch.arange(len(cands[i])), cands[i]] = False
                rows.append((i, keep))
            probs = self._probs(batch, rows)  # (R, classes)
            start = 0
            for i, keep in rows:
                p = probs[start:start + keep.shape[0]]  # (K, classes)
                start += keep.shape[0]
                t = int(targets[i])
                best = int((-p[:, t] if targeted[i] else p[:, t]).argmin())  # first of ties: the earlier word
                removed[i].append(cands[i][best])
                pred = int(p[best].argmax())
                if (pred == t) if targeted[i] else (pred != t):
                    result[i] = (p[best], True)
                elif len(removed[i]) == self.params.max_words or len(removed[i]) == words[i]:
                    result[i] = (p[best], False)
        maps = torch.zeros(batch.input_ids.shape, dtype=torch.float32, device=batch.input_ids.device)  # (N, T)
        details = []
        for i in range(n):
            probs, found = result[i] if result[i] is not None else (probs0[i], False)
            gone = torch.tensor(removed[i], dtype=torch.long, device=maps.device)
            maps[i] = torch.isin(batch.word_ids[i], gone).float()
            details.append({"removed_words": list(removed[i]), "found": found,
                            "mode": "targeted" if targeted[i] else "sedc", "new_class": int(probs.argmax()),
                            "new_probability": float(probs.max()), "target_probability": float(probs[int(targets[i])]),
                            "original_target_probability": float(probs0[i, int(targets[i])])})
        return Explanation(maps, details)

    def _probs(self, batch, rows: list[tuple[int, torch.Tensor]]) -> torch.Tensor:
        """Softmax over classes of each kept-words row (True = word shown) of each item, batched.

        Rows of all items are padded to one length and evaluated ``perturbations_per_eval`` at a time.
        """
        device = batch.input_ids.device
        ids, attn = [], []
        for i, keep in rows:
            item_ids, word_ids = batch.item(i)
            r_ids, r_attn = perturbed_rows(item_ids[0], word_ids, keep.to(device), self.params.mask, self.model)
            ids += list(r_ids)
            attn += list(r_attn)
        width = max(x.shape[0] for x in ids)
        ids_t = torch.stack([torch.nn.functional.pad(x, (0, width - x.shape[0]), value=self.model.pad_id) for x in ids])
        attn_t = torch.stack([torch.nn.functional.pad(x, (0, width - x.shape[0])) for x in attn])
        out = []
        for s in range(0, ids_t.shape[0], self.params.perturbations_per_eval):
            e = s + self.params.perturbations_per_eval
            out.append(self.model(ids_t[s:e], attn_t[s:e]).float().softmax(1))
        return torch.cat(out)  # (R, classes)
