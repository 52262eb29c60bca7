r"""Distance to closest record (DCR): copying of, and coverage of, real records.

Following the LLM Data Auditor survey (§4.3), with the Euclidean distance
:math:`d`, the reference (real data) is split once, by a seeded permutation,
into a *train* part :math:`T` and a *holdout* part :math:`H`, and three DCR
distributions are compared:

.. math::
    \mathrm{DCR}_{T\to\text{round}}(s) = \min_{x\in T} d(s, x)\ \ (s \in \text{round}),\qquad
    \mathrm{DCR}_{\text{base}}(h) = \min_{x\in T} d(h, x)\ \ (h \in H),\qquad
    \mathrm{DCR}_{\text{real}\to\text{round}}(h) = \min_{s\in\text{round}} d(h, s)\ \ (h \in H).

The baseline (holdout to train) is what a fresh real sample looks like
relative to the train records: a round drawn from the real distribution,
without copying, has round-to-train DCRs distributed like the baseline.
Nearest neighbours come from :func:`metrics_core.knn.nearest_neighbours`
(exact float64, chunked, no ``N x M`` matrix), so everything scales to
``N = M = 100,000``, ``D = 384``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from metrics_core._checks import _check_embeddings, _check_fraction, _check_same_dim, _check_seed
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, bootstrap_estimate
from metrics_core.knn import DEFAULT_CHUNK_SIZE, nearest_neighbours

DEFAULT_HOLDOUT_FRACTION = 0.2
DEFAULT_QUANTILE = 0.05


# --------------------------------------------------------------------------
# Weighted quantile with count weights
# --------------------------------------------------------------------------


def _check_counts(weights, n: int) -> np.ndarray:
    w = np.asarray(weights)
    if w.shape != (n,):
        raise ValueError(f"weights: expected shape ({n},), got {w.shape}")
    if w.dtype.kind not in "iub":
        if w.dtype.kind != "f" or not np.all(np.isfinite(w)) or not np.all(w == np.round(w)):
            raise ValueError("weights: expected non-negative integer counts")
    w = w.astype(np.int64)
    if np.any(w < 0):
        raise ValueError("weights: expected non-negative integer counts, got a negative count")
    if w.sum() == 0:
        raise ValueError("weights: the counts sum to 0")
    return w


def _quantile_sorted(v_sorted: np.ndarray, w_sorted: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Linear-interpolation quantile of the expanded sample, from sorted values and their counts."""
    cum = np.cumsum(w_sorted)
    total = int(cum[-1])
    h = (total - 1) * q
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, total - 1)
    # The j-th (0-based) order statistic of the expanded sample is the first
    # sorted value whose cumulative count exceeds j.
    v_lo = v_sorted[np.searchsorted(cum, lo, side="right")]
    v_hi = v_sorted[np.searchsorted(cum, hi, side="right")]
    return v_lo + (h - lo) * (v_hi - v_lo)


