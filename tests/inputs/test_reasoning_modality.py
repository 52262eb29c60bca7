"""Reasoning rounds: the modality object, the pipeline's answer metrics (hand-computed) and the CLI end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from metrics_core.registry import REGISTRY, metric_names
from monitor.errors import InputError
from monitor.modalities import MODALITY
from monitor.modalities.pipeline import AuditPipeline
from monitor.options import AuditOptions

GOLD = {"q1": "4", "q2": "Paris", "q3": 12, "q4": "7"}
# K = 3 samples per question: (answer, rationale). Four rationales share one template ("so <name> pays <num>
# dollars."); the other eight are unique.
ROUND = {
    "q1": [("4", "So Tom pays 4 dollars."), ("4.0", "Adding two and two yields four apples."),
           ("5", "Two and two make five, says the broken abacus.")],
    "q2": [("Paris", "So Ann pays 5 dollars."), ("Lyon", "The French capital is Lyon, a river city."),
           ("paris", "Paris is where the national government sits.")],
    "q3": [(12, "So Bob pays 12 dollars."), ("12", "Multiply three boxes by four pencils each."),
           ("12", "Twelve pencils fill three boxes of four.")],
    "q4": [("6", "So Eve pays 6 dollars."), ("6", "Six days pass between two Sundays, roughly."),
           ("8", "Eight days form one long week on this calendar.")],
}
REFERENCE_RATIONALES = {
    "q1": ["Two plus two is four.", "Adding two and two gives four.", "Two pairs of one pair make four items."],
    "q2": ["France has its capital at Paris.", "The French government sits in Paris.", "Paris is the capital city."],
    "q3": ["Three boxes of four give twelve.", "Multiply three by four to get twelve.", "Twelve is three times four."],
    "q4": ["A week has seven days.", "Count the weekdays and weekend: seven.", "Seven days make one week."],
}


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    reference = _write(tmp_path / "ref.jsonl", [{"question_id": q, "answer": GOLD[q], "rationale": r}
                                                for q, rationales in REFERENCE_RATIONALES.items() for r in rationales])
    round_ = _write(tmp_path / "round.jsonl", [{"question_id": q, "answer": a, "rationale": r}
                                               for q, samples in ROUND.items() for a, r in samples])
    return reference, round_


def test_the_pipeline_computes_the_answer_metrics_then_the_embedding_suite(files):
    options = AuditOptions(modality="reasoning", k=3, n_boot=0)
    kind = MODALITY["reasoning"]
    assert kind.has_own_metrics and kind.reports_drift  # Evidently's text report on the rationales
    reference = kind.load(files[0], "reference", None, options)
    round_ = kind.load(files[1], "round", 0, options, reference)
    kind.check_pair(reference, round_, options, 0)
    pipe = AuditPipeline("reasoning", reference.data, **options.pipeline_options())
    # the featurizer is fitted on the reference's rationales, not on the records themselves
    assert kind.reference_texts(pipe) == [r for rationales in REFERENCE_RATIONALES.values() for r in rationales]
    audit = pipe.audit(round_.data)
    got = {name: est.value for name, est in audit.metrics.items()}
    # correct samples: q1 2 of 3 (4, 4.0), q2 2 (Paris, paris), q3 3, q4 0
    assert got["acc_verify"] == pytest.approx(7 / 12)
    assert got["pass_at_1"] == pytest.approx((2 / 3 + 2 / 3 + 1 + 0) / 4)
    assert got["pass_at_k"] == pytest.approx(3 / 4)  # k = 3: every question but q4 has a correct sample
    assert got["self_consistency_accuracy"] == pytest.approx(3 / 4)  # q4's majority is 6
    assert got["answer_agreement"] == pytest.approx((1 / 3 + 1 / 3 + 1 + 1 / 3) / 4)
    assert got["distinct_answers_per_question"] == pytest.approx((2 + 2 + 1 + 2) / 4)
    assert got["template_collapse_rate"] == pytest.approx(4 / 12)
    assert "pass_rate" not in got and "syntax_valid_rate" not in got  # no passed field, no code language
    # Rationale diversity: the text suite on the round's rationales against the reference's.
    from metrics_core.text import fit_text_reference, text_suite

    round_rationales = [r for samples in ROUND.values() for _, r in samples]
    direct = text_suite(fit_text_reference([r for rs in REFERENCE_RATIONALES.values() for r in rs]),
                        round_rationales, n_boot=0)
    for name, est in direct.items():
        assert got[f"rationale_{name}"] == pytest.approx(est.value, nan_ok=True), name
    assert got["rationale_distinct_1"] < 1.0 and got["rationale_exact_duplicate_rate"] == 0.0
    own = [name for name in got if REGISTRY[name].modality == "reasoning"]
    assert own == [name for name in metric_names("reasoning") if name in got]  # registry order, first
    assert set(metric_names("embedding")) <= set(got)
    assert audit.embeddings.shape[0] == 12


def test_code_rounds_use_the_harness_verdict_and_parse_without_running(tmp_path):
    programs = ["def f(x):\n    return x", "def f(x) return x", "import os", "print(", "x = 1", "y = 2"]
    records = [{"question_id": i // 2, "answer": p, "ok": i % 3 != 0, "rationale": f"attempt number {i} of many"}
               for i, p in enumerate(programs * 2)]
    reference = _write(tmp_path / "ref.jsonl", [{"question_id": q, "answer": "pass", "rationale": f"solution {q} here"}
                                                for q in range(6) for _ in range(2)])
    round_path = _write(tmp_path / "round.jsonl", records)
    options = AuditOptions(modality="reasoning", k=3, n_boot=0, passed_field="ok", code_language="python")
    kind = MODALITY["reasoning"]
    ref = kind.load(reference, "reference", None, options)  # the reference needs no "ok" field
    round_ = kind.load(round_path, "round", 1, options, ref)
    kind.check_pair(ref, round_, options, 1)
    pipe = AuditPipeline("reasoning", ref.data, **options.pipeline_options())
    got = {name: est.value for name, est in pipe.modality_metrics(round_.data).items()}
    passed = [i % 3 != 0 for i in range(12)]  # 8 of 12
    assert got["pass_rate"] == pytest.approx(8 / 12)
    per_question = [sum(passed[2 * q: 2 * q + 2]) / 2 for q in range(6)]
    assert got["pass_at_1"] == pytest.approx(sum(per_question) / 6)
    assert got["pass_at_k"] == pytest.approx(sum(c > 0 for c in per_question) / 6)  # k = 2 of 2 samples
    assert got["syntax_valid_rate"] == pytest.approx(8 / 12)  # "def f(x) return x" and "print(" fail, twice
    assert got["acc_verify"] == 0.0


def test_check_pair_refuses_a_round_question_without_gold(files, tmp_path):
    options = AuditOptions(modality="reasoning", k=3, n_boot=0)
    kind = MODALITY["reasoning"]
    partial = _write(tmp_path / "partial.jsonl", [{"question_id": "q1", "answer": "4", "rationale": r}
                                                  for r in REFERENCE_RATIONALES["q1"] * 2])
    reference = kind.load(partial, "reference", None, options)
    round_ = kind.load(files[1], "round", 2, options, reference)
    with pytest.raises(InputError) as info:
        kind.check_pair(reference, round_, options, 2)
    assert str(info.value) == (f"{files[1]} (round, round 2): 3 of 4 questions have no gold answer in {partial} "
                               "(reference) (first: question 'q2')")


def _pool_files(tmp_path, n_questions=40, samples=3):
    """A gold reference of ``n_questions`` and a pool of ``samples`` generated records per question (every third
    wrong), each rationale its own sentence."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    reference = _write(tmp_path / "pool-ref.jsonl", [
        {"question_id": f"p{q}", "answer": str(q), "rationale": f"Count {words[q % 10]} items to reach {q}."}
        for q in range(n_questions)])
    pool = _write(tmp_path / f"pool-{samples}.jsonl", [
        {"question_id": f"p{q}", "answer": str(q + (s == 2)),
         "rationale": f"Sample {s} counts {words[(q + s) % 10]} then {words[(3 * q + s) % 10]} for {q}."}
        for q in range(n_questions) for s in range(samples)])
    return reference, pool


