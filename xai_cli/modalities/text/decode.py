"""Text inputs: ``.txt`` files (one document each) and ``.jsonl`` files (one document per line).

``expand_jsonl`` turns each line of a ``.jsonl`` file into its own input (a byte span of the
file), named by its ``id`` field, so ``reviews.jsonl``'s line with id "a7" has its outputs
under ``reviews/a7.*``. ``decode_text`` runs in the loader's workers: it decodes the bytes
(UTF-8, or UTF-8/16/32 announced by a byte-order mark) and tokenises them, truncating to the
model's limit. A bad file or line becomes a ``Failure`` with a one-line reason, never an
exception.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from dataclasses import dataclass, field

from xai_cli.inputs.read import Failure
from xai_cli.inputs.discover import InputFile

# UTF-32 first: its little-endian mark starts with UTF-16's.
_BOMS = [(codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")]
_SAFE = re.compile(r"[^A-Za-z0-9_-]+")
MAX_NAME = 80  # characters of an id kept in an output file name


@dataclass(frozen=True)
class JsonlDocument(InputFile):
    """One line of a ``.jsonl`` file (``span`` is its byte range, ``key`` its id or line number)."""

    line: int = 0  # 1-based line number in the file


@dataclass
class TextItem:
    """A decoded, tokenised document with what its record and picture need.

    ``offsets`` are character offsets into ``text`` (Python string indices, the BOM removed);
    special tokens have ``None``. ``word_ids`` number the words 0.. in text order (-1 for
    special tokens); a word is what the tokenizer's pre-tokenizer splits (BERT: punctuation
    is its own word), and its tokens are its sub-word pieces.
    """

    index: int
    text: str
    sha256: str
    encoding: str
    input_ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int] | None]
    word_ids: list[int]
    total_tokens: int  # special tokens included, before truncation; a lower bound unless total_exact
    notes: list[str] = field(default_factory=list)
    total_exact: bool = True  # False: only a prefix of a long text was tokenised (see tokenize_prefix)

    @property
    def truncated(self) -> bool:
        return self.total_tokens > len(self.input_ids)

    @property
    def n_words(self) -> int:
        return max(self.word_ids, default=-1) + 1

    def word_spans(self) -> list[tuple[int, int]]:
        """(start, end) character span of each word: from its first token's start to its last's end."""
        spans: list[list[int]] = [[-1, -1] for _ in range(self.n_words)]
        for w, off in zip(self.word_ids, self.offsets):
            if w >= 0 and off is not None:
                span = spans[w]
                span[0] = off[0] if span[0] < 0 else min(span[0], off[0])
                span[1] = max(span[1], off[1])
        return [(s, e) for s, e in spans]

    def covered_chars(self) -> int:
        """How many leading characters of ``text`` the kept tokens cover."""
        return max((off[1] for off in self.offsets if off is not None), default=0)


def expand_jsonl(files: list[InputFile]) -> list[InputFile]:
    """Each ``.jsonl`` file -> one ``JsonlDocument`` per non-blank line; other files unchanged.

    Names come from the ``id`` field (made safe for file names; a repeated one gets the line
    number appended), else ``line-N``. A file that cannot be read, or has no lines, stays one
    input: the decoder reports it.
    """
    out: list[InputFile] = []
    for f in files:
        docs = _lines(f) if f.path.suffix.lower() == ".jsonl" else None
        out += docs or [f]
    return out


def _lines(f: InputFile) -> list[JsonlDocument] | None:
    try:
        with open(f.path, "rb") as stream:  # streamed: only the offsets and ids stay in memory
            return _index(f, stream)
    except OSError:
        return None


def _index(f: InputFile, stream) -> list[JsonlDocument]:
    folder = f.rel.with_suffix("")
    docs, used, start = [], set(), 0
    for number, raw in enumerate(stream, start=1):
        line = raw[len(codecs.BOM_UTF8):] if number == 1 and raw.startswith(codecs.BOM_UTF8) else raw
        offset, start = start + len(raw) - len(line), start + len(raw)
        line = line.rstrip(b"\n").rstrip(b"\r") if line.endswith(b"\n") else line
        span = (offset, offset + len(line))
        if not line.strip():
            continue
        ident = _id_of(line)
        name = _SAFE.sub("_", ident).strip("_")[:MAX_NAME] if ident else ""
        name = name or f"line-{number}"
        if name in used:
            name = f"{name}_line-{number}"
        used.add(name)
        docs.append(JsonlDocument(f.path, folder / name, span, ident or str(number), number))
    return docs


def _id_of(line: bytes) -> str | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    ident = obj.get("id") if isinstance(obj, dict) else None
    return str(ident) if isinstance(ident, (str, int)) and not isinstance(ident, bool) else None


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Bytes -> (text, encoding name); UTF-8 unless a byte-order mark says otherwise.

    Raises:
        ValueError: A one-line reason (binary data, or not valid in its encoding).
    """
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(name.removesuffix("-sig")), name.replace("-sig", "-bom")
            except UnicodeDecodeError as e:
                raise ValueError(f"not valid {name} text after its byte-order mark (at byte {e.start + len(bom)})") from None
    if b"\x00" in data[:8192]:
        raise ValueError("binary file (contains NUL bytes), not text: text inputs must be UTF-8 or carry a BOM")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}): "
                         "re-save it as UTF-8 (or UTF-16 with a BOM)") from None


