"""Documents as the pipeline's decoder makes them, for tests that call the methods directly."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from xai_cli.inputs.discover import InputFile
from xai_cli.modalities.text.decode import TextItem, decode_text
from xai_cli.methods.text import TokenBatch
from xai_cli.models.registry import LoadedModel


def tokenise(loaded: LoadedModel, texts: list[str]) -> tuple[list[TextItem], TokenBatch]:
    """Documents as the pipeline's decoder makes them, and their padded batch."""
    tok, max_length = loaded.extra["tokenizer"], loaded.extra["max_length"]
    items = [decode_text(i, InputFile(Path(f"t{i}.txt"), PurePosixPath(f"t{i}.txt")), t.encode(), tok, max_length)
             for i, t in enumerate(texts)]
    batch = TokenBatch.from_lists([it.input_ids for it in items], [it.word_ids for it in items], loaded.module.pad_id)
    return items, batch


def word_text(item: TextItem, w: int) -> str:
    s, e = item.word_spans()[w]
    return item.text[s:e]
