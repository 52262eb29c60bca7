"""Tests of the graph metrics (metrics_core.graphs)."""

from __future__ import annotations

import itertools
import math
import statistics

import networkx as nx
import numpy as np
import pytest
import scipy.linalg
import scipy.sparse.csgraph

from metrics_core.bootstrap import Estimate, iter_bootstrap_counts
from metrics_core.graphs import (
    CLUSTERING_BINS,
    GRAPH_METRIC_NAMES,
    SPECTRAL_BINS,
    DescriptorKernels,
    GraphConstraints,
    clustering_histogram,
    clustering_mmd2,
    constraint_violations,
    degree_histogram,
    degree_mmd2,
    descriptor_mmd2,
    fit_descriptor_kernels,
    graph_features,
    graph_suite,
    novel_graph_indicator,
    novelty,
    spectral_histogram,
    spectral_mmd2,
    unique_graph_indicator,
    uniqueness,
    valid_rule_indicator,
    valid_rule_rate,
    wl_hash,
)
from metrics_core.graphs import descriptors as D


def raises_exactly(message: str, fn, *args, **kwargs) -> None:
    """``fn`` raises ValueError with exactly this one-line message."""
    with pytest.raises(ValueError) as info:
        fn(*args, **kwargs)
    assert str(info.value) == message
    assert "\n" not in message


def relabelled(g: nx.Graph, rng) -> nx.Graph:
    """``g`` with its nodes renamed by a random permutation (an isomorphic copy)."""
    names = rng.permutation(g.number_of_nodes()).tolist()
    return nx.relabel_nodes(g, dict(zip(g.nodes, names)))


def diverse_graph(rng) -> nx.Graph:
    """A graph of a diverse family: a random tree, cycle, G(n, p) or 3-column partial grid, 6 to 20 nodes."""
    n = int(rng.integers(6, 21))
    kind = int(rng.integers(4))
    if kind == 0:
        return nx.from_prufer_sequence(rng.integers(0, n, size=n - 2).tolist())
    if kind == 1:
        return nx.cycle_graph(n)
    if kind == 2:
        return nx.gnp_random_graph(n, float(rng.uniform(0.15, 0.5)), seed=int(rng.integers(2**31)))
    return nx.convert_node_labels_to_integers(nx.grid_2d_graph(math.ceil(n / 3), 3).subgraph(
        sorted(itertools.product(range(math.ceil(n / 3)), range(3)))[:n]).copy())


MODE = nx.wheel_graph(8)  # the one structure a collapsed generator keeps emitting


def collapsing_round(rng, n: int, collapse: float) -> list:
    """``n`` graphs, each :data:`MODE` with probability ``collapse`` and a fresh diverse graph otherwise."""
    return [MODE.copy() if rng.random() < collapse else diverse_graph(rng) for _ in range(n)]


# ---------------------------------------------------------------- GraphConstraints, validity


def test_constraints_store_normalised_values_and_their_rules():
    c = GraphConstraints(connected=np.True_, acyclic=False, max_degree=np.int64(3), min_nodes=2, max_edges=10)
    assert c.connected is True and c.acyclic is False and type(c.max_degree) is int
    assert c.rules() == ("min_nodes", "max_edges", "max_degree", "connected")  # acyclic=False is no rule
    assert GraphConstraints().rules() == ()
    with pytest.raises(AttributeError):
        c.max_degree = 4  # frozen


def test_constraints_errors():
    raises_exactly("connected: expected true, false or None, got int", GraphConstraints, connected=1)
    raises_exactly("acyclic: expected true, false or None, got str", GraphConstraints, acyclic="yes")
    raises_exactly("max_degree: expected an integer >= 0 or None, got -1", GraphConstraints, max_degree=-1)
    raises_exactly("min_nodes: expected an integer >= 0 or None, got 2.0", GraphConstraints, min_nodes=2.0)
    raises_exactly("max_edges: expected an integer >= 0 or None, got True", GraphConstraints, max_edges=True)
    raises_exactly("min_nodes: expected at most max_nodes=4, got 5", GraphConstraints, min_nodes=5, max_nodes=4)
    raises_exactly("min_edges: expected at most max_edges=0, got 1", GraphConstraints, min_edges=1, max_edges=0)


