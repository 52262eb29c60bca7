"""``load_episodes``: agent-trajectory rounds from JSONL episodes, seeded subsampling, one-line refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from monitor import inputs
from monitor.engine.null import split_reference, take_rows
from monitor.errors import InputError
from monitor.inputs.episodes import episodes_from_objects, load_episodes


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_a_good_file_canonicalises_actions_and_keeps_optional_fields(tmp_path):
    path = _write(tmp_path / "round.jsonl", [
        '{"steps": [{"action": "open door", "observation": "a hall", "state": {"x": 1}}, '
        '{"action": {"tool": "search", "q": "cats", "k": 3.0}, "error": "timeout", "reward": 0.5}], '
        '"success": false, "goals": {"found": true, "booked": false}}',
        "",
        '{"steps": [{"action": ["a", 1], "error": false, "reward": null}, {"action": "x", "error": ""}, '
        '{"action": "y", "error": true}], "success": null}',
        '{"steps": [{"action": "z", "reward": 1}], "goals": [true, true, false]}',
    ])
    loaded = load_episodes(path, "round", 2)
    assert len(loaded) == loaded.n_used == loaded.n_total == 3
    assert loaded.actions == (("open door", '{"k":3.0,"q":"cats","tool":"search"}'), ('["a",1]', "x", "y"), ("z",))
    assert loaded.errors == ((False, True), (False, False, True), (False,))
    assert loaded.rewards == ((0.0, 0.5), None, (1.0,))  # a step without a reward counts 0 in an episode with some
    assert loaded.success == (False, None, None)
    assert loaded.goals_achieved == (1, None, 2) and loaded.goals_total == (2, None, 3)
    assert loaded.fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.texts[0] == 'open door\n{"k":3.0,"q":"cats","tool":"search"}'  # one action per line
    assert inputs.load_episodes is load_episodes and inputs.LoadedEpisodes is type(loaded)


def test_max_samples_keeps_a_seeded_choice_in_file_order_and_pseudo_rounds_take_rows(tmp_path):
    path = _write(tmp_path / "pool.jsonl", [json.dumps({"steps": [{"action": f"a{i}"}]}) for i in range(40)])
    loaded = load_episodes(path, "round", 1, max_samples=10, seed=4)
    picked = [int(a[0][1:]) for a in loaded.actions]
    assert len(picked) == 10 and picked == sorted(picked) and loaded.n_total == 40
    assert load_episodes(path, "round", 1, max_samples=10, seed=4).actions == loaded.actions
    assert load_episodes(path, "round", 1, max_samples=10, seed=5).actions != loaded.actions
    whole = load_episodes(path, "pool")
    rows = take_rows(whole, np.array([3, 0, 7]))
    assert rows.actions == (("a3",), ("a0",), ("a7",)) and len(rows) == 3 and rows.fingerprint == whole.fingerprint
    ref, pool = split_reference(whole, seed=0)
    assert len(ref) + len(pool) == 40
    assert sorted(ref.actions + pool.actions) == sorted(whole.actions)


@pytest.mark.parametrize("lines, message", [
    (['{"steps": []}'], "line 1: field 'steps': an episode needs at least one step, got an empty array"),
    (['{"steps": [{"action": "a"}]}', '{"trajectory": []}'], "line 2: no field 'steps' (fields: trajectory)"),
    (['{}'], "line 1: no field 'steps' (the object is empty)"),
    (['{"steps": {"action": "a"}}'], "line 1: field 'steps': expected an array of steps, got an object "
                                     "({\"action\": \"a\"})"),
    (['{"steps": [{"action": "a"}, "b"]}'], "line 1: steps[1]: expected a JSON object, got a string (\"b\")"),
    (['{"steps": [{"act": "a"}]}'], "line 1: steps[0]: no field 'action' (fields: act)"),
    (['{"steps": [{"action": null}]}'], "line 1: steps[0]: field 'action': expected a string or a JSON value, "
                                        "got null"),
    (['{"steps": [{"action": "a", "error": 1}]}'],
     "line 1: steps[0]: field 'error': expected true, false, null or a message string, got a number (1)"),
    (['{"steps": [{"action": "a", "reward": "high"}]}'],
     "line 1: steps[0]: field 'reward': expected a finite number, got a string (\"high\")"),
    (['{"steps": [{"action": "a", "reward": NaN}]}'],
     "line 1: steps[0]: field 'reward': expected a finite number, got a number (NaN)"),
    (['{"steps": [{"action": "a"}], "success": "yes"}'],
     "line 1: field 'success': expected true, false or null, got a string (\"yes\")"),
    (['{"steps": [{"action": "a"}], "goals": []}'],
     "line 1: field 'goals': expected a non-empty array of booleans or an object of goal name -> boolean, got an "
     "array ([])"),
    (['{"steps": [{"action": "a"}], "goals": [1, 0]}'],
     "line 1: field 'goals': expected a non-empty array of booleans or an object of goal name -> boolean, got an "
     "array ([1, 0])"),
    (['{"steps": [{"action": "a"}]', ], "line 1: not valid JSON: Expecting ',' delimiter at column 28"),
    (['[1, 2]'], "line 1: expected a JSON object, got an array"),
    ([], "empty: no episodes"),
    (['', '  '], "empty: no episodes"),
])
def test_each_bad_input_is_one_line_naming_file_role_line_and_field(tmp_path, lines, message):
    path = _write(tmp_path / "round.jsonl", lines)
    with pytest.raises(InputError) as info:
        load_episodes(path, "round", 3)
    assert str(info.value) == f"{path} (round, round 3): {message}"


def test_files_an_agent_round_cannot_be_and_it_is_never_detected(tmp_path):
    txt = _write(tmp_path / "round.txt", ["a"])
    with pytest.raises(InputError) as info:
        load_episodes(txt, "round", 1)
    assert str(info.value) == f"{txt} (round, round 1): modality agent cannot read a .txt file (agent reads .jsonl)"
    with pytest.raises(InputError, match=r"missing\.jsonl \(reference\): file not found"):
        load_episodes(tmp_path / "missing.jsonl", "reference")
    jsonl = _write(tmp_path / "r.jsonl", ['{"steps": [{"action": "a"}]}'])
    assert inputs.detect_modality(jsonl, "agent") == "agent"
    assert inputs.detect_modality(jsonl) == "agent"  # detected by its first record's steps array


def test_in_memory_episodes_are_checked_like_lines_and_fingerprinted_by_content():
    objects = [{"steps": [{"action": "go", "reward": 1}], "success": True}, {"steps": [{"action": "stop"}]}]
    loaded = episodes_from_objects(objects, "generated")
    assert loaded.actions == (("go",), ("stop",)) and loaded.rewards == ((1.0,), None)
    assert loaded.fingerprint == episodes_from_objects([dict(o) for o in objects], "again").fingerprint
    assert loaded.fingerprint != episodes_from_objects(objects[::-1], "generated").fingerprint
    with pytest.raises(InputError) as info:
        episodes_from_objects([objects[0], {"steps": [{"action": "a", "reward": float("inf")}]}], "generated")
    assert str(info.value) == "generated: line 2: steps[0]: field 'reward': expected a finite number, got a number (Infinity)"
    with pytest.raises(InputError, match="^generated: line 1: expected a JSON object, got a string"):
        episodes_from_objects(["x"], "generated")


def test_a_jsonl_file_is_detected_by_its_first_record(tmp_path):
    cases = {
        "text.jsonl": (['{"text": "a b", "steps": []}'], "text"),  # the text field decides first
        "agent.jsonl": (['', '{"steps": [{"action": "a"}], "success": true}'], "agent"),
        "reasoning.jsonl": (['{"question_id": 1, "answer": "4", "rationale": "2+2"}'], "reasoning"),
        "other.jsonl": (['{"body": "x"}'], "text"),  # the text loader then names the missing field
        "broken.jsonl": (['{"steps": ['], "text"),  # ... or the bad line
        "empty.jsonl": ([], "text"),
    }
    for name, (lines, expected) in cases.items():
        assert inputs.detect_modality(_write(tmp_path / name, lines)) == expected, name
    renamed = _write(tmp_path / "renamed.jsonl", ['{"qid": 1, "final": "4"}'])
    assert inputs.detect_modality(renamed) == "text"
    assert inputs.detect_modality(renamed, question_field="qid", answer_field="final") == "reasoning"
    assert inputs.detect_modality(_write(tmp_path / "t.jsonl", ['{"body": "x"}']), text_field="body") == "text"


def test_a_split_agent_reference_is_written_back_to_equal_episodes(tmp_path):
    """calibrate without a pool splits the reference and writes both parts (monitor.api.materialise)."""
    from monitor.api import materialise
    from monitor.engine.null import split_reference

    reference = load_episodes(Path(__file__).resolve().parents[2] / "monitor" / "data" / "agent_reference.jsonl",
                              "reference")
    part, pool = split_reference(reference, seed=0)
    assert len(part) + len(pool) == len(reference) == 120
    for loaded, role in ((part, "reference-part"), (pool, "pool-part")):
        back = load_episodes(materialise(loaded, tmp_path, role, None, "text"), "reference")
        for field in ("actions", "errors", "rewards", "success", "goals_achieved", "goals_total"):
            assert getattr(back, field) == getattr(loaded, field), field
    written = sorted(p.name for p in tmp_path.iterdir())
    assert len(written) == 2 and all(name.endswith(".jsonl") for name in written)
