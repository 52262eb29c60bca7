"""The reference rate every benchmark measures in the same run as the thing it compares."""

from __future__ import annotations

import time

import torch


def gemm_gflops(n: int = 8192, d: int = 384, repeats: int = 3) -> float:
    """Best-of-``repeats`` fp32 GEMM rate of ``[n, d] @ [d, n]`` on this machine, now."""
    a = torch.randn(n, d)
    b = torch.randn(d, n)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n * n * d / best / 1e9
