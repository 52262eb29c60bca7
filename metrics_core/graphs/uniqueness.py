r"""Uniqueness and novelty of a graph round, up to Weisfeiler-Lehman hash equality.

Part of :mod:`metrics_core.graphs` (its docstring states the round's layout and the uncertainty rules).

Two graphs count as equal when their Weisfeiler-Lehman hashes are (:func:`wl_hash`: 1-WL colour refinement,
Weisfeiler & Lehman 1968, hashed as in Shervashidze et al. 2011, JMLR, :data:`WL_ITERATIONS` iterations, no node
or edge labels). Equal hashes are *necessary* for isomorphism (isomorphic graphs always get equal hashes) but
not *sufficient*: WL cannot tell some non-isomorphic graphs apart, for example regular graphs of one degree and
size (the 6-cycle and two triangles), and a finite number of iterations separates fewer still. A collision can
only merge distinct graphs, never split isomorphic ones, so both :func:`uniqueness` and :func:`novelty` are
*lower bounds* of their exact, isomorphism-based values, and equal to them whenever WL separates the graphs
involved (it does for most small random graphs, and for the graphs of typical generators).
"""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np

from metrics_core._checks import _check_graphs
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, mean_estimate

#: WL refinement iterations of :func:`wl_hash` (networkx's default): structure up to radius 3 around each node.
WL_ITERATIONS = 3


def wl_hash(graph) -> str:
    """The graph's Weisfeiler-Lehman hash, :data:`WL_ITERATIONS` iterations, prefixed ``"d:"`` for a ``DiGraph``
    (refining on successors, as networkx does) and ``"u:"`` for a ``Graph``, so a directed graph never equals an
    undirected one. Node ids and attributes are ignored.

    Example:
        >>> wl_hash(nx.path_graph(3)) == wl_hash(nx.relabel_nodes(nx.path_graph(3), {0: "c", 1: "a", 2: "b"}))
        True
        >>> wl_hash(nx.path_graph(3)) == wl_hash(nx.star_graph(3)), wl_hash(nx.cycle_graph(6)) == wl_hash(
        ...     nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3)))  # the second pair: a WL collision
        (False, True)
    """
    (g,) = _check_graphs([graph], "graph")
    return _hash(g)


def _hash(g: nx.Graph) -> str:
    with warnings.catch_warnings():  # networkx >= 3.5 warns that unlabelled hashes changed in 3.5; none is stored
        warnings.filterwarnings("ignore", message="The hashes produced", category=UserWarning)
        hashed = nx.weisfeiler_lehman_graph_hash(g, iterations=WL_ITERATIONS)
    return ("d:" if g.is_directed() else "u:") + hashed


def unique_graph_indicator(graphs) -> np.ndarray:
    """``[N]`` bool: graph ``i``'s WL hash differs from every earlier graph's (the first of its class).

    Example:
        >>> unique_graph_indicator([nx.path_graph(3), nx.cycle_graph(3), nx.path_graph([7, 8, 9])]).tolist()
        [True, True, False]
    """
    seen: set[str] = set()
    out = []
    for g in _check_graphs(graphs):
        h = _hash(g)
        out.append(h not in seen)
        seen.add(h)
    return np.array(out, dtype=bool)


def uniqueness(graphs, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0) -> Estimate:
    r"""Uniqueness as in the graph-generation literature (De Cao & Kipf 2018, MolGAN; Shi et al. 2020, GraphAF;
    survey §5.2): distinct graphs over all graphs of the round.

    .. math:: \text{Uniqueness} = \frac{|\{[G_1], \dots, [G_N]\}|}{N}
              = \frac1N \sum_{i=1}^N 1[\forall j < i: h(G_j) \ne h(G_i)],

    :math:`[G]` the class of :math:`G` under WL-hash equality and :math:`h` :func:`wl_hash`: the share of graphs
    not equal to an earlier one, so :math:`k` copies of one graph add 1 distinct graph and :math:`k - 1`
    repeats. Unlike MolGAN and GraphAF, which count over the valid molecules, every graph counts (rule
    validity is :func:`~metrics_core.graphs.valid_rule_rate`'s). A lower bound of the isomorphism-based value
    (module docstring). Range [1/N, 1], higher is better: a collapsed generator repeats a few structures. The
    interval bootstraps the mean of the fixed first-of-its-class indicators.

    Args:
        graphs: ``[N]`` networkx ``Graph`` or ``DiGraph``, each with at least one node.
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> round_ = [nx.path_graph(4), nx.star_graph(3), nx.path_graph(4), nx.path_graph(4)]
        >>> uniqueness(round_).value  # 2 distinct of 4
        0.5
    """
    return mean_estimate(unique_graph_indicator(graphs), n_boot=n_boot, level=level, seed=seed)


def novel_graph_indicator(graphs, reference_graphs) -> np.ndarray:
    """``[N]`` bool: graph ``i``'s WL hash is no reference graph's.

    Example:
        >>> novel_graph_indicator([nx.path_graph(3), nx.cycle_graph(3)], [nx.path_graph(3)]).tolist()
        [False, True]
    """
    graphs = _check_graphs(graphs)
    known = {_hash(g) for g in _check_graphs(reference_graphs, "reference_graphs")}
    return np.array([_hash(g) not in known for g in graphs], dtype=bool)


def novelty(graphs, reference_graphs, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0) -> Estimate:
    r"""Novelty (Simonovsky & Komodakis 2018, GraphVAE; De Cao & Kipf 2018, MolGAN; survey §5.2): share of the
    round's graphs equal to no reference graph.

    .. math:: \text{Novelty} = \frac1N \sum_{i=1}^N 1[\forall r: h(G_i) \ne h(R_r)],

    :math:`h` :func:`wl_hash`, :math:`R_r` the reference graphs. Repeats within the round count each time (a
    novel graph generated twice adds 2). A lower bound of the isomorphism-based value (module docstring).
    Range [0, 1], higher is better: a generator that only replays its training graphs has novelty 0. The
    interval bootstraps the mean of the per-graph indicators.

    Args:
        graphs: ``[N]`` the round's networkx ``Graph`` or ``DiGraph``, each with at least one node.
        reference_graphs: ``[N_ref]`` the reference's, likewise.
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> novelty([nx.path_graph(3), nx.cycle_graph(3), nx.cycle_graph(4), nx.path_graph(3)],
        ...         [nx.path_graph(3), nx.star_graph(3)]).value  # the two cycles
        0.5
    """
    return mean_estimate(novel_graph_indicator(graphs, reference_graphs), n_boot=n_boot, level=level, seed=seed)
