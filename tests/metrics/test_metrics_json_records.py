"""Tests of the JSON-records metrics (metrics_core.json_records)."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pandas as pd
import pytest

from metrics_core.bootstrap import Estimate, mean_estimate
from metrics_core.json_records import (
    JSON_METRIC_NAMES,
    categorical_value_coverage,
    categorical_values,
    field_coverage,
    flatten_record,
    flatten_records,
    json_schema_validator,
    json_suite,
    mean_match_percentage,
    same_leaf,
    schema_correctness_rate,
    schema_violations,
    valid_json_rate,
)


def raises_exactly(message: str, fn, *args, **kwargs) -> None:
    """``fn`` raises ValueError with exactly this one-line message."""
    with pytest.raises(ValueError) as info:
        fn(*args, **kwargs)
    assert str(info.value) == message
    assert "\n" not in message


CATEGORIES = ["billing", "shipping", "returns", "account", "technical", "sales", "legal", "other"]
TAGS = ["urgent", "vip", "refund", "bug", "spam", "follow-up"]
SCHEMA = {
    "type": "object",
    "required": ["id", "category", "score"],
    "properties": {
        "id": {"type": "integer"},
        "category": {"enum": CATEGORIES},
        "score": {"type": "number", "minimum": 0, "maximum": 100},
        "tags": {"type": "array", "items": {"enum": TAGS}, "maxItems": 3},
        "meta": {"type": "object", "properties": {"lang": {"type": "string"}}},
    },
    "additionalProperties": False,
}


def ticket(rng, i: int, *, n_categories: int = 8, n_tags: int = 6, p_optional: float = 0.5) -> dict:
    """A random support-ticket record; fewer categories, tags and optional fields model a narrowed generator."""
    record = {"id": i, "category": CATEGORIES[int(rng.integers(n_categories))],
              "score": round(float(rng.uniform(0, 100)), 1)}
    if rng.random() < p_optional:
        record["tags"] = [TAGS[int(rng.integers(n_tags))] for _ in range(int(rng.integers(0, 4)))]
    if rng.random() < p_optional:
        record["meta"] = {"lang": str(rng.choice(["en", "de", "fr"])), "vip": bool(rng.random() < 0.3)}
    return record


def corrupt(rng, record: dict, p_malformed: float, p_violation: float):
    """The record, or None (a line that did not parse), or a schema-violating variant."""
    u = rng.random()
    if u < p_malformed:
        return None
    if u < p_malformed + p_violation:
        bad = dict(record)
        kind = int(rng.integers(3))
        if kind == 0:
            bad["score"] = str(bad["score"])
        elif kind == 1:
            del bad["category"]
        else:
            bad["extra"] = 1
        return bad
    return record


def random_json(rng, depth: int = 0):
    """A random JSON value: nested objects and arrays of scalars, with nulls and mixed types."""
    kind = int(rng.integers(8 if depth < 3 else 5))
    if kind == 0:
        return None
    if kind == 1:
        return bool(rng.random() < 0.5)
    if kind == 2:
        return int(rng.integers(-5, 5))
    if kind == 3:
        return round(float(rng.normal()), 2)
    if kind == 4:
        return str(rng.choice(["a", "b", "c", "d"]))
    if kind in (5, 6):
        keys = rng.choice(["x", "y", "z", "w"], size=int(rng.integers(0, 4)))
        return {str(k): random_json(rng, depth + 1) for k in keys}
    return [random_json(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))]


def random_record(rng) -> dict:
    return {k: random_json(rng, 1) for k in rng.choice(["a", "b", "c", "d", "e"], size=int(rng.integers(1, 5)),
                                                           replace=False).tolist()}


def brute_leaves(value, path: str = "", under_array: bool = False) -> list[tuple[str, object, bool]]:
    """Recursive brute force: (path, value, pooled) for every leaf and array length, in document order."""
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out += brute_leaves(v, f"{path}.{k}" if path else k, under_array)
        return out
    if isinstance(value, list):
        out = [(path + ".__len__", len(value), under_array)]
        for v in value:
            out += brute_leaves(v, path + "[]", True)
        return out
    return [(path, value, under_array)]


def brute_flatten(record: dict) -> dict:
    out: dict = {}
    for path, value, pooled in brute_leaves(record):
        if pooled:
            out.setdefault(path, []).append(value)
        else:
            out.setdefault(path, value)
    return {p: tuple(v) if isinstance(v, list) else v for p, v in out.items()}


# ---------------------------------------------------------------- flatten


def test_flatten_record_hand_case():
    record = {"id": 3, "meta": {"lang": "en", "geo": {"cc": "DE"}, "empty": {}}, "tags": ["a", "b", "a"],
              "items": [{"sku": "x", "qty": 2}, {"sku": "y"}, {"qty": 1.5, "opts": [True]}], "none": [], "n": None}
    assert flatten_record(record) == {
        "id": 3, "meta.lang": "en", "meta.geo.cc": "DE", "tags.__len__": 3, "tags[]": ("a", "b", "a"),
        "items.__len__": 3, "items[].sku": ("x", "y"), "items[].qty": (2, 1.5), "items[].opts.__len__": (1,),
        "items[].opts[]": (True,), "none.__len__": 0, "n": None,
    }
    assert list(flatten_record(record))[:3] == ["id", "meta.lang", "meta.geo.cc"]  # document order
    assert flatten_record({}) == {} and flatten_record({"a": {}}) == {}
    assert flatten_record({"a.b": 1, "a": {"b": 2}}) == {"a.b": 1}  # a colliding path keeps the first


def test_flatten_record_matches_a_recursive_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(300):
        record = random_record(rng)
        assert flatten_record(record) == brute_flatten(record), record


def test_flatten_handles_nesting_past_the_recursion_limit():
    deep: dict = {"leaf": 1}
    for _ in range(5000):
        deep = {"d": deep}
    flat = flatten_record(deep)
    assert list(flat.values()) == [1] and list(flat)[0].count(".") == 5000


def test_flatten_records_equals_json_normalize_without_arrays():
    rng = np.random.default_rng(1)
    for _ in range(20):
        objects = []
        for _ in range(int(rng.integers(1, 12))):
            record = random_record(rng)
            # json_normalize keeps an empty object as a cell of its own and lists unflattened: leave them out
            text = json.dumps(record)
            if "[" not in text and "{}" not in text:
                objects.append(record)
        if not objects:
            continue
        ours = flatten_records(objects + [None, [1, 2]])
        theirs = pd.json_normalize(objects, sep=".")
        assert sorted(ours.columns) == sorted(theirs.columns)
        pd.testing.assert_frame_equal(ours, theirs[list(ours.columns)], check_dtype=False)


def test_flatten_records_keeps_unpooled_paths_and_counts():
    table = flatten_records([{"id": 1, "tags": ["a"], "m": {"k": True}}, None, "text", {"id": 2, "tags": []}])
    assert list(table.columns) == ["id", "tags.__len__", "m.k"]
    assert table["id"].tolist() == [1, 2] and table["tags.__len__"].tolist() == [1, 0]
    assert table["m.k"].iloc[0] is True and pd.isna(table["m.k"].iloc[1])
    assert flatten_records([None, [1]]).shape == (0, 0)


def test_flatten_errors():
    raises_exactly("obj: expected a JSON object (dict), got list", flatten_record, [1])
    raises_exactly("obj: expected a parsed JSON object, got float inf at $.a[1]", flatten_record,
                   {"a": [1, float("inf")]})
    raises_exactly("obj: expected a parsed JSON object, got tuple at $.a", flatten_record, {"a": (1,)})
    raises_exactly("obj: expected a parsed JSON object, got a int key 1 at $.m", flatten_record, {"m": {1: "x"}})
    raises_exactly("records: expected a non-empty list of parsed JSON values or None, got an empty list",
                   flatten_records, [])
    raises_exactly("records: expected a list of parsed JSON values or None, got dict", flatten_records, {"a": 1})
    raises_exactly("records[1]: expected a parsed JSON value or None, got set at $", valid_json_rate, [{}, {1}])
    raises_exactly("records[0]: expected a parsed JSON value or None, got float nan at $.x", valid_json_rate,
                   [{"x": float("nan")}])


# ---------------------------------------------------------------- valid_json_rate


def test_valid_json_rate_hand_case():
    est = valid_json_rate([{"a": 1}, None, [1, 2], "x", 3, True, {}, {"b": None}])
    assert isinstance(est, Estimate) and est.value == 3 / 8 and est.ci_low is None
    assert valid_json_rate([None]).value == 0.0 and valid_json_rate(({},)).value == 1.0


def test_valid_json_rate_matches_parsing_lines_independently():
    rng = np.random.default_rng(2)
    for _ in range(20):
        lines = []
        for i in range(int(rng.integers(1, 40))):
            text = json.dumps(random_record(rng) if rng.random() < 0.7 else random_json(rng))
            lines.append(text[: int(rng.integers(1, len(text)))] if rng.random() < 0.3 and len(text) > 1 else text)
        parsed = []
        for line in lines:
            try:
                parsed.append(json.loads(line))
            except json.JSONDecodeError:
                parsed.append(None)
        expected = sum(line.startswith("{") and _loads_ok(line) for line in lines) / len(lines)
        assert valid_json_rate(parsed).value == pytest.approx(expected, abs=1e-12)


def _loads_ok(line: str) -> bool:
    try:
        json.loads(line)
        return True
    except json.JSONDecodeError:
        return False


def test_valid_json_rate_bootstrap_is_the_mean_of_the_indicators():
    records = [{"a": 1}, None, {}, [1], {"b": 2}, None, {}]
    est = valid_json_rate(records, n_boot=200, seed=4)
    ref = mean_estimate(np.array([1, 0, 1, 0, 1, 0, 1], dtype=float), n_boot=200, seed=4)
    assert est == ref and est.ci_low < est.value < est.ci_high


def test_valid_json_rate_falls_as_outputs_get_malformed():
    rng = np.random.default_rng(3)
    values = [valid_json_rate([corrupt(rng, ticket(rng, i), p, 0.0) for i in range(400)]).value
              for p in (0.0, 0.1, 0.3, 0.6)]
    assert values[0] == 1.0 and all(a > b for a, b in zip(values, values[1:]))


# ---------------------------------------------------------------- schema


def test_schema_violations_hand_case():
    records = [
        {"id": 1, "category": "billing", "score": 50.5, "tags": ["vip"], "meta": {"lang": "en"}},
        {"id": 2, "category": "billing", "score": "50"},
        {"id": 3, "score": 1},
        {"id": 4, "category": "billing", "score": 1, "extra": True},
        {"id": 5, "category": "billing", "score": 1, "tags": ["vip", "nope"]},
        None,
        "a string",
    ]
    assert schema_violations(records, SCHEMA) == [
        None,
        "$.score: '50' is not of type 'number'",
        "$: 'category' is a required property",
        "$: Additional properties are not allowed ('extra' was unexpected)",
        f"$.tags[1]: 'nope' is not one of {TAGS!r}",
        "$: not valid JSON (the line did not parse)",
        "$: not a JSON object (got a string)",
    ]
    est = schema_correctness_rate(records, SCHEMA)
    assert est.value == pytest.approx(1 / 7)
    # A schema accepting anything still does not make a non-object a record.
    assert schema_violations([[1], 2.5, False], True) == [
        "$: not a JSON object (got an array)", "$: not a JSON object (got a number)",
        "$: not a JSON object (got a boolean)"]


def test_schema_correctness_agrees_with_jsonschema_iter_errors():
    rng = np.random.default_rng(5)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for _ in range(10):
        records = [corrupt(rng, ticket(rng, i), 0.1, float(rng.random()) * 0.5) for i in range(60)]
        records += [[1, 2], "x"]
        violations = schema_violations(records, SCHEMA)
        for record, violation in zip(records, violations):
            n_errors = sum(1 for _ in validator.iter_errors(record)) if isinstance(record, dict) else 1
            assert (violation is None) == (n_errors == 0)
            if isinstance(record, dict) and n_errors:
                best = jsonschema.exceptions.best_match(validator.iter_errors(record))
                assert violation == f"{best.json_path}: {best.message}"
        expected = sum(isinstance(r, dict) and validator.is_valid(r) for r in records) / len(records)
        assert schema_correctness_rate(records, SCHEMA).value == pytest.approx(expected, abs=1e-12)
        assert schema_correctness_rate(records, SCHEMA).value <= valid_json_rate(records).value


def test_the_schema_dialect_picks_the_validator():
    # Draft 7 reads an array "items" as a tuple of schemas; Draft 2020-12 refuses it (prefixItems there).
    tuple_schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                    "properties": {"pair": {"items": [{"type": "string"}, {"type": "integer"}]}}}
    assert type(json_schema_validator(tuple_schema)).__name__ == "Draft7Validator"
    assert schema_violations([{"pair": ["a", 1]}, {"pair": ["a", "b"]}], tuple_schema) == [
        None, "$.pair[1]: 'b' is not of type 'integer'"]
    no_dialect = {key: value for key, value in tuple_schema.items() if key != "$schema"}
    assert type(json_schema_validator({"type": "object"})).__name__ == "Draft202012Validator"
    raises_exactly("schema: not a valid JSON Schema (Draft202012Validator): [{'type': 'string'}, {'type': 'integer'}] "
                   "is not of type 'object', 'boolean' at $.properties.pair.items", schema_violations, [{}], no_dialect)


def test_schema_errors():
    raises_exactly("schema: expected a JSON Schema (a dict or bool), got list", schema_correctness_rate, [{}], [])
    raises_exactly("schema: not a valid JSON Schema (Draft202012Validator): 3 is not of type 'array' at $.required",
                   schema_violations, [{}], {"required": 3})
    raises_exactly("records: expected a non-empty list of parsed JSON values or None, got an empty list",
                   schema_correctness_rate, [], SCHEMA)


def test_schema_correctness_falls_as_violations_rise():
    rng = np.random.default_rng(6)
    values = [schema_correctness_rate([corrupt(rng, ticket(rng, i), 0.02, p) for i in range(400)], SCHEMA).value
              for p in (0.0, 0.1, 0.3, 0.6)]
    assert values[0] > 0.95 and all(a > b for a, b in zip(values, values[1:]))


# ---------------------------------------------------------------- coverage


def brute_paths(records) -> set[str]:
    return {p for r in records if isinstance(r, dict) for p, _, _ in brute_leaves(r)}


def test_field_coverage_hand_case():
    ref = [{"id": 1, "meta": {"lang": "en", "vip": True}, "tags": ["a"]}, {"id": 2, "note": None}]
    # reference paths: id, meta.lang, meta.vip, tags.__len__, tags[], note
    assert field_coverage([{"id": 5, "tags": [], "other": 1}, None], ref) == pytest.approx(2 / 6)
    assert field_coverage([{"note": None, "meta": {"vip": False, "lang": "x"}, "tags": ["q"], "id": 0}], ref) == 1.0
    assert field_coverage([None, [1], "x"], ref) == 0.0


def test_field_coverage_matches_brute_force_paths():
    rng = np.random.default_rng(7)
    for _ in range(50):
        ref = [random_record(rng) for _ in range(int(rng.integers(1, 8)))]
        rnd = [random_record(rng) if rng.random() < 0.8 else None for _ in range(int(rng.integers(1, 8)))]
        ref_paths = brute_paths(ref)
        if not ref_paths:
            continue
        assert field_coverage(rnd, ref) == pytest.approx(len(ref_paths & brute_paths(rnd)) / len(ref_paths))


def test_categorical_value_coverage_hand_case():
    ref = [{"c": "a", "f": True, "n": 1, "tags": ["x", "y"], "mixed": "s"},
           {"c": "b", "f": False, "n": 2, "tags": ["z"], "mixed": 3},
           {"c": "c", "f": None, "tags": []}]
    assert {p: sorted(v) for p, v in categorical_values(ref).items()} == {
        "c": ["a", "b", "c"], "f": [False, True], "tags[]": ["x", "y", "z"]}  # n, mixed and counts are not
    rnd = [{"c": "a", "f": "True", "tags": ["y", "q"]}, {"c": "a", "f": False, "tags": []}, None]
    # (c,a), (f,False), (tags[],y) of 8 pairs; the string "True" is not the boolean true
    assert categorical_value_coverage(rnd, ref) == pytest.approx(3 / 8)
    assert categorical_value_coverage(ref, ref) == 1.0
    # With at most 2 categories, c (3 values) and tags[] (3) are free text: only f's 2 values count.
    assert categorical_value_coverage(rnd, ref, max_categories=2) == pytest.approx(1 / 2)


def test_categorical_value_coverage_matches_brute_force():
    rng = np.random.default_rng(8)
    for _ in range(50):
        ref = [random_record(rng) for _ in range(int(rng.integers(1, 10)))]
        rnd = [random_record(rng) for _ in range(int(rng.integers(1, 10)))]
        by_path: dict = {}
        for path, value, _ in (leaf for r in ref for leaf in brute_leaves(r)):
            if value is not None:
                by_path.setdefault(path, []).append(value)
        categorical = {p: {json.dumps(v) for v in vs} for p, vs in by_path.items()
                       if all(isinstance(v, (str, bool)) for v in vs) and len({json.dumps(v) for v in vs}) <= 3}
        pairs = {(p, v) for p, vs in categorical.items() for v in vs}
        if not pairs:
            raises_exactly("reference_records: no categorical path (str or bool leaves with at most max_categories=3 "
                           "distinct values)", categorical_value_coverage, rnd, ref, max_categories=3)
            continue
        seen = {(p, json.dumps(v)) for r in rnd for p, v, _ in brute_leaves(r)}
        expected = len(pairs & seen) / len(pairs)
        assert categorical_value_coverage(rnd, ref, max_categories=3) == pytest.approx(expected)


def test_coverage_falls_as_the_generator_narrows():
    rng = np.random.default_rng(9)
    ref = [ticket(rng, i) for i in range(300)]
    fields, values = [], []
    for n_categories, n_tags, p_optional in ((8, 6, 0.5), (5, 4, 0.2), (3, 2, 0.05), (1, 1, 0.0)):
        rnd = [ticket(rng, i, n_categories=n_categories, n_tags=n_tags, p_optional=p_optional) for i in range(300)]
        fields.append(field_coverage(rnd, ref))
        values.append(categorical_value_coverage(rnd, ref))
    assert fields[0] == values[0] == 1.0
    assert all(a >= b for a, b in zip(fields, fields[1:])) and fields[-1] < fields[0]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_coverage_errors():
    raises_exactly("reference_records: no field path: no record is a JSON object with a leaf or an array",
                   field_coverage, [{}], [{}, None, [1]])
    raises_exactly("reference_records: no categorical path (str or bool leaves with at most max_categories=50 "
                   "distinct values)", categorical_value_coverage, [{}], [{"n": 1}])
    raises_exactly("max_categories: expected a positive integer, got 0", categorical_value_coverage, [{}],
                   [{"c": "a"}], max_categories=0)
    raises_exactly("reference_records: expected a non-empty list of parsed JSON values or None, got an empty list",
                   field_coverage, [{}], [])


# ---------------------------------------------------------------- mean_match_percentage


def test_mean_match_percentage_hand_case():
    truth = [{"id": 1, "name": "ann", "age": 30, "tags": ["a", "b"]},
             {"id": 2, "name": "bo", "age": 41, "tags": []},
             {"id": "3", "name": "cy"}]
    out = [
        {"id": 1.0, "name": "ann", "age": 30.0, "tags": ["b", "a"]},  # id 1.0 aligns; tags out of order
        {"id": 2, "name": "bo", "age": True, "tags": [], "extra": 1},  # True is not 41
        {"id": 2, "name": "bo", "age": 41, "tags": []},  # a duplicate key: ignored
        {"id": 3, "name": "cy"},  # 3 is not "3": unaligned
        None,
    ]
    # id 1: name, age, tags.__len__ match, tags[] does not: 3/4; id 2: name, tags.__len__ of 3 paths: 2/3
    est = mean_match_percentage(out, truth, "id", n_boot=100, seed=1)
    assert est.value == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert est == mean_estimate(np.array([3 / 4, 2 / 3]), n_boot=100, seed=1)
    nested = mean_match_percentage([{"m": {"k": 1}, "v": "x"}], [{"m": {"k": 1}, "v": "y", "w": 0}], "m.k")
    assert nested.value == 0.0


def test_mean_match_percentage_matches_brute_force():
    rng = np.random.default_rng(10)
    for _ in range(30):
        truth = [dict(random_record(rng), key=i) for i in range(int(rng.integers(1, 12)))]
        truth = [t for t in truth if len(brute_flatten(t)) > 1]
        if not truth:
            continue
        out = []
        for t in truth:
            if rng.random() < 0.8:
                noisy = {k: (v if k == "key" or rng.random() < 0.6 else random_json(rng, 1)) for k, v in t.items()}
                out.append(noisy)
        out.append(None)
        rng.shuffle(out)
        shares = []
        for t in truth:
            match = next((o for o in out if isinstance(o, dict) and o.get("key") == t["key"]), None)
            if match is None:
                continue
            want, got = brute_flatten(t), brute_flatten(match)
            want.pop("key")
            shares.append(sum(p in got and json.dumps(got[p]) == json.dumps(v)
                              for p, v in want.items()) / len(want))
        if not shares:
            with pytest.raises(ValueError, match="no round record aligns"):
                mean_match_percentage(out, truth, "key")
            continue
        # random_json's values are ints or non-integral floats, so json.dumps equality is numeric equality here
        assert mean_match_percentage(out, truth, "key").value == pytest.approx(np.mean(shares))


def test_same_leaf_compares_numbers_as_numbers():
    assert same_leaf(1, 1.0) and not same_leaf(1, "1") and not same_leaf(0, False) and not same_leaf(None, 0)
    assert same_leaf(("a", 2), ("a", 2.0)) and not same_leaf(("a",), ("a", "a")) and not same_leaf(("a",), "a")


def test_mean_match_percentage_falls_as_extraction_degrades():
    rng = np.random.default_rng(11)
    truth = [ticket(rng, i) for i in range(200)]
    values = []
    for noise in (0.0, 0.2, 0.5, 0.9):
        out = [{k: (v if rng.random() >= noise else "wrong") for k, v in t.items() if k != "id"} | {"id": t["id"]}
               for t in truth]
        values.append(mean_match_percentage(out, truth, "id").value)
    assert values[0] == 1.0 and all(a > b for a, b in zip(values, values[1:]))


def test_mean_match_percentage_errors():
    truth = [{"id": 1, "a": 1}]
    raises_exactly("key: expected a dotted path of object keys outside arrays (e.g. 'id' or 'meta.id'), got 'a..b'",
                   mean_match_percentage, [{}], truth, "a..b")
    raises_exactly("truth_records[1]: key 1.0 repeats truth_records[0]'s; ground truth holds one record per key",
                   mean_match_percentage, [{}], truth + [{"id": 1.0, "a": 2}], "id")
    raises_exactly("truth_records[0]: expected a str, number or bool at key path 'id', got nothing",
                   mean_match_percentage, [{}], [{"a": 1}], "id")
    raises_exactly("truth_records[0]: expected a str, number or bool at key path 'id', got nothing",
                   mean_match_percentage, [{}], [{"id": None, "a": 1}], "id")
    raises_exactly("truth_records[0]: no field besides the key path 'id': nothing to match",
                   mean_match_percentage, [{}], [{"id": 1}], "id")
    raises_exactly("truth_records[0]: expected a JSON object, got null (a line that did not parse)",
                   mean_match_percentage, [{}], [None], "id")
    raises_exactly("records: no round record aligns with a truth record by key path 'id'",
                   mean_match_percentage, [{"id": 2, "a": 1}, None], truth, "id")


# ---------------------------------------------------------------- suite


def test_json_suite_computes_every_defined_metric_in_order():
    rng = np.random.default_rng(12)
    ref = [ticket(rng, i) for i in range(80)]
    rnd = [corrupt(rng, ticket(rng, i, n_categories=4), 0.1, 0.1) for i in range(80)]
    out = json_suite(rnd, ref, schema=SCHEMA, truth_records=ref, key="id", n_boot=50, seed=2)
    assert tuple(out) == JSON_METRIC_NAMES
    assert out["valid_json_rate"] == valid_json_rate(rnd, n_boot=50, seed=2)
    assert out["schema_correctness_rate"] == schema_correctness_rate(rnd, SCHEMA, n_boot=50, seed=2)
    assert out["field_coverage"] == Estimate(field_coverage(rnd, ref))
    assert out["categorical_value_coverage"] == Estimate(categorical_value_coverage(rnd, ref))
    assert out["mean_match_percentage"] == mean_match_percentage(rnd, ref, "id", n_boot=50, seed=2)
    assert out["valid_json_rate"].ci_low is not None and out["field_coverage"].ci_low is None
    bare = json_suite([{"n": 1}], [{"n": 2}], n_boot=0)
    assert list(bare) == ["valid_json_rate", "field_coverage"]  # no schema, no categorical path, no truth
    unaligned = json_suite([{"id": 9}], [{"id": 1, "c": "a"}], truth_records=[{"id": 1, "c": "a"}], key="id", n_boot=0)
    assert "mean_match_percentage" not in unaligned


def test_json_suite_errors():
    raises_exactly("key: expected truth_records and key together or neither, got a key without truth_records",
                   json_suite, [{}], [{"a": 1}], key="id")
    raises_exactly("key: expected truth_records and key together or neither, got truth_records without a key",
                   json_suite, [{}], [{"a": 1}], truth_records=[{"a": 1}])
    raises_exactly("n_boot: expected a non-negative integer, got -1", json_suite, [{}], [{"a": 1}], n_boot=-1)
