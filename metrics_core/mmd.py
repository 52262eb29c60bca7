r"""Squared maximum mean discrepancy (MMD) between the reference and a round.

Reference (real) points :math:`X = \{x_i\}_{i=1}^N`, round (generated) points
:math:`Y = \{y_j\}_{j=1}^M`, both ``[., D]``:

* :func:`mmd2`: squared maximum mean discrepancy with a Gaussian (RBF) kernel,
  unbiased U-statistic (Gretton et al., JMLR 2012), median-heuristic bandwidth
  (:func:`median_heuristic_bandwidth`, Gretton et al. 2012, §8), optional
  permutation p-value; computed tile by tile, never an ``N x M`` matrix.

Everything is computed in float64 (on :func:`~metrics_core.knn.default_device`)
because the statistic is a small difference of large terms. Bootstrap intervals
resample the ROUND's samples with multinomial count weights, the reference
staying fixed as the yardstick; the batched bootstrap helpers are shared with
:mod:`metrics_core.distribution` (Fréchet distance, EDS).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from metrics_core._checks import (
    _check_bootstrap, _check_chunk_size, _check_embeddings, _check_positive_int, _check_same_dim,
)
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate
from metrics_core.distribution import _EPS64, _bootstrap_counts, _bootstrap_from_values
from metrics_core.knn import resolve_device

# Kernel tiles are at most DEFAULT_MMD_CHUNK_SIZE x DEFAULT_MMD_CHUNK_SIZE float64 (32 MiB).
DEFAULT_MMD_CHUNK_SIZE = 2048
MEDIAN_MAX_POINTS = 2000
PERMUTATION_MAX_POINTS = 5000
# Permutations whose statistics are computed in one pass over the kernel tiles.
_PERMUTATION_BATCH = 512
# Permuted statistics within this (absolute) distance of the observed one count as ties, i.e. as >=.
_PERMUTATION_TIE_TOL = 1e-12


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
