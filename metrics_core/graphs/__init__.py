r"""Graph metrics: rule validity, uniqueness and novelty up to isomorphism, descriptor MMDs to the reference.

Model collapse in generated graphs shows as rounds that repeat a few structures (falling uniqueness), that
reproduce the reference instead of generalising or that drift away from it (novelty), whose degree, clustering
and spectral statistics leave the reference's (rising descriptor MMDs), and that break the domain's structural
rules (LLM Data Auditor survey §5.2 validity and uniqueness, §5.3 distributional fidelity). Every metric here is
a pure function of the round's graphs (and, for novelty and the MMDs, of the reference's); :func:`graph_suite`
computes all of them.

A round is a non-empty list of ``networkx.Graph`` or ``networkx.DiGraph`` objects (multigraphs refused), each with
at least one node. Only structure counts: node ids and node and edge attributes are ignored everywhere.

* Validity (:mod:`~metrics_core.graphs.validity`) reads the graph as given: a ``DiGraph``'s degree is in- plus
  out-degree, "connected" means weakly connected and "acyclic" a DAG; for a ``Graph`` connected and a forest.
* Uniqueness and novelty (:mod:`~metrics_core.graphs.uniqueness`) compare Weisfeiler-Lehman hashes
  (:data:`~metrics_core.graphs.uniqueness.WL_ITERATIONS` iterations); a ``DiGraph`` never equals a ``Graph``.
* The descriptors (:mod:`~metrics_core.graphs.descriptors`) and their MMDs (:mod:`~metrics_core.graphs.mmd`) are
  computed on each graph's undirected simple view: directions dropped (``u -> v`` and ``v -> u`` become one
  edge) and self-loops removed, as in GraphRNN's and GRAN's evaluation code, written for simple undirected
  graphs.

Uncertainty: :func:`valid_rule_rate`, :func:`uniqueness` and :func:`novelty` are means of per-graph indicators
and return a :class:`~metrics_core.bootstrap.Estimate` whose interval resamples graphs; for uniqueness the
indicator "first of its hash in the round" is fixed before resampling (as for
:func:`metrics_core.agents.duplicate_episode_rate`), because resampled copies would read as duplicates. The
descriptor MMDs are point estimates (``float``): a bootstrap replicate of the round repeats graphs, which raises
the biased estimator's within-round term, so a plain interval would not even cover the estimate.

The package holds :mod:`~metrics_core.graphs.validity`, :mod:`~metrics_core.graphs.uniqueness`,
:mod:`~metrics_core.graphs.descriptors` (histograms, the reference's kernels, the feature view),
:mod:`~metrics_core.graphs.mmd` and :mod:`~metrics_core.graphs.suite`.
"""

from metrics_core.graphs.validity import (  # noqa: F401
    GraphConstraints,
    constraint_violations,
    valid_rule_indicator,
    valid_rule_rate,
)
from metrics_core.graphs.uniqueness import (  # noqa: F401
    WL_ITERATIONS,
    novel_graph_indicator,
    novelty,
    unique_graph_indicator,
    uniqueness,
    wl_hash,
)
from metrics_core.graphs.descriptors import (  # noqa: F401
    CLUSTERING_BINS,
    DESCRIPTORS,
    SPECTRAL_BINS,
    DescriptorKernels,
    clustering_histogram,
    degree_histogram,
    fit_descriptor_kernels,
    graph_features,
    spectral_histogram,
)
from metrics_core.graphs.mmd import clustering_mmd2, degree_mmd2, descriptor_mmd2, spectral_mmd2  # noqa: F401
from metrics_core.graphs.suite import GRAPH_METRIC_NAMES, graph_suite  # noqa: F401
