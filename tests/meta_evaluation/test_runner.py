"""Tests of the benchmark runner, its report and the ``collapse-monitor bench`` verb (monitor.meta_evaluation.runner/report).

One tiny family (L1-d1-M20 and its three controls, two seeds, 41 samples per
round, 13 audited generations every 2) is run once per module in-process; the
tests recompute what the runner reports from the per-round data it returns,
through independent paths (the calibration's vectorised raise logic instead of
the engine's replay, sklearn's ROC-AUC, hand-counted false alarms, direct
calls of the metric functions). The full benchmark is never run here.
"""

from __future__ import annotations

import json
import math
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import metrics_core
from monitor.engine.alerts import first_raise_index
from monitor.meta_evaluation import loops, report, report_tables, runner, scoring
from monitor.cli import main
from monitor.errors import CollapseMonitorError
from monitor.engine.rules import load_rules

pytestmark = pytest.mark.usefixtures("single_torch_thread")

FAMILY = "L1-d1-M20"
SEEDS = (0, 1)
SCHEDULE = (24, 2)  # audit every 2nd generation: lead times must come out in generations, not rounds
TINY = runner.BenchSettings(quick=True, seeds=SEEDS, n_audit=41, n_boot=5, n_permutations=19,
                            schedules={FAMILY: SCHEDULE}, evidently_check="collapse", null_rounds=200, pool_ratio=16,
                            c0_generations=40)


@pytest.fixture(scope="module")
def rules():
    return load_rules(None)


@pytest.fixture(scope="module")
def bench(rules):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return runner.run_benchmark(TINY, rules, families=[FAMILY], workers=1, progress=False,
                                    rules_sources=["shipped defaults"])
    finally:
        torch.set_num_threads(threads)


def _runs(bench, kind=None):
    return [r for r in bench.runs if kind is None or r.kind == kind]


def _c0(bench):
    """The no-feedback controls: the only runs whose alarms are false by construction."""
    return [r for r in bench.runs if r.run_id.startswith("C0-")]


# --------------------------------------------------------------------------------------------------------------
# structure and the audit
# --------------------------------------------------------------------------------------------------------------


def test_every_member_and_seed_is_run_with_the_schedule(bench):
    ids = sorted((r.run_id, r.seed) for r in bench.runs)
    assert ids == sorted((m, s) for m in runner.family_members(FAMILY) for s in SEEDS)
    for r in bench.runs:
        # 13 audited generations; no-feedback controls every generation, for their false-alarm exposure
        expected = list(range(0, 41)) if r.run_id.startswith("C0-") else list(range(0, 25, 2))
        assert r.generations.tolist() == expected
        assert list(r.trajectory.columns) == ["loop", "round", "metric", "value", "ci_low", "ci_high", "std_error"]
        assert set(r.trajectory["round"]) == set(r.generations.tolist())
        assert len(r.drift_share) == len(r.mmd_pvalue) == len(expected)
        # p >= 1/(1+B) with B = 19 permutations (Phipson & Smyth)
        assert np.all(r.mmd_pvalue >= 1 / 20 - 1e-12) and np.all(r.mmd_pvalue <= 1.0)
        assert r.family == FAMILY and (r.kind == "collapse") == (r.run_id == FAMILY)
        # embedding loops: the daemon records no Evidently share, the runner keeps it as a baseline only
        assert runner.DRIFT_SHARE not in set(r.trajectory["metric"])


def test_onset_is_the_generators_ground_truth(bench):
    for r in _runs(bench, "collapse"):
        trace = loops.LOOPS[FAMILY](r.seed, *SCHEDULE, n_audit=41, n_reference=41)
        # L1 onset: first generation with trace(Sigma) below half of generation 0's
        below = np.flatnonzero(trace.truth["trace_cov"] < 0.5 * trace.truth["trace_cov"][0])
        assert r.onset == (int(below[0]) if below.size else None) == trace.onset
    assert all(r.onset is None for r in _runs(bench, "control"))


