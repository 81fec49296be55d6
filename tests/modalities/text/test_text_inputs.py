"""Text inputs: encodings, empty and binary files, JSONL lines (ids, names, bad lines), truncation."""

from __future__ import annotations

import codecs
import json
from pathlib import Path, PurePosixPath

import pytest

from xai_cli.inputs.read import Failure, read_input
from xai_cli.inputs.discover import TEXT_EXTENSIONS, InputFile, discover
from xai_cli.modalities.text.decode import JsonlDocument, TextItem, decode_bytes, decode_text, expand_jsonl

TEXT = "Le café était excellent — vraiment.\nThe room was noisy."


def decode(loaded, path: Path, file: InputFile | None = None):
    file = file or InputFile(path, PurePosixPath(path.name))
    data, problem = read_input(file)
    assert problem is None
    return decode_text(0, file, data, loaded.extra["tokenizer"], loaded.extra["max_length"])


@pytest.mark.parametrize("encoding, raw", [
    ("utf-8", TEXT.encode("utf-8")),
    ("utf-8-bom", codecs.BOM_UTF8 + TEXT.encode("utf-8")),
    ("utf-16-le", codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le")),
    ("utf-16-be", codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be")),
    ("utf-32-le", codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le")),
])
def test_encodings_are_detected_and_offsets_slice_the_text(demo_text, tmp_path, encoding, raw):
    assert decode_bytes(raw) == (TEXT, encoding)
    (tmp_path / "doc.txt").write_bytes(raw)
    item = decode(demo_text, tmp_path / "doc.txt")
    assert isinstance(item, TextItem) and item.text == TEXT and item.encoding == encoding
    for tok, off in zip(item.tokens, item.offsets):
        if off is not None:  # the demo tokenizer lowercases and strips accents; pieces start with ##
            piece = TEXT[off[0]:off[1]].lower()
            assert piece == tok.removeprefix("##") or tok == "[UNK]" or not piece.isascii()
    spans = item.word_spans()
    assert [TEXT[s:e] for s, e in spans][:3] == ["Le", "café", "était"]
    assert "\n" not in "".join(TEXT[s:e] for s, e in spans)


@pytest.mark.parametrize("raw, reason", [
    (b"", "empty file"),
    (b"  \n\t \r\n", "empty text"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
    ("caf\xe9 in latin-1".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 3)"),
    (codecs.BOM_UTF16_LE + b"\x00\xd8", "not valid utf-16-le"),
    ("\u200b\u200b".encode(), "no words left after tokenisation"),  # zero-width spaces only
])
def test_bad_text_files_fail_alone_with_a_one_line_reason(demo_text, tmp_path, raw, reason):
    (tmp_path / "bad.txt").write_bytes(raw)
    out = decode(demo_text, tmp_path / "bad.txt")
    assert isinstance(out, Failure) and reason in out.reason and "\n" not in out.reason


def test_jsonl_lines_become_inputs_named_by_id(tmp_path):
    lines = [json.dumps({"id": "a7", "text": "one"}), "", json.dumps({"id": "../../etc/pass wd", "text": "two"}),
             "{not json", json.dumps({"id": "a7", "text": "dup"}), json.dumps({"text": "no id"}) + "\r",
             json.dumps({"id": 12, "text": "int id"})]
    raw = codecs.BOM_UTF8 + "\n".join(lines).encode() + b"\n"
    (tmp_path / "reviews.jsonl").write_bytes(raw)
    (tmp_path / "note.txt").write_text("plain")
    files = expand_jsonl(discover([tmp_path], TEXT_EXTENSIONS))
    assert [str(f.rel) for f in files] == ["note.txt", "reviews/a7", "reviews/etc_pass_wd", "reviews/line-4",
                                           "reviews/a7_line-5", "reviews/line-6", "reviews/12"]
    docs = [f for f in files if isinstance(f, JsonlDocument)]
    assert [d.line for d in docs] == [1, 3, 4, 5, 6, 7]
    assert [d.key for d in docs] == ["a7", "../../etc/pass wd", "4", "a7", "6", "12"]
    for d in docs:  # spans cut exactly one line, without BOM, newline or carriage return
        piece = raw[d.span[0]:d.span[1]]
        assert piece == lines[d.line - 1].encode().rstrip(b"\r")


def test_a_bad_jsonl_line_fails_alone(demo_text, tmp_path):
    lines = ['{"id": "ok", "text": "the phone was great"}', "{not json", '{"id": "b", "review": "x"}',
             '{"id": "c", "text": 5}', '[1, 2]', '{"id": "e", "text": "   "}']
    (tmp_path / "r.jsonl").write_text("\n".join(lines) + "\n")
    files = expand_jsonl([InputFile(tmp_path / "r.jsonl", PurePosixPath("r.jsonl"))])
    out = [decode(demo_text, f.path, f) for f in files]
    assert isinstance(out[0], TextItem) and out[0].text == "the phone was great" and out[0].encoding == "utf-8 (jsonl)"
    reasons = [o.reason for o in out[1:]]
    assert reasons[0].startswith("line 2: not valid JSON")
    assert reasons[1] == "line 3 (id 'b'): no \"text\" field (it has: id, review)"
    assert "is a int, not a string" in reasons[2] and "not an object" in reasons[3] and "empty text" in reasons[4]


def test_an_empty_jsonl_file_is_one_failed_input(demo_text, tmp_path):
    (tmp_path / "e.jsonl").write_text("\n\n")
    files = expand_jsonl([InputFile(tmp_path / "e.jsonl", PurePosixPath("e.jsonl"))])
    assert len(files) == 1 and files[0].span is None
    assert "no non-blank lines" in decode(demo_text, files[0].path, files[0]).reason


def test_long_texts_are_truncated_and_say_so(demo_text, tmp_path):
    (tmp_path / "long.txt").write_text("the phone was great . " * 40)
    item = decode(demo_text, tmp_path / "long.txt")
    assert len(item.input_ids) == demo_text.extra["max_length"] == 64
    assert item.truncated and item.total_tokens == 40 * 5 + 2
    assert item.tokens[0] == "[CLS]" and item.tokens[-1] == "[SEP]"
    assert "explained 64 of 202" in item.notes[0]
    assert item.covered_chars() < len(item.text)
