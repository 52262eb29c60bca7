r"""Seeded bootstrap confidence intervals driven by resampling weights.

Every statistic here is written as a function of bootstrap *counts*
``w`` (how often each sample was drawn, :math:`\sum_i w_i = n`), so a replicate
never copies the data and statistics that would be distorted by literal
duplicates (pairwise U-statistics) can exclude the tied pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from metrics_core._checks import _check_bootstrap

DEFAULT_N_BOOT = 200
DEFAULT_LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A point estimate with an optional percentile bootstrap interval."""

    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    std_error: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high, "std_error": self.std_error}


def iter_bootstrap_counts(n: int, n_boot: int, seed: int):
    """The count vectors ``w ~ Mult(n, 1/n)`` that :func:`bootstrap_estimate` draws, one at a time."""
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield np.bincount(rng.integers(0, n, size=n), minlength=n)


def bootstrap_counts(n: int, n_boot: int, seed: int) -> np.ndarray:
    """All of :func:`iter_bootstrap_counts` stacked ``[n_boot, n]``, for statistics evaluated in one batch.

    Example:
        >>> bootstrap_counts(4, 2, seed=0).sum(axis=1).tolist()
        [4, 4]
    """
    return np.stack(list(iter_bootstrap_counts(n, n_boot, seed))) if n_boot else np.zeros((0, n), dtype=np.int64)


def bootstrap_estimate(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    method: str = "percentile",
) -> Estimate:
    r"""Point estimate, bootstrap standard error and interval of ``statistic(counts)``.

    Draws ``n_boot`` multinomial count vectors ``w ~ Mult(n, 1/n)`` from
    ``numpy.random.default_rng(seed)``; the standard error is the replicates'
    standard deviation. ``method="percentile"`` returns the
    :math:`(1-\text{level})/2` and :math:`(1+\text{level})/2` quantiles of the
    replicates (Efron & Tibshirani 1993, §13.3); ``method="normal"`` returns
    :math:`\hat\theta \pm z_{(1+\text{level})/2}\,\widehat{se}` (§13.2), for
    statistics whose replicates are biased (then a percentile interval can miss
    the estimate itself). Non-finite replicates are dropped.

    Args:
        statistic: maps an int64 count vector ``[n]`` to a float; ``statistic(1)``
            is the point estimate.
        n: number of samples.
        n_boot: number of replicates; 0 gives the point estimate alone.
        level: confidence level.
        seed: seed of the generator; equal seeds give equal intervals.
        method: ``"percentile"`` or ``"normal"``.

    Example:
        >>> v = np.array([0.0, 1.0, 1.0, 1.0])
        >>> est = bootstrap_estimate(lambda w: float(w @ v) / 4, 4, n_boot=500, seed=1)
        >>> est.value, 0.0 <= est.ci_low <= 0.75 <= est.ci_high <= 1.0
        (0.75, True)
    """
    _check_bootstrap(n_boot, level)
    if n_boot == 0:
        return Estimate(float(statistic(np.ones(n, dtype=np.int64))))
    if method not in ("percentile", "normal"):
        raise ValueError(f"method: expected 'percentile' or 'normal', got {method!r}")
    reps = np.empty(n_boot)
    for b, counts in enumerate(iter_bootstrap_counts(n, n_boot, seed)):
        reps[b] = statistic(counts)
    reps = reps[np.isfinite(reps)]
    if reps.size < 2:
        raise ValueError("bootstrap: fewer than 2 finite replicates")
    value = float(statistic(np.ones(n, dtype=np.int64)))
    se = float(reps.std(ddof=1))
    alpha = (1.0 - level) / 2.0
    if method == "percentile":
        lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    elif method == "normal":
        from statistics import NormalDist  # not scipy.stats: Estimate's importers (the store) stay light

        z = NormalDist().inv_cdf(1.0 - alpha)
        lo, hi = value - z * se, value + z * se
    else:
        raise ValueError(f"method: expected 'percentile' or 'normal', got {method!r}")
    return Estimate(value, float(lo), float(hi), se)


def mean_estimate(
    per_sample: np.ndarray, *, n_boot: int = DEFAULT_N_BOOT, level: float = DEFAULT_LEVEL, seed: int = 0
) -> Estimate:
    """Mean of per-sample contributions with a bootstrap interval (``n_boot=0``: none)."""
    v = np.asarray(per_sample, dtype=np.float64)
    n = v.shape[0]
    return bootstrap_estimate(lambda w: float(w @ v) / n, n, n_boot=n_boot, level=level, seed=seed)
