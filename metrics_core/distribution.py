r"""Two-sample distribution distances between the reference and a round: Fréchet distance and EDS.

Reference (real) points :math:`X = \{x_i\}_{i=1}^N`, round (generated) points
:math:`Y = \{y_j\}_{j=1}^M`, both ``[., D]``:

* :func:`frechet_distance`: Fréchet (2-Wasserstein) distance between Gaussians
  fitted to the two sets (Dowson & Landau 1982; the FID formula of Heusel et
  al. 2017), with :func:`fit_gaussian` to cache the reference's moments.
* :func:`embedding_distribution_similarity`: cosine between the mean
  L2-normalised embeddings (LLM Data Auditor survey, §2.2 "Fidelity").

The kernel two-sample statistic, squared MMD, is in :mod:`metrics_core.mmd`;
it uses this module's batched bootstrap helpers.

Everything is computed in float64 (on :func:`~metrics_core.knn.default_device`)
because each metric is a small difference of large terms. Bootstrap intervals
resample the ROUND's samples with multinomial count weights, the reference
staying fixed as the yardstick.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from metrics_core._checks import (
    _check_bootstrap, _check_chunk_size, _check_embeddings, _check_nonzero_rows, _check_positive_int, _check_same_dim,
)
from metrics_core._moments import BlockMoments, use_blocks
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, bootstrap_counts, bootstrap_estimate
from metrics_core.knn import resolve_device

# Rows per block when accumulating means and covariances.
DEFAULT_ROW_CHUNK_SIZE = 8192
# A mean of unit vectors shorter than this has no usable direction.
_MIN_MEAN_NORM = 1e-12
_EPS64 = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------
# Bootstrap with all replicates evaluated in one batched pass (also used by metrics_core.mmd).
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
