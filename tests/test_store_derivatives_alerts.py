import math

import numpy as np
import pandas as pd
import pytest

from metrics_core.bootstrap import Estimate
from monitor.alerts import CRITICAL, OK, WARNING, DeclineRule, evaluate_alerts, loop_status
from monitor.derivatives import compute_derivatives, ols_slope
from monitor.store import RoundRecord, TrajectoryStore


def _record(loop, rnd, values, fp="f"):
    return RoundRecord(
        loop=loop, round=rnd, metrics={k: Estimate(v, v - 0.01, v + 0.01, 0.005) for k, v in values.items()},
        n_reference=100, n_round=90, fingerprint=fp * 64, reference_fingerprint="r" * 64, metrics_version="1",
        audited_at=1000.0 + rnd,
    )


@pytest.fixture
def store(tmp_path):
    s = TrajectoryStore(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


def test_reaudit_replaces_rows_and_keeps_other_rounds(store):
    store.record_round(_record("a", 0, {"coverage": 0.9, "recall": 0.8}))
    store.record_round(_record("a", 1, {"coverage": 0.85, "recall": 0.7}))
    store.record_round(_record("a", 1, {"coverage": 0.5, "recall": 0.4}, fp="g"))
    t = store.trajectory("a")
    assert len(t) == 4
    r1 = t[t["round"] == 1].set_index("metric")
    assert r1.loc["coverage", "value"] == 0.5 and r1.loc["coverage", "fingerprint"] == "g" * 64
    assert t[t["round"] == 0].set_index("metric").loc["recall", "value"] == 0.8
    assert r1.loc["coverage", "ci_low"] == pytest.approx(0.49)
    assert r1.loc["coverage", "n_reference"] == 100 and r1.loc["coverage", "n_round"] == 90


def test_reaudit_with_fewer_metrics_drops_stale_rows(store):
    store.record_round(_record("a", 0, {"coverage": 0.9, "recall": 0.8}))
    store.record_round(_record("a", 0, {"coverage": 0.7}))
    assert store.trajectory("a")["metric"].tolist() == ["coverage"]


def test_failed_write_keeps_existing_rows(store):
    store.record_round(_record("a", 0, {"coverage": 0.9}))
    bad = _record("a", 0, {"coverage": 0.1})
    bad = RoundRecord(**{**bad.__dict__, "metrics": {"coverage": Estimate(None)}})  # NOT NULL violation
    with pytest.raises(Exception):
        store.record_round(bad)
    assert store.trajectory("a")["value"].tolist() == [0.9]


def test_out_of_order_rounds_sorted_and_loops_isolated(store):
    for rnd, v in [(3, 0.6), (0, 0.9), (2, 0.7), (1, 0.8)]:
        store.record_round(_record("a", rnd, {"coverage": v}))
    store.record_round(_record("b", 5, {"coverage": 0.1}))
    t = store.trajectory("a")
    assert t["round"].tolist() == [0, 1, 2, 3]
    assert t["value"].tolist() == [0.9, 0.8, 0.7, 0.6]
    assert store.loops() == ["a", "b"]
    summary = store.loop_summaries().set_index("loop")
    assert summary.loc["a", "round"] == 3 and summary.loc["b", "round"] == 5
    assert summary.loc["a", "audited_at"] == 1003.0


def test_derivative_values():
    traj = pd.DataFrame({"round": [0, 1, 2, 4], "metric": "coverage", "value": [1.0, 0.9, 0.7, 0.6]})
    d = compute_derivatives(traj, window=3).set_index("round")
    assert math.isnan(d.loc[0, "delta"]) and math.isnan(d.loc[0, "slope"])
    assert d.loc[1, "delta"] == pytest.approx(-0.1)
    assert d.loc[1, "slope"] == pytest.approx(-0.1)
    assert d.loc[2, "delta"] == pytest.approx(-0.2)
    assert d.loc[2, "slope"] == pytest.approx(-0.15)  # OLS over (0,1),(1,.9),(2,.7)
    # Window of rounds 1, 2, 4: sum dt*dv = -13/30, sum dt^2 = 42/9 -> -117/1260
    assert d.loc[4, "slope"] == pytest.approx(-117 / 1260)
    assert d.loc[4, "delta"] == pytest.approx(-0.1)


def test_ols_slope_matches_numpy_polyfit():
    rng = np.random.default_rng(0)
    t = np.sort(rng.choice(50, size=10, replace=False))
    v = rng.normal(size=10)
    assert ols_slope(t, v) == pytest.approx(np.polyfit(t, v, 1)[0])


def test_derivatives_recomputed_in_store(store):
    frame = compute_derivatives(pd.DataFrame({"round": [0, 1], "metric": "recall", "value": [0.8, 0.6]}))
    store.replace_derivatives("a", frame)
    store.record_round(_record("a", 0, {"recall": 0.8}))
    store.record_round(_record("a", 1, {"recall": 0.6}))
    latest = store.latest_values().set_index("metric")
    assert latest.loc["recall", "delta"] == pytest.approx(-0.2)
    assert latest.loc["recall", "round"] == 1


def _traj(values, metric="coverage"):
    return pd.DataFrame({"round": range(len(values)), "metric": metric, "value": values})


def test_sustained_decline_warns_after_m_rounds():
    rule = DeclineRule(metrics=("coverage",), warn_per_round=0.02, sustain_rounds=3, critical_total=0.5)
    assert evaluate_alerts(_traj([0.9, 0.87, 0.84]), rule)[0].severity == OK  # only 2 declines
    s = evaluate_alerts(_traj([0.95, 0.9, 0.87, 0.84, 0.81]), rule)[0]
    assert s.severity == WARNING and s.since_round == 3
    assert "0.02" in s.message


def test_single_dip_and_small_declines_do_not_warn():
    rule = DeclineRule(metrics=("coverage",), warn_per_round=0.02, sustain_rounds=3, critical_total=0.5)
    assert evaluate_alerts(_traj([0.9, 0.8, 0.81, 0.8, 0.79]), rule)[0].severity == OK
    assert evaluate_alerts(_traj([0.9, 0.89, 0.88, 0.87, 0.86]), rule)[0].severity == OK


def test_cumulative_loss_is_critical_and_direction_comes_from_registry():
    rule = DeclineRule(metrics=("coverage", "self_cosine_similarity"), critical_total=0.2)
    s = evaluate_alerts(_traj([0.9, 0.85, 0.6]), rule)[0]
    assert s.severity == CRITICAL and s.since_round == 2
    # self cosine similarity: lower is better, so a *rise* is the bad direction.
    rising = evaluate_alerts(_traj([0.1, 0.2, 0.35], "self_cosine_similarity"), rule)[0]
    assert rising.severity == CRITICAL
    falling = evaluate_alerts(_traj([0.35, 0.2, 0.1], "self_cosine_similarity"), rule)[0]
    assert falling.severity == OK
    assert loop_status([s, falling]) == CRITICAL


def test_unknown_metric_in_rule_is_refused():
    with pytest.raises(KeyError, match="unknown metric"):
        DeclineRule(metrics=("not_a_metric",))


def test_alert_state_persisted(store):
    store.set_alert_states("a", [{"metric": "coverage", "severity": "warning", "since_round": 3, "message": "m"}])
    store.set_alert_states("a", [{"metric": "coverage", "severity": "critical", "since_round": 5, "message": "n"}])
    a = store.alert_states("a")
    assert a[["metric", "severity", "since_round"]].values.tolist() == [["coverage", "critical", 5]]
