"""Resume: an input is done when its record says ok for the same content and configuration,
and every file the record names is on disk."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ResumeCheck:
    """``check(index, sha256)`` in a loader worker: the outputs of input ``index`` if an earlier
    run finished it for the same content and settings, else None. Picklable."""

    root: Path
    records: tuple[Path, ...]  # the record path of each input, by index
    config_key: str

    def __call__(self, index: int, sha256: str) -> list[str] | None:
        return completed_outputs(self.records[index], self.root, sha256, self.config_key)


def completed_outputs(record_path: Path, root: Path, sha256: str, config_key: str) -> list[str] | None:
    """The outputs of a finished input, or None if it must be (re)done."""
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # missing, or unreadable: redo (writes are atomic, so this is rare)
    if (record.get("status") != "ok" or record.get("config_key") != config_key
            or record.get("input", {}).get("sha256") != sha256):
        return None
    outputs = listed_outputs(record)
    if not all(_nonempty(root / o) for o in outputs):
        return None
    return outputs


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def listed_outputs(record) -> list[str]:
    """The files a record names (its pictures and raw maps)."""
    if not isinstance(record, dict) or not isinstance(record.get("methods"), dict):
        return []
    return [e[k] for entries in record["methods"].values() if isinstance(entries, list)
            for e in entries if isinstance(e, dict) for k in ("png", "raw") if isinstance(e.get(k), str)]
