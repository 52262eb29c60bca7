"""Tests of the agent-trajectory metrics (metrics_core.agents)."""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
import scipy.stats

from metrics_core.agents import (
    AGENT_METRIC_NAMES,
    Episodes,
    action_distinct_n,
    action_entropy,
    agent_suite,
    duplicate_episode_indicator,
    duplicate_episode_rate,
    episode_length_ks,
    episode_lengths,
    episode_return_ks,
    episode_returns,
    exec_rate,
    percent_complete,
    success_rate,
)
from metrics_core.bootstrap import Estimate, iter_bootstrap_counts, mean_estimate
from metrics_core.registry import REGISTRY, ROUND_MODALITIES, metric_names, round_modality


def raises_exactly(message: str, fn, *args, **kwargs) -> None:
    """``fn`` raises ValueError with exactly this one-line message."""
    with pytest.raises(ValueError) as info:
        fn(*args, **kwargs)
    assert str(info.value) == message
    assert "\n" not in message


VOCAB = ["ls", "cd src", "cat a.py", "grep foo", '{"click":3}', "submit", "undo", "scroll"]
MODE = ["ls", "cd src", "cat a.py", "submit"]  # the trajectory a collapsed policy replays


def random_episodes(rng, n: int, *, collapse: float = 0.0, error_p: float = 0.1, max_len: int = 8,
                    vocab=VOCAB) -> dict:
    """Fields of ``n`` random episodes; each replays :data:`MODE` with probability ``collapse``."""
    actions, errors, rewards, success, achieved, total = [], [], [], [], [], []
    for _ in range(n):
        if rng.random() < collapse:
            steps = list(MODE)
        else:
            steps = [str(rng.choice(vocab)) for _ in range(int(rng.integers(1, max_len + 1)))]
        actions.append(steps)
        errors.append((rng.random(len(steps)) < error_p).tolist())
        rewards.append(None if rng.random() < 0.2 else rng.normal(size=len(steps)).round(2).tolist())
        success.append(None if rng.random() < 0.3 else bool(rng.random() < 0.5))
        if rng.random() < 0.3:
            achieved.append(None)
            total.append(None)
        else:
            m = int(rng.integers(1, 6))
            total.append(m)
            achieved.append(int(rng.integers(0, m + 1)))
    return {"actions": actions, "errors": errors, "rewards": rewards, "success": success,
            "goals_achieved": achieved, "goals_total": total}


# ---------------------------------------------------------------- Episodes


def test_episodes_normalises_fields_to_tuples():
    ep = Episodes(actions=[["ls", "cd"], ("ls",)], errors=[[False, np.True_], np.array([False])],
                  rewards=[np.array([0, 1.5]), None], success=[np.bool_(True), None],
                  goals_achieved=[np.int64(1), None], goals_total=[2, None])
    assert len(ep) == 2
    assert ep.actions == (("ls", "cd"), ("ls",))
    assert ep.errors == ((False, True), (False,)) and type(ep.errors[0][1]) is bool
    assert ep.rewards == ((0.0, 1.5), None) and type(ep.rewards[0][0]) is float
    assert ep.success == (True, None) and type(ep.success[0]) is bool
    assert ep.goals_achieved == (1, None) and type(ep.goals_achieved[0]) is int
    assert ep.goals_total == (2, None)
    bare = Episodes(actions=[["a"], ["b", "c"]], errors=[[False], [True, False]])
    assert bare.rewards == bare.success == bare.goals_achieved == bare.goals_total == (None, None)
    with pytest.raises(AttributeError):
        bare.actions = ()  # frozen


