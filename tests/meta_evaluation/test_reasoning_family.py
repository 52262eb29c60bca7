"""L11-reasoning in the meta-evaluation: registration, schedules and sizes, truth crossings, the audit path
(LoadedRecords with gold, as the daemon's loader reads a file), pools and nulls of whole questions, the oracle,
and one tiny family run.

The oracle's exactness is checked by the importance-sampling identity :math:`E_{p_0}[p_g(x) / p_0(x)] = 1`, here
exact (a record's ratio is its strategy's weight ratio) and by Monte Carlo over records whose strategies are read
back from their rationales by an independent matcher of the templates.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from monitor.errors import InputError
from monitor.inputs.records import LoadedRecords, load_records
from monitor.meta_evaluation import jobs, report, runner
from monitor.meta_evaluation import loop_reasoning as R
from monitor.meta_evaluation import settings as S
from monitor.meta_evaluation.audit import pipeline_input, records_from_objects, truth_crossing
from monitor.meta_evaluation.oracle import oracle_alarms, oracle_log_evalues, oracle_models, spread_log_evalues
from monitor.meta_evaluation.pools import draw_pool, pool_capacity
from monitor.engine.null import take_units, unit_count
from monitor.engine.rules import load_rules
from monitor.modalities import MODALITY
from monitor.options import AuditOptions

pytestmark = pytest.mark.usefixtures("single_torch_thread")

FAMILY = "L11-reasoning"
MEMBERS = [FAMILY, f"C0-{FAMILY}", f"C1-{FAMILY}", f"C2-{FAMILY}"]
SMALL = dict(n_questions_audit=6, n_reference=40)


# --------------------------------------------------------------------------------------------------------------
# registration, schedules, sizes
# --------------------------------------------------------------------------------------------------------------


def test_registered_after_l10_with_its_three_controls():
    assert list(runner.COLLAPSE_LOOPS)[-2:] == ["L10-image-text", FAMILY]
    assert runner.COLLAPSE_LOOPS[FAMILY] is R.reasoning_loop and runner.family_members(FAMILY) == MEMBERS
    assert all(runner.family_of(m) == FAMILY for m in MEMBERS)
    assert runner.select_families("L11*") == runner.select_families("C2-L11-*") == [FAMILY]


def test_schedules_sizes_and_costs():
    full, quick = runner.default_settings(False), runner.default_settings(True)
    assert full.schedule(FAMILY) == full.schedule(f"C2-{FAMILY}") == R.SUGGESTED_SCHEDULE == (30, 1)
    assert quick.schedule(FAMILY) == R.QUICK_SCHEDULE == (12, 2) and quick.schedule(f"C0-{FAMILY}") == (10, 1)
    assert full.seeds_of(FAMILY) == tuple(range(8)) and full.schedule(f"C0-{FAMILY}")[0] * 8 == 3000
    # n_audit counts questions, capped; the reference is the fixed bank, whatever n_audit
    assert runner.loop_overrides(f"C0-{FAMILY}", 301) == {"n_questions_audit": 50, "n_reference": 1000}
    assert runner.loop_overrides(FAMILY, 41) == {"n_questions_audit": 41, "n_reference": 1000}
    trace = S.generate_trace(FAMILY, 0, dataclasses.replace(quick, schedules={FAMILY: (2, 2)}))
    assert [len(r) for r in trace.rounds] == [200, 200] and len(trace.reference) == 1000
    assert sorted((j.run_id, j.seed) for j in runner.make_jobs([FAMILY], quick, rules=None)) == \
        sorted((m, s) for m in MEMBERS for s in quick.seeds)
    assert jobs._round_weight(FAMILY) == 3.0 and jobs._job_cost(FAMILY, quick) == 7 * 3.0
    # the quick pool (16 round sizes) fits the bank; the full one (256) is capped at it
    assert quick.pool_ratio * 50 <= S.REASONING_BANK < full.pool_ratio * 50


# --------------------------------------------------------------------------------------------------------------
# controls and truth crossings
# --------------------------------------------------------------------------------------------------------------


def test_c0_is_constant_and_shares_generation0_and_the_reference():
    loop = runner.COLLAPSE_LOOPS[FAMILY](0, 4, **SMALL)
    c0 = runner.CONTROL_LOOPS[f"C0-{FAMILY}"](0, 4, **SMALL)
    assert (c0.modality, c0.kind, c0.onset, truth_crossing(c0)) == ("reasoning", "control", None, None)
    for name, values in c0.truth.items():
        assert np.all(values == values[0]), name
    assert c0.truth["strategy_entropy"][0] == pytest.approx(np.log(24)) and c0.truth["strategy_support"][0] == 24
    assert loop.reference == c0.reference and loop.rounds[0] == c0.rounds[0]  # generation 0 is the same model


@pytest.mark.parametrize("run_id", [f"C1-{FAMILY}", f"C2-{FAMILY}"])
def test_small_drift_controls_are_scored_with_the_loops_onset_rule(run_id):
    # M = 6 training questions a generation (C2: 1 of them fresh): the controls drift enough to cross within 30
    # generations at some seed (C1: seed 3 of 0-5, C2: all six)
    crossings = []
    for seed in range(6):
        trace = runner.CONTROL_LOOPS[run_id](seed, 30, 10, n_samples=6, **SMALL)
        entropy = trace.truth["strategy_entropy"]
        hits = np.flatnonzero(entropy < 0.5 * entropy[0])
        crossings.append(truth_crossing(trace))
        assert crossings[-1] == (int(hits[0]) if hits.size else None)
    assert any(c is not None for c in crossings)
    loop = runner.COLLAPSE_LOOPS[FAMILY](0, 30, 10, n_samples=6, **SMALL)
    assert truth_crossing(loop) == loop.onset is not None


# --------------------------------------------------------------------------------------------------------------
# the audit path
# --------------------------------------------------------------------------------------------------------------


def test_pipeline_input_is_what_the_daemons_loader_reads(tmp_path):
    trace = R.reasoning_loop(0, 2, **SMALL)
    for role, data, round_number in (("reference", trace.reference, None), ("round", trace.rounds[2], 2)):
        path = tmp_path / f"{role}.jsonl"
        path.write_bytes(R.records_jsonl(data))
        loaded = MODALITY["reasoning"].load(path, role, round_number, AuditOptions()).data
        mine = pipeline_input("reasoning", data, f"{FAMILY} {role}", role=role)
        assert isinstance(mine, LoadedRecords) and dataclasses.replace(mine, path=path) == loaded
    reference = pipeline_input("reasoning", trace.reference, "reference", role="reference")
    bank = R.question_bank(40)
    assert reference.gold == {q["question_id"]: str(q["gold"]) for q in bank} and reference.n_units == 40
    assert pipeline_input("reasoning", trace.rounds[0], "round").gold is None  # a round holds no gold
    assert pipeline_input("reasoning", trace.rounds[0], "round").n_units == 6 and len(trace.rounds[0]) == 24


def test_bad_records_are_refused_in_one_line_as_the_loader_does(tmp_path):
    good = {"question_id": "q1", "question": "?", "rationale": "so 4", "answer": "4"}
    cases = [
        ([good, {"question_id": "q2", "rationale": "r"}], "round",
         "L11-reasoning generation 3: line 2: no field 'answer' (fields: question_id, rationale)"),
        ([good, {**good, "answer": ["4"]}], "round",
         "L11-reasoning generation 3: line 2: field 'answer': expected a string or number, got an array ([\"4\"])"),
        ([good, {**good, "question_id": ""}], "round",
         "L11-reasoning generation 3: line 2: field 'question_id': expected a non-empty string or an integer, "
         "got a string (\"\")"),
        ([good, {**good, "answer": "5"}], "reference",
         "L11-reasoning generation 3: line 2: question 'q1': gold answer '5' differs from '4' on line 1; a "
         "reference holds one answer per question"),
        ([], "round", "L11-reasoning generation 3: empty: no records"),
    ]
    for records, role, message in cases:
        with pytest.raises(InputError) as caught:
            pipeline_input("reasoning", records, "L11-reasoning generation 3", role=role)
        assert str(caught.value) == message and "\n" not in str(caught.value)
        if records:  # the loader's message is the same after its file and role
            path = tmp_path / "r.jsonl"
            path.write_bytes(R.records_jsonl(records))
            with pytest.raises(InputError) as loader:
                load_records(path, "round", 3, gold=role == "reference")
            assert str(loader.value).split(": line ", 1)[1] == message.split(": line ", 1)[1]
    with pytest.raises(InputError, match=r"^x: not valid JSON: Out of range float values"):
        records_from_objects([{**good, "answer": float("nan")}], "x")


def test_evidently_columns_are_the_rationales_text_view():
    from monitor.modalities.pipeline import AuditPipeline
    from monitor.publishing import evidently_report

    trace = R.reasoning_loop(0, 6, 6, n_samples=10, n_questions_audit=10, n_reference=60)
    reference = pipeline_input("reasoning", trace.reference, "reference", role="reference")
    current = pipeline_input("reasoning", trace.rounds[1], "round")
    assert list(current.texts) == [r["rationale"] for r in trace.rounds[1]]
    pipe = AuditPipeline("reasoning", reference, k=5, n_boot=0, seed=0)
    audit = pipe.audit(current, round_where="round", skip_failed_groups=True)
    assert not audit.failures and {"acc_verify", "template_collapse_rate", "rationale_distinct_2"} <= set(audit.metrics)
    ref, cur, numeric, categorical = runner.evidently_columns("reasoning", reference, current,
                                                              pipe.reference_embeddings, audit.embeddings)
    assert MODALITY["reasoning"].reports_drift and categorical == []
    assert numeric[:5] == list(evidently_report.TEXT_DESCRIPTOR_COLUMNS)
    full = evidently_report.text_drift_report(reference.texts, current.texts,
                                              reference_embeddings=pipe.reference_embeddings,
                                              round_embeddings=audit.embeddings).drift_share
    assert runner.evidently_drift_share(ref, cur, numeric) == full


# --------------------------------------------------------------------------------------------------------------
# pools and nulls: whole questions
# --------------------------------------------------------------------------------------------------------------


def test_pool_questions_have_gold_and_are_sampled_like_a_round():
    overrides = runner.loop_overrides(f"C0-{FAMILY}", 101)
    records = draw_pool(f"C0-{FAMILY}", 0, 800, **overrides)  # the quick run's pool: 16 x 50 questions
    pool = pipeline_input("reasoning", records, "pool", role="pool")
    reference = pipeline_input("reasoning", R.reasoning_loop(0, 1, **overrides).reference, "ref", role="reference")
    assert pool.gold is None and pool.n_units == 800 and len(pool) == 3200
    assert set(pool.samples_per_question()) <= set(reference.gold)  # the daemon's load_pool check
    assert set(pool.samples_per_question().values()) == {4}  # the daemon's check_pool_rows: as a round's
    # generation 0: accuracy 0.7625 (binomial se sqrt(0.7625 * 0.2375 / 3200) = 0.0075; 4 se)
    gold = reference.gold
    correct = np.mean([a == gold[q] for q, a in zip(pool.question_ids, pool.answers)])
    assert abs(correct - 0.7625) < 4 * 0.0075
    assert draw_pool(f"C2-{FAMILY}", 1, 5, **overrides) == draw_pool(FAMILY, 1, 5, **overrides) != \
        draw_pool(FAMILY, 2, 5, **overrides)
    assert pool_capacity(f"C1-{FAMILY}", **overrides) == S.REASONING_BANK
    with pytest.raises(ValueError, match="n_questions: expected at most n_reference=1000"):
        draw_pool(FAMILY, 0, 1001, **overrides)


def test_a_pseudo_round_draws_whole_questions():
    pool = pipeline_input("reasoning", R.sample_pool(0, 30, n_reference=40), "pool", role="pool")
    rows = take_units(pool, np.array([3, 1, 4]))
    questions = list(pool.samples_per_question())
    assert unit_count(pool) == 30 and unit_count(rows) == 3 and len(rows) == 12
    assert set(rows.question_ids) == {questions[i] for i in (1, 3, 4)}


def test_the_null_counts_questions_and_its_pool_is_capped_at_the_bank(monkeypatch):
    monkeypatch.setattr(S, "REASONING_BANK", 60)  # loop_overrides reads it: a bank of 60 questions
    tiny = runner.BenchSettings(quick=True, seeds=(0,), n_audit=10, n_boot=0, n_permutations=19,
                                schedules={FAMILY: (2, 1)}, null_rounds=3, pool_ratio=4)
    _, _, null, _ = jobs.build_null(jobs.NullJob(FAMILY, 0, tiny))
    assert (null.round_size, null.pool_size) == (10, 40)  # 10 questions a round, 4 x 10 in the pool
    capped = dataclasses.replace(tiny, pool_ratio=16)
    _, _, null, _ = jobs.build_null(jobs.NullJob(FAMILY, 0, capped))
    assert (null.round_size, null.pool_size) == (10, 60)  # 160 questions wanted, the bank's 60 given
    assert null.values.shape[0] == 3 and "acc_verify" in null.metrics


# --------------------------------------------------------------------------------------------------------------
# the oracle
# --------------------------------------------------------------------------------------------------------------


def _template_matchers() -> list[re.Pattern]:
    """Each strategy's template as a regex (every field any text), independent of the loop's renderer."""
    out = []
    for template, _, _ in R.STRATEGIES:
        parts = re.split(r"\{[A-Za-z0-9]+\}", template)
        out.append(re.compile("(.+?)".join(re.escape(p) for p in parts) + r"\Z"))
    return out


def _strategy_of(rationale: str, matchers: list[re.Pattern]) -> int:
    hits = [s for s, m in enumerate(matchers) if m.match(rationale)]
    assert len(hits) == 1, (rationale, hits)  # a rationale shows exactly one template
    return hits[0]


def test_oracle_is_zero_on_c0_and_positive_late_in_the_loop():
    c0 = runner.CONTROL_LOOPS[f"C0-{FAMILY}"](0, 12, 4, n_questions_audit=15, n_reference=40)
    assert oracle_log_evalues(c0).tolist() == [0.0] * 4 and R.reasoning_log_evalues(c0).tolist() == [0.0] * 4
    loop = runner.COLLAPSE_LOOPS[FAMILY](0, 12, 4, n_questions_audit=15, n_reference=40)
    log_e = oracle_log_evalues(loop)
    assert log_e[0] == 0.0 and np.all(log_e[1:] > 0) and oracle_alarms(log_e)[-1]
    assert spread_log_evalues(loop) is None
    assert np.array_equal(oracle_log_evalues(FAMILY, 0, 12, 4, n_questions_audit=15, n_reference=40), log_e)
    # the same sums from the strategies read back from the rationales and the true weights
    matchers = _template_matchers()
    weights = R.reasoning_weights(0, 12)
    for g, records, value in zip(loop.generations, loop.rounds, log_e):
        s = np.array([_strategy_of(r["rationale"], matchers) for r in records])
        assert value == pytest.approx(float(np.sum(np.log(weights[g][s]) - np.log(weights[0][s]))), abs=1e-9)
    with pytest.raises(ValueError, match="loop module"):
        oracle_models(loop)


def test_oracle_of_drifting_controls_is_finite_and_refuses_a_foreign_trace():
    for run_id in (f"C1-{FAMILY}", f"C2-{FAMILY}"):
        log_e = oracle_log_evalues(runner.CONTROL_LOOPS[run_id](0, 6, 3, **SMALL))
        assert log_e[0] == 0.0 and np.isfinite(log_e).all()
    trace = R.reasoning_loop(0, 2, **SMALL)
    swapped = dataclasses.replace(trace, rounds=[trace.rounds[0], trace.rounds[2], trace.rounds[1]])
    with pytest.raises(ValueError, match="L11-reasoning seed 0 round 1 does not match"):
        oracle_log_evalues(swapped)


def test_record_ratio_has_expectation_one_under_generation0():
    weights = R.reasoning_weights(3, 15)
    late = weights[15]
    assert (late > 0).sum() < 24  # strategies have vanished: the ratio is 0 on them
    # exactly: E_{w_0}[w_g(s) / w_0(s)] = sum_s w_g(s) = 1
    assert float(np.sum(R.initial_weights() * late / R.initial_weights())) == pytest.approx(1.0, abs=1e-12)
    # by Monte Carlo over generation-0 records, their strategies read back from the rationales
    records = R.sample_pool(0, 2000, n_reference=2000)
    matchers = _template_matchers()
    s = np.array([_strategy_of(r["rationale"], matchers) for r in records])
    ratio = late[s] / R.initial_weights()[s]
    mean, se = float(ratio.mean()), float(ratio.std(ddof=1) / np.sqrt(ratio.size))
    assert abs(mean - 1.0) < 4 * se and se < 0.1


# --------------------------------------------------------------------------------------------------------------
# one tiny family run, in-process
# --------------------------------------------------------------------------------------------------------------


def test_a_tiny_l11_run_is_audited_scored_and_reported(monkeypatch):
    monkeypatch.setattr(S, "REASONING_BANK", 200)  # a smaller reference: the path, not the cost
    tiny = runner.BenchSettings(quick=True, seeds=(0,), n_audit=7, n_boot=0, n_permutations=19,
                                schedules={FAMILY: (6, 3)}, evidently_check="collapse", null_rounds=10,
                                pool_ratio=4, c0_generations=6)
    bench = runner.run_benchmark(tiny, load_rules(None), families=[FAMILY], workers=1, progress=False)
    assert sorted(r.run_id for r in bench.runs) == sorted(MEMBERS)
    for r in bench.runs:
        assert r.modality == "reasoning" and r.oracle_alarms is not None and not r.failures
        assert {"acc_verify", "answer_agreement", "template_collapse_rate", "rationale_distinct_2", "vendi_score",
                runner.DRIFT_SHARE} <= set(r.trajectory["metric"])
    c0 = next(r for r in bench.runs if r.run_id == f"C0-{FAMILY}")
    assert c0.generations.tolist() == list(range(7)) and not c0.oracle_alarms.any()
    null = bench.nulls[(FAMILY, 0)]
    assert (null.round_size, null.pool_size) == (7, 28)  # questions
    assert bench.evidently_check and all(c["fast"] == c["full"] for c in bench.evidently_check)
    text = report.render_markdown(bench, {}, "results.json", "out")
    assert f"## `{FAMILY}`" in text and f"`{FAMILY}` 6/3" in text
    assert "L11: 7 questions x 4 samples, a reference of the 200 gold records" in text