def test_constraint_violations_hand_cases():
    every = GraphConstraints(connected=True, acyclic=True, max_degree=2, min_nodes=3, max_nodes=5, min_edges=2,
                             max_edges=4)
    assert constraint_violations(nx.path_graph(4), every) == []
    two_triangles = nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3))
    assert constraint_violations(two_triangles, every) == [
        "max_nodes: 6 nodes > 5", "max_edges: 6 edges > 4", "connected: 2 connected components",
        "acyclic: not a forest (has a cycle)"]
    assert constraint_violations(nx.star_graph(4), every) == ["max_degree: node 0 has degree 4 > 2"]
    assert constraint_violations(nx.empty_graph(1), every) == ["min_nodes: 1 nodes < 3", "min_edges: 0 edges < 2"]
    # directed: weakly connected counts as connected; a 2-cycle is a directed cycle, an undirected "cycle" is not
    diamond = nx.DiGraph([(0, 1), (0, 2), (1, 3), (2, 3)])
    assert constraint_violations(diamond, GraphConstraints(connected=True, acyclic=True)) == []
    assert constraint_violations(nx.DiGraph([(0, 1), (2, 1)]), GraphConstraints(connected=True)) == []
    assert constraint_violations(nx.DiGraph([(0, 1), (1, 0)]), GraphConstraints(acyclic=True)) == [
        "acyclic: not a DAG (has a directed cycle)"]
    # a DiGraph's degree is in- plus out-degree
    assert constraint_violations(nx.DiGraph([(0, 1), (2, 0)]), GraphConstraints(max_degree=1)) == [
        "max_degree: node 0 has degree 2 > 1"]


def test_valid_rule_rate_hand_case():
    rules = GraphConstraints(connected=True, max_degree=2)
    round_ = [nx.path_graph(4), nx.star_graph(3), nx.empty_graph(2), nx.cycle_graph(5), nx.path_graph(1)]
    assert valid_rule_indicator(round_, rules).tolist() == [True, False, False, True, True]
    est = valid_rule_rate(round_, rules)
    assert isinstance(est, Estimate) and est.value == pytest.approx(3 / 5) and est.ci_low is None
    assert valid_rule_rate(round_, GraphConstraints()).value == 1.0  # no rule: every graph is valid


def brute_valid(g: nx.Graph, c: GraphConstraints) -> bool:
    """The rules checked from the adjacency matrix: own degrees, scipy's components, repeated leaf removal."""
    a = nx.to_numpy_array(g, weight=None)
    n, m = len(a), int(a.sum()) if g.is_directed() else int(np.triu(a).sum())
    degree = a.sum(axis=0) + a.sum(axis=1) if g.is_directed() else a.sum(axis=1)
    components = scipy.sparse.csgraph.connected_components(a, directed=g.is_directed(), connection="weak")[0]
    if g.is_directed():  # a DAG: sources can be peeled off until nothing is left
        alive = np.ones(n, bool)
        while alive.any() and (sources := alive & (a[alive].sum(axis=0) == 0)).any():
            alive &= ~sources
        acyclic = not alive.any()
    else:
        acyclic = m == n - components  # a forest has n - c edges
    return all([c.min_nodes is None or n >= c.min_nodes, c.max_nodes is None or n <= c.max_nodes,
                c.min_edges is None or m >= c.min_edges, c.max_edges is None or m <= c.max_edges,
                c.max_degree is None or degree.max() <= c.max_degree, not c.connected or components == 1,
                not c.acyclic or acyclic])