def test_round_metrics_are_the_daemon_metric_functions(bench):
    """Round 4 of seed 1's run, recomputed with metrics_core.embedding_suite as the flow calls it."""
    r = next(r for r in bench.runs if r.run_id == FAMILY and r.seed == 1)
    trace = loops.LOOPS[FAMILY](1, *SCHEDULE, n_audit=41, n_reference=41)
    config = metrics_core.SuiteConfig(k=TINY.k, n_boot=TINY.n_boot, seed=1)
    suite = metrics_core.embedding_suite(trace.reference, trace.rounds[4], config=config)
    stored = r.trajectory[r.trajectory["round"] == 8].set_index("metric")
    for name in ("coverage", "precision", "mmd2", "vendi_score", "log_volume_ratio"):
        assert stored.loc[name, "value"] == pytest.approx(suite[name].value, rel=1e-9, abs=1e-12)
        assert stored.loc[name, "std_error"] == pytest.approx(suite[name].std_error, rel=1e-9, abs=1e-12)


def test_fast_evidently_share_equals_the_full_report(bench):
    checks = bench.evidently_check
    assert len(checks) == len(SEEDS[:1])  # the first seed's collapse run, its last round
    for c in checks:
        assert c["fast"] == c["full"]


def test_fast_evidently_share_on_text_and_tabular_rounds():
    """Against monitor.publishing.evidently_report's full reports, built the way the daemon builds them."""
    from metrics_core.featurize import fit_hashing_featurizer
    from monitor.publishing import evidently_report
    from monitor.modalities.pipeline import AuditPipeline

    text = loops.zipf_tail_loop(0, 3, V=300, T=3000, tau=0.9, n_documents=40, tokens_per_document=8)
    featurizer = fit_hashing_featurizer(text.reference, seed=0)
    ref_emb, cur_emb = featurizer.transform(text.reference), featurizer.transform(text.rounds[3])
    frames = runner.evidently_columns("text", text.reference, text.rounds[3], ref_emb, cur_emb)
    full = evidently_report.text_drift_report(text.reference, text.rounds[3], reference_embeddings=ref_emb,
                                              round_embeddings=cur_emb).drift_share
    assert runner.evidently_drift_share(*frames) == full
    table = loops.copula_tabular_loop(0, 8, 4, n_audit=60)
    columns = AuditPipeline("tabular", table.reference, n_boot=0, seed=0).tabular_columns
    frames = runner.evidently_columns("tabular", table.reference, table.rounds[2], None, None, columns)
    full = evidently_report.tabular_drift_report(table.reference, table.rounds[2], numeric_columns=columns["numeric"],
                                                 categorical_columns=columns["categorical"]).drift_share
    assert runner.evidently_drift_share(*frames) == full


# --------------------------------------------------------------------------------------------------------------
# the engine's alarms, lead times, false alarms and ROC-AUC, recomputed
# --------------------------------------------------------------------------------------------------------------


