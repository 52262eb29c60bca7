"""Tests for the L8-graph loop (meta_evaluation/loop_graphs.py) and its example (scripts/make_graph_example.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from metrics_core.graphs import GraphConstraints, uniqueness, valid_rule_rate
from monitor.inputs.graphs import graphs_from_objects, load_graph_constraints, load_graphs
from monitor.meta_evaluation import loop_graphs as G

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "monitor" / "data"
SMALL = dict(n_samples=16, n_audit=12, n_reference=10)


def _same_trace(a, b) -> bool:
    return (a.name == b.name and a.onset == b.onset and a.reference == b.reference and a.rounds == b.rounds
            and np.array_equal(a.generations, b.generations) and a.truth.keys() == b.truth.keys()
            and all(np.array_equal(a.truth[k], b.truth[k]) for k in a.truth))


# --------------------------------------------------------------------------
# The families, by hand
# --------------------------------------------------------------------------


def test_family_graphs_by_hand():
    assert G._cycle(4) == [(0, 1), (1, 2), (2, 3), (3, 0)]
    # 3 columns, 7 cells: rows (0 1 2) (3 4 5) (6)
    assert sorted(G._grid(7)) == [(0, 1), (0, 3), (1, 2), (1, 4), (2, 5), (3, 4), (3, 6), (4, 5)]
    # Prüfer code (3, 3, 4) on 5 nodes: leaves 0, 1 join 3, then 2 joins 4... the tree 0-3, 1-3, 3-4, 2-4
    tree = nx.Graph(G._tree(5, _FixedCode([3, 3, 4])))
    assert nx.utils.graphs_equal(tree, nx.from_prufer_sequence([3, 3, 4]))


class _FixedCode:
    """A stand-in generator whose integers() returns a fixed Prüfer code."""

    def __init__(self, code):
        self.code = np.array(code)

    def integers(self, low, high, size):
        assert size == len(self.code) and self.code.max() < high
        return self.code


def test_trees_are_uniform_labelled_trees_and_every_family_has_n_nodes():
    rng = np.random.default_rng(0)
    for n in (3, 4, 9, 20):
        t = nx.Graph(G._tree(n, rng))
        assert nx.is_tree(t) and t.number_of_nodes() == n
        assert nx.utils.graphs_equal(nx.Graph(G._tree(n, np.random.default_rng(n))),
                                     nx.from_prufer_sequence(np.random.default_rng(n).integers(0, n, n - 2).tolist()))
        assert nx.is_connected(nx.Graph(G._grid(n))) and nx.Graph(G._grid(n)).number_of_nodes() == n
        assert nx.Graph(G._cycle(n)).number_of_nodes() == n
    # community graphs: denser within blocks than across
    inside = across = 0
    for _ in range(50):
        for u, v in G._community(20, rng):
            same = (u >= 10) == (v >= 10)
            inside += same
            across += not same
    assert inside / (50 * 2 * 45) == pytest.approx(G.P_IN, abs=0.03)
    assert across / (50 * 100) == pytest.approx(G.P_OUT, abs=0.02)


def test_graph_objects_declare_nodes_only_when_one_is_isolated():
    assert G.graph_object(4, [(1, 0), (0, 1), (3, 2)]) == {"edges": [[0, 1], [2, 3]]}
    assert G.graph_object(3, [(0, 1)]) == {"edges": [[0, 1]], "nodes": [0, 1, 2]}
    loaded = graphs_from_objects([G.graph_object(3, [(0, 1)])], "g")
    assert loaded.graphs[0].number_of_nodes() == 3


def test_generation_zero_sizes_and_families_follow_the_parameters():
    params = G.graphs_params(0, 1, workflow="no_feedback")
    families, sizes = G._draw_pairs(params["weights"][0], params["means"][0], params["sds"][0], 20_000,
                                    np.random.default_rng(1))
    assert np.allclose(np.bincount(families) / 20_000, 0.25, atol=0.015)
    for k, (mu, sd) in enumerate(zip(G.INITIAL_MEANS, G.INITIAL_SDS)):
        assert sizes[families == k].mean() == pytest.approx(mu, abs=0.2)
        assert sizes[families == k].std() == pytest.approx(sd, abs=0.2)
    assert sizes.min() >= G.MIN_NODES and sizes.max() <= G.MAX_NODES


# --------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------


def test_refit_is_the_maximum_likelihood_fit_without_smoothing():
    previous = (np.full(4, 0.25), np.array(G.INITIAL_MEANS), np.array(G.INITIAL_SDS))
    families = np.array([0, 0, 0, 2])
    sizes = np.array([10, 12, 14, 7])
    weights, means, sds = G._refit(families, sizes, previous)
    assert weights.tolist() == [0.75, 0.0, 0.25, 0.0]
    assert means[0] == 12.0 and sds[0] == pytest.approx(np.sqrt(8 / 3)) and means[2] == 7.0 and sds[2] == 0.0
    assert means[1] == G.INITIAL_MEANS[1]  # a vanished family keeps its unused sizes


def test_same_seed_same_trace_and_seeds_differ():
    a, b = G.graphs_loop(3, 4, **SMALL), G.graphs_loop(3, 4, **SMALL)
    assert _same_trace(a, b)
    c = G.graphs_loop(4, 4, **SMALL)
    assert c.reference != a.reference and c.rounds[1] != a.rounds[1]
    assert not np.array_equal(c.truth["family_entropy"], a.truth["family_entropy"])


def test_trace_shape_and_graphs_parse():
    t = G.graphs_loop(0, 4, 2, **SMALL)
    assert (t.name, t.kind, t.modality, t.seed) == ("L8-graph", "collapse", "graph", 0)
    assert t.generations.tolist() == [0, 2, 4] and len(t.rounds) == 3
    assert set(t.truth) == {"family_entropy", "families", "size_sd"}
    assert all(v.shape == (5,) for v in t.truth.values())
    assert t.params["n_samples"] == 16 and t.params["workflow"] == "replace"
    for where, objects, size in [("reference", t.reference, 10)] + [(f"round {g}", r, 12)
                                                                   for g, r in zip(t.generations, t.rounds)]:
        loaded = graphs_from_objects(objects, where)
        assert len(loaded) == size
        assert all(G.MIN_NODES <= g.number_of_nodes() <= G.MAX_NODES for g in loaded.graphs)
        json.dumps(objects, allow_nan=False)


def test_audit_every_does_not_change_the_dynamics_or_the_audit_samples():
    a, b = G.graphs_loop(2, 6, 1, **SMALL), G.graphs_loop(2, 6, 3, **SMALL)
    assert all(np.array_equal(a.truth[k], b.truth[k]) for k in a.truth)
    assert a.reference == b.reference and a.rounds[3] == b.rounds[1] and a.rounds[6] == b.rounds[2]


@pytest.mark.parametrize("seed", range(5))
def test_onset_is_reached_at_the_defaults_and_the_truth_moves_as_documented(seed):
    t = G.graphs_loop(seed, n_audit=2, n_reference=2)
    assert t.params["n_samples"] == G.DEFAULT_N_SAMPLES == 16 and t.params["n_generations"] == 30
    assert t.onset == [6, 14, 17, 9, 6][seed]  # as the module docstring states
    families, H = t.truth["families"], t.truth["family_entropy"]
    assert families[0] == 4 and (np.diff(families) <= 0).all()  # a vanished family never comes back
    assert families[t.onset] <= 2 < families[t.onset - 1]
    assert H[0] == pytest.approx(np.log(4)) and (H[t.onset:] <= np.log(2) + 1e-12).all()
    assert H[-1] < 0.5 * H[0] and t.truth["size_sd"][-1] < t.truth["size_sd"][0]


def test_no_feedback_control_is_constant_and_has_no_onset():
    c0 = G.graphs_loop(0, 30, 10, workflow="no_feedback", n_audit=12, n_reference=10)
    assert (c0.name, c0.kind, c0.onset) == ("C0-L8-graph", "control", None)
    for values in c0.truth.values():
        assert np.all(values == values[0])
    params = G.graphs_params(0, 30, workflow="no_feedback")
    assert all(np.all(v == v[0]) for v in params.values())
    loop = G.graphs_loop(0, 30, 10, n_audit=12, n_reference=10)
    assert c0.reference == loop.reference and c0.rounds[0] == loop.rounds[0]  # generation 0 shared
    assert c0.rounds[1] != c0.rounds[0]  # a fresh draw every round


@pytest.mark.parametrize("workflow,control", [("accumulate", "C1"), ("fresh_real", "C2")])
def test_real_data_controls_keep_more_diversity(workflow, control):
    t = G.graphs_loop(0, 30, 30, workflow=workflow, n_audit=2, n_reference=2)
    assert (t.name, t.kind, t.onset) == (f"{control}-L8-graph", "control", None)
    assert (t.truth["families"] >= 3).all()
    assert t.truth["family_entropy"][-1] > G.graphs_truth(G.graphs_params(0, 30))["family_entropy"][-1]


def test_audited_rounds_lose_uniqueness_as_the_loop_collapses():
    t = G.graphs_loop(1, 30, 30, n_audit=150, n_reference=2)  # seed 1: two families left at generation 30
    first, last = (graphs_from_objects(r, "r").graphs for r in t.rounds)
    assert t.truth["families"][-1] <= 2
    assert uniqueness(list(last)).value < uniqueness(list(first)).value - 0.1


def test_graphs_jsonl_round_trips_through_the_loader(tmp_path):
    objects = G.graphs_loop(1, 1, **SMALL).rounds[1]
    data = G.graphs_jsonl(objects)
    lines = data.decode("utf-8").splitlines()
    assert len(lines) == len(objects) and data.endswith(b"\n") and b" " not in data
    assert [json.loads(line) for line in lines] == objects
    path = tmp_path / "round_1.jsonl"
    path.write_bytes(data)
    loaded = load_graphs(path, "round", 1)
    assert [sorted(g.edges) for g in loaded.graphs] == [sorted(g.edges) for g in graphs_from_objects(objects, "r").graphs]


@pytest.mark.parametrize("kwargs,match", [
    (dict(seed=-1), "seed"),
    (dict(n_generations=0), "n_generations"),
    (dict(audit_every=0), "audit_every"),
    (dict(workflow="bogus"), "workflow"),
    (dict(n_samples=0), "n_samples"),
    (dict(n_audit=0), "n_audit"),
    (dict(n_reference=1.5), "n_reference"),
    (dict(workflow="fresh_real", fresh_fraction=1.5), "fresh_fraction"),
])
def test_loop_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        G.graphs_loop(**(dict(seed=0, n_generations=2) | kwargs))


def test_registry_entries():
    assert set(G.LOOPS) == {"L8-graph"} and set(G.CONTROLS) == {"C0-L8-graph", "C1-L8-graph", "C2-L8-graph"}
    assert G.CONTROLS["C0-L8-graph"](0, 2, n_audit=2, n_reference=2).kind == "control"
    assert G.SUGGESTED_SCHEDULE == (30, 1) and G.QUICK_SCHEDULE == (12, 2)


# --------------------------------------------------------------------------
# The shipped example
# --------------------------------------------------------------------------


def _example_script():
    spec = importlib.util.spec_from_file_location("make_graph_example", REPO / "scripts" / "make_graph_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_example_is_what_the_script_writes(tmp_path, capsys):
    script = _example_script()
    assert script.main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"true onset: generation {script.EXPECTED_ONSET}" in out
    names = ["graph_reference.jsonl"] + [f"graph_rounds/round_{g}.jsonl" for g in range(script.N_GENERATIONS + 1)]
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.jsonl")) == sorted(names)
    total = 0
    for name in names:
        shipped = (DATA / name).read_bytes()
        assert shipped == (tmp_path / name).read_bytes(), name
        total += len(shipped)
    assert total < 200_000
    reference = load_graphs(DATA / "graph_reference.jsonl", "reference")
    assert len(reference) == script.N_REFERENCE
    last = load_graphs(DATA / "graph_rounds" / f"round_{script.N_GENERATIONS}.jsonl", "round", script.N_GENERATIONS)
    assert len(last) == script.N_ROUND
    rules = load_graph_constraints(DATA / "graph_constraints.toml")
    assert isinstance(rules, GraphConstraints)
    assert 0.5 < valid_rule_rate(list(reference.graphs), rules).value < 1.0  # the rules bite, but not on everything