def test_a_reasoning_pool_draws_whole_questions_with_all_their_samples(tmp_path):
    from monitor.engine.null import audit_pseudo_rounds, pseudo_round_indices, take_units, unit_count

    options = AuditOptions(modality="reasoning", k=3, n_boot=0)
    kind = MODALITY["reasoning"]
    reference_path, pool_path = _pool_files(tmp_path)
    reference = kind.load(reference_path, "reference", None, options)
    pool = kind.load_pool(pool_path, options, reference.data).data
    assert (len(pool), unit_count(pool), pool.unit_name) == (120, 40, "questions")
    rows = take_units(pool, pseudo_round_indices(unit_count(pool), 4, 0, seed=0))
    assert sorted(rows.samples_per_question().values()) == [3, 3, 3, 3] and len(rows) == 12
    pipe = AuditPipeline("reasoning", reference.data, **options.pipeline_options())
    audited = audit_pseudo_rounds(pipe, pool, 4, range(3), seed=0)
    assert [row["acc_verify"] for row in audited] == [pytest.approx(2 / 3)] * 3  # one wrong sample in three
    assert all(row["pass_at_k"] == 1.0 and row["answer_agreement"] == pytest.approx(1 / 3) for row in audited)


def test_a_reasoning_pool_needs_gold_answers_and_the_round_s_samples_per_question(tmp_path, files):
    options = AuditOptions(modality="reasoning", k=3, n_boot=0)
    kind = MODALITY["reasoning"]
    reference_path, pool_path = _pool_files(tmp_path)
    reference = kind.load(files[0], "reference", None, options)  # gold for q1..q4 only
    with pytest.raises(InputError) as info:
        kind.load_pool(pool_path, options, reference.data)
    assert str(info.value) == (f"{pool_path} (pool): 40 of 40 questions have no gold answer in {files[0]} "
                               "(reference) (first: question 'p0')")
    reference = kind.load(reference_path, "reference", None, options)
    _, pool2_path = _pool_files(tmp_path, samples=2)
    pool2 = kind.load_pool(pool2_path, options, reference.data).data
    round_ = kind.load(pool_path, "round", 1, options, reference)
    with pytest.raises(InputError) as info:
        kind.check_pool_rows(pool2, round_.data, pool2_path)
    assert str(info.value) == (f"{pool2_path} (pool): 2 samples per question, but the round has 3; a pseudo-round "
                               "must draw questions sampled like the round's")
    kind.check_pool_rows(kind.load_pool(pool_path, options, reference.data).data, round_.data, pool_path)


