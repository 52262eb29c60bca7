"""Tests for the L11-reasoning loop (meta_evaluation/loop_reasoning.py) and its example
(scripts/make_reasoning_example.py)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from metrics_core.reasoning import normalize_answer, rationale_skeleton
from monitor.inputs.records import load_records
from monitor.meta_evaluation import loop_reasoning as R

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "monitor" / "data"
SMALL = dict(n_samples=10, n_questions_audit=6, n_reference=40)


def _same_trace(a, b) -> bool:
    return (a.name == b.name and a.onset == b.onset and a.reference == b.reference and a.rounds == b.rounds
            and np.array_equal(a.generations, b.generations) and a.truth.keys() == b.truth.keys()
            and all(np.array_equal(a.truth[k], b.truth[k]) for k in a.truth))


def _entropy(w: np.ndarray) -> float:
    return float(-sum(p * math.log(p) for p in w.tolist() if p > 0))


# --------------------------------------------------------------------------
# Questions and solutions, by hand
# --------------------------------------------------------------------------

Q = dict(question_id="q7", question="?", op1="-", op2="*", a=20, b=5, c=3, A="Ava", B="Ben")  # (20 - 5) * 3 = 45


@pytest.mark.parametrize("strategy,error,sign,rationale,answer", [
    (0, False, 1, "First, 20 - 5 = 15. Then 15 * 3 = 45. The answer is 45.", "45"),
    (0, True, -1, "First, 20 - 5 = 15. Then 15 * 3 = 44. The answer is 44.", "44"),  # slip: final result - 1
    (1, True, 1, "Step 1: 20 - 5 = 16. Step 2: 16 * 3 = 48. Answer: 48.", "48"),  # carry: 15 + 1 carried on
    (2, True, 1, "We start from the numbers in the problem. 20 minus 5 is 15, and 15 plus 3 is 18. "
                 "So the answer is 18.", "18"),  # operation: * replaced by +
    (3, True, 1, "Let's think step by step. For Ava, 20 - 5 makes 15. Then 15 * 4 makes 60. "
                 "The final answer is 60.", "60"),  # misread: c = 4 for 3
    (10, False, 1, "Working it out for Ava and Ben: first 20 - 5 = 15, next 15 * 3 = 45. Result: 45.", "45"),
])
def test_solve_renders_each_error_kind(strategy, error, sign, rationale, answer):
    record = R.solve(Q, strategy, error=error, sign=sign)
    assert record == {"question_id": "q7", "question": "?", "rationale": rationale, "answer": answer}


def test_strategy_table():
    assert R.N_STRATEGIES == 24 and len(R.ERROR_RATES) == 24
    assert R.ERROR_RATES.tolist() == [0.0] * 6 + [0.15] * 6 + [0.3] * 6 + [0.5] * 6
    assert {kind for _, kind, _ in R.STRATEGIES} == set(R.ERROR_KINDS)
    assert len({template for template, _, _ in R.STRATEGIES}) == 24


def test_bank_is_fixed_prefix_stable_and_its_gold_answers_are_exact():
    small, large = R.question_bank(50), R.question_bank(400)
    assert large[:50] == small and [q["question_id"] for q in small[:3]] == ["q0000", "q0001", "q0002"]
    assert {q["type"] for q in large} == set(range(len(R.QUESTION_TYPES)))
    for q in large:
        # independent evaluation: the expression as Python source, brackets first
        assert q["gold"] == eval(f"({q['a']} {q['op1']} {q['b']}) {q['op2']} {q['c']}") >= 1
        assert (q["op1"], q["op2"]) == R.QUESTION_TYPES[q["type"]][:2]
        assert q["A"] != q["B"] and q["A"] in q["question"] and str(q["a"]) in q["question"]
    assert len({q["question"] for q in large}) > 390  # a varied bank


def test_every_error_changes_the_answer_and_no_error_gives_gold():
    for q in R.question_bank(300):
        gold = str(q["gold"])
        for s in range(R.N_STRATEGIES):
            assert R.solve(q, s)["answer"] == gold
            assert R.solve(q, s, error=True, sign=1)["answer"] != gold
            assert R.solve(q, s, error=True, sign=-1)["answer"] != gold


def test_strategies_have_distinct_skeletons_and_never_leak_a_name():
    bank = R.question_bank(200)
    for kind in range(len(R.QUESTION_TYPES)):
        same_kind = [q for q in bank if q["type"] == kind][:2]
        for q in same_kind:
            skeletons = [rationale_skeleton(R.solve(q, s)["rationale"]) for s in range(R.N_STRATEGIES)]
            assert len(set(skeletons)) == R.N_STRATEGIES
            assert not any(name.lower() in s for s in skeletons for name in R.NAMES)  # every name masked
        # the template of a strategy, not the question's names and numbers, fixes its skeleton
        assert [rationale_skeleton(R.solve(same_kind[0], s)["rationale"]) for s in range(R.N_STRATEGIES)] == \
               [rationale_skeleton(R.solve(same_kind[1], s)["rationale"]) for s in range(R.N_STRATEGIES)]


def test_gold_records_are_correct_rationales():
    for q in R.question_bank(100):
        record = R.gold_record(q)
        assert record["answer"] == str(q["gold"]) and record == R.solve(q, q["gold_strategy"])


# --------------------------------------------------------------------------
# Truth: hand-computed and against sampling
# --------------------------------------------------------------------------


def test_truth_by_hand():
    w = np.zeros(24)
    w[[0, 6, 18]] = [0.5, 0.25, 0.25]  # e = 0, 0.15, 0.5
    t = R.reasoning_truth(np.stack([R.initial_weights(), w]))
    assert t["strategy_entropy"][0] == pytest.approx(math.log(24))
    assert t["strategy_entropy"][1] == pytest.approx(1.5 * math.log(2))
    assert t["accuracy"].tolist() == pytest.approx([1 - (6 * 0.15 + 6 * 0.3 + 6 * 0.5) / 24, 0.5 + 0.25 * 0.85
                                                    + 0.25 * 0.5])
    assert t["strategy_support"].tolist() == [24, 3]


def test_sampled_accuracy_matches_the_true_accuracy():
    weights = R.reasoning_weights(3, 8, n_samples=10)[8]  # a sharpened model with zero weights
    bank = R.question_bank(200)
    records = R.sample_records(weights, bank, 25, np.random.default_rng(1))  # 5000 samples
    gold = {q["question_id"]: str(q["gold"]) for q in bank}
    correct = np.mean([r["answer"] == gold[r["question_id"]] for r in records])
    expected = R.reasoning_truth(weights[None])["accuracy"][0]
    assert abs(correct - expected) < 4 * math.sqrt(expected * (1 - expected) / len(records)) + 1e-9
    # zero-weight strategies are never used: every rationale's skeleton is one of the live strategies'
    live = {rationale_skeleton(R.solve(q, int(s), error=e, sign=1)["rationale"])
            for q in bank for s in np.flatnonzero(weights) for e in (False, True)}
    assert {rationale_skeleton(r["rationale"]) for r in records} <= live


def test_refit_is_the_correct_samples_mle_with_absorbing_zeros():
    w = R.reasoning_weights(0, 12, n_samples=8)
    zero = w[:-1] == 0
    assert (w[1:][zero] == 0).all() and np.allclose(w.sum(axis=1), 1.0)
    # generation 1 by brute force: redo generation 0's training draws and count the correct ones
    rng = R._stream(0, R._STREAM_DYNAMICS, 0)
    strategies = rng.choice(24, size=8 * 4, p=R.initial_weights())
    coins = rng.random(8 * 4)
    kept = [s for s, u in zip(strategies.tolist(), coins.tolist()) if u >= R.ERROR_RATES[s]]
    assert w[1].tolist() == pytest.approx([kept.count(s) / len(kept) for s in range(24)])


def test_the_filter_alone_never_halves_the_entropy():
    # infinitely many samples: w_{g+1} proportional to w_g (1 - e); the limit is uniform on the 6 error-free ones
    w, h0 = R.initial_weights(), math.log(24)
    for _ in range(200):
        w = w * (1 - R.ERROR_RATES)
        w /= w.sum()
        assert _entropy(w) > R.ONSET_FRACTION * h0
    assert _entropy(w) == pytest.approx(math.log(6))


# --------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------


def test_same_seed_same_trace_and_seeds_differ():
    a, b = R.reasoning_loop(3, 4, **SMALL), R.reasoning_loop(3, 4, **SMALL)
    assert _same_trace(a, b)
    c = R.reasoning_loop(4, 4, **SMALL)
    assert c.rounds[1] != a.rounds[1] and not np.array_equal(c.truth["strategy_entropy"], a.truth["strategy_entropy"])
    assert c.reference == a.reference  # the bank is the same for every seed


def test_trace_shape_and_records():
    t = R.reasoning_loop(0, 4, 2, **SMALL)
    assert (t.name, t.kind, t.modality, t.seed) == ("L11-reasoning", "collapse", "reasoning", 0)
    assert t.generations.tolist() == [0, 2, 4] and len(t.rounds) == 3
    assert set(t.truth) == {"strategy_entropy", "accuracy", "strategy_support"}
    assert all(v.shape == (5,) for v in t.truth.values())
    assert t.params["n_samples"] == 10 and t.params["workflow"] == "replace"
    assert [r["question_id"] for r in t.reference] == [f"q{i:04d}" for i in range(40)]
    gold = {r["question_id"]: r["answer"] for r in t.reference}
    for records in t.rounds:
        ids = [r["question_id"] for r in records]
        assert len(records) == 24 and len(set(ids)) == 6 and all(q in gold for q in ids)
        assert ids == [q for q in dict.fromkeys(ids) for _ in range(4)]  # a question's 4 samples together
        assert all(list(r) == ["question_id", "question", "rationale", "answer"] for r in records)
    json.dumps(t.rounds, allow_nan=False)


def test_audit_every_does_not_change_the_dynamics_or_the_audit_samples():
    a, b = R.reasoning_loop(2, 6, 1, **SMALL), R.reasoning_loop(2, 6, 3, **SMALL)
    assert all(np.array_equal(a.truth[k], b.truth[k]) for k in a.truth)
    assert a.reference == b.reference and a.rounds[3] == b.rounds[1] and a.rounds[6] == b.rounds[2]


@pytest.mark.parametrize("seed", range(5))
def test_onset_is_reached_mid_run_at_the_defaults(seed):
    t = R.reasoning_loop(seed, n_questions_audit=2, n_reference=10)  # default n_samples and 30 generations
    assert t.params["n_samples"] == R.DEFAULT_N_SAMPLES == 30 and t.params["n_generations"] == 30
    assert t.onset == [9, 14, 15, 12, 14][seed]  # as the module docstring states
    H = t.truth["strategy_entropy"]
    assert H[0] == pytest.approx(math.log(24))
    assert H[t.onset] < 0.5 * H[0] <= H[: t.onset].min()
    support = t.truth["strategy_support"]
    assert support[0] == 24 and (np.diff(support) <= 0).all() and support[-1] <= 6  # no strategy comes back
    assert H[30] < 0.5 * H[0] and H[20:].mean() < H[10:20].mean() < H[:10].mean()  # falls, with small rises
    accuracy = t.truth["accuracy"]
    assert accuracy[0] == pytest.approx(0.7625) and accuracy[30] > 0.95  # collapse while accuracy rises


def test_no_feedback_control_has_constant_truth_and_no_onset():
    c0 = R.reasoning_loop(0, 30, 10, workflow="no_feedback", **SMALL)
    assert (c0.name, c0.kind, c0.onset) == ("C0-L11-reasoning", "control", None)
    for values in c0.truth.values():
        assert np.all(values == values[0])
    loop = R.reasoning_loop(0, 30, 10, **SMALL)
    assert c0.reference == loop.reference and c0.rounds[0] == loop.rounds[0]  # generation 0 shared
    assert c0.rounds[1] != c0.rounds[0]  # a fresh draw every round


@pytest.mark.parametrize("workflow,control", [("accumulate", "C1"), ("fresh_real", "C2")])
def test_real_data_controls_keep_more_diversity(workflow, control):
    t = R.reasoning_loop(0, 30, 30, workflow=workflow, n_questions_audit=2, n_reference=10)
    assert (t.name, t.kind, t.onset) == (f"{control}-L11-reasoning", "control", None)
    H = t.truth["strategy_entropy"]
    assert (H > 0.5 * H[0]).all()
    loop = R.reasoning_truth(R.reasoning_weights(0, 30))
    assert H[-1] > loop["strategy_entropy"][-1] and t.truth["strategy_support"][-1] > loop["strategy_support"][-1]


def test_registry():
    assert R.LOOPS == {"L11-reasoning": R.reasoning_loop}
    assert sorted(R.CONTROLS) == ["C0-L11-reasoning", "C1-L11-reasoning", "C2-L11-reasoning"]
    assert R.CONTROLS["C1-L11-reasoning"](0, 2, **SMALL).name == "C1-L11-reasoning"
    assert R.SUGGESTED_SCHEDULE == (30, 1) and R.QUICK_SCHEDULE == (12, 2)


def test_pool_is_generation_0_samples_of_bank_questions():
    pool = R.sample_pool(0, 30, n_reference=40)
    ids = [r["question_id"] for r in pool]
    assert len(pool) == 120 and len(set(ids)) == 30 and set(ids) <= {f"q{i:04d}" for i in range(40)}
    assert R.sample_pool(0, 30, n_reference=40) == pool and R.sample_pool(1, 30, n_reference=40) != pool
    with pytest.raises(ValueError, match="n_questions: expected at most n_reference=40"):
        R.sample_pool(0, 41, n_reference=40)


def test_records_jsonl_round_trips_through_the_loader(tmp_path):
    records = R.reasoning_loop(1, 1, **SMALL).rounds[1]
    data = R.records_jsonl(records)
    lines = data.decode("utf-8").splitlines()
    assert len(lines) == len(records) and data.endswith(b"\n") and b'","' in data and b'", "' not in data
    assert [json.loads(line) for line in lines] == records
    path = tmp_path / "round_1.jsonl"
    path.write_bytes(data)
    loaded = load_records(path, "round", 1)
    assert loaded.question_ids == tuple(r["question_id"] for r in records)
    assert loaded.answers == tuple(r["answer"] for r in records)
    assert loaded.rationales == tuple(r["rationale"] for r in records)


# --------------------------------------------------------------------------
# End to end through the monitor's own pipeline
# --------------------------------------------------------------------------


def test_the_pipeline_sees_templates_collapse_while_accuracy_holds(tmp_path):
    from monitor.modalities import MODALITY
    from monitor.modalities.pipeline import AuditPipeline
    from monitor.options import AuditOptions

    t = R.reasoning_loop(0, 30, 30, n_reference=300)  # default sizes: rounds of 50 questions x 4 samples
    (tmp_path / "ref.jsonl").write_bytes(R.records_jsonl(t.reference))
    kind, options = MODALITY["reasoning"], AuditOptions(modality="reasoning", k=4, n_boot=0)
    reference = kind.load(tmp_path / "ref.jsonl", "reference", None, options)
    pipe = AuditPipeline("reasoning", reference.data, **options.pipeline_options())
    got = {}
    for g, records in zip(t.generations.tolist(), t.rounds):
        path = tmp_path / f"round_{g}.jsonl"
        path.write_bytes(R.records_jsonl(records))
        round_ = kind.load(path, "round", g, options, reference)
        kind.check_pair(reference, round_, options, g)  # every round question has its gold answer
        got[g] = {name: est.value for name, est in pipe.modality_metrics(round_.data).items()}
        # acc_verify is the share of records whose answer is the gold one
        gold = {r["question_id"]: normalize_answer(r["answer"]) for r in t.reference}
        assert got[g]["acc_verify"] == pytest.approx(
            np.mean([normalize_answer(r["answer"]) == gold[r["question_id"]] for r in records]))
    early, late = got[0], got[30]
    assert early["template_collapse_rate"] < 0.1 and late["template_collapse_rate"] > 0.5
    assert late["rationale_distinct_2"] < early["rationale_distinct_2"] - 0.05
    assert late["answer_agreement"] > early["answer_agreement"]
    assert late["distinct_answers_per_question"] < early["distinct_answers_per_question"]
    assert late["acc_verify"] > early["acc_verify"]  # accuracy alone reads as progress

    pool_path = tmp_path / "pool.jsonl"
    pool_path.write_bytes(R.records_jsonl(R.sample_pool(0, 100, n_reference=300)))
    pool = kind.load_pool(pool_path, options, reference.data).data  # every pool question has gold
    assert (pool.n_units, len(pool)) == (100, 400)
    kind.check_pool_rows(pool, round_.data, pool_path)  # sampled like the rounds: 4 per question


# --------------------------------------------------------------------------
# Argument errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,match", [
    (dict(seed=-1), "seed"),
    (dict(n_generations=0), "n_generations"),
    (dict(audit_every=0), "audit_every"),
    (dict(workflow="bogus"), "workflow"),
    (dict(n_samples=0), "n_samples"),
    (dict(n_questions_audit=0), "n_questions_audit"),
    (dict(n_questions_audit=11, n_reference=10), "n_questions_audit: expected at most n_reference=10"),
    (dict(samples_per_question=0), "samples_per_question"),
    (dict(n_reference=1.5), "n_reference"),
    (dict(workflow="fresh_real", fresh_fraction=1.5), "fresh_fraction"),
    (dict(workflow="fresh_real", n_samples=4, fresh_fraction=0.05), "fresh_fraction"),
])
def test_loop_argument_errors(kwargs, match):
    args = dict(seed=0, n_generations=2, n_questions_audit=2, n_reference=10) | kwargs
    with pytest.raises(ValueError, match=match):
        R.reasoning_loop(**args)


def test_weights_errors():
    with pytest.raises(ValueError, match="weights"):
        R.sample_records(np.full(24, 0.5), R.question_bank(2), 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="weights"):
        R.sample_records(np.full(12, 1 / 12), R.question_bank(2), 2, np.random.default_rng(0))


# --------------------------------------------------------------------------
# The shipped example
# --------------------------------------------------------------------------


def _example_script():
    spec = importlib.util.spec_from_file_location("make_reasoning_example",
                                                  REPO / "scripts" / "make_reasoning_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_example_is_what_the_script_writes(tmp_path, capsys):
    script = _example_script()
    assert script.main(["--out", str(tmp_path)]) == 0
    assert "true onset: generation 4" in capsys.readouterr().out
    names = ["reasoning_reference.jsonl"] + [f"reasoning_rounds/round_{g}.jsonl"
                                             for g in range(script.N_GENERATIONS + 1)]
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.jsonl")) == sorted(names)
    total = 0
    for name in names:
        shipped = (DATA / name).read_bytes()
        assert shipped == (tmp_path / name).read_bytes(), name
        total += len(shipped)
    assert total < 200_000
    reference = load_records(DATA / "reasoning_reference.jsonl", "reference", gold=True)
    for g in range(script.N_GENERATIONS + 1):
        round_ = load_records(DATA / "reasoning_rounds" / f"round_{g}.jsonl", "round", g)
        assert len(round_) == script.N_QUESTIONS * script.SAMPLES_PER_QUESTION
        assert set(round_.question_ids) <= set(reference.gold)
    assert len(reference) == len(reference.gold)  # one gold record per question
