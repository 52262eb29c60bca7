r"""L8-graph: a mixture-of-families graph generator refitted on its own samples, losing its structural diversity.

The collapse loop (benchmark loop L8, modality ``"graph"``) is the recursive-training setting of Shumailov et
al. 2024 ("AI models collapse when trained on recursively generated data", Nature 631, 755-759) applied to a
graph generator: sample graphs from the current model, fit the next model to them by maximum likelihood, repeat.
Fitting a categorical distribution by maximum likelihood to a finite sample, with no smoothing, makes every
category the sample happens to miss vanish for good (their "early model collapse": the tails go first), and
fitting a Gaussian shrinks its variance on average (their §3, the Gaussian case): the generator ends up emitting
fewer kinds of graph, in a narrower range of sizes.

Generative process (:func:`sample_graphs`): a graph is drawn by picking a family :math:`k` with probability
:math:`\pi_k`, then a size :math:`n = \operatorname{clip}(\operatorname{round}(\mathcal N(\mu_k, \sigma_k^2)),
3, 64)`, then the graph:

* ``"tree"``: a uniform random labelled tree on :math:`n` nodes (a uniform Prüfer sequence);
* ``"cycle"``: the cycle :math:`C_n`;
* ``"grid"``: the first :math:`n` cells, row by row, of a grid :data:`GRID_COLUMNS` cells wide (a partial last
  row), neighbouring cells joined;
* ``"community"``: a two-block stochastic block model (Holland et al. 1983), blocks of :math:`\lfloor n/2
  \rfloor` and :math:`\lceil n/2 \rceil` nodes, edge probability :data:`P_IN` within a block and :data:`P_OUT`
  across; it can come out disconnected or with an isolated node.

Nodes are ``0 .. n - 1``; a graph is written as ``{"edges": [[u, v], ...]}`` (``u < v``, sorted), with
``"nodes": [0, ..., n - 1]`` added only when a node is isolated (:func:`graph_object`). Generation 0
(:data:`INITIAL_WEIGHTS`, :data:`INITIAL_MEANS`, :data:`INITIAL_SDS`) is fixed and the same for every seed: the
four families equally likely, sizes around 14, 10, 15 and 18 nodes.

Self-training (``workflow="replace"``, the loop): generation ``g`` samples ``n_samples`` (``M``) (family, size)
pairs; generation ``g + 1`` is their maximum-likelihood fit,

.. math:: \pi_{g+1,k} = \frac{m_k}{M}, \quad \mu_{g+1,k} = \bar n_k, \quad
          \sigma_{g+1,k}^2 = \frac1{m_k}\sum_{i: k_i = k} (n_i - \bar n_k)^2,

:math:`m_k` the pairs of family :math:`k`, with no smoothing: a family that draws no sample gets weight 0 and
never comes back, and a family drawn once gets :math:`\sigma = 0` (one size forever). Only the (family, size)
pairs are sampled for training; the structure within a family (the trees' shapes, the block model's
probabilities) is not refitted, so the collapse is the mixture's. Rule-breaking graphs are not injected: they
come from the families themselves (a disconnected community graph, a tree node of high degree, a size past a
bound) and their share drifts with the weights and sizes.

Ground truth (from the true parameters, never from sampled graphs; :func:`graphs_truth`):

* ``family_entropy``: :math:`H_g = -\sum_k \pi_{g,k} \ln \pi_{g,k}` in nats (:math:`\ln 4 = 1.386` at generation
  0);
* ``families``: the number of families with :math:`\pi_{g,k} > 0`, of 4; it never rises under ``replace``;
* ``size_sd``: :math:`\sum_k \pi_{g,k} \sigma_{g,k}`, the mean within-family size spread in nodes.

Onset (``replace`` only): the first generation in which at most half of generation 0's families are left
(``families`` :math:`\le` :data:`ONSET_FRACTION` :math:`\times 4 = 2`), half of the structural kinds gone for
good. The weights follow a Wright-Fisher drift (expected heterozygosity :math:`1 - \sum_k \pi_k^2` shrinks by
:math:`1 - 1/M` a generation), so :math:`H_g` falls but not monotonically: its first crossing of
:math:`H_0 / 2` is no onset, since for 15 of seeds 0-29 it rose above :math:`H_0/2` again (measured). The
support rule is absorbing, and it implies the halving rule of L3, L4 and L6 from then on: two families carry
at most :math:`\ln 2 = H_0 / 2` nats, so :math:`H_g \le H_0/2` in every generation from the onset on.

Sizes: ``M = n_samples = 16`` pairs per generation; the onset falls at generation 6, 14, 17, 9, 6, 5, 9, 14, 5,
14 for seeds 0-9 (3-18, median 8, for seeds 0-29; measured), within the default 30 generations; by generation 30
the loop keeps 1 or 2 families, :math:`H_{30}/H_0` of 0-0.49 and a ``size_sd`` of 0-0.8 nodes (3.75 at
generation 0; seeds 0-9). Time (one CPU core, measured): the refit takes microseconds, the ``n_audit = 200``
audit graphs about 10 ms a generation, a default 31-round run about 0.25 s.

Controls (any alarm on C0 is a false alarm; ``onset`` is always None):

* C0 ``workflow="no_feedback"``: every round is a fresh draw of generation 0's model; the truth is constant.
* C1 ``workflow="accumulate"`` (Gerstgrasser et al. 2024, "Is model collapse inevitable?"): generation
  ``g + 1`` is fitted on the pairs of *all* generations so far, generation 0's included.
* C2 ``workflow="fresh_real"``: generation ``g + 1`` is fitted on ``M - r`` own pairs plus ``r =
  round(fresh_fraction * M)`` (5 at the defaults) fresh pairs of generation 0's model.

At the defaults, by generation 30 (seeds 0-9, measured) C1 keeps all 4 families and :math:`H_{30}/H_0` of
0.81-0.98, C2 at least 3 families in every generation and 0.71-0.97: neither reaches the onset rule.

Rounds and reference are lists of graph objects (JSON-serialisable; :func:`graphs_jsonl` writes them as
``.jsonl``), parsed by :func:`monitor.inputs.graphs.graphs_from_objects`. Every audited round is ``n_audit``
fresh graphs of generation ``g``'s model; the reference is ``n_reference`` graphs of generation 0's, from its
own stream.

Randomness: one :class:`numpy.random.SeedSequence` per purpose and generation (the streams of
:mod:`monitor.meta_evaluation.loop_common`), so the parameter trajectory and ``truth`` do not depend on
``audit_every``, and a loop and its controls share generation 0 and the reference for equal seeds.

>>> params = graphs_params(0, 3, n_samples=8)
>>> params["weights"].shape, params["weights"][0].tolist()
((4, 4), [0.25, 0.25, 0.25, 0.25])
>>> bool(np.allclose(params["weights"].sum(axis=1), 1.0)), sorted(sample_graphs(params, 0, 2, np.random.default_rng(0))[0])
(True, ['edges'])
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable

import numpy as np
from scipy import special

from monitor.meta_evaluation.loop_common import (
    CONTROL_WORKFLOWS, _STREAM_DYNAMICS, _STREAM_REAL, _STREAM_REFERENCE, _audit_stream, _check_int, _check_run,
    _check_workflow, _fresh_count, _stream, _trace, audited_generations, first_generation,
)
from monitor.meta_evaluation.trace import LoopTrace

FAMILIES = ("tree", "cycle", "grid", "community")
"""The structural families, in parameter order."""

INITIAL_WEIGHTS = (0.25, 0.25, 0.25, 0.25)
INITIAL_MEANS = (14.0, 10.0, 15.0, 18.0)
INITIAL_SDS = (4.0, 3.0, 4.0, 4.0)
MIN_NODES, MAX_NODES = 3, 64  # the size clip: a cycle needs 3 nodes
GRID_COLUMNS = 3
P_IN, P_OUT = 0.5, 0.08

DEFAULT_N_SAMPLES = 16
DEFAULT_N_AUDIT = 200
DEFAULT_N_REFERENCE = 200
DEFAULT_FRESH_FRACTION = 0.3
ONSET_FRACTION = 0.5


# --- sampling ----------------------------------------------------------------------------------------------------


def _sizes(means: np.ndarray, sds: np.ndarray, families: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.round(rng.normal(means[families], sds[families])), MIN_NODES, MAX_NODES).astype(np.int64)


def _draw_pairs(weights, means, sds, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (family, size) pairs of one generation's model."""
    families = rng.choice(len(FAMILIES), size=n, p=weights)
    return families, _sizes(means, sds, families, rng)


