"""Models shipped inside the package, usable offline (the demo digit classifier)."""

from __future__ import annotations

from pathlib import Path

from xai_cli.errors import UsageError
from xai_cli.models import demo
from xai_cli.models.checkpoint import file_identity, load_into, read_checkpoint
from xai_cli.models.labels import check_labels, read_labels
from xai_cli.models.preprocess import Preprocess
from xai_cli.models.registry import LoadedModel, ModelRequest, register_source


@register_source(
    "embedded",
    description="models shipped with xai, trained by tools/ scripts; no download needed",
    claims=lambda spec: spec == demo.DEMO_NAME,
    names=lambda: [demo.DEMO_NAME],
)
def load_demo(req: ModelRequest) -> LoadedModel:
    preprocess = Preprocess(
        resize_size=demo.DEMO_INPUT_SIZE, crop_size=demo.DEMO_INPUT_SIZE,
        mean=tuple(demo.DEMO_MEAN), std=tuple(demo.DEMO_STD), mode="squash",
    )
    labels = read_labels(req.labels_file) if req.labels_file else list(demo.DEMO_LABELS)
    choice = req.weights or "DEFAULT"
    if choice.lower() == "none":
        return LoadedModel(demo.build_demo_model(pretrained=False), demo.DEMO_NAME, "embedded", "none", True,
                           check_labels(labels, 10, "{opt:labels}"), preprocess)
    if choice.upper() == "DEFAULT":
        path = demo.WEIGHTS_PATH
    else:
        path = Path(choice).expanduser()
    if not path.exists() and choice.upper() != "DEFAULT":
        raise UsageError(f"weights file not found: {path}", "use weights DEFAULT, none, or a path")
    model = demo.build_demo_model(pretrained=False)
    load_into(model, read_checkpoint(path), path)
    return LoadedModel(model, demo.DEMO_NAME, "embedded", file_identity(path), False,
                       check_labels(labels, 10, "{opt:labels}"), preprocess)