def test_valid_rule_rate_random_vs_brute_force():
    rng = np.random.default_rng(0)
    for trial in range(40):
        directed = trial % 2 == 1
        graphs = [nx.gnp_random_graph(int(rng.integers(1, 9)), float(rng.uniform(0.05, 0.6)),
                                      seed=int(rng.integers(2**31)), directed=directed) for _ in range(15)]
        lo_n, lo_m = int(rng.integers(0, 4)), int(rng.integers(0, 5))
        c = GraphConstraints(connected=bool(rng.random() < 0.6), acyclic=bool(rng.random() < 0.5),
                             max_degree=int(rng.integers(1, 6)) if rng.random() < 0.7 else None,
                             min_nodes=lo_n, max_nodes=lo_n + int(rng.integers(0, 6)), min_edges=lo_m,
                             max_edges=lo_m + int(rng.integers(0, 10)) if rng.random() < 0.5 else None)
        expected = [brute_valid(g, c) for g in graphs]
        assert valid_rule_indicator(graphs, c).tolist() == expected
        assert valid_rule_rate(graphs, c).value == pytest.approx(sum(expected) / len(expected), abs=1e-12)


def test_valid_rule_rate_bootstrap_resamples_graphs():
    graphs = [nx.path_graph(3), nx.cycle_graph(3), nx.star_graph(3), nx.cycle_graph(4), nx.path_graph(5)]
    c = GraphConstraints(acyclic=True)
    est = valid_rule_rate(graphs, c, n_boot=300, seed=2)
    ok = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    reps = np.array([(w @ ok) / 5 for w in iter_bootstrap_counts(5, 300, 2)])
    assert est.value == pytest.approx(0.6)
    assert (est.ci_low, est.ci_high) == pytest.approx(tuple(np.quantile(reps, [0.025, 0.975])))


def test_valid_rule_rate_falls_as_rule_breaking_graphs_spread():
    rng = np.random.default_rng(1)
    rules = GraphConstraints(connected=True, acyclic=True)
    values = []
    for broken in (0.0, 0.2, 0.5, 0.8):
        round_ = [nx.cycle_graph(int(rng.integers(3, 9))) if rng.random() < broken
                  else nx.from_prufer_sequence(rng.integers(0, 8, size=6).tolist()) for _ in range(200)]
        values.append(valid_rule_rate(round_, rules).value)
    assert values[0] == 1.0 and all(a > b for a, b in zip(values, values[1:]))


def test_validity_errors():
    rules = GraphConstraints(connected=True)
    raises_exactly("graphs: expected a non-empty list of networkx graphs, got an empty list", valid_rule_rate, [], rules)
    raises_exactly("graphs: expected a list of networkx graphs, got Graph", valid_rule_rate, nx.path_graph(2), rules)
    raises_exactly("graphs[1]: expected a networkx Graph or DiGraph, got MultiGraph", valid_rule_rate,
                   [nx.path_graph(2), nx.MultiGraph([(0, 1)])], rules)
    raises_exactly("graphs[0]: expected a networkx Graph or DiGraph, got list", valid_rule_rate, [[(0, 1)]], rules)
    raises_exactly("graphs[0]: expected a graph with at least one node, got an empty graph", valid_rule_rate,
                   [nx.Graph()], rules)
    raises_exactly("constraints: expected metrics_core.graphs.GraphConstraints, got dict", valid_rule_rate,
                   [nx.path_graph(2)], {"connected": True})
    raises_exactly("graph[0]: expected a graph with at least one node, got an empty graph", constraint_violations,
                   nx.Graph(), rules)


# ---------------------------------------------------------------- uniqueness, novelty


def test_uniqueness_and_novelty_hand_cases():
    p4, star = nx.path_graph(4), nx.star_graph(3)
    p4_renamed = nx.relabel_nodes(p4, {0: "d", 1: "a", 2: "c", 3: "b"})
    round_ = [p4, star, p4_renamed, nx.path_graph(4), nx.cycle_graph(4)]
    assert unique_graph_indicator(round_).tolist() == [True, True, False, False, True]
    assert uniqueness(round_).value == pytest.approx(3 / 5)  # 3 distinct of 5
    assert uniqueness([p4]).value == 1.0
    reference = [star, nx.path_graph(4), nx.complete_graph(3)]
    assert novel_graph_indicator(round_, reference).tolist() == [False, False, False, False, True]
    assert novelty(round_, reference).value == pytest.approx(1 / 5)
    # attributes and ids are ignored; direction is not
    attributed = nx.path_graph(4)
    nx.set_node_attributes(attributed, "C", "element")
    assert wl_hash(attributed) == wl_hash(p4)
    assert wl_hash(nx.DiGraph(nx.path_graph(4))) != wl_hash(p4)
    assert wl_hash(nx.DiGraph([(0, 1), (1, 2)])) != wl_hash(nx.DiGraph([(1, 0), (1, 2)]))


