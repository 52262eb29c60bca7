r"""Contraction of the feature space: effective rank and log-volume ratio.

Both metrics are functions of ``D x D`` covariance matrices (``ddof=1``),
accumulated in float64 over row chunks of at most 8192 rows
(:math:`O(N D^2)` time, :math:`O(D^2)` extra memory, never an ``N x N``
matrix), then eigen-decomposed with ``torch.linalg.eigvalsh``/``eigh``.

The bootstrap reweights the round's rows with multinomial counts
:math:`w_i`, using the frequency-weighted covariance
:math:`\Sigma_w = \sum_i w_i (x_i-\bar x_w)(x_i-\bar x_w)^\top / (\sum_i w_i - 1)`,
:math:`\bar x_w = \sum_i w_i x_i / \sum_i w_i` (``numpy.cov(..., fweights=w)``).
Each replicate costs one covariance, :math:`O(N D^2)`. Spectral statistics
are biased under resampling (a resample holds duplicates, which shrink the
spectrum's spread), so the intervals are the normal ones around the estimate
(``method="normal"`` of :func:`~metrics_core.bootstrap.bootstrap_estimate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from metrics_core._checks import _check_embeddings
from metrics_core._moments import BlockMoments, use_blocks
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, bootstrap_estimate
from metrics_core.knn import resolve_device

_ROW_CHUNK = 8192
_EPS64 = float(torch.finfo(torch.float64).eps)
DEFAULT_REL_TOL = 1e-10
DEFAULT_FLOOR = 1e-12


# --------------------------------------------------------------------------
# Covariance and spectral entropy
# --------------------------------------------------------------------------


def _weighted_covariance(x: torch.Tensor, w: np.ndarray | None) -> torch.Tensor:
    r"""Float64 ``D x D`` covariance (``ddof=1``) of the rows of ``x`` with count weights ``w``.

    Two passes over row chunks: the weighted mean, then
    :math:`\sum_i w_i (x_i-\bar x_w)(x_i-\bar x_w)^\top / (W-1)`. Rows with
    zero weight are skipped. When every row with positive weight is exactly
    equal to the first one the result is the exact zero matrix (the two-pass
    formula would leave rounding residue of the mean). Requires ``W >= 2``.
    """
    n, d = x.shape
    device = x.device
    if w is None:
        wt = None
        total = float(n)
    else:
        wt = torch.as_tensor(w, dtype=torch.float64).to(device)
        total = float(wt.sum())
    first = 0 if w is None else int(np.flatnonzero(w)[0])
    pivot = x[first]
    mean = torch.zeros(d, dtype=torch.float64, device=device)
    all_equal = True
    for s in range(0, n, _ROW_CHUNK):
        xc = x[s : s + _ROW_CHUNK]
        if wt is not None:
            keep = wt[s : s + _ROW_CHUNK] > 0
            xc = xc[keep]
            mean += (xc.to(torch.float64) * wt[s : s + _ROW_CHUNK][keep][:, None]).sum(dim=0)
        else:
            mean += xc.to(torch.float64).sum(dim=0)
        if all_equal:
            all_equal = bool((xc == pivot).all())
    cov = torch.zeros(d, d, dtype=torch.float64, device=device)
    if all_equal:
        return cov
    mean /= total
    for s in range(0, n, _ROW_CHUNK):
        xc = x[s : s + _ROW_CHUNK]
        if wt is not None:
            keep = wt[s : s + _ROW_CHUNK] > 0
            y = xc[keep].to(torch.float64) - mean
            cov += (y * wt[s : s + _ROW_CHUNK][keep][:, None]).T @ y
        else:
            y = xc.to(torch.float64) - mean
            cov += y.T @ y
    cov /= total - 1.0
    return (cov + cov.T) / 2.0


def _replicate_covariance(x: torch.Tensor, n_boot: int, seed: int):
    """``(units, covariance(counts))`` for bootstrap replicates: rows, or random row blocks above 2,048 rows."""
    if use_blocks(x.shape[0], n_boot):
        blocks = BlockMoments(x, seed)
        return blocks.n_blocks, lambda w: blocks.moments(w)[1]
    return x.shape[0], lambda w: _weighted_covariance(x, w)


def _spectral_effective_rank(eigenvalues: torch.Tensor) -> float:
    """exp of the Shannon entropy of the normalised non-negative spectrum; 0 for the zero spectrum."""
    lam = eigenvalues.to(torch.float64).clamp(min=0.0)
    top = float(lam.max())
    if top == 0.0:
        return 0.0
    # Eigenvalues at the rounding level of a float64 eigen-decomposition are zeros.
    lam = torch.where(lam <= lam.shape[0] * _EPS64 * top, torch.zeros_like(lam), lam)
    p = lam / lam.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * torch.log(p)).sum()))


def effective_rank(
    x, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0, device=None
) -> Estimate:
    r"""Effective rank of the covariance spectrum (Roy & Vetterli, EUSIPCO 2007).

    Roy & Vetterli define the effective rank of a matrix from its singular
    values; here it is applied to the sample covariance
    :math:`\Sigma = \frac{1}{N-1}\sum_i (x_i-\bar x)(x_i-\bar x)^\top`
    (``ddof=1``), i.e. it is the exponential of the Shannon entropy of the
    normalised **eigenvalues of the covariance** :math:`\sigma_1..\sigma_D \ge 0`:

    .. math::
        \operatorname{erank}(\Sigma) = \exp\Big(-\sum_{i=1}^{D} p_i \log p_i\Big),
        \qquad p_i = \frac{\sigma_i}{\sum_j \sigma_j},\quad 0\log 0 = 0 .

    (Equivalently, Roy & Vetterli's erank of the centred data matrix computed
    from *squared* singular values.) Eigenvalues at most
    :math:`D\,\varepsilon_{64}\,\sigma_{\max}` are rounding residue and count
    as 0, so rank-1 data gives exactly 1.

    Range :math:`[1, \min(N-1, D)]`: 1 when the spread lies along one axis,
    :math:`D` for an isotropic covariance. By convention a set whose rows are
    all exactly identical (zero covariance, total collapse) gives **0**, the
    rank of the zero matrix, so it ranks below every rank-1 set; higher is
    better (less contracted). The value is scale and rotation invariant.

    Bootstrap: resamples rows (weighted covariance), normal interval, see the
    module docstring; each replicate costs :math:`O(ND^2)`.

    Args:
        x: ``[N, D]`` float array, ``N >= 2``.
        n_boot: bootstrap replicates (0: point estimate only).
        level: confidence level.
        seed: bootstrap seed.
        device: torch device, default CUDA when present else CPU.

    Example:
        >>> import numpy as np
        >>> x = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
        >>> round(effective_rank(x).value, 12), effective_rank(np.ones((3, 2))).value
        (2.0, 0.0)
    """
    xt = _check_embeddings(x, "x", min_rows=2).to(resolve_device(device))
    n = xt.shape[0]
    point = _spectral_effective_rank(torch.linalg.eigvalsh(_weighted_covariance(xt, None)))
    units, covariance = _replicate_covariance(xt, n_boot, seed)
    if units != n and point == 0.0:  # identical rows: every resample is identical too
        return Estimate(point, point, point, 0.0)

    def stat(w: np.ndarray) -> float:
        if bool((w == 1).all()):
            return point
        return _spectral_effective_rank(torch.linalg.eigvalsh(covariance(w)))

    return bootstrap_estimate(stat, units, n_boot=n_boot, level=level, seed=seed, method="normal")


# --------------------------------------------------------------------------
# Log-volume ratio
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SpectrumReference:
    """Principal axes of the reference covariance, fitted once and reused every round.

    Attributes:
        eigenvalues: ``[D]`` float64 CPU tensor, eigenvalues of the reference
            covariance (``ddof=1``), descending.
        whitening: ``[D, K]`` float64 CPU tensor :math:`V_K \\Lambda_K^{-1/2}`,
            the ``K`` kept principal axes scaled by their inverse standard deviation.
        n_rows: number of reference rows.
        rel_tol: axes with eigenvalue ``<= rel_tol * max`` were dropped.
        effective_rank: the reference's :func:`effective_rank` (point value).
    """

    eigenvalues: torch.Tensor
    whitening: torch.Tensor
    n_rows: int
    rel_tol: float
    effective_rank: float

    @property
    def dim(self) -> int:
        return self.whitening.shape[0]

    @property
    def n_axes(self) -> int:
        return self.whitening.shape[1]


def fit_spectrum_reference(reference, *, rel_tol: float = DEFAULT_REL_TOL, device=None) -> SpectrumReference:
    r"""Eigen-decompose the reference covariance once for :func:`log_volume_ratio`.

    Keeps the ``K`` principal axes whose eigenvalue exceeds
    ``rel_tol * max eigenvalue`` (default :math:`10^{-10}`; float64 rounding
    of the decomposition is about :math:`D\varepsilon_{64}\lambda_{\max}
    \approx 10^{-13}\lambda_{\max}` for :math:`D = 384`, so the reference's
    null directions, e.g. when :math:`D \ge N` or features are constant, are
    dropped and never divide by rounding noise).

    Args:
        reference: ``[N, D]`` float array, ``N >= 2``, not all rows identical.
        rel_tol: relative eigenvalue tolerance in ``[0, 1)``.
        device: torch device for the computation; the result lives on the CPU.

    Raises:
        ValueError: bad input, or a reference with zero covariance.

    Example:
        >>> import numpy as np
        >>> ref = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
        >>> s = fit_spectrum_reference(ref)
        >>> [round(v, 12) for v in s.eigenvalues.tolist()], s.n_axes
        ([2.666666666667, 0.666666666667], 2)
    """
    if isinstance(rel_tol, bool) or not isinstance(rel_tol, (int, float)) or not 0.0 <= rel_tol < 1.0:
        raise ValueError(f"rel_tol: expected a number in [0, 1), got {rel_tol!r}")
    ref = _check_embeddings(reference, "reference", min_rows=2).to(resolve_device(device))
    cov = _weighted_covariance(ref, None)
    lam, vec = torch.linalg.eigh(cov)
    lam, vec = lam.flip(0), vec.flip(1)  # descending
    top = float(lam[0])
    if top <= 0.0:
        raise ValueError("reference: zero covariance (all rows identical); the volume ratio needs a spread reference")
    keep = lam > rel_tol * top
    whitening = vec[:, keep] / torch.sqrt(lam[keep])[None, :]
    return SpectrumReference(
        eigenvalues=lam.cpu(),
        whitening=whitening.cpu(),
        n_rows=ref.shape[0],
        rel_tol=float(rel_tol),
        effective_rank=_spectral_effective_rank(lam),
    )


@dataclass(frozen=True)
class VolumeRatio:
    """Result of :func:`log_volume_ratio`.

    Attributes:
        log_volume_ratio: per-axis mean log variance ratio (the metric).
        log_det_ratio: the total over the ``n_axes`` axes (``n_axes *`` the mean).
        n_axes: number of reference principal axes used (``K``).
        n_floored: number of generalised variance ratios at the floor in the
            point estimate (axes the round has collapsed).
    """

    log_volume_ratio: Estimate
    log_det_ratio: Estimate
    n_axes: int
    n_floored: int


def _whitened_ratios(spectrum: SpectrumReference, round_cov: torch.Tensor) -> torch.Tensor:
    w = spectrum.whitening.to(round_cov.device)
    r = w.T @ round_cov @ w
    return torch.linalg.eigvalsh((r + r.T) / 2.0)


def log_volume_ratio(
    reference_or_spectrum,
    round_,
    *,
    rel_tol: float = DEFAULT_REL_TOL,
    floor: float = DEFAULT_FLOOR,
    n_boot: int = 0,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    device=None,
) -> VolumeRatio:
    r"""Per-axis log-volume ratio of the round covariance to the reference covariance.

    With the reference covariance :math:`\Sigma_{\mathrm{ref}} = V\Lambda V^\top`
    restricted to its :math:`K` principal axes with
    :math:`\lambda_k > \text{rel\_tol}\cdot\lambda_{\max}` (see
    :func:`fit_spectrum_reference`), the round covariance is whitened by the
    reference, :math:`R = \Lambda_K^{-1/2} V_K^\top \Sigma_{\mathrm{round}} V_K \Lambda_K^{-1/2}`.
    Its eigenvalues :math:`\rho_1..\rho_K` are the generalised eigenvalues of
    :math:`(V_K^\top\Sigma_{\mathrm{round}}V_K,\ \Lambda_K)`: the ratios of round
    to reference variance along the axes that diagonalise both. The metric is

    .. math::
        \mathrm{LVR} = \frac{1}{K}\sum_{k=1}^{K} \log \max(\rho_k, \phi)
        \;\overset{\rho_k > \phi}{=}\; \frac{1}{K}\Big[\log\det(V_K^\top \Sigma_{\mathrm{round}} V_K)
        - \log\det \Lambda_K\Big],

    with floor :math:`\phi = 10^{-12}` (a round variance below
    :math:`\phi` times the reference variance along an axis counts as
    :math:`\phi` times it), so a collapsed round gives a large negative finite
    value (all rows identical: exactly :math:`\log\phi \approx -27.63`)
    instead of :math:`-\infty`. Round variance outside the reference's
    support (its dropped null axes) is ignored. Unlike the sum of per-axis
    log ratios along the reference's own axes, this is the true log volume
    (it is invariant to rotating the round within the reference's support).
    ``log_det_ratio`` reports the total :math:`K\cdot\mathrm{LVR}`.

    0 = same volume, negative = contraction, positive = expansion; range
    :math:`[\log\phi, \infty)`, i.e. unbounded in practice; higher is better
    up to 0. Scaling the round by :math:`s` adds :math:`\log s^2`; translating
    it changes nothing.

    Bootstrap: resamples the round's rows (reference fixed), normal interval,
    see the module docstring.

    Args:
        reference_or_spectrum: ``[N, D]`` float array or a fitted
            :class:`SpectrumReference` (then ``rel_tol`` is not used).
        round_: ``[M, D]`` float array, ``M >= 2``.
        rel_tol: relative eigenvalue tolerance of the reference axes.
        floor: variance-ratio floor :math:`\phi` in ``(0, 1)``.
        n_boot: bootstrap replicates (0: point estimate only).
        level: confidence level.
        seed: bootstrap seed.
        device: torch device, default CUDA when present else CPU.

    Example:
        >>> import numpy as np
        >>> ref = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
        >>> r = log_volume_ratio(ref, ref / 2)   # variances quartered: log(1/4) per axis
        >>> round(r.log_volume_ratio.value, 12), round(2 * float(np.log(0.5)), 12), r.n_axes
        (-1.38629436112, -1.38629436112, 2)
        >>> log_volume_ratio(ref, np.zeros((5, 2))).log_volume_ratio.value  # doctest: +ELLIPSIS
        -27.631...
    """
    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0.0 < floor < 1.0:
        raise ValueError(f"floor: expected a number in (0, 1), got {floor!r}")
    dev = resolve_device(device)
    if isinstance(reference_or_spectrum, SpectrumReference):
        spectrum = reference_or_spectrum
    else:
        spectrum = fit_spectrum_reference(reference_or_spectrum, rel_tol=rel_tol, device=dev)
    rnd = _check_embeddings(round_, "round", min_rows=2)
    if rnd.shape[1] != spectrum.dim:
        raise ValueError(f"round: expected D={spectrum.dim} features to match reference, got D={rnd.shape[1]}")
    rnd = rnd.to(dev)
    k = spectrum.n_axes
    log_floor = math.log(floor)

    units, covariance = _replicate_covariance(rnd, n_boot, seed)

    def log_ratios(cov: torch.Tensor) -> torch.Tensor:
        return torch.log(_whitened_ratios(spectrum, cov).clamp(min=floor))

    point = log_ratios(_weighted_covariance(rnd, None))
    point_mean = float(point.mean())
    n_floored = int((point <= log_floor).sum())
    mean = bootstrap_estimate(
        lambda w: point_mean if bool((w == 1).all()) else float(log_ratios(covariance(w)).mean()),
        units, n_boot=n_boot, level=level, seed=seed, method="normal",
    )
    fields = (mean.value, mean.ci_low, mean.ci_high, mean.std_error)
    total = Estimate(*(None if v is None else v * k for v in fields))
    return VolumeRatio(log_volume_ratio=mean, log_det_ratio=total, n_axes=k, n_floored=n_floored)
