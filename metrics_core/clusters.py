r"""Tail and mode coverage on a k-means clustering of the reference (survey §8.1).

Model collapse first shows as a *loss of support coverage*: the tails of the
distribution vanish and modes are dropped or over-amplified (Shumailov et al.,
Nature 2024). These metrics make that visible on a fixed partition of the
embedding space: the reference (real data) is clustered once with seeded
k-means, every round's samples are assigned to their nearest reference centre,
and the round's cluster histogram is compared with the reference's.

Notation: reference :math:`\{r_i\}_{i=1}^N`, round :math:`\{f_j\}_{j=1}^M`,
centres :math:`c_1..c_K`, :math:`a(x) = \arg\min_k \lVert x - c_k\rVert^2`
(ties to the smaller cluster id), reference shares
:math:`p_k = |\{i: a(r_i)=k\}|/N` and round shares
:math:`q_k = |\{j: a(f_j)=k\}|/M`.

The clustering is :mod:`metrics_core.kmeans` (seeded k-means++ and an exact, device-independent
nearest-centre assignment).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metrics_core._checks import _check_bootstrap, _check_embeddings, _check_positive_int, _check_seed, _check_tail_mass
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, bootstrap_estimate
from metrics_core.kmeans import (
    DEFAULT_MAX_ITER, DEFAULT_TOL, _assign_with_distances, _check_n_clusters, _readonly, kmeans,
)
from metrics_core.knn import resolve_device

DEFAULT_N_CLUSTERS = 50
DEFAULT_TAIL_MASS = 0.1


# --------------------------------------------------------------------------
# Reference clusters and the tail set
# --------------------------------------------------------------------------


def tail_clusters(counts, tail_mass: float = DEFAULT_TAIL_MASS) -> np.ndarray:
    r"""The rarest clusters that together hold at most ``tail_mass`` of the mass.

    Clusters are sorted by share :math:`p_k = n_k / \sum n` ascending, ties by
    cluster id; the tail is the longest prefix whose cumulative share (each
    prefix sum of counts divided by the total, correctly rounded) is
    :math:`\le` ``tail_mass``. If that prefix holds no mass at all (the rarest
    single cluster already exceeds ``tail_mass``, or only empty clusters fit),
    it is extended up to and including the first cluster with a positive
    share, so the tail always holds reference mass.

    Args:
        counts: ``[K]`` non-negative cluster sizes (or shares), positive sum.
        tail_mass: share in (0, 1).

    Returns:
        tail cluster ids, int64, ascending.

    Example:
        >>> tail_clusters([50, 30, 15, 5], 0.2).tolist(), tail_clusters([50, 30, 15, 5], 0.01).tolist()
        ([2, 3], [3])
    """
    tail_mass = _check_tail_mass(tail_mass)
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or c.shape[0] == 0:
        raise ValueError(f"counts: expected a non-empty 1-D array, got shape {c.shape}")
    if not np.all(np.isfinite(c)) or np.any(c < 0) or not c.sum() > 0:
        raise ValueError("counts: expected finite non-negative values with a positive sum")
    ids = np.arange(c.shape[0])
    order = np.lexsort((ids, c))
    cum_share = np.cumsum(c[order]) / c.sum()
    longest = int(np.searchsorted(cum_share, tail_mass, side="right"))
    first_positive = int(np.flatnonzero(c[order] > 0)[0])
    size = max(longest, first_positive + 1)
    return np.sort(order[:size]).astype(np.int64)


@dataclass(frozen=True, eq=False)
class ClusterReference:
    r"""A k-means partition of the reference, reusable for every round.

    Attributes:
        centres: ``[K, D]`` float64 centres :math:`c_k` (read-only).
        counts: ``[K]`` int64 reference rows per cluster, :math:`n_k`.
        shares: ``[K]`` float64 reference shares :math:`p_k = n_k/N` (sum 1; alias ``p_ref``).
        tail_ids: int64 ids of the tail clusters (ascending), see :func:`tail_clusters`.
        tail_mass: the ``tail_mass`` the tail was chosen with.
        seed, n_init, max_iter, tol: the k-means parameters.
        n_iter, converged, inertia: k-means diagnostics.
    """

    centres: np.ndarray
    counts: np.ndarray
    shares: np.ndarray
    tail_ids: np.ndarray
    tail_mass: float
    seed: int
    n_init: int
    max_iter: int
    tol: float
    n_iter: int
    converged: bool
    inertia: float

    @property
    def n_clusters(self) -> int:
        return int(self.centres.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centres.shape[1])

    @property
    def n_reference(self) -> int:
        return int(self.counts.sum())

    @property
    def p_ref(self) -> np.ndarray:
        """Alias of :attr:`shares`."""
        return self.shares

    @property
    def reference_tail_share(self) -> float:
        """:math:`\\sum_{k \\in T} p_k`, the reference mass on the tail clusters."""
        return float(self.counts[self.tail_ids].sum()) / self.n_reference


def fit_cluster_reference(
    reference,
    n_clusters: int = DEFAULT_N_CLUSTERS,
    tail_mass: float = DEFAULT_TAIL_MASS,
    seed: int = 0,
    max_iter: int = DEFAULT_MAX_ITER,
    *,
    n_init: int = 1,
    tol: float = DEFAULT_TOL,
    device=None,
) -> ClusterReference:
    r"""Cluster the reference once with seeded k-means (see :func:`kmeans`).

    The shares are those of the final nearest-centre assignment,
    :math:`p_k = |\{i : a(r_i) = k\}| / N`, computed by the same function that
    assigns round samples (:func:`assign_clusters`), so a round equal to the
    reference reproduces them exactly. A cluster can have share 0 only when
    k-means stopped at ``max_iter`` right after a centre lost its last row.

    Args:
        reference: ``[N, D]`` float array.
        n_clusters: K, ``1 <= K <= N`` (larger K: ValueError, not a silent cap).
        tail_mass: share in (0, 1) defining the tail clusters.
        seed: k-means++ seed.
        max_iter: maximum Lloyd iterations.
        n_init: k-means restarts.
        tol: relative tolerance on the centre shift.
        device: torch device, default CUDA when present else CPU.

    Returns:
        :class:`ClusterReference`.

    Example:
        >>> ref = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [9.0]])
        >>> rc = fit_cluster_reference(ref, n_clusters=3, tail_mass=0.2)
        >>> order = np.argsort(rc.centres[:, 0])
        >>> rc.centres[order, 0].round(2).tolist(), rc.shares[order].round(3).tolist()
        ([0.1, 5.05, 9.0], [0.5, 0.333, 0.167])
        >>> rc.centres[rc.tail_ids, 0].tolist()  # the rarest cluster, share 1/6 <= 0.2
        [9.0]
    """
    t = _check_embeddings(reference, "reference")
    k = _check_n_clusters(n_clusters, t.shape[0], "reference")
    tail_mass = _check_tail_mass(tail_mass)
    res = kmeans(t, k, seed=seed, n_init=n_init, max_iter=max_iter, tol=tol, device=device)
    counts = np.bincount(res.labels, minlength=k).astype(np.int64)
    return ClusterReference(
        centres=res.centres,
        counts=_readonly(counts),
        shares=_readonly(counts / float(counts.sum())),
        tail_ids=_readonly(tail_clusters(counts, tail_mass)),
        tail_mass=tail_mass,
        seed=int(seed),
        n_init=int(n_init),
        max_iter=int(max_iter),
        tol=float(tol),
        n_iter=res.n_iter,
        converged=res.converged,
        inertia=res.inertia,
    )


# --------------------------------------------------------------------------
# Coverage metrics
# --------------------------------------------------------------------------


def jensen_shannon_divergence(p, q) -> float:
    r"""Jensen–Shannon divergence in bits (Lin 1991) between two histograms.

    .. math::
        \mathrm{JSD}(p, q) = \tfrac12 \mathrm{KL}(p \,\Vert\, m) + \tfrac12 \mathrm{KL}(q \,\Vert\, m),
        \quad m = \tfrac12 (p + q),\quad \mathrm{KL}(a \Vert m) = \sum_k a_k \log_2 \frac{a_k}{m_k},

    with :math:`0 \log 0 = 0`; both histograms are normalised to sum 1 first.
    Range [0, 1] (clipped against rounding); 0 iff :math:`p = q`; equals
    ``scipy.spatial.distance.jensenshannon(p, q, base=2) ** 2``.

    Example:
        >>> jensen_shannon_divergence([1, 0], [0, 1]), jensen_shannon_divergence([1, 3], [2, 6])
        (1.0, 0.0)
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.ndim != 1 or p.shape != q.shape or p.shape[0] == 0:
        raise ValueError(f"p, q: expected two non-empty 1-D histograms of one length, got {p.shape} and {q.shape}")
    for name, h in (("p", p), ("q", q)):
        if not np.all(np.isfinite(h)) or np.any(h < 0) or not h.sum() > 0:
            raise ValueError(f"{name}: expected finite non-negative values with a positive sum")
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / m[nz])).sum())

    return float(min(max(0.5 * kl(p) + 0.5 * kl(q), 0.0), 1.0))


