r"""Improved precision/recall and density/coverage on k-NN manifolds.

Reference (real) points :math:`\{r_i\}_{i=1}^N`, round (generated) points
:math:`\{f_j\}_{j=1}^M`, and :math:`\mathrm{NND}_k(x)` the distance from
:math:`x` to its k-th nearest neighbour inside its own set (itself excluded).

Ball membership uses ``<=``: a point at exactly the radius, in particular a
duplicate, counts as inside. On tie-free data this equals the ``prdc``
package (Naeem et al.'s reference code), which uses a strict ``<``; with ties
prdc differs, e.g. a fully collapsed set of identical points has radii 0 and
prdc's ``0 < 0`` gives coverage 0 even against an identical reference, while
these functions give 1.
"""

from __future__ import annotations

import torch

from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, mean_estimate
from metrics_core.knn import DEFAULT_CHUNK_SIZE, BallStatistics, ball_statistics


def _stats(reference, round_, k, chunk_size, device, reference_sq_radii) -> BallStatistics:
    return ball_statistics(
        reference, round_, k, chunk_size=chunk_size, device=device, reference_sq_radii=reference_sq_radii
    )


def precision_recall(
    reference,
    round_,
    k: int = 5,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    device=None,
    reference_sq_radii: torch.Tensor | None = None,
) -> tuple[float, float]:
    r"""Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019).

    .. math::
        \mathrm{precision} = \frac{1}{M}\sum_{j=1}^{M}
            1\Big[\exists i:\ \lVert f_j - r_i\rVert \le \mathrm{NND}_k(r_i)\Big],
        \qquad
        \mathrm{recall} = \frac{1}{N}\sum_{i=1}^{N}
            1\Big[\exists j:\ \lVert r_i - f_j\rVert \le \mathrm{NND}_k(f_j)\Big].

    Both lie in [0, 1]; higher is better. Precision is fidelity (round inside
    the reference manifold); recall is coverage of the reference by the round.

    Args:
        reference: ``[N, D]`` float array, ``N >= k + 1``.
        round_: ``[M, D]`` float array, ``M >= k + 1``.
        k: neighbourhood size (paper default 3; ours 5, as Naeem et al.).
        chunk_size: block side length of the k-NN engine.
        device: torch device, default CUDA when present else CPU.
        reference_sq_radii: cached ``[N]`` squared reference radii for this ``k``
            (``knn_radii(reference, k, squared=True)``).

    Example:
        >>> import numpy as np
        >>> ref = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> precision_recall(ref, np.array([[0.5], [1.5], [9.0], [10.0]]), k=1)
        (0.5, 0.75)
    """
    s = _stats(reference, round_, k, chunk_size, device, reference_sq_radii)
    precision = (s.round_in_reference_balls > 0).double().mean().item()
    recall = s.reference_in_round_manifold.double().mean().item()
    return precision, recall


def density_coverage(
    reference,
    round_,
    k: int = 5,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    device=None,
    reference_sq_radii: torch.Tensor | None = None,
) -> tuple[float, float]:
    r"""Density and coverage (Naeem et al., ICML 2020, eqs. 3 and 4).

    .. math::
        \mathrm{density} = \frac{1}{kM}\sum_{j=1}^{M}\sum_{i=1}^{N}
            1\big[\lVert f_j - r_i\rVert \le \mathrm{NND}_k(r_i)\big],
        \qquad
        \mathrm{coverage} = \frac{1}{N}\sum_{i=1}^{N}
            1\big[\min_j \lVert r_i - f_j\rVert \le \mathrm{NND}_k(r_i)\big].

    Density lies in [0, N/k] (1 in expectation for identical distributions);
    coverage in [0, 1]. Higher is better for both; density above 1 means mass
    piling into dense reference regions.

    Args:
        reference: ``[N, D]`` float array, ``N >= k + 1``.
        round_: ``[M, D]`` float array, ``M >= k + 1``.
        k: neighbourhood size.
        chunk_size: block side length of the k-NN engine.
        device: torch device, default CUDA when present else CPU.
        reference_sq_radii: cached ``[N]`` squared reference radii for this ``k``
            (``knn_radii(reference, k, squared=True)``).

    Example:
        >>> import numpy as np
        >>> ref = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> density_coverage(ref, np.array([[0.5], [1.5], [9.0], [10.0]]), k=1)
        (1.0, 0.75)
    """
    s = _stats(reference, round_, k, chunk_size, device, reference_sq_radii)
    # (sum / M) / k: the same operations as the bootstrap path, bit for bit.
    density = s.round_in_reference_balls.sum().item() / s.round_in_reference_balls.shape[0] / k
    coverage = (s.reference_ball_counts > 0).double().mean().item()
    return density, coverage


def _divide(est: Estimate, k: int) -> Estimate:
    return Estimate(*(None if v is None else v / k for v in (est.value, est.ci_low, est.ci_high, est.std_error)))


def prdc_from_statistics(
    stats: BallStatistics, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0
) -> dict[str, Estimate]:
    """Precision, recall, density and coverage from one :class:`BallStatistics`.

    Each metric is a mean of per-sample contributions (per round point for
    precision and density, per reference point for recall and coverage), so
    its bootstrap resamples those contributions with the k-NN manifolds held
    fixed: it measures the sampling noise of the audited points, not of the
    radii.
    """
    k = stats.k
    per_round_in = stats.round_in_reference_balls.numpy()
    return {
        "precision": mean_estimate(per_round_in > 0, n_boot=n_boot, level=level, seed=seed),
        "recall": mean_estimate(stats.reference_in_round_manifold.numpy(), n_boot=n_boot, level=level, seed=seed + 1),
        "density": _divide(mean_estimate(per_round_in, n_boot=n_boot, level=level, seed=seed + 2), k),
        "coverage": mean_estimate(stats.reference_ball_counts.numpy() > 0, n_boot=n_boot, level=level, seed=seed + 3),
    }
