"""Input validation helpers shared by every metric.

Each helper raises ``ValueError`` whose message names the argument, what was
expected and what was received, so callers (the CLI, the flow) can prefix the
file and round and show it as one line.
"""

from __future__ import annotations

import math

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: torch is imported where a check needs it
    import torch

ArrayLike = "np.ndarray | torch.Tensor"


def _check_matrix_shape(shape: tuple, name: str, min_rows: int) -> None:
    """A 2-D, non-empty ``[N, D]`` shape with at least ``min_rows`` rows (arrays and tensors alike)."""
    if len(shape) != 2:
        raise ValueError(f"{name}: expected a 2-D array [N, D], got {len(shape)}-D with shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty array [N, D], got shape {shape}")
    if shape[0] < min_rows:
        raise ValueError(f"{name}: expected at least {min_rows} rows, got {shape[0]}")


def _check_embedding_array(x, name: str, *, min_rows: int = 1) -> np.ndarray:
    """Validate a 2-D finite float array ``[N, D]`` without torch (loaders, the CLI); returns it, float64 and
    float32 kept and other floating dtypes widened to float32, as :func:`_check_embeddings` does.

    >>> _check_embedding_array(np.zeros((2, 3), np.float16), "x").dtype
    dtype('float32')
    >>> _check_embedding_array(np.array([[0.0, np.nan]]), "x")
    Traceback (most recent call last):
    ...
    ValueError: x: 1 NaN or inf values (first in row 0)
    """
    arr = np.asarray(x)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name}: expected a float array, got dtype {arr.dtype}")
    _check_matrix_shape(tuple(arr.shape), name, min_rows)
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    finite = np.isfinite(arr)
    if not finite.all():
        bad_row = int(np.flatnonzero((~finite).any(axis=1))[0])
        raise ValueError(f"{name}: {int((~finite).sum())} NaN or inf values (first in row {bad_row})")
    return arr


def _check_embeddings(x, name: str, *, min_rows: int = 1) -> torch.Tensor:
    """Validate a 2-D finite float array ``[N, D]`` and return it as a tensor.

    Float64 inputs stay float64 (the exact tie checks need them); every other
    floating dtype is widened to float32. Integer, boolean and object arrays are
    refused rather than silently cast.
    """
    import torch  # here, not at the top: torch-free callers (bootstrap, the store, `status`) import this module

    if not isinstance(x, torch.Tensor):
        return torch.from_numpy(np.ascontiguousarray(_check_embedding_array(x, name, min_rows=min_rows)))
    t = x.detach()
    if not torch.is_floating_point(t):
        raise ValueError(f"{name}: expected a float array, got dtype {t.dtype}")
    _check_matrix_shape(tuple(t.shape), name, min_rows)
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    # numpy's check is ~10x cheaper than torch's on CPU, and the suite validates every input once per metric
    all_finite = bool(np.isfinite(t.numpy()).all()) if t.device.type == "cpu" else bool(torch.isfinite(t).all())
    if not all_finite:
        finite = torch.isfinite(t)
        bad_row = int((~finite).any(dim=1).nonzero()[0, 0])
        count = int((~finite).sum())
        raise ValueError(f"{name}: {count} NaN or inf values (first in row {bad_row})")
    return t


def _check_same_dim(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{name_b}: expected D={a.shape[1]} features to match {name_a}, got D={b.shape[1]}"
        )


def _check_k(k: int, *sets: tuple[str, int]) -> None:
    """k-NN radii need k neighbours besides the point itself."""
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    for name, n in sets:
        if n < k + 1:
            raise ValueError(f"{name}: expected at least k+1={k + 1} rows for k={k}, got {n}")


def _check_nonzero_rows(x: torch.Tensor, name: str) -> None:
    """Cosine similarity is undefined for a zero vector."""
    import torch

    norms = torch.linalg.vector_norm(x, dim=1)
    zero = norms == 0
    if bool(zero.any()):
        raise ValueError(
            f"{name}: cosine similarity is undefined for zero vectors; "
            f"{int(zero.sum())} rows are all zero (first is row {int(zero.nonzero()[0, 0])})"
        )


