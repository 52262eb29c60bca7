"""``load_graphs``: graph rounds from JSONL edge lists or node-link JSON, seeded subsampling, one-line refusals;
``load_graph_constraints``: the TOML rules file."""

from __future__ import annotations

import hashlib
import json

import networkx as nx
import numpy as np
import pytest

from metrics_core.graphs import GraphConstraints, valid_rule_rate
from monitor.errors import InputError
from monitor.inputs.graphs import graph_text, graphs_from_objects, load_graph_constraints, load_graphs

REPO_DATA = __import__("pathlib").Path(__file__).resolve().parents[2] / "monitor" / "data"


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_edge_lists_and_node_link_json_load_as_networkx_graphs(tmp_path):
    triangle = nx.relabel_nodes(nx.cycle_graph(3), {0: "a", 1: "b", 2: "c"})
    node_link = nx.node_link_data(nx.DiGraph([(1, 2), (2, 3)]), edges="links")
    path = _write(tmp_path / "round.jsonl", [
        '{"edges": [[0, 1], [1, 2], [1, 0]], "nodes": [0, 1, 2, 3]}',
        "",
        json.dumps(node_link),
        json.dumps(nx.node_link_data(triangle)),  # networkx 3.6 writes the edges under "edges"
        '{"edges": [{"source": "x", "target": 7, "weight": 2.5}], "directed": null, "multigraph": false}',
        '{"edges": [], "nodes": [{"id": 5, "label": "lonely"}]}',
    ])
    loaded = load_graphs(path, "round", 2)
    assert len(loaded) == loaded.n_used == loaded.n_total == 5
    g0, g1, g2, g3, g4 = loaded.graphs
    assert type(g0) is nx.Graph and sorted(g0.edges) == [(0, 1), (1, 2)] and 3 in g0  # [1, 0] repeats [0, 1]
    assert type(g1) is nx.DiGraph and sorted(g1.edges) == [(1, 2), (2, 3)]
    assert nx.utils.graphs_equal(g2, triangle)
    assert sorted(g3.edges, key=str) == [("x", 7)] and set(g3.nodes) == {"x", 7}
    assert list(g4.nodes) == [5] and g4.number_of_edges() == 0
    assert all(nx.is_frozen(g) for g in loaded.graphs)
    assert loaded.texts == ["0-1\n1-2\n3", "1->2\n2->3", "a-b\na-c\nb-c", "7-x", "5"]
    assert loaded.fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.modality == "graph"


def test_directed_edge_pairs_are_two_edges_and_ids_keep_their_type(tmp_path):
    path = _write(tmp_path / "r.jsonl", ['{"edges": [[1, 2], [2, 1], ["1", 2]], "directed": true}'])
    (g,) = load_graphs(path, "round", 1).graphs
    assert set(g.edges) == {(1, 2), ("1", 2), (2, 1)} and g.number_of_nodes() == 3
    assert graph_text(g) == "1->2\n1->2\n2->1"


def test_max_samples_keeps_a_seeded_choice_in_file_order_and_pseudo_rounds_take_rows(tmp_path):
    path = _write(tmp_path / "pool.jsonl", [json.dumps({"edges": [[0, i + 1]]}) for i in range(40)])
    loaded = load_graphs(path, "round", 1, max_samples=10, seed=4)
    picked = [max(g.nodes) - 1 for g in loaded.graphs]
    assert len(picked) == 10 and picked == sorted(picked) and loaded.n_total == 40
    again = load_graphs(path, "round", 1, max_samples=10, seed=4)
    assert [sorted(g.edges) for g in again.graphs] == [sorted(g.edges) for g in loaded.graphs]
    other = load_graphs(path, "round", 1, max_samples=10, seed=5)
    assert [max(g.nodes) for g in other.graphs] != [max(g.nodes) for g in loaded.graphs]
    whole = load_graphs(path, "pool")
    rows = whole.take_rows(np.array([3, 0, 7]))
    assert [sorted(g.edges) for g in rows.graphs] == [[(0, 4)], [(0, 1)], [(0, 8)]]
    assert len(rows) == rows.n_total == 3 and rows.fingerprint == whole.fingerprint and rows.path == whole.path


