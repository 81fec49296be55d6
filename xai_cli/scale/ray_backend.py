"""``backend = "ray"``: the pipeline on Ray Data, for a cluster.

The inputs of the run (a shard's part, if sharded) are a dataset; tasks read, hash and decode
them (and ask the files sink's resume check, so a finished input never reaches an engine); an
actor pool explains them, each actor loading the model once on its device (one GPU per actor
when the cluster has GPUs); the driver gets the results in input order and hands them to the
runner, which writes them through the same sinks, lock and manifest as a local run.

A failed input (unreadable, undecodable, or failing in the engine) is a result with
``status: error``, recorded like any other, never retried; an actor that crashes (a segfault,
the OOM killer) ends the run, and a rerun resumes it. Decoded inputs and results travel pickled: Ray Data moves bytes, the modality's types
stay ours.
"""

from __future__ import annotations

import logging
import pickle
import warnings
from collections.abc import Iterator

from xai_cli.core.reporting import Reporter
from xai_cli.core.results import ItemResult
from xai_cli.errors import UsageError

INSTALL_HINT = "install it with: pip install 'xai-cli[ray]'"
# Ray Data restarts actors and retries their tasks without end by default; an input that
# crashes its actor ends the run (rerun to resume: finished inputs are kept), never a loop.
BOUNDED_RETRIES = {"max_restarts": 0}


def check_ray() -> None:
    """Raise ``UsageError`` (with how to install it) when Ray Data cannot be imported."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError("{opt:backend} ray needs Ray Data, which is not installed", INSTALL_HINT) from None


def ray_batches(session, resume=None, reporter: Reporter | None = None) -> Iterator[list[ItemResult]]:
    """One list of results per batch, in input order, explained by a Ray actor pool (see the module)."""
    import ray

    reporter = reporter or Reporter()
    cfg = session.cfg
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=cfg.ray_address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        devices, actor_cpus, actor_gpus = _actors(cfg.device, ray.cluster_resources())
        reporter.note(f"ray: {len(devices)} actors ({devices[0]}), cluster {ray.cluster_resources()}")
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # results come back in input order
        ctx.enable_progress_bars = False  # the runner's reporter shows progress; stderr stays readable
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        rows = [{"index": i, "file": pickle.dumps(session.files[i])} for i in session.todo]
        ds = ray.data.from_items(rows)
        ds = ds.map_batches(_Decode(session.modality.decoder(session.loaded, cfg.decode), resume), batch_size=cfg.batch_size,
                            batch_format="numpy", num_cpus=0.5)
        with warnings.catch_warnings():
            # Ray 2.60-2.63 have no other way to bound an actor's restarts (pyproject pins <2.64).
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            ds = ds.map_batches(_Explain, fn_constructor_args=(cfg, devices), batch_size=cfg.batch_size,
                                batch_format="numpy", concurrency=len(devices), num_cpus=actor_cpus,
                                num_gpus=actor_gpus, **BOUNDED_RETRIES)
        for batch in ds.iter_batches(batch_size=cfg.batch_size, batch_format="numpy", prefetch_batches=1):
            results = [pickle.loads(b) for b in batch["result"]]
            for w in dict.fromkeys(w for ws in batch["warnings"] for w in pickle.loads(ws)):
                reporter.warning(w)
            session.engine.oom_splits += int(sum(batch["oom_splits"]))
            yield sorted(results, key=lambda r: r.index)
    finally:
        if started_here:
            ray.shutdown()


def _actors(spec: str, resources: dict) -> tuple[list[str], float, float]:
    """The actors' devices, and the CPUs and GPUs each asks of Ray.

    GPUs in the cluster (and ``auto`` or ``cuda``): one actor per GPU. Else CPU actors: as many
    as the devices listed (``cpu,cpu``: two), or one per two cluster CPUs; each asks one CPU.
    """
    gpus = int(resources.get("GPU", 0))
    names = [d.strip() for d in spec.split(",")]
    if gpus and names[0] in ("auto", "cuda", "cuda:all"):
        return ["cuda"] * gpus, 1.0, 1.0
    if any(n.startswith("cuda") for n in names):
        if not gpus:
            raise UsageError("device cuda asked for, but the Ray cluster has no GPUs", "use cpu, or auto")
        return ["cuda"] * len(names), 1.0, 1.0
    count = len(names) if len(names) > 1 else max(1, int(resources.get("CPU", 2)) // 2)
    return ["cpu"] * count, 1.0, 0.0


class _Decode:
    """A Ray task: read, hash and decode a batch of inputs (or tell they are finished or failed)."""

    def __init__(self, decode, resume) -> None:
        self.decode, self.resume = decode, resume

    def __call__(self, batch: dict) -> dict:
        from xai_cli.inputs.loader import _Inputs

        files = {int(i): pickle.loads(f) for i, f in zip(batch["index"], batch["file"])}
        order = list(files)
        inputs = _Inputs(files, self.decode, self.resume, order)
        return {"index": batch["index"], "file": batch["file"],
                "record": [pickle.dumps(inputs[j]) for j in range(len(order))]}


class _Explain:
    """A Ray actor: the model loaded once on its device; explains each batch it is given."""

    def __init__(self, cfg, devices: list[str]) -> None:
        import torch

        from xai_cli.runner import load_engine

        device = devices[0]
        if device == "cuda":
            device = "cuda:0"  # Ray sets CUDA_VISIBLE_DEVICES to this actor's GPU
        else:
            torch.set_num_threads(1)  # the actor asked Ray for one CPU
        self.engine = load_engine(cfg, device)

    def __call__(self, batch: dict) -> dict:
        from xai_cli.inputs.read import Failure, Skipped

        engine = self.engine
        engine.files = {int(i): pickle.loads(f) for i, f in zip(batch["index"], batch["file"])}
        records = [pickle.loads(r) for r in batch["record"]]
        out = [engine.failure(r.index, r.reason, r.sha256) for r in records if isinstance(r, Failure)]
        out += [ItemResult(r.index, engine.files[r.index], engine.modality.name, "skipped", sha256=r.sha256,
                           outputs=r.outputs) for r in records if isinstance(r, Skipped)]
        items = [r for r in records if not isinstance(r, (Failure, Skipped))]
        before = engine.oom_splits
        if items:
            out += engine.explain(items)
        out.sort(key=lambda r: r.index)
        warnings = list(dict.fromkeys(engine.warnings))
        engine.warnings.clear()
        n = len(out)
        return {"index": [r.index for r in out], "result": [pickle.dumps(r) for r in out],
                "warnings": [pickle.dumps(warnings if k == 0 else []) for k in range(n)],
                "oom_splits": [engine.oom_splits - before if k == 0 else 0 for k in range(n)]}