def _check_int(value, name: str, minimum: int | None = None) -> int:
    """An integer (a numpy integer too, never a bool) of at least ``minimum``, as a Python ``int``.

    >>> _check_int(np.int64(3), "k", 1), _check_seed(0)
    (3, 0)
    >>> _check_positive_int(0, "k")
    Traceback (most recent call last):
    ...
    ValueError: k: expected a positive integer, got 0
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or (minimum is not None and value < minimum):
        expected = "an integer" if minimum is None else "a positive integer" if minimum == 1 \
            else f"an integer >= {minimum}"
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return int(value)


def _check_positive_int(value, name: str, minimum: int = 1) -> int:
    """An integer of at least ``minimum`` (default 1), as a Python ``int``."""
    return _check_int(value, name, minimum)


def _check_chunk_size(chunk_size) -> int:
    """Rows per GEMM tile of the k-NN engine: a positive integer."""
    return _check_positive_int(chunk_size, "chunk_size")


def _check_order(n) -> int:
    """An n-gram order: a positive integer."""
    return _check_positive_int(n, "n")


def _check_seed(seed) -> int:
    """A random seed: an integer >= 0 (what numpy's generators take)."""
    return _check_int(seed, "seed", 0)


def _check_dataframe(df, name: str) -> None:
    """A non-empty pandas DataFrame with unique string column names."""
    import pandas as pd  # only tables need it

    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{name}: expected a pandas DataFrame, got {type(df).__name__}")
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty table, got shape {df.shape}")
    bad = [c for c in df.columns if not isinstance(c, str)]
    if bad:
        raise ValueError(f"{name}: expected string column names, got {bad!r}")
    dup = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dup:
        raise ValueError(f"{name}: expected unique column names, got duplicates {dup!r}")


def _check_unit_interval(value, name: str, *, include_one: bool, what: str = "a share") -> float:
    """A real number in (0, 1] (``include_one``) or (0, 1), as a float.

    >>> _check_unit_interval(0.5, "rare_share", include_one=True), _check_fraction(0.25, "holdout_fraction")
    (0.5, 0.25)
    """
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))
    if not ok or not (0.0 < float(value) < 1.0 or (include_one and float(value) == 1.0)):
        raise ValueError(f"{name}: expected {what} in (0, {'1]' if include_one else '1)'}, got {value!r}")
    return float(value)


def _check_share(value, name: str) -> float:
    """A share in (0, 1]."""
    return _check_unit_interval(value, name, include_one=True)


def _check_fraction(value, name: str) -> float:
    """A fraction strictly between 0 and 1."""
    return _check_unit_interval(value, name, include_one=False, what="a number")


def _check_bootstrap(n_boot: int, level: float) -> None:
    """Bootstrap replicates (>= 0) and a confidence level in (0, 1)."""
    if isinstance(n_boot, (bool, np.bool_)) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"n_boot: expected a non-negative integer, got {n_boot!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: expected a confidence level in (0, 1), got {level!r}")

def _check_tail_mass(tail_mass) -> float:
    if isinstance(tail_mass, bool) or not isinstance(tail_mass, (int, float, np.integer, np.floating)):
        raise ValueError(f"tail_mass: expected a share in (0, 1), got {tail_mass!r}")
    if not 0.0 < float(tail_mass) < 1.0:
        raise ValueError(f"tail_mass: expected a share in (0, 1), got {tail_mass!r}")
    return float(tail_mass)

def _check_tol(tol) -> float:
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.integer, np.floating)):
        raise ValueError(f"tol: expected a finite number >= 0, got {tol!r}")
    if not (math.isfinite(float(tol)) and float(tol) >= 0.0):
        raise ValueError(f"tol: expected a finite number >= 0, got {tol!r}")
    return float(tol)


def _nonempty_list(values, name: str, what: str) -> list:
    """``values`` (a list, tuple, 1-D array or series, never a single str) as a non-empty list; ``what`` names
    the items in the message ("str", "ids", "bool")."""
    if isinstance(values, str):
        raise ValueError(f"{name}: expected a list of {what}, got a single str")
    if hasattr(values, "tolist") and getattr(values, "ndim", 1) == 1:  # numpy arrays, pandas series
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"{name}: expected a list of {what}, got {type(values).__name__}")
    if len(values) == 0:
        raise ValueError(f"{name}: expected a non-empty list of {what}, got an empty {type(values).__name__}")
    return list(values)


def _check_texts(texts, name: str = "texts") -> list[str]:
    """A non-empty list of ``str`` from a list, tuple, 1-D array or series; ValueError naming the bad item.

    >>> _check_texts(("a", "b"))
    ['a', 'b']
    """
    texts = _nonempty_list(texts, name, "str")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"{name}[{i}]: expected str, got {type(t).__name__}")
    return texts