def test_episodes_errors():
    ok = {"actions": [["ls"], ["cd", "ls"]], "errors": [[False], [False, True]]}
    raises_exactly("actions: expected a non-empty list of lists of str, got an empty list",
                   Episodes, actions=[], errors=[])
    raises_exactly("actions: expected a list of lists of str, got a single str", Episodes, actions="ls", errors=[[False]])
    raises_exactly("actions[1]: expected a non-empty list of str (an episode needs at least one step), "
                   "got an empty list", Episodes, actions=[["ls"], []], errors=[[False], []])
    raises_exactly("actions[0]: expected a non-empty list of str (an episode needs at least one step), got str",
                   Episodes, actions=["ls"], errors=[[False]])
    raises_exactly("actions[1][0]: expected str, got int", Episodes, actions=[["ls"], [3]], errors=ok["errors"])
    raises_exactly("errors: expected 2 items to match actions, got 1", Episodes, actions=ok["actions"],
                   errors=[[False]])
    raises_exactly("errors[1]: expected 2 steps to match actions[1], got 1", Episodes, actions=ok["actions"],
                   errors=[[False], [True]])
    raises_exactly("errors[1][1]: expected bool, got int", Episodes, actions=ok["actions"], errors=[[False], [False, 1]])
    raises_exactly("rewards[0][0]: expected a finite number, got nan", Episodes, **ok, rewards=[[math.nan], None])
    raises_exactly("rewards[1][0]: expected a finite number, got bool", Episodes, **ok, rewards=[None, [True, 1.0]])
    raises_exactly(f"rewards[0][0]: expected a finite number, got {10**400}", Episodes, **ok, rewards=[[10**400], None])
    raises_exactly("rewards[0][0]: expected a finite number, got str", Episodes, **ok, rewards=[["1"], None])
    raises_exactly("rewards[1]: expected 2 steps to match actions[1], got 3", Episodes, **ok,
                   rewards=[[1.0], [1.0, 2.0, 3.0]])
    raises_exactly("rewards[0]: expected a non-empty list of finite numbers or None (an episode needs at least one "
                   "step), got float", Episodes, **ok, rewards=[1.0, None])
    raises_exactly("rewards: expected a list of lists of finite numbers, got float", Episodes, **ok, rewards=1.5)
    raises_exactly("success: expected 2 items to match actions, got 3", Episodes, **ok, success=[True, None, False])
    raises_exactly("success[0]: expected bool or None, got int", Episodes, **ok, success=[1, None])
    raises_exactly("goals_achieved[1]: expected an integer >= 0 or None, got -1", Episodes, **ok,
                   goals_achieved=[None, -1], goals_total=[None, 2])
    raises_exactly("goals_total[0]: expected an integer >= 0 or None, got float", Episodes, **ok,
                   goals_achieved=[1, None], goals_total=[2.0, None])
    raises_exactly("goals_achieved[0]: expected at most goals_total[0]=2, got 3", Episodes, **ok,
                   goals_achieved=[3, None], goals_total=[2, None])
    raises_exactly("goals_total[1]: expected a positive integer (an episode declaring goals has at least one), got 0",
                   Episodes, **ok, goals_achieved=[None, 0], goals_total=[None, 0])
    raises_exactly("goals_achieved[0]: expected an integer with goals_total[0]=4, got None", Episodes, **ok,
                   goals_total=[np.int64(4), None])
    raises_exactly("goals_achieved[1]: expected None with goals_total[1]=None, got 1", Episodes, **ok,
                   goals_achieved=[None, 1])
    raises_exactly("goals_total: expected 2 items to match goals_achieved, got 1", Episodes, **ok,
                   goals_achieved=[None, 1], goals_total=[2])


# ---------------------------------------------------------------- exec_rate


def test_exec_rate_hand_case():
    errors = [[False, False, True], [True], [False, False, False, False]]
    est = exec_rate(errors)  # 2 + 0 + 4 of 8 steps ran: pooled, not the mean of 2/3, 0, 1
    assert isinstance(est, Estimate) and est.value == pytest.approx(6 / 8) and est.ci_low is None
    assert exec_rate([[False]]).value == 1.0 and exec_rate([[True, True]]).value == 0.0


def test_exec_rate_random_vs_loop():
    rng = np.random.default_rng(0)
    for _ in range(30):
        errors = random_episodes(rng, int(rng.integers(1, 30)), error_p=float(rng.random()))["errors"]
        ok = steps = 0
        for episode in errors:
            for failed in episode:
                steps += 1
                ok += not failed
        assert exec_rate(errors).value == pytest.approx(ok / steps, abs=1e-12)


def test_exec_rate_bootstrap_resamples_episodes():
    errors = [[False, True, True], [False], [True, False], [False, False, False, False]]
    est = exec_rate(errors, n_boot=300, seed=3)
    ok, steps = np.array([1.0, 1.0, 1.0, 4.0]), np.array([3.0, 1.0, 2.0, 4.0])
    reps = np.array([(w @ ok) / (w @ steps) for w in iter_bootstrap_counts(4, 300, 3)])
    assert est.value == pytest.approx(0.7)
    assert est.ci_low == pytest.approx(np.quantile(reps, 0.025)) and est.ci_high == pytest.approx(np.quantile(reps, 0.975))
    assert est.std_error == pytest.approx(reps.std(ddof=1))


