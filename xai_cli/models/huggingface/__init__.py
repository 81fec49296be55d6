"""Hugging Face checkpoints: ``hf:ORG/NAME[@REVISION]`` (the local HF cache, or the Hub when
online) and folders written by ``save_pretrained``; plus the embedded ``demo-text`` classifier.

Sequence classifiers become text models (with their tokenizer); image classifiers become
image models whose ``forward(x)`` returns logits, with the processor's resize/crop/normalise
read into our ``Preprocess``, so the image methods work on HF ViT/DeiT/ConvNeXt unchanged.

Safety: safetensors are preferred whenever a checkpoint has them, a pickled ``*.bin`` is
checked to hold nothing but tensors before transformers reads it (unpickling anything else
needs ``--trust-checkpoint``: it can run code), and a repo's own Python code runs only with
``--trust-remote-code``. A truncated or corrupt weights file is a ``ModelLoadError``. A checkpoint whose classification head was not
in the file (a bare encoder such as a sentence-embedding model) is refused: its head would
be random, and so would every explanation.
"""

from __future__ import annotations

import hashlib
import os
import re
from contextlib import contextmanager
from pathlib import Path

from xai_cli.errors import ModelLoadError, UsageError
from xai_cli.models.huggingface.processor import preprocess_from_processor
from xai_cli.models.huggingface.wrappers import ImageClassifier, TextClassifier
from xai_cli.models.labels import check_labels, read_labels
from xai_cli.models.preprocess import Preprocess
from xai_cli.models.registry import LoadedModel, ModelRequest, register_source
from xai_cli.models.torchvision_models import offline

# Decoding runs in forked DataLoader workers: tokenizers' own thread pool must stay off there.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEMO_TEXT_NAME = "demo-text"
DEMO_TEXT_DIR = Path(__file__).parents[1] / "weights" / "demo_text"
ALLOW_UNTRAINED_ENV = "XAI_ALLOW_UNTRAINED_HEAD"  # the same as allow_untrained_head, for scripts
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "spiece.model", "sentencepiece.bpe.model")
_GENERIC = re.compile(r"^(model|models|checkpoint.*|final|best|output|outputs|snapshot|weights|hf|export)$", re.I)
_SKIP_FORMATS = ["*.h5", "*.msgpack", "*.onnx", "*.ot", "*.tflite", "onnx/*", "openvino/*", "tf_model*", "flax_model*"]


def _is_folder(spec: str) -> bool:
    # Any folder: one without config.json then gets a clear error instead of "unknown model".
    return Path(spec).expanduser().is_dir()


def _cached_names() -> list[str]:
    try:
        from huggingface_hub import constants, scan_cache_dir

        repos = scan_cache_dir(constants.HF_HUB_CACHE).repos  # the same cache snapshot_download reads
        return sorted(f"hf:{r.repo_id}" for r in repos if r.repo_type == "model")
    except Exception:  # no cache yet, or an unreadable one: nothing to list
        return []


@register_source(
    "huggingface",
    description="Hugging Face classifiers: hf:ORG/NAME[@REV] (HF cache, or the Hub when online) or a save_pretrained folder",
    claims=lambda spec: spec.startswith("hf:") or _is_folder(spec),
    names=_cached_names,
)
def load_huggingface(req: ModelRequest) -> LoadedModel:
    _no_weights_option(req)
    if req.spec.startswith("hf:"):
        folder, revision = resolve_hub(req.spec.removeprefix("hf:"))
        return load_folder(folder, req, name=req.spec, source="huggingface", identity=revision)
    folder = Path(req.spec).expanduser()
    # "model" or "checkpoint-500" alone names nothing: keep the parent folder's name with it.
    name = folder.resolve().name if not _GENERIC.match(folder.resolve().name) else "/".join(folder.resolve().parts[-2:])
    return load_folder(folder, req, name=name, source="folder")


