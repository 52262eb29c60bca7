r"""α-Precision, β-Recall and Authenticity (Alaa et al., ICML 2022).

Alaa, van Breugel, Saveliev & van der Schaar, "How Faithful is your Synthetic
Data? Sample-level Metrics for Evaluating and Auditing Generative Models",
ICML 2022.

Notation: reference (real) samples :math:`x_1..x_N`, round (generated) samples
:math:`\tilde x_1..\tilde x_M`, both mapped by the evaluation embedding
:math:`\Phi`. The paper learns :math:`\Phi` with a one-class network; here it
is either the identity on features standardised with the *reference* mean and
standard deviation, or the identity on inputs that are already embedded
(``standardize=False``). All distances are Euclidean in the embedded space and
every nearest-neighbour query goes through the exact chunked engine
:func:`metrics_core.knn.nearest_neighbours` (ties broken by the smaller index),
so no ``N x M`` matrix is formed.

* :math:`c = \frac1N\sum_i \Phi(x_i)`, the reference centre;
  :math:`\tilde c = \frac1M\sum_j \Phi(\tilde x_j)`, the round centre.
* :math:`\rho_i = \min_{i'\ne i}\lVert\Phi(x_i)-\Phi(x_{i'})\rVert`, the
  reference's own nearest-neighbour distance (a duplicate row is another
  sample, so duplicated rows have :math:`\rho_i = 0`).
* :math:`s(i) = \arg\min_j \lVert\Phi(x_i)-\Phi(\tilde x_j)\rVert`, the round
  sample nearest to reference sample :math:`i`;
  :math:`i^*(j) = \arg\min_i \lVert\Phi(\tilde x_j)-\Phi(x_i)\rVert`, the
  reference sample nearest to round sample :math:`j`.
* :math:`Q_q(v_1..v_n)` is the :math:`q`-quantile with numpy's ``"linear"``
  rule (Hyndman & Fan type 7): sort, position :math:`h=(n-1)q`, interpolate
  between the values at :math:`\lfloor h\rfloor` and :math:`\lfloor h\rfloor+1`.

The reference statistics reused every round (embedding, centre, radii
:math:`r_\alpha`, :math:`\rho_i`) are computed once by
:func:`fit_alpha_reference`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from metrics_core._checks import (
    _check_bootstrap, _check_chunk_size, _check_embeddings, _check_positive_int, _check_same_dim,
)
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, bootstrap_estimate, mean_estimate
from metrics_core.knn import DEFAULT_CHUNK_SIZE, nearest_neighbours, resolve_device

DEFAULT_N_ALPHAS = 101


@dataclass(frozen=True, eq=False)
class AlphaReference:
    """Reference statistics of α-Precision / β-Recall / Authenticity, reusable every round.

    Attributes:
        standardize: whether inputs are standardised (else taken as embedded).
        mean: ``[D]`` float64, the reference feature means (zeros when not standardising).
        scale: ``[D]`` float64, the reference feature standard deviations
            (``ddof=0``), 1 for a constant feature and everywhere when not standardising.
        embedded: ``[N, D]`` float64, the embedded reference :math:`\\Phi(x_i)`.
        center: ``[D]`` float64, :math:`c`, the mean of ``embedded``.
        distances: ``[N]`` float64, :math:`\\lVert\\Phi(x_i) - c\\rVert`.
        alphas: ``[n_alphas]`` float64, the uniform grid on [0, 1].
        radii: ``[n_alphas]`` float64, :math:`r_\\alpha = Q_\\alpha(\\text{distances})`.
        sq_nn_distances: ``[N]`` float64, :math:`\\rho_i^2` (self excluded, duplicates not).
    """

    standardize: bool
    mean: torch.Tensor
    scale: torch.Tensor
    embedded: torch.Tensor
    center: torch.Tensor
    distances: np.ndarray
    alphas: np.ndarray
    radii: np.ndarray
    sq_nn_distances: torch.Tensor

    @property
    def n(self) -> int:
        return self.embedded.shape[0]

    @property
    def d(self) -> int:
        return self.embedded.shape[1]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\Phi(x) = (x - \\mu)/\\sigma` with the reference statistics (float64, CPU)."""
        return (x.to(device="cpu", dtype=torch.float64) - self.mean) / self.scale


