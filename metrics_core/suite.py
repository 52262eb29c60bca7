"""The embedding-space suite: every registered embedding metric for one round."""

from __future__ import annotations

import torch

from metrics_core._checks import _check_embeddings, _check_same_dim
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate
from metrics_core.diversity import self_cosine_similarity, vendi_score
from metrics_core.knn import DEFAULT_CHUNK_SIZE, ball_statistics
from metrics_core.prdc import prdc_from_statistics

# Bumped whenever a metric's definition or defaults change; part of every cache key.
METRICS_VERSION = "1"


def embedding_suite(
    reference,
    round_,
    *,
    k: int = 5,
    n_boot: int = 200,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    device=None,
    reference_sq_radii: torch.Tensor | None = None,
) -> dict[str, Estimate]:
    """Precision, recall, density, coverage, Vendi score and self cosine similarity.

    Args:
        reference: ``[N, D]`` float array.
        round_: ``[M, D]`` float array.
        k: k-NN neighbourhood size.
        n_boot: bootstrap replicates per metric (0: no intervals).
        level: confidence level of the intervals.
        seed: bootstrap seed.
        chunk_size: block side length of the k-NN engine.
        device: torch device, default CUDA when present else CPU.
        reference_sq_radii: cached squared reference radii for this ``k``.

    Returns:
        metric name -> :class:`Estimate`, in registry order.
    """
    ref = _check_embeddings(reference, "reference")
    rnd = _check_embeddings(round_, "round")
    _check_same_dim(ref, rnd, "reference", "round")
    stats = ball_statistics(ref, rnd, k, chunk_size=chunk_size, device=device, reference_sq_radii=reference_sq_radii)
    out = prdc_from_statistics(stats, n_boot=n_boot, level=level, seed=seed)
    out["vendi_score"] = vendi_score(rnd, n_boot=n_boot, level=level, seed=seed + 4)
    out["self_cosine_similarity"] = self_cosine_similarity(rnd, n_boot=n_boot, level=level, seed=seed + 5)
    return out
