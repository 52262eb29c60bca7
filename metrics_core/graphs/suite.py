r"""The graph suite: every graph metric of a round in one call.

Part of :mod:`metrics_core.graphs` (its docstring states the round's layout and the uncertainty rules).
"""

from __future__ import annotations

from metrics_core._checks import _check_bootstrap, _check_graphs, _check_seed
from metrics_core.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, Estimate
from metrics_core.graphs.descriptors import DescriptorKernels, fit_descriptor_kernels
from metrics_core.graphs.mmd import clustering_mmd2, degree_mmd2, spectral_mmd2
from metrics_core.graphs.uniqueness import novelty, uniqueness
from metrics_core.graphs.validity import GraphConstraints, valid_rule_rate

#: The graph metrics, in the registry's order (:func:`metrics_core.registry.metric_names` of ``"graph"``).
GRAPH_METRIC_NAMES = ("valid_rule_rate", "uniqueness", "novelty", "degree_mmd2", "clustering_mmd2", "spectral_mmd2")


def graph_suite(
    graphs,
    reference,
    *,
    constraints: GraphConstraints | None = None,
    kernels: DescriptorKernels | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Every defined graph metric of one round, keyed by :data:`GRAPH_METRIC_NAMES`, in that order.

    ``valid_rule_rate`` is left out without ``constraints``. ``valid_rule_rate``, ``uniqueness`` and
    ``novelty`` carry bootstrap intervals (graphs resampled, every one with ``seed``); the three descriptor
    MMDs are point estimates (``ci_low`` etc. None), all scored with one set of reference kernels.

    Args:
        graphs: ``[N]`` the round's networkx ``Graph`` or ``DiGraph``, each with at least one node.
        reference: ``[M]`` the reference's, likewise.
        constraints: the domain's :class:`GraphConstraints` (None: no rule validity).
        kernels: :func:`fit_descriptor_kernels` of ``reference``, fitted once for many rounds (None: fitted here).
        n_boot: bootstrap replicates (0: point estimates only).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> import networkx as nx
        >>> ref = [nx.path_graph(n) for n in range(3, 9)] + [nx.cycle_graph(n) for n in range(3, 9)]
        >>> out = graph_suite([nx.path_graph(4)] * 3 + [nx.star_graph(4)], ref, n_boot=0,
        ...                   constraints=GraphConstraints(connected=True, max_degree=3))
        >>> list(out)
        ['valid_rule_rate', 'uniqueness', 'novelty', 'degree_mmd2', 'clustering_mmd2', 'spectral_mmd2']
        >>> out["valid_rule_rate"].value, out["uniqueness"].value, out["novelty"].value
        (0.75, 0.5, 0.25)
    """
    _check_bootstrap(n_boot, level)
    seed = _check_seed(seed)
    graphs = _check_graphs(graphs)
    reference = _check_graphs(reference, "reference")
    boot = {"n_boot": n_boot, "level": level, "seed": seed}
    if kernels is None:
        kernels = fit_descriptor_kernels(reference)
    out: dict[str, Estimate] = {}
    if constraints is not None:
        out["valid_rule_rate"] = valid_rule_rate(graphs, constraints, **boot)
    out["uniqueness"] = uniqueness(graphs, **boot)
    out["novelty"] = novelty(graphs, reference, **boot)
    for name, mmd in (("degree_mmd2", degree_mmd2), ("clustering_mmd2", clustering_mmd2),
                      ("spectral_mmd2", spectral_mmd2)):
        out[name] = Estimate(mmd(graphs, reference, reference_kernel=kernels))
    return out
