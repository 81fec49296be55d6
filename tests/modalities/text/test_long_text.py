"""A long text is not tokenised whole: the work done does not grow past the model's limit, and
the kept tokens are those of tokenising the whole text."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from tests.reliability.cli import manifest, run, xai_cmd
from xai_cli.inputs.discover import InputFile
from xai_cli.modalities.text.decode import TextItem, decode_text

SENTENCE = "the phone was great , but the battery died after two days . "


class Counting:
    """A tokenizer that counts the characters it is asked to tokenise."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.chars = tokenizer, 0

    def __call__(self, text, **kw):
        self.chars += len(text)
        return self.tokenizer(text, **kw)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


def decode(demo_text, text: str) -> tuple[TextItem, int]:
    tok = Counting(demo_text.extra["tokenizer"])
    item = decode_text(0, InputFile(Path("long.txt"), PurePosixPath("long.txt")), text.encode(), tok,
                       demo_text.extra["max_length"])
    assert isinstance(item, TextItem)
    return item, tok.chars


def test_work_does_not_grow_with_the_text_past_the_limit(demo_text):
    small, small_chars = decode(demo_text, SENTENCE * 200)  # 12 kB
    big, big_chars = decode(demo_text, SENTENCE * 170_000)  # 10 MB
    assert big_chars == small_chars < 20_000  # characters handed to the tokenizer
    assert big.input_ids == small.input_ids and big.offsets == small.offsets and big.word_ids == small.word_ids
    assert not big.total_exact and big.total_tokens > 64 and big.truncated
    assert "of more than" in big.notes[0] and "not tokenised" in big.notes[0]


def test_the_kept_tokens_are_those_of_the_whole_text(demo_text):
    text = "".join(f"word{i} is {'longish' * (i % 3)} here; " for i in range(3000))
    item, _ = decode(demo_text, text)
    whole = demo_text.extra["tokenizer"](text, truncation=True, max_length=64, return_offsets_mapping=True)
    assert item.input_ids == whole["input_ids"]
    assert [o for o in item.offsets if o is not None] == [tuple(o) for o in whole["offset_mapping"][1:-1]]


def test_a_short_text_keeps_its_exact_total(demo_text):
    item, _ = decode(demo_text, "the phone was great . " * 40)
    assert item.total_exact and item.total_tokens == 202


def test_a_10_mb_text_through_the_cli(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "long.txt").write_text(SENTENCE * 170_000)
    r = run(xai_cmd("explain", "--model", "demo-text", "--method", "saliency", "--workers", "0",
                    tmp_path / "in", "--out", tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    record = json.loads((tmp_path / "out" / manifest(tmp_path / "out")[0]["record"]).read_text())
    assert any("of more than" in n for n in record["input"]["notes"])