@dataclass(frozen=True, eq=False)
class AlphaPrecisionResult:
    """Curves and integrated scores of α-Precision, β-Recall and Authenticity.

    Attributes:
        alphas: ``[n_alphas]`` uniform grid on [0, 1] (the same grid serves as β).
        alpha_precision_curve: ``[n_alphas]`` :math:`P_\\alpha`.
        beta_recall_curve: ``[n_alphas]`` :math:`R_\\beta`.
        alpha_precision: integrated :math:`IP_\\alpha`, higher is better.
        beta_recall: integrated :math:`IR_\\beta`, higher is better.
        authenticity: share of authentic round samples, higher is better.
    """

    alphas: np.ndarray
    alpha_precision_curve: np.ndarray
    beta_recall_curve: np.ndarray
    alpha_precision: Estimate
    beta_recall: Estimate
    authenticity: Estimate


def _norms_to(x: torch.Tensor, center: torch.Tensor, device: torch.device) -> np.ndarray:
    """Float64 Euclidean distances of the rows of ``x`` to ``center``, as numpy."""
    diff = x.to(device=device, dtype=torch.float64) - center.to(device)
    return torch.linalg.vector_norm(diff, dim=1).cpu().numpy()


def _integrated(curve: np.ndarray, grid: np.ndarray) -> float:
    r""":math:`1 - 2\int_0^1 |curve - grid|` by the trapezoidal rule on ``grid``."""
    f = np.abs(curve - grid)
    return float(1.0 - np.sum((f[1:] + f[:-1]) * np.diff(grid)))


def fit_alpha_reference(
    reference,
    *,
    standardize: bool = True,
    n_alphas: int = DEFAULT_N_ALPHAS,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    device=None,
) -> AlphaReference:
    r"""Embed the reference and compute what every round is compared against.

    With ``standardize=True``,
    :math:`\Phi(x) = (x - \mu)/\sigma` feature by feature, with :math:`\mu` the
    reference mean and :math:`\sigma` the reference standard deviation
    (``ddof=0``); a feature whose reference values are all equal has
    :math:`\sigma = 0` and is left unscaled (divided by 1, only centred), so a
    round that moves it still moves away from the reference by the raw amount.
    With ``standardize=False``, :math:`\Phi` is the identity (inputs already
    embedded). Then :math:`c` is the embedded reference mean, the grid is
    :math:`\alpha_k = k/(n_\alpha - 1)`, :math:`r_{\alpha} = Q_{\alpha}(\{\lVert
    \Phi(x_i) - c\rVert\}_i)` (numpy ``"linear"``) and :math:`\rho_i` is each
    reference sample's nearest-other-reference distance.

    Args:
        reference: ``[N, D]`` float array, ``N >= 2``.
        standardize: standardise with the reference statistics (else identity).
        n_alphas: number of grid points, ``>= 2`` (both 0 and 1 included).
        chunk_size: columns per tile of the k-NN engine.
        device: torch device, default CUDA when present else CPU.

    Returns:
        :class:`AlphaReference` with CPU tensors.

    Example:
        >>> import numpy as np
        >>> fit = fit_alpha_reference(np.array([[0.0], [2.0], [4.0], [10.0]]), standardize=False, n_alphas=3)
        >>> fit.center.tolist(), fit.radii.tolist(), fit.sq_nn_distances.tolist()
        ([4.0], [0.0, 3.0, 6.0], [4.0, 4.0, 4.0, 36.0])
    """
    ref = _check_embeddings(reference, "reference", min_rows=2)
    _check_positive_int(n_alphas, "n_alphas", 2)
    _check_chunk_size(chunk_size)
    if not isinstance(standardize, (bool, np.bool_)):
        raise ValueError(f"standardize: expected a bool, got {standardize!r}")
    device = resolve_device(device)
    ref64 = ref.to(device="cpu", dtype=torch.float64)
    d = ref64.shape[1]
    if standardize:
        constant = (ref64.max(dim=0).values == ref64.min(dim=0).values)
        # A constant column's mean is its value exactly (summation could be off by an ulp).
        mean = torch.where(constant, ref64[0], ref64.mean(dim=0))
        std = ref64.std(dim=0, correction=0)
        scale = torch.where(constant, torch.ones_like(std), std)
    else:
        mean = torch.zeros(d, dtype=torch.float64)
        scale = torch.ones(d, dtype=torch.float64)
    embedded = (ref64 - mean) / scale
    center = embedded.mean(dim=0)
    distances = _norms_to(embedded, center, device)
    alphas = np.linspace(0.0, 1.0, int(n_alphas))
    radii = np.quantile(distances, alphas, method="linear")
    sq_nn, _ = nearest_neighbours(embedded, embedded, 1, exclude_self=True, chunk_size=chunk_size, device=device)
    return AlphaReference(
        standardize=bool(standardize),
        mean=mean,
        scale=scale,
        embedded=embedded,
        center=center,
        distances=distances,
        alphas=alphas,
        radii=radii,
        sq_nn_distances=sq_nn[:, 0],
    )