ROUND_ERRORS = [
    (['{"edges": [[0, 1]]'], "line 1: not valid JSON: Expecting ',' delimiter at column 19"),
    (['[[0, 1]]'], "line 1: expected a JSON object, got an array"),
    (['{"nodes": [0, 1]}'], "line 1: no field 'edges' or 'links' (fields: nodes)"),
    (['{}'], "line 1: no field 'edges' or 'links' (the object is empty)"),
    (['{"edges": [], "links": []}'], "line 1: fields 'edges' and 'links' both given; a graph has one edge array"),
    (['{"edges": {"0": 1}}'], "line 1: field 'edges': expected an array of edges, got an object ({\"0\": 1})"),
    (['{"edges": [[0, 1]]}', '{"edges": [[0, 1, 2]]}'],
     "line 2: edges[0]: expected a 2-item array [source, target] or an object with 'source' and 'target', got an "
     "array of 3 items"),
    (['{"edges": [[0, 1], 5]}'],
     "line 1: edges[1]: expected a 2-item array [source, target] or an object with 'source' and 'target', got a "
     "number (5)"),
    (['{"links": [{"source": 0, "to": 1}]}'], "line 1: links[0]: no field 'target' (fields: source, to)"),
    (['{"links": [{}]}'], "line 1: links[0]: no field 'source' (the object is empty)"),
    (['{"edges": [[0, 1.5]]}'], "line 1: edges[0][1]: expected a node id (a string or an integer), got a number (1.5)"),
    (['{"edges": [[true, 1]]}'], "line 1: edges[0][0]: expected a node id (a string or an integer), got a boolean "
                                 "(true)"),
    (['{"edges": [[null, 1]]}'], "line 1: edges[0][0]: expected a node id (a string or an integer), got null"),
    (['{"links": [{"source": [0], "target": 1}]}'],
     "line 1: links[0]: field 'source': expected a node id (a string or an integer), got an array ([0])"),
    (['{"edges": [], "nodes": [{"name": "a"}]}'], "line 1: nodes[0]: no field 'id' (fields: name)"),
    (['{"edges": [], "nodes": [{"id": 2.0}]}'],
     "line 1: nodes[0]: field 'id': expected a node id (a string or an integer), got a number (2.0)"),
    (['{"edges": [], "nodes": [0, [1]]}'],
     "line 1: nodes[1]: expected a node id (a string or an integer), got an array ([1])"),
    (['{"edges": [], "nodes": "abc"}'],
     "line 1: field 'nodes': expected an array of node ids or of objects with an 'id', got a string (\"abc\")"),
    (['{"edges": [], "nodes": [0, 1, 0]}'], "line 1: nodes[2]: node 0 is declared twice"),
    (['{"edges": [[0, 1], [1, "2"]], "nodes": [0, 1, 2]}'], "line 1: edges[1]: node '2' is not declared in 'nodes'"),
    (['{"edges": [[0, 1], [3, 3]]}'], "line 1: edges[1]: a self-loop on node 3; graphs are simple (no self-loops)"),
    (['{"edges": []}'], "line 1: an empty graph (no nodes): give edges, or declare isolated nodes in 'nodes'"),
    (['{"edges": [], "nodes": []}'], "line 1: an empty graph (no nodes): give edges, or declare isolated nodes in "
                                     "'nodes'"),
    (['{"edges": [[0, 1]], "directed": "yes"}'], "line 1: field 'directed': expected true, false or null, got a "
                                                 "string (\"yes\")"),
    (['{"edges": [[0, 1]], "multigraph": true}'],
     "line 1: field 'multigraph': multigraphs are not supported; expected false or null, got true"),
    ([], "empty: no graphs"),
    (['', '   '], "empty: no graphs"),
]


@pytest.mark.parametrize("lines, message", ROUND_ERRORS)
def test_each_bad_input_is_one_line_naming_file_role_round_line_and_field(tmp_path, lines, message):
    path = _write(tmp_path / "round.jsonl", lines)
    with pytest.raises(InputError) as info:
        load_graphs(path, "round", 3)
    assert str(info.value) == f"{path} (round, round 3): {message}"
    assert "\n" not in str(info.value)


def test_files_a_graph_round_cannot_be(tmp_path):
    txt = _write(tmp_path / "round.txt", ['{"edges": [[0, 1]]}'])
    with pytest.raises(InputError) as info:
        load_graphs(txt, "round", 1)
    assert str(info.value) == f"{txt} (round, round 1): modality graph cannot read a .txt file (graph reads .jsonl)"
    with pytest.raises(InputError) as info:
        load_graphs(tmp_path / "missing.jsonl", "reference")
    assert str(info.value) == f"{tmp_path / 'missing.jsonl'} (reference): file not found"
    long_line = _write(tmp_path / "long.jsonl", ['{"edges": [' + ", ".join(["[0, 1]"] * 50) + "]}"])
    with pytest.raises(InputError, match=r"line 1: longer than the limit of 100 bytes"):
        load_graphs(long_line, "round", 1, max_line_bytes=100)
    bad_utf8 = tmp_path / "bad.jsonl"
    bad_utf8.write_bytes(b'{"edges": [["\xff", 1]]}\n')
    with pytest.raises(InputError, match=r"line 1: not valid UTF-8 at byte offset 13"):
        load_graphs(bad_utf8, "round", 1)
    with pytest.raises(ValueError, match="max_samples"):
        load_graphs(long_line, "round", 1, max_samples=0)


