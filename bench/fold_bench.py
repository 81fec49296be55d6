"""BatchNorm folding (xai_cli/core/fold.py) in isolation: KernelSHAP and LIME with the folded
forward-only copy and without it, interleaved in one process on the same input and model.

    python bench/fold_bench.py            # resnet18 224², 1 torch thread, 3 rounds, CPU time

Each round runs the method unfolded, then folded (``fold.forward_copy`` patched to return None
for the former), at fp32 and at bf16; medians of thread CPU time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from common import SIZES, build_cnn, cpu_model, write_jpegs  # noqa: E402
from xai_runs import CASES, method_runner, preload, register_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shap-samples", type=int, default=200)
    ap.add_argument("--lime-samples", type=int, default=300)
    args = ap.parse_args()
    from xai_cli.core import fold

    torch.set_num_threads(1)
    size = SIZES["medium"]
    files = write_jpegs(Path(tempfile.gettempdir()) / "xai-bench-fold", 1, size.photo)
    model = build_cnn(size.cnn)
    spec = register_model(size.cnn, model, size.side)
    x = preload(spec, files, torch.device("cpu"))
    with torch.no_grad():
        targets = model(x).argmax(1)
    real = fold.forward_copy
    print(f"# BatchNorm folding in isolation: {cpu_model()}, {size.cnn} {size.side}², 1 input, 1 torch thread, "
          f"{args.rounds} interleaved rounds (medians of thread CPU time)\n")
    print("| method | samples | precision | unfolded | folded | speed-up |\n|---|---|---|---|---|---|")
    for case, samples in (("shap", args.shap_samples), ("lime", args.lime_samples)):
        for precision in ("fp32", "bf16"):
            run = method_runner(CASES[case], size, model, samples=samples, precision=precision)
            run(x, targets)  # warm-up: the folded copy is made here
            times: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.rounds):
                for folded in (False, True):
                    fold.forward_copy = real if folded else (lambda m, a: None)
                    t = time.thread_time()
                    run(x, targets)
                    times[folded].append(time.thread_time() - t)
            fold.forward_copy = real
            off, on = statistics.median(times[False]), statistics.median(times[True])
            print(f"| {case} | {samples} | {precision} | {off:.2f} s | {on:.2f} s | {off / on:.3f}x |", flush=True)


if __name__ == "__main__":
    main()
