r"""Graph descriptors: degree, clustering-coefficient and normalised-Laplacian spectrum histograms; the reference's
fixed kernels; the feature view.

Part of :mod:`metrics_core.graphs` (its docstring states the round's layout and the uncertainty rules). The
descriptors are those of You et al. 2018 ("GraphRNN", ICML) and Liao et al. 2019 ("GRAN", NeurIPS), computed on
each graph's undirected simple view (directions dropped, self-loops removed):

* degree: the counts of nodes of degree :math:`0, 1, \dots, d_\max`;
* clustering: the node clustering coefficients in :data:`CLUSTERING_BINS` equal bins on [0, 1];
* spectral: the eigenvalues of the normalised Laplacian :math:`I - D^{-1/2} A D^{-1/2}` (they lie in [0, 2];
  rounding outside is clipped) in :data:`SPECTRAL_BINS` equal bins on [0, 2]; an isolated node adds a 0.

Each histogram is normalised to sum 1 before any distance (GRAN's ``is_hist``), so a graph's size does not
count, only the shape of its distribution. The spectrum takes a dense eigendecomposition, :math:`O(n^3)` for a
graph of :math:`n` nodes: fine for the hundreds of nodes of generated graphs, slow past a few thousand.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
from scipy.spatial.distance import pdist

from metrics_core._checks import _check_graphs

CLUSTERING_BINS = 100
SPECTRAL_BINS = 200
DESCRIPTORS = ("degree", "clustering", "spectral")
#: At most this many reference graphs (evenly spaced in the list) enter the median heuristic: pairs grow as N^2.
MEDIAN_MAX_GRAPHS = 1000
#: The bandwidth when every reference pair has equal histograms (GRAN's default sigma for degree and spectrum).
FALLBACK_BANDWIDTH = 1.0


def _simple_undirected(g: nx.Graph) -> nx.Graph:
    h = nx.Graph(g)
    h.remove_edges_from(list(nx.selfloop_edges(h)))
    return h


def degree_histogram(graph) -> np.ndarray:
    """``[d_max + 1]`` int: the number of nodes of each degree, on the undirected simple view.

    Example:
        >>> degree_histogram(nx.star_graph(3)).tolist()  # three leaves, one centre of degree 3
        [0, 3, 0, 1]
        >>> degree_histogram(nx.DiGraph([(0, 1), (1, 0), (1, 1)])).tolist()  # one undirected edge, no self-loop
        [0, 2]
    """
    (g,) = _check_graphs([graph], "graph")
    return _degree_counts(_simple_undirected(g))


def _degree_counts(h: nx.Graph) -> np.ndarray:
    return np.bincount(np.fromiter((d for _, d in h.degree), dtype=np.int64, count=h.number_of_nodes()))


def clustering_histogram(graph) -> np.ndarray:
    """``[CLUSTERING_BINS]`` int: the nodes' clustering coefficients binned on [0, 1] (the last bin holds 1).

    Example:
        >>> hist = clustering_histogram(nx.Graph([(0, 1), (1, 2), (2, 0), (2, 3)]))  # c = 1, 1, 1/3, 0
        >>> {int(i): int(hist[i]) for i in np.flatnonzero(hist)}
        {0: 1, 33: 1, 99: 2}
    """
    (g,) = _check_graphs([graph], "graph")
    return _clustering_counts(_simple_undirected(g))


def _clustering_counts(h: nx.Graph) -> np.ndarray:
    coefficients = np.fromiter(nx.clustering(h).values(), dtype=np.float64, count=h.number_of_nodes())
    return np.histogram(coefficients, bins=CLUSTERING_BINS, range=(0.0, 1.0))[0]


def spectral_histogram(graph) -> np.ndarray:
    """``[SPECTRAL_BINS]`` int: the normalised-Laplacian eigenvalues binned on [0, 2] (the last bin holds 2).

    Example:
        >>> hist = spectral_histogram(nx.path_graph(2))  # eigenvalues 0 and 2
        >>> {int(i): int(hist[i]) for i in np.flatnonzero(hist)}
        {0: 1, 199: 1}
    """
    (g,) = _check_graphs([graph], "graph")
    return _spectral_counts(_simple_undirected(g))


def _spectral_counts(h: nx.Graph) -> np.ndarray:
    laplacian = nx.normalized_laplacian_matrix(h, nodelist=list(h)).toarray()
    eigenvalues = np.clip(np.linalg.eigvalsh(laplacian), 0.0, 2.0)
    return np.histogram(eigenvalues, bins=SPECTRAL_BINS, range=(0.0, 2.0))[0]


_COUNTS = {"degree": _degree_counts, "clustering": _clustering_counts, "spectral": _spectral_counts}


def _histograms(graphs: list, descriptor: str) -> list[np.ndarray]:
    """Each graph's ``descriptor`` histogram normalised to sum 1 (lengths differ for degree)."""
    out = []
    for g in graphs:
        counts = _COUNTS[descriptor](_simple_undirected(g)).astype(np.float64)
        out.append(counts / counts.sum())  # a graph has a node, so every histogram has mass
    return out


def _padded(*histogram_lists: list[np.ndarray]) -> list[np.ndarray]:
    """The lists as ``[N, L]`` matrices zero-padded to one common length ``L`` (padding changes no distance)."""
    length = max(h.shape[0] for hists in histogram_lists for h in hists)
    out = []
    for hists in histogram_lists:
        m = np.zeros((len(hists), length))
        for i, h in enumerate(hists):
            m[i, : h.shape[0]] = h
        out.append(m)
    return out


