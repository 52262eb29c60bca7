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

k-means engine. Lloyd's algorithm (Lloyd 1982), ours, in torch on
``default_device()``, from scikit-learn's greedy k-means++ seeds (Arthur &
Vassilvitskii 2007; :func:`kmeans_plusplus_init`). Why Lloyd is ours and not
``sklearn.cluster.KMeans``: ``benchmarks/bench_kmeans.py`` measures the two
equal from the same seeds (same labels, inertia to 1e-6) and about as fast on
a CPU (sklearn 0.9-1.2x ours), but ours runs its GEMMs on a GPU when there is
one, and the same assignment code labels every round, with the near-ties
decided in float64 as below, so the reference's shares and a round's are
computed alike on any device. Nearest-centre
assignment works on tiles of rows (at most ``2**22`` float32 distances per
tile, so ``N = 100,000``, ``K = 1,000``, ``D = 384`` never builds more than a
16 MiB block), each produced by one float32 GEMM,
:math:`\lVert c\rVert^2 - 2\,x^\top c`; every row whose best and second-best
centres lie within a rigorous float32 rounding band of each other is
re-decided in float64 from difference vectors of the original rows on the
CPU. Assignments are therefore the float64 argmin (ties, exact ones included,
go to the smaller id), independent of the tile size, the thread count and the
device (as long as float32 GEMMs are not run in TF32). Centre updates and
everything that decides between restarts are float64 on the CPU. The float32
pass works on rows translated by their mean (by the centres' mean in
:func:`assign_clusters`), which shrinks the rounding band; memory is one
float32 copy of the data on the device plus bounded tiles.

Cost: k-means++ makes K sequential passes over the data (a few candidates
each, float64 on the CPU) and every Lloyd iteration one GEMM, both :math:`O(NKD)`; for
``N = 100,000``, ``D = 384``, ``K = 50`` a fit takes seconds on a CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from metrics_core._checks import _check_embeddings, _check_positive_int, _check_same_dim, _check_seed
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, _check_bootstrap, bootstrap_estimate
from metrics_core.knn import resolve_device

DEFAULT_N_CLUSTERS = 50
DEFAULT_TAIL_MASS = 0.1
DEFAULT_MAX_ITER = 50
DEFAULT_TOL = 1e-4

_EPS32 = float(torch.finfo(torch.float32).eps)
# A distance tile holds at most _TILE_ELEMENTS float32 values and has between
# _MIN_ROW_TILE and _MAX_ROW_TILE rows.
_TILE_ELEMENTS = 1 << 22
_MIN_ROW_TILE = 256
_MAX_ROW_TILE = 8192
# Float64 temporaries (pair distances, per-point distances) hold at most this many values.
_BATCH_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------



def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))




def _check_tail_mass(tail_mass) -> float:
    if isinstance(tail_mass, bool) or not isinstance(tail_mass, (int, float, np.integer, np.floating)):
        raise ValueError(f"tail_mass: expected a share in (0, 1), got {tail_mass!r}")
    if not 0.0 < float(tail_mass) < 1.0:
        raise ValueError(f"tail_mass: expected a share in (0, 1), got {tail_mass!r}")
    return float(tail_mass)


def _check_tol(tol) -> float:
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.integer, np.floating)):
        raise ValueError(f"tol: expected a finite number >= 0, got {tol!r}")
    if not (math.isfinite(float(tol)) and float(tol) >= 0.0):
        raise ValueError(f"tol: expected a finite number >= 0, got {tol!r}")
    return float(tol)




def _check_centres(centres, name: str = "centres") -> np.ndarray:
    if isinstance(centres, np.ndarray):
        centres = np.array(centres)  # a writable copy (fitted centres are read-only)
    t = _check_embeddings(centres, name)
    return t.to(device="cpu", dtype=torch.float64).numpy().copy()


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