@register_source(
    "embedded",
    description="a tiny BERT sentiment classifier shipped with xai (tools/train_text_demo.py)",
    claims=lambda spec: spec == DEMO_TEXT_NAME,
    names=lambda: [DEMO_TEXT_NAME],
)
def load_demo_text(req: ModelRequest) -> LoadedModel:
    _no_weights_option(req)
    if not (DEMO_TEXT_DIR / "config.json").is_file():
        raise ModelLoadError("the demo-text checkpoint is missing from this installation",
                             "run tools/train_text_demo.py, or reinstall xai-cli")
    return load_folder(DEMO_TEXT_DIR, req, name=DEMO_TEXT_NAME, source="embedded")


def _no_weights_option(req: ModelRequest) -> None:
    if req.weights is not None and req.weights.upper() != "DEFAULT":
        raise UsageError("{opt:weights} does not apply to Hugging Face models: the folder holds the weights",
                         "give the folder (or hf:ORG/NAME@REVISION) as {opt:model}")


def resolve_hub(repo: str) -> tuple[Path, str]:
    """The local snapshot folder of ``ORG/NAME[@REVISION]``, downloading it only when online.

    Returns:
        ``(folder, "hf:ORG/NAME@COMMIT")``.

    Raises:
        ModelLoadError: Not cached while offline, not found, or the download failed.
    """
    from huggingface_hub import constants, snapshot_download

    repo_id, _, revision = repo.partition("@")
    hint = (f"download it once with 'hf download {repo_id}' (cache: {constants.HF_HUB_CACHE}), "
            "or give a save_pretrained folder as {opt:model}")
    try:
        folder = Path(snapshot_download(repo_id, revision=revision or None, local_files_only=True))
    except Exception:  # LocalEntryNotFoundError and friends: not cached (at this revision)
        if offline():
            raise ModelLoadError(f"{repo} is not in the Hugging Face cache and the network is off", hint) from None
        try:
            folder = Path(snapshot_download(repo_id, revision=revision or None, ignore_patterns=_SKIP_FORMATS))
        except Exception as e:  # RepositoryNotFoundError, HTTP and socket errors
            raise _hub_error(repo, e, hint) from e
    return folder, f"hf:{repo_id}@{folder.name}"  # snapshot folders are named by commit


def _hub_error(repo: str, e: Exception, hint: str) -> ModelLoadError:
    """One line: not found on the Hub (a typo, or private), or not cached and the Hub out of reach."""
    kind = type(e).__name__
    if kind in ("RepositoryNotFoundError", "GatedRepoError", "RevisionNotFoundError"):
        return ModelLoadError(f"{repo} was not found on the Hugging Face Hub ({kind})",
                              "check the name; a private or gated repo needs 'hf auth login' first")
    return ModelLoadError(f"{repo} is not in the local Hugging Face cache and the Hub could not be reached ({kind})",
                          hint)


