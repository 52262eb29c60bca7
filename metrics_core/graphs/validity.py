r"""Validity of a graph round: the share of graphs that satisfy every declared structural rule.

Part of :mod:`metrics_core.graphs` (its docstring states the round's layout and the uncertainty rules).
Domain rules (a molecule's valence, a road network's connectivity, a parse tree's acyclicity) are what the
graph-generation literature calls validity (Simonovsky & Komodakis 2018, GraphVAE; Liu et al. 2018, CGVAE;
survey §5.2); here they are the generic structural ones a :class:`GraphConstraints` declares.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import networkx as nx
import numpy as np

from metrics_core._checks import _check_graphs, _check_optional_count, _check_optional_flag
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, mean_estimate

# (lower bound, upper bound) pairs checked for min <= max.
_BOUNDS = (("min_nodes", "max_nodes"), ("min_edges", "max_edges"))


@dataclass(frozen=True)
class GraphConstraints:
    """Structural rules every valid graph satisfies; a field left ``None`` is no rule.

    ``connected`` and ``acyclic`` are requirements, never prohibitions: ``True`` requires the property,
    ``False`` and ``None`` impose nothing. Connected means connected for a ``Graph`` and *weakly* connected for a
    ``DiGraph`` (directions ignored); acyclic means a forest for a ``Graph`` (no cycle, a self-loop being one)
    and a DAG for a ``DiGraph`` (no directed cycle). ``max_degree`` bounds every node's degree (in- plus
    out-degree for a ``DiGraph``; a self-loop counts 2, as in networkx). The counts are inclusive bounds.
    Bad values raise ValueError naming the field.

    Example:
        >>> GraphConstraints(connected=True, max_degree=3).rules()
        ('max_degree', 'connected')
        >>> GraphConstraints(min_nodes=5, max_nodes=4)
        Traceback (most recent call last):
        ...
        ValueError: min_nodes: expected at most max_nodes=4, got 5
    """

    connected: bool | None = None
    acyclic: bool | None = None
    max_degree: int | None = None
    min_nodes: int | None = None
    max_nodes: int | None = None
    min_edges: int | None = None
    max_edges: int | None = None

    def __post_init__(self) -> None:
        for name in ("connected", "acyclic"):
            object.__setattr__(self, name, _check_optional_flag(getattr(self, name), name))
        for name in ("max_degree", "min_nodes", "max_nodes", "min_edges", "max_edges"):
            object.__setattr__(self, name, _check_optional_count(getattr(self, name), name))
        for low, high in _BOUNDS:
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{low}: expected at most {high}={hi}, got {lo}")

    def rules(self) -> tuple[str, ...]:
        """The fields that are rules, in the order :func:`constraint_violations` checks them."""
        return tuple(name for name in _RULE_ORDER if getattr(self, name) not in (None, False))


_RULE_ORDER = ("min_nodes", "max_nodes", "min_edges", "max_edges", "max_degree", "connected", "acyclic")
FIELDS = tuple(f.name for f in fields(GraphConstraints))


def _check_constraints(constraints) -> GraphConstraints:
    if not isinstance(constraints, GraphConstraints):
        raise ValueError(f"constraints: expected metrics_core.graphs.GraphConstraints, got {type(constraints).__name__}")
    return constraints


def _violations(g: nx.Graph, c: GraphConstraints) -> list[str]:
    out = []
    n, m = g.number_of_nodes(), g.number_of_edges()
    if c.min_nodes is not None and n < c.min_nodes:
        out.append(f"min_nodes: {n} nodes < {c.min_nodes}")
    if c.max_nodes is not None and n > c.max_nodes:
        out.append(f"max_nodes: {n} nodes > {c.max_nodes}")
    if c.min_edges is not None and m < c.min_edges:
        out.append(f"min_edges: {m} edges < {c.min_edges}")
    if c.max_edges is not None and m > c.max_edges:
        out.append(f"max_edges: {m} edges > {c.max_edges}")
    if c.max_degree is not None:
        node, degree = max(g.degree, key=lambda nd: nd[1])  # the first node of the highest degree
        if degree > c.max_degree:
            out.append(f"max_degree: node {node!r} has degree {degree} > {c.max_degree}")
    if c.connected:
        parts = nx.number_weakly_connected_components(g) if g.is_directed() else nx.number_connected_components(g)
        if parts > 1:
            out.append(f"connected: {parts} {'weakly ' if g.is_directed() else ''}connected components")
    if c.acyclic:
        if g.is_directed() and not nx.is_directed_acyclic_graph(g):
            out.append("acyclic: not a DAG (has a directed cycle)")
        elif not g.is_directed() and not nx.is_forest(g):
            out.append("acyclic: not a forest (has a cycle)")
    return out


def constraint_violations(graph, constraints: GraphConstraints) -> list[str]:
    """The rules ``graph`` breaks, one short line each, in the order of :meth:`GraphConstraints.rules`
    (node counts, edge counts, degree, connectivity, acyclicity); ``[]`` for a valid graph. For a report.

    Example:
        >>> star = nx.star_graph(4)  # 5 nodes, centre 0 of degree 4
        >>> constraint_violations(star, GraphConstraints(max_degree=3, max_nodes=4, acyclic=True))
        ['max_nodes: 5 nodes > 4', 'max_degree: node 0 has degree 4 > 3']
        >>> constraint_violations(nx.DiGraph([(0, 1), (1, 0), (2, 3)]), GraphConstraints(connected=True, acyclic=True))
        ['connected: 2 weakly connected components', 'acyclic: not a DAG (has a directed cycle)']
    """
    (g,) = _check_graphs([graph], "graph")
    return _violations(g, _check_constraints(constraints))


def valid_rule_indicator(graphs, constraints: GraphConstraints) -> np.ndarray:
    """``[N]`` bool: graph ``i`` satisfies every rule of ``constraints``.

    Example:
        >>> valid_rule_indicator([nx.path_graph(3), nx.cycle_graph(3)], GraphConstraints(acyclic=True)).tolist()
        [True, False]
    """
    graphs = _check_graphs(graphs)
    c = _check_constraints(constraints)
    return np.array([not _violations(g, c) for g in graphs], dtype=bool)


def valid_rule_rate(graphs, constraints: GraphConstraints, *, n_boot: int = 0, level: float = DEFAULT_LEVEL,
                    seed: int = 0) -> Estimate:
    r"""Rule validity (survey §5.2): share of the round's graphs that satisfy every rule of ``constraints``.

    .. math:: \text{ValidRuleRate} = \frac1N \sum_{i=1}^N 1[G_i \models \mathcal C],

    :math:`G_i \models \mathcal C` when graph :math:`i` breaks none of the declared rules (see
    :class:`GraphConstraints` for what connected, acyclic and degree mean for directed graphs); with no rule
    declared every graph is valid. Range [0, 1], higher is better. The interval bootstraps the mean of the
    per-graph indicators.

    Args:
        graphs: ``[N]`` networkx ``Graph`` or ``DiGraph``, each with at least one node.
        constraints: the :class:`GraphConstraints`.
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> rules = GraphConstraints(connected=True, max_degree=2)
        >>> round_ = [nx.path_graph(4), nx.star_graph(3), nx.empty_graph(2), nx.cycle_graph(5)]
        >>> valid_rule_rate(round_, rules).value  # the path and the cycle
        0.5
    """
    return mean_estimate(valid_rule_indicator(graphs, constraints), n_boot=n_boot, level=level, seed=seed)