def _expected_hit_rate(p: np.ndarray, m: int) -> np.ndarray:
    # 1 - (1 - p)^M, accurate for small p.
    with np.errstate(divide="ignore"):
        return -np.expm1(m * np.log1p(-p))


def expected_tail_coverage(clusters: ClusterReference, m: int, *, tail_mass: float | None = None) -> float:
    r"""Expected ``tail_coverage`` of ``m`` i.i.d. samples from the reference distribution.

    .. math:: \mathbb{E}[\text{tail\_coverage}] = \frac{1}{|T|}\sum_{k\in T} \big(1 - (1 - p_k)^M\big),

    the value a round with no collapse scores on average; compare a round's
    tail coverage with it, not with 1, when M is small.

    Args:
        clusters: fitted :class:`ClusterReference`.
        m: round size M.
        tail_mass: optional tail mass overriding ``clusters.tail_mass``.

    Example:
        >>> rc = fit_cluster_reference(np.array([[0.0], [0.1], [0.2], [9.0]]), n_clusters=2, tail_mass=0.3)
        >>> round(expected_tail_coverage(rc, 2), 12)  # tail = the cluster of 9.0, p = 1/4: 1 - (3/4)**2
        0.4375
    """
    if not isinstance(clusters, ClusterReference):
        raise ValueError(f"clusters: expected ClusterReference, got {type(clusters).__name__}")
    m = _check_positive_int(m, "m")
    tail = clusters.tail_ids if tail_mass is None else tail_clusters(clusters.counts, tail_mass)
    return float(_expected_hit_rate(clusters.shares[tail], m).mean())


