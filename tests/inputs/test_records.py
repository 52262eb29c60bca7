"""``load_records``: reasoning rounds from JSONL records, whole questions kept, one-line refusals."""

from __future__ import annotations

import hashlib
import json

import pytest

from monitor import inputs
from monitor.errors import InputError
from monitor.inputs.records import LoadedRecords, load_records


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_a_good_file_keeps_ids_numbers_as_their_text_and_optional_fields(tmp_path):
    path = _write(tmp_path / "round.jsonl", [
        '{"question_id": 1, "answer": 0.50, "rationale": "half of one", "ok": true}',
        "",
        '{"question_id": "q2", "answer": "Paris"}',
        '   ',
        '{"question_id": 1, "answer": 1e3, "rationale": null, "ok": false}',
    ])
    loaded = load_records(path, "round", 3)
    assert isinstance(loaded, LoadedRecords) and inputs.LoadedRecords is LoadedRecords
    assert loaded.question_ids == (1, "q2", 1)
    assert loaded.answers == ("0.50", "Paris", "1e3")
    assert loaded.rationales == ("half of one", "", "")
    assert loaded.texts == ["half of one", "Paris", "1e3"]
    assert loaded.n_total == len(loaded) == loaded.n_used == 3
    assert loaded.fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.gold is None and loaded.passed is None and loaded.samples_per_question() == {1: 2, "q2": 1}
    # q2 has no "ok": the passed field is required once named
    with pytest.raises(InputError, match=r"line 3: no field 'ok'"):
        load_records(path, "round", 4, passed_field="ok")
    assert load_records(path, "round", 3) is loaded  # remembered while unchanged


def test_passed_and_renamed_fields(tmp_path):
    path = _write(tmp_path / "code.jsonl", [
        json.dumps({"task": "t1", "program": "def f(): pass", "why": "stub", "ok": True}),
        json.dumps({"task": "t1", "program": "def f(:", "ok": False}),
    ])
    loaded = load_records(path, "round", 0, question_field="task", answer_field="program", rationale_field="why",
                          passed_field="ok")
    assert loaded.question_ids == ("t1", "t1") and loaded.passed == (True, False)
    assert loaded.answers == ("def f(): pass", "def f(:") and loaded.rationales == ("stub", "")


def test_max_samples_keeps_whole_questions_seeded_in_file_order(tmp_path):
    lines = [json.dumps({"question_id": f"q{i % 10}", "answer": str(i)}) for i in range(30)]  # 10 questions x 3
    path = _write(tmp_path / "round.jsonl", lines)
    loaded = load_records(path, "round", 1, max_samples=9, seed=4)
    counts = loaded.samples_per_question()
    assert len(counts) == 3 and set(counts.values()) == {3} and loaded.n_total == 30 and len(loaded) == 9
    assert [int(a) for a in loaded.answers] == sorted(int(a) for a in loaded.answers)  # file order
    again = load_records(path, "round", 2, max_samples=9, seed=4)
    assert again.question_ids == loaded.question_ids
    other = load_records(path, "round", 1, max_samples=9, seed=5)
    assert set(other.question_ids) != set(loaded.question_ids)
    # a cap below one question's records still keeps one whole question
    one = load_records(path, "round", 1, max_samples=2, seed=0)
    assert len(one.samples_per_question()) == 1 and len(one) == 3
    assert load_records(path, "round", 1, max_samples=30).question_ids == tuple(f"q{i % 10}" for i in range(30))


@pytest.mark.parametrize("lines, message", [
    (['{"question_id": 1, "answer": "a"}', '{"question_id": 2, "answer": null}'],
     "line 2: field 'answer': expected a string or number, got null"),
    (['{"question_id": 1, "answer": true}'], "line 1: field 'answer': expected a string or number, got a boolean (true)"),
    (['{"question_id": 1, "answer": ["a"]}'],
     "line 1: field 'answer': expected a string or number, got an array ([\"a\"])"),
    (['{"question_id": 1, "text": "a"}'], "line 1: no field 'answer' (fields: question_id, text)"),
    (['{}'], "line 1: no field 'question_id' (the object is empty)"),
    (['{"question_id": 1.5, "answer": "a"}'],
     "line 1: field 'question_id': expected a string or integer, got a number (1.5)"),
    (['{"question_id": false, "answer": "a"}'],
     "line 1: field 'question_id': expected a non-empty string or an integer, got a boolean (false)"),
    (['{"question_id": "", "answer": "a"}'],
     "line 1: field 'question_id': expected a non-empty string or an integer, got a string (\"\")"),
    (['{"question_id": 1, "answer": "a", "rationale": 3}'],
     "line 1: field 'rationale': expected a string, got a number (3)"),
    (['', '{"question_id": 1, "answer": "a"', ], "line 2: not valid JSON: Expecting ',' delimiter at column 33"),
    (['[1, 2]'], "line 1: expected a JSON object, got an array"),
    ([], "empty: no records"),
    (['', '  '], "empty: no records"),
])
def test_each_bad_input_is_one_line_naming_file_role_line_and_field(tmp_path, lines, message):
    path = _write(tmp_path / "round.jsonl", lines)
    with pytest.raises(InputError) as info:
        load_records(path, "round", 3)
    assert str(info.value) == f"{path} (round, round 3): {message}"


def test_passed_must_be_a_boolean(tmp_path):
    path = _write(tmp_path / "round.jsonl", ['{"question_id": 1, "answer": "a", "passed": 1}'])
    with pytest.raises(InputError) as info:
        load_records(path, "round", 0, passed_field="passed")
    assert str(info.value) == f"{path} (round, round 0): line 1: field 'passed': expected true or false, got a number (1)"


def test_files_a_reasoning_round_cannot_be(tmp_path):
    txt = _write(tmp_path / "round.txt", ["a"])
    with pytest.raises(InputError) as info:
        load_records(txt, "round", 1)
    assert str(info.value) == f"{txt} (round, round 1): modality reasoning cannot read a .txt file (reasoning reads .jsonl)"
    with pytest.raises(InputError, match=r"missing\.jsonl \(reference\): file not found"):
        load_records(tmp_path / "missing.jsonl", "reference")
    assert inputs.detect_modality(_write(tmp_path / "r.jsonl", ['{"question_id": 1, "answer": "a"}']),
                                  "reasoning") == "reasoning"


def test_a_reference_holds_one_gold_answer_per_question(tmp_path):
    good = _write(tmp_path / "ref.jsonl", [
        '{"question_id": 1, "answer": "0.5"}', '{"question_id": 2, "answer": "x"}', '{"question_id": 1, "answer": "1/2"}'])
    loaded = load_records(good, "reference", gold=True, max_samples=1)
    assert loaded.gold == {1: "0.5", 2: "x"}  # the whole file's questions, whatever the subsample keeps
    bad = _write(tmp_path / "bad.jsonl", [
        '{"question_id": "q1", "answer": "4"}', '{"question_id": "q2", "answer": "x"}',
        '{"question_id": "q1", "answer": "4.0"}', '{"question_id": "q1", "answer": "5"}'])
    with pytest.raises(InputError) as info:
        load_records(bad, "reference", gold=True)
    assert str(info.value) == (f"{bad} (reference): line 4: question 'q1': gold answer '5' differs from '4' on line 1; "
                               "a reference holds one answer per question")
    assert load_records(bad, "round", 0).question_ids == ("q1", "q2", "q1", "q1")  # a round may disagree
