"""Shards: a stable part of a run's inputs, so any scheduler can split one run into N jobs.

An input belongs to shard ``hash(rel) % N``, by a hash of its path relative to its input
root: the split of the inputs already there does not change when files are added elsewhere,
and every shard finds the same part again on a rerun (resume). Shards count from 0.

``{opt:shard}`` is ``K/N``, or ``auto``: the index and count from the scheduler's
environment, in this order —

* Slurm job arrays: ``SLURM_ARRAY_TASK_ID`` minus ``SLURM_ARRAY_TASK_MIN`` (0 if unset), of
  ``SLURM_ARRAY_TASK_COUNT`` (or ``MAX - MIN + 1``);
* Kubernetes indexed Jobs: ``JOB_COMPLETION_INDEX`` of ``XAI_SHARD_COUNT`` (set it to the
  Job's ``completions``: Kubernetes does not tell a pod the count);
* torchrun: ``RANK`` of ``WORLD_SIZE``, with ``LOCAL_RANK`` choosing the GPU.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from xai_cli.errors import UsageError

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")
_HINT = "write K/N with 0 <= K < N (e.g. 0/4), or auto to read a Slurm array, Kubernetes indexed Job or torchrun"


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``; ``source`` says where they came from.

    Attributes:
        variables: The environment variables read (for run.json).
        local_rank: torchrun's ``LOCAL_RANK``: the GPU of this shard on its machine.
    """

    index: int
    count: int
    source: str = "option"
    variables: dict[str, str] = field(default_factory=dict)
    local_rank: int | None = None

    @property
    def tag(self) -> str:
        """``K-of-N``: the suffix of this shard's lock, manifest part and run part."""
        return f"{self.index}-of-{self.count}"

    def owns(self, rel: PurePosixPath) -> bool:
        return shard_of(rel, self.count) == self.index

    def to_dict(self) -> dict:
        out = {"index": self.index, "count": self.count, "source": self.source}
        if self.variables:
            out["variables"] = dict(self.variables)
        return out


def shard_of(rel: PurePosixPath, count: int) -> int:
    """The shard of an input: a hash of its relative path (never Python's salted ``hash``)."""
    digest = hashlib.sha256(str(rel).encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count


def check_spec(spec: str) -> None:
    """Raise ``UsageError`` if ``spec`` is neither ``K/N`` nor ``auto`` (the environment is read later)."""
    if spec.strip().lower() != "auto":
        parse_shard(spec, {})


def parse_shard(spec: str | None, env: Mapping[str, str]) -> Shard | None:
    """The shard of ``spec`` (``K/N`` or ``auto``); None when ``spec`` is None (no sharding).

    Raises:
        UsageError: A malformed spec, or ``auto`` with no scheduler variables set.
    """
    if spec is None:
        return None
    if spec.strip().lower() == "auto":
        shard = from_environment(env)
        if shard is None:
            raise UsageError("{opt:shard} auto: no SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX or RANK/WORLD_SIZE is set",
                             "give the shard as K/N")
        return shard
    m = _SPEC.fullmatch(spec)
    if not m:
        raise UsageError(f"bad {{opt:shard}} {spec!r}", _HINT)
    return _checked(int(m.group(1)), int(m.group(2)), "option", {})


def from_environment(env: Mapping[str, str]) -> Shard | None:
    """The shard a scheduler set in ``env``, or None when none did."""
    if "SLURM_ARRAY_TASK_ID" in env:
        names = ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX"]
        got = {n: env[n] for n in names if n in env}
        low = _int(got, "SLURM_ARRAY_TASK_MIN", 0)
        if "SLURM_ARRAY_TASK_COUNT" in got:
            count = _int(got, "SLURM_ARRAY_TASK_COUNT")
        elif "SLURM_ARRAY_TASK_MAX" in got:
            count = _int(got, "SLURM_ARRAY_TASK_MAX") - low + 1
        else:
            raise UsageError("SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor _MAX", "give the shard as K/N")
        return _checked(_int(got, "SLURM_ARRAY_TASK_ID") - low, count, "slurm", got)
    if "JOB_COMPLETION_INDEX" in env:
        got = {n: env[n] for n in ("JOB_COMPLETION_INDEX", "XAI_SHARD_COUNT") if n in env}
        if "XAI_SHARD_COUNT" not in got:
            raise UsageError("JOB_COMPLETION_INDEX is set (a Kubernetes indexed Job) but XAI_SHARD_COUNT is not",
                             "set XAI_SHARD_COUNT to the Job's completions")
        return _checked(_int(got, "JOB_COMPLETION_INDEX"), _int(got, "XAI_SHARD_COUNT"), "kubernetes", got)
    if "RANK" in env and "WORLD_SIZE" in env:
        got = {n: env[n] for n in ("RANK", "WORLD_SIZE", "LOCAL_RANK") if n in env}
        local = _int(got, "LOCAL_RANK") if "LOCAL_RANK" in got else None
        shard = _checked(_int(got, "RANK"), _int(got, "WORLD_SIZE"), "torchrun", got)
        return Shard(shard.index, shard.count, shard.source, shard.variables, local)
    return None


def _int(env: Mapping[str, str], name: str, default: int | None = None) -> int:
    if name not in env and default is not None:
        return default
    try:
        return int(env[name])
    except ValueError:
        raise UsageError(f"{name}={env[name]!r} is not a whole number") from None


def _checked(index: int, count: int, source: str, variables: dict[str, str]) -> Shard:
    if count < 1 or not 0 <= index < count:
        where = "" if source == "option" else f" (from {source}: {variables})"
        raise UsageError(f"shard {index}/{count}{where} is out of range", _HINT)
    return Shard(index, count, source, variables)
