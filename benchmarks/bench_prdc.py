"""P/R/D/C speed against the ``prdc`` package, measured side by side in one run.

Run: ``bash scripts/setup.sh bench && .venv/bin/python benchmarks/bench_prdc.py``

Prints the machine's fp32 GEMM rate (the yardstick, measured in the same run
because shared machines are noisy), our time for precision/recall/density/
coverage at N = M = 10,000 and D = 64, prdc's time on the same data, the
speed-up ratio and the largest absolute difference of the four values.
Target: >= 10x faster than prdc, equal values on tie-free data.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _gemm import gemm_gflops  # noqa: E402 - benchmarks/ is the script's directory


def ours(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    from metrics_core import ball_statistics, prdc_from_statistics

    stats = ball_statistics(real, fake, k)
    return {name: est.value for name, est in prdc_from_statistics(stats).items()}


def peer(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    from prdc import compute_prdc

    return {name: float(v) for name, v in compute_prdc(real, fake, k).items()}


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    real = rng.normal(size=(args.n, args.d)).astype(np.float32)
    fake = (rng.normal(size=(args.n, args.d)) * 0.9 + 0.05).astype(np.float32)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"fp32 GEMM (8192x384 @ 384x8192): {gemm_gflops():.1f} GFLOP/s")
    ours(real[:500], fake[:500], args.k)  # warm-up: imports, thread pool
    mine, t_ours = timed(ours, real, fake, args.k)
    theirs, t_peer = timed(peer, real, fake, args.k)
    print(f"N = M = {args.n}, D = {args.d}, k = {args.k}")
    print(f"{'metric':<10} {'ours':>12} {'prdc':>12}")
    for name in ("precision", "recall", "density", "coverage"):
        print(f"{name:<10} {mine[name]:>12.6f} {theirs[name]:>12.6f}")
    diff = max(abs(mine[n] - theirs[n]) for n in mine)
    print(f"time ours {t_ours:.2f} s, prdc {t_peer:.2f} s, speed-up {t_peer / t_ours:.1f}x (target >= 10x)")
    print(f"max |difference| of the four values: {diff:.3g} (target 0 on tie-free data)")


if __name__ == "__main__":
    main()
