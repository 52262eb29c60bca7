r"""Graph rounds from ``.jsonl`` files (one graph per line, streamed, subsampled by graph, checked) and the graph
constraints file.

A graph is a JSON object in one of two forms:

* an edge list: ``{"edges": [[u, v], ...], "nodes": [...], "directed": false}``;
* node-link JSON as :func:`networkx.node_link_data` writes it: ``{"nodes": [{"id": u}, ...], "links": [{"source":
  u, "target": v}, ...], "directed": false, "multigraph": false, "graph": {}}`` (networkx >= 3.4 writes the
  edges under ``"edges"``; either name is read, never both in one graph).

Each item of the edge array is a 2-item array ``[source, target]`` or an object with ``source`` and ``target``
(other fields, such as weights, are not read); each item of the optional ``nodes`` array is a node id or an
object with an ``id`` (other fields not read). A node id is a string or an integer (``1`` and ``"1"`` are
different nodes). ``nodes`` is needed only for isolated nodes; when it is given, every edge's endpoints must be
declared in it. ``directed`` is ``true``, ``false`` or ``null``/absent (undirected), and ``multigraph``, when
present, ``false`` or ``null``. Refused: a self-loop (graphs are simple: the descriptors and the WL hashes of
:mod:`metrics_core.graphs` are defined for simple graphs, as in the graph-generation benchmarks), a node
declared twice, and a graph with no node. A repeated edge is the same edge (it is kept once); in a directed
graph ``[u, v]`` and ``[v, u]`` are two edges. Blank lines are skipped; the shared line rules are
:mod:`monitor.inputs.files`'.

Each failure is one line naming the file, role, round, line and field, for example
``r.jsonl (round, round 3): line 7: edges[2]: a self-loop on node 4; graphs are simple (no self-loops)``.

The constraints file (:func:`load_graph_constraints`) is TOML with one ``[graph]`` table holding any of the keys
of :class:`metrics_core.graphs.GraphConstraints`, e.g. ``monitor/data/graph_constraints.toml``.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

from monitor.errors import InputError
from monitor.inputs.files import (
    DEFAULT_MAX_LINE_BYTES,
    _check_max_line_bytes,
    _check_max_samples,
    _existing_file,
    _extension,
    _iter_lines,
    _listing,
    _one_line,
    _where,
    remembered,
    kept_items,
)
from monitor.inputs.records import _decode, _Number, _shown

GRAPH_EXTENSIONS = (".jsonl",)
_EDGE_FIELDS = ("edges", "links")
_EDGE_SHAPE = "a 2-item array [source, target] or an object with 'source' and 'target'"


@dataclass(frozen=True)
class LoadedGraphs:
    """The kept graphs of one file, in file order; ``n_total`` is all of them.

    ``graphs`` are frozen :class:`networkx.Graph` or :class:`networkx.DiGraph` objects (node ids as in the file;
    a loaded file may be shared between callers, so they cannot be changed in place).
    """

    path: Path
    graphs: tuple
    n_total: int
    fingerprint: str
    modality: str = "graph"

    def __len__(self) -> int:
        return len(self.graphs)

    @property
    def n_used(self) -> int:
        return len(self.graphs)

    @property
    def texts(self) -> list[str]:
        """What a graph is embedded as by the text featurizer: its canonical edge list, one edge a line.

        An edge is ``u-v`` (endpoints in string order) in an undirected graph and ``u->v`` in a directed one;
        the lines are sorted as strings, and each isolated node adds a line of its own id. Node ids are written
        as text (``1`` and ``"1"`` look alike). The view depends on the node ids, not only on the structure: it
        is a text view of the file, not an isomorphism invariant (that is :func:`metrics_core.graphs.wl_hash`).
        """
        return [graph_text(g) for g in self.graphs]

    def take_rows(self, indices) -> "LoadedGraphs":
        """The graphs at ``indices``, in that order (a pool's pseudo-round)."""
        idx = [int(i) for i in np.asarray(indices).ravel()]
        return LoadedGraphs(self.path, tuple(self.graphs[i] for i in idx), len(idx), self.fingerprint)


def graph_text(graph) -> str:
    """The canonical text of a graph (:attr:`LoadedGraphs.texts`).

    >>> graph_text(nx.Graph([(2, 1), (1, 3)])), graph_text(nx.DiGraph([("b", "a")]))
    ('1-2\\n1-3', 'b->a')
    >>> g = nx.Graph([(0, 1)]); g.add_node(5); graph_text(g)
    '0-1\\n5'
    """
    lines = []
    for u, v in graph.edges:
        a, b = str(u), str(v)
        lines.append(f"{a}->{b}" if graph.is_directed() else f"{min(a, b)}-{max(a, b)}")
    lines.extend(str(n) for n in graph.nodes if graph.degree(n) == 0)
    return "\n".join(sorted(lines))


def _node_id(value, at: str):
    if isinstance(value, _Number):  # a JSON number, kept as its text
        try:
            return int(str(value))
        except ValueError:  # 1.5, 1e3, NaN
            pass
    elif isinstance(value, str) or (isinstance(value, (int, np.integer)) and not isinstance(value, bool)):
        return value if isinstance(value, str) else int(value)
    raise InputError(f"{at}: expected a node id (a string or an integer), got {_shown(value)}")


def _endpoints(edge, at: str) -> tuple:
    if isinstance(edge, (list, tuple)):
        if len(edge) != 2:
            raise InputError(f"{at}: expected {_EDGE_SHAPE}, got an array of {len(edge)} items")
        return _node_id(edge[0], f"{at}[0]"), _node_id(edge[1], f"{at}[1]")
    if isinstance(edge, dict):
        for name in ("source", "target"):
            if name not in edge:
                fields = f"fields: {_listing(edge)}" if edge else "the object is empty"
                raise InputError(f"{at}: no field {name!r} ({fields})")
        return _node_id(edge["source"], f"{at}: field 'source'"), _node_id(edge["target"], f"{at}: field 'target'")
    raise InputError(f"{at}: expected {_EDGE_SHAPE}, got {_shown(edge)}")


def _declared_nodes(nodes, at: str) -> list:
    if not isinstance(nodes, list):
        raise InputError(f"{at}: field 'nodes': expected an array of node ids or of objects with an 'id', got "
                         f"{_shown(nodes)}")
    out, seen = [], set()
    for i, item in enumerate(nodes):
        if isinstance(item, dict):
            if "id" not in item:
                fields = f"fields: {_listing(item)}" if item else "the object is empty"
                raise InputError(f"{at}: nodes[{i}]: no field 'id' ({fields})")
            node = _node_id(item["id"], f"{at}: nodes[{i}]: field 'id'")
        else:
            node = _node_id(item, f"{at}: nodes[{i}]")
        if node in seen:
            raise InputError(f"{at}: nodes[{i}]: node {node!r} is declared twice")
        seen.add(node)
        out.append(node)
    return out


def _flag(obj: dict, name: str, at: str) -> bool:
    value = obj.get(name)
    if value is not None and not isinstance(value, bool):
        raise InputError(f"{at}: field {name!r}: expected true, false or null, got {_shown(value)}")
    return bool(value)


def _graph_object(obj: dict, number: int, where: str) -> nx.Graph:
    at = f"{where}: line {number}"
    directed = _flag(obj, "directed", at)
    if _flag(obj, "multigraph", at):
        raise InputError(f"{at}: field 'multigraph': multigraphs are not supported; expected false or null, got true")
    present = [name for name in _EDGE_FIELDS if name in obj]
    if not present:
        fields = f"fields: {_listing(obj)}" if obj else "the object is empty"
        raise InputError(f"{at}: no field 'edges' or 'links' ({fields})")
    if len(present) == 2:
        raise InputError(f"{at}: fields 'edges' and 'links' both given; a graph has one edge array")
    (key,) = present
    edges = obj[key]
    if not isinstance(edges, list):
        raise InputError(f"{at}: field {key!r}: expected an array of edges, got {_shown(edges)}")
    g = nx.DiGraph() if directed else nx.Graph()
    declared = None
    if obj.get("nodes") is not None:
        declared = _declared_nodes(obj["nodes"], at)
        g.add_nodes_from(declared)
        declared = set(declared)
    for j, edge in enumerate(edges):
        edge_at = f"{at}: {key}[{j}]"
        u, v = _endpoints(edge, edge_at)
        if declared is not None:
            for node in (u, v):
                if node not in declared:
                    raise InputError(f"{edge_at}: node {node!r} is not declared in 'nodes'")
        if u == v:
            raise InputError(f"{edge_at}: a self-loop on node {u!r}; graphs are simple (no self-loops)")
        g.add_edge(u, v)
    if g.number_of_nodes() == 0:
        raise InputError(f"{at}: an empty graph (no nodes): give edges, or declare isolated nodes in 'nodes'")
    return nx.freeze(g)


def load_graphs(
    path: str | Path,
    role: str,
    round_number: int | None = None,
    *,
    max_samples: int | None = None,
    seed: int = 0,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> LoadedGraphs:
    """Stream the graphs of a ``.jsonl`` file.

    Args:
        path: the file (``.jsonl``).
        role: ``"reference"``, ``"round"`` or ``"pool"``, for messages.
        round_number: the round, for messages.
        max_samples: keep a seeded uniform choice of this many graphs, in file order. ``None`` keeps all.
        seed: the choice's seed.
        max_line_bytes: refuse any line longer than this.

    Raises:
        InputError: one line naming the file, role, round, line and field: a missing or non-``.jsonl`` file, a
            line over the limit, bad UTF-8, bad JSON, no edge array, a bad edge or node id, an undeclared node, a
            self-loop, a node declared twice, an empty graph, no graphs.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "r.jsonl")
        >>> _ = open(p, "w").write('{"edges": [[0, 1], [1, 2]], "nodes": [0, 1, 2, 3]}\\n\\n'
        ...                        '{"nodes": [{"id": "a"}, {"id": "b"}], "links": [{"source": "a", "target": "b"}], '
        ...                        '"directed": true}\\n')
        >>> loaded = load_graphs(p, "round", 1)
        >>> [(type(g).__name__, sorted(g.nodes, key=str), sorted(g.edges)) for g in loaded.graphs]
        [('Graph', [0, 1, 2, 3], [(0, 1), (1, 2)]), ('DiGraph', ['a', 'b'], [('a', 'b')])]
        >>> loaded.texts
        ['0-1\\n1-2\\n3', 'a->b']
        >>> _ = open(p, "w").write('{"edges": [[0, 0]]}\\n')
        >>> load_graphs(p, "round", 2)
        Traceback (most recent call last):
        ...
        monitor.errors.InputError: ...r.jsonl (round, round 2): line 1: edges[0]: a self-loop on node 0; graphs are \
simple (no self-loops)
    """
    _check_max_samples(max_samples)
    _check_max_line_bytes(max_line_bytes)
    p = Path(path)
    where = _where(p, role, round_number)
    _existing_file(p, where)
    ext = _extension(p, where)
    if ext not in GRAPH_EXTENSIONS:
        raise InputError(f"{where}: modality graph cannot read a {ext} file (graph reads .jsonl)")
    return remembered("graph", p, (max_samples, seed, max_line_bytes),
                      lambda: _read_graphs(p, where, max_samples, seed, max_line_bytes))


def _read_graphs(p: Path, where: str, max_samples, seed: int, max_line_bytes: int) -> LoadedGraphs:
    h = hashlib.sha256()
    graphs: list = []
    for first_line, lines in _iter_lines(p, where, max_line_bytes, h):
        for i, line in enumerate(lines):
            if line.strip():
                number = first_line + i
                graphs.append(_graph_object(_decode(line, number, where), number, where))
    if not graphs:
        raise InputError(f"{where}: empty: no graphs")
    n_total = len(graphs)
    keep = kept_items(n_total, max_samples, seed)
    if keep is not None:
        graphs = [graphs[int(i)] for i in keep]
    return LoadedGraphs(p, tuple(graphs), n_total=n_total, fingerprint=h.hexdigest())


def graphs_from_objects(objects: list, where: str, *, path: str | Path = "<memory>") -> LoadedGraphs:
    """Graphs from already-parsed JSON objects (a generator's output), checked like a file's lines.

    ``where`` names them in errors, and the object's position (1-based) stands for its line. The fingerprint is
    the sha256 of their JSONL text (one compact, key-sorted object per line).

    >>> loaded = graphs_from_objects([{"edges": [[0, 1]]}, {"edges": [], "nodes": ["x"]}], "generated")
    >>> [g.number_of_nodes() for g in loaded.graphs], len(loaded.fingerprint)
    ([2, 1], 64)
    >>> graphs_from_objects([{"nodes": [0]}], "generated")
    Traceback (most recent call last):
    ...
    monitor.errors.InputError: generated: line 1: no field 'edges' or 'links' (fields: nodes)
    """
    h = hashlib.sha256()
    graphs = []
    for number, obj in enumerate(objects, start=1):
        if not isinstance(obj, dict):
            raise InputError(f"{where}: line {number}: expected a JSON object, got {_shown(obj)}")
        graphs.append(_graph_object(obj, number, where))
        h.update(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default).encode() + b"\n")
    if not graphs:
        raise InputError(f"{where}: empty: no graphs")
    return LoadedGraphs(Path(path), tuple(graphs), n_total=len(graphs), fingerprint=h.hexdigest())


def _json_default(value):
    """numpy scalars (a generator's ids) as Python numbers; anything else unreadable by JSON as its repr."""
    return value.item() if isinstance(value, np.generic) else repr(value)


# --------------------------------------------------------------------------
# The constraints file
# --------------------------------------------------------------------------

CONSTRAINTS_TABLE = "graph"
_FLAG_KEYS = ("connected", "acyclic")


def _toml_shown(value) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({json.dumps(value, ensure_ascii=False)[:40]})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def load_graph_constraints(path: str | Path):
    """Read a TOML constraints file: a ``[graph]`` table of :class:`metrics_core.graphs.GraphConstraints` keys.

    ``connected`` and ``acyclic`` are booleans (``true`` requires the property, ``false`` is no rule);
    ``max_degree``, ``min_nodes``, ``max_nodes``, ``min_edges`` and ``max_edges`` integers >= 0; a key left out is
    no rule. Nothing else may be in the file.

    Raises:
        InputError: one line naming the file and the key: a missing file, bad UTF-8 or TOML, no ``[graph]``
            table, another table or key, an unknown key, a value of the wrong type, a negative count, a minimum
            above its maximum.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "c.toml")
        >>> _ = open(p, "w").write('[graph]\\nconnected = true\\nmax_degree = 4\\n')
        >>> load_graph_constraints(p)
        GraphConstraints(connected=True, acyclic=None, max_degree=4, min_nodes=None, max_nodes=None, \
min_edges=None, max_edges=None)
        >>> _ = open(p, "w").write('[graph]\\nmax_degre = 4\\n')
        >>> load_graph_constraints(p)
        Traceback (most recent call last):
        ...
        monitor.errors.InputError: ...c.toml (constraints): [graph]: unknown key 'max_degre' (known: connected, \
acyclic, max_degree, min_nodes, max_nodes, min_edges, max_edges)
    """
    from metrics_core.graphs import GraphConstraints
    from metrics_core.graphs.validity import FIELDS

    p = Path(path)
    where = _where(p, "constraints", None)
    _existing_file(p, where)
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(f"{where}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not valid UTF-8 at byte {exc.start}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{where}: not valid TOML: {_one_line(exc)}") from None
    if CONSTRAINTS_TABLE not in data:
        found = f"found: {_listing(data)}" if data else "the file is empty"
        raise InputError(f"{where}: no [{CONSTRAINTS_TABLE}] table ({found})")
    others = [k for k in data if k != CONSTRAINTS_TABLE]
    if others:
        raise InputError(f"{where}: unknown table or key {others[0]!r}; the file holds only [{CONSTRAINTS_TABLE}]")
    table = data[CONSTRAINTS_TABLE]
    if not isinstance(table, dict):
        raise InputError(f"{where}: {CONSTRAINTS_TABLE!r}: expected a table [{CONSTRAINTS_TABLE}], got "
                         f"{_toml_shown(table)}")
    at = f"{where}: [{CONSTRAINTS_TABLE}]"
    for key, value in table.items():
        if key not in FIELDS:
            raise InputError(f"{at}: unknown key {key!r} (known: {', '.join(FIELDS)})")
        if key in _FLAG_KEYS:
            if not isinstance(value, bool):
                raise InputError(f"{at}: key {key!r}: expected true or false, got {_toml_shown(value)}")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"{at}: key {key!r}: expected an integer >= 0, got {_toml_shown(value)}")
    for low, high in (("min_nodes", "max_nodes"), ("min_edges", "max_edges")):
        if low in table and high in table and table[low] > table[high]:
            raise InputError(f"{at}: key {low!r}: expected at most {high} = {table[high]}, got {table[low]}")
    return GraphConstraints(**table)