def test_exec_rate_falls_as_the_error_rate_rises():
    rng = np.random.default_rng(1)
    values = [exec_rate(random_episodes(rng, 200, error_p=p)["errors"]).value for p in (0.0, 0.1, 0.3, 0.6, 0.9)]
    assert values[0] == 1.0 and all(a > b for a, b in zip(values, values[1:]))


def test_exec_rate_errors():
    raises_exactly("errors: expected a non-empty list of lists of bool, got an empty list", exec_rate, [])
    raises_exactly("errors[0]: expected a non-empty list of bool (an episode needs at least one step), "
                   "got an empty list", exec_rate, [[]])
    raises_exactly("errors[0][0]: expected bool, got int", exec_rate, [[0]])
    raises_exactly("errors[1]: expected a non-empty list of bool (an episode needs at least one step), got bool",
                   exec_rate, [[False], True])
    raises_exactly("n_boot: expected a non-negative integer, got -1", exec_rate, [[False]], n_boot=-1)


# ---------------------------------------------------------------- success_rate, percent_complete


def test_success_rate_hand_case():
    assert success_rate([True, None, False, True, None]).value == pytest.approx(2 / 3)  # None skipped
    assert success_rate([np.False_]).value == 0.0


def test_success_rate_random_vs_loop():
    rng = np.random.default_rng(2)
    for _ in range(30):
        success = random_episodes(rng, int(rng.integers(5, 30)))["success"] + [True]
        hits = reported = 0
        for s in success:
            if s is not None:
                reported += 1
                hits += s
        assert success_rate(success).value == pytest.approx(hits / reported, abs=1e-12)


def test_success_rate_falls_as_the_policy_degrades():
    rng = np.random.default_rng(3)
    values = [success_rate((rng.random(300) < p).tolist()).value for p in (0.9, 0.6, 0.3, 0.05)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_success_rate_errors():
    raises_exactly("success: no episode reports success (all 3 items are None)", success_rate, [None] * 3)
    raises_exactly("success[1]: expected bool or None, got str", success_rate, [True, "yes"])
    raises_exactly("success: expected a non-empty list of bool or None, got an empty list", success_rate, [])


def test_percent_complete_hand_case():
    # (1/4 + 3/3 + 0/2) / 3; the episode without goals is skipped
    assert percent_complete([1, None, 3, 0], [4, None, 3, 2]).value == pytest.approx((0.25 + 1 + 0) / 3)
    assert percent_complete([np.int64(2)], [np.int64(5)]).value == pytest.approx(0.4)


def test_percent_complete_random_vs_fractions():
    rng = np.random.default_rng(4)
    for _ in range(30):
        fields = random_episodes(rng, int(rng.integers(5, 30)))
        achieved, total = fields["goals_achieved"] + [1], fields["goals_total"] + [3]
        shares = [Fraction(a, m) for a, m in zip(achieved, total) if m is not None]
        assert percent_complete(achieved, total).value == pytest.approx(float(sum(shares) / len(shares)), abs=1e-12)


def test_percent_complete_falls_as_agents_get_less_far():
    rng = np.random.default_rng(5)
    values = []
    for reach in (0.9, 0.6, 0.3, 0.1):  # each of 5 sub-goals reached with probability `reach`
        total = [5] * 300
        values.append(percent_complete([int((rng.random(5) < reach).sum()) for _ in total], total).value)
    assert all(a > b for a, b in zip(values, values[1:]))


def test_percent_complete_errors():
    raises_exactly("goals_total: no episode declares goals (all 2 items are None)", percent_complete,
                   [None, None], [None, None])
    raises_exactly("goals_achieved[0]: expected at most goals_total[0]=1, got 2", percent_complete, [2], [1])
    raises_exactly("goals_total[0]: expected a positive integer (an episode declaring goals has at least one), got 0",
                   percent_complete, [0], [0])
    raises_exactly("goals_total: expected 2 items to match goals_achieved, got 1", percent_complete, [1, 1], [2])
    raises_exactly("goals_achieved[0]: expected an integer >= 0 or None, got bool", percent_complete, [True], [1])


# ---------------------------------------------------------------- diversity


def naive_distinct(actions, n):
    grams = [tuple(ep[i:i + n]) for ep in actions for i in range(len(ep) - n + 1)]
    return len(Counter(grams)) / len(grams) if grams else math.nan


def test_action_distinct_n_hand_case():
    actions = [["ls", "cd", "ls", "cd"], ["ls", "cd"], ["rm"]]
    # unigrams: {ls, cd, rm} of 7; bigrams within episodes: (ls,cd) x3, (cd,ls) x1 -> 2 of 4, none across episodes
    assert action_distinct_n(actions, 1) == pytest.approx(3 / 7)
    assert action_distinct_n(actions, 2) == pytest.approx(2 / 4)
    assert action_distinct_n(actions, 3) == pytest.approx(2 / 2)  # (ls,cd,ls), (cd,ls,cd)
    assert math.isnan(action_distinct_n([["ls", "cd"], ["ls"]], 3))
    # an action with spaces is one token, not split as words would be
    assert action_distinct_n([["cd a", "cd b"]], 1) == 1.0


def test_action_distinct_n_random_vs_counter():
    rng = np.random.default_rng(6)
    for _ in range(30):
        actions = random_episodes(rng, int(rng.integers(1, 25)))["actions"]
        for n in (1, 2, 3, 5):
            got, expected = action_distinct_n(actions, n), naive_distinct(actions, n)
            assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-12)


