"""Tests for the L6-agent loop (meta_evaluation/loop_agent.py) and its example (scripts/make_agent_example.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from monitor.inputs.episodes import episodes_from_objects, load_episodes
from monitor.meta_evaluation import loop_agent as A
from monitor.meta_evaluation import trace as trace_module

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "monitor" / "data"
SMALL = dict(n_samples=40, n_audit=12, n_reference=10)


@pytest.fixture(autouse=True)
def _agent_modality(monkeypatch):
    """Until ``"agent"`` is a round modality of metrics_core.registry, let LoopTrace accept it here only."""
    if "agent" not in trace_module.ROUND_MODALITIES:
        monkeypatch.setattr(trace_module, "ROUND_MODALITIES", (*trace_module.ROUND_MODALITIES, "agent"))


def _same_trace(a, b) -> bool:
    return (a.name == b.name and a.onset == b.onset and a.reference == b.reference and a.rounds == b.rounds
            and np.array_equal(a.generations, b.generations) and a.truth.keys() == b.truth.keys()
            and all(np.array_equal(a.truth[k], b.truth[k]) for k in a.truth))


# --------------------------------------------------------------------------
# Environment mechanics, by hand
# --------------------------------------------------------------------------


def test_a_wall_bump_is_an_error_step_without_a_move():
    # (1, 1) -> east is the wall at (1, 2); the agent stays at r1c1, then moves north to r0c1.
    e = A.play_episode((1, 1), (5, 5), ["east", "north"])
    first, second = e["steps"]
    assert first == {"action": "east", "observation": "r1c1", "error": A.WALL_ERROR, "reward": A.STEP_REWARD}
    assert second == {"action": "north", "observation": "r0c1", "error": None, "reward": A.STEP_REWARD}
    assert e["success"] is False and e["goals"] == [False, False]


def test_the_border_is_a_wall_too_and_wait_is_no_error():
    e = A.play_episode((0, 0), (5, 5), ["north", "west", "wait"])
    assert [s["error"] for s in e["steps"]] == [A.BORDER_ERROR, A.BORDER_ERROR, None]
    assert [s["observation"] for s in e["steps"]] == ["r0c0"] * 3


def test_reaching_the_goal_ends_the_episode_with_reward_one_and_success():
    e = A.play_episode((5, 0), (5, 3), ["east", "east", "east"])
    assert [s["reward"] for s in e["steps"]] == [A.STEP_REWARD, A.STEP_REWARD, A.GOAL_REWARD] == [-0.01, -0.01, 1.0]
    assert e["steps"][-1]["observation"] == "r5c3"
    assert e["success"] is True and e["goals"] == [True, True]
    with pytest.raises(ValueError, match="ended after 3 steps"):
        A.play_episode((5, 0), (5, 3), ["east", "east", "east", "wait"])


def test_halfway_goal_and_step_limit():
    # Distance 4: halfway is distance <= 2, reached after two moves east.
    e = A.play_episode((5, 0), (5, 4), ["east", "east", "west"])
    assert e["goals"] == [True, False] and e["success"] is False
    assert A.play_episode((5, 0), (5, 4), ["east"])["goals"] == [False, False]
    A.play_episode((5, 0), (5, 4), ["wait"] * 3, max_steps=3)
    with pytest.raises(ValueError, match="ended after 3 steps"):
        A.play_episode((5, 0), (5, 4), ["wait"] * 4, max_steps=3)


def test_grid_and_contexts():
    assert len(A.GRID) == 6 and all(len(row) == 6 for row in A.GRID)
    assert sum(row.count("#") for row in A.GRID) == 5 and len(A._FREE) == 31
    assert len(A._T["pairs"]) == 31 * 30
    assert len(A.CONTEXTS) == 16 and len(set(A.CONTEXTS)) == 16
    # Goal north-east of (3, 1), last step ok / after a bump.
    assert A.CONTEXTS[A._context((3, 1), (0, 5), False)] == "goal north-east, last step ok"
    assert A.CONTEXTS[A._context((3, 1), (3, 0), True)] == "goal west, after a bump"
    # The vectorised table agrees with the scalar rule everywhere (and marks cell == goal as -1).
    for i, cell in enumerate(A._FREE):
        for j, goal in enumerate(A._FREE):
            for bumped in (0, 1):
                expected = -1 if i == j else A._context(cell, goal, bool(bumped))
                assert A._T["context"][i, j, bumped] == expected


def test_initial_policy_is_goal_directed_and_diverse():
    p = A.initial_policy()
    assert p.shape == (16, 5) and np.allclose(p.sum(axis=1), 1.0) and (p > 0).all()
    row = p[A.CONTEXTS.index("goal south-west, last step ok")]  # toward: south, west; away: north, east
    north, south, east, west, wait = row
    assert south == west > north == east > wait
    visits, success = A.context_visits(p)
    assert 0.4 < success < 0.7
    assert visits.shape == (16,) and (visits > 0).all()


# --------------------------------------------------------------------------
# Sampling agrees with the exact propagation and with the scalar environment
# --------------------------------------------------------------------------


def test_exact_truth_matches_monte_carlo():
    p = A.initial_policy()
    visits, success = A.context_visits(p)
    sim = A._simulate(p, 20_000, np.random.default_rng(5), A.DEFAULT_MAX_STEPS)
    assert abs(sim["success"].mean() - success) < 0.015
    taken = sim["contexts"][sim["contexts"] >= 0]
    empirical = np.bincount(taken, minlength=16) / len(sim["success"])
    assert np.allclose(empirical, visits, atol=0.05)


def test_vectorised_simulation_matches_the_rendered_episodes():
    p = A.agent_policies(1, 8, n_samples=40)[8]  # a sharpened policy with zero entries
    sim = A._simulate(p, 200, np.random.default_rng(2), A.DEFAULT_MAX_STEPS)
    episodes = A._render(sim, A.DEFAULT_MAX_STEPS)
    assert [e["success"] for e in episodes] == sim["success"].tolist()
    assert [len(e["steps"]) for e in episodes] == (sim["actions"] >= 0).sum(axis=1).tolist()
    assert all(1 <= len(e["steps"]) <= A.DEFAULT_MAX_STEPS for e in episodes)
    assert all(len(e["steps"]) == A.DEFAULT_MAX_STEPS for e in episodes if not e["success"])


def test_zero_probability_actions_are_never_sampled():
    p = np.zeros((16, 5))
    p[:, 0], p[:, 2] = 0.5, 0.5  # north or east only; never the last column either
    episodes = A.sample_episodes(p, 300, np.random.default_rng(0))
    assert {s["action"] for e in episodes for s in e["steps"]} == {"north", "east"}


# --------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------


def test_same_seed_same_trace_and_seeds_differ():
    a, b = A.agent_loop(3, 4, **SMALL), A.agent_loop(3, 4, **SMALL)
    assert _same_trace(a, b)
    c = A.agent_loop(4, 4, **SMALL)
    assert c.reference != a.reference and c.rounds[1] != a.rounds[1]
    assert not np.array_equal(c.truth["action_entropy"], a.truth["action_entropy"])


def test_trace_shape_and_episodes_parse():
    t = A.agent_loop(0, 4, 2, **SMALL)
    assert (t.name, t.kind, t.modality, t.seed) == ("L6-agent", "collapse", "agent", 0)
    assert t.generations.tolist() == [0, 2, 4] and len(t.rounds) == 3
    assert set(t.truth) == {"action_entropy", "success_rate", "action_support"}
    assert all(v.shape == (5,) for v in t.truth.values())
    assert t.params["n_samples"] == 40 and t.params["workflow"] == "replace"
    for where, episodes, size in [("reference", t.reference, 10)] + [(f"round {g}", r, 12)
                                                                     for g, r in zip(t.generations, t.rounds)]:
        loaded = episodes_from_objects(episodes, where)
        assert len(loaded) == size
        assert all(set(e) == {"steps", "success", "goals"} for e in episodes)
        assert loaded.success == tuple(e["success"] for e in episodes)
        assert loaded.goals_total == (2,) * size
        assert all(r is not None and r[-1] == (1.0 if s else -0.01) for r, s in zip(loaded.rewards, loaded.success))
        assert all(a in A.ACTIONS for ep in loaded.actions for a in ep)
        json.dumps(episodes, allow_nan=False)  # JSON-serialisable


def test_audit_every_does_not_change_the_dynamics_or_the_audit_samples():
    a, b = A.agent_loop(2, 6, 1, **SMALL), A.agent_loop(2, 6, 3, **SMALL)
    assert all(np.array_equal(a.truth[k], b.truth[k]) for k in a.truth)
    assert a.reference == b.reference and a.rounds[3] == b.rounds[1] and a.rounds[6] == b.rounds[2]


@pytest.mark.parametrize("seed", range(5))
def test_onset_is_reached_mid_run_at_the_defaults(seed):
    t = A.agent_loop(seed, n_audit=2, n_reference=2)  # default n_samples and 30 generations
    assert t.params["n_samples"] == A.DEFAULT_N_SAMPLES == 120 and t.params["n_generations"] == 30
    assert t.onset == [8, 14, 14, 18, 12][seed]  # as the module docstring states
    H = t.truth["action_entropy"]
    assert H[t.onset] < 0.5 * H[0] <= H[t.onset - 1]
    support = t.truth["action_support"]
    assert support[0] == 80 and (np.diff(support) <= 0).all()  # a vanished action never comes back
    assert (H[1:] < H[0]).all() and H[30] < H[20] < H[10] < H[0]  # falls, with small late rises
    assert np.diff(H).max() < 0.1
    assert t.truth["success_rate"][-1] > t.truth["success_rate"][0] + 0.2  # collapse while success rises


def test_refit_zeros_are_absorbing():
    p = A.agent_policies(0, 12, n_samples=40)
    zero = p[:-1] == 0
    assert (p[1:][zero] == 0).all()
    assert np.allclose(p.sum(axis=2), 1.0)


def test_no_feedback_control_has_constant_truth_and_no_onset():
    c0 = A.agent_loop(0, 30, 10, workflow="no_feedback", n_audit=12, n_reference=10)
    assert (c0.name, c0.kind, c0.onset) == ("C0-L6-agent", "control", None)
    for values in c0.truth.values():
        assert np.all(values == values[0])
    loop = A.agent_loop(0, 30, 10, n_audit=12, n_reference=10)
    assert c0.reference == loop.reference and c0.rounds[0] == loop.rounds[0]  # generation 0 shared
    assert c0.rounds[1] != c0.rounds[0]  # a fresh draw every round


@pytest.mark.parametrize("workflow,control", [("accumulate", "C1"), ("fresh_real", "C2")])
def test_real_data_controls_keep_more_diversity(workflow, control):
    t = A.agent_loop(0, 30, 30, workflow=workflow, n_audit=2, n_reference=2)
    loop = A.agent_policies(0, 30)
    assert (t.name, t.kind, t.onset) == (f"{control}-L6-agent", "control", None)
    H = t.truth["action_entropy"]
    assert (H > 0.5 * H[0]).all()
    assert H[-1] > A.agent_truth(loop)["action_entropy"][-1]


def test_episodes_jsonl_round_trips_through_the_loader(tmp_path):
    episodes = A.agent_loop(1, 1, **SMALL).rounds[1]
    data = A.episodes_jsonl(episodes)
    lines = data.decode("utf-8").splitlines()
    assert len(lines) == len(episodes) and data.endswith(b"\n")
    assert b" " not in data.replace(A.WALL_ERROR.encode(), b"").replace(A.BORDER_ERROR.encode(), b"")  # compact
    assert [json.loads(line) for line in lines] == episodes
    path = tmp_path / "round_1.jsonl"
    path.write_bytes(data)
    loaded = load_episodes(path, "round", 1)
    assert loaded.actions == episodes_from_objects(episodes, "r").actions


# --------------------------------------------------------------------------
# Argument errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,match", [
    (dict(seed=-1), "seed"),
    (dict(n_generations=0), "n_generations"),
    (dict(audit_every=0), "audit_every"),
    (dict(workflow="bogus"), "workflow"),
    (dict(n_samples=0), "n_samples"),
    (dict(n_audit=0), "n_audit"),
    (dict(n_reference=1.5), "n_reference"),
    (dict(max_steps=0), "max_steps"),
    (dict(workflow="fresh_real", fresh_fraction=1.5), "fresh_fraction"),
    (dict(workflow="fresh_real", n_samples=4, fresh_fraction=0.05), "fresh_fraction"),
])
def test_loop_argument_errors(kwargs, match):
    args = dict(seed=0, n_generations=2) | kwargs
    with pytest.raises(ValueError, match=match):
        A.agent_loop(**args)


@pytest.mark.parametrize("start,goal,actions,match", [
    ((1, 2), (0, 0), ["north"], "start: expected a free cell"),  # a wall
    ((0, 0), (6, 0), ["north"], "goal: expected a free cell"),  # off the grid
    ((0, 0), (0, 0), ["north"], "other than the start"),
    ((0, 0), (0, 1), [], "non-empty sequence"),
    ((0, 0), (0, 1), ["jump"], "non-empty sequence"),
    ((0, 0), (0, 1), [7], "non-empty sequence"),
])
def test_play_episode_argument_errors(start, goal, actions, match):
    with pytest.raises(ValueError, match=match):
        A.play_episode(start, goal, actions)


def test_policy_and_count_errors():
    with pytest.raises(ValueError, match="policy"):
        A.sample_episodes(np.full((16, 5), 0.3), 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="policy"):
        A.context_visits(np.full((8, 5), 0.2))
    with pytest.raises(ValueError, match="n: expected a positive integer"):
        A.sample_episodes(A.initial_policy(), 0, np.random.default_rng(0))


# --------------------------------------------------------------------------
# The shipped example
# --------------------------------------------------------------------------


def _example_script():
    spec = importlib.util.spec_from_file_location("make_agent_example", REPO / "scripts" / "make_agent_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_example_is_what_the_script_writes(tmp_path, capsys):
    script = _example_script()
    assert script.main(["--out", str(tmp_path)]) == 0
    assert "true onset: generation 5" in capsys.readouterr().out
    names = ["agent_reference.jsonl"] + [f"agent_rounds/round_{g}.jsonl" for g in range(script.N_GENERATIONS + 1)]
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.jsonl")) == sorted(names)
    total = 0
    for name in names:
        shipped = (DATA / name).read_bytes()
        assert shipped == (tmp_path / name).read_bytes(), name
        total += len(shipped)
    assert total < 450_000
    reference = load_episodes(DATA / "agent_reference.jsonl", "reference")
    assert len(reference) == script.N_REFERENCE
    assert len(load_episodes(DATA / "agent_rounds" / "round_6.jsonl", "round", 6)) == script.N_ROUND
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    assert "agent_reference.jsonl" in readme and "make_agent_example.py" in readme
