r"""Diversity of one set of embeddings: Vendi score and self cosine similarity.

Both use the cosine kernel on L2-normalised rows :math:`u_i = x_i/\lVert x_i\rVert`,
so both are computed from :math:`U \in \mathbb{R}^{n\times D}` without the
``n x n`` similarity matrix whenever ``n > D``. Zero rows are refused: their
cosine similarity is undefined.
"""

from __future__ import annotations

import numpy as np
import torch

from metrics_core._checks import _check_embeddings, _check_nonzero_rows
from metrics_core._moments import BlockMoments, use_blocks
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, bootstrap_estimate


def _unit_rows(x, name: str, min_rows: int) -> np.ndarray:
    t = _check_embeddings(x, name, min_rows=min_rows)
    _check_nonzero_rows(t, name)
    u = t.to(torch.float64)
    return (u / torch.linalg.vector_norm(u, dim=1, keepdim=True)).numpy()


def _entropy_exp(eigenvalues: np.ndarray) -> float:
    lam = np.clip(eigenvalues, 0.0, None)
    lam = lam / lam.sum()
    nz = lam[lam > 0]
    return float(np.exp(-(nz * np.log(nz)).sum()))


def _weighted_vendi(u: np.ndarray, w: np.ndarray) -> float:
    n, d = u.shape
    if n > d:
        # Nonzero eigenvalues of K/n equal those of the D x D second moment.
        mat = (u * w[:, None]).T @ u
    else:
        sw = np.sqrt(w)
        v = u * sw[:, None]
        mat = v @ v.T
    return _entropy_exp(np.linalg.eigvalsh(mat / w.sum()))


def vendi_score(x, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0) -> Estimate:
    r"""Vendi score with the cosine kernel (Friedman & Dieng, TMLR 2023).

    .. math::
        \mathrm{VS}(x_{1..n}) = \exp\Big(-\sum_{i=1}^{n} \lambda_i \log \lambda_i\Big),

    where :math:`\lambda_i` are the eigenvalues of :math:`K/n`,
    :math:`K_{ij} = \cos(x_i, x_j)` and :math:`0 \log 0 = 0`. Since
    :math:`K/n = UU^\top/n` shares its nonzero eigenvalues with the
    :math:`D\times D` matrix :math:`U^\top U/n`, the latter is used when
    :math:`n > D`. Range :math:`[1, \min(n, D)]`, the effective number of
    distinct directions; higher is better (more diverse).

    The bootstrap reweights rows, :math:`U^\top \mathrm{diag}(w) U / \sum w`
    (above 2,048 rows it resamples 64 random row blocks from their sufficient
    statistics, see :mod:`metrics_core._moments`); its interval is the normal
    one around the estimate.

    Args:
        x: ``[n, D]`` float array without zero rows.
        n_boot: bootstrap replicates for the interval (0: none).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> import numpy as np
        >>> round(vendi_score(np.eye(3)).value, 6), round(vendi_score(np.ones((4, 2))).value, 6)
        (3.0, 1.0)
    """
    u = _unit_rows(x, "x", 1)
    n, d = u.shape
    if n > d and use_blocks(n, n_boot):  # resample random row blocks, O(G D^2) per replicate
        point = _weighted_vendi(u, np.ones(n))
        blocks = BlockMoments(torch.from_numpy(u), seed)
        return bootstrap_estimate(
            lambda w: point if bool((w == 1).all()) else _entropy_exp(torch.linalg.eigvalsh(blocks.second_moment(w)).numpy()),
            blocks.n_blocks, n_boot=n_boot, level=level, seed=seed, method="normal",
        )
    # The spectral entropy is biased under resampling (replicates sit below the
    # estimate), so the interval is the normal one around the estimate.
    return bootstrap_estimate(
        lambda w: _weighted_vendi(u, w.astype(np.float64)), n, n_boot=n_boot, level=level, seed=seed, method="normal"
    )


def _weighted_self_cosine(u: np.ndarray, w: np.ndarray) -> float:
    # Pairs of *distinct* original samples only: a bootstrap duplicate is not a
    # pair of different generations with cosine 1.
    s = (u * w[:, None]).sum(axis=0)
    sum_w = w.sum()
    sum_w2 = (w * w).sum()
    denom = sum_w * sum_w - sum_w2
    if denom <= 0:
        return float("nan")
    return float((s @ s - sum_w2) / denom)


def self_cosine_similarity(x, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0) -> Estimate:
    r"""Self cosine similarity, the mean pairwise cosine (survey §2.2; Zhang et al. 2024).

    .. math::
        \text{Self-CosSim} = \frac{2}{n(n-1)} \sum_{1\le i<j\le n} \cos(h_i, h_j)
                           = \frac{\lVert \sum_i u_i \rVert^2 - n}{n(n-1)} ,

    the second form (since :math:`\lVert u_i\rVert = 1`) is exact and costs
    :math:`O(nD)` with no pairwise matrix. Range [-1/(n-1), 1]; lower is
    better (more diverse); a fully collapsed set gives 1.

    The bootstrap keeps pairs of distinct original samples only:
    :math:`(\lVert\sum_i w_i u_i\rVert^2 - \sum_i w_i^2)/(n^2 - \sum_i w_i^2)`.

    Args:
        x: ``[n, D]`` float array without zero rows, ``n >= 2``.
        n_boot: bootstrap replicates for the interval (0: none).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> import numpy as np
        >>> self_cosine_similarity(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])).value  # doctest: +ELLIPSIS
        0.4714...
    """
    u = _unit_rows(x, "x", 2)
    n = u.shape[0]
    return bootstrap_estimate(
        lambda w: _weighted_self_cosine(u, w.astype(np.float64)), n, n_boot=n_boot, level=level, seed=seed
    )