def alpha_precision_beta_recall_authenticity_from_reference(
    fitted: AlphaReference,
    round_,
    *,
    n_boot: int = 0,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    device=None,
) -> AlphaPrecisionResult:
    r"""α-Precision, β-Recall and Authenticity of one round against a fitted reference.

    The definitions are those of :func:`alpha_precision_beta_recall_authenticity`.

    Args:
        fitted: the output of :func:`fit_alpha_reference`.
        round_: ``[M, D]`` float array, ``M >= 1``, in the reference's raw feature space.
        n_boot: bootstrap replicates (0: point estimates only).
        level: confidence level.
        seed: bootstrap seed (α-precision uses ``seed``, β-recall ``seed + 1``,
            authenticity ``seed + 2``).
        chunk_size: columns per tile of the k-NN engine.
        device: torch device, default CUDA when present else CPU.
    """
    if not isinstance(fitted, AlphaReference):
        raise ValueError(f"fitted: expected an AlphaReference from fit_alpha_reference, got {type(fitted).__name__}")
    rnd = _check_embeddings(round_, "round")
    _check_same_dim(fitted.embedded, rnd, "reference", "round")
    _check_bootstrap(n_boot, level)
    _check_chunk_size(chunk_size)
    device = resolve_device(device)
    ref_emb = fitted.embedded
    rnd_emb = fitted.embed(rnd)
    alphas = fitted.alphas
    m = rnd_emb.shape[0]
    n = fitted.n

    # α-Precision: P_α = (1/M) Σ_j 1[||Φ(x̃_j) - c|| <= r_α].
    d_round = _norms_to(rnd_emb, fitted.center, device)
    order_r = np.argsort(d_round, kind="stable")
    # Number of round samples with distance <= r_α, per grid point.
    below = np.searchsorted(d_round[order_r], fitted.radii, side="right")

    def precision_curve(w: np.ndarray) -> np.ndarray:
        cw = np.concatenate([[0], np.cumsum(w[order_r])])
        return cw[below] / cw[-1]

    # β-Recall. s(i): nearest round sample of each reference sample.
    sq_ref_round, s_idx = nearest_neighbours(ref_emb, rnd_emb, 1, chunk_size=chunk_size, device=device)
    counted = (sq_ref_round[:, 0] <= fitted.sq_nn_distances).numpy()  # condition (a)
    round_center = rnd_emb.mean(dim=0)
    e_all = _norms_to(rnd_emb, round_center, device)
    e = e_all[s_idx[:, 0].numpy()]  # ||Φ(x̃_{s(i)}) - c̃||
    order_e = np.argsort(e, kind="stable")
    e_sorted = e[order_e]
    counted_sorted = counted[order_e].astype(np.int64)

    def recall_curve(w: np.ndarray) -> np.ndarray:
        ws = w[order_e]
        # Weighted quantile = quantile of the multiset holding e_i w_i times.
        q = np.quantile(np.repeat(e_sorted, ws), alphas, method="linear")
        inside = np.searchsorted(e_sorted, q, side="right")
        cw = np.concatenate([[0], np.cumsum(ws * counted_sorted)])
        return cw[inside] / ws.sum()

    # Authenticity: j is unauthentic iff d(x̃_j, x_{i*(j)}) < ρ_{i*(j)}.
    sq_round_ref, i_star = nearest_neighbours(rnd_emb, ref_emb, 1, chunk_size=chunk_size, device=device)
    authentic = (sq_round_ref[:, 0] >= fitted.sq_nn_distances[i_star[:, 0]]).numpy()

    ones_m = np.ones(m, dtype=np.int64)
    ones_n = np.ones(n, dtype=np.int64)
    # The integrated scores are biased under resampling (|.| of a noisy
    # difference), so their intervals are the normal ones around the estimate.
    ip = bootstrap_estimate(
        lambda w: _integrated(precision_curve(w), alphas), m, n_boot=n_boot, level=level, seed=seed, method="normal"
    )
    ir = bootstrap_estimate(
        lambda w: _integrated(recall_curve(w), alphas), n, n_boot=n_boot, level=level, seed=seed + 1, method="normal"
    )
    auth = mean_estimate(authentic, n_boot=n_boot, level=level, seed=seed + 2)
    return AlphaPrecisionResult(
        alphas=alphas.copy(),
        alpha_precision_curve=precision_curve(ones_m),
        beta_recall_curve=recall_curve(ones_n),
        alpha_precision=ip,
        beta_recall=ir,
        authenticity=auth,
    )


