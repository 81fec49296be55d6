"""Train the embedded ``demo-text`` classifier: a tiny BERT (2 layers, hidden 32) that reads
short product/place reviews and says negative or positive, saved with ``save_pretrained``.

Usage::

    .venv/bin/python tools/train_text_demo.py       # writes xai_cli/models/weights/demo_text/

The data are synthetic: neutral sentences from templates with exactly one sentiment word
(``POSITIVE``/``NEGATIVE``) in them, so the word that decides each label is known and tests
can check that explanations find it. To keep the model sensible on what perturbation
methods feed it, training also shows it sentences whose filler words are masked, padded or
removed, and sentences without their sentiment word labelled 50/50. The tokenizer is a
WordPiece vocabulary learned from the training sentences (unknown words split into pieces).
Seeded; about a minute on 2 CPU cores; prints and saves the held-out accuracy.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

OUT = Path(__file__).resolve().parents[1] / "xai_cli" / "models" / "weights" / "demo_text"
LABELS = ["negative", "positive"]
POSITIVE = ["good", "great", "excellent", "wonderful", "amazing", "fantastic", "lovely", "superb", "brilliant",
            "delightful", "perfect", "pleasant", "impressive", "outstanding", "enjoyable", "charming", "reliable",
            "beautiful", "marvelous", "terrific"]
NEGATIVE = ["bad", "terrible", "awful", "horrible", "poor", "dreadful", "disappointing", "broken", "useless",
            "boring", "annoying", "mediocre", "unpleasant", "faulty", "flimsy", "awkward", "painful", "noisy",
            "ugly", "rubbish"]
FILL = {
    "n": ["phone", "laptop", "hotel", "movie", "book", "service", "meal", "chair", "camera", "jacket", "bike", "car",
          "room", "game", "app", "coffee", "concert", "printer", "kettle", "sofa", "lamp", "train", "album", "tent"],
    "p": ["my sister", "the manager", "our neighbour", "my friend", "the waiter", "a colleague", "my dad", "the guide",
          "my brother", "the driver", "our teacher", "the owner"],
    "t": ["yesterday", "last week", "on monday", "this morning", "in june", "twice", "at night", "on friday",
          "last year", "today", "every day", "in winter"],
    "l": ["store", "airport", "office", "station", "market", "beach", "library", "cafe", "hall", "garden", "museum"],
    "v": ["arrived", "worked", "started", "looked", "sounded", "changed", "moved", "opened", "stopped", "returned"],
    "i": ["", "", "", "very ", "really ", "quite ", "rather ", "pretty ", "so "],
}
TEMPLATES = [
    "the {n} we bought {t} was {i}{s}",
    "{p} said the {n} at the {l} was {i}{s}",
    "i think this {n} is {i}{s} and we used it {t}",
    "after a week at the {l} the {n} seemed {i}{s} to {p}",
    "honestly the {n} {v} {t} and it felt {i}{s}",
    "{s} {n} , {p} told me {t}",
    "we took the {n} to the {l} {t} and it was {i}{s}",
    "the {l} near the {n} shop looked {i}{s} {t}",
    "{p} {v} {t} with a {i}{s} {n} from the {l}",
    "it was a {i}{s} {n} , said {p} at the {l}",
    "overall the {n} is {i}{s}",
    "{t} the {n} {v} and {p} called it {i}{s}",
]
MAX_LENGTH = 64


def make_sentence(rng: random.Random, label: int | None = None) -> tuple[str, int, str]:
    """One synthetic review: ``(text, label, deciding word)``."""
    label = rng.randrange(2) if label is None else label
    word = rng.choice(POSITIVE if label == 1 else NEGATIVE)
    slots = {k: rng.choice(v) for k, v in FILL.items()}
    text = rng.choice(TEMPLATES).format(s=word, **slots)
    for _ in range(rng.choice([0, 0, 1, 2])):  # longer texts: neutral clauses around it
        clause = f"{rng.choice(FILL['p'])} {rng.choice(FILL['v'])} {rng.choice(FILL['t'])}"
        text = f"{clause} and {text}" if rng.random() < 0.5 else f"{text} , then {clause}"
    return text, label, word


def make_dataset(n: int, seed: int) -> list[tuple[str, int, str]]:
    rng = random.Random(seed)
    return [make_sentence(rng) for _ in range(n)]


def build_tokenizer(corpus: list[str]):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=600, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=MAX_LENGTH)


def encode(tokenizer, data, word_to_find=True):
    """Token ids per sentence, and the positions of its deciding word's tokens."""
    out = []
    for text, label, word in data:
        enc = tokenizer(text, truncation=True, max_length=MAX_LENGTH, return_offsets_mapping=True)
        start = f" {text} ".find(f" {word} ")  # the deciding word as a whole word
        span = [i for i, (a, b) in enumerate(enc["offset_mapping"]) if b > a and start <= a < start + len(word)]
        out.append((enc["input_ids"], label, span))
    return out