def test_wl_collisions_make_uniqueness_and_novelty_lower_bounds():
    c6, two_triangles = nx.cycle_graph(6), nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3))
    assert not nx.is_isomorphic(c6, two_triangles)
    assert uniqueness([c6, two_triangles]).value == 0.5  # exact uniqueness is 1
    assert novelty([c6], [two_triangles]).value == 0.0  # exact novelty is 1


def iso_uniqueness(graphs) -> float:
    classes: list = []
    for g in graphs:
        if not any(nx.is_isomorphic(g, h) for h in classes):
            classes.append(g)
    return len(classes) / len(graphs)


def iso_novelty(graphs, reference) -> float:
    return sum(not any(nx.is_isomorphic(g, r) for r in reference) for g in graphs) / len(graphs)


def test_uniqueness_and_novelty_match_pairwise_isomorphism_on_small_random_graphs():
    # WL with 3 iterations separates every graph of at most 5 nodes (all 52 of the atlas)
    small = [g for g in nx.graph_atlas_g() if 0 < g.number_of_nodes() <= 5]
    assert len({wl_hash(g) for g in small}) == len(small) == 52
    rng = np.random.default_rng(3)
    for _ in range(25):
        graphs = [relabelled(small[int(i)], rng) for i in rng.integers(0, 52, size=int(rng.integers(1, 30)))]
        reference = [relabelled(small[int(i)], rng) for i in rng.integers(0, 52, size=int(rng.integers(1, 20)))]
        assert uniqueness(graphs).value == pytest.approx(iso_uniqueness(graphs), abs=1e-12)
        assert novelty(graphs, reference).value == pytest.approx(iso_novelty(graphs, reference), abs=1e-12)
    # random G(n, p) of up to 5 nodes, directed ones too (DiGraph isomorphism respects direction)
    for directed in (False, True):
        graphs = [nx.gnp_random_graph(int(rng.integers(1, 6)), 0.4, seed=int(s), directed=directed)
                  for s in rng.integers(2**31, size=60)]
        assert uniqueness(graphs).value == pytest.approx(iso_uniqueness(graphs), abs=1e-12)
        assert novelty(graphs[:30], graphs[30:]).value == pytest.approx(iso_novelty(graphs[:30], graphs[30:]))


def test_uniqueness_bootstrap_keeps_the_first_occurrence_indicators_fixed():
    graphs = [nx.path_graph(3), nx.path_graph(3), nx.star_graph(3), nx.cycle_graph(3)]
    est = uniqueness(graphs, n_boot=200, seed=5)
    first = np.array([1.0, 0.0, 1.0, 1.0])
    reps = np.array([(w @ first) / 4 for w in iter_bootstrap_counts(4, 200, 5)])
    assert est.value == 0.75 and est.std_error == pytest.approx(reps.std(ddof=1))
    assert novelty(graphs, [nx.path_graph(3)], n_boot=50).ci_high is not None


def test_uniqueness_and_novelty_fall_as_the_round_collapses():
    rng = np.random.default_rng(4)
    reference = [diverse_graph(rng) for _ in range(60)]
    unique, novel = [], []
    for collapse in (0.0, 0.3, 0.6, 0.9):
        round_ = collapsing_round(rng, 120, collapse)
        unique.append(uniqueness(round_).value)
        # memorisation: the same share of the round replays reference graphs
        replay = [reference[int(i)] if rng.random() < collapse else g
                  for i, g in zip(rng.integers(0, 60, size=120), [diverse_graph(rng) for _ in range(120)])]
        novel.append(novelty(replay, reference).value)
    assert all(a > b for a, b in zip(unique, unique[1:])) and unique[-1] < 0.3
    assert all(a > b for a, b in zip(novel, novel[1:])) and novel[-1] < 0.3


