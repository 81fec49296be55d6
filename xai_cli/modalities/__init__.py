"""What differs between images and text, in one table: which files are inputs, how one is
decoded (in a worker process), and which engine explains a batch of them.

The pipeline looks up ``MODALITIES[loaded.modality]`` and is otherwise the same for both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from xai_cli.inputs.discover import IMAGE_EXTENSIONS, TEXT_EXTENSIONS, InputFile
from xai_cli.models.registry import LoadedModel


@dataclass(frozen=True)
class Modality:
    """How one kind of input flows through the pipeline.

    Attributes:
        name: "image" or "text" (``LoadedModel.modality``).
        extensions: File suffixes discovery picks up.
        expand: Turns discovered files into inputs (e.g. one input per JSONL line).
        decoder: ``decoder(loaded)`` -> a picklable ``fn(index, file, data) -> Item | Failure``.
        engine: ``engine(cfg, loaded, methods, files, layout, device, fixed_target)`` with ``explain(items)``.
        num_classes: The model's number of classes.
        default_method: What ``--method`` means when not given.
    """

    name: str
    extensions: frozenset[str]
    expand: Callable[[list[InputFile]], list[InputFile]]
    decoder: Callable[[LoadedModel], Callable]
    engine: Callable
    num_classes: Callable[[LoadedModel], int]
    default_method: str


def _image_decoder(loaded: LoadedModel):
    from xai_cli.inputs.decode import decode_image

    return partial(decode_image, preprocess=loaded.preprocess)


def _image_engine(*args):
    from xai_cli.engines.image import ImageEngine

    return ImageEngine(*args)


def _image_classes(loaded: LoadedModel) -> int:
    import torch

    p = loaded.preprocess
    device = next(loaded.module.parameters()).device
    with torch.no_grad():
        return int(loaded.module(torch.zeros(1, 3, p.crop_size, p.crop_size, device=device)).shape[1])


def _text_expand(files: list[InputFile]) -> list[InputFile]:
    from xai_cli.inputs.text import expand_jsonl

    return expand_jsonl(files)


def _text_decoder(loaded: LoadedModel):
    from xai_cli.inputs.text import decode_text

    # The tokenizer travels to the workers with the partial (fast tokenizers pickle).
    return partial(decode_text, tokenizer=loaded.extra["tokenizer"], max_length=loaded.extra["max_length"])


def _text_engine(*args):
    from xai_cli.engines.text import TextEngine

    return TextEngine(*args)


MODALITIES: dict[str, Modality] = {
    "image": Modality("image", IMAGE_EXTENSIONS, lambda files: files, _image_decoder, _image_engine, _image_classes,
                      "gradcam"),
    "text": Modality("text", TEXT_EXTENSIONS, _text_expand, _text_decoder, _text_engine,
                     lambda loaded: int(loaded.extra["num_labels"]), "ig"),
}