def test_action_entropy_hand_case():
    assert action_entropy([["a", "b"], ["c", "d"]]) == pytest.approx(2.0)  # 4 equally likely actions
    assert action_entropy([["a", "a"], ["a"]]) == 0.0
    # p = (1/2, 1/4, 1/4): 1/2 + 1/2 + 1/2 bits
    assert action_entropy([["a", "b"], ["a", "c"]]) == pytest.approx(1.5)


def test_action_entropy_random_vs_scipy():
    rng = np.random.default_rng(7)
    for _ in range(30):
        actions = random_episodes(rng, int(rng.integers(1, 25)))["actions"]
        counts = list(Counter(a for ep in actions for a in ep).values())
        assert action_entropy(actions) == pytest.approx(scipy.stats.entropy(counts, base=2), abs=1e-12)


def test_duplicate_episode_rate_hand_case():
    actions = [["ls", "cd"], ["ls"], ["ls", "cd"], ["cd", "ls"], ["ls", "cd"], ["ls"], ["ls", "cd", "ls"]]
    # 3 copies of (ls, cd) add 2, 2 of (ls) add 1; order and length matter
    assert duplicate_episode_indicator(actions).tolist() == [False, False, True, False, True, True, False]
    assert duplicate_episode_rate(actions).value == pytest.approx(3 / 7)
    assert duplicate_episode_rate([["ls"]]).value == 0.0
    assert duplicate_episode_rate([["ls"], ["ls "]]).value == 0.0  # actions are compared exactly


def test_duplicate_episode_rate_random_vs_pair_loop():
    rng = np.random.default_rng(8)
    for _ in range(30):
        actions = random_episodes(rng, int(rng.integers(1, 40)), collapse=float(rng.random()), max_len=3,
                                  vocab=VOCAB[:3])["actions"]
        expected = [any(actions[j] == actions[i] for j in range(i)) for i in range(len(actions))]
        assert duplicate_episode_indicator(actions).tolist() == expected
        assert duplicate_episode_rate(actions).value == pytest.approx(np.mean(expected), abs=1e-12)


def test_diversity_moves_the_bad_way_under_collapse():
    rng = np.random.default_rng(9)
    vocab = VOCAB + [f"click {i}" for i in range(300)]  # a healthy policy's actions take many arguments
    rounds = [random_episodes(rng, 300, collapse=c, vocab=vocab)["actions"] for c in (0.0, 0.3, 0.6, 0.9, 1.0)]
    for n in (1, 2, 3):
        values = [action_distinct_n(a, n) for a in rounds]
        assert all(x > y for x, y in zip(values, values[1:])), (n, values)
    entropies = [action_entropy(a) for a in rounds]
    assert all(x > y for x, y in zip(entropies, entropies[1:])) and entropies[-1] == pytest.approx(2.0)  # 4 actions
    duplicates = [duplicate_episode_rate(a).value for a in rounds]
    assert all(x < y for x, y in zip(duplicates, duplicates[1:])) and duplicates[-1] == pytest.approx(299 / 300)


def test_diversity_errors():
    raises_exactly("n: expected a positive integer, got 0", action_distinct_n, [["ls"]], 0)
    raises_exactly("actions[0][1]: expected str, got NoneType", action_entropy, [["ls", None]])
    raises_exactly("actions: expected a list of lists of str, got dict", duplicate_episode_rate, {"a": ["ls"]})
    raises_exactly("actions[2]: expected a non-empty list of str (an episode needs at least one step), got an empty "
                   "tuple", action_distinct_n, [["a"], ["b"], ()], 1)