def _expected_mode_coverage(clusters: ClusterReference, m: int) -> float:
    return float(_expected_hit_rate(clusters.shares, m).mean())


@dataclass(frozen=True, eq=False)
class ClusterCoverageResult:
    r"""Tail and mode coverage of one round (see :func:`tail_mode_coverage`).

    Attributes:
        tail_coverage: share of tail clusters hit, [0, 1], higher is better.
        tail_mass_ratio: round tail mass over reference tail mass, [0, inf), 1 ideal.
        modes_hit: number of clusters hit, [0, K], higher is better.
        mode_coverage: ``modes_hit / K``, [0, 1], higher is better.
        cluster_jsd: JSD (bits) of the cluster histograms, [0, 1], lower is better.
        round_histogram: ``[K]`` int64 round samples per cluster.
        tail_ids: the tail cluster ids used.
        expected_tail_coverage: :math:`\frac{1}{|T|}\sum_{k\in T} 1-(1-p_k)^M`,
            the no-collapse expectation of ``tail_coverage`` at this M.
        expected_mode_coverage: :math:`\frac1K\sum_k 1-(1-p_k)^M`, likewise.
    """

    tail_coverage: Estimate
    tail_mass_ratio: Estimate
    modes_hit: Estimate
    mode_coverage: Estimate
    cluster_jsd: Estimate
    round_histogram: np.ndarray
    tail_ids: np.ndarray
    expected_tail_coverage: float
    expected_mode_coverage: float

    @property
    def round_shares(self) -> np.ndarray:
        return self.round_histogram / float(self.round_histogram.sum())

    def metrics(self) -> dict[str, Estimate]:
        """Metric name -> :class:`Estimate`."""
        return {
            "tail_coverage": self.tail_coverage,
            "tail_mass_ratio": self.tail_mass_ratio,
            "modes_hit": self.modes_hit,
            "mode_coverage": self.mode_coverage,
            "cluster_jsd": self.cluster_jsd,
        }


