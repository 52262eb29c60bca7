r"""Two-sample distribution distances between the reference and a round.

Reference (real) points :math:`X = \{x_i\}_{i=1}^N`, round (generated) points
:math:`Y = \{y_j\}_{j=1}^M`, both ``[., D]``:

* :func:`mmd2`: squared maximum mean discrepancy with a Gaussian (RBF) kernel,
  unbiased U-statistic (Gretton et al., JMLR 2012), median-heuristic bandwidth,
  optional permutation p-value; computed tile by tile, never an ``N x M`` matrix.
* :func:`frechet_distance`: Fréchet (2-Wasserstein) distance between Gaussians
  fitted to the two sets (Dowson & Landau 1982; the FID formula of Heusel et
  al. 2017), with :func:`fit_gaussian` to cache the reference's moments.
* :func:`embedding_distribution_similarity`: cosine between the mean
  L2-normalised embeddings (LLM Data Auditor survey, §2.2 "Fidelity").

Everything is computed in float64 (on :func:`~metrics_core.knn.default_device`)
because each metric is a small difference of large terms. Bootstrap intervals
resample the ROUND's samples with multinomial count weights, the reference
staying fixed as the yardstick.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from metrics_core._checks import (
    _check_bootstrap, _check_chunk_size, _check_embeddings, _check_nonzero_rows, _check_positive_int, _check_same_dim,
)
from metrics_core._moments import BlockMoments, use_blocks
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, bootstrap_counts, bootstrap_estimate
from metrics_core.knn import resolve_device

# Kernel tiles are at most DEFAULT_MMD_CHUNK_SIZE x DEFAULT_MMD_CHUNK_SIZE float64 (32 MiB).
DEFAULT_MMD_CHUNK_SIZE = 2048
# Rows per block when accumulating means and covariances.
DEFAULT_ROW_CHUNK_SIZE = 8192
MEDIAN_MAX_POINTS = 2000
PERMUTATION_MAX_POINTS = 5000
# Permutations whose statistics are computed in one pass over the kernel tiles.
_PERMUTATION_BATCH = 512
# Permuted statistics within this (absolute) distance of the observed one count as ties, i.e. as >=.
_PERMUTATION_TIE_TOL = 1e-12
# A mean of unit vectors shorter than this has no usable direction.
_MIN_MEAN_NORM = 1e-12
_EPS64 = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------
# Bootstrap with all replicates evaluated in one batched pass.
# --------------------------------------------------------------------------


def _bootstrap_counts(n: int, n_boot: int, level: float, seed: int) -> np.ndarray | None:
    """The count vectors :func:`bootstrap_estimate` draws for ``(n, n_boot, seed)``, stacked ``[R, n]``."""
    _check_bootstrap(n_boot, level)
    return bootstrap_counts(n, n_boot, seed) if n_boot else None


def _bootstrap_from_values(
    point: float, counts: np.ndarray | None, values: np.ndarray | None, n: int,
    n_boot: int, level: float, seed: int, method: str,
) -> Estimate:
    """:func:`bootstrap_estimate` fed with replicate values computed beforehand for ``counts``."""
    if counts is None:
        return Estimate(float(point))
    table = {row.tobytes(): float(v) for row, v in zip(counts, values)}
    table[np.ones(n, dtype=np.int64).tobytes()] = float(point)

    def lookup(w: np.ndarray) -> float:
        return table[np.ascontiguousarray(w, dtype=np.int64).tobytes()]

    return bootstrap_estimate(lookup, n, n_boot=n_boot, level=level, seed=seed, method=method)


# --------------------------------------------------------------------------
# MMD
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class MMDResult:
    """Squared MMD with its bandwidth and optional permutation p-value."""

    mmd2: Estimate
    bandwidth: float  # sigma of k(a, b) = exp(-||a - b||^2 / (2 sigma^2))
    p_value: float | None = None


def _augment(x: torch.Tensor) -> torch.Tensor:
    """``[x, ||x||^2, 1]``: the row operand of :func:`_kernel_tiles`."""
    ones = torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
    return torch.cat([x, (x * x).sum(dim=1, keepdim=True), ones], dim=1)


def _kernel_tiles(
    a_aug: torch.Tensor, b_aug: torch.Tensor, gamma: float, chunk: int
) -> Iterator[tuple[int, int, int, int, torch.Tensor]]:
    r"""Tiles :math:`\exp(-\gamma\lVert a_i - b_j\rVert^2)` of at most ``chunk x chunk``, in a fixed order.

    One GEMM per tile gives the exponent directly,
    :math:`[a, \lVert a\rVert^2, 1]\cdot[2\gamma b, -\gamma, -\gamma\lVert b\rVert^2]
    = -\gamma\lVert a-b\rVert^2`, clamped at 0 against rounding.
    """
    d = a_aug.shape[1] - 2
    perm = torch.tensor(list(range(d)) + [d + 1, d], device=b_aug.device)
    scale = torch.full((d + 2,), -gamma, dtype=b_aug.dtype, device=b_aug.device)
    scale[:d] = 2.0 * gamma
    for j0 in range(0, b_aug.shape[0], chunk):
        j1 = min(j0 + chunk, b_aug.shape[0])
        cols = (b_aug[j0:j1][:, perm] * scale).T.contiguous()
        for i0 in range(0, a_aug.shape[0], chunk):
            i1 = min(i0 + chunk, a_aug.shape[0])
            yield i0, i1, j0, j1, torch.exp_((a_aug[i0:i1] @ cols).clamp_(max=0.0))


def _kernel_sums(
    a: torch.Tensor, b: torch.Tensor, gamma: float, chunk: int,
    wa: torch.Tensor | None = None, wb: torch.Tensor | None = None,
) -> tuple[float, torch.Tensor | None]:
    r""":math:`\sum_{ij} k(a_i, b_j)` (operands from :func:`_augment`) and, given ``wb`` ``[R, |b|]``,
    the weighted sums :math:`\sum_{ij} wa_{ri}\, k(a_i, b_j)\, wb_{rj}` per row ``r`` (``wa=None``: all ones)."""
    total = torch.zeros((), dtype=torch.float64, device=a.device)
    reps = None if wb is None else torch.zeros(wb.shape[0], dtype=torch.float64, device=a.device)
    for i0, i1, j0, j1, k in _kernel_tiles(a, b, gamma, chunk):
        total += k.sum()
        if wb is not None:
            if wa is None:
                reps += wb[:, j0:j1] @ k.sum(dim=0)
            else:
                reps += ((wa[:, i0:i1] @ k) * wb[:, j0:j1]).sum(dim=1)
    return float(total), reps


def _mmd_from_sums(sxx, syy, sxy, n, m, sum_w, sum_w2, biased: bool):
    """MMD^2 from the three kernel sums; ``sum_w``/``sum_w2`` are the round's count totals.

    Works elementwise on numpy arrays too (bootstrap replicates)."""
    if biased:
        return sxx / (n * n) + syy / (sum_w * sum_w) - 2.0 * sxy / (n * sum_w)
    # k(y, y) = 1: removing the diagonal (and tied bootstrap duplicates) removes sum_j w_j^2.
    with np.errstate(divide="ignore", invalid="ignore"):
        yy = (syy - sum_w2) / (sum_w * sum_w - sum_w2)
    return (sxx - n) / (n * (n - 1)) + yy - 2.0 * sxy / (n * sum_w)


def _pairwise_sq_dists_upper(z: torch.Tensor, chunk: int) -> np.ndarray:
    """Squared distances of all pairs ``i < j`` of ``z`` (float64; rounding-level values set to 0)."""
    d = z.shape[1]
    sq = (z * z).sum(dim=1)
    band = (d + 16) * _EPS64
    out = []
    n = z.shape[0]
    for i0 in range(0, n, chunk):
        i1 = min(i0 + chunk, n)
        d2 = sq[i0:i1, None] + sq[None, :] - 2.0 * (z[i0:i1] @ z.T)
        # Below the rounding band of the Gram formula the pair is a duplicate.
        d2 = torch.where(d2 <= band * (sq[i0:i1, None] + sq[None, :]), torch.zeros_like(d2), d2)
        rows = torch.arange(i0, i1, device=z.device)[:, None]
        cols = torch.arange(n, device=z.device)[None, :]
        out.append(d2[cols > rows].cpu().numpy())
    return np.concatenate(out) if out else np.empty(0)


def median_heuristic_bandwidth(
    reference, round_=None, *, max_points: int = MEDIAN_MAX_POINTS, seed: int = 0, device=None
) -> float:
    r"""Median-heuristic bandwidth :math:`\sigma` of the RBF kernel (Gretton et al. 2012, §8).

    .. math::
        \sigma^2 = \tfrac12\,\operatorname{median}\{\lVert z_a - z_b\rVert^2 : a < b\},

    over all pairs of distinct indices of the pooled sample
    :math:`Z = X \cup Y` (rows of ``reference`` then ``round_``), so that
    :math:`k(a,b) = \exp(-\lVert a-b\rVert^2/(2\sigma^2)) = \exp(-\lVert a-b\rVert^2/\mathrm{median})`.
    When :math:`|Z| >` ``max_points``, the pairs are those of ``max_points`` pooled
    rows drawn without replacement by ``numpy.random.default_rng(seed).choice``.
    The median is numpy's (mean of the two middle values for an even count).

    Collapse makes duplicates: if the median is 0 (more than half of the pairs
    are duplicates, i.e. at or below the float64 rounding level of the Gram
    formula) the median of the positive squared distances is used instead, and
    if every pair is a duplicate :math:`\sigma = 1` (then every point is the
    same and MMD is 0 for any bandwidth).

    Args:
        reference: ``[N, D]`` float array.
        round_: optional ``[M, D]`` float array pooled with it.
        max_points: largest pooled sample used (memory and time grow as its square).
        seed: seed of the subsample.
        device: torch device, default CUDA when present else CPU.

    Example:
        >>> import numpy as np
        >>> # pooled {0, 1, 0, 2}: squared distances 1, 0, 4, 1, 1, 4 -> median 1 -> sigma^2 = 1/2
        >>> round(median_heuristic_bandwidth(np.array([[0.0], [1.0]]), np.array([[0.0], [2.0]])) ** 2, 12)
        0.5
    """
    x = _check_embeddings(reference, "reference")
    parts = [x]
    if round_ is not None:
        y = _check_embeddings(round_, "round")
        _check_same_dim(x, y, "reference", "round")
        parts.append(y)
    max_points = _check_positive_int(max_points, "max_points", 2)
    device = resolve_device(device)
    z = torch.cat([p.to(device=device, dtype=torch.float64) for p in parts])
    if z.shape[0] < 2:
        raise ValueError(f"reference: the median heuristic needs at least 2 pooled rows, got {z.shape[0]}")
    if z.shape[0] > max_points:
        idx = np.random.default_rng(seed).choice(z.shape[0], size=max_points, replace=False)
        z = z[torch.from_numpy(idx).to(device)]
    z = z - z.mean(dim=0)
    d2 = _pairwise_sq_dists_upper(z, DEFAULT_MMD_CHUNK_SIZE)
    med = float(np.median(d2))
    if med <= 0.0:
        positive = d2[d2 > 0.0]
        if positive.size == 0:
            return 1.0
        med = float(np.median(positive))
    return float(np.sqrt(med / 2.0))


def _permutation_p_value(
    xc: torch.Tensor, yc: torch.Tensor, gamma: float, biased: bool, n_permutations: int,
    max_points: int, seed: int, chunk: int,
) -> float:
    n, m = xc.shape[0], yc.shape[0]
    rng = np.random.default_rng([seed, 1])
    if n + m > max_points:
        n_sub = min(n, max(2, round(max_points * n / (n + m))))
        m_sub = min(m, max(2, max_points - n_sub))
        ix = rng.choice(n, size=n_sub, replace=False)
        iy = rng.choice(m, size=m_sub, replace=False)
        xc = xc[torch.from_numpy(ix).to(xc.device)]
        yc = yc[torch.from_numpy(iy).to(yc.device)]
        n, m = n_sub, m_sub
    z = _augment(torch.cat([xc, yc]))
    total = n + m
    observed = None
    row_sums = None
    exceed = 0
    done = -1  # the observed labelling is row 0 of the first batch
    while done < n_permutations:
        rows = min(_PERMUTATION_BATCH, n_permutations - done)
        labels = np.zeros((rows, total))
        for r in range(rows):
            if done + r < 0:
                labels[r, :n] = 1.0
            else:
                labels[r, rng.permutation(total)[:n]] = 1.0
        a = torch.from_numpy(labels).to(z.device)
        q = torch.zeros(rows, dtype=torch.float64, device=z.device)
        first = row_sums is None
        if first:
            row_sums = torch.zeros(total, dtype=torch.float64, device=z.device)
        for i0, i1, j0, j1, k in _kernel_tiles(z, z, gamma, chunk):
            if first:
                row_sums[i0:i1] += k.sum(dim=1)
            q += ((a[:, i0:i1] @ k) * a[:, j0:j1]).sum(dim=1)
        s = float(row_sums.sum())
        au = (a @ row_sums).cpu().numpy()
        qq = q.cpu().numpy()
        # a'Ka, b'Kb = S - 2 a'u + a'Ka and a'Kb = a'u - a'Ka with u = K1, b = 1 - a.
        stats = _mmd_from_sums(qq, s - 2.0 * au + qq, au - qq, n, m, float(m), float(m), biased)
        if observed is None:
            observed, stats = float(stats[0]), stats[1:]
        exceed += int((stats >= observed - _PERMUTATION_TIE_TOL).sum())
        done += rows
    return (exceed + 1) / (n_permutations + 1)


def mmd2(
    reference,
    round_,
    *,
    bandwidth: float | None = None,
    biased: bool = False,
    n_permutations: int = 0,
    max_permutation_points: int = PERMUTATION_MAX_POINTS,
    n_boot: int = 0,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    chunk_size: int = DEFAULT_MMD_CHUNK_SIZE,
    device=None,
) -> MMDResult:
    r"""Squared maximum mean discrepancy with a Gaussian kernel (Gretton et al., JMLR 2012, eq. 3).

    .. math::
        \mathrm{MMD}^2_u = \frac{1}{N(N-1)}\sum_{i\ne i'} k(x_i,x_{i'})
            + \frac{1}{M(M-1)}\sum_{j\ne j'} k(y_j,y_{j'})
            - \frac{2}{NM}\sum_{i,j} k(x_i,y_j),
        \qquad k(a,b) = \exp\!\Big(-\frac{\lVert a-b\rVert^2}{2\sigma^2}\Big).

    ``biased=True`` gives the V-statistic :math:`\mathrm{MMD}^2_b` (eq. 5: all
    three sums over every pair, divided by :math:`N^2`, :math:`M^2`, :math:`NM`),
    which is :math:`\lVert\hat\mu_X-\hat\mu_Y\rVert^2_{\mathcal H}\in[0,2]`.
    Lower is better (0: the round is distributed like the reference). The
    unbiased estimate lies in :math:`[-2, 2]` and is slightly negative when the
    two sets are alike: e.g. for :math:`Y = X` it equals
    :math:`-2\,(1 - \bar K)/(N-1) \le 0` with :math:`\bar K` the mean of the full
    :math:`N\times N` kernel matrix.

    The bandwidth is :func:`median_heuristic_bandwidth` of the pooled sample
    (subsample of at most 2,000 pooled rows, seed 0, independent of ``seed``)
    unless ``bandwidth`` is given; pass a fixed one (e.g. from the reference
    alone) to compare rounds on one scale. The kernel is evaluated in float64
    tiles of ``chunk_size x chunk_size`` (both sets centred on the reference
    mean; each tile's exponent :math:`-\lVert a-b\rVert^2/(2\sigma^2)` is one GEMM
    of augmented rows, clamped at 0 against rounding), so memory is
    :math:`O(\text{chunk\_size}^2 + \text{n\_boot}\cdot M)` and time
    :math:`O((N+M)^2 D)`. All three sums use the same tile code, so
    ``mmd2(X, X, biased=True)`` is exactly 0.

    Uncertainty: bootstrap over the round's samples with count weights
    :math:`w` (bandwidth and reference fixed), all replicates computed in one
    pass over the tiles. The round-round term keeps pairs of distinct original
    samples only, :math:`(w^\top K_{YY} w - \sum_j w_j^2)/((\sum_j w_j)^2 - \sum_j w_j^2)`,
    so bootstrap duplicates are not counted as pairs at distance 0; the cross
    term is :math:`\mathbf 1^\top K_{XY} w / (N \sum_j w_j)`. Percentile interval.

    Permutation test (``n_permutations > 0``), of :math:`H_0: P_X = P_Y`:
    ``rng = numpy.random.default_rng([seed, 1])``; if :math:`N+M >`
    ``max_permutation_points`` the test runs on a subsample of
    :math:`n' = \min(N, \max(2, \mathrm{round}(P N/(N+M))))` reference rows
    ``rng.choice(N, n', replace=False)`` and :math:`m' = \min(M, \max(2, P - n'))`
    round rows ``rng.choice(M, m', replace=False)`` (:math:`P` =
    ``max_permutation_points``), its observed statistic recomputed on that
    subsample; each permutation is ``rng.permutation(n'+m')`` of the pooled rows
    (reference first), its first :math:`n'` rows forming the reference.
    :math:`p = (k+1)/(n+1)` with :math:`k` the number of the :math:`n`
    permuted statistics :math:`\ge` the observed one less :math:`10^{-12}`
    (rounding ties count). Cost :math:`O(n \cdot (n'+m')^2)` on top of the
    kernel, hence the subsample.

    Args:
        reference: ``[N, D]`` float array, ``N >= 2``.
        round_: ``[M, D]`` float array, ``M >= 2``.
        bandwidth: kernel width :math:`\sigma > 0`; ``None``: median heuristic.
        biased: return :math:`\mathrm{MMD}^2_b` instead of :math:`\mathrm{MMD}^2_u`.
        n_permutations: permutations for the p-value (0: no test, ``p_value=None``).
        max_permutation_points: largest pooled sample the permutation test uses.
        n_boot: bootstrap replicates for the interval (0: none).
        level: confidence level.
        seed: seed of the bootstrap and of the permutations.
        chunk_size: side of the kernel tiles.
        device: torch device, default CUDA when present else CPU.

    Returns:
        :class:`MMDResult` ``(mmd2, bandwidth, p_value)``.

    Example:
        >>> import numpy as np
        >>> x, y = np.array([[0.0], [1.0]]), np.array([[0.0], [2.0]])
        >>> # 2 sigma^2 = 1: e^-1 + e^-4 - 2 (1 + e^-4 + 2 e^-1) / 4 = (e^-4 - 1) / 2
        >>> r = mmd2(x, y, bandwidth=np.sqrt(0.5))
        >>> round(r.mmd2.value, 6), r.p_value
        (-0.490842, None)
        >>> mmd2(x, x, biased=True).mmd2.value
        0.0
    """
    x = _check_embeddings(reference, "reference", min_rows=2)
    y = _check_embeddings(round_, "round", min_rows=2)
    _check_same_dim(x, y, "reference", "round")
    _check_bootstrap(n_boot, level)
    _check_chunk_size(chunk_size)
    n_permutations = _check_positive_int(n_permutations, "n_permutations", 0)
    max_permutation_points = _check_positive_int(max_permutation_points, "max_permutation_points", 4)
    device = resolve_device(device)
    if bandwidth is None:
        sigma = median_heuristic_bandwidth(x, y, device=device)
    else:
        sigma = float(bandwidth)
        if not (np.isfinite(sigma) and sigma > 0.0):
            raise ValueError(f"bandwidth: expected a finite positive float, got {bandwidth!r}")
    two_var = 2.0 * sigma * sigma
    gamma = 1.0 / two_var if two_var > 0.0 else float("inf")
    if not np.isfinite(gamma):
        raise ValueError(f"bandwidth: {sigma!r} is too small for float64 (1/(2 sigma^2) overflows)")
    x64 = x.to(device=device, dtype=torch.float64)
    center = x64.mean(dim=0)
    xc = x64 - center
    yc = y.to(device=device, dtype=torch.float64) - center
    n, m = xc.shape[0], yc.shape[0]

    counts = _bootstrap_counts(m, n_boot, level, seed)
    w = None if counts is None else torch.from_numpy(counts.astype(np.float64)).to(device)
    xa, ya = _augment(xc), _augment(yc)
    del xc, yc
    sxx, _ = _kernel_sums(xa, xa, gamma, chunk_size)
    syy, syy_w = _kernel_sums(ya, ya, gamma, chunk_size, wa=w, wb=w)
    sxy, sxy_w = _kernel_sums(xa, ya, gamma, chunk_size, wb=w)
    point = float(_mmd_from_sums(sxx, syy, sxy, n, m, float(m), float(m), biased))
    values = None
    if counts is not None:
        cw = counts.astype(np.float64)
        values = _mmd_from_sums(
            sxx, syy_w.cpu().numpy(), sxy_w.cpu().numpy(), n, m, cw.sum(axis=1), (cw * cw).sum(axis=1), biased
        )
    est = _bootstrap_from_values(point, counts, values, m, n_boot, level, seed, "percentile")
    p_value = None
    if n_permutations > 0:
        p_value = _permutation_p_value(
            xa[:, :-2], ya[:, :-2], gamma, biased, n_permutations, max_permutation_points, seed, chunk_size
        )
    return MMDResult(est, sigma, p_value)


# --------------------------------------------------------------------------
# Fréchet distance
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GaussianStats:
    """Mean ``[D]`` and covariance ``[D, D]`` (float64, read-only copies) of ``n`` samples.

    Built by :func:`fit_gaussian`, or directly from known (population)
    parameters; ``cov`` must be symmetric (relative tolerance 1e-10) and
    positive semi-definite up to rounding (checked when used). Compared by
    identity (array fields).
    """

    mean: np.ndarray
    cov: np.ndarray
    n: int

    def __post_init__(self) -> None:
        mean = np.array(self.mean, dtype=np.float64)
        cov = np.array(self.cov, dtype=np.float64)
        if mean.ndim != 1 or mean.shape[0] == 0:
            raise ValueError(f"mean: expected a non-empty 1-D array [D], got shape {mean.shape}")
        d = mean.shape[0]
        if cov.shape != (d, d):
            raise ValueError(f"cov: expected shape ({d}, {d}) to match mean, got {cov.shape}")
        if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
            raise ValueError("mean, cov: expected finite values, got NaN or inf")
        scale = float(np.abs(cov).max())
        if float(np.abs(cov - cov.T).max()) > 1e-10 * scale:
            raise ValueError("cov: expected a symmetric matrix")
        _check_positive_int(self.n, "n", 1)
        cov = (cov + cov.T) / 2.0
        mean.setflags(write=False)
        cov.setflags(write=False)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "cov", cov)
        object.__setattr__(self, "n", int(self.n))


def _moments(
    x: torch.Tensor, w: torch.Tensor | None, chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and ddof=1 covariance of float64 ``x``, with frequency weights ``w`` (counts) if given."""
    if w is None:
        sum_w = float(x.shape[0])
        mean = x.sum(dim=0) / sum_w
    else:
        sum_w = float(w.sum())
        mean = (w @ x) / sum_w
    acc = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=x.device)
    for r0 in range(0, x.shape[0], chunk):
        xc = x[r0 : r0 + chunk] - mean
        acc += (xc.T @ xc) if w is None else ((xc * w[r0 : r0 + chunk, None]).T @ xc)
    cov = acc / (sum_w - 1.0)
    return mean, (cov + cov.T) / 2.0


def _eigh_psd(mat: torch.Tensor, name: str, vectors: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Eigen-decomposition of a PSD matrix; negative and rounding-level eigenvalues set to 0."""
    lam, vec = torch.linalg.eigh(mat) if vectors else (torch.linalg.eigvalsh(mat), None)
    top = float(lam.abs().max())
    cutoff = mat.shape[0] * _EPS64 * top
    if float(lam.min()) < -1e-8 * top:
        raise ValueError(f"{name}: expected a positive semi-definite matrix, smallest eigenvalue {float(lam.min())!r}")
    return torch.where(lam > cutoff, lam, torch.zeros_like(lam)), vec


def _trace_sqrt_product(sqrt_x: torch.Tensor, cov_y: torch.Tensor) -> float:
    r""":math:`\operatorname{tr}(\Sigma_x^{1/2}\Sigma_y\Sigma_x^{1/2})^{1/2}`, from the clipped eigenvalues."""
    c = sqrt_x @ cov_y @ sqrt_x
    lam, _ = _eigh_psd((c + c.T) / 2.0, "sqrt(cov_x) cov_y sqrt(cov_x)", vectors=False)
    return float(lam.sqrt().sum())


def _psd_sqrt(cov: torch.Tensor, name: str) -> torch.Tensor:
    lam, vec = _eigh_psd(cov, name)
    return (vec * lam.sqrt()) @ vec.T


def fit_gaussian(reference, *, chunk_size: int = DEFAULT_ROW_CHUNK_SIZE, device=None) -> GaussianStats:
    r"""Mean and covariance (ddof=1) of the reference, for reuse across rounds.

    .. math::
        \mu = \frac1N\sum_i x_i, \qquad
        \Sigma = \frac{1}{N-1}\sum_i (x_i-\mu)(x_i-\mu)^\top ,

    in float64, accumulated over blocks of ``chunk_size`` rows.

    Args:
        reference: ``[N, D]`` float array, ``N >= 2``.
        chunk_size: rows per block.
        device: torch device, default CUDA when present else CPU.

    Example:
        >>> import numpy as np
        >>> g = fit_gaussian(np.array([[0.0, 1.0], [2.0, 1.0]]))
        >>> g.mean.tolist(), g.cov.tolist(), g.n
        ([1.0, 1.0], [[2.0, 0.0], [0.0, 0.0]], 2)
    """
    x = _check_embeddings(reference, "reference", min_rows=2)
    _check_chunk_size(chunk_size)
    mean, cov = _moments(x.to(device=resolve_device(device), dtype=torch.float64), None, chunk_size)
    return GaussianStats(mean.cpu().numpy(), cov.cpu().numpy(), x.shape[0])


def frechet_distance(
    reference_or_stats,
    round_,
    *,
    n_boot: int = 0,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    chunk_size: int = DEFAULT_ROW_CHUNK_SIZE,
    device=None,
) -> Estimate:
    r"""Fréchet distance between Gaussians fitted to reference and round (Dowson & Landau 1982).

    .. math::
        \mathrm{FD} = \lVert\mu_x-\mu_y\rVert^2
            + \operatorname{tr}\Big(\Sigma_x + \Sigma_y
            - 2\big(\Sigma_x^{1/2}\Sigma_y\Sigma_x^{1/2}\big)^{1/2}\Big),

    the squared 2-Wasserstein distance between :math:`\mathcal N(\mu_x,\Sigma_x)`
    and :math:`\mathcal N(\mu_y,\Sigma_y)`, as in FID (Heusel et al. 2017),
    with means and ddof=1 covariances (:func:`fit_gaussian`). Range
    :math:`[0,\infty)`; lower is better.

    FID is usually written with :math:`\operatorname{tr}(\Sigma_x\Sigma_y)^{1/2}`,
    which is the same number: with :math:`S=\Sigma_x^{1/2}`,
    :math:`\Sigma_x\Sigma_y = S\,(S\Sigma_y)` and :math:`(S\Sigma_y)\,S = S\Sigma_y S`
    have the same nonzero eigenvalues (:math:`AB` and :math:`BA` always do), and
    :math:`S\Sigma_y S` is symmetric PSD, so they are real and
    :math:`\ge 0`; the trace of the principal square root is
    :math:`\sum_k\sqrt{\lambda_k(S\Sigma_y S)}`. That is what is computed,
    in float64: :math:`S` from ``eigh`` of :math:`\Sigma_x` and the
    :math:`\lambda_k` from ``eigh`` of the symmetrised :math:`S\Sigma_y S`, with
    negative eigenvalues and those below :math:`D\,\epsilon_{64}\lambda_{\max}`
    (rounding) set to 0. No non-symmetric ``sqrtm`` is needed, so singular
    covariances (:math:`D \ge N` or :math:`D \ge M`, constant features) give a
    finite result: the distance between the fitted degenerate Gaussians.
    A negative rounding residue of the total is clamped to 0.

    Uncertainty: bootstrap over the round's samples, the round's mean and
    covariance recomputed with the counts as frequency weights (ddof=1 on
    :math:`\sum_j w_j`), the reference fixed. The replicates are biased upward
    (resampling adds spread), so the interval is the normal one around the
    estimate, its lower end clamped to 0. Cost :math:`O(\text{n\_boot}\,(MD^2 + D^3))`.

    Args:
        reference_or_stats: ``[N, D]`` float array (``N >= 2``) or the
            :class:`GaussianStats` of the reference (:func:`fit_gaussian`, or
            population parameters).
        round_: ``[M, D]`` float array (``M >= 2``), or :class:`GaussianStats`
            (then ``n_boot`` must be 0).
        n_boot: bootstrap replicates for the interval (0: none).
        level: confidence level.
        seed: bootstrap seed.
        chunk_size: rows per block of the covariance accumulation.
        device: torch device, default CUDA when present else CPU.

    Example:
        >>> import numpy as np
        >>> # N(0, 1 I_2) vs N((1, 1), 2^2 I_2): |dmu|^2 + D (a - b)^2 = 2 + 2 * 1 = 4
        >>> a = GaussianStats(np.zeros(2), np.eye(2), n=10)
        >>> b = GaussianStats(np.ones(2), 4.0 * np.eye(2), n=10)
        >>> round(frechet_distance(a, b).value, 12)
        4.0
    """
    _check_bootstrap(n_boot, level)
    _check_chunk_size(chunk_size)
    device = resolve_device(device)
    if isinstance(reference_or_stats, GaussianStats):
        ref = reference_or_stats
    else:
        ref = fit_gaussian(reference_or_stats, chunk_size=chunk_size, device=device)
    d = ref.mean.shape[0]
    mu_x = torch.tensor(ref.mean, device=device)
    cov_x = torch.tensor(ref.cov, device=device)
    sqrt_x = _psd_sqrt(cov_x, "reference covariance")
    trace_x = float(torch.trace(cov_x))

    def fd(mu_y: torch.Tensor, cov_y: torch.Tensor) -> float:
        diff = mu_x - mu_y
        value = float(diff @ diff) + trace_x + float(torch.trace(cov_y)) - 2.0 * _trace_sqrt_product(sqrt_x, cov_y)
        return max(value, 0.0)

    if isinstance(round_, GaussianStats):
        if round_.mean.shape[0] != d:
            raise ValueError(f"round: expected D={d} features to match reference, got D={round_.mean.shape[0]}")
        if n_boot:
            raise ValueError("n_boot: the round is given as GaussianStats, it has no samples to resample; use n_boot=0")
        cov_y = torch.tensor(round_.cov, device=device)
        _eigh_psd(cov_y, "round covariance", vectors=False)
        return Estimate(fd(torch.tensor(round_.mean, device=device), cov_y))

    y = _check_embeddings(round_, "round", min_rows=2)
    if y.shape[1] != d:
        raise ValueError(f"round: expected D={d} features to match reference, got D={y.shape[1]}")
    y64 = y.to(device=device, dtype=torch.float64)
    m = y64.shape[0]
    point = fd(*_moments(y64, None, chunk_size))
    units, blocks = m, None
    if use_blocks(m, n_boot):  # resample random row blocks, O(G D^2) per replicate
        blocks = BlockMoments(y64, seed)
        units = blocks.n_blocks

    def statistic(w: np.ndarray) -> float:
        if bool((w == 1).all()):
            return point
        if blocks is not None:
            return fd(*blocks.moments(w))
        return fd(*_moments(y64, torch.from_numpy(np.asarray(w, dtype=np.float64)).to(device), chunk_size))

    est = bootstrap_estimate(statistic, units, n_boot=n_boot, level=level, seed=seed, method="normal")
    if est.ci_low is not None and est.ci_low < 0.0:
        est = Estimate(est.value, 0.0, est.ci_high, est.std_error)
    return est


# --------------------------------------------------------------------------
# Embedding distribution similarity
# --------------------------------------------------------------------------


def _unit_row_sums(
    x: torch.Tensor, chunk: int, w: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Sum of the L2-normalised rows ``[D]`` and, given ``w`` ``[R, n]``, the weighted sums ``[R, D]``."""
    total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    reps = None if w is None else torch.zeros(w.shape[0], x.shape[1], dtype=torch.float64, device=x.device)
    for r0 in range(0, x.shape[0], chunk):
        u = x[r0 : r0 + chunk].to(torch.float64)
        u = u / torch.linalg.vector_norm(u, dim=1, keepdim=True)
        total += u.sum(dim=0)
        if w is not None:
            reps += w[:, r0 : r0 + chunk] @ u
    return total, reps


def embedding_distribution_similarity(
    reference,
    round_,
    *,
    n_boot: int = 0,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    chunk_size: int = DEFAULT_ROW_CHUNK_SIZE,
    device=None,
) -> Estimate:
    r"""Embedding distribution similarity, EDS (LLM Data Auditor survey, §2.2 "Fidelity").

    .. math::
        \mathrm{EDS} = \cos(\bar e_{\mathrm{syn}}, \bar e_{\mathrm{real}}),\qquad
        \bar e = \frac{1}{|X|}\sum_{x\in X}\frac{f(x)}{\lVert f(x)\rVert_2},

    the cosine between the mean L2-normalised embeddings of the round
    (synthetic) and of the reference (real). Range :math:`[-1, 1]`; higher is
    better (1: same mean direction). It compares mean directions only, not
    spread: a collapsed round pointing the reference's mean way scores 1.

    Zero rows are refused (their direction is undefined), and so is a set
    whose mean unit vector is shorter than :math:`10^{-12}` (e.g.
    :math:`\{u, -u\}`): it has no direction. Float64, in blocks of
    ``chunk_size`` rows.

    Uncertainty: bootstrap over the round's samples (count-weighted mean of
    its unit vectors, the reference fixed), all replicates in one pass;
    replicates whose mean has no direction are dropped. Resampling noise in
    the mean adds components orthogonal to it, which lowers the cosine, so the
    replicates sit below the estimate (by about :math:`1/(2M\lVert\bar e_{\mathrm{syn}}\rVert^2)`
    for isotropic spread): the interval is the normal one around the estimate,
    clipped to :math:`[-1, 1]`.

    Args:
        reference: ``[N, D]`` float array without zero rows.
        round_: ``[M, D]`` float array without zero rows.
        n_boot: bootstrap replicates for the interval (0: none).
        level: confidence level.
        seed: bootstrap seed.
        chunk_size: rows per block.
        device: torch device, default CUDA when present else CPU.

    Example:
        >>> import numpy as np
        >>> # round mean direction (1/2, 1/2) vs reference (1, 0): 45 degrees, cos = 1/sqrt(2)
        >>> ref, rnd = np.array([[3.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 2.0]])
        >>> embedding_distribution_similarity(ref, rnd).value  # doctest: +ELLIPSIS
        0.7071067811865...
    """
    x = _check_embeddings(reference, "reference")
    y = _check_embeddings(round_, "round")
    _check_same_dim(x, y, "reference", "round")
    _check_nonzero_rows(x, "reference")
    _check_nonzero_rows(y, "round")
    _check_bootstrap(n_boot, level)
    _check_chunk_size(chunk_size)
    device = resolve_device(device)
    n, m = x.shape[0], y.shape[0]
    sx, _ = _unit_row_sums(x.to(device), chunk_size)
    ex = sx / n
    norm_x = float(torch.linalg.vector_norm(ex))
    if norm_x < _MIN_MEAN_NORM:
        raise ValueError(
            f"reference: the mean of the L2-normalised rows has norm {norm_x:.3g} < {_MIN_MEAN_NORM:g}; "
            "its direction, hence EDS, is undefined"
        )
    counts = _bootstrap_counts(m, n_boot, level, seed)
    w = None if counts is None else torch.from_numpy(counts.astype(np.float64)).to(device)
    sy, sy_w = _unit_row_sums(y.to(device), chunk_size, w)
    ey = sy / m
    norm_y = float(torch.linalg.vector_norm(ey))
    if norm_y < _MIN_MEAN_NORM:
        raise ValueError(
            f"round: the mean of the L2-normalised rows has norm {norm_y:.3g} < {_MIN_MEAN_NORM:g}; "
            "its direction, hence EDS, is undefined"
        )
    point = min(1.0, max(-1.0, float(ey @ ex) / (norm_y * norm_x)))
    values = None
    if counts is not None:
        ey_w = sy_w / w.sum(dim=1, keepdim=True)
        norms = torch.linalg.vector_norm(ey_w, dim=1)
        cos = ((ey_w @ ex) / (norms * norm_x)).clamp(-1.0, 1.0)
        values = torch.where(norms < _MIN_MEAN_NORM, torch.full_like(cos, float("nan")), cos).cpu().numpy()
    est = _bootstrap_from_values(point, counts, values, m, n_boot, level, seed, "normal")
    if est.ci_low is None:
        return est
    return Estimate(est.value, max(-1.0, est.ci_low), min(1.0, est.ci_high), est.std_error)
