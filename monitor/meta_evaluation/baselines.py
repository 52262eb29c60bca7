r"""Baseline detectors of the benchmark (survey §8.1), as per-round scores (higher = more alarming).

Each baseline maps a run to ``scores [R]``; :mod:`monitor.meta_evaluation.scoring`
thresholds them (``score >= t`` through an alarm rule) at the threshold that
gives the same false-alarm rate on the controls as our engine
(:func:`~monitor.meta_evaluation.scoring.threshold_for_false_alarm_rate`).

* :func:`fixed_threshold_scores`: a fixed threshold on the raw metric value;
* :func:`one_round_delta_scores`: the naive one-round change;
* :func:`drift_share_scores`: Evidently's share of drifted columns;
* :func:`mmd_permutation_scores`: an MMD two-sample permutation test of each
  round against the reference (Gretton et al. 2012), score :math:`-\log_{10} p`.

A missing value (NaN, e.g. a metric that failed on a round) scores
:math:`-\infty`: it never raises an alarm, and it ranks lowest in a ROC-AUC.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from metrics_core.mmd import mmd2


def _check_values(values, name: str = "values") -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name}: expected a real-valued array, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D array [R], got shape {arr.shape}")
    return arr.astype(np.float64)


def _check_higher_is_better(higher_is_better) -> bool:
    if not isinstance(higher_is_better, (bool, np.bool_)):
        raise ValueError(f"higher_is_better: expected a bool, got {higher_is_better!r}")
    return bool(higher_is_better)


def _oriented(values, higher_is_better) -> np.ndarray:
    """The value with "higher is better" for every metric (lower-is-better metrics negated)."""
    arr = _check_values(values)
    return arr if _check_higher_is_better(higher_is_better) else -arr


def fixed_threshold_scores(values, higher_is_better: bool) -> np.ndarray:
    r"""Fixed threshold on the raw metric value: :math:`s_r = -\tilde v_r`.

    :math:`\tilde v = v` if higher is better else :math:`-v`, so a low coverage
    or a high MMD is alarming; ``s_r >= t`` is "the oriented value has fallen to
    :math:`-t` or below", the threshold being chosen on the controls.
    NaN values score :math:`-\infty`.

    Args:
        values: ``[R]`` metric values per audited round.
        higher_is_better: the metric's orientation (``MetricSpec.higher_is_better``).

    Example:
        >>> fixed_threshold_scores(np.array([0.9, 0.7]), True).tolist(), \
        ...     fixed_threshold_scores(np.array([0.1, 0.3]), False).tolist()
        ([-0.9, -0.7], [0.1, 0.3])
    """
    score = -_oriented(values, higher_is_better)
    return np.where(np.isnan(score), -np.inf, score)


def one_round_delta_scores(values, higher_is_better: bool) -> np.ndarray:
    r"""Naive one-round change: :math:`s_r = -(\tilde v_r - \tilde v_{r-1})`, :math:`s_0 = -\infty`.

    A drop of the oriented value since the previous *audited* round (rounds
    need not be consecutive generations) is alarming. Round 0 has no previous
    round and scores :math:`-\infty` (never alarms at a finite threshold; ranks
    lowest in a ROC-AUC); so does any round whose value or predecessor is NaN.

    Args:
        values: ``[R]`` metric values per audited round.
        higher_is_better: the metric's orientation.

    Example:
        >>> # oriented 0.9, 0.7, 0.8: drops 0.2 then rises 0.1
        >>> np.round(one_round_delta_scores(np.array([0.9, 0.7, 0.8]), True), 12).tolist()
        [-inf, 0.2, -0.1]
    """
    oriented = _oriented(values, higher_is_better)
    score = np.full(oriented.shape, -np.inf)
    score[1:] = -(oriented[1:] - oriented[:-1])
    return np.where(np.isnan(score), -np.inf, score)


def drift_share_scores(drift_shares) -> np.ndarray:
    r"""Evidently's drift share as the score: :math:`s_r = \text{share}_r \in [0, 1]`.

    The share of columns Evidently's per-column drift tests flag in round
    :math:`r` against the reference, computed by the runner with
    :mod:`monitor.publishing.evidently_report`; this only checks it and maps NaN to
    :math:`-\infty`. A higher share is more alarming as it is.

    Args:
        drift_shares: ``[R]`` floats in ``[0, 1]`` (NaN allowed: never alarms).

    Example:
        >>> drift_share_scores([0.0, 0.25, float("nan")]).tolist()
        [0.0, 0.25, -inf]
    """
    arr = _check_values(drift_shares, "drift_shares")
    finite = arr[~np.isnan(arr)]
    if ((finite < 0.0) | (finite > 1.0)).any():
        raise ValueError(f"drift_shares: expected values in [0, 1], got min {finite.min()!r} max {finite.max()!r}")
    return np.where(np.isnan(arr), -np.inf, arr)


def mmd_permutation_pvalue(
    reference, round_, n_permutations: int = 200, seed: int = 0, bandwidth: float | None = None, device=None
) -> float:
    r"""Permutation p-value of the unbiased Gaussian-kernel MMD² of a round against the reference.

    .. math::
        \mathrm{MMD}^2_u = \frac{\sum_{i\ne i'}k(x_i,x_{i'})}{N(N-1)}
            + \frac{\sum_{j\ne j'}k(y_j,y_{j'})}{M(M-1)} - \frac{2\sum_{i,j}k(x_i,y_j)}{NM},
        \quad k(a,b)=e^{-\lVert a-b\rVert^2/(2\sigma^2)},

    (Gretton et al., JMLR 2012, eq. 3), :math:`\sigma` the median heuristic
    on the pooled sample, :math:`\sigma^2 = \tfrac12\operatorname{median}_{a<b}
    \lVert z_a-z_b\rVert^2`, unless ``bandwidth`` is given. The statistic is
    recomputed for ``n_permutations`` random relabellings of the pooled
    sample into sets of sizes :math:`N, M`, and

    .. math:: p = \frac{1 + \#\{b : \mathrm{MMD}^2_{u,b} \ge \mathrm{MMD}^2_u\}}{1 + B}

    (Phipson & Smyth 2010: never 0, and :math:`P(p\le\alpha)\le\alpha` under
    :math:`H_0`); permuted statistics within :math:`10^{-12}` of the observed
    one count as ties (:math:`\ge`). Computed by
    :func:`metrics_core.mmd.mmd2` (reused: the pooled kernel matrix is
    built tile by tile once per batch of 512 permutations and every
    permutation is a label vector :math:`a`, the three sums being
    :math:`a^\top K a`, :math:`a^\top K\mathbf 1`, :math:`\mathbf 1^\top K\mathbf 1`),
    in float64, :math:`O((N+M)^2(D + B))`. Pooled samples above 5,000 rows are
    subsampled for the permutations (``mmd2``'s ``max_permutation_points``).

    Args:
        reference: ``[N, D]`` float array, ``N >= 2``.
        round_: ``[M, D]`` float array, ``M >= 2``.
        n_permutations: :math:`B \ge 1`.
        seed: seed of the permutations.
        bandwidth: :math:`\sigma > 0`; None: median heuristic on the pooled sample.
        device: torch device (default CUDA when present, else CPU).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.normal(size=(30, 2)), rng.normal(size=(30, 2)) + 3.0
        >>> mmd_permutation_pvalue(x, y, n_permutations=99, seed=1)  # no relabelling beats a shift of 3 sd
        0.01
    """
    if isinstance(n_permutations, (bool, np.bool_)) or not isinstance(n_permutations, (int, np.integer)) \
            or n_permutations < 1:
        raise ValueError(f"n_permutations: expected an int >= 1, got {n_permutations!r}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
    result = mmd2(reference, round_, bandwidth=bandwidth, n_permutations=int(n_permutations), seed=int(seed),
                  device=device)
    return float(result.p_value)


def mmd_permutation_scores(
    reference, rounds: Sequence, n_permutations: int = 200, seed: int = 0, bandwidth: float | None = None,
    device=None,
) -> np.ndarray:
    r"""Per round, :math:`s_r = -\log_{10} p_r` of :func:`mmd_permutation_pvalue` against the reference.

    :math:`s_r \in [0, \log_{10}(1+B)]`. Round :math:`r`'s permutations use
    the seed ``SeedSequence(seed).spawn(R)[r].generate_state(1)[0]``, so rounds
    are independent streams and a round's score does not depend on the
    others.

    Args:
        reference: ``[N, D]`` float array.
        rounds: ``[M_r, D]`` float arrays, one per audited round.
        n_permutations: :math:`B` per round.
        seed: seed of the run's permutation streams.
        bandwidth: fixed :math:`\sigma`, or None for the per-round pooled median heuristic.
        device: torch device.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(30, 2))
        >>> s = mmd_permutation_scores(x, [rng.normal(size=(30, 2)) + 3.0], n_permutations=99)
        >>> s.tolist()  # p = 1/100
        [2.0]
    """
    if isinstance(rounds, np.ndarray) or not isinstance(rounds, Sequence) or len(rounds) == 0:
        raise ValueError(f"rounds: expected a non-empty list of [M, D] arrays, got {type(rounds).__name__}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
    children = np.random.SeedSequence(int(seed)).spawn(len(rounds))
    p = np.array([
        mmd_permutation_pvalue(reference, r, n_permutations=n_permutations,
                               seed=int(child.generate_state(1)[0]), bandwidth=bandwidth, device=device)
        for r, child in zip(rounds, children)
    ])
    return -np.log10(p)