def _env(home, tmp_path) -> dict:
    env = dict(os.environ)
    env.update(COLLAPSE_MONITOR_HOME=str(home), PREFECT_HOME=str(tmp_path / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONUNBUFFERED="1")
    return env


def test_cli_audits_a_reasoning_round_and_refuses_missing_gold_in_one_line(home, files, tmp_path):
    cli = [sys.executable, "-m", "monitor.cli", "--home", str(home), "audit", "reason-loop"]
    reference, round_ = files
    done = subprocess.run([*cli, "0", str(round_), "--reference", str(reference), "--modality", "reasoning",
                           "--k", "3", "--bootstrap", "0", "--null-rounds", "200", "--json"],
                          capture_output=True, text=True, env=_env(home, tmp_path), timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["metrics"]["acc_verify"]["value"] == pytest.approx(7 / 12)
    assert result["metrics"]["template_collapse_rate"]["value"] == pytest.approx(4 / 12)
    assert 0.0 <= result["metrics"]["evidently_drift_share"]["value"] <= 1.0  # on the rationales' text view

    partial = _write(tmp_path / "partial.jsonl", [{"question_id": "q1", "answer": "4", "rationale": r}
                                                  for r in REFERENCE_RATIONALES["q1"] * 2])
    refused = subprocess.run([*cli, "1", str(round_), "--reference", str(partial), "--modality", "reasoning",
                              "--k", "3", "--bootstrap", "0", "--null-rounds", "200", "--json"],
                             capture_output=True, text=True, env=_env(home, tmp_path), timeout=300)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"collapse-monitor: error: {round_} (round, round 1): 3 of 4 questions have no gold answer in {partial} "
        "(reference) (first: question 'q2')"]

    # No pool recorded: a gold reference cannot be split into a null pool.
    calibrate = subprocess.run([sys.executable, "-m", "monitor.cli", "--home", str(home), "calibrate", "reason-loop"],
                               capture_output=True, text=True, env=_env(home, tmp_path), timeout=300)
    assert calibrate.returncode == 1 and calibrate.stderr.splitlines() == [
        "collapse-monitor: error: loop 'reason-loop': a reasoning reference cannot be split into a null pool (it "
        "holds gold answers, not generated samples); pass --pool with generation-0 samples"]


def test_cli_builds_a_reasoning_loop_s_null_from_a_pool_of_questions(home, tmp_path):
    reference, pool = _pool_files(tmp_path)
    round_ = _write(tmp_path / "round.jsonl", [{"question_id": f"p{q}", "answer": "0", "rationale": "Always zero."}
                                               for q in range(4) for _ in range(3)])
    done = subprocess.run([sys.executable, "-m", "monitor.cli", "--home", str(home), "audit", "pooled", "0",
                           str(round_), "--reference", str(reference), "--pool", str(pool), "--modality", "reasoning",
                           "--k", "3", "--bootstrap", "0", "--null-rounds", "200", "--json"],
                          capture_output=True, text=True, env=_env(home, tmp_path), timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    guarantee = result["guarantee"]
    assert (guarantee["round_size"], guarantee["pool_size"]) == (4, 40)  # questions, not records
    assert result["metrics"]["acc_verify"]["value"] == pytest.approx(3 / 12)  # only p0 is 0, thrice