#: A validity check (text) or constraint (tables) the reference itself fails more often than this is switched off.
DEFAULT_FAILURE_LIMIT = 0.2


def _check_failure_limit(failure_limit) -> float:
    if isinstance(failure_limit, bool) or not isinstance(failure_limit, (int, float)) or not 0 <= failure_limit <= 1:
        raise ValueError(f"failure_limit: expected a share in [0, 1], got {failure_limit!r}")
    return float(failure_limit)


def _check_ids(ids, name: str = "question_ids") -> list:
    """A non-empty list of ids (``str`` or ``int``, never a bool) from a list, tuple, 1-D array or series.

    >>> _check_ids(np.array([3, 1]))
    [3, 1]
    >>> _check_ids(["q1", 2.0])
    Traceback (most recent call last):
    ...
    ValueError: question_ids[1]: expected a str or int id, got float
    """
    out = []
    for i, q in enumerate(_nonempty_list(ids, name, "ids")):
        if isinstance(q, (bool, np.bool_)) or not isinstance(q, (str, int, np.integer)):
            raise ValueError(f"{name}[{i}]: expected a str or int id, got {type(q).__name__}")
        out.append(q if isinstance(q, str) else int(q))
    return out


def _check_flags(flags, name: str) -> np.ndarray:
    """A non-empty list (tuple, 1-D array, series) of ``bool`` as a bool array; 0/1 integers are refused.

    >>> _check_flags([True, np.False_], "correct").tolist()
    [True, False]
    """
    flags = _nonempty_list(flags, name, "bool")
    for i, f in enumerate(flags):
        if not isinstance(f, (bool, np.bool_)):
            raise ValueError(f"{name}[{i}]: expected bool, got {type(f).__name__}")
    return np.asarray(flags, dtype=bool)


def _check_same_length(n_ref: int, n: int, name_ref: str, name: str) -> None:
    """Parallel sequences (one item per record) must be equally long."""
    if n != n_ref:
        raise ValueError(f"{name}: expected {n_ref} items to match {name_ref}, got {n}")


