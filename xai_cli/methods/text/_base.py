"""What the text methods share: a padded batch of token ids that knows its words, the base
class, word masking, batched evaluation of masked copies, and token <-> word scores.

Text methods explain a ``TextClassifier`` (xai_cli.models.huggingface.wrappers): ``model(ids,
attention_mask)`` gives logits, ``embed``/``forward_embeds`` expose the word-embedding layer,
``pad_id``/``mask_id`` the tokens that stand for "no word". Maps are (N, T) per token.

Perturbation methods work item by item on the item's own tokens (the batch padding trimmed),
so a result never depends on which other inputs share its batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch

from xai_cli.errors import UsageError
from xai_cli.methods._perturb import check_targets
from xai_cli.methods.base import Explanation, Method
from xai_cli import cancel

Mask = Literal["mask", "pad", "remove"]
Output = Literal["probability", "logit"]


@dataclass
class TokenBatch:
    """A padded batch of tokenised documents.

    Attributes:
        input_ids: (N, T) int64, padded with the model's pad id.
        attention_mask: (N, T) int64, 1 on real tokens.
        word_ids: (N, T) int64, the word (0..W_i - 1) of each token; -1 on special tokens and padding.
        embeds: (N, T, D) word embeddings to explain instead of ``embed(input_ids)`` (e.g. the
            noisy copies of max-sensitivity), for the methods that take them
            (``takes_embeddings``); None: the embeddings of the ids.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    word_ids: torch.Tensor
    embeds: torch.Tensor | None = None

    @classmethod
    def from_lists(cls, ids: list[list[int]], word_ids: list[list[int]], pad_id: int,
                   device: torch.device | str = "cpu") -> TokenBatch:
        n, t = len(ids), max(len(x) for x in ids)
        out = cls(torch.full((n, t), pad_id, dtype=torch.long), torch.zeros((n, t), dtype=torch.long),
                  torch.full((n, t), -1, dtype=torch.long))
        for i, (row, words) in enumerate(zip(ids, word_ids)):
            out.input_ids[i, :len(row)] = torch.tensor(row)
            out.attention_mask[i, :len(row)] = 1
            out.word_ids[i, :len(row)] = torch.tensor(words)
        return out.to(device)

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def to(self, device: torch.device | str) -> TokenBatch:
        return TokenBatch(self.input_ids.to(device), self.attention_mask.to(device), self.word_ids.to(device),
                          None if self.embeds is None else self.embeds.to(device))

    def rows(self, index: torch.Tensor, embeds: torch.Tensor | None = None) -> TokenBatch:
        """The documents ``index`` (B,) (repeats allowed), carrying ``embeds`` (B, T, D) if given."""
        index = index.to(self.input_ids.device)
        return TokenBatch(self.input_ids[index], self.attention_mask[index], self.word_ids[index],
                          None if embeds is None else embeds.to(self.input_ids.device))

    def lengths(self) -> list[int]:
        return self.attention_mask.sum(1).tolist()

    def n_words(self) -> list[int]:
        return (self.word_ids.amax(1) + 1).tolist()

    def item(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Item i without padding: ``(ids (1, L), word_ids (L,))``."""
        length = int(self.attention_mask[i].sum())
        return self.input_ids[i:i + 1, :length], self.word_ids[i, :length]


class TextMethod(Method):
    """Base of the text methods: ``explain(batch, targets, seeds)`` -> (N, T) token maps.

    Attributes:
        word_merge: How a word's score is made from its tokens' ("sum", or "l2" for norms).
        takes_embeddings: The method explains ``batch.embeds`` when a batch carries them
            (gradient and attention methods); methods that hide words work on token ids and
            refuse such a batch rather than ignore the embeddings.
    """

    modalities: ClassVar[tuple[str, ...]] = ("text",)
    word_merge: str = "sum"
    takes_embeddings: ClassVar[bool] = False

    def explain(self, batch: TokenBatch, targets: torch.Tensor, seeds: list[int] | None = None) -> Explanation:
        """Explain ``model(batch)[i, targets[i]]`` for each item i.

        Args:
            batch: The documents, on the model's device.
            targets: (N,) class indices.
            seeds: One seed per item, for sampling methods.

        Returns:
            An ``Explanation`` with (N, T) float32 per-token scores (0 on padding).
        """
        if len(batch) != targets.shape[0]:
            raise ValueError(f"{len(batch)} inputs but {targets.shape[0]} targets")
        if batch.embeds is not None and not self.takes_embeddings:
            raise ValueError(f"{self.name} explains token ids, not embeddings")
        seeds = seeds if seeds is not None else [0] * len(batch)
        out = self._explain(batch, targets.to(batch.input_ids.device), seeds)
        out.maps = out.maps.detach().float()
        return out

    def embeddings(self, batch: TokenBatch) -> torch.Tensor:
        """(N, T, D) the batch's word embeddings (``batch.embeds``, else the ids'), detached."""
        if batch.embeds is not None:
            return batch.embeds.detach()
        with torch.no_grad():
            return self.model.embed(batch.input_ids)

    def predict(self, batch: TokenBatch) -> torch.Tensor:
        """(N, classes) softmax probabilities of the model on ``batch`` (no gradients)."""
        with torch.no_grad():
            return torch.softmax(self.model(batch.input_ids, batch.attention_mask).float(), dim=1)



@dataclass(frozen=True)
class WordMaskParams:
    """Knobs of the methods that hide words.

    ``mask``: ``"mask"`` puts the mask token in place of each of the word's tokens (shap's
    text masker does the same), ``"pad"`` the pad token, ``"remove"`` deletes the tokens and
    closes the gap, as lime does to the string.
    """

    n_samples: int | None = None
    mask: Mask = "mask"  # how a word is hidden: the mask token, the pad token, or removed
    output: Output = "probability"  # the score explained: softmax probability or raw logit
    perturbations_per_eval: int = 256  # masked copies per forward pass (memory, not results)

    def validate(self) -> None:
        if self.mask not in ("mask", "pad", "remove"):
            raise UsageError(f"unknown mask {self.mask!r}", "use mask, pad or remove")
        if self.output not in ("probability", "logit"):
            raise UsageError(f"unknown output {self.output!r}", "use probability or logit")
        for name in ("n_samples", "perturbations_per_eval"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"{name} must be at least 1, got {value}")


def perturbed_rows(ids: torch.Tensor, word_ids: torch.Tensor, keep: torch.Tensor, how: Mask, model
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Copies of one document with the words where ``keep`` is False hidden.

    Args:
        ids: (L,) token ids.
        word_ids: (L,) word of each token, -1 for special tokens (never hidden).
        keep: (R, W) bool, True = word shown.
        how: "mask", "pad" or "remove".
        model: Gives ``mask_id`` and ``pad_id``.

    Returns:
        ``(ids (R, L), attention_mask (R, L))``.
    """
    r, length = keep.shape[0], ids.shape[0]
    real = word_ids >= 0  # (L,)
    tok_keep = torch.ones((r, length), dtype=torch.bool, device=ids.device)  # (R, L)
    tok_keep[:, real] = keep[:, word_ids[real]]
    if how == "remove":
        # Kept tokens first, in their order (a stable sort), then padding: the gap closes.
        order = torch.argsort((~tok_keep).to(torch.uint8), dim=1, stable=True)  # (R, L)
        attn = torch.arange(length, device=ids.device) < tok_keep.sum(1, keepdim=True)  # (R, L)
        return torch.where(attn, ids[order], model.pad_id), attn.long()
    fill = model.mask_id if how == "mask" else model.pad_id
    return torch.where(tok_keep, ids, fill), torch.ones((r, length), dtype=torch.long, device=ids.device)