def test_uniqueness_errors():
    raises_exactly("graphs: expected a non-empty list of networkx graphs, got an empty list", uniqueness, [])
    raises_exactly("reference_graphs[0]: expected a networkx Graph or DiGraph, got str", novelty,
                   [nx.path_graph(2)], ["a-b"])
    raises_exactly("graph[0]: expected a networkx Graph or DiGraph, got str", wl_hash, "ab")


# ---------------------------------------------------------------- descriptors


def simple_view_adjacency(g: nx.Graph) -> tuple[list, np.ndarray]:
    """Nodes and the 0/1 adjacency matrix of the undirected simple view, built from the edge list."""
    nodes = list(g.nodes)
    index = {v: i for i, v in enumerate(nodes)}
    a = np.zeros((len(nodes), len(nodes)))
    for u, v in g.edges:
        if u != v:
            a[index[u], index[v]] = a[index[v], index[u]] = 1.0
    return nodes, a


def brute_histograms(g: nx.Graph) -> dict[str, np.ndarray]:
    """The three descriptor histograms from the adjacency matrix: own degrees, triangles and Laplacian."""
    _, a = simple_view_adjacency(g)
    deg = a.sum(axis=1)
    degree = np.zeros(int(deg.max()) + 1)
    for d in deg:
        degree[int(d)] += 1
    triangles = np.diag(a @ a @ a) / 2
    coefficients = np.where(deg > 1, 2 * triangles / np.maximum(deg * (deg - 1), 1), 0.0)
    clustering = np.zeros(CLUSTERING_BINS)
    for c in coefficients:
        clustering[min(int(np.searchsorted(np.linspace(0, 1, CLUSTERING_BINS + 1), c, side="right")) - 1, 99)] += 1
    inv_sqrt = np.where(deg > 0, 1 / np.sqrt(np.maximum(deg, 1)), 0.0)
    laplacian = inv_sqrt[:, None] * (np.diag(deg) - a) * inv_sqrt[None, :]
    spectral = np.zeros(SPECTRAL_BINS)
    edges = np.linspace(0, 2, SPECTRAL_BINS + 1)
    for lam in np.clip(scipy.linalg.eigh(laplacian, eigvals_only=True), 0, 2):
        spectral[min(int(np.searchsorted(edges, lam, side="right")) - 1, SPECTRAL_BINS - 1)] += 1
    return {"degree": degree, "clustering": clustering, "spectral": spectral}


def test_descriptor_histograms_hand_cases():
    paw = nx.Graph([(0, 1), (1, 2), (2, 0), (2, 3)])  # a triangle with a pendant node
    assert degree_histogram(paw).tolist() == [0, 1, 2, 1]
    c = clustering_histogram(paw)  # 1, 1, 1/3, 0
    assert c.shape == (100,) and c[0] == 1 and c[33] == 1 and c[99] == 2 and c.sum() == 4
    s = spectral_histogram(nx.cycle_graph(4))  # eigenvalues 0, 1, 1, 2 (the 1s may round to either side of a bin edge)
    assert s.shape == (200,) and s[0] == 1 and s[99] + s[100] == 2 and s[199] == 1 and s.sum() == 4
    isolated = nx.Graph([(0, 1)])
    isolated.add_node(2)
    assert degree_histogram(isolated).tolist() == [1, 2]
    assert spectral_histogram(isolated)[0] == 2 and spectral_histogram(isolated)[199] == 1  # 0, 0 and 2
    # the undirected simple view: reciprocal arcs are one edge, self-loops dropped
    arcs = nx.DiGraph([(0, 1), (1, 0), (1, 2), (2, 2)])
    assert degree_histogram(arcs).tolist() == degree_histogram(nx.path_graph(3)).tolist() == [0, 2, 1]