# --------------------------------------------------------------------------
# Prepared data and exact nearest-centre assignment
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Prepared:
    exact: torch.Tensor  # [N, D] the rows as given (float32 or float64) on the CPU, never modified
    offset: np.ndarray  # float64 [D], the translation of the fast rows
    fast: torch.Tensor  # float32 [N, D] on the device: the rows less the offset, rounded
    sqnorm32: torch.Tensor  # float32 [N] on the device: squared norms of the translated rows
    sum_sqnorm: float  # sum of the float64 squared norms of the translated rows
    device: torch.device

    @property
    def n(self) -> int:
        return self.exact.shape[0]

    @property
    def d(self) -> int:
        return self.exact.shape[1]


def _rows(n: int, width: int) -> list[slice]:
    step = max(1, _BATCH_ELEMENTS // max(width, 1))
    return [slice(s, min(s + step, n)) for s in range(0, n, step)]


def _prepare(x: torch.Tensor, offset: np.ndarray, device: torch.device) -> _Prepared:
    exact = x.detach().cpu()
    n, d = exact.shape
    off = torch.from_numpy(offset)
    fast = torch.empty(n, d, dtype=torch.float32, device=device)
    sqnorm = torch.empty(n, dtype=torch.float64)
    for rows in _rows(n, d):
        e = exact[rows].to(torch.float64) - off
        sqnorm[rows] = (e * e).sum(dim=1)
        fast[rows] = e.to(device=device, dtype=torch.float32)
    return _Prepared(
        exact=exact,
        offset=offset,
        fast=fast,
        sqnorm32=sqnorm.to(device=device, dtype=torch.float32),
        sum_sqnorm=float(sqnorm.numpy().sum()),
        device=device,
    )


def _row_tile(k: int) -> int:
    return max(_MIN_ROW_TILE, min(_MAX_ROW_TILE, _TILE_ELEMENTS // max(k, 1)))


def _exact_pair_sqdist(a: torch.Tensor, ii: torch.Tensor, b: torch.Tensor, jj: torch.Tensor) -> torch.Tensor:
    """Float64 ``||a[ii] - b[jj]||^2`` from difference vectors, in bounded batches."""
    out = torch.empty(ii.shape[0], dtype=torch.float64)
    for s in _rows(ii.shape[0], a.shape[1]):
        diff = a[ii[s]].to(torch.float64) - b[jj[s]].to(torch.float64)
        out[s] = (diff * diff).sum(dim=1)
    return out


def _assign(prep: _Prepared, centres: torch.Tensor) -> torch.Tensor:
    r"""Exact nearest centre of every prepared row (ties to the smaller id).

    ``centres`` is float64 ``[K, D]`` on the CPU. On the translated
    coordinates, a float32 GEMM gives :math:`\tilde s_{ik} \approx \lVert c_k\rVert^2 - 2 x_i^\top c_k`
    with :math:`|\tilde s_{ik} - s_{ik}| \le b_i = (D+16)\,\varepsilon_{32}
    (\lVert x_i\rVert^2 + \max_k \lVert c_k\rVert^2)` (this covers the casts, the
    dot product of length D in any summation order and the additions). Every
    centre with :math:`\tilde s_{ik} \le \min_k \tilde s_{ik} + 2 b_i` may be the
    nearest; rows with more than one such candidate are decided in float64
    from difference vectors in the original coordinates (so ties that are
    exact there stay exact).
    """
    k, d = centres.shape
    device = prep.device
    shifted = centres - torch.from_numpy(prep.offset)
    c32 = shifted.to(device=device, dtype=torch.float32)
    csq64 = (shifted * shifted).sum(dim=1)
    csq = csq64.to(device=device, dtype=torch.float32)[None, :]
    cols = (-2.0 * c32).T.contiguous()  # [D, K]
    factor = (d + 16) * _EPS32
    max_csq = float(csq64.max())
    labels = torch.empty(prep.n, dtype=torch.int64)
    tile = _row_tile(k)
    for start in range(0, prep.n, tile):
        rows = slice(start, min(start + tile, prep.n))
        part = torch.addmm(csq, prep.fast[rows], cols)  # ||c||^2 - 2 x.c  [T, K]
        best_val, best = part.min(dim=1)
        lab = best.cpu()
        if k > 1:
            band = (prep.sqnorm32[rows] + max_csq) * factor
            cand = part <= (best_val + 2.0 * band)[:, None]
            unsure = (cand.sum(dim=1) > 1).nonzero(as_tuple=True)[0]
            if unsure.shape[0]:
                ii, jj = cand[unsure].nonzero(as_tuple=True)
                ii, jj, unsure = ii.cpu(), jj.cpu(), unsure.cpu()
                dist = _exact_pair_sqdist(prep.exact, unsure[ii] + start, centres, jj).numpy()
                ii_np, jj_np = ii.numpy(), jj.numpy()
                order = np.lexsort((jj_np, dist, ii_np))  # by row, then distance, then id
                ii_sorted = ii_np[order]
                first = np.ones(order.shape[0], dtype=bool)
                first[1:] = ii_sorted[1:] != ii_sorted[:-1]
                lab[unsure[torch.from_numpy(ii_sorted[first])]] = torch.from_numpy(jj_np[order][first])
        labels[rows] = lab
    return labels


def _point_sqdist(prep: _Prepared, centres: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Float64 squared distance of every row to its assigned centre, ``[N]``."""
    out = torch.empty(prep.n, dtype=torch.float64)
    for rows in _rows(prep.n, prep.d):
        diff = prep.exact[rows].to(torch.float64) - centres[labels[rows]]
        out[rows] = (diff * diff).sum(dim=1)
    return out.numpy()


# --------------------------------------------------------------------------
# k-means++ and Lloyd's iterations
# --------------------------------------------------------------------------


def _kmeanspp(prep: _Prepared, k: int, random_state: np.random.RandomState) -> np.ndarray:
    """Indices of ``k`` rows chosen by scikit-learn's greedy k-means++ (see :func:`kmeans_plusplus_init`)."""
    from sklearn.cluster import kmeans_plusplus

    centred = prep.exact.numpy().astype(np.float64) - prep.offset
    centres, indices = kmeans_plusplus(centred, k, random_state=random_state)
    # Rows at distance 0 from the centres are never drawn while others remain, so a repeated
    # centre means fewer distinct rows than clusters (counted only then: a sort of every row).
    if np.unique(centres.astype(np.float32), axis=0).shape[0] < k:
        distinct = np.unique(centred.astype(np.float32), axis=0).shape[0]
        raise ValueError(f"reference: only {distinct} distinct rows (in float32) but n_clusters={k}; lower n_clusters")
    return indices.astype(np.int64)


def _update(prep: _Prepared, labels: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Cluster means; each empty cluster is re-seeded with a far point (see :func:`kmeans`)."""
    k = centres.shape[0]
    sums = torch.zeros_like(centres)
    for rows in _rows(prep.n, prep.d):
        sums.index_add_(0, labels[rows], prep.exact[rows].to(torch.float64))
    counts = torch.bincount(labels, minlength=k)
    new = centres.clone()
    nonempty = counts > 0
    new[nonempty] = sums[nonempty] / counts[nonempty, None].to(torch.float64)
    empty = (~nonempty).nonzero(as_tuple=True)[0].tolist()
    if not empty:
        return new, 0
    d2 = _point_sqdist(prep, centres, labels)
    order = np.lexsort((np.arange(prep.n), -d2))  # farthest first, ties by row index
    lab = labels.numpy()
    cnt = counts.numpy().copy()
    pos = 0
    for e in empty:
        while cnt[lab[order[pos]]] < 2:  # never empty the donor cluster
            pos += 1
        i = int(order[pos])
        pos += 1
        donor = int(lab[i])
        row = prep.exact[i].to(torch.float64)
        sums[donor] -= row
        cnt[donor] -= 1
        new[donor] = sums[donor] / float(cnt[donor])
        new[e] = row
    return new, len(empty)


def _lloyd(prep: _Prepared, init: torch.Tensor, max_iter: int, tol_abs: float):
    centres = init.clone()
    for it in range(max_iter):
        labels = _assign(prep, centres)
        new, _ = _update(prep, labels, centres)
        shift = float(((new - centres) ** 2).sum())
        centres = new
        if shift <= tol_abs:
            return centres, it + 1, True
    return centres, max_iter, False


@dataclass(frozen=True, eq=False)
class KMeansResult:
    """Result of :func:`kmeans`.

    Attributes:
        centres: ``[K, D]`` float64 centres (read-only).
        labels: ``[N]`` int64 nearest-centre id of every row (read-only).
        inertia: :math:`\\sum_i \\lVert x_i - c_{a(x_i)}\\rVert^2` (float64).
        n_iter: Lloyd iterations run by the chosen restart.
        converged: whether the chosen restart met the tolerance within ``max_iter`` iterations.
        restart: index of the chosen restart.
    """

    centres: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int
    converged: bool
    restart: int


def kmeans_plusplus_init(x, n_clusters: int, *, seed: int = 0, device=None) -> np.ndarray:
    r"""Row indices chosen by greedy k-means++ seeding (Arthur & Vassilvitskii, SODA 2007), scikit-learn's.

    Each centre after the first is the best of :math:`2 + \lfloor\ln K
floor`
    rows drawn with probability :math:`D(x)^2 / \sum_x D(x)^2` (:math:`D(x)`
    the distance to the nearest centre so far): the one that lowers the
    potential most (``sklearn.cluster.kmeans_plusplus``, on the mean-centred
    float64 rows, ``random_state = numpy.random.RandomState(seed)``). The
    library's greedy variant, not our single-trial one:
    ``benchmarks/bench_kmeans.py`` measured 1.4-1.5x the inertia after Lloyd
    with single-trial seeds on a 50-mode mixture. Rows at :math:`D(x) = 0`
    (duplicates of a chosen row) are never drawn, so it needs as many
    distinct rows as clusters.

    Args:
        x: ``[N, D]`` float array.
        n_clusters: number of rows to choose, ``1 <= n_clusters <= N``; needs at
            least that many distinct rows (in float32, as the assignment sees them).
        seed: seed of the generator.
        device: unused (the seeding runs on the CPU); kept for symmetry with :func:`kmeans`.

    Returns:
        ``[n_clusters]`` int64 row indices, in the order chosen.

    Example:
        >>> x = np.array([[0.0], [0.1], [10.0], [10.1]])
        >>> sorted(x[kmeans_plusplus_init(x, 2, seed=0), 0].round() .tolist())
        [0.0, 10.0]
    """
    t = _check_embeddings(x, "x")
    k = _check_n_clusters(n_clusters, t.shape[0], "x")
    seed = _check_seed(seed)
    offset = t.cpu().numpy().mean(axis=0, dtype=np.float64)
    prep = _prepare(t, offset, torch.device("cpu"))
    return _kmeanspp(prep, k, np.random.RandomState(seed))


def _check_n_clusters(n_clusters, n: int, name: str) -> int:
    if not _is_int(n_clusters) or n_clusters < 1:
        raise ValueError(f"n_clusters: expected a positive integer, got {n_clusters!r}")
    if n_clusters > n:
        raise ValueError(f"n_clusters: expected at most the N={n} rows of {name}, got n_clusters={n_clusters}")
    return int(n_clusters)


def kmeans(
    x,
    n_clusters: int,
    *,
    seed: int = 0,
    n_init: int = 1,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = DEFAULT_TOL,
    init=None,
    device=None,
) -> KMeansResult:
    r"""Seeded k-means: Lloyd's algorithm (Lloyd 1982) from k-means++ seeds.

    Minimises the inertia :math:`\sum_i \min_k \lVert x_i - c_k\rVert^2`.
    Each iteration assigns every row to its nearest centre (exact, ties to the
    smaller id; see the module docstring), then moves every centre to the
    mean of its rows. It stops when the total squared centre shift
    :math:`\sum_k \lVert c_k^{new} - c_k\rVert^2 \le \mathrm{tol}\cdot
    \frac{1}{D}\sum_d \mathrm{Var}(x_{\cdot d})` (scikit-learn's tolerance;
    with ``tol=0``, when the assignment repeats and the centres stop moving)
    or after ``max_iter`` iterations; the returned labels are a final
    assignment to the returned centres.

    Empty clusters are re-seeded deterministically (as in scikit-learn's
    ``_relocate_empty_clusters``): the rows are ordered by squared distance
    to the centre they were assigned to, farthest first, ties by row index;
    the empty clusters, in id order, each take the next row in that order
    whose cluster still has at least two rows; the row becomes the new centre
    and its old cluster's mean is recomputed without it.

    Restarts: ``n_init`` runs draw their k-means++ seeds one after the other
    from one ``numpy.random.RandomState(seed)`` (restart 0 is the run with
    ``n_init=1``); the one with the lowest inertia wins (ties: the earliest).
    Same inputs and seed give identical results.

    Args:
        x: ``[N, D]`` float array.
        n_clusters: K, ``1 <= K <= N``.
        seed: seed of the k-means++ draws.
        n_init: number of restarts.
        max_iter: maximum Lloyd iterations per restart.
        tol: relative tolerance on the centre shift (0: stop only when the
            centres stop moving or at ``max_iter``).
        init: optional ``[K, D]`` initial centres (then ``n_init`` must be 1
            and ``seed`` is unused).
        device: torch device of the GEMMs, default CUDA when present else CPU.

    Returns:
        :class:`KMeansResult` (numpy arrays on the CPU).

    Example:
        >>> x = np.array([[0.0], [1.0], [2.0], [10.0]])
        >>> r = kmeans(x, 3, init=np.array([[0.0], [1.0], [100.0]]))  # cluster 2 starts empty
        >>> r.centres[:, 0].tolist(), r.labels.tolist()
        ([0.0, 1.5, 10.0], [0, 1, 1, 2])
    """
    t = _check_embeddings(x, "x")
    n, d = t.shape
    k = _check_n_clusters(n_clusters, n, "x")
    seed = _check_seed(seed)
    n_init = _check_positive_int(n_init, "n_init")
    max_iter = _check_positive_int(max_iter, "max_iter")
    tol = _check_tol(tol)
    device = resolve_device(device)
    init_np = None
    if init is not None:
        init_np = _check_centres(init, "init")
        if init_np.shape != (k, d):
            raise ValueError(f"init: expected shape ({k}, {d}), got {init_np.shape}")
        if n_init != 1:
            raise ValueError(f"n_init: expected 1 when init is given, got {n_init}")
    offset = t.cpu().numpy().mean(axis=0, dtype=np.float64)
    prep = _prepare(t, offset, device)
    tol_abs = tol * prep.sum_sqnorm / (n * d)
    random_state = np.random.RandomState(seed)  # restarts draw their seeds one after the other
    best = None
    for restart in range(n_init):
        if init_np is not None:
            start = torch.from_numpy(init_np)
        else:
            start = prep.exact[torch.from_numpy(_kmeanspp(prep, k, random_state))].to(torch.float64)
        centres, n_iter, converged = _lloyd(prep, start, max_iter, tol_abs)
        inertia = float(_point_sqdist(prep, centres, _assign(prep, centres)).sum())
        if best is None or inertia < best[0]:
            best = (inertia, centres, n_iter, converged, restart)
    _, centres, n_iter, converged, restart = best
    del prep
    centres_np = centres.numpy()
    labels, sqdist = _assign_with_distances(t, centres_np, device)
    return KMeansResult(
        centres=_readonly(centres_np),
        labels=_readonly(labels),
        inertia=float(sqdist.sum()),
        n_iter=n_iter,
        converged=converged,
        restart=restart,
    )


def _assign_with_distances(x: torch.Tensor, centres: np.ndarray, device: torch.device):
    prep = _prepare(x, centres.mean(axis=0), device)
    c = torch.from_numpy(np.array(centres, dtype=np.float64))
    labels = _assign(prep, c)
    return labels.numpy(), _point_sqdist(prep, c, labels)


def assign_clusters(x, centres, *, device=None) -> np.ndarray:
    r"""Nearest centre of every row, :math:`a(x) = \arg\min_k \lVert x - c_k\rVert^2`.

    Exact to float64, ties to the smaller id, tiled (no ``N x K`` matrix
    beyond ``2**22`` entries); both sets are translated by the centres' mean
    first, so the result is a function of ``(x, centres)`` alone.

    Args:
        x: ``[N, D]`` float array.
        centres: ``[K, D]`` float array.
        device: torch device, default CUDA when present else CPU.

    Returns:
        ``[N]`` int64 cluster ids.

    Example:
        >>> assign_clusters(np.array([[0.2], [0.5], [0.9]]), np.array([[0.0], [1.0]])).tolist()
        [0, 0, 1]
    """
    c = _check_centres(centres)
    t = _check_embeddings(x, "x")
    _check_same_dim(torch.from_numpy(c), t, "centres", "x")
    return _assign_with_distances(t, c, resolve_device(device))[0]


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
class ReferenceClusters:
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


def fit_reference_clusters(
    reference,
    n_clusters: int = DEFAULT_N_CLUSTERS,
    tail_mass: float = DEFAULT_TAIL_MASS,
    seed: int = 0,
    max_iter: int = DEFAULT_MAX_ITER,
    *,
    n_init: int = 1,
    tol: float = DEFAULT_TOL,
    device=None,
) -> ReferenceClusters:
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
        :class:`ReferenceClusters`.

    Example:
        >>> ref = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [9.0]])
        >>> rc = fit_reference_clusters(ref, n_clusters=3, tail_mass=0.2)
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
    return ReferenceClusters(
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


def expected_tail_coverage(clusters: ReferenceClusters, m: int, *, tail_mass: float | None = None) -> float:
    r"""Expected ``tail_coverage`` of ``m`` i.i.d. samples from the reference distribution.

    .. math:: \mathbb{E}[\text{tail\_coverage}] = \frac{1}{|T|}\sum_{k\in T} \big(1 - (1 - p_k)^M\big),

    the value a round with no collapse scores on average; compare a round's
    tail coverage with it, not with 1, when M is small.

    Args:
        clusters: fitted :class:`ReferenceClusters`.
        m: round size M.
        tail_mass: optional tail mass overriding ``clusters.tail_mass``.

    Example:
        >>> rc = fit_reference_clusters(np.array([[0.0], [0.1], [0.2], [9.0]]), n_clusters=2, tail_mass=0.3)
        >>> round(expected_tail_coverage(rc, 2), 12)  # tail = the cluster of 9.0, p = 1/4: 1 - (3/4)**2
        0.4375
    """
    if not isinstance(clusters, ReferenceClusters):
        raise ValueError(f"clusters: expected ReferenceClusters, got {type(clusters).__name__}")
    m = _check_positive_int(m, "m")
    tail = clusters.tail_ids if tail_mass is None else tail_clusters(clusters.counts, tail_mass)
    return float(_expected_hit_rate(clusters.shares[tail], m).mean())


def _expected_mode_coverage(clusters: ReferenceClusters, m: int) -> float:
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
        reference_clusters_or_reference: a :class:`ReferenceClusters` from
            :func:`fit_reference_clusters`, or the ``[N, D]`` reference itself
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
        >>> rc = fit_reference_clusters(ref, n_clusters=4, tail_mass=0.1)
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
    if isinstance(reference_clusters_or_reference, ReferenceClusters):
        rc = reference_clusters_or_reference
        if n_clusters is not None and n_clusters != rc.n_clusters:
            raise ValueError(
                f"n_clusters: the fitted clusters have K={rc.n_clusters}, got n_clusters={n_clusters!r}"
            )
        tail = rc.tail_ids if tail_mass is None else tail_clusters(rc.counts, tail_mass)
    else:
        rc = fit_reference_clusters(
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