def _independent_first_alarm(bench, run, rules) -> int | None:
    """First collapse alarm from the run's null, recomputed with plain numpy: per-metric z against the null's
    mean and spread, each metric's e-CUSUM (hand-written here) against log(A / w), w the documented weight
    (collapse three quarters of the budget beside a drift signal, all of it alone; a signal of one metric one
    chart with all of its share, else half of it split over its metrics); the combined chart only adds alarms,
    so the first per-metric crossing bounds it
    from above and is checked separately."""
    from monitor.engine.detectors import DEFAULT_DELTA_WEIGHTS, DEFAULT_DELTAS
    from monitor.engine.detectors.e_cusum import log_mgf_upper_bound

    null = bench.nulls[(run.family, run.seed)]
    signal = {m: rules.signal_of(m) for m in null.metrics}
    values = null.values
    count = np.isfinite(values).sum(axis=0)
    mean = np.nanmean(values, axis=0)
    sd = np.nanstd(values, axis=0, ddof=1)
    usable = (count >= len(values) // 2) & (sd > 1e-9 * np.maximum(np.abs(mean), 1.0))
    wide = run.trajectory.pivot_table(index="round", columns="metric", values="value").reindex(run.generations)
    by_signal = {s: [m for j, m in enumerate(null.metrics) if usable[j] and signal[m] == s and m in wide.columns]
                 for s in ("collapse", "drift")}
    n_signals = sum(1 for ms in by_signal.values() if ms)
    collapse = by_signal["collapse"]
    share = 1.0 if n_signals == 1 else 0.75
    weight = share if len(collapse) == 1 else 0.5 * share / len(collapse)
    spread = 1.0 / np.sqrt(1.0 - null.round_size / null.pool_size)
    offset = 2.0 * np.sqrt(null.round_size / null.pool_size + 1.0 / len(values))
    first = None
    for m in by_signal["collapse"]:
        j = null.metrics.index(m)
        orient = 1.0 if metrics_core.get_spec(m).higher_is_better else -1.0
        z_null = orient * (mean[j] - values[:, j]) / sd[j]
        z = orient * (mean[j] - wide[m].to_numpy()) / (sd[j] * spread)
        log_m = log_mgf_upper_bound(z_null, DEFAULT_DELTAS)
        cusums = np.full(len(DEFAULT_DELTAS), -np.inf)
        for t, zt in enumerate(z):
            step = np.zeros(len(DEFAULT_DELTAS)) if not np.isfinite(zt) else \
                np.array(DEFAULT_DELTAS) * (zt - offset) - log_m
            cusums = np.maximum(cusums, 0.0) + step
            stat = np.log((np.array(DEFAULT_DELTA_WEIGHTS) * np.exp(cusums)).sum())
            if stat >= np.log(TINY.arl0 / weight):
                first = t if first is None else min(first, t)
                break
    return first


def _engine_first_alarm(bench, run) -> int | None:
    return scoring.first_alarm(run.engine.alarms)


def test_engine_alarm_matches_a_recomputation_from_the_trajectory(bench, rules):
    compared = 0
    for r in bench.runs:
        engine, per_metric = scoring.first_alarm(r.engine.alarms), _independent_first_alarm(bench, r, rules)
        # the combined chart can only alarm earlier than the first per-metric crossing, never later
        assert per_metric is None or (engine is not None and engine <= per_metric), (r.run_id, r.seed)
        if engine is not None and engine == per_metric:
            compared += 1
    assert compared >= 1  # at least one run's first alarm came from a per-metric chart, recomputed exactly


def test_lead_times_are_onset_minus_alarm_generation(bench, rules):
    fam = bench.families[FAMILY]
    collapse = sorted(_runs(bench, "collapse"), key=lambda r: r.seed)
    assert [r.seed for r in collapse] == fam["seeds"]
    expected = []
    for r in collapse:
        first = _engine_first_alarm(bench, r)
        alarm_gen = None if first is None else 2 * first  # audited every 2nd generation
        if r.onset is None:
            expected.append("no onset")
        else:
            expected.append(None if alarm_gen is None else r.onset - alarm_gen)
    assert fam["engine"]["lead_times"] == expected
    reached = [v for v in expected if v != "no onset"]
    assert fam["engine"]["n_runs"] == len(reached)
    assert fam["engine"]["n_before_onset"] == sum(1 for v in reached if v is not None and v >= 1)
    assert fam["n_onset_reached"] == len(reached)


def test_false_alarms_and_arl0_are_counted_by_hand(bench):
    fam = bench.families[FAMILY]
    events, exposure = 0, 0
    for r in _c0(bench):
        hits = np.flatnonzero(r.engine.alarms)
        events += bool(hits.size)
        exposure += int(hits[0]) + 1 if hits.size else len(r.engine.alarms)  # rounds up to the first raise
    fa = fam["engine"]["false_alarms"]
    assert (fa["n_false_alarms"], fa["rounds_at_risk"]) == (events, exposure)
    assert fa["rate_per_1000"] == pytest.approx(1000 * events / exposure)
    assert fa["arl0"] == (exposure / events if events else math.inf)
    assert fam["equal_rate_per_1000"] == (fa["rate_per_1000"] if events else 1.0)


def test_first_alert_is_the_earlier_of_the_two_signals(bench):
    fam = bench.families[FAMILY]
    first = fam["first_alert"]
    leads = []
    for r in sorted(_runs(bench, "collapse"), key=lambda r: r.seed):
        either = r.engine.alarms | r.engine.drift_alarms
        hits = np.flatnonzero(either)
        collapse_hits = np.flatnonzero(r.engine.alarms)
        # never later than the collapse signal alone
        assert not collapse_hits.size or (hits.size and hits[0] <= collapse_hits[0])
        if r.onset is not None:
            leads.append(None if not hits.size else r.onset - int(r.generations[hits[0]]))
        else:
            leads.append("no onset")
    assert first["lead_times"] == leads
    events = exposure = 0
    for r in _c0(bench):
        hits = np.flatnonzero(r.engine.alarms | r.engine.drift_alarms)
        events += bool(hits.size)
        exposure += int(hits[0]) + 1 if hits.size else len(r.generations)
    assert (first["false_alarms"]["n_false_alarms"], first["false_alarms"]["rounds_at_risk"]) == (events, exposure)
    assert set(fam["first_alert_versus"]) == set(runner.BASELINES)
    per_family = bench.targets["per_family"][FAMILY]
    assert per_family["first_alert_no_baseline_ahead"] == (
        None if fam["engine"]["n_runs"] == 0 else "loses" not in fam["first_alert_versus"].values())


def test_risk_roc_auc_equals_sklearn_on_the_pooled_rounds(bench):
    fam = bench.families[FAMILY]
    scores, labels = [], []
    for r in [*_runs(bench, "collapse"), *_c0(bench)]:
        scores.append(r.engine.risk)
        labels.append(np.zeros(len(r.generations), bool) if r.onset is None else r.generations >= r.onset)
    y = np.concatenate(labels)
    if y.any() and not y.all():
        assert fam["engine"]["roc_auc"] == pytest.approx(roc_auc_score(y, np.concatenate(scores)))
    else:
        assert fam["engine"]["roc_auc"] is None


# --------------------------------------------------------------------------------------------------------------
# baselines at an equal false-alarm rate
# --------------------------------------------------------------------------------------------------------------


def _naive_rate(control_scores, threshold, sustain) -> float:
    """False raises per 1000 rounds at risk of 'score >= t held sustain rounds', by monitor.engine.alerts' raise logic."""
    events = exposure = 0
    for s in control_scores:
        first = int(first_raise_index(np.asarray(s) >= threshold, sustain)) if threshold < np.inf else -1
        events += first >= 0
        exposure += first + 1 if first >= 0 else len(s)
    return 1000.0 * events / exposure


@pytest.mark.parametrize("name", ["evidently_drift_share", "mmd_permutation"])
def test_raw_data_baselines_sit_at_the_engines_false_alarm_rate(bench, name):
    fam = bench.families[FAMILY]
    b = fam["baselines"][name]
    sustain = fam["sustain_rounds"]
    rate = fam["equal_rate_per_1000"]
    score = (lambda r: np.asarray(r.drift_share)) if name == "evidently_drift_share" else \
        (lambda r: -np.log10(r.mmd_pvalue))
    controls = [score(r) for r in _c0(bench)]
    t = b["threshold"]
    assert _naive_rate(controls, t, sustain) <= rate + 1e-9
    assert b["false_alarms"]["rate_per_1000"] == pytest.approx(_naive_rate(controls, t, sustain))
    # the most sensitive such threshold: the next lower class (at the largest control score below t) breaks the rate
    below = np.unique(np.concatenate(controls))
    below = below[below < t]
    if t > -np.inf and below.size:
        assert _naive_rate(controls, float(below.max()), sustain) > rate
    # its lead times on the collapse runs, recomputed
    for r, lt in zip(sorted(_runs(bench, "collapse"), key=lambda r: r.seed), b["lead_times"]):
        first = int(first_raise_index(score(r) >= t, sustain)) if t < np.inf else -1
        if r.onset is None:
            assert lt == "no onset"
        else:
            assert lt == (None if first < 0 else r.onset - int(r.generations[first]))


def test_per_metric_baseline_uses_the_metrics_own_engine_rate(bench):
    fam = bench.families[FAMILY]
    m = "coverage"
    d = fam["metrics"][m]
    engine_fa = d["engine"]["false_alarms"]
    rate = engine_fa["rate_per_1000"] if engine_fa["n_false_alarms"] else 1.0
    assert d["fixed_threshold"]["target_rate_per_1000"] == pytest.approx(rate)
    controls = [-r.metric_values(m) for r in _c0(bench)]  # higher coverage is better: score = -value
    assert _naive_rate(controls, d["fixed_threshold"]["threshold"], fam["sustain_rounds"]) <= rate + 1e-9
    # metrics that feed no signal get no baseline (the baselines watch what the engine watches)
    assert "authenticity" not in fam["metrics"]


def test_cross_fitted_best_metric_is_chosen_on_the_other_fold():
    # seeds 0, 2 form fold 0 and 1, 3 fold 1; metric "a" wins on fold 1's runs and "b" on fold 0's
    collapse = [SimpleNamespace(seed=s, onset=10) for s in (0, 1, 2, 3)]
    per_metric = {
        "a": {"lead_times": [1, 5, None, 6], "alarm_generations": [9, 5, None, 4]},
        "b": {"lead_times": [4, 1, 3, None], "alarm_generations": [6, 9, 7, None]},
    }
    best = runner._cross_fitted_best(collapse, per_metric, [0, 1, 2, 3])
    # fold 0 (seeds 0, 2) is scored with the metric best on fold 1 (a: ranking lead median(5, 6) = 5.5 > b's -inf
    # after its miss ... median(1, -inf) = -inf), fold 1 (seeds 1, 3) with the best on fold 0 (b: median(4, 3) = 3.5
    # against a: median(1, -inf) = -inf)
    assert best["chosen_metric_by_fold"] == {"0": "a", "1": "b"}
    assert best["lead_times"] == [1, 1, None, None]
    assert best["in_sample"] is False
    assert best["n_detected"] == 2 and best["ranking_lead"] == -math.inf  # median(1, 1, -inf, -inf)


# --------------------------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------------------------


def test_markdown_tables_carry_the_json_numbers(bench, tmp_path):
    paths = report.write_report(bench, tmp_path / "benchmark.md")
    text = paths["markdown"].read_text()
    data = json.loads(paths["results"].read_text())
    assert paths["results"] == tmp_path / "benchmark" / "results.json"
    png = tmp_path / "benchmark" / f"{FAMILY}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"]({'benchmark'}/{FAMILY}.png)" in text
    for section in ("## Settings", "## Headline", "## Targets", f"## `{FAMILY}`", "## Timing"):
        assert section in text
    assert data["headline"] == report_tables.jsonable(bench.headline)
    row = data["headline"][0]
    line = next(line for line in text.splitlines() if line.startswith(f"| `{FAMILY}` |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    c0 = _c0(bench)
    c0_events = sum(bool(r.engine.alarms.any()) for r in c0)
    assert (row["c0_n_false_alarms"], cells[5]) == (
        c0_events, f"{report_tables.fmt(row['c0_false_alarms_per_1000'])} ({c0_events}/{row['c0_rounds_at_risk']}; "
                   f"{report_tables.fmt(row['c0_false_alarms_upper_per_1000'])})")
    assert cells[6] == report_tables.fmt(row["arl0"] if row["arl0"] != "inf" else math.inf)
    collapse_runs = [r for r in bench.runs if r.kind == "collapse" and r.onset is not None]
    spread_p = np.mean([bool(r.collapse_oracle_alarms[r.generations < r.onset].any()) for r in collapse_runs])
    assert row["collapse_oracle_p_alarm_before_onset"] == pytest.approx(spread_p)
    assert cells[4] == f"{report_tables.fmt(row['oracle_p_alarm_before_onset'])} / {report_tables.fmt(spread_p)}"
    assert cells[8] == f"{report_tables.fmt(row['first_alert_lead_median'])} " \
                       f"({report_tables.fmt(row['first_alert_p_alarm_before_onset'])})"
    d0 = [r for r in bench.runs if r.run_id.startswith("D0-")]
    assert cells[7] == f"{sum(bool(r.engine.alarms.any()) for r in d0)}/{len(d0)} / " \
                       f"{sum(bool(r.engine.drift_alarms.any()) for r in d0)}/{len(d0)}"
    if row["n_detected"]:
        assert cells[2] == f"{report_tables.fmt(row['lead_median'])} [{report_tables.fmt(row['lead_q25'])}, " \
                           f"{report_tables.fmt(row['lead_q75'])}]"
    # per run records regenerate the engine's lead times
    fam = data["families"][FAMILY]
    recs = sorted((r for r in data["runs"] if r["kind"] == "collapse"), key=lambda r: r["seed"])
    regenerated = ["no onset" if r["onset"] is None else
                   (None if r["engine_alarm_generation"] is None else r["onset"] - r["engine_alarm_generation"])
                   for r in recs]
    assert regenerated == fam["engine"]["lead_times"]
    # every sentence on targets is computed: the pooled false-alarm rate appears as computed
    pooled = bench.targets["pooled_false_alarms"]
    assert f"pooled {report_tables.fmt(pooled['rate_per_1000'])} ({pooled['n_false_alarms']} false alarms" in text


def test_fmt_and_jsonable_round_trip():
    assert report_tables.fmt(2.0) == "2" and report_tables.fmt(0.33333) == "0.333" and report_tables.fmt(None) == "n/a"
    assert json.loads(json.dumps(report_tables.jsonable({"x": float("inf"), "y": np.nan}))) == {"x": "inf", "y": None}


# --------------------------------------------------------------------------------------------------------------
# the CLI verb
# --------------------------------------------------------------------------------------------------------------


def test_cli_quick_writes_report_plots_and_json(tmp_path, capsys):
    out = tmp_path / "docs" / "benchmark.md"
    code = main(["--home", str(tmp_path / "home"), "meta-evaluate", "--quick", "--loops", FAMILY, "--out", str(out),
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)  # exactly one JSON object on stdout
    assert summary["mode"] == "quick" and summary["seeds"] == [0, 1]
    assert [row["loop"] for row in summary["headline"]] == [FAMILY]
    assert out.is_file() and (tmp_path / "docs" / "benchmark" / f"{FAMILY}.png").is_file()
    data = json.loads((tmp_path / "docs" / "benchmark" / "results.json").read_text())
    assert data["headline"] == summary["headline"]
    assert len(data["runs"]) == 2 * len(runner.family_members(FAMILY)) and data["settings"]["quick"] is True

    # the run archived its audits; --rescore re-applies the engine to them, auditing nothing
    archived = tmp_path / "home" / "meta-evaluation-archive" / "benchmark"
    assert len(list((archived / "runs").glob("*.json.gz"))) == len(data["runs"])
    assert len(list((archived / "nulls").glob("*.json.gz"))) == 2
    report_before = out.read_text()
    code = main(["--home", str(tmp_path / "home"), "meta-evaluate", "--loops", FAMILY, "--out", str(out),
                 "--rescore", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rescored = json.loads((tmp_path / "docs" / "benchmark" / "results.json").read_text())
    assert rescored.pop("rescored") and not data.pop("rescored")
    assert rescored == data  # same engine, same rules: the very same results
    date_line = next(line for line in out.read_text().splitlines() if line.startswith("| date |"))
    assert "engine and rules re-applied to the archived runs" in date_line
    assert [a for a in out.read_text().splitlines() if not a.startswith("| date |")] == \
        [b for b in report_before.splitlines() if not b.startswith("| date |")]
    # other rules: a looser guarantee alarms no later on any run, and the report names the rules
    rules = tmp_path / "loose.toml"
    rules.write_text("[alarm]\narl0 = 20.0\n")
    code = main(["--home", str(tmp_path / "home"), "--rules", str(rules), "meta-evaluate", "--loops", FAMILY,
                 "--out", str(out), "--rescore", "--json"])
    assert code == 0, capsys.readouterr().err
    loose = json.loads((tmp_path / "docs" / "benchmark" / "results.json").read_text())
    assert loose["rules"] == [str(rules)]
    first = {(r["run"], r["seed"]): r["engine_alarm_generation"] for r in data["runs"]}
    for r in loose["runs"]:
        before = first[(r["run"], r["seed"])]
        if before is not None:
            assert r["engine_alarm_generation"] is not None and r["engine_alarm_generation"] <= before
    assert sum(r["engine_alarm_generation"] is not None for r in loose["runs"]) > \
        sum(g is not None for g in first.values())
    # refused: sizes given to a rescore, and a rescore with no archive
    capsys.readouterr()
    assert main(["--home", str(tmp_path / "home"), "meta-evaluate", "--quick", "--out", str(out), "--rescore"]) == 1
    assert "drop --quick" in capsys.readouterr().err
    assert main(["--home", str(tmp_path / "other"), "meta-evaluate", "--out", str(out), "--rescore"]) == 1
    err = capsys.readouterr().err
    assert "no meta-evaluation archive here" in err and len(err.strip().splitlines()) == 1


def test_unknown_loop_pattern_names_the_known_loops(tmp_path, capsys):
    with pytest.raises(CollapseMonitorError, match="known loop ids: L1-d1-M20, .*L4-text"):
        runner.select_families("L99-*")
    code = main(["--home", str(tmp_path / "home"), "bench", "--quick", "--loops", "nothing*", "--out",
                 str(tmp_path / "b.md")])
    err = capsys.readouterr().err
    assert code == 1 and "matches no loop" in err and "L5-wine" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b.md").exists()


def test_family_selection_brings_the_controls():
    assert runner.select_families("C2-L4-text") == ["L4-text"]
    assert runner.select_families("L1-d16-*") == ["L1-d16-M20", "L1-d16-M100", "L1-d16-M1000"]
    # L1-L6's 12, then L7-json, L8-graph, L9-log, L10-image-text and L11-reasoning
    assert len(runner.select_families(None)) == 17
    # L6: "L6*" (the loop and C0-C2, D0 too) or any member id selects the family
    assert runner.select_families("L6*") == runner.select_families("D0-L6-agent") == ["L6-agent"]
    assert runner.family_members("L6-agent") == ["L6-agent", "C0-L6-agent", "C1-L6-agent", "C2-L6-agent",
                                                 "D0-L6-agent"]


def test_settings_are_checked():
    with pytest.raises(ValueError, match="n_audit: expected at least k \\+ 1 = 6 samples, got 5"):
        runner.BenchSettings(quick=True, seeds=(0,), n_audit=5, n_boot=1, n_permutations=1)
    with pytest.raises(ValueError, match="seeds"):
        runner.BenchSettings(quick=True, seeds=(), n_audit=50, n_boot=1, n_permutations=1)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie left unreaped by the container's init counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_killed_run_takes_its_workers_with_it(tmp_path):
    """kill -9 of the run (meta-evaluate's process) ends its spawned workers mid-job: no orphan computing on."""
    import signal
    import subprocess
    import time

    code = (
        "import multiprocessing, os, sys, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from monitor.meta_evaluation.jobs import _die_with\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context('spawn'), initializer=_die_with,\n"
        "                              initargs=(os.getpid(),))\n"
        "    pids = {pool.submit(os.getpid).result() for _ in range(8)}\n"
        "    pool.submit(time.sleep, 300)\n"
        "    print(*pids, flush=True)\n"
        "    time.sleep(300)\n"
    )
    script = tmp_path / "run.py"
    script.write_text(code, encoding="utf-8")
    run = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(p) for p in run.stdout.readline().split()]
        assert workers and all(_alive(p) for p in workers)
        run.send_signal(signal.SIGKILL)
        run.wait(30)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in workers if _alive(p)] == []
    finally:
        run.kill()
