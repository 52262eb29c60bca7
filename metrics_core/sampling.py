r"""Seeded fixed-size subsampling, so every round is audited at the same sizes.

k-NN metrics depend on N, M and k by themselves (radii shrink as samples
grow), and so do coverage-type counts, so rounds are only comparable at equal
sizes. A round larger than the configured size is subsampled without
replacement with a seeded permutation; one that is smaller is used whole, and
the size actually used is recorded with its metrics.
"""

from __future__ import annotations

import numpy as np

DEFAULT_MAX_SAMPLES = 10_000


def subsample_indices(n: int, size: int | None, seed: int) -> np.ndarray:
    """Sorted row indices of a seeded subsample of ``min(n, size)`` rows (all rows when ``size`` is None).

    The same ``(n, size, seed)`` always gives the same rows.

    Example:
        >>> subsample_indices(5, 3, seed=0).tolist()
        [2, 3, 4]
        >>> subsample_indices(2, 3, seed=0).tolist()
        [0, 1]
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n: expected a non-negative integer, got {n!r}")
    if size is None or size >= n:
        return np.arange(n)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size: expected a positive integer or None, got {size!r}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.permutation(n)[:size])


def subsample(x: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """The rows of ``x`` chosen by :func:`subsample_indices` (a view when all rows are kept)."""
    idx = subsample_indices(x.shape[0], size, seed)
    return x if idx.shape[0] == x.shape[0] else x[idx]
