"""The typed results a run streams: one ``ItemResult`` per input, in input order.

The engine makes them, sinks consume them (files, audit, compare, report), and
``xai_cli.api.explain`` hands them to a notebook. Everything here is on the CPU: maps are
numpy arrays, the decoded input travels with its result so a sink can draw it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from xai_cli.errors import ExitCode
from xai_cli.inputs.discover import InputFile

if TYPE_CHECKING:
    import numpy as np  # annotations only: a usage error must not wait for numpy (see precheck.py)

    from xai_cli.config import RunConfig
    from xai_cli.core.shard import Shard

PREDICTION_TOP = 5  # classes listed in each result's prediction
TIE = 1e-4  # classes within this share of the top probability tie with it (random-weight models)


@dataclass(frozen=True)
class Target:
    """The class one map explains: its rank among the explained targets, index, label, probability."""

    rank: int
    index: int
    label: str | None
    probability: float

    def to_dict(self) -> dict:
        return {"rank": self.rank, "index": self.index, "label": self.label, "probability": self.probability}

    @property
    def name(self) -> str:
        return f"'{self.label}'" if self.label else f"class {self.index}"


@dataclass
class MapResult:
    """One method's attribution for one input and one target.

    Attributes:
        method: The method's registered name.
        signed: Whether scores take both signs (drawn with a diverging colour map).
        target: The explained class.
        scores: The raw attribution: (H, W) float32 in model-input pixels for images, (L,)
            float64 per token for text (the modality decides).
        stats: Summary numbers (min, max, mean, top10_mass, peak, finite, ...), JSON-able.
        params: The method's parameters.
        layer: The layer a layer method read, else None.
        seconds: This map's share of the method's device time.
        details: Method-specific JSON-able values (e.g. IG's completeness error).
        extra: Further per-map arrays the modality derives (text: ``word_scores``).
        colour_range: (vmin, vmax) the picture's colours span when fixed for the run
            (``scale="run"``, set by the files sink); None: the map's own range.
        precision: The arithmetic of the model calls that made it (a key of
            ``core.precision.ARITHMETIC``: under a bf16 run, the method's bf16 policy).
    """

    method: str
    signed: bool
    target: Target
    scores: np.ndarray
    stats: dict
    params: dict
    layer: str | None = None
    seconds: float = 0.0
    details: dict = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    colour_range: tuple[float, float] | None = None
    precision: str = "fp32"

    @property
    def finite(self) -> bool:
        return bool(self.stats.get("finite", True))


@dataclass(frozen=True)
class Prediction:
    """The model's top classes for one input, best first.

    ``tied`` counts the classes (of all, not only those listed) whose probability is within
    ``TIE`` of the top one's: 1 when the top class is clear; more means the model has no
    preference among them, and the lowest class index among them is "the prediction".
    """

    indices: tuple[int, ...]
    probabilities: tuple[float, ...]
    labels: tuple[str | None, ...]
    tied: int = 1

    def to_list(self) -> list[dict]:
        return [{"rank": r + 1, "index": i, "label": label, "probability": p}
                for r, (i, p, label) in enumerate(zip(self.indices, self.probabilities, self.labels))]

    @property
    def top(self) -> Target:
        return Target(1, self.indices[0], self.labels[0], self.probabilities[0])


Status = Literal["ok", "error", "skipped"]


@dataclass
class ItemResult:
    """Everything a run learned about one input.

    ``status`` is "ok" (explained now), "error" (``reason`` says why, one line) or "skipped"
    (resumed: an earlier run's outputs are complete and current, listed in ``outputs``).
    A failed input is a result too: sinks see every input of the run, in input order.

    Attributes:
        index: Position in the run's input list.
        file: Where the input came from (``file.rel``, relative to its input root, is what
            outputs mirror; a JSONL line also has its span and key).
        modality: "image", "text", ...
        sha256: The content digest (None when the file could not be read).
        item: The decoded input (the modality's item type, CPU only), None unless ok.
        prediction: The model's top classes, None unless ok.
        maps: One result per method and target, in method order then target rank.
        reason: Why the input failed.
        outputs: For skipped inputs: the files an earlier run wrote.
    """

    index: int
    file: InputFile
    modality: str
    status: Status
    sha256: str | None = None
    item: Any = None
    prediction: Prediction | None = None
    maps: list[MapResult] = field(default_factory=list)
    reason: str | None = None
    outputs: list[str] = field(default_factory=list)

    @property
    def rel(self) -> PurePosixPath:
        return self.file.rel

    @property
    def path(self) -> str:
        return str(self.file.path)

    @property
    def ok(self) -> bool:
        return self.status != "error"

    def by_method(self) -> dict[str, list[MapResult]]:
        out: dict[str, list[MapResult]] = {}
        for m in self.maps:
            out.setdefault(m.method, []).append(m)
        return out


@dataclass
class RunInfo:
    """The fixed facts of a run that sinks need before the first result arrives.

    Attributes:
        config: The run's configuration.
        config_key: The hash of the settings that change outputs (resume compares it).
        model: The model's identity (name, source, weights, random_init).
        model_name: Its name, for pictures.
        modality: The modality's name.
        modality_fields: What every record of the modality repeats (``Modality.run_fields``).
        files: The run's inputs, in order; results carry their index into it.
        methods: The methods' names, in the order they run.
        device: Where the engine runs.
        started: When the run started (UTC).
        not_walked: What discovery found and did not take as input (link loops, unreadable
            folders, other runs' output folders), each with its reason.
        shard: This run's shard (``core/shard.py``), or None: ``files`` is always the whole
            input list (output names depend on it); a shard explains its part of it.
    """

    config: RunConfig
    config_key: str
    model: dict
    model_name: str
    modality: str
    modality_fields: dict
    files: list[InputFile]
    methods: list[str]
    device: str
    started: datetime
    not_walked: list = field(default_factory=list)
    labels: list[str] | None = None  # the model's class labels, for pictures naming other classes
    shard: Shard | None = None

    @property
    def render_max_side(self) -> int:
        return self.config.render_max_side


@dataclass
class RunSummary:
    """Counts and timings of a run.

    ``ok`` counts inputs explained now plus those resumed (``skipped``: already complete).
    ``stopped`` is set when the run ended early: "SIGINT"/"SIGTERM", or "max-failures".
    ``not_walked`` counts paths discovery recorded and did not take (not inputs: neither ok nor failed).
    """

    out: str
    total: int = 0
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    stopped: str | None = None
    failures: list[dict] = field(default_factory=list)
    not_walked: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    oom_splits: int = 0
    warnings: list[str] = field(default_factory=list)
    degenerate_maps: int = 0
    tied_predictions: int = 0
    devices: list[dict] = field(default_factory=list)  # per engine process, when there are several

    @property
    def exit_code(self) -> ExitCode:
        if self.stopped in ("SIGINT", "SIGTERM"):
            return ExitCode.INTERRUPTED
        return ExitCode.INPUTS_FAILED if self.failed else ExitCode.OK

    @property
    def not_done(self) -> int:
        return self.total - self.ok - self.failed

    def count(self, result: ItemResult) -> None:
        if result.status == "error":
            self.failed += 1
            self.failures.append({"input": str(result.rel), "reason": result.reason or ""})
        else:
            self.ok += 1
            self.skipped += result.status == "skipped"
        self.degenerate_maps += sum(m.stats.get("degenerate") is not None for m in result.maps)
        self.tied_predictions += bool(result.prediction and result.prediction.tied > 1)

    def to_dict(self) -> dict:
        return {"out": self.out, "total": self.total, "ok": self.ok, "skipped": self.skipped, "failed": self.failed,
                "not_done": self.not_done, "not_walked": self.not_walked, "stopped": self.stopped, "seconds": round(self.seconds, 3),
                "device": self.device, "exit_code": int(self.exit_code), "failures": self.failures,
                "degenerate_maps": self.degenerate_maps, "tied_predictions": self.tied_predictions,
                "warnings": len(self.warnings)}