def weighted_quantile(values, weights, q):
    r"""Quantile of a sample with integer count weights (linear interpolation).

    Exactly ``numpy.quantile(numpy.repeat(values, weights), q)`` (numpy's
    default ``method="linear"``, Hyndman & Fan type 7) without expanding the
    sample: with :math:`W = \sum_i w_i`, :math:`h = (W-1)q` and
    :math:`y_{(0)} \le \dots \le y_{(W-1)}` the expanded order statistics,

    .. math:: Q(q) = y_{(\lfloor h\rfloor)} + (h - \lfloor h\rfloor)\,
              \big(y_{(\lfloor h\rfloor + 1)} - y_{(\lfloor h\rfloor)}\big).

    Bootstrap counts are such weights, so a replicate's quantile is the
    quantile of the resampled set. ``O(n log n)``.

    Args:
        values: ``[n]`` finite floats.
        weights: ``[n]`` non-negative integer counts, not all zero.
        q: a level in ``[0, 1]`` or an array of levels.

    Returns:
        a float for scalar ``q``, else a float64 array shaped like ``q``.

    Example:
        >>> weighted_quantile([1.0, 2.0, 10.0], [1, 2, 1], 0.5)  # median of 1, 2, 2, 10
        2.0
        >>> weighted_quantile([1.0, 2.0, 10.0], [1, 0, 1], [0.0, 0.5, 1.0]).tolist()
        [1.0, 5.5, 10.0]
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.shape[0] == 0:
        raise ValueError(f"values: expected a non-empty 1-D array, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("values: NaN or inf values")
    w = _check_counts(weights, v.shape[0])
    qa = np.asarray(q, dtype=np.float64)
    if not np.all((qa >= 0.0) & (qa <= 1.0)):
        raise ValueError(f"q: expected levels in [0, 1], got {q!r}")
    order = np.argsort(v, kind="stable")
    out = _quantile_sorted(v[order], w[order], qa)
    return float(out) if qa.ndim == 0 else out


# --------------------------------------------------------------------------
# The fitted reference
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DCRReference:
    """A reference split into train and holdout parts, with its DCR baseline.

    Attributes:
        train: ``[N_train, D]`` CPU tensor, the reference rows ``train_index``.
        holdout: ``[N_holdout, D]`` CPU tensor, the reference rows ``holdout_index``.
        train_index: ``[N_train]`` int64, ascending row indices into the reference.
        holdout_index: ``[N_holdout]`` int64, ascending row indices into the reference.
        baseline_distances: ``[N_holdout]`` float64, Euclidean distance from each
            holdout row to its nearest train row (holdout-to-train DCR).
        seed: seed of the split permutation (``None`` for an explicit split).
    """

    train: torch.Tensor
    holdout: torch.Tensor
    train_index: np.ndarray
    holdout_index: np.ndarray
    baseline_distances: np.ndarray
    seed: int | None

    @property
    def n_reference(self) -> int:
        return self.train.shape[0] + self.holdout.shape[0]

    @property
    def dim(self) -> int:
        return self.train.shape[1]


def _split_indices(n: int, holdout_fraction: float, seed: int) -> np.ndarray:
    n_holdout = min(n - 1, max(1, math.floor(holdout_fraction * n + 0.5)))
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[:n_holdout])


def _explicit_holdout(holdout_index, n: int) -> np.ndarray:
    idx = np.asarray(holdout_index)
    if idx.ndim != 1 or (idx.shape[0] > 0 and idx.dtype.kind not in "iu"):
        raise ValueError(f"holdout_index: expected a 1-D integer array, got shape {idx.shape} dtype {idx.dtype}")
    idx = np.sort(idx.astype(np.int64))
    if idx.shape[0] == 0 or idx.shape[0] >= n:
        raise ValueError(f"holdout_index: expected between 1 and N-1={n - 1} indices, got {idx.shape[0]}")
    if idx[0] < 0 or idx[-1] >= n:
        raise ValueError(f"holdout_index: expected indices in [0, {n}), got range [{idx[0]}, {idx[-1]}]")
    if np.any(idx[1:] == idx[:-1]):
        raise ValueError("holdout_index: repeated indices")
    return idx


def _dcr(queries: torch.Tensor, points: torch.Tensor, chunk_size: int, device) -> np.ndarray:
    sq, _ = nearest_neighbours(queries, points, 1, chunk_size=chunk_size, device=device)
    return sq[:, 0].sqrt().numpy()


def fit_dcr_reference(
    reference,
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
    seed: int = 0,
    *,
    holdout_index=None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    device=None,
) -> DCRReference:
    r"""Split the reference into train/holdout parts and compute the holdout-to-train DCR baseline.

    The split: ``n_holdout = round_half_up(holdout_fraction * N)`` clipped to
    ``[1, N - 1]``; the holdout rows are the first ``n_holdout`` entries of
    ``numpy.random.default_rng(seed).permutation(N)``, the rest are train.
    Both index lists are kept sorted ascending. An explicit
    ``holdout_index`` overrides the fraction and the seed. The baseline
    :math:`\min_{x\in T}\lVert h - x\rVert_2` for every holdout row is
    computed once here and reused for every round.

    Args:
        reference: ``[N, D]`` float array, ``N >= 2``.
        holdout_fraction: share of the reference held out, in ``(0, 1)``.
        seed: seed of the split permutation.
        holdout_index: optional explicit holdout row indices (distinct, between
            1 and ``N - 1`` of them).
        chunk_size: block side length of the k-NN engine.
        device: torch device, default CUDA when present else CPU.

    Example:
        >>> import numpy as np
        >>> ref = np.array([[0.0], [1.0], [3.0], [7.0]])
        >>> fitted = fit_dcr_reference(ref, holdout_index=[1, 3])
        >>> fitted.train_index.tolist(), fitted.baseline_distances.tolist()
        ([0, 2], [1.0, 4.0])
    """
    ref = _check_embeddings(reference, "reference", min_rows=2)
    n = ref.shape[0]
    if holdout_index is None:
        fraction = _check_fraction(holdout_fraction, "holdout_fraction")
        hold = _split_indices(n, fraction, _check_seed(seed))
        used_seed: int | None = int(seed)
    else:
        hold = _explicit_holdout(holdout_index, n)
        used_seed = None
    mask = np.ones(n, dtype=bool)
    mask[hold] = False
    train_idx = np.flatnonzero(mask).astype(np.int64)
    train = ref[torch.from_numpy(train_idx)].cpu()
    holdout = ref[torch.from_numpy(hold)].cpu()
    baseline = _dcr(holdout, train, chunk_size, device)
    return DCRReference(
        train=train,
        holdout=holdout,
        train_index=train_idx,
        holdout_index=hold,
        baseline_distances=baseline,
        seed=used_seed,
    )


# --------------------------------------------------------------------------
# The metric
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DCRResult:
    """Result of :func:`distance_to_closest_record`.

    Attributes:
        dcr_median: median round-to-train DCR (higher is better).
        dcr_p05: 5th percentile of the round-to-train DCR (higher is better).
        dcr_real_to_round_median: median holdout-to-round DCR (lower is better).
        copy_rate: share of round samples closer to train than the threshold
            (lower is better; about ``quantile`` without copying).
        threshold: the copy threshold :math:`\\tau`, the ``quantile``-th
            quantile of the baseline distances.
        quantile: the level ``q`` of the threshold.
        baseline_median: median holdout-to-train DCR (context for ``dcr_median``).
        baseline_p05: 5th percentile of the holdout-to-train DCR (context for ``dcr_p05``).
        round_distances: ``[M]`` float64 round-to-train DCRs.
        real_to_round_distances: ``[N_holdout]`` float64 holdout-to-round DCRs.
    """

    dcr_median: Estimate
    dcr_p05: Estimate
    dcr_real_to_round_median: Estimate
    copy_rate: Estimate
    threshold: float
    quantile: float
    baseline_median: float
    baseline_p05: float
    round_distances: np.ndarray
    real_to_round_distances: np.ndarray

    def estimates(self) -> dict[str, Estimate]:
        """The four scalar metrics by name."""
        return {
            "dcr_median": self.dcr_median,
            "dcr_p05": self.dcr_p05,
            "dcr_real_to_round_median": self.dcr_real_to_round_median,
            "copy_rate": self.copy_rate,
        }


def _quantile_estimate(values: np.ndarray, q: float, n_boot: int, level: float, seed: int) -> Estimate:
    order = np.argsort(values, kind="stable")
    v_sorted = values[order]

    def stat(w: np.ndarray) -> float:
        return float(_quantile_sorted(v_sorted, w[order], np.float64(q)))

    return bootstrap_estimate(stat, values.shape[0], n_boot=n_boot, level=level, seed=seed)


def distance_to_closest_record(
    reference_or_fitted,
    round_,
    *,
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
    quantile: float = DEFAULT_QUANTILE,
    n_boot: int = 0,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    device=None,
    round_to_train_sq=None,
) -> DCRResult:
    r"""Distance to closest record (LLM Data Auditor survey §4.3), Euclidean.

    With the train part :math:`T`, holdout part :math:`H` and baseline
    :math:`b_h = \min_{x\in T}\lVert h - x\rVert_2` of
    :func:`fit_dcr_reference`, round samples :math:`s_1..s_M`:

    .. math::
        d_j = \min_{x\in T}\lVert s_j - x\rVert_2,\qquad
        e_h = \min_{j}\lVert h - s_j\rVert_2,\qquad
        \tau = Q_q\big(\{b_h\}_{h\in H}\big),

    .. math::
        \texttt{dcr\_median} = Q_{0.5}(d),\quad
        \texttt{dcr\_p05} = Q_{0.05}(d),\quad
        \texttt{dcr\_real\_to\_round\_median} = Q_{0.5}(e),\quad
        \texttt{copy\_rate} = \frac{1}{M}\sum_j 1\big[d_j < \tau \ \lor\ d_j = 0\big],

    where :math:`Q_p` is the linear-interpolation quantile
    (:func:`weighted_quantile`, numpy's default). Directions: ``dcr_median``
    and ``dcr_p05`` in :math:`[0,\infty)`, higher is better (low values mean
    round samples sit on real records: copying, a privacy risk; compare with
    ``baseline_median``/``baseline_p05``); ``dcr_real_to_round_median`` in
    :math:`[0,\infty)`, lower is better (large values mean the round no longer
    covers the real data); ``copy_rate`` in :math:`[0,1]`, lower is better.
    Without copying (round drawn from the reference distribution) the copy
    rate is about :math:`q` (default 0.05); an exact copy of a train row has
    :math:`d_j = 0` and always counts, even when :math:`\tau = 0`.

    Caveat: in high dimension DCRs are dominated by the spread of the sets,
    so a round contracted towards the mean has smaller DCRs, and a higher
    copy rate, without reproducing any record (e.g. ``D = 384``, a Gaussian
    round with 0.9 times the reference's scale: copy rate about 0.8). Read
    the copy rate together with the spectral metrics
    (:mod:`metrics_core.spectral`).

    Bootstrap: the round-side statistics (``dcr_median``, ``dcr_p05``,
    ``copy_rate``) resample the round's samples with seed ``seed`` (the same
    replicates for all three), ``dcr_real_to_round_median`` resamples the
    holdout samples with seed ``seed + 1``; the train part, the baseline and
    :math:`\tau` are held fixed. Percentile intervals; quantiles of a
    replicate use its counts as weights (:func:`weighted_quantile`).

    Args:
        reference_or_fitted: ``[N, D]`` float array (``N >= 2``), split here
            with ``holdout_fraction`` and ``seed``, or a :class:`DCRReference`
            from :func:`fit_dcr_reference` (then ``holdout_fraction`` is not used).
        round_: ``[M, D]`` float array.
        holdout_fraction: share of the reference held out, in ``(0, 1)``.
        quantile: level ``q`` of the copy threshold, in ``(0, 1)``.
        n_boot: bootstrap replicates (0: point estimates only).
        level: confidence level.
        seed: bootstrap seed (and split seed when the reference is an array).
        chunk_size: block side length of the k-NN engine.
        device: torch device, default CUDA when present else CPU.
        round_to_train_sq: optional ``[M]`` exact squared round-to-train
            distances already computed elsewhere (the suite takes them from
            the P/R/D/C pass, ``ball_statistics(..., nn_columns=train mask)``).

    Example:
        >>> import numpy as np
        >>> ref = np.array([[0.0], [1.0], [3.0], [7.0]])
        >>> fitted = fit_dcr_reference(ref, holdout_index=[1, 3])   # train 0, 3; holdout 1, 7
        >>> r = distance_to_closest_record(fitted, np.array([[0.0], [2.0], [5.5]]), quantile=0.5)
        >>> r.round_distances.tolist(), r.threshold, r.copy_rate.value   # tau = median of 1, 4
        ([0.0, 1.0, 2.5], 2.5, 0.6666666666666666)
        >>> r.dcr_median.value, r.dcr_real_to_round_median.value         # holdout 1 -> 0 or 2, 7 -> 5.5
        (1.0, 1.25)
    """
    q = _check_fraction(quantile, "quantile")
    if isinstance(reference_or_fitted, DCRReference):
        fitted = reference_or_fitted
    else:
        fitted = fit_dcr_reference(
            reference_or_fitted, holdout_fraction, seed, chunk_size=chunk_size, device=device
        )
    rnd = _check_embeddings(round_, "round")
    _check_same_dim(fitted.train, rnd, "reference", "round")

    if round_to_train_sq is None:
        d = _dcr(rnd, fitted.train, chunk_size, device)
    else:
        sq = torch.as_tensor(round_to_train_sq, dtype=torch.float64)
        if tuple(sq.shape) != (rnd.shape[0],):
            raise ValueError(f"round_to_train_sq: expected shape ({rnd.shape[0]},), got {tuple(sq.shape)}")
        d = sq.sqrt().numpy()
    e = _dcr(fitted.holdout, rnd, chunk_size, device)
    base = fitted.baseline_distances
    ones = np.ones(base.shape[0], dtype=np.int64)
    tau, base_p05, base_median = (float(v) for v in weighted_quantile(base, ones, [q, 0.05, 0.5]))
    copied = ((d < tau) | (d == 0.0)).astype(np.float64)
    m = d.shape[0]
    return DCRResult(
        dcr_median=_quantile_estimate(d, 0.5, n_boot, level, seed),
        dcr_p05=_quantile_estimate(d, 0.05, n_boot, level, seed),
        dcr_real_to_round_median=_quantile_estimate(e, 0.5, n_boot, level, seed + 1),
        copy_rate=bootstrap_estimate(lambda w: float(w @ copied) / m, m, n_boot=n_boot, level=level, seed=seed),
        threshold=tau,
        quantile=q,
        baseline_median=base_median,
        baseline_p05=base_p05,
        round_distances=d,
        real_to_round_distances=e,
    )