def test_descriptor_histograms_match_an_adjacency_matrix_implementation():
    rng = np.random.default_rng(6)
    for _ in range(40):
        g = nx.gnp_random_graph(int(rng.integers(1, 25)), float(rng.uniform(0.05, 0.7)),
                                seed=int(rng.integers(2**31)), directed=bool(rng.random() < 0.3))
        expected = brute_histograms(g)
        assert degree_histogram(g).tolist() == expected["degree"].tolist()
        assert clustering_histogram(g).tolist() == expected["clustering"].tolist()
        assert spectral_histogram(g).tolist() == expected["spectral"].tolist()


def test_fit_descriptor_kernels_median_heuristic_vs_brute_force():
    rng = np.random.default_rng(7)
    reference = [diverse_graph(rng) for _ in range(25)]
    kernels = fit_descriptor_kernels(reference)
    assert kernels.n_reference == 25
    assert kernels.degree_bins == max(max(dict(g.degree).values()) for g in reference) + 2
    for descriptor in ("degree", "clustering", "spectral"):
        hists = [brute_histograms(g)[descriptor] for g in reference]
        hists = [h / h.sum() for h in hists]
        length = max(len(h) for h in hists)
        padded = [np.pad(h, (0, length - len(h))) for h in hists]
        distances = [math.sqrt(sum((a - b) ** 2 for a, b in zip(p, q))) for p, q in itertools.combinations(padded, 2)]
        positive = [d for d in distances if d > 0]
        expected = statistics.median(distances) or statistics.median(positive)
        assert kernels.bandwidth(descriptor) == pytest.approx(expected, rel=1e-9)
    raises_exactly("descriptor: expected one of ('degree', 'clustering', 'spectral'), got 'motif'",
                   kernels.bandwidth, "motif")


def test_bandwidth_fallbacks():
    # over half the pairs equal: the median of the positive distances (degree histograms (0, 1) and (0, 1/2, 1/2))
    kernels = fit_descriptor_kernels([nx.path_graph(2)] * 4 + [nx.path_graph(4)])  # 6 equal pairs of 10
    assert kernels.degree_bandwidth == pytest.approx(math.sqrt(0.5))
    # all equal, or one graph: the fallback
    assert fit_descriptor_kernels([nx.cycle_graph(5)] * 4).spectral_bandwidth == D.FALLBACK_BANDWIDTH == 1.0
    assert fit_descriptor_kernels([nx.cycle_graph(5)]).degree_bandwidth == 1.0


def test_median_heuristic_uses_evenly_spaced_reference_graphs_past_the_cap(monkeypatch):
    monkeypatch.setattr(D, "MEDIAN_MAX_GRAPHS", 3)
    reference = [nx.path_graph(2), nx.star_graph(5), nx.path_graph(3), nx.star_graph(2), nx.path_graph(4)]
    capped = fit_descriptor_kernels(reference)  # graphs 0, 2 and 4
    assert capped.degree_bandwidth == pytest.approx(fit_descriptor_kernels(reference[::2]).degree_bandwidth)


def brute_mmd2(round_hists, reference_hists, sigma: float) -> float:
    """The biased V-statistic by a plain double loop over padded Python lists."""
    length = max(len(h) for h in list(round_hists) + list(reference_hists))
    x = [list(h) + [0.0] * (length - len(h)) for h in round_hists]
    y = [list(h) + [0.0] * (length - len(h)) for h in reference_hists]

    def k(p, q):
        return math.exp(-sum((a - b) ** 2 for a, b in zip(p, q)) / (2 * sigma * sigma))

    kxx = sum(k(p, q) for p in x for q in x) / len(x) ** 2
    kyy = sum(k(p, q) for p in y for q in y) / len(y) ** 2
    kxy = sum(k(p, q) for p in x for q in y) / (len(x) * len(y))
    return kxx + kyy - 2 * kxy