# ---------------------------------------------------------------- fidelity


def test_episode_length_ks_hand_case():
    round_, ref = [["a"], ["a", "b"]], [["x"], ["x", "y"], ["x", "y"], ["x", "y", "z"]]
    # lengths {1, 2} vs {1, 2, 2, 3}: CDFs at 1: 1/2 vs 1/4; at 2: 1 vs 3/4
    assert episode_length_ks(round_, ref) == pytest.approx(0.25)
    assert episode_length_ks(ref, ref) == 0.0
    assert episode_length_ks([["a"]], [["x", "y"]]) == 1.0
    assert episode_lengths(ref).tolist() == [1, 2, 2, 3]


def test_episode_return_ks_hand_case():
    rewards = [[1.0, 0.0], [0.25, 0.25], None, [3]]  # returns 1, 0.5, 3
    ref = [[1.0], None, [2.0], [0.0, -1.0]]  # returns 1, 2, -1
    assert episode_returns(rewards).tolist() == [1.0, 0.5, 3.0]
    # pooled grid -1, .5, 1, 2, 3: |0 - 1/3|, |1/3 - 1/3|, |2/3 - 2/3|, |2/3 - 1|, |1 - 1|
    assert episode_return_ks(rewards, ref) == pytest.approx(1 / 3)
    assert episode_returns([[0.1] * 10]).tolist() == [1.0]  # fsum: no float drift


def test_ks_random_vs_scipy():
    rng = np.random.default_rng(10)
    for _ in range(30):
        a = random_episodes(rng, int(rng.integers(1, 40)))
        b = random_episodes(rng, int(rng.integers(1, 40)), max_len=int(rng.integers(2, 12)))
        expected = scipy.stats.ks_2samp([len(x) for x in a["actions"]], [len(x) for x in b["actions"]]).statistic
        assert episode_length_ks(a["actions"], b["actions"]) == pytest.approx(expected, abs=1e-12)
        a["rewards"][0], b["rewards"][0] = [1.0] * len(a["actions"][0]), [2.0] * len(b["actions"][0])
        ra = [sum(r) for r in a["rewards"] if r is not None]
        rb = [sum(r) for r in b["rewards"] if r is not None]
        expected = scipy.stats.ks_2samp(ra, rb).statistic
        assert episode_return_ks(a["rewards"], b["rewards"]) == pytest.approx(expected, abs=1e-12)


def test_ks_rise_as_episodes_collapse():
    rng = np.random.default_rng(11)
    ref = random_episodes(rng, 400)
    lengths, returns = [], []
    for c in (0.0, 0.5, 0.9):
        rnd = random_episodes(rng, 400, collapse=c)
        # the collapsed policy also earns one fixed return
        rnd["rewards"] = [[0.5] * 4 if a == MODE else r for a, r in zip(rnd["actions"], rnd["rewards"])]
        lengths.append(episode_length_ks(rnd["actions"], ref["actions"]))
        returns.append(episode_return_ks(rnd["rewards"], ref["rewards"]))
    assert lengths[0] < 0.15 and all(x < y for x, y in zip(lengths, lengths[1:])), lengths
    assert returns[0] < 0.15 and all(x < y for x, y in zip(returns, returns[1:])), returns


def test_fidelity_errors():
    raises_exactly("reference_actions[0]: expected a non-empty list of str (an episode needs at least one step), "
                   "got an empty list", episode_length_ks, [["a"]], [[]])
    raises_exactly("reference_actions: expected a non-empty list of lists of str, got an empty list",
                   episode_length_ks, [["a"]], [])
    raises_exactly("rewards: no episode has rewards (all 2 items are None)", episode_return_ks, [None, None], [[1.0]])
    raises_exactly("reference_rewards: no episode has rewards (all 1 items are None)", episode_return_ks,
                   [[1.0]], [None])
    raises_exactly("reference_rewards[0][0]: expected a finite number, got inf", episode_return_ks, [[1.0]], [[math.inf]])


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_intervals_contain_the_value():
    rng = np.random.default_rng(12)
    f = random_episodes(rng, 120, error_p=0.3)
    for est in (exec_rate(f["errors"], n_boot=200, seed=1),
                success_rate(f["success"], n_boot=200, seed=1),
                percent_complete(f["goals_achieved"], f["goals_total"], n_boot=200, seed=1),
                duplicate_episode_rate(random_episodes(rng, 120, collapse=0.4)["actions"], n_boot=200, seed=1)):
        assert est.ci_low <= est.value <= est.ci_high and est.std_error > 0
    point = exec_rate(f["errors"], n_boot=0)
    assert point.value == exec_rate(f["errors"], n_boot=200, seed=1).value
    assert (point.ci_low, point.ci_high, point.std_error) == (None, None, None)
    assert exec_rate(f["errors"], n_boot=50, seed=4) == exec_rate(f["errors"], n_boot=50, seed=4)
    # the fixed-indicator rates are mean_estimate of their indicators
    actions = random_episodes(rng, 60, collapse=0.5)["actions"]
    assert duplicate_episode_rate(actions, n_boot=80, seed=2) == mean_estimate(
        duplicate_episode_indicator(actions), n_boot=80, seed=2)


