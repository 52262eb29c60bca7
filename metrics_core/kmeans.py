r"""k-means for the reference clusters: seeded k-means++, Lloyd's iterations and exact nearest-centre assignment.

Lloyd's algorithm (Lloyd 1982), ours, in torch on
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

from dataclasses import dataclass

import numpy as np
import torch

from metrics_core._checks import _check_embeddings, _check_positive_int, _check_same_dim, _check_seed, _check_tol
from metrics_core.knn import resolve_device


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

def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))

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