def _median_bandwidth(matrix: np.ndarray) -> float:
    """Median of the L2 distances over distinct pairs (Gretton et al. 2012, §8), with the fallbacks of
    :func:`fit_descriptor_kernels`."""
    if matrix.shape[0] > MEDIAN_MAX_GRAPHS:
        matrix = matrix[np.linspace(0, matrix.shape[0] - 1, MEDIAN_MAX_GRAPHS).astype(np.int64)]
    if matrix.shape[0] < 2:
        return FALLBACK_BANDWIDTH
    distances = pdist(matrix)
    median = float(np.median(distances))
    if median > 0:
        return median
    positive = distances[distances > 0]
    return float(np.median(positive)) if positive.size else FALLBACK_BANDWIDTH


@dataclass(frozen=True)
class DescriptorKernels:
    r"""The Gaussian kernels of the descriptor MMDs and the feature layout, fixed by the reference alone.

    Fitted by :func:`fit_descriptor_kernels`; every round is then scored with the same kernels, so a change in
    a round's MMD is a change of the round, never of its yardstick.

    Attributes:
        degree_bins: :math:`d_\max + 2`, :math:`d_\max` the reference's largest degree: the degree block of
            :func:`graph_features` (degrees :math:`0..d_\max`, then one bin for every higher degree).
        degree_bandwidth, clustering_bandwidth, spectral_bandwidth: :math:`\sigma` of each descriptor's kernel
            :math:`k(p, q) = \exp(-\lVert p - q\rVert_2^2 / 2\sigma^2)`.
        n_reference: the number of reference graphs fitted on (a guard against scoring with another's kernels).
    """

    degree_bins: int
    degree_bandwidth: float
    clustering_bandwidth: float
    spectral_bandwidth: float
    n_reference: int

    def bandwidth(self, descriptor: str) -> float:
        """:math:`\\sigma` of ``descriptor`` (one of :data:`DESCRIPTORS`)."""
        if descriptor not in DESCRIPTORS:
            raise ValueError(f"descriptor: expected one of {DESCRIPTORS}, got {descriptor!r}")
        return getattr(self, f"{descriptor}_bandwidth")


def fit_descriptor_kernels(reference_graphs) -> DescriptorKernels:
    r"""The reference's :class:`DescriptorKernels`: per descriptor, a bandwidth by the median heuristic over
    reference pairs only.

    :math:`\sigma_d = \operatorname{median}_{r < s} \lVert p^d_r - p^d_s \rVert_2`, :math:`p^d_r` reference graph
    :math:`r`'s normalised (and zero-padded) histogram of descriptor :math:`d` (Gretton et al. 2012, JMLR, §8),
    over at most :data:`MEDIAN_MAX_GRAPHS` reference graphs evenly spaced in the list. When over half the pairs
    have equal histograms (a median of 0) the median of the positive distances is taken, and when all do (or
    the reference has one graph), :data:`FALLBACK_BANDWIDTH`. GraphRNN and GRAN fix :math:`\sigma` by hand per
    descriptor; a reference-fitted one adapts to the graphs' scale and still never depends on a round.

    Example:
        >>> k = fit_descriptor_kernels([nx.path_graph(2), nx.path_graph(3)])
        >>> k.degree_bins, round(k.degree_bandwidth, 6) == round(2 ** 0.5 / 3, 6)  # |(0, 1, 0) - (0, 2/3, 1/3)|
        (4, True)
    """
    reference_graphs = _check_graphs(reference_graphs, "reference_graphs")
    bandwidths = {d: _median_bandwidth(_padded(_histograms(reference_graphs, d))[0]) for d in DESCRIPTORS}
    max_degree = max(max((deg for _, deg in _simple_undirected(g).degree), default=0) for g in reference_graphs)
    return DescriptorKernels(degree_bins=max_degree + 2, degree_bandwidth=bandwidths["degree"],
                             clustering_bandwidth=bandwidths["clustering"],
                             spectral_bandwidth=bandwidths["spectral"], n_reference=len(reference_graphs))


def _check_kernels(kernels) -> DescriptorKernels:
    if not isinstance(kernels, DescriptorKernels):
        raise ValueError(f"kernels: expected metrics_core.graphs.DescriptorKernels, got {type(kernels).__name__}")
    return kernels


def graph_features(graphs, kernels: DescriptorKernels) -> np.ndarray:
    r"""``[N, F]`` float64: each graph's normalised descriptor histograms, concatenated (a vector view of a graph,
    for the embedding suite).

    :math:`F` = ``kernels.degree_bins`` + :data:`CLUSTERING_BINS` + :data:`SPECTRAL_BINS`: the degree block
    (degrees up to the reference's largest, then one bin for every higher degree), the clustering block and
    the spectral block, each summing to 1. The layout is the reference's, so every round's vectors are
    comparable.

    Example:
        >>> x = graph_features([nx.star_graph(3)], fit_descriptor_kernels([nx.path_graph(3)]))
        >>> x.shape, x[0, :4].tolist(), float(x.sum())  # degrees 0, 1, 2, then >= 3
        ((1, 304), [0.0, 0.75, 0.0, 0.25], 3.0)
    """
    graphs = _check_graphs(graphs)
    kernels = _check_kernels(kernels)
    blocks = []
    for descriptor in DESCRIPTORS:
        hists = _histograms(graphs, descriptor)
        if descriptor == "degree":
            width = kernels.degree_bins
            hists = [np.concatenate([h[: width - 1], [h[width - 1:].sum()]]) if h.shape[0] >= width
                     else np.pad(h, (0, width - h.shape[0])) for h in hists]
        blocks.append(np.stack(hists))
    return np.concatenate(blocks, axis=1)
