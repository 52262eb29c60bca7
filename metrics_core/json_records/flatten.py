r"""Flattening JSON records to dotted field paths: :func:`flatten_record`, :func:`flatten_records`.

Part of :mod:`metrics_core.json_records` (its docstring states the round's layout and the uncertainty rules).

**Paths.** A value inside a record is named by the object keys leading to it, joined by ``.``: in
``{"meta": {"lang": "en"}}`` the leaf ``"en"`` is at ``meta.lang``. An array at path ``p`` is *counted*: it
yields ``p.__len__``, its length, and its elements are flattened under ``p[]`` (a scalar element at ``p[]``
itself, an element object's key ``k`` at ``p[].k``, a nested array's length at ``p[].__len__`` and its elements
at ``p[][]``). Every path with ``[]`` in it is *pooled*: its value is the tuple of the values found there over
all the elements, in document order (``{"t": [{"x": 1}, {}, {"x": 2}]}`` gives ``t[].x = (1, 2)``). Every other
path holds one leaf: a ``str``, ``int``, ``float``, ``bool`` or ``None`` (JSON null), or an ``int`` count. An
empty object yields no path (it has no leaf) and an empty array only its ``.__len__`` of 0. Keys are used as
they are; when two keys give the same unpooled path (a key ``"a.b"`` next to ``{"a": {"b": ...}}``) the first
in document order is kept.

**Tables.** :func:`flatten_records` keeps the unpooled paths only (scalar leaves and the counts of the arrays
that are not inside another array), one row per parsed object, so the tabular suite
(:mod:`metrics_core.tabular`) can run on a JSON round; the pooled element values have no single cell and are
read by the coverage metrics instead.
"""

from __future__ import annotations

from metrics_core._checks import _check_json_records, _json_value_problem

LENGTH_SUFFIX = ".__len__"
ELEMENTS_SUFFIX = "[]"


def _type_error(obj) -> str | None:
    if not isinstance(obj, dict):
        return f"expected a JSON object (dict), got {type(obj).__name__}"
    problem = _json_value_problem(obj)
    return None if problem is None else f"expected a parsed JSON object, {problem}"


def _flatten(obj: dict) -> dict:
    out: dict = {}
    # (value, path, pooled); a stack popped from the end, so items are pushed in reverse document order
    stack = [(obj[k], k, False) for k in reversed(list(obj))]
    while stack:
        value, path, pooled = stack.pop()
        if isinstance(value, dict):
            stack.extend((value[k], f"{path}.{k}", pooled) for k in reversed(list(value)))
        elif isinstance(value, list):
            _put(out, path + LENGTH_SUFFIX, len(value), pooled)
            stack.extend((v, path + ELEMENTS_SUFFIX, True) for v in reversed(value))
        else:
            _put(out, path, value, pooled)
    return out


def _put(out: dict, path: str, value, pooled: bool) -> None:
    if pooled:
        out[path] = out.get(path, ()) + (value,)
    elif path not in out:
        out[path] = value


def flatten_record(obj) -> dict:
    r"""A JSON object's field paths and their values (see the module docstring for the path rules).

    Unpooled paths map to a leaf (``str``, ``int``, ``float``, ``bool``, ``None``) or an array's length; pooled
    paths (with ``[]``) to the tuple of their values over the array elements, in document order.

    Args:
        obj: a parsed JSON object (``dict`` with ``str`` keys, JSON values inside).

    Example:
        >>> flat = flatten_record({"id": 7, "meta": {"lang": "en", "ok": True},
        ...                        "tags": ["a", "b"], "items": [{"sku": "x", "n": 2}, {"sku": "y"}], "none": []})
        >>> for path, value in flat.items():
        ...     print(path, value)
        id 7
        meta.lang en
        meta.ok True
        tags.__len__ 2
        tags[] ('a', 'b')
        items.__len__ 2
        items[].sku ('x', 'y')
        items[].n (2,)
        none.__len__ 0
        >>> flatten_record({"m": [[1, 2], []], "e": {}})
        {'m.__len__': 2, 'm[].__len__': (2, 0), 'm[][]': (1, 2)}
    """
    problem = _type_error(obj)
    if problem is not None:
        raise ValueError(f"obj: {problem}")
    return _flatten(obj)


def parsed_objects(records, name: str = "records") -> list[dict]:
    """The records that are JSON objects, in order (``None`` and non-object values dropped), validated.

    >>> parsed_objects([{"a": 1}, None, [1], "x", {}])
    [{'a': 1}, {}]
    """
    return [r for r in _check_json_records(records, name) if isinstance(r, dict)]


def flattened(records, name: str = "records") -> list[dict]:
    """:func:`flatten_record` of each parsed object of ``records`` (see :func:`parsed_objects`)."""
    return [_flatten(r) for r in parsed_objects(records, name)]


def flatten_records(records):
    r"""The parsed objects of a round as a table: one row each, one column per unpooled path.

    Columns are the union of the records' unpooled paths (scalar leaves outside arrays, and ``p.__len__`` of
    the arrays outside arrays), in order of first appearance; a record without a path, or with ``null`` there,
    has a null cell. Pooled element paths (with ``[]``) are left out (module docstring). Lines that did not
    parse and non-object values are skipped: a round with no parsed object gives an empty table (no rows, no
    columns). Where no record holds an array the table equals ``pandas.json_normalize(objects, sep=".")``.

    Args:
        records: ``[N]`` parsed JSON values, ``None`` for a line that did not parse.

    Returns:
        ``pandas.DataFrame`` with a ``RangeIndex`` over the parsed objects.

    Example:
        >>> flatten_records([{"id": 1, "m": {"k": "a"}, "t": [1, 2]}, None, {"id": 2, "x": None}])
           id  m.k  t.__len__   x
        0   1    a        2.0 NaN
        1   2  NaN        NaN NaN
    """
    import pandas as pd  # only tables need it

    rows = [{p: v for p, v in flat.items() if not isinstance(v, tuple)} for flat in flattened(records)]
    if not rows:
        return pd.DataFrame()
    columns = list(dict.fromkeys(p for row in rows for p in row))
    return pd.DataFrame.from_records(rows, columns=columns)
