"""Class labels from a file: one label per line, a JSON list, or a JSON {index: label} map."""

from __future__ import annotations

import json
from pathlib import Path

from xai_cli.errors import UsageError


def read_labels(path: Path) -> list[str]:
    """Read class labels; index i of the result is the label of class i.

    Raises:
        UsageError: The file is missing, empty, or its JSON is not a list or an index map.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise UsageError(f"cannot read labels file {path}: {e.strerror}", "give a text file with one label per line") from e
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UsageError(f"labels file {path} is not valid JSON: {e.msg} (line {e.lineno})") from e
        if isinstance(data, list):
            return [str(x) for x in data]
        if isinstance(data, dict):
            try:
                index = {int(k): str(v) for k, v in data.items()}
            except ValueError as e:
                raise UsageError(f"labels file {path}: keys must be class indices") from e
            return [index.get(i, str(i)) for i in range(max(index) + 1)]
        raise UsageError(f"labels file {path} must hold a JSON list or an {{index: label}} object")
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise UsageError(f"labels file {path} is empty", "write one label per line, class 0 first")
    return labels


def check_labels(labels: list[str] | None, num_classes: int | None, source: str) -> list[str] | None:
    if labels is not None and num_classes is not None and len(labels) != num_classes:
        raise UsageError(f"{source} has {len(labels)} labels but the model has {num_classes} classes")
    return labels