def test_mmd_hand_case():
    # degree histograms (0, 1) for P2, (0, 2/3, 1/3) for P3: sigma = sqrt(2)/3, k(P2, P3) = exp(-1/2)
    e = math.exp(-0.5)
    assert degree_mmd2([nx.path_graph(2)], [nx.path_graph(2), nx.path_graph(3)]) == pytest.approx((1 - e) / 2)
    assert degree_mmd2([nx.path_graph(3)], [nx.path_graph(2), nx.path_graph(3)]) == pytest.approx((1 - e) / 2)
    # a round of both: the empirical distributions are equal
    assert degree_mmd2([nx.path_graph(3), nx.path_graph(2)], [nx.path_graph(2), nx.path_graph(3)]) == pytest.approx(
        0.0, abs=1e-15)
    # clustering: trees at 0, a triangle at 1, sigma = sqrt(2); the round half trees and half triangles
    value = clustering_mmd2([nx.path_graph(4), nx.complete_graph(3)], [nx.star_graph(3), nx.star_graph(4),
                                                                      nx.complete_graph(3)])
    # x: {0, 1} each 1/2; y: 0 twice and 1 once; k across = exp(-1/2)
    kxx, kyy, kxy = (2 + 2 * e) / 4, (5 + 4 * e) / 9, (3 + 3 * e) / 6
    assert value == pytest.approx(kxx + kyy - 2 * kxy)
    assert spectral_mmd2([nx.cycle_graph(5)], [nx.cycle_graph(5)]) == 0.0


def test_mmd_matches_a_brute_force_double_loop():
    rng = np.random.default_rng(8)
    for _ in range(6):
        reference = [diverse_graph(rng) for _ in range(int(rng.integers(2, 15)))]
        round_ = collapsing_round(rng, int(rng.integers(1, 15)), float(rng.random()))
        kernels = fit_descriptor_kernels(reference)
        for descriptor, fn in (("degree", degree_mmd2), ("clustering", clustering_mmd2), ("spectral", spectral_mmd2)):
            norm = lambda graphs: [h / h.sum() for h in (brute_histograms(g)[descriptor] for g in graphs)]  # noqa: E731
            expected = brute_mmd2(norm(round_), norm(reference), kernels.bandwidth(descriptor))
            assert fn(round_, reference, reference_kernel=kernels) == pytest.approx(max(expected, 0.0), abs=1e-12)
            assert fn(round_, reference) == pytest.approx(max(expected, 0.0), abs=1e-12)  # fitted inside
            assert descriptor_mmd2(round_, reference, descriptor) == fn(round_, reference)


def test_mmd_kernel_comes_from_the_reference_not_the_round():
    rng = np.random.default_rng(9)
    reference = [diverse_graph(rng) for _ in range(20)]
    kernels = fit_descriptor_kernels(reference)
    round_a = collapsing_round(rng, 20, 0.5)
    # the same kernel whatever the round: scoring a round does not refit
    assert degree_mmd2(round_a, reference) == degree_mmd2(round_a, reference, reference_kernel=kernels)
    other = DescriptorKernels(kernels.degree_bins, 10 * kernels.degree_bandwidth, 1.0, 1.0, 20)
    assert degree_mmd2(round_a, reference, reference_kernel=other) < degree_mmd2(round_a, reference)


def test_mmds_rise_as_the_round_collapses_away_from_a_diverse_reference():
    rng = np.random.default_rng(10)
    reference = [diverse_graph(rng) for _ in range(100)]
    kernels = fit_descriptor_kernels(reference)
    for fn in (degree_mmd2, clustering_mmd2, spectral_mmd2):
        values = [fn(collapsing_round(np.random.default_rng(11), 100, c), reference, reference_kernel=kernels)
                  for c in (0.0, 0.25, 0.5, 0.75, 1.0)]
        assert all(a < b for a, b in zip(values, values[1:])), (fn.__name__, values)
        assert values[0] < 0.05 < values[-1]