def _clip(est: Estimate, low: float, high: float) -> Estimate:
    if est.ci_low is None:
        return est
    return Estimate(est.value, min(max(est.ci_low, low), high), min(max(est.ci_high, low), high), est.std_error)


def _divide(est: Estimate, k: int) -> Estimate:
    return Estimate(*(None if v is None else v / k for v in (est.value, est.ci_low, est.ci_high, est.std_error)))


def tail_mode_coverage(
    reference_clusters_or_reference,
    round_,
    *,
    n_clusters: int | None = None,
    tail_mass: float | None = None,
    n_boot: int = 0,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    device=None,
) -> ClusterCoverageResult:
    r"""Tail and mode coverage of a round on the reference clusters (survey §8.1).

    Each round sample goes to its nearest reference centre; with round
    counts :math:`h_k`, shares :math:`q_k = h_k/M`, reference shares
    :math:`p_k` and tail clusters :math:`T` (:func:`tail_clusters`):

    .. math::
        \text{tail\_coverage} = \frac{1}{|T|}\sum_{k\in T} 1[h_k > 0], \qquad
        \text{tail\_mass\_ratio} = \frac{\sum_{k\in T} q_k}{\sum_{k\in T} p_k},

    .. math::
        \text{modes\_hit} = \sum_{k=1}^{K} 1[h_k > 0], \qquad
        \text{mode\_coverage} = \text{modes\_hit}/K, \qquad
        \text{cluster\_jsd} = \mathrm{JSD}_2(p, q)

    (:func:`jensen_shannon_divergence`, base 2). Ranges and directions:
    tail_coverage, mode_coverage in [0, 1], modes_hit in [0, K], higher is
    better; tail_mass_ratio in [0, inf), 1 is ideal, higher is better up to 1
    (vanishing tails drive it to 0; above 1 the tails are over-represented);
    cluster_jsd in [0, 1], lower is better (over-amplified modes raise it too).
    A round equal to the reference gives coverages 1, ratio 1 and JSD 0.

    Round size: coverage counts are biased down for small M, since a rare
    cluster is missed by chance; i.i.d. samples of the reference distribution
    (no collapse) score on average
    :math:`\mathbb{E}[\text{tail\_coverage}] = \frac{1}{|T|}\sum_{k\in T} 1-(1-p_k)^M`
    (returned as ``expected_tail_coverage``; likewise
    ``expected_mode_coverage`` over all K). Compare rounds at equal M only.

    Uncertainty: the bootstrap resamples the round's samples (multinomial
    count weights on their fixed cluster ids; the clusters are the fixed
    yardstick). Coverage counts can only fall and the plug-in JSD only rise
    under resampling, so their intervals are the normal ones around the
    estimate (``method="normal"``), clipped to the metric's range;
    tail_mass_ratio uses the percentile interval. All five share one set of
    replicates (same seed).

    Args:
        reference_clusters_or_reference: a :class:`ClusterReference` from
            :func:`fit_cluster_reference`, or the ``[N, D]`` reference itself
            (then it is fitted with ``n_clusters`` (default 50), ``tail_mass``
            (default 0.1) and ``seed``).
        round_: ``[M, D]`` float array.
        n_clusters: K when fitting; with fitted clusters it must be None or equal K.
        tail_mass: share in (0, 1) defining the tail; with fitted clusters it
            overrides their ``tail_mass`` (the tail set depends on the shares only).
        n_boot: bootstrap replicates (0: point estimates only).
        level: confidence level.
        seed: bootstrap seed (and k-means++ seed when fitting).
        device: torch device, default CUDA when present else CPU.

    Returns:
        :class:`ClusterCoverageResult`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> means = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
        >>> ref = np.concatenate([m + 0.1 * rng.standard_normal((s, 2)) for m, s in zip(means, [50, 30, 15, 5])])
        >>> rc = fit_cluster_reference(ref, n_clusters=4, tail_mass=0.1)
        >>> sorted(rc.shares.tolist())
        [0.05, 0.15, 0.3, 0.5]
        >>> res = tail_mode_coverage(rc, ref[:80])  # the two rarest blobs are gone
        >>> res.tail_coverage.value, res.tail_mass_ratio.value, res.modes_hit.value, res.mode_coverage.value
        (0.0, 0.0, 2.0, 0.5)
        >>> round(res.cluster_jsd.value, 4)  # p = (.5, .3, .15, .05), q = (.625, .375, 0, 0)
        0.108
    """
    _check_bootstrap(n_boot, level)
    seed = _check_seed(seed)
    device = resolve_device(device)
    if isinstance(reference_clusters_or_reference, ClusterReference):
        rc = reference_clusters_or_reference
        if n_clusters is not None and n_clusters != rc.n_clusters:
            raise ValueError(
                f"n_clusters: the fitted clusters have K={rc.n_clusters}, got n_clusters={n_clusters!r}"
            )
        tail = rc.tail_ids if tail_mass is None else tail_clusters(rc.counts, tail_mass)
    else:
        rc = fit_cluster_reference(
            reference_clusters_or_reference,
            DEFAULT_N_CLUSTERS if n_clusters is None else n_clusters,
            DEFAULT_TAIL_MASS if tail_mass is None else tail_mass,
            seed,
            device=device,
        )
        tail = rc.tail_ids
    rnd = _check_embeddings(round_, "round")
    if rnd.shape[1] != rc.dim:
        raise ValueError(f"round: expected D={rc.dim} features to match reference, got D={rnd.shape[1]}")
    labels = _assign_with_distances(rnd, np.asarray(rc.centres), device)[0]
    m = labels.shape[0]
    k = rc.n_clusters
    ref_tail = float(rc.counts[tail].sum()) / rc.n_reference
    p = rc.shares

    def hist(w: np.ndarray) -> np.ndarray:
        return np.bincount(labels, weights=w.astype(np.float64), minlength=k)

    def tail_cov(w):
        return float((hist(w)[tail] > 0).mean())

    def tail_ratio(w):
        h = hist(w)
        return float(h[tail].sum()) / float(h.sum()) / ref_tail

    def hit(w):
        return float((hist(w) > 0).sum())

    def jsd(w):
        return jensen_shannon_divergence(p, hist(w))

    boot = dict(n=m, n_boot=n_boot, level=level, seed=seed)
    modes = _clip(bootstrap_estimate(hit, method="normal", **boot), 0.0, float(k))
    counts = np.bincount(labels, minlength=k).astype(np.int64)
    return ClusterCoverageResult(
        tail_coverage=_clip(bootstrap_estimate(tail_cov, method="normal", **boot), 0.0, 1.0),
        tail_mass_ratio=bootstrap_estimate(tail_ratio, method="percentile", **boot),
        modes_hit=modes,
        mode_coverage=_divide(modes, k),
        cluster_jsd=_clip(bootstrap_estimate(jsd, method="normal", **boot), 0.0, 1.0),
        round_histogram=_readonly(counts),
        tail_ids=_readonly(tail),
        expected_tail_coverage=float(_expected_hit_rate(p[tail], m).mean()),
        expected_mode_coverage=_expected_mode_coverage(rc, m),
    )
