r"""Fidelity of a JSON-records round to ground truth: records aligned by a key, field values matched.

Part of :mod:`metrics_core.json_records` (its docstring states the round's layout and the uncertainty rules).
For extraction-style generation, where each output record has a known true record (the same key), the
survey's match percentage (LLM Data Auditor survey §5.3) scores how many of the truth's fields the output got
right.
"""

from __future__ import annotations

import numpy as np

from metrics_core._checks import _check_json_records, _check_key_path
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, mean_estimate
from metrics_core.json_records.flatten import _flatten


def _key_token(value):
    """A key value's identity: numbers compare as numbers (``1`` is ``1.0``), never as booleans or strings."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", value)  # 1 == 1.0 and hash(1) == hash(1.0)
    return ("str", value)


def same_leaf(a, b) -> bool:
    """Two flattened values are equal: numbers as numbers (``2 == 2.0``), booleans only to booleans, strings and
    ``None`` exactly, pooled tuples element by element (same length, same order).

    Example:
        >>> same_leaf(2, 2.0), same_leaf(True, 1), same_leaf(("a", 1), ("a", 1.0)), same_leaf(None, None)
        (True, False, True, True)
    """
    if isinstance(a, tuple) or isinstance(b, tuple):
        return isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) \
            and all(same_leaf(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    numeric = isinstance(a, (int, float)) and isinstance(b, (int, float))
    if numeric or type(a) is type(b):
        return a == b
    return False


def _keyed_truth(truth_records, key: str) -> dict:
    """Truth key -> (its index, flattened truth without the key path); every truth record must have a unique
    str, number or bool key and a field besides it."""
    out: dict = {}
    for i, record in enumerate(_check_json_records(truth_records, "truth_records")):
        if not isinstance(record, dict):
            got = "null (a line that did not parse)" if record is None else type(record).__name__
            raise ValueError(f"truth_records[{i}]: expected a JSON object, got {got}")
        flat = _flatten(record)
        value = flat.pop(key, None)
        if value is None or not isinstance(value, (str, int, float, bool)):
            raise ValueError(f"truth_records[{i}]: expected a str, number or bool at key path {key!r}, got "
                             f"{'nothing' if value is None else type(value).__name__}")
        if not flat:
            raise ValueError(f"truth_records[{i}]: no field besides the key path {key!r}: nothing to match")
        token = _key_token(value)
        if token in out:
            raise ValueError(f"truth_records[{i}]: key {value!r} repeats truth_records[{out[token][0]}]'s; "
                             "ground truth holds one record per key")
        out[token] = (i, flat)
    return out


def aligned_match_shares(records, truth_records, key: str) -> np.ndarray:
    """Per truth record that a round record aligns with (in truth order), the share of its field paths matched;
    see :func:`mean_match_percentage`. Empty when none aligns.

    Example:
        >>> aligned_match_shares([{"id": 2, "a": 1}], [{"id": 1, "a": 1}, {"id": 2, "a": 1, "b": "x"}], "id")
        array([0.5])
    """
    key = _check_key_path(key)
    truth = _keyed_truth(truth_records, key)
    found: dict = {}  # truth key -> the first round record's flattening with that key
    for record in _check_json_records(records):
        if not isinstance(record, dict):
            continue
        flat = _flatten(record)
        value = flat.get(key)
        if value is None or isinstance(value, tuple):
            continue
        token = _key_token(value)
        if token in truth and token not in found:
            found[token] = flat
    shares = []
    for token, (_, expected) in truth.items():
        if token in found:
            got = found[token]
            shares.append(sum(p in got and same_leaf(got[p], v) for p, v in expected.items()) / len(expected))
    return np.array(shares, dtype=np.float64)


def mean_match_percentage(
    records, truth_records, key: str, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0
) -> Estimate:
    r"""Mean match percentage (LLM Data Auditor survey §5.3): round records aligned to ground-truth records by a
    key path, the share of each truth record's fields the aligned record reproduces, averaged.

    .. math:: \text{MatchPct} = \frac{1}{|A|} \sum_{t \in A} \frac{|\{p \in P_t : r_t(p) = t(p)\}|}{|P_t|},

    :math:`P_t` the field paths of truth record :math:`t` (its
    :func:`~metrics_core.json_records.flatten.flatten_record` paths, the key path left out), :math:`r_t` the
    round record with :math:`t`'s key and :math:`A` the truth records that have one. Values compare with
    :func:`same_leaf` (numbers as numbers; a pooled array path matches when its element values do, in order);
    a path the round record lacks is a miss; extra round paths are ignored. Alignment: keys compare like
    values (``1`` and ``1.0`` align); when several round records share a key the first one is scored and the
    rest ignored; round records without the key, with a key no truth record has, that did not parse or are not
    objects, are unaligned and ignored, as are truth records no round record aligns with (the valid-JSON rate
    and field coverage see missing output). ValueError when nothing aligns, or the truth repeats a key, lacks
    it, or has no field besides it. The value is a share: range [0, 1] (times 100 for a percentage), higher is
    better. The interval bootstraps the mean over the aligned truth records.

    Args:
        records: ``[N]`` the round's parsed JSON values, ``None`` for a line that did not parse.
        truth_records: ``[T]`` ground-truth JSON objects, each with a unique key.
        key: the key path, a dotted path of object keys outside arrays (``"id"``, ``"meta.id"``).
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> truth = [{"id": 1, "name": "ann", "age": 30}, {"id": 2, "name": "bo", "age": 41}, {"id": 3, "name": "cy"}]
        >>> out = [{"id": 1, "name": "ann", "age": 30.0}, {"id": 2, "name": "bob", "age": 41}, {"id": 2}, None]
        >>> mean_match_percentage(out, truth, "id").value  # (2/2 + 1/2) / 2; id 3 unaligned, 2nd id 2 ignored
        0.75
    """
    shares = aligned_match_shares(records, truth_records, key)
    if shares.size == 0:
        raise ValueError(f"records: no round record aligns with a truth record by key path {key!r}")
    return mean_estimate(shares, n_boot=n_boot, level=level, seed=seed)