def target_output(logits: torch.Tensor, targets: torch.Tensor, output: Output) -> torch.Tensor:
    """(R, C) logits -> (R,) float64 target probability or logit."""
    logits = logits.float()
    if output == "probability":
        logits = logits.softmax(dim=1)
    return logits.gather(1, targets.view(-1, 1).expand(logits.shape[0], 1))[:, 0].double()


@torch.no_grad()
def masked_scores(model, ids: torch.Tensor, word_ids: torch.Tensor, keep: torch.Tensor, target: torch.Tensor,
                  params: WordMaskParams) -> torch.Tensor:
    """The target's output on each masked copy of one document, ``perturbations_per_eval`` per pass.

    Args:
        ids: (1, L) the document's tokens.
        word_ids: (L,).
        keep: (R, W) bool rows (any device).
        target: () class index.

    Returns:
        (R,) float64.
    """
    # A short text has few distinct masks (lime draws 5000 samples of, say, 2^8 possible):
    # evaluate each distinct row once. A row's value does not depend on the others.
    unique, inverse = torch.unique(keep.cpu(), dim=0, return_inverse=True)  # (U, W), (R,)
    r = unique.shape[0]
    out = torch.empty(r, dtype=torch.float64, device=ids.device)  # (U,)
    for start in range(0, r, params.perturbations_per_eval):
        cancel.check()  # a stop takes one chunk, not a whole batch
        chunk = unique[start:start + params.perturbations_per_eval].to(ids.device)  # (B, W)
        rows, attn = perturbed_rows(ids[0], word_ids, chunk, params.mask, model)  # (B, L)
        logits = model(rows, attn)  # (B, C)
        if start == 0:
            check_targets(target.view(1), logits.shape[1])
        out[start:start + chunk.shape[0]] = target_output(logits, target, params.output)
    return out[inverse.to(ids.device)]  # (R,)


def words_to_tokens(word_scores: torch.Tensor, word_ids: torch.Tensor, width: int) -> torch.Tensor:
    """(W,) word scores -> (width,) token scores: a word's score split evenly over its tokens,
    so that token scores add up to word scores (0 on special tokens and padding)."""
    real = word_ids >= 0
    counts = torch.bincount(word_ids[real], minlength=word_scores.shape[0]).clamp(min=1)  # (W,)
    out = torch.zeros(width, dtype=torch.float32, device=word_scores.device)
    out[:word_ids.shape[0]][real] = (word_scores.double() / counts)[word_ids[real]].float()
    return out


def merge_words(token_scores: np.ndarray, word_ids: list[int] | np.ndarray, n_words: int, how: str = "sum") -> np.ndarray:
    """(L,) token scores -> (W,) word scores: the sum over a word's tokens, or their L2 norm."""
    w = np.asarray(word_ids)
    real = w >= 0
    s = np.asarray(token_scores, dtype=np.float64)[: len(w)][real]
    if how == "l2":
        return np.sqrt(np.bincount(w[real], weights=s ** 2, minlength=n_words))
    return np.bincount(w[real], weights=s, minlength=n_words)