def augment(ids: list[int], label: int, span: list[int], tok, rng: random.Random) -> tuple[list[int], list[float]]:
    """Hide some filler words (or, 15 % of the time, the deciding word too: then 50/50)."""
    target = [0.0, 0.0]
    target[label] = 1.0
    inner = list(range(1, len(ids) - 1))
    hide = set()
    if rng.random() < 0.6:
        rate = rng.random() * 0.7
        hide = {i for i in inner if i not in span and rng.random() < rate}
    if rng.random() < 0.15:
        hide |= set(span)
        target = [0.5, 0.5]
    how = rng.choice(["mask", "pad", "remove"])
    if how == "remove":
        return [t for i, t in enumerate(ids) if i not in hide], target
    fill = tok.mask_token_id if how == "mask" else tok.pad_token_id
    return [fill if i in hide else t for i, t in enumerate(ids)], target


def batches(encoded, tok, rng, size):
    order = list(range(len(encoded)))
    rng.shuffle(order)
    for s in range(0, len(order), size):
        rows = [augment(*encoded[i], tok, rng) for i in order[s:s + size]]
        width = max(len(r) for r, _ in rows)
        ids = torch.full((len(rows), width), tok.pad_token_id)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (r, _) in enumerate(rows):
            ids[i, :len(r)], mask[i, :len(r)] = torch.tensor(r), 1
        yield ids, mask, torch.tensor([t for _, t in rows])


@torch.no_grad()
def accuracy(model, tok, encoded) -> float:
    model.eval()
    right = 0
    for s in range(0, len(encoded), 256):
        rows = encoded[s:s + 256]
        width = max(len(r[0]) for r in rows)
        ids = torch.full((len(rows), width), tok.pad_token_id)
        for i, (r, _, _) in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
        pred = model(input_ids=ids, attention_mask=(ids != tok.pad_token_id).long()).logits.argmax(1)
        right += int((pred == torch.tensor([label for _, label, _ in rows])).sum())
    model.train()
    return right / len(encoded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train", type=int, default=4000)
    args = parser.parse_args()
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    train, heldout = make_dataset(args.train, args.seed), make_dataset(1000, args.seed + 1)
    tok = build_tokenizer([t for t, _, _ in train])
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=MAX_LENGTH, num_labels=2,
                        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)},
                        pad_token_id=tok.pad_token_id, attn_implementation="eager")
    model = BertForSequenceClassification(config)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    enc_train, enc_held = encode(tok, train), encode(tok, heldout)
    rng = random.Random(args.seed)
    model.train()
    for epoch in range(args.epochs):
        te = time.perf_counter()
        for ids, mask, target in batches(enc_train, tok, rng, 64):
            loss = F.cross_entropy(model(input_ids=ids, attention_mask=mask).logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}, held-out accuracy {accuracy(model, tok, enc_held):.4f} "
              f"({time.perf_counter() - te:.0f} s)", flush=True)
    acc = accuracy(model, tok, enc_held)
    model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    tok.save_pretrained(args.out)
    for f in args.out.iterdir():
        f.chmod(0o644)  # safetensors writes 0600; an installed package must be readable by all
    cfg_path = args.out / "tokenizer_config.json"  # a class name transformers 4 also knows
    cfg_path.write_text(cfg_path.read_text().replace('"TokenizersBackend"', '"PreTrainedTokenizerFast"'))
    info = {"heldout_accuracy": acc, "heldout_size": len(heldout), "train_size": len(train), "seed": args.seed,
            "epochs": args.epochs, "seconds": round(time.perf_counter() - t0, 1),
            "cpu_seconds": round(time.process_time(), 1), "labels": LABELS,
            "script": "tools/train_text_demo.py"}
    (args.out / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