# ---------------------------------------------------------------- suite and registry


def test_agent_suite_matches_the_functions():
    rng = np.random.default_rng(13)
    rnd, ref = random_episodes(rng, 80, collapse=0.3), random_episodes(rng, 60)
    out = agent_suite(Episodes(**rnd), Episodes(**ref), n_boot=50, seed=5)
    assert list(out) == list(AGENT_METRIC_NAMES) == metric_names("agent")
    boot = {"n_boot": 50, "seed": 5}
    assert out["exec_rate"] == exec_rate(rnd["errors"], **boot)
    assert out["success_rate"] == success_rate(rnd["success"], **boot)
    assert out["percent_complete"] == percent_complete(rnd["goals_achieved"], rnd["goals_total"], **boot)
    assert out["duplicate_episode_rate"] == duplicate_episode_rate(rnd["actions"], **boot)
    for n in (1, 2, 3):
        assert out[f"action_distinct_{n}"] == Estimate(action_distinct_n(rnd["actions"], n))
    assert out["action_entropy"] == Estimate(action_entropy(rnd["actions"]))
    assert out["episode_length_ks"] == Estimate(episode_length_ks(rnd["actions"], ref["actions"]))
    assert out["episode_return_ks"] == Estimate(episode_return_ks(rnd["rewards"], ref["rewards"]))
    assert all(out[m].ci_low is not None for m in ("exec_rate", "success_rate", "percent_complete"))


def test_agent_suite_leaves_out_undefined_metrics():
    rnd = Episodes(actions=[["ls"], ["cd", "ls"]], errors=[[False], [True, False]])
    ref = Episodes(actions=[["ls"]], errors=[[False]], rewards=[[1.0]], success=[True],
                   goals_achieved=[1], goals_total=[1])
    out = agent_suite(rnd, ref, n_boot=0)
    # no success, goals or rewards in the round; no episode of 3 steps
    assert list(out) == ["exec_rate", "action_distinct_1", "action_distinct_2", "action_entropy",
                         "duplicate_episode_rate", "episode_length_ks"]
    assert out["exec_rate"].value == pytest.approx(2 / 3) and out["action_distinct_2"].value == 1.0
    assert "episode_return_ks" not in agent_suite(ref, rnd, n_boot=0)  # the reference has no rewards
    raises_exactly("round_episodes: expected metrics_core.agents.Episodes, got dict", agent_suite, {}, ref)
    raises_exactly("reference_episodes: expected metrics_core.agents.Episodes, got list", agent_suite, rnd, [])
    raises_exactly("seed: expected an integer >= 0, got -1", agent_suite, rnd, ref, seed=-1)


def test_registry_entries():
    assert "agent" in ROUND_MODALITIES
    assert round_modality(["vendi_score", "episode_length_ks"]) == "agent"
    assert {m: REGISTRY[m].family for m in AGENT_METRIC_NAMES} == {
        "exec_rate": "validity", "success_rate": "validity", "percent_complete": "validity",
        "action_distinct_1": "diversity", "action_distinct_2": "diversity", "action_distinct_3": "diversity",
        "action_entropy": "diversity", "duplicate_episode_rate": "diversity",
        "episode_length_ks": "fidelity", "episode_return_ks": "fidelity",
    }
    lower = {"duplicate_episode_rate", "episode_length_ks", "episode_return_ks"}
    assert {m for m in AGENT_METRIC_NAMES if not REGISTRY[m].higher_is_better} == lower
    for m in AGENT_METRIC_NAMES:
        assert REGISTRY[m].modality == "agent"
        assert REGISTRY[m].value_range == ((0.0, None) if m == "action_entropy" else (0.0, 1.0))
        assert REGISTRY[m].self_value == (0.0 if m.endswith("_ks") else None)