def test_in_memory_graphs_are_checked_like_lines_and_fingerprinted_by_content():
    objects = [{"edges": [[0, 1], [1, 2]]}, {"nodes": [{"id": "a"}], "links": [], "directed": True}]
    loaded = graphs_from_objects(objects, "generated")
    assert [type(g).__name__ for g in loaded.graphs] == ["Graph", "DiGraph"] and loaded.n_total == 2
    assert loaded.fingerprint == graphs_from_objects([dict(o) for o in objects], "again").fingerprint
    assert loaded.fingerprint != graphs_from_objects(objects[::-1], "generated").fingerprint
    assert graphs_from_objects([{"edges": [(np.int64(0), 1)]}], "g").graphs[0].number_of_edges() == 1
    with pytest.raises(InputError) as info:
        graphs_from_objects([objects[0], {"edges": [[2, 2]]}], "generated")
    assert str(info.value) == "generated: line 2: edges[0]: a self-loop on node 2; graphs are simple (no self-loops)"
    with pytest.raises(InputError, match="^generated: line 1: expected a JSON object, got a string"):
        graphs_from_objects(["0-1"], "generated")
    with pytest.raises(InputError, match="^generated: line 1: edges\\[0\\]\\[0\\]: expected a node id .* got a "
                                         "number \\(0.5\\)$"):
        graphs_from_objects([{"edges": [[0.5, 1]]}], "generated")
    with pytest.raises(InputError, match="^generated: empty: no graphs$"):
        graphs_from_objects([], "generated")


# ---------------------------------------------------------------- the constraints file


def test_constraints_file_reads_every_key(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text("[graph]\nconnected = true\nacyclic = false\nmax_degree = 4\nmin_nodes = 3\nmax_nodes = 40\n"
                    "min_edges = 2\nmax_edges = 80\n", encoding="utf-8")
    assert load_graph_constraints(path) == GraphConstraints(connected=True, acyclic=False, max_degree=4, min_nodes=3,
                                                            max_nodes=40, min_edges=2, max_edges=80)
    path.write_text("[graph]\n", encoding="utf-8")
    assert load_graph_constraints(path) == GraphConstraints()


def test_the_shipped_constraints_file_loads_and_applies():
    rules = load_graph_constraints(REPO_DATA / "graph_constraints.toml")
    assert rules.rules() and rules.connected is True
    assert valid_rule_rate([nx.path_graph(6), nx.empty_graph(6)], rules).value == 0.5


CONSTRAINT_ERRORS = [
    ("[graph]\nmax_degre = 4\n", "[graph]: unknown key 'max_degre' (known: connected, acyclic, max_degree, "
                                 "min_nodes, max_nodes, min_edges, max_edges)"),
    ("[graph]\nconnected = 1\n", "[graph]: key 'connected': expected true or false, got a number (1)"),
    ("[graph]\nacyclic = \"yes\"\n", "[graph]: key 'acyclic': expected true or false, got a string (\"yes\")"),
    ("[graph]\nmax_degree = \"4\"\n", "[graph]: key 'max_degree': expected an integer >= 0, got a string (\"4\")"),
    ("[graph]\nmax_nodes = 4.0\n", "[graph]: key 'max_nodes': expected an integer >= 0, got a number (4.0)"),
    ("[graph]\nmin_edges = true\n", "[graph]: key 'min_edges': expected an integer >= 0, got a boolean (true)"),
    ("[graph]\nmin_nodes = -1\n", "[graph]: key 'min_nodes': expected an integer >= 0, got a number (-1)"),
    ("[graph]\nmax_edges = [1]\n", "[graph]: key 'max_edges': expected an integer >= 0, got an array"),
    ("[graph]\nmin_nodes = 5\nmax_nodes = 4\n", "[graph]: key 'min_nodes': expected at most max_nodes = 4, got 5"),
    ("[graph]\nmin_edges = 9\nmax_edges = 1\n", "[graph]: key 'min_edges': expected at most max_edges = 1, got 9"),
    ("[graph]\nconnected = true\n[extra]\nx = 1\n",
     "unknown table or key 'extra'; the file holds only [graph]"),
    ("strict = true\n[graph]\n", "unknown table or key 'strict'; the file holds only [graph]"),
    ("graph = 3\n", "'graph': expected a table [graph], got a number (3)"),
    ("[rules]\nconnected = true\n", "no [graph] table (found: rules)"),
    ("", "no [graph] table (the file is empty)"),
    ("[graph\nconnected = true\n", "not valid TOML: Expected ']' at the end of a table declaration (at line 1, "
                                   "column 7)"),
]


@pytest.mark.parametrize("text, message", CONSTRAINT_ERRORS)
def test_each_bad_constraints_file_is_one_line_naming_file_and_key(tmp_path, text, message):
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_graph_constraints(path)
    assert str(info.value) == f"{path} (constraints): {message}"
    assert "\n" not in str(info.value)


def test_constraints_file_missing_or_not_utf8(tmp_path):
    with pytest.raises(InputError) as info:
        load_graph_constraints(tmp_path / "none.toml")
    assert str(info.value) == f"{tmp_path / 'none.toml'} (constraints): file not found"
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"[graph]\n# \xff\n")
    with pytest.raises(InputError) as info:
        load_graph_constraints(bad)
    assert str(info.value) == f"{bad} (constraints): not valid UTF-8 at byte 10"
