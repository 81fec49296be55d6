"""Models shipped inside the package, usable offline: the demo digit classifiers.

Both share ``demo.DemoNet`` and its preprocessing; they differ in their weights (see README's
"embedded demo models"): ``demo-digits`` reads the digit, ``demo-digits-shortcut`` was trained
on data where a corner mark gives some classes away, and uses the mark.
"""

from __future__ import annotations

from pathlib import Path

from xai_cli.errors import UsageError
from xai_cli.models import demo
from xai_cli.models.checkpoint import file_identity, load_into, read_checkpoint
from xai_cli.models.labels import check_labels, read_labels
from xai_cli.models.preprocess import Preprocess
from xai_cli.models.registry import LoadedModel, ModelRequest, register_source


# name -> shipped weights; all are DemoNet with the demo preprocessing.
DIGIT_MODELS: dict[str, Path] = {
    demo.DEMO_NAME: demo.WEIGHTS_PATH,
    demo.SHORTCUT_NAME: demo.SHORTCUT_WEIGHTS_PATH,
}


@register_source(
    "embedded",
    description="models shipped with xai, trained by tools/ scripts; no download needed",
    claims=lambda spec: spec in DIGIT_MODELS,
    names=lambda: list(DIGIT_MODELS),
)
def load_demo(req: ModelRequest) -> LoadedModel:
    preprocess = Preprocess(
        resize_size=demo.DEMO_INPUT_SIZE, crop_size=demo.DEMO_INPUT_SIZE,
        mean=tuple(demo.DEMO_MEAN), std=tuple(demo.DEMO_STD), mode="squash",
    )
    labels = read_labels(req.labels_file) if req.labels_file else list(demo.DEMO_LABELS)
    choice = req.weights or "DEFAULT"
    if choice.lower() == "none":
        return LoadedModel(demo.build_demo_model(pretrained=False), req.spec, "embedded", "none", True,
                           check_labels(labels, 10, "{opt:labels}"), preprocess)
    if choice.upper() == "DEFAULT":
        path = DIGIT_MODELS[req.spec]
    else:
        path = Path(choice).expanduser()
    if not path.exists() and choice.upper() != "DEFAULT":
        raise UsageError(f"weights file not found: {path}", "use weights DEFAULT, none, or a path")
    model = demo.build_demo_model(pretrained=False)
    load_into(model, read_checkpoint(path), path)
    return LoadedModel(model, req.spec, "embedded", file_identity(path), False,
                       check_labels(labels, 10, "{opt:labels}"), preprocess)
