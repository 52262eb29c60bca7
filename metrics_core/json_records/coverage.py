r"""Coverage of the reference's fields and categorical values by a JSON-records round.

Part of :mod:`metrics_core.json_records` (its docstring states the round's layout and the uncertainty rules).
Field paths are :func:`~metrics_core.json_records.flatten.flatten_record`'s; a pooled path (inside an array)
contributes every element's value. Collapse narrows a structured-output generator: optional fields and array
elements stop appearing, and categorical fields lose their rare values (Shumailov et al. 2024, "AI models
collapse when trained on recursively generated data", Nature 631: the tails vanish first).
"""

from __future__ import annotations

import json

from metrics_core._checks import _check_positive_int
from metrics_core.json_records.flatten import flattened

DEFAULT_MAX_CATEGORIES = 50


def _reference_flattened(reference_records) -> list[dict]:
    flat = flattened(reference_records, "reference_records")
    if not any(flat):
        raise ValueError("reference_records: no field path: no record is a JSON object with a leaf or an array")
    return flat


def field_paths(flat_records: list[dict]) -> set[str]:
    """The paths present in at least one flattened record (a ``null`` leaf counts as present).

    Example:
        >>> sorted(field_paths([{"a": 1}, {"b.c": None, "t.__len__": 0}]))
        ['a', 'b.c', 't.__len__']
    """
    return {p for flat in flat_records for p in flat}


def field_coverage(records, reference_records) -> float:
    r"""Field coverage (LLM Data Auditor survey §5.3, §8.1): share of the reference's field paths that at least
    one round record has.

    .. math:: \text{FieldCoverage} = \frac{|P_\text{ref} \cap P_\text{round}|}{|P_\text{ref}|},

    :math:`P` the set of paths of a side's parsed objects (every path of
    :func:`~metrics_core.json_records.flatten.flatten_record`: leaves, ``p.__len__`` of arrays and ``p[]...``
    element paths; a ``null`` leaf counts as present). Round paths the reference lacks are ignored; lines that
    did not parse and non-object values have no path. Range [0, 1], higher is better (1: every reference field
    still appears); a round with no parsed object scores 0. Point estimate (see the package docstring).

    Args:
        records: ``[N]`` the round's parsed JSON values, ``None`` for a line that did not parse.
        reference_records: ``[N_ref]`` the reference's, likewise; at least one path.

    Example:
        >>> ref = [{"id": 1, "meta": {"lang": "en"}, "tags": ["a"]}, {"id": 2, "note": "x"}]
        >>> field_coverage([{"id": 3, "tags": []}, None], ref)  # id, tags.__len__ of 5 paths (tags[] lost)
        0.4
    """
    reference = field_paths(_reference_flattened(reference_records))
    present = field_paths(flattened(records))
    return len(reference & present) / len(reference)


def _leaves(flat: dict):
    """``(path, value)`` of every leaf of a flattened record, pooled paths giving one pair per element value."""
    for path, value in flat.items():
        for v in (value if isinstance(value, tuple) else (value,)):
            yield path, v


def _token(value) -> str:
    """A value's identity across types: ``true`` (bool) and ``"true"`` (str) differ."""
    return json.dumps(value, ensure_ascii=False)


def categorical_values(reference_records, max_categories: int = DEFAULT_MAX_CATEGORIES) -> dict[str, set]:
    """The categorical paths of the reference and their values: the paths whose non-null values (pooled over
    records and array elements) are all ``str`` or ``bool``, with at least one and at most ``max_categories``
    distinct ones.

    Example:
        >>> found = categorical_values([{"c": "a", "n": 1, "f": True, "t": ["y", "x"]}, {"c": "b", "f": None}])
        >>> {path: sorted(values) for path, values in found.items()}
        {'c': ['a', 'b'], 'f': [True], 't[]': ['x', 'y']}
    """
    max_categories = _check_positive_int(max_categories, "max_categories")
    values: dict[str, set] = {}
    other: set[str] = set()  # paths holding a number (or a count)
    for flat in _reference_flattened(reference_records):
        for path, v in _leaves(flat):
            if v is None:
                continue
            if isinstance(v, (str, bool)):
                values.setdefault(path, set()).add(v)
            else:
                other.add(path)
    return {p: vs for p, vs in values.items() if p not in other and len(vs) <= max_categories}


def categorical_value_coverage(records, reference_records, *, max_categories: int = DEFAULT_MAX_CATEGORIES) -> float:
    r"""Categorical value coverage (LLM Data Auditor survey §5.3, §8.1; Shumailov et al. 2024): share of the
    reference's (categorical path, value) pairs that the round produces.

    .. math:: \text{CatCoverage} = \frac{|\{(p, v) \in C_\text{ref} : v \in V_\text{round}(p)\}|}{|C_\text{ref}|},

    :math:`C_\text{ref}` the pairs of the reference's categorical paths (:func:`categorical_values`: ``str`` or
    ``bool`` leaves with at most ``max_categories`` distinct values, array elements pooled) and
    :math:`V_\text{round}(p)` the values the round's parsed objects hold at :math:`p`. Values compare by type
    and value (``true`` is not ``"true"``); every pair weighs the same, so a path with many values weighs more.
    Range [0, 1], higher is better: a collapsing generator stops producing its rare categories. ValueError when
    the reference has no categorical path. Point estimate (see the package docstring).

    Args:
        records: ``[N]`` the round's parsed JSON values, ``None`` for a line that did not parse.
        reference_records: ``[N_ref]`` the reference's, likewise.
        max_categories: a path with more distinct reference values is free text, not categorical.

    Example:
        >>> ref = [{"c": "a", "tags": ["x", "y"]}, {"c": "b", "tags": ["z"]}, {"c": "c", "tags": []}]
        >>> categorical_value_coverage([{"c": "a", "tags": ["y"]}, {"c": "a", "tags": []}], ref)  # 2 of 6
        0.3333333333333333
    """
    reference = categorical_values(reference_records, max_categories)
    if not reference:
        raise ValueError("reference_records: no categorical path (str or bool leaves with at most "
                         f"max_categories={max_categories} distinct values)")
    seen = {(p, _token(v)) for flat in flattened(records) for p, v in _leaves(flat) if p in reference}
    hits = sum((p, _token(v)) in seen for p, vs in reference.items() for v in vs)
    return hits / sum(len(vs) for vs in reference.values())
