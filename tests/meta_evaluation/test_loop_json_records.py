"""Tests for the L7-json loop (meta_evaluation/loop_json_records.py) and its example (scripts/make_json_example.py)."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pytest

from metrics_core.json_records import (
    categorical_value_coverage,
    schema_correctness_rate,
    schema_violations,
    valid_json_rate,
)
from monitor.inputs.json_records import json_records_from_strings, load_json_records, load_json_schema
from monitor.meta_evaluation import loop_json_records as J

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "monitor" / "data"
SMALL = dict(n_audit=40, n_reference=30)


def _same_trace(a, b) -> bool:
    return (a.name == b.name and a.onset == b.onset and a.reference == b.reference and a.rounds == b.rounds
            and np.array_equal(a.generations, b.generations) and a.truth.keys() == b.truth.keys()
            and all(np.array_equal(a.truth[k], b.truth[k]) for k in a.truth))


def _records(lines):
    return list(json_records_from_strings(lines, "generated").records)


def test_outputs_follow_the_schema_unless_faulted():
    rng = np.random.default_rng(0)
    clean = J.sample_lines(J.initial_parameters(), 300, rng, clean=True)
    records = _records(clean)
    assert schema_violations(records, J.SCHEMA) == [None] * 300
    assert [r["id"] for r in records] == list(range(300))
    assert 0.3 < np.mean(["resolution" in r for r in records]) < 0.5  # the optional field, 40% at generation 0
    broken = J.sample_lines(dict(J.initial_parameters(), violation=1.0), 400, rng)
    violations = schema_violations(_records(broken), J.SCHEMA)
    malformed = [v for v in violations if v == "$: not valid JSON (the line did not parse)"]
    as_string = [v for v in violations if v and v.startswith("$.score: '") and "is not of type 'number'" in v]
    extra = [v for v in violations if v == "$: Additional properties are not allowed ('comment' was unexpected)"]
    assert None not in violations and len(malformed) + len(as_string) + len(extra) == 400
    assert 160 < len(malformed) < 240 and 70 < len(as_string) < 130 and 70 < len(extra) < 130
    assert all(line.startswith("{") for line in broken)  # a malformed output is a cut, never an empty line


def test_generation_zero_truth_by_hand():
    truth = J.json_truth([J.initial_parameters()])
    entropies = [-sum(p * np.log(p) for p in probs) for probs in J._P0.values()]
    assert truth["mean_field_entropy"][0] == pytest.approx(np.mean(entropies))
    assert truth["value_support"][0] == 8 + 4 + 5 + 5 + 5 + 10 + 4 == 41
    assert truth["violation_probability"][0] == J.V0 == 0.02
    assert truth["valid_json_probability"][0] == pytest.approx(0.99)
    assert truth["schema_valid_probability"][0] == pytest.approx(0.98)


def test_the_refit_is_maximum_likelihood_on_the_parsed_outputs():
    params = J.initial_parameters()
    sim = J._sample(dict(params, violation=0.5), 50, np.random.default_rng(3))
    refit = J._refit(params, sim)
    parsed = sim["fault"] != 1
    for name in J._PER_RECORD:
        values = sim[name][parsed]
        assert refit[name] == pytest.approx([np.mean(values == k) for k in range(len(J.FIELDS[name]))])
    tags = [t for tags, ok in zip(sim["tags"], parsed) if ok for t in tags]
    assert refit["tag"] == pytest.approx([tags.count(k) / len(tags) for k in range(len(J.TAGS))])
    assert refit["score_std"] == pytest.approx(np.std(sim["score"][parsed]))
    bad = np.mean(sim["fault"] != 0)
    assert refit["violation"] == pytest.approx(bad + J.EPSILON * (1 - bad))


def test_the_control_is_constant():
    c0 = J.json_records_loop(0, 6, workflow="no_feedback", **SMALL)
    assert c0.name == "C0-L7-json" and c0.kind == "control" and c0.onset is None and c0.modality == "json"
    for name, values in c0.truth.items():
        assert np.all(values == values[0]), name
    assert len({tuple(r) for r in c0.rounds}) == len(c0.rounds)  # fresh draws of one generator
    assert J.CONTROLS["C0-L7-json"](0, 6, **SMALL).truth.keys() == c0.truth.keys()


def test_the_truth_moves_the_documented_way():
    ends_v, ends_h = [], []
    for seed in range(10):
        trace = J.json_records_loop(seed, 30, **SMALL)
        t = trace.truth
        assert np.all(np.diff(t["value_support"]) <= 0) and t["value_support"][-1] < t["value_support"][0]
        h = t["mean_field_entropy"]
        assert trace.onset is not None and h[trace.onset] < 0.5 * h[0] <= h[trace.onset - 1]
        assert np.all(h[: trace.onset] >= 0.5 * h[0])
        ends_v.append(t["violation_probability"][-1])
        ends_h.append(h[-1] / h[0])
    assert [J.json_records_loop(s, 30, **SMALL).onset for s in range(10)] == [15, 16, 10, 14, 12, 15, 11, 15, 15, 15]
    assert np.mean(ends_v) > 5 * J.V0 and max(ends_h) < 0.5


def test_seeded_determinism_and_audit_stride():
    a = J.json_records_loop(4, 10, **SMALL)
    assert _same_trace(a, J.json_records_loop(4, 10, **SMALL))
    assert not _same_trace(a, J.json_records_loop(5, 10, **SMALL))
    strided = J.json_records_loop(4, 10, audit_every=5, **SMALL)
    assert strided.generations.tolist() == [0, 5, 10]
    assert all(np.array_equal(strided.truth[k], a.truth[k]) for k in a.truth) and strided.onset == a.onset
    assert strided.rounds == [a.rounds[0], a.rounds[5], a.rounds[10]]  # audit streams are per generation
    with pytest.raises(ValueError, match="workflow: expected one of"):
        J.json_records_loop(0, 3, workflow="accumulate")


def test_rounds_and_reference_read_like_files_and_the_metrics_see_the_collapse():
    trace = J.json_records_loop(0, 30, n_audit=150, n_reference=200)
    reference = json_records_from_strings(trace.reference, "reference", strict=True)
    assert len(reference) == 200 and schema_correctness_rate(list(reference.records), J.SCHEMA).value == 1.0
    first, last = _records(trace.rounds[0]), _records(trace.rounds[-1])
    assert len(first) == len(last) == 150
    ref = list(reference.records)
    assert categorical_value_coverage(last, ref) < categorical_value_coverage(first, ref) - 0.3
    t = trace.truth
    assert t["violation_probability"][-1] > 0.2  # seed 0 ends with many bad outputs
    assert schema_correctness_rate(last, J.SCHEMA).value < schema_correctness_rate(first, J.SCHEMA).value - 0.1
    assert valid_json_rate(last).value < valid_json_rate(first).value


def test_a_round_is_fast():
    params = J.json_parameters(0, 10)[10]
    start = time.perf_counter()
    J.sample_lines(params, 200, np.random.default_rng(0))
    assert time.perf_counter() - start < 0.5


def test_the_example_is_reproducible_and_loads(tmp_path):
    spec = importlib.util.spec_from_file_location("make_json_example", REPO / "scripts" / "make_json_example.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--out", str(tmp_path)]) == 0
    shipped = sorted(p.relative_to(DATA) for p in [DATA / "json_reference.jsonl", DATA / "json_schema.json",
                                                   *(DATA / "json_rounds").glob("*.jsonl")])
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert written == shipped and len(written) == 9
    for rel in written:
        assert (tmp_path / rel).read_bytes() == (DATA / rel).read_bytes(), rel
    assert sum((DATA / rel).stat().st_size for rel in shipped) < 200_000
    schema = load_json_schema(DATA / "json_schema.json")
    assert schema == json.loads(json.dumps(J.SCHEMA))
    reference = load_json_records(DATA / "json_reference.jsonl", "reference")
    rounds = [load_json_records(DATA / "json_rounds" / f"round_{g}.jsonl", "round", g) for g in range(7)]
    assert len(reference) == 120 and [len(r) for r in rounds] == [60] * 7
    ref = list(reference.records)
    coverage = [categorical_value_coverage(list(r.records), ref) for r in rounds]
    correct = [schema_correctness_rate(list(r.records), schema).value for r in rounds]
    assert coverage[-1] < coverage[0] - 0.5 and correct[-1] < correct[0] - 0.3