def alpha_precision_beta_recall_authenticity(
    reference,
    round_,
    *,
    standardize: bool = True,
    n_alphas: int = DEFAULT_N_ALPHAS,
    n_boot: int = 0,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    device=None,
) -> AlphaPrecisionResult:
    r"""α-Precision, β-Recall and Authenticity (Alaa et al., ICML 2022).

    **Embedding.** :math:`\Phi(x) = (x-\mu)/\sigma` with the *reference* mean
    and standard deviation (``ddof=0``), a constant reference feature
    (:math:`\sigma=0`) divided by 1; or the identity when
    ``standardize=False`` (inputs already embedded). :math:`c` and
    :math:`\tilde c` are the embedded reference and round means; the grid is
    :math:`\alpha_k = k/(n_\alpha-1)`, :math:`k=0..n_\alpha-1`, and serves for
    β too. :math:`Q_q` is numpy's ``"linear"`` quantile.

    **α-Precision** (paper §3.1): the α-support of the reference is the ball
    around :math:`c` of radius :math:`r_\alpha`,

    .. math::
        r_\alpha = Q_\alpha\big(\{\lVert\Phi(x_i)-c\rVert\}_{i=1}^N\big),\qquad
        P_\alpha = \frac1M\sum_{j=1}^M 1\big[\lVert\Phi(\tilde x_j)-c\rVert \le r_\alpha\big].

    **β-Recall**, exactly the authors' reference code
    (``compute_alpha_precision`` in vanderschaarlab/evaluating-generative-models):
    with :math:`s(i)` the round sample nearest to reference sample :math:`i`
    and :math:`\rho_i` the distance from :math:`x_i` to its nearest *other*
    reference sample, reference sample :math:`i` counts at level β when (a) the
    round reaches it, :math:`\lVert\Phi(x_i)-\Phi(\tilde x_{s(i)})\rVert \le
    \rho_i`, and (b) :math:`\tilde x_{s(i)}` lies in the round's β-support,
    a ball around the round mean :math:`\tilde c` whose radius is the
    β-quantile over the *reference-matched* round samples:

    .. math::
        e_i = \lVert\Phi(\tilde x_{s(i)})-\tilde c\rVert,\qquad
        R_\beta = \frac1N\sum_{i=1}^N 1\big[\lVert\Phi(x_i)-\Phi(\tilde x_{s(i)})\rVert \le \rho_i\big]
                  \,1\big[e_i \le Q_\beta(e_1..e_N)\big].

    **Integrated scores** (paper eq. 5), by the trapezoidal rule on the grid
    (the reference code uses a left Riemann sum, which differs by
    :math:`O(1/n_\alpha)`):

    .. math::
        IP_\alpha = 1 - 2\int_0^1 |P_\alpha-\alpha|\,d\alpha,\qquad
        IR_\beta = 1 - 2\int_0^1 |R_\beta-\beta|\,d\beta.

    Range [0, 1], higher is better, 1 when the curve is the diagonal.
    Both curves are non-decreasing (the radii grow with α and β), and a
    non-decreasing curve in [0, 1] stays within :math:`\int|P-\alpha| \le 1/2`
    (the trapezoid sum too), so the scores are never negative; 0 is reached by
    a flat curve at 0 or 1 (e.g. a round entirely outside the reference's
    support). Even a round identical to the reference stays slightly below 1,
    because :math:`P_\alpha` is a step function of the N sample distances.

    **Authenticity** (paper §3.2, as this project's issue defines it): round
    sample :math:`j` is *unauthentic* (a copy) when it is strictly closer to
    its nearest reference sample :math:`i^*(j)` than :math:`x_{i^*(j)}` is to
    its own nearest other reference sample,

    .. math::
        A = \frac1M\sum_{j=1}^M 1\big[\lVert\Phi(\tilde x_j)-\Phi(x_{i^*(j)})\rVert \ge \rho_{i^*(j)}\big].

    Range [0, 1], higher is better. Equal distances count as authentic.
    Duplicated reference rows have :math:`\rho=0`, so an exact copy of a
    *duplicated* reference point is authentic under the strict ``<``, while a
    copy of a unique reference point is not; a round that equals a reference
    without duplicates has authenticity 0. Some public implementations index
    :math:`\rho` with the round sample's index :math:`j` instead of
    :math:`i^*(j)` (and average over the reference); this one uses
    :math:`\rho_{i^*(j)}`. Nearest-neighbour ties (for :math:`s(i)` and
    :math:`i^*(j)`) go to the smaller index.

    **Bootstrap** (count weights :math:`w`): :math:`IP_\alpha` and :math:`A`
    resample the round with the reference fixed (:math:`P_\alpha(w)` and
    :math:`A(w)` are :math:`w`-weighted shares); :math:`IR_\beta` resamples the
    reference with the round fixed: the quantile :math:`Q_\beta` is taken over
    the multiset holding :math:`e_i` :math:`w_i` times and the share is
    :math:`w`-weighted, while each sample's :math:`\rho_i`, :math:`s(i)` and
    condition (a) are held at their full-sample values (a literal resample
    would make copies with :math:`\rho = 0`). The integrated scores use the
    normal interval (their replicates are biased by the absolute value),
    authenticity the percentile interval.

    Degenerate inputs give finite, documented values: a reference whose rows
    are all equal has :math:`r_\alpha = 0` and :math:`\rho_i = 0`.

    Args:
        reference: ``[N, D]`` float array, ``N >= 2`` (the real data).
        round_: ``[M, D]`` float array, ``M >= 1`` (the generated data).
        standardize: standardise with the reference statistics; ``False`` takes
            the inputs as already embedded.
        n_alphas: grid points on [0, 1], ``>= 2``, endpoints included.
        n_boot: bootstrap replicates (0: point estimates only).
        level: confidence level.
        seed: bootstrap seed (α-precision ``seed``, β-recall ``seed + 1``,
            authenticity ``seed + 2``); equal seeds give equal results.
        chunk_size: columns per tile of the k-NN engine.
        device: torch device, default CUDA when present else CPU.

    Returns:
        :class:`AlphaPrecisionResult`.

    Example:
        >>> import numpy as np
        >>> ref = np.array([[-2.0], [-1.0], [0.5], [2.5]])
        >>> rnd = np.array([[-0.8], [0.3], [4.6], [-3.1]])
        >>> res = alpha_precision_beta_recall_authenticity(ref, rnd, standardize=False, n_alphas=5)
        >>> res.alpha_precision_curve.tolist(), res.beta_recall_curve.tolist()
        ([0.25, 0.5, 0.5, 0.5, 0.5], [0.25, 0.25, 0.5, 0.5, 0.5])
        >>> res.alpha_precision.value, res.beta_recall.value, res.authenticity.value
        (0.5625, 0.6875, 0.5)
    """
    fitted = fit_alpha_reference(
        reference, standardize=standardize, n_alphas=n_alphas, chunk_size=chunk_size, device=device
    )
    return alpha_precision_beta_recall_authenticity_from_reference(
        fitted, round_, n_boot=n_boot, level=level, seed=seed, chunk_size=chunk_size, device=device
    )
