"""Text: ``.txt`` files and ``.jsonl`` lines, tokenised in the loader's workers, batched as a
padded ``TokenBatch``; maps are per token, merged into per-word scores for records and pictures."""

from __future__ import annotations

from functools import partial

from xai_cli.inputs.discover import TEXT_EXTENSIONS
from xai_cli.modalities import register_modality
from xai_cli.modalities.base import Modality


@register_modality
class TextModality(Modality):
    name = "text"
    extensions = TEXT_EXTENSIONS
    default_method = "ig"

    def expand(self, files):
        from xai_cli.modalities.text.decode import expand_jsonl

        return expand_jsonl(files)

    def decoder(self, loaded, decode="cpu"):  # tokenising has no device path: ``decode`` changes nothing
        from xai_cli.modalities.text.decode import decode_text

        # The tokenizer travels to the workers with the partial (fast tokenizers pickle).
        return partial(decode_text, tokenizer=loaded.extra["tokenizer"], max_length=loaded.extra["max_length"])

    def collate(self, items, loaded, device):
        from xai_cli.methods.text._base import TokenBatch

        return TokenBatch.from_lists([it.input_ids for it in items], [it.word_ids for it in items],
                                     loaded.module.pad_id, device)

    def num_classes(self, loaded):
        return int(loaded.extra["num_labels"])

    def map_results(self, maps, items, method):
        import numpy as np

        from xai_cli.methods.text._base import merge_words
        from xai_cli.modalities.text.record import text_stats

        arrays = maps.cpu().numpy()  # (N, T); waits for the device
        out = []
        for i, it in enumerate(items):
            tokens = arrays[i, :len(it.input_ids)].astype(np.float64)
            words = merge_words(tokens, it.word_ids, it.n_words, getattr(method, "word_merge", "sum"))
            out.append((tokens, text_stats(tokens, words, it), {"word_scores": words}))
        return out

    def run_fields(self, loaded):
        return {"max_length": loaded.extra.get("max_length")}

    def record_fields(self, result, run):
        from xai_cli.modalities.text.record import record_fields

        return record_fields(result, run)

    def map_fields(self, result, m):
        import numpy as np

        from xai_cli.modalities.text.record import num

        fields = {"token_scores": [num(v) for v in np.nan_to_num(m.scores)],
                  "word_scores": [num(v) for v in np.nan_to_num(m.extra["word_scores"])]}
        if "removed_words" in m.details:  # a counterfactual: the text the model answers differently
            from xai_cli.modalities.text.record import without_words

            fields["counterfactual_text"] = without_words(result.item, m.details["removed_words"])
        return fields

    def picture(self, result, m, run):
        from xai_cli.modalities.text.picture import picture

        return picture(result, m, run)