def _check_choice(value, name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (a language, a method), the message listing them.

    >>> _check_choice("rust", "language", ("python",))
    Traceback (most recent call last):
    ...
    ValueError: language: expected one of 'python', got 'rust'
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def _got(value) -> str:
    """How a message shows a bad item: a non-finite or negative number by its value, anything else by its type."""
    numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if numeric and not (_is_finite_number(value) and value >= 0):
        return repr(value.item() if isinstance(value, np.generic) else value)
    return type(value).__name__


def _check_per_step(values, name: str, what: str, is_item, *, lengths=None, ref_name: str = "actions",
                    optional: bool = False, items: str | None = None) -> list:
    """Per-episode lists of per-step items (actions, error flags, rewards): a non-empty list whose item ``i`` is a
    non-empty list (tuple, 1-D array) of items passing ``is_item``, returned as tuples; ``None`` episodes kept where
    ``optional``; with ``lengths``, episode ``i`` has ``lengths[i]`` steps (one item per step of ``ref_name[i]``).
    ``what`` names one item in messages, ``items`` (default ``what``) several.

    >>> _check_per_step([["a", "b"], ("c",)], "actions", "str", lambda s: isinstance(s, str))
    [('a', 'b'), ('c',)]
    >>> _check_per_step([["a"], []], "actions", "str", lambda s: isinstance(s, str))
    Traceback (most recent call last):
    ...
    ValueError: actions[1]: expected a non-empty list of str (an episode needs at least one step), got an empty list
    """
    items = items or what
    episodes = _nonempty_list(values, name, f"lists of {items}")
    if lengths is not None:
        _check_same_length(len(lengths), len(episodes), ref_name, name)
    out = []
    for i, episode in enumerate(episodes):
        if episode is None and optional:
            out.append(None)
            continue
        if hasattr(episode, "tolist") and getattr(episode, "ndim", 1) == 1:
            episode = episode.tolist()
        if not isinstance(episode, (list, tuple)) or not episode:
            got = f"an empty {type(episode).__name__}" if isinstance(episode, (list, tuple)) else _got(episode)
            raise ValueError(f"{name}[{i}]: expected a non-empty list of {items}"
                             f"{' or None' if optional else ''} (an episode needs at least one step), got {got}")
        for j, item in enumerate(episode):
            if not is_item(item):
                raise ValueError(f"{name}[{i}][{j}]: expected {what}, got {_got(item)}")
        if lengths is not None and len(episode) != lengths[i]:
            raise ValueError(f"{name}[{i}]: expected {lengths[i]} steps to match {ref_name}[{i}], got {len(episode)}")
        out.append(tuple(episode))
    return out


def _check_per_episode(values, name: str, what: str, is_item, n: int | None = None, ref_name: str = "actions") -> list:
    """One item per episode, each passing ``is_item`` or ``None`` (not reported), as a list; with ``n``, ``n`` of them.

    >>> _check_per_episode([True, None], "success", "bool", lambda v: isinstance(v, bool), 3)
    Traceback (most recent call last):
    ...
    ValueError: success: expected 3 items to match actions, got 2
    """
    values = _nonempty_list(values, name, f"{what} or None")
    if n is not None:
        _check_same_length(n, len(values), ref_name, name)
    for i, v in enumerate(values):
        if v is not None and not is_item(v):
            raise ValueError(f"{name}[{i}]: expected {what} or None, got {_got(v)}")
    return values


def _is_count(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v >= 0


def _check_goals(goals_achieved, goals_total, n: int | None = None) -> list:
    """Sub-goals per episode: ``(achieved, total)`` with ``0 <= achieved <= total`` and ``total >= 1``, or ``None``
    where both are ``None`` (no goals declared).

    >>> _check_goals([1, None], [np.int64(2), None])
    [(1, 2), None]
    >>> _check_goals([3], [2])
    Traceback (most recent call last):
    ...
    ValueError: goals_achieved[0]: expected at most goals_total[0]=2, got 3
    """
    achieved = _check_per_episode(goals_achieved, "goals_achieved", "an integer >= 0", _is_count, n)
    total = _check_per_episode(goals_total, "goals_total", "an integer >= 0", _is_count, len(achieved),
                               "goals_achieved")
    out = []
    for i, (a, t) in enumerate(zip(achieved, total)):
        a, t = (None if v is None else int(v) for v in (a, t))
        if (a is None) != (t is None):
            raise ValueError(f"goals_achieved[{i}]: expected {'None' if t is None else 'an integer'} with "
                             f"goals_total[{i}]={t!r}, got {a!r}")
        if t is not None and t < 1:
            raise ValueError(f"goals_total[{i}]: expected a positive integer (an episode declaring goals has at "
                             f"least one), got {t!r}")
        if a is not None and a > t:
            raise ValueError(f"goals_achieved[{i}]: expected at most goals_total[{i}]={t}, got {a}")
        out.append(None if t is None else (a, t))
    return out


def _is_flag(v) -> bool:
    return isinstance(v, (bool, np.bool_))


def _is_finite_number(v) -> bool:
    """A real number (never a bool) that is a finite float: ``nan``, ``inf`` and ints past 1e308 are not."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def _check_actions(actions, name: str = "actions") -> list[tuple[str, ...]]:
    """Agent episodes' actions: a non-empty list of non-empty lists of ``str`` (one per step), as tuples."""
    return _check_per_step(actions, name, "str", lambda a: isinstance(a, str))


def _check_step_flags(flags, name: str = "errors", lengths=None) -> list[tuple[bool, ...]]:
    """Per-step ``bool`` of agent episodes (0/1 integers refused), ``lengths[i]`` of episode ``i`` when given."""
    flags = _check_per_step(flags, name, "bool", _is_flag, lengths=lengths)
    return [tuple(bool(f) for f in episode) for episode in flags]


def _check_step_rewards(rewards, name: str = "rewards", lengths=None) -> list[tuple[float, ...] | None]:
    """Per-step finite rewards of agent episodes, ``None`` for an episode without rewards, as float tuples."""
    rewards = _check_per_step(rewards, name, "a finite number", _is_finite_number, lengths=lengths, optional=True,
                              items="finite numbers")
    return [None if episode is None else tuple(float(r) for r in episode) for episode in rewards]


# --- graph ---


def _check_graphs(graphs, name: str = "graphs") -> list:
    """A round of graphs: a non-empty list of networkx ``Graph`` or ``DiGraph`` (never a multigraph), each with at
    least one node.

    >>> import networkx as nx
    >>> len(_check_graphs([nx.path_graph(2), nx.DiGraph([(0, 1)])]))
    2
    >>> _check_graphs([nx.path_graph(2), nx.Graph()])
    Traceback (most recent call last):
    ...
    ValueError: graphs[1]: expected a graph with at least one node, got an empty graph
    """
    import networkx as nx  # here, not at the top: only graph rounds need it

    graphs = _nonempty_list(graphs, name, "networkx graphs")
    for i, g in enumerate(graphs):
        if not isinstance(g, nx.Graph) or g.is_multigraph():
            raise ValueError(f"{name}[{i}]: expected a networkx Graph or DiGraph, got {type(g).__name__}")
        if g.number_of_nodes() == 0:
            raise ValueError(f"{name}[{i}]: expected a graph with at least one node, got an empty graph")
    return graphs


def _check_optional_count(value, name: str) -> int | None:
    """A graph-constraint bound: ``None`` (no rule) or an integer >= 0 (never a bool), as ``int``.

    >>> _check_optional_count(np.int64(3), "max_degree"), _check_optional_count(None, "max_degree")
    (3, None)
    >>> _check_optional_count(-1, "min_nodes")
    Traceback (most recent call last):
    ...
    ValueError: min_nodes: expected an integer >= 0 or None, got -1
    """
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        shown = repr(value) if isinstance(value, (int, float, np.integer, np.floating)) else type(value).__name__
        raise ValueError(f"{name}: expected an integer >= 0 or None, got {shown}")
    return int(value)


def _check_optional_flag(value, name: str) -> bool | None:
    """A graph-constraint switch: ``None`` or a bool (never 0/1), as ``bool``.

    >>> _check_optional_flag(np.True_, "connected"), _check_optional_flag(None, "acyclic")
    (True, None)
    >>> _check_optional_flag(1, "connected")
    Traceback (most recent call last):
    ...
    ValueError: connected: expected true, false or None, got int
    """
    if value is None:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected true, false or None, got {type(value).__name__}")
    return bool(value)


# --- log ---


def _check_similarity_threshold(value) -> float:
    """Drain's similarity threshold: a real number in [0, 1], as a float.

    >>> _check_similarity_threshold(1.5)
    Traceback (most recent call last):
    ...
    ValueError: similarity_threshold: expected a number in [0, 1], got 1.5
    """
    if not _is_finite_number(value) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"similarity_threshold: expected a number in [0, 1], got {value!r}")
    return float(value)


def _check_drain_depth(value) -> int:
    """Drain's parse-tree depth: an integer >= 3 (root, length layer, at least one token layer, leaves)."""
    return _check_int(value, "depth", 3)


def _check_masking(masking) -> tuple[tuple[str, str], ...]:
    """Drain3 masking instructions: ``None`` (none) or a list of ``(regex, mask name)`` pairs, as a tuple.

    >>> _check_masking([(r"\\d+", "NUM")])
    (('\\\\d+', 'NUM'),)
    >>> _check_masking([("(", "X")])
    Traceback (most recent call last):
    ...
    ValueError: masking[0]: not a valid regular expression: missing ), unterminated subpattern at position 0
    """
    import re

    if masking is None:
        return ()
    if isinstance(masking, (str, bytes)) or not isinstance(masking, (list, tuple)):
        raise ValueError(f"masking: expected None or a list of (regex, mask name) pairs, got {type(masking).__name__}")
    out = []
    for i, pair in enumerate(masking):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
            raise ValueError(f"masking[{i}]: expected a (regex, mask name) pair of str, got {_got(pair)}")
        regex, name = pair
        if not name.strip() or any(c.isspace() for c in name):
            raise ValueError(f"masking[{i}]: expected a mask name without whitespace, got {name!r}")
        try:
            re.compile(regex)
        except re.error as exc:
            raise ValueError(f"masking[{i}]: not a valid regular expression: {exc}") from None
        out.append((regex, name))
    return tuple(out)


def _check_categories(values, name: str) -> list[str | None]:
    """One category per log line: a non-empty list of ``str`` or ``None`` (the line's field was not parsed).

    >>> _check_categories(["INFO", None], "severity")
    ['INFO', None]
    >>> _check_categories(["INFO", 3], "severity")
    Traceback (most recent call last):
    ...
    ValueError: severity[1]: expected str or None, got int
    """
    values = _nonempty_list(values, name, "str or None")
    for i, v in enumerate(values):
        if v is not None and not isinstance(v, str):
            raise ValueError(f"{name}[{i}]: expected str or None, got {_got(v)}")
    return values


# --- json records ---

_JSON_SCALARS = (str, int, float, bool, type(None))


def _json_value_problem(value) -> str | None:
    """Why ``value`` is not a parsed JSON value (dicts with str keys, lists, str, int, finite float, bool, None), with
    the JSON path of the first bad item, e.g. ``"got float nan at $.a[1]"``; None when it is one. Iterative, so a
    deeply nested value cannot exhaust the stack."""
    stack = [(value, "$")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            for key in reversed(list(item)):
                if not isinstance(key, str):
                    return f"got a {type(key).__name__} key {key!r} at {path}"
                stack.append((item[key], f"{path}.{key}"))
        elif isinstance(item, list):
            stack.extend((item[i], f"{path}[{i}]") for i in reversed(range(len(item))))
        elif isinstance(item, float) and not math.isfinite(item):
            return f"got float {item!r} at {path}"
        elif not isinstance(item, _JSON_SCALARS):
            return f"got {type(item).__name__} at {path}"
    return None


def _check_json_records(records, name: str = "records") -> list:
    """JSON-records outputs: a non-empty list (tuple, series) whose items are parsed JSON values or ``None`` (a line
    that did not parse), as a list.

    >>> _check_json_records([{"a": [1, "x"]}, None, [True]])
    [{'a': [1, 'x']}, None, [True]]
    >>> _check_json_records([{"a": {"b": float("nan")}}])
    Traceback (most recent call last):
    ...
    ValueError: records[0]: expected a parsed JSON value or None, got float nan at $.a.b
    """
    if hasattr(records, "tolist") and getattr(records, "ndim", 1) == 1:
        records = records.tolist()
    if isinstance(records, (str, dict)) or not isinstance(records, (list, tuple)):
        raise ValueError(f"{name}: expected a list of parsed JSON values or None, got {type(records).__name__}")
    if len(records) == 0:
        raise ValueError(f"{name}: expected a non-empty list of parsed JSON values or None, got an empty "
                         f"{type(records).__name__}")
    for i, record in enumerate(records):
        problem = None if record is None else _json_value_problem(record)
        if problem is not None:
            raise ValueError(f"{name}[{i}]: expected a parsed JSON value or None, {problem}")
    return list(records)


def _check_key_path(key, name: str = "key") -> str:
    """A record's key path: a non-empty dotted path of object keys (no array step ``[]``, no ``.__len__``).

    >>> _check_key_path("meta.id")
    'meta.id'
    >>> _check_key_path("tags[]")
    Traceback (most recent call last):
    ...
    ValueError: key: expected a dotted path of object keys outside arrays (e.g. 'id' or 'meta.id'), got 'tags[]'
    """
    if not isinstance(key, str) or not key or "[]" in key or key.endswith(".__len__") \
            or "" in key.split("."):
        raise ValueError(f"{name}: expected a dotted path of object keys outside arrays (e.g. 'id' or 'meta.id'), "
                         f"got {key!r}")
    return key


# --- image_text ---


def _check_no_zero_row(x: np.ndarray, name: str) -> None:
    """No all-zero row in a finite ``[N, D]`` array: cosine similarity is undefined for a zero vector.

    >>> _check_no_zero_row(np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]), "text")
    Traceback (most recent call last):
    ...
    ValueError: text: row 1 is all zeros (cosine similarity is undefined for a zero vector; 2 such rows)
    """
    zero = ~np.any(x != 0, axis=1)
    if zero.any():
        raise ValueError(f"{name}: row {int(np.flatnonzero(zero)[0])} is all zeros (cosine similarity is undefined "
                         f"for a zero vector; {int(zero.sum())} such rows)")


def _check_pair_embeddings(image, text, names: tuple[str, str] = ("image", "text")) -> tuple[np.ndarray, np.ndarray]:
    """Paired embeddings, row ``i`` of ``image`` with row ``i`` of ``text``: two finite 2-D float arrays with the
    same ``N >= 2`` rows and the same ``D``, no all-zero row; returned as float64 (numpy only, no torch).

    >>> _check_pair_embeddings(np.ones((3, 2)), np.ones((2, 2)))
    Traceback (most recent call last):
    ...
    ValueError: text: expected 3 rows to match image (one per pair), got 2
    """
    image_name, text_name = names
    a = _check_embedding_array(image, image_name, min_rows=2)
    b = _check_embedding_array(text, text_name, min_rows=2)
    if b.shape[0] != a.shape[0]:
        raise ValueError(f"{text_name}: expected {a.shape[0]} rows to match {image_name} (one per pair), "
                         f"got {b.shape[0]}")
    if b.shape[1] != a.shape[1]:
        raise ValueError(f"{text_name}: expected D={a.shape[1]} features to match {image_name}, got D={b.shape[1]}")
    _check_no_zero_row(a, image_name)
    _check_no_zero_row(b, text_name)
    return a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)