@contextmanager
def _quiet_transformers():
    """transformers' load report and progress bars would go to our stderr; keep them off."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_folder(folder: Path, req: ModelRequest, *, name: str, source: str, identity: str | None = None) -> LoadedModel:
    """Load a ``save_pretrained`` folder as a text or image classifier.

    Raises:
        ModelLoadError: Unreadable config or weights, custom code without the flag, no
            classification head, an untrained head (unless allowed), no tokenizer/processor.
    """
    from transformers import AutoConfig

    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"{folder} has no config.json, so it is not a save_pretrained folder",
                             "save the model with model.save_pretrained(folder) and tokenizer.save_pretrained(folder)")
    with _quiet_transformers():
        try:
            config = AutoConfig.from_pretrained(folder, trust_remote_code=req.trust_remote_code)
        except ValueError as e:
            raise _load_error(name, e) from e
        except OSError as e:
            raise ModelLoadError(f"cannot read {name}'s config.json: {str(e)[:200]}",
                                 "is it a save_pretrained folder?") from e
        modality = _modality(config, folder, name)
        model, info = _from_pretrained(folder, config, modality, req, name)
    random_head = _check_head(info, name, _untrained_head_allowed(req))
    weights = identity or _weights_identity(folder)
    if random_head:
        weights += f" (untrained head: {', '.join(random_head)})"
    labels = [str(config.id2label.get(i, i)) for i in range(config.num_labels)] if config.id2label else None
    if req.labels_file:
        labels = check_labels(read_labels(req.labels_file), config.num_labels, "{opt:labels}")
    extra = {"folder": str(folder), "num_labels": int(config.num_labels), "untrained_head": random_head}
    if modality == "image":
        return LoadedModel(ImageClassifier(model), name, source, weights, bool(random_head), labels,
                           _image_preprocess(folder, name), "image", extra)
    tokenizer = _tokenizer(folder, req, name)
    max_length = _max_length(tokenizer, config)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.unk_token_id or 0)
    mask = tokenizer.mask_token_id if tokenizer.mask_token_id is not None else pad
    extra |= {"tokenizer": tokenizer, "max_length": max_length}
    return LoadedModel(TextClassifier(model, pad, mask, max_length), name, source, weights, bool(random_head),
                       labels, None, "text", extra)


def _load_error(name: str, e: Exception) -> ModelLoadError:
    text = str(e)
    if "trust_remote_code" in text or "custom code" in text:
        return ModelLoadError(f"{name} ships its own model code, which would run on this machine",
                              "allow it with {opt:trust_remote_code} if you trust its authors")
    return ModelLoadError(f"cannot load {name}: {text.splitlines()[0][:200]}", "is it a transformers checkpoint?")


def _modality(config, folder: Path, name: str) -> str:
    archs = config.architectures or []
    if any(a.endswith("ForImageClassification") for a in archs):
        return "image"
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "text"
    if any((folder / f).is_file() for f in _TOKENIZER_FILES):
        return "text"  # a bare encoder with a tokenizer: _check_head will say its head is missing
    if (folder / "preprocessor_config.json").is_file():
        return "image"
    raise ModelLoadError(f"{name} is neither a text classifier (no tokenizer files) nor an image classifier "
                         "(no preprocessor_config.json)", "save the tokenizer or image processor beside the model")


def _from_pretrained(folder: Path, config, modality: str, req: ModelRequest, name: str):
    from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification

    auto = AutoModelForImageClassification if modality == "image" else AutoModelForSequenceClassification
    kwargs = {"config": config, "attn_implementation": "eager", "trust_remote_code": req.trust_remote_code,
              "output_loading_info": True}
    if any(folder.glob("*.safetensors")):
        kwargs["use_safetensors"] = True  # never fall back to a pickled .bin beside them
    elif not getattr(req, "trust_checkpoint", False):
        _check_pickles(folder, name)  # whatever torch.load default this transformers uses
    try:
        return auto.from_pretrained(folder, **kwargs)
    except ValueError as e:
        if "Unrecognized configuration class" in str(e):
            raise ModelLoadError(f"{name} ({config.model_type}) has no {modality}-classification model in transformers",
                                 "xai explains sequence and image classifiers") from e
        raise _load_error(name, e) from e
    except (OSError, RuntimeError) as e:  # no weights file, or shapes that do not fit the config
        raise ModelLoadError(f"cannot load {name}'s weights: {_first_line(e)}",
                             "is the folder complete (config.json + model.safetensors)?") from e
    except Exception as e:  # SafetensorError (truncated file), UnpicklingError, and other readers' own types
        raise ModelLoadError(f"cannot read {name}'s weights ({type(e).__name__}: {_first_line(e)})",
                             "is the folder complete? re-save it with model.save_pretrained(folder)") from e


def _first_line(e: Exception) -> str:
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    return (lines[0] if lines else type(e).__name__)[:200]


def _check_pickles(folder: Path, name: str) -> None:
    """Refuse a pickled ``*.bin`` checkpoint holding anything but tensors, without running it.

    ``torch.load(weights_only=True)`` unpickles with an allow-list of tensor types only: a
    pickle that would import and call anything else is refused before it runs.

    Raises:
        ModelLoadError: A ``.bin`` holds other objects, or cannot be read.
    """
    import json
    import pickle

    import torch

    paths = set(folder.glob("pytorch_model*.bin"))  # not training_args.bin: transformers never loads it
    for index in folder.glob("*.bin.index.json"):
        try:
            paths |= {folder / f for f in json.loads(index.read_text()).get("weight_map", {}).values()}
        except (OSError, ValueError, AttributeError) as e:
            raise ModelLoadError(f"cannot read {name}'s {index.name} ({_first_line(e)})", "is the folder complete?") from e
    for path in sorted(p for p in paths if p.is_file()):
        try:
            try:
                torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # mmap: no copy of the weights
            except RuntimeError as e:
                if "mmap" not in str(e):
                    raise
                torch.load(path, map_location="cpu", weights_only=True)  # the legacy (non-zip) format
        except pickle.UnpicklingError as e:
            raise ModelLoadError(f"{name}'s {path.name} holds pickled Python objects, which would run code when loaded",
                                 "re-save it as safetensors (model.save_pretrained(folder)), or pass "
                                 "{opt:trust_checkpoint} if you trust where it came from") from e
        except Exception as e:  # truncated zip, not a checkpoint at all
            raise ModelLoadError(f"cannot read {name}'s {path.name} ({type(e).__name__}: {_first_line(e)})",
                                 "is the folder complete? re-save it with model.save_pretrained(folder)") from e


def _untrained_head_allowed(req: ModelRequest) -> bool:
    env = os.environ.get(ALLOW_UNTRAINED_ENV, "") not in ("", "0", "false")
    return req.allow_untrained_head or env


def _check_head(info: dict, name: str, allowed: bool) -> list[str]:
    """Refuse a model some of whose weights were not in the checkpoint (a random head)."""
    fresh = sorted(set(info.get("missing_keys") or ()) | {k[0] if isinstance(k, tuple) else k
                                                          for k in info.get("mismatched_keys") or ()})
    if not fresh:
        return []
    shown = ", ".join(fresh[:4]) + (f" and {len(fresh) - 4} more" if len(fresh) > 4 else "")
    if not allowed:
        raise ModelLoadError(
            f"{name} has no trained classification head ({shown} not in the checkpoint, so they would be "
            "random): its explanations would explain noise",
            f"use a checkpoint fine-tuned for classification, or set {ALLOW_UNTRAINED_ENV}=1 "
            "({opt:allow_untrained_head}) to explain it anyway")
    return fresh  # load_model warns about the random weights


def _weights_identity(folder: Path) -> str:
    """``file:<name> sha256:<hex>`` of the weights (of the shard index for sharded checkpoints)."""
    candidates = sorted(folder.glob("*.safetensors.index.json")) or sorted(folder.glob("*.safetensors")) \
        or sorted(folder.glob("*.bin.index.json")) or sorted(folder.glob("*.bin"))
    h = hashlib.sha256()
    for path in candidates:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    names = "+".join(p.name for p in candidates) or "none"
    return f"file:{names} sha256:{h.hexdigest()}"


def _tokenizer(folder: Path, req: ModelRequest, name: str):
    from transformers import AutoTokenizer

    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=req.trust_remote_code)
    except Exception as e:  # missing files, or a tokenizer class this transformers lacks
        raise ModelLoadError(f"cannot load {name}'s tokenizer ({type(e).__name__}: {str(e)[:160]})",
                             "save it beside the model: tokenizer.save_pretrained(folder)") from e
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{name}'s tokenizer is not a fast (Rust) tokenizer, so it gives no character offsets",
                             "save a fast one: AutoTokenizer.from_pretrained(name, use_fast=True).save_pretrained(folder)")
    return tokenizer


def _max_length(tokenizer, config) -> int:
    """Tokens per input: the tokenizer's limit, never more than the model has positions for."""
    positions = getattr(config, "max_position_embeddings", None)
    if positions and "roberta" in config.model_type:
        positions -= 2  # RoBERTa-style models offset positions by the padding index
    limits = [x for x in (tokenizer.model_max_length if tokenizer.model_max_length < 1_000_000 else None, positions) if x]
    return int(min(limits)) if limits else 512


def _image_preprocess(folder: Path, name: str) -> Preprocess:
    """Our ``Preprocess`` from the checkpoint's image processor (ViT, DeiT, ConvNeXt styles)."""
    from transformers import AutoImageProcessor

    try:
        with _quiet_transformers():
            proc = AutoImageProcessor.from_pretrained(folder)
    except Exception as e:
        raise ModelLoadError(f"cannot load {name}'s image processor ({type(e).__name__})",
                             "save it beside the model: processor.save_pretrained(folder)") from e
    return preprocess_from_processor(proc)
