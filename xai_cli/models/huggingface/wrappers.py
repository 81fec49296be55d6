"""Hugging Face models seen through the interfaces our methods use: logits out of ``forward``."""

from __future__ import annotations

import torch
from torch import nn


class TextClassifier(nn.Module):
    """An HF sequence classifier seen through what the text methods need.

    Attributes:
        hf: The ``*ForSequenceClassification`` model (eager attention).
        pad_id: Token id of padding (IG's baseline token).
        mask_id: Token id that hides a word (the mask token, else ``pad_id``).
        max_length: Tokens per input, special tokens included; longer texts are truncated.
    """

    def __init__(self, hf: nn.Module, pad_id: int, mask_id: int, max_length: int) -> None:
        super().__init__()
        self.hf, self.pad_id, self.mask_id, self.max_length = hf, pad_id, mask_id, max_length

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(N, T) token ids -> (N, classes) logits."""
        return self.hf(input_ids=input_ids, attention_mask=attention_mask).logits

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(N, T) ids -> (N, T, D) word embeddings (positions are added inside the model)."""
        return self.hf.get_input_embeddings()(input_ids)

    def forward_embeds(self, embeds: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(N, T, D) word embeddings -> (N, classes) logits: the function IG and saliency differentiate."""
        return self.hf(inputs_embeds=embeds, attention_mask=attention_mask).logits

    def embedding_scale(self) -> float:
        """The standard deviation of the word-embedding matrix: the unit of noise in embedding space."""
        return float(self.hf.get_input_embeddings().weight.detach().float().std())

    def attentions(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                   embeds: torch.Tensor | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """One (N, heads, T, T) softmax attention tensor per layer (first layer first), and the
        logits; of ``embeds`` (N, T, D) instead of the ids' embeddings when given."""
        inputs = {"input_ids": input_ids} if embeds is None else {"inputs_embeds": embeds}
        out = self.hf(**inputs, attention_mask=attention_mask, output_attentions=True)
        return [a for a in (out.attentions or ()) if a is not None], out.logits


class ImageClassifier(nn.Module):
    """An HF ``*ForImageClassification`` model whose ``forward(pixel_values)`` returns logits."""

    def __init__(self, hf: nn.Module) -> None:
        super().__init__()
        self.hf = hf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hf(pixel_values=x).logits  # (N, classes)