def _document(file: InputFile, data: bytes) -> tuple[str, str]:
    """The text of one input and its encoding, or ValueError with the reason."""
    if file.span is None:
        if file.path.suffix.lower() == ".jsonl":
            raise ValueError("no documents: the .jsonl file has no non-blank lines")
        return decode_bytes(data)
    where = f"line {getattr(file, 'line', 0) or '?'}"
    if file.key and not file.key.isdigit():
        where += f" (id {file.key!r})"
    try:
        obj = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"{where}: not UTF-8 (byte 0x{data[e.start]:02x}); .jsonl files must be UTF-8") from None
    except ValueError as e:
        raise ValueError(f"{where}: not valid JSON ({str(e)[:100]})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: a JSON {type(obj).__name__}, not an object with a \"text\" field")
    if "text" not in obj:
        raise ValueError(f"{where}: no \"text\" field (it has: {', '.join(list(obj)[:6]) or 'no fields'})")
    if not isinstance(obj["text"], str):
        raise ValueError(f"{where}: \"text\" is a {type(obj['text']).__name__}, not a string")
    return obj["text"], "utf-8 (jsonl)"


def decode_text(index: int, file: InputFile, data: bytes, tokenizer, max_length: int) -> TextItem | Failure:
    """Decode and tokenise one document; never raises for a bad input.

    Args:
        index: The input's index in the run.
        file: Where it came from (a ``JsonlDocument`` for one line of a ``.jsonl`` file).
        data: Its bytes (the line, for a ``JsonlDocument``).
        tokenizer: A fast HF tokenizer (it gives character offsets and word ids).
        max_length: Tokens kept, special tokens included.
    """
    digest = hashlib.sha256(data).hexdigest()
    if not data:
        return Failure(index, "empty file (0 bytes): nothing to explain", digest)
    try:
        text, encoding = _document(file, data)
    except ValueError as e:
        return Failure(index, str(e), digest)
    if not text.strip():
        return Failure(index, "empty text (only whitespace): nothing to explain", digest)
    enc, total, exact = tokenize_prefix(tokenizer, text, max_length)
    ids = list(enc["input_ids"])
    special = enc["special_tokens_mask"]
    offsets = [None if s else (int(a), int(b)) for (a, b), s in zip(enc["offset_mapping"], special)]
    word_ids = _number_words(enc.word_ids(), special)
    if max(word_ids, default=-1) < 0:
        return Failure(index, "no words left after tokenisation (only characters the tokenizer drops)", digest)
    notes = []
    if not exact:
        notes.append(f"truncated to the model's {max_length} tokens: explained {len(ids)} of more than {total} "
                     f"(the text after its first {enc.chars_tokenised} characters was not tokenised)")
    elif total > len(ids):
        notes.append(f"truncated to the model's {max_length} tokens: explained {len(ids)} of {total}")
    return TextItem(index, text, digest, encoding, ids, tokenizer.convert_ids_to_tokens(ids), offsets, word_ids,
                    total, notes, exact)


FIRST_WINDOW_CHARS_PER_TOKEN = 8  # the first prefix tried: generous for English (about 4 chars per token)
MARGIN_TOKENS = 16  # tokens beyond the kept ones, so the cut never changes a kept token


class _Encoding:
    """A tokenizer's encoding of a prefix, plus how many characters it covered."""

    def __init__(self, enc, chars: int) -> None:
        self._enc, self.chars_tokenised = enc, chars

    def __getitem__(self, key):
        return self._enc[key]

    def word_ids(self):
        return self._enc.word_ids()


def tokenize_prefix(tokenizer, text: str, max_length: int):
    """Tokenise only as much of ``text`` as the model keeps: memory and time stay flat however long it is.

    A prefix of the text is tokenised, cut at a space and grown (x4) until it gives more than
    ``max_length`` + ``MARGIN_TOKENS`` tokens, or is the whole text. The kept tokens, their
    offsets and word ids are those of tokenising the whole text: the cut lies past them.

    Returns:
        ``(encoding truncated to max_length, total tokens, exact)``. ``exact`` is False when
        the text was not tokenised to its end: ``total`` is then a lower bound (the tokens of
        the prefix), so a record must say "more than", never present it as the count.
    """
    window = max(1024, max_length * FIRST_WINDOW_CHARS_PER_TOKEN)
    while True:
        whole = window >= len(text)
        end = len(text) if whole else _cut(text, window)
        prefix = text[:end]
        total = len(tokenizer(prefix, truncation=False, verbose=False)["input_ids"])
        if whole or total > max_length + MARGIN_TOKENS:
            enc = tokenizer(prefix, truncation=True, max_length=max_length, return_offsets_mapping=True,
                            return_special_tokens_mask=True)
            return _Encoding(enc, end), total, whole
        window *= 4


def _cut(text: str, window: int) -> int:
    """An end for a prefix of about ``window`` characters, at a space if there is one near it."""
    space = text.rfind(" ", window // 2, window)
    return space if space > 0 else window


def _number_words(raw: list[int | None], special: list[int]) -> list[int]:
    """Tokenizer word ids -> 0, 1, ... in order of appearance; -1 for special tokens.

    A non-special token without a word id (some tokenizers) is a word of its own.
    """
    out, seen = [], {}
    for i, (w, s) in enumerate(zip(raw, special)):
        if s:
            out.append(-1)
            continue
        key = ("w", w) if w is not None else ("t", i)
        out.append(seen.setdefault(key, len(seen)))
    return out