def test_mmd_errors():
    g = [nx.path_graph(3)]
    raises_exactly("descriptor: expected one of ('degree', 'clustering', 'spectral'), got 'motif'",
                   descriptor_mmd2, g, g, "motif")
    raises_exactly("reference_graphs: expected a non-empty list of networkx graphs, got an empty list",
                   degree_mmd2, g, [])
    raises_exactly("graphs[0]: expected a graph with at least one node, got an empty graph", spectral_mmd2,
                   [nx.Graph()], g)
    kernels = fit_descriptor_kernels(g * 3)
    raises_exactly("reference_kernel: fitted on 3 reference graphs, got 1 reference_graphs", clustering_mmd2, g, g,
                   reference_kernel=kernels)
    raises_exactly("kernels: expected metrics_core.graphs.DescriptorKernels, got float", degree_mmd2, g, g,
                   reference_kernel=1.0)


# ---------------------------------------------------------------- features


def test_graph_features_layout_and_overflow_bin():
    kernels = fit_descriptor_kernels([nx.path_graph(3), nx.cycle_graph(4)])  # largest degree 2: 4 degree bins
    x = graph_features([nx.star_graph(4), nx.path_graph(2)], kernels)
    assert x.shape == (2, 4 + CLUSTERING_BINS + SPECTRAL_BINS) and x.dtype == np.float64
    assert x[0, :4].tolist() == [0.0, 0.8, 0.0, 0.2]  # four leaves; the centre's degree 4 in the ">= 3" bin
    assert x[1, :4].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert np.allclose(x[:, :4].sum(axis=1), 1) and np.allclose(x[:, 4:104].sum(axis=1), 1)
    assert np.allclose(x[:, 104:].sum(axis=1), 1)
    for row, g in zip(x, [nx.star_graph(4), nx.path_graph(2)]):
        hists = brute_histograms(g)
        assert np.allclose(row[4:104], hists["clustering"] / hists["clustering"].sum())
        assert np.allclose(row[104:], hists["spectral"] / hists["spectral"].sum())
    raises_exactly("kernels: expected metrics_core.graphs.DescriptorKernels, got NoneType", graph_features,
                   [nx.path_graph(2)], None)


# ---------------------------------------------------------------- suite


def test_graph_suite_names_values_and_intervals():
    rng = np.random.default_rng(12)
    reference = [diverse_graph(rng) for _ in range(30)]
    round_ = collapsing_round(rng, 30, 0.5)
    rules = GraphConstraints(connected=True, max_degree=6)
    out = graph_suite(round_, reference, constraints=rules, n_boot=50, seed=3)
    assert tuple(out) == GRAPH_METRIC_NAMES
    assert out["valid_rule_rate"].value == valid_rule_rate(round_, rules).value
    assert out["uniqueness"] == uniqueness(round_, n_boot=50, seed=3)
    assert out["novelty"] == novelty(round_, reference, n_boot=50, seed=3)
    for name, fn in (("degree_mmd2", degree_mmd2), ("clustering_mmd2", clustering_mmd2),
                     ("spectral_mmd2", spectral_mmd2)):
        assert out[name] == Estimate(fn(round_, reference))  # point estimates
    assert all(out[n].ci_low is not None for n in ("valid_rule_rate", "uniqueness", "novelty"))
    no_rules = graph_suite(round_, reference, n_boot=0, kernels=fit_descriptor_kernels(reference))
    assert tuple(no_rules) == GRAPH_METRIC_NAMES[1:]
    assert no_rules["spectral_mmd2"] == out["spectral_mmd2"]


def test_graph_suite_of_the_reference_against_itself():
    rng = np.random.default_rng(13)
    reference = [diverse_graph(rng) for _ in range(20)]
    out = graph_suite(reference, reference, n_boot=0)
    assert out["novelty"].value == 0.0
    assert out["degree_mmd2"].value == out["clustering_mmd2"].value == out["spectral_mmd2"].value == 0.0


def test_graph_suite_errors():
    g = [nx.path_graph(3)]
    raises_exactly("n_boot: expected a non-negative integer, got -1", graph_suite, g, g, n_boot=-1)
    raises_exactly("seed: expected an integer >= 0, got -2", graph_suite, g, g, seed=-2)
    raises_exactly("reference: expected a non-empty list of networkx graphs, got an empty list", graph_suite, g, [])
