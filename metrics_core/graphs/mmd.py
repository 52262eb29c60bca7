r"""Descriptor MMDs of a graph round to the reference: degree, clustering and spectral squared MMD.

Part of :mod:`metrics_core.graphs` (its docstring states the round's layout and the uncertainty rules). The
protocol is GraphRNN's (You et al. 2018, ICML) and GRAN's (Liao et al. 2019, NeurIPS): each graph is reduced to
a normalised descriptor histogram (:mod:`~metrics_core.graphs.descriptors`), and the round's and the reference's
sets of histograms are compared by the squared maximum mean discrepancy (Gretton et al. 2012, JMLR) with a
Gaussian kernel on the histograms,

.. math:: k(p, q) = \exp\!\left(-\frac{\lVert p - q \rVert_2^2}{2\sigma^2}\right),

GRAN's ``gaussian`` kernel (its evaluation code's alternative to ``gaussian_tv`` and GraphRNN's Gaussian EMD),
:math:`p, q` zero-padded to one length. The L2 distance is chosen because the Gaussian of a Euclidean distance
is positive definite, so the MMD is a true (squared) distance between the sets and never negative; the Gaussian
of the total-variation or earth mover's distance is not, and can give negative MMDs (O'Bray et al. 2022,
"Evaluation Metrics for Graph Generative Models: Problems, Pitfalls, and Practical Solutions", ICLR).
:math:`\sigma` is fixed per descriptor by the reference alone (:func:`~metrics_core.graphs.fit_descriptor_kernels`).

The estimator is the biased V-statistic GraphRNN and GRAN report,

.. math:: \widehat{\text{MMD}}^2_b = \frac1{N^2}\sum_{i,j} k(x_i, x_j) + \frac1{M^2}\sum_{r,s} k(y_r, y_s)
          - \frac2{NM}\sum_{i,r} k(x_i, y_r),

:math:`x_i` the round's :math:`N` histograms and :math:`y_r` the reference's :math:`M`, diagonal terms included:
it is the squared RKHS distance of the two empirical mean embeddings, so it is :math:`\ge 0` (a rounding
negative of order 1e-16 is clipped to 0), it is 0 for a round equal to the reference, and its values are
comparable with the published ones. Its bias, :math:`(1 - \overline{k}_{\text{round}})/N` plus the reference's
counterpart, depends on the round size :math:`N`: keep :math:`N` fixed across rounds (the unbiased U-statistic
would be unbiased but can be negative and is undefined for a round of one graph).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from metrics_core._checks import _check_graphs
from metrics_core.graphs.descriptors import (
    DESCRIPTORS,
    DescriptorKernels,
    _check_kernels,
    _histograms,
    _padded,
    fit_descriptor_kernels,
)


def _mmd2_biased(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    gamma = 1.0 / (2.0 * sigma * sigma)
    kxx = np.exp(-gamma * cdist(x, x, "sqeuclidean")).mean()
    kyy = np.exp(-gamma * cdist(y, y, "sqeuclidean")).mean()
    kxy = np.exp(-gamma * cdist(x, y, "sqeuclidean")).mean()
    return max(0.0, float(kxx + kyy - 2.0 * kxy))


def descriptor_mmd2(graphs, reference_graphs, descriptor: str, *,
                    reference_kernel: DescriptorKernels | None = None) -> float:
    r"""Biased squared MMD between the round's and the reference's ``descriptor`` histograms (module docstring).

    Args:
        graphs: ``[N]`` the round's networkx ``Graph`` or ``DiGraph``, each with at least one node.
        reference_graphs: ``[M]`` the reference's, likewise.
        descriptor: ``"degree"``, ``"clustering"`` or ``"spectral"``.
        reference_kernel: :func:`~metrics_core.graphs.fit_descriptor_kernels` of ``reference_graphs`` (fit once,
            score every round); None fits it here.

    Example:
        >>> import networkx as nx
        >>> round(descriptor_mmd2([nx.path_graph(3)], [nx.path_graph(3)], "spectral"), 12)
        0.0
    """
    if descriptor not in DESCRIPTORS:
        raise ValueError(f"descriptor: expected one of {DESCRIPTORS}, got {descriptor!r}")
    graphs = _check_graphs(graphs)
    reference_graphs = _check_graphs(reference_graphs, "reference_graphs")
    if reference_kernel is None:
        reference_kernel = fit_descriptor_kernels(reference_graphs)
    kernels = _check_kernels(reference_kernel)
    if kernels.n_reference != len(reference_graphs):
        raise ValueError(f"reference_kernel: fitted on {kernels.n_reference} reference graphs, got "
                         f"{len(reference_graphs)} reference_graphs")
    x, y = _padded(_histograms(graphs, descriptor), _histograms(reference_graphs, descriptor))
    return _mmd2_biased(x, y, kernels.bandwidth(descriptor))


def degree_mmd2(graphs, reference_graphs, *, reference_kernel: DescriptorKernels | None = None) -> float:
    r"""Degree MMD (You et al. 2018, GraphRNN; Liao et al. 2019, GRAN): biased squared MMD of the normalised
    degree histograms, Gaussian kernel on their L2 distance, :math:`\sigma` from the reference (module
    docstring). Range [0, 2], lower is better (0: the round's degree histograms are the reference's).

    Args:
        graphs: ``[N]`` the round's networkx ``Graph`` or ``DiGraph``, each with at least one node.
        reference_graphs: ``[M]`` the reference's, likewise.
        reference_kernel: the reference's :class:`~metrics_core.graphs.DescriptorKernels` (None: fitted here).

    Example:
        >>> import networkx as nx, math
        >>> # histograms (0, 1) vs (0, 1) and (0, 2/3, 1/3): sigma = sqrt(2)/3, k = exp(-1/2) across;
        >>> # 1 + (2 + 2 exp(-1/2)) / 4 - 2 (1 + exp(-1/2)) / 2 = (1 - exp(-1/2)) / 2
        >>> value = degree_mmd2([nx.path_graph(2)], [nx.path_graph(2), nx.path_graph(3)])
        >>> round(value, 6), round((1 - math.exp(-0.5)) / 2, 6)
        (0.196735, 0.196735)
    """
    return descriptor_mmd2(graphs, reference_graphs, "degree", reference_kernel=reference_kernel)


def clustering_mmd2(graphs, reference_graphs, *, reference_kernel: DescriptorKernels | None = None) -> float:
    r"""Clustering MMD (You et al. 2018, GraphRNN; Liao et al. 2019, GRAN): biased squared MMD of the normalised
    clustering-coefficient histograms (100 bins on [0, 1]), Gaussian kernel on their L2 distance, :math:`\sigma`
    from the reference (module docstring). Range [0, 2], lower is better.

    Args:
        graphs: ``[N]`` the round's networkx ``Graph`` or ``DiGraph``, each with at least one node.
        reference_graphs: ``[M]`` the reference's, likewise.
        reference_kernel: the reference's :class:`~metrics_core.graphs.DescriptorKernels` (None: fitted here).

    Example:
        >>> import networkx as nx, math
        >>> # trees: every coefficient 0; triangles: every coefficient 1; sigma = sqrt(2) (the one reference pair)
        >>> value = clustering_mmd2([nx.path_graph(4)], [nx.star_graph(3), nx.complete_graph(3)])
        >>> round(value, 6), round((1 - math.exp(-0.5)) / 2, 6)
        (0.196735, 0.196735)
    """
    return descriptor_mmd2(graphs, reference_graphs, "clustering", reference_kernel=reference_kernel)


def spectral_mmd2(graphs, reference_graphs, *, reference_kernel: DescriptorKernels | None = None) -> float:
    r"""Spectral MMD (Liao et al. 2019, GRAN): biased squared MMD of the normalised histograms of the normalised
    Laplacian's eigenvalues (200 bins on [0, 2]), Gaussian kernel on their L2 distance, :math:`\sigma` from the
    reference (module docstring). Range [0, 2], lower is better.

    Args:
        graphs: ``[N]`` the round's networkx ``Graph`` or ``DiGraph``, each with at least one node.
        reference_graphs: ``[M]`` the reference's, likewise.
        reference_kernel: the reference's :class:`~metrics_core.graphs.DescriptorKernels` (None: fitted here).

    Example:
        >>> import networkx as nx
        >>> ref = [nx.cycle_graph(n) for n in (4, 5, 6, 7)] + [nx.path_graph(n) for n in (4, 5, 6, 7)]
        >>> spectral_mmd2(ref, ref), spectral_mmd2([nx.cycle_graph(4)] * 8, ref) > 0.1
        (0.0, True)
    """
    return descriptor_mmd2(graphs, reference_graphs, "spectral", reference_kernel=reference_kernel)
