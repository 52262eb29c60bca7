"""``load_json_records``, ``load_json_schema``, ``json_records_from_strings``: JSON-records rounds, lenient rounds,
strict references, one-line refusals."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from metrics_core.json_records import flatten_records, valid_json_rate
from monitor.errors import InputError
from monitor.inputs.json_records import (
    LoadedJsonRecords,
    json_records_from_strings,
    load_json_records,
    load_json_schema,
)


def _write(path, lines, newline="\n"):
    path.write_text("".join(line + newline for line in lines), encoding="utf-8")
    return path


def _message(fn, *args, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


ROUND = [
    '{"id": 1, "category": "billing", "tags": ["vip"], "meta": {"lang": "en"}}',
    "",
    '{"id": 2, "category": "shipping", "tags": [',  # truncated: kept, not parsed
    "[1, 2]",  # JSON, but not a record
    '{"id": 3, "score": NaN}',  # NaN is not JSON
    "null",
    "   ",
    '{"id": 4, "category": "billing"}',
]


def test_a_round_keeps_every_output_and_parses_what_it_can(tmp_path):
    path = _write(tmp_path / "round.jsonl", ROUND)
    loaded = load_json_records(path, "round", 2)
    assert isinstance(loaded, LoadedJsonRecords) and loaded.modality == "json"
    assert len(loaded) == loaded.n_used == loaded.n_total == 6  # the two blank lines are not outputs
    assert loaded.records == ({"id": 1, "category": "billing", "tags": ["vip"], "meta": {"lang": "en"}}, None,
                              [1, 2], None, None, {"id": 4, "category": "billing"})
    assert loaded.raw == tuple(line for line in ROUND if line.strip())
    assert loaded.texts == list(loaded.raw)
    assert loaded.fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()
    assert valid_json_rate(list(loaded.records)).value == pytest.approx(2 / 6)
    table = loaded.table()
    assert table.equals(flatten_records(list(loaded.records)))
    assert list(table.columns) == ["id", "category", "tags.__len__", "meta.lang"] and table["id"].tolist() == [1, 4]
    with pytest.raises(AttributeError):
        loaded.records = ()  # frozen


def test_crlf_and_a_byte_order_mark_are_line_rules_not_outputs(tmp_path):
    path = tmp_path / "round.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n{"a": 2}\r\n')
    loaded = load_json_records(path, "reference")
    assert loaded.records == ({"a": 1}, {"a": 2}) and loaded.raw == ('{"a": 1}', '{"a": 2}')


def test_max_samples_keeps_a_seeded_choice_in_file_order_and_take_rows_picks_rows(tmp_path):
    path = _write(tmp_path / "pool.jsonl", [json.dumps({"i": i}) if i % 5 else "{broken" for i in range(40)])
    loaded = load_json_records(path, "round", 1, max_samples=10, seed=4)
    picked = [int(json.loads(r)["i"]) if r != "{broken" else None for r in loaded.raw]
    assert len(loaded) == 10 and loaded.n_total == 40
    assert [r["i"] if r else None for r in loaded.records] == [p for p in picked]
    kept = [i for i in picked if i is not None]
    assert kept == sorted(kept)
    assert load_json_records(path, "round", 1, max_samples=10, seed=4).raw == loaded.raw
    assert load_json_records(path, "round", 1, max_samples=10, seed=5).raw != loaded.raw
    whole = load_json_records(path, "pool")
    rows = whole.take_rows(np.array([3, 0, 5]))
    assert rows.records == (whole.records[3], whole.records[0], whole.records[5])
    assert rows.raw == ('{"i": 3}', "{broken", "{broken") and len(rows) == rows.n_total == 3
    assert rows.fingerprint == whole.fingerprint


@pytest.mark.parametrize("lines, message", [
    (['{"a": 1}', '{"a": 2'], "line 2: not valid JSON: Expecting ',' delimiter at column 8"),
    (['{"a": 1}', "", "{'a': 1}"], "line 3: not valid JSON: Expecting property name enclosed in double quotes at "
                                   "column 2"),
    (['{"a": NaN}'], "line 1: not valid JSON: NaN is not a JSON value"),
    (['{"a": -Infinity}'], "line 1: not valid JSON: -Infinity is not a JSON value"),
    (['{"a": 1} x'], "line 1: not valid JSON: Extra data at column 10"),
    (["[1, 2]"], "line 1: expected a JSON object, got an array"),
    (['"text"'], "line 1: expected a JSON object, got a string"),
    (["3.5"], "line 1: expected a JSON object, got a number"),
    (["true"], "line 1: expected a JSON object, got a boolean"),
    (["null"], "line 1: expected a JSON object, got null"),
    (["[" * 100_000 + "]" * 100_000], "line 1: not valid JSON: nested too deeply"),
    ([], "empty: no records"),
    (["", "  "], "empty: no records"),
])
def test_each_bad_reference_line_is_one_line_naming_file_role_and_line(tmp_path, lines, message):
    path = _write(tmp_path / "ref.jsonl", lines)
    assert _message(load_json_records, path, "reference") == f"{path} (reference): {message}"
    if "empty" not in message:  # a round keeps the same line as an output that is not a record
        loaded = load_json_records(path, "round", 3)
        assert loaded.records[-1] is None or not isinstance(loaded.records[-1], dict)
        assert _message(load_json_records, path, "round", 3, strict=True) == f"{path} (round, round 3): {message}"


def test_strict_can_be_switched_either_way(tmp_path):
    path = _write(tmp_path / "ref.jsonl", ['{"a": 1}', "{"])
    assert load_json_records(path, "reference", strict=False).records == ({"a": 1}, None)
    with pytest.raises(ValueError, match="^strict: expected True, False or None, got 'yes'$"):
        load_json_records(path, "round", 1, strict="yes")


def test_files_that_cannot_be_read(tmp_path):
    missing = tmp_path / "missing.jsonl"
    assert _message(load_json_records, missing, "round", 1) == f"{missing} (round, round 1): file not found"
    txt = _write(tmp_path / "round.txt", ['{"a": 1}'])
    assert _message(load_json_records, txt, "round", 1) == \
        f"{txt} (round, round 1): modality json cannot read a .txt file (json reads .jsonl)"
    yaml = _write(tmp_path / "round.yaml", ["a: 1"])
    assert _message(load_json_records, yaml, "reference") == (
        f"{yaml} (reference): unsupported file type (extension '.yaml'); expected one of .npy, .txt, .jsonl, .csv, "
        ".parquet, .log, .npz")
    bad_utf8 = tmp_path / "utf8.jsonl"
    bad_utf8.write_bytes(b'{"a": 1}\n{"a": "\xff"}\n')
    assert _message(load_json_records, bad_utf8, "round", 2) == (
        f"{bad_utf8} (round, round 2): line 2: not valid UTF-8 at byte offset 7 (byte 16 of the file): bytes ff")
    long = _write(tmp_path / "long.jsonl", ['{"a": 1}', '{"a": "' + "x" * 200 + '"}'])
    assert _message(load_json_records, long, "round", 2, max_line_bytes=100) == (
        f"{long} (round, round 2): line 2: longer than the limit of 100 bytes (max_line_bytes=100); refused "
        "without reading it whole")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert _message(load_json_records, empty, "round", 2) == f"{empty} (round, round 2): empty: no records"
    with pytest.raises(ValueError, match="^max_samples: expected a positive integer or None, got 0$"):
        load_json_records(long, "round", 1, max_samples=0)


def test_in_memory_outputs_are_read_like_a_file_and_fingerprinted_like_it(tmp_path):
    lines = [line for line in ROUND]
    loaded = json_records_from_strings(lines, "generated")
    from_file = load_json_records(_write(tmp_path / "same.jsonl", lines), "round", 1)
    assert loaded.records == from_file.records and loaded.raw == from_file.raw
    assert loaded.fingerprint == from_file.fingerprint and str(loaded.path) == "<memory>"
    sub = json_records_from_strings(lines, "generated", max_samples=3, seed=1)
    assert len(sub) == 3 and sub.n_total == 6
    assert _message(json_records_from_strings, ['{"a": 1}', '{"a":\n1}'], "generated") == \
        "generated: line 2: an output holds a line break; a .jsonl line cannot"
    assert _message(json_records_from_strings, ['{"a": 1}', 3], "generated") == \
        "generated: line 2: expected a str, got int"
    assert _message(json_records_from_strings, '{"a": 1}', "generated") == \
        "generated: expected a list of str (one output each), got str"
    assert _message(json_records_from_strings, ["", " "], "generated") == "generated: empty: no records"
    assert _message(json_records_from_strings, ['{"a": 1}', "{"], "generated", strict=True) == \
        "generated: line 2: not valid JSON: Expecting property name enclosed in double quotes at column 2"


# ---------------------------------------------------------------- schema files

GOOD_SCHEMA = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}


def test_a_schema_file_is_read_and_checked(tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(GOOD_SCHEMA, indent=2), encoding="utf-8")
    assert load_json_schema(path) == GOOD_SCHEMA
    draft7 = tmp_path / "draft7.json"
    draft7.write_text(json.dumps({"$schema": "http://json-schema.org/draft-07/schema#",
                                  "properties": {"p": {"items": [{"type": "string"}]}}}), encoding="utf-8")
    assert load_json_schema(draft7)["properties"]["p"]["items"] == [{"type": "string"}]  # a Draft 7 tuple


@pytest.mark.parametrize("name, content, message", [
    ("s.json", '{"type": "object",\n  "required": ["id"]\n  "x": 1}',
     "not valid JSON: Expecting ',' delimiter at line 3 column 3"),
    ("s.json", "", "not valid JSON: Expecting value at line 1 column 1"),
    ("s.json", '{"minimum": NaN}', "not valid JSON: NaN is not a JSON value"),
    ("s.json", "[1]", "expected a JSON object (a JSON Schema), got an array"),
    ("s.json", "true", "expected a JSON object (a JSON Schema), got a boolean"),
    ("s.json", '{"type": "objekt"}',
     "not a valid JSON Schema (Draft202012Validator): 'objekt' is not valid under any of the given schemas at $.type"),
    ("s.json", '{"properties": {"id": {"minimum": "3"}}}',
     "not a valid JSON Schema (Draft202012Validator): '3' is not of type 'number' at $.properties.id.minimum"),
    ("s.json", '{"$schema": "http://json-schema.org/draft-07/schema#", "minItems": -1}',
     "not a valid JSON Schema (Draft7Validator): -1 is less than the minimum of 0 at $.minItems"),
    ("s.yaml", "type: object", "unsupported file type (extension '.yaml'); a JSON Schema file is .json"),
])
def test_each_bad_schema_file_is_one_line_naming_it(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert _message(load_json_schema, path) == f"{path} (schema): {message}"


def test_schema_files_that_cannot_be_read(tmp_path):
    missing = tmp_path / "missing.json"
    assert _message(load_json_schema, missing) == f"{missing} (schema): file not found"
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"title": "caf\xe9"}')
    assert _message(load_json_schema, bad) == f"{bad} (schema): not valid UTF-8 at byte 14"