def _tree(n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    # Prüfer decoding: each code entry joins the smallest remaining leaf to it
    code = rng.integers(0, n, size=n - 2)
    degree = np.ones(n, dtype=np.int64)
    np.add.at(degree, code, 1)
    edges = []
    for v in code.tolist():
        leaf = int(np.flatnonzero(degree == 1)[0])
        edges.append((leaf, v))
        degree[leaf] -= 1
        degree[v] -= 1
    u, w = np.flatnonzero(degree == 1).tolist()
    return edges + [(u, w)]


def _cycle(n: int) -> list[tuple[int, int]]:
    return [(i, (i + 1) % n) for i in range(n)]


def _grid(n: int) -> list[tuple[int, int]]:
    right = [(i, i + 1) for i in range(n - 1) if (i + 1) % GRID_COLUMNS]
    down = [(i, i + GRID_COLUMNS) for i in range(n - GRID_COLUMNS)]
    return right + down


def _community(n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    block = np.arange(n) >= n // 2
    p = np.where(block[:, None] == block[None, :], P_IN, P_OUT)
    u, v = np.nonzero(np.triu(rng.random((n, n)) < p, k=1))
    return list(zip(u.tolist(), v.tolist()))


def graph_object(n: int, edges: Iterable[tuple[int, int]]) -> dict:
    """A graph on nodes ``0 .. n - 1`` as the loader's edge-list object: sorted ``[u, v]`` with ``u < v``, and
    ``"nodes"`` only when a node is isolated.

    >>> graph_object(3, [(1, 0)]), graph_object(2, [(1, 0)])
    ({'edges': [[0, 1]], 'nodes': [0, 1, 2]}, {'edges': [[0, 1]]})
    """
    pairs = sorted({(min(u, v), max(u, v)) for u, v in edges})
    obj: dict = {"edges": [[u, v] for u, v in pairs]}
    if len({x for e in pairs for x in e}) < n:
        obj["nodes"] = list(range(n))
    return obj


def _render(families: np.ndarray, sizes: np.ndarray, rng: np.random.Generator) -> list[dict]:
    out = []
    for k, n in zip(families.tolist(), sizes.tolist()):
        family = FAMILIES[k]
        edges = (_tree(n, rng) if family == "tree" else _cycle(n) if family == "cycle" else _grid(n)
                 if family == "grid" else _community(n, rng))
        out.append(graph_object(n, edges))
    return out


def sample_graphs(params: dict, generation: int, n: int, rng: np.random.Generator) -> list[dict]:
    """``n`` graph objects of generation ``generation``'s model (:func:`graphs_params`), drawn from ``rng``.

    >>> g = sample_graphs(graphs_params(0, 1), 0, 3, np.random.default_rng(1))
    >>> len(g), all(len(x["edges"]) >= 2 for x in g)
    (3, True)
    """
    n = _check_int(n, "n", 1)
    weights, means, sds = (params[k][generation] for k in ("weights", "means", "sds"))
    return _render(*_draw_pairs(weights, means, sds, n, rng), rng)


# --- dynamics and truth ------------------------------------------------------------------------------------------


def _refit(families: np.ndarray, sizes: np.ndarray, previous: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = np.bincount(families, minlength=len(FAMILIES))
    weights = counts / counts.sum()
    means, sds = previous[1].copy(), previous[2].copy()  # a vanished family keeps its (now unused) sizes
    for k in np.flatnonzero(counts):
        own = sizes[families == k].astype(float)
        means[k], sds[k] = own.mean(), own.std()
    return weights, means, sds


def graphs_params(seed: int, n_generations: int, *, workflow: str = "replace", n_samples: int = DEFAULT_N_SAMPLES,
                  fresh_fraction: float = DEFAULT_FRESH_FRACTION) -> dict[str, np.ndarray]:
    r"""True parameters of every generation of L8-graph or a control (no audit graphs); see the module docstring.

    Args:
        seed: run seed.
        n_generations: last generation ``N``.
        workflow: ``"replace"``, ``"no_feedback"``, ``"accumulate"`` or ``"fresh_real"``.
        n_samples: ``M``, (family, size) pairs sampled per generation for training.
        fresh_fraction: share of generation-0 pairs in the C2 training sample.

    Returns:
        ``weights``, ``means`` and ``sds``, each ``[N + 1, 4]`` (index = generation, column = :data:`FAMILIES`).

    >>> p = graphs_params(0, 6, n_samples=5)
    >>> bool(((p["weights"][1:] == 0) >= (p["weights"][:-1] == 0)).all())  # a vanished family never returns
    True
    """
    seed, n_generations, _ = _check_run(seed, n_generations, 1)
    workflow = _check_workflow(workflow)
    n_samples = _check_int(n_samples, "n_samples", 1)
    n_fresh = _fresh_count(fresh_fraction, n_samples, "n_samples") if workflow == "fresh_real" else 0
    shape = (n_generations + 1, len(FAMILIES))
    weights, means, sds = np.empty(shape), np.empty(shape), np.empty(shape)
    weights[:], means[:], sds[:] = INITIAL_WEIGHTS, INITIAL_MEANS, INITIAL_SDS
    if workflow == "no_feedback":
        return {"weights": weights, "means": means, "sds": sds}
    pooled_f, pooled_n = [], []
    for g in range(n_generations):
        families, sizes = _draw_pairs(weights[g], means[g], sds[g], n_samples - n_fresh,
                                      _stream(seed, _STREAM_DYNAMICS, g))
        if n_fresh:
            real = _draw_pairs(weights[0], means[0], sds[0], n_fresh, _stream(seed, _STREAM_REAL, g))
            families, sizes = np.concatenate([families, real[0]]), np.concatenate([sizes, real[1]])
        if workflow == "accumulate":
            pooled_f.append(families)
            pooled_n.append(sizes)
            families, sizes = np.concatenate(pooled_f), np.concatenate(pooled_n)
        weights[g + 1], means[g + 1], sds[g + 1] = _refit(families, sizes, (weights[g], means[g], sds[g]))
    return {"weights": weights, "means": means, "sds": sds}


def graphs_truth(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    r"""Per-generation truth of L8-graph: ``family_entropy`` (nats), ``families`` and ``size_sd``.

    >>> t = graphs_truth(graphs_params(0, 1, workflow="no_feedback"))
    >>> round(float(t["family_entropy"][0]), 4) == round(float(np.log(4)), 4), t["families"].tolist()
    (True, [4, 4])
    """
    w = params["weights"]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(w > 0, -w * np.log(w), 0.0)
    return {"family_entropy": terms.sum(axis=1), "families": (w > 0).sum(axis=1),
            "size_sd": (w * params["sds"]).sum(axis=1)}


# --- the loop ----------------------------------------------------------------------------------------------------


def graphs_loop(seed: int = 0, n_generations: int = 30, audit_every: int = 1, *, workflow: str = "replace",
                n_samples: int = DEFAULT_N_SAMPLES, n_audit: int = DEFAULT_N_AUDIT,
                n_reference: int = DEFAULT_N_REFERENCE, fresh_fraction: float = DEFAULT_FRESH_FRACTION) -> LoopTrace:
    r"""L8-graph: a mixture-of-families graph generator refitted on its own samples, or a control (module
    docstring).

    Onset (``replace`` only): the first generation with ``truth["families"] <= 0.5 * truth["families"][0]``.

    Args:
        seed: run seed.
        n_generations: last simulated generation.
        audit_every: audit stride.
        workflow: ``"replace"`` (L8-graph), ``"no_feedback"`` (C0), ``"accumulate"`` (C1) or ``"fresh_real"`` (C2).
        n_samples: ``M``, training pairs sampled per generation.
        n_audit: graphs per audit round.
        n_reference: graphs in the reference (generation 0's model).
        fresh_fraction: share of generation-0 pairs in the C2 training sample.
    """
    seed, n_generations, audit_every = _check_run(seed, n_generations, audit_every)
    n_audit = _check_int(n_audit, "n_audit", 1)
    n_reference = _check_int(n_reference, "n_reference", 1)
    params = graphs_params(seed, n_generations, workflow=workflow, n_samples=n_samples, fresh_fraction=fresh_fraction)
    truth = graphs_truth(params)
    generations = audited_generations(n_generations, audit_every)
    rounds = [sample_graphs(params, g, n_audit, _audit_stream(seed, g)) for g in generations.tolist()]
    reference = sample_graphs(params, 0, n_reference, _stream(seed, _STREAM_REFERENCE))
    onset = first_generation(truth["families"] <= ONSET_FRACTION * truth["families"][0])
    run = dict(n_samples=n_samples, n_audit=n_audit, n_reference=n_reference, workflow=workflow,
               fresh_fraction=fresh_fraction, n_generations=n_generations, audit_every=audit_every)
    return _trace("L8-graph", workflow, "graph", seed, reference, rounds, generations, onset, truth, run)


def graphs_jsonl(graphs: Iterable[dict]) -> bytes:
    r"""Graph objects as ``.jsonl`` bytes: one compact JSON object per line (keys in their order), UTF-8.

    >>> graphs_jsonl([{"edges": [[0, 1]]}])
    b'{"edges":[[0,1]]}\n'
    """
    return b"".join(json.dumps(g, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n" for g in graphs)


# --- the oracle (monitor.meta_evaluation.oracle) ------------------------------------------------------------------


def size_log_probabilities(n: int, means: np.ndarray, sds: np.ndarray) -> np.ndarray:
    r"""``[4]`` :math:`\log P(n \mid k)` of a size :math:`n = \operatorname{clip}(\operatorname{round}(z), 3, 64)`,
    :math:`z \sim \mathcal N(\mu_k, \sigma_k^2)`, per family: the mass of :math:`[n - \tfrac12, n + \tfrac12)`, open
    below at 3 and above at 64; a point mass at :math:`\operatorname{clip}(\operatorname{round}(\mu_k))` where
    :math:`\sigma_k = 0`.

    >>> log_p = size_log_probabilities(10, np.array([10.0, 3.0, 64.0, 10.0]), np.array([0.0, 0.0, 1.0, 1e-9]))
    >>> np.exp(log_p).round(4).tolist()
    [1.0, 0.0, 0.0, 1.0]
    """
    means, sds = np.asarray(means, dtype=float), np.asarray(sds, dtype=float)
    safe = np.where(sds > 0, sds, 1.0)
    lo = np.full(means.shape, -np.inf) if n <= MIN_NODES else (n - 0.5 - means) / safe
    hi = np.full(means.shape, np.inf) if n >= MAX_NODES else (n + 0.5 - means) / safe
    upper = lo > 0  # the lower tail of the mirrored interval: far tails do not round to 0
    a, b = np.where(upper, -hi, lo), np.where(upper, -lo, hi)
    log_a, log_b = special.log_ndtr(a), special.log_ndtr(b)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = log_b + np.log1p(-np.exp(log_a - log_b))
        point = np.log((np.clip(np.round(means), MIN_NODES, MAX_NODES) == n).astype(float))
    return np.where(sds > 0, spread, point)


def structure_log_probabilities(obj: dict) -> tuple[int, np.ndarray]:
    r"""``(n, [4])``: a graph object's size and :math:`\log P(G \mid k, n)` per family (:data:`FAMILIES`).

    A uniform labelled tree has probability :math:`n^{-(n-2)}` (Cayley; the Prüfer code is uniform), the cycle and
    the grid of ``n`` nodes probability 1 (and every other graph 0), a two-block graph
    :math:`\prod_{u<v} p_{uv}^{e_{uv}}(1 - p_{uv})^{1 - e_{uv}}`. ``n``: the ``"nodes"`` listed, else one more
    than the largest endpoint (:func:`graph_object` lists nodes whenever one is isolated).

    >>> n, log_p = structure_log_probabilities(graph_object(3, _cycle(3)))  # the triangle: a cycle, no tree
    >>> n, np.exp(log_p).round(6).tolist()  # community: 2 pairs across (0.08), 1 within (0.5)
    (3, [0.0, 1.0, 0.0, 0.0032])
    """
    edges = {(int(u), int(v)) for u, v in obj["edges"]}
    n = len(obj["nodes"]) if "nodes" in obj else max(max(e) for e in edges) + 1
    out = np.full(len(FAMILIES), -np.inf)
    if len(edges) == n - 1:  # a tree iff n - 1 edges join all n nodes
        parent = list(range(n))

        def root(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for u, v in edges:
            parent[root(u)] = root(v)
        if len({root(x) for x in range(n)}) == 1:
            out[0] = -(n - 2) * np.log(n)
    for k, expected in ((1, _cycle(n)), (2, _grid(n))):
        if edges == {(min(u, v), max(u, v)) for u, v in expected}:
            out[k] = 0.0
    block = np.arange(n) >= n // 2
    p = np.where(block[:, None] == block[None, :], P_IN, P_OUT)
    u, v = np.triu_indices(n, k=1)
    present = np.zeros((n, n), dtype=bool)
    for a, b in edges:
        present[a, b] = True
    out[3] = float(np.where(present[u, v], np.log(p[u, v]), np.log1p(-p[u, v])).sum())
    return n, out


def graph_log_probabilities(graphs: list[dict], weights: np.ndarray, means: np.ndarray,
                            sds: np.ndarray) -> np.ndarray:
    r"""``[n]`` exact :math:`\log p(G) = \log \sum_k \pi_k P(n \mid k) P(G \mid k, n)` of graph objects under one
    generation's model (a family of weight 0 contributes nothing).

    >>> w0, m0, s0 = np.array(INITIAL_WEIGHTS), np.array(INITIAL_MEANS), np.array(INITIAL_SDS)
    >>> one = graph_log_probabilities([graph_object(4, _cycle(4))], np.eye(4)[1], m0, s0)[0]  # cycles only
    >>> bool(np.isclose(one, size_log_probabilities(4, m0, s0)[1]))
    True
    """
    out = np.empty(len(graphs))
    with np.errstate(divide="ignore"):
        log_w = np.log(np.asarray(weights, dtype=float))
    for i, obj in enumerate(graphs):
        n, structure = structure_log_probabilities(obj)
        out[i] = special.logsumexp(log_w + size_log_probabilities(n, means, sds) + structure)
    return out


def graphs_log_evalues(trace: LoopTrace) -> np.ndarray:
    r"""``[R]`` the oracle's log e-values of an L8-graph trace or control: per round,
    :math:`\sum_G [\log p_g(G) - \log p_0(G)]` with the exact graph probabilities of
    :func:`graph_log_probabilities`, from the true parameters regenerated from the seed (:func:`graphs_params`).

    Generation 0 gives every (family, size) positive probability, so :math:`p_0(G) > 0` wherever
    :math:`p_g(G) > 0`; a graph impossible under its own generation's model means the trace is not this
    loop's (ValueError).

    >>> graphs_log_evalues(CONTROLS["C0-L8-graph"](0, 2, n_audit=4, n_reference=4)).tolist()
    [0.0, 0.0, 0.0]
    """
    params, seed = trace.params, trace.seed
    model = graphs_params(seed, params["n_generations"], workflow=params["workflow"], n_samples=params["n_samples"],
                          fresh_fraction=params["fresh_fraction"])
    at = [tuple(model[key][g] for key in ("weights", "means", "sds")) for g in range(params["n_generations"] + 1)]
    out = np.zeros(len(trace.rounds))
    for r, (g, graphs) in enumerate(zip(trace.generations.tolist(), trace.rounds)):
        if all(np.array_equal(x, y) for x, y in zip(at[g], at[0])):
            continue  # generation 0's model: exactly 0
        log_g = graph_log_probabilities(graphs, *at[g])
        if np.isneginf(log_g).any():
            raise ValueError(f"trace: {trace.name} seed {seed} round {r} has a graph impossible under its own model")
        out[r] = float(np.sum(log_g - graph_log_probabilities(graphs, *at[0])))
    return out


# --- registry (the meta-evaluation's loop L8 and its controls) ---------------------------------------------------

SUGGESTED_SCHEDULE = (30, 1)
"""Suggested ``(n_generations, audit_every)`` at the default sizes: 31 audited rounds, onset at generation 3-18
(seeds 0-29)."""

QUICK_SCHEDULE = (12, 2)
"""Quick mode: 7 audited rounds."""

LOOPS: dict[str, Callable[..., LoopTrace]] = {"L8-graph": graphs_loop}
"""The collapse loop by id, called as ``fn(seed, n_generations, audit_every=1, **overrides)``."""

CONTROLS: dict[str, Callable[..., LoopTrace]] = {
    f"{control}-L8-graph": functools.partial(graphs_loop, workflow=workflow)
    for control, workflow in CONTROL_WORKFLOWS.items()
}
"""Controls by id (``C0-L8-graph``, ``C1-...``, ``C2-...``), called like :data:`LOOPS`."""
