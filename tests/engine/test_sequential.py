"""The alarm with a guarantee: e-CUSUM detectors, the loop's null and the sequential engine."""

import numpy as np
import pandas as pd
import pytest

from monitor.engine.alerts import evaluate_loop
from monitor.engine.detectors import ECusum, log_mgf_upper_bound, siegmund_arl
from monitor.engine.null import LoopNull, null_from_rows, pseudo_round_indices, split_reference
from monitor.engine.rules import load_rules
from monitor.engine.sequential import chart_weights, evaluate_sequential, metric_units, unit_scores


def test_e_cusum_matches_a_hand_computed_stream():
    # One shift, known normaliser: log M_t = max(log M_{t-1}, 0) + d z_t - log m.
    det = ECusum(log_mgf=np.array([0.5]), deltas=np.array([1.0]))
    assert det.run([0.0, 2.0, 1.0, -3.0]).tolist() == [-0.5, 1.5, 2.0, -1.5]
    # an offset discounts every round
    det = ECusum(log_mgf=np.array([0.5]), deltas=np.array([1.0]), offset=0.5)
    assert det.run([2.0, 2.0]).tolist() == [1.0, 2.0]
    # a missing score is an e-value of 1
    assert ECusum(np.array([0.5]), np.array([1.0])).run([2.0, np.nan]).tolist() == [1.5, 1.5]


def test_mgf_bound_is_gaussian_on_gaussian_scores_and_upper_bounds_a_skewed_null():
    z = np.random.default_rng(0).standard_normal(50_000)
    assert log_mgf_upper_bound(z, [0.5, 1.0]) == pytest.approx([0.125, 0.5], abs=0.02)
    skewed = np.random.default_rng(1).exponential(size=50_000) - 1.0  # mean 0, sd 1, right tail
    exact = [np.log(np.exp(-d) / (1 - d)) for d in (0.25, 0.5)]  # E[e^{d(X-1)}], X ~ Exp(1)
    bound = log_mgf_upper_bound(skewed, [0.25, 0.5])
    assert (bound >= np.array(exact) - 0.005).all() and (bound < np.array(exact) + 0.05).all()


def test_false_alarm_rate_of_the_e_cusum_is_within_its_guarantee_on_a_skewed_null():
    # ARL0 >= A: on 2,000 null streams of 400 rounds at A = 100, at most 400/100 = 4 alarms per stream on average
    # would be allowed by the bound; the first-alarm rate must be far below one per 100 rounds.
    rng = np.random.default_rng(2)
    null = rng.exponential(size=20_000) - 1.0
    det = ECusum.from_null(null)
    threshold = np.log(100.0)
    alarms = rounds = 0
    for _ in range(300):
        stats = det.run(rng.exponential(size=400) - 1.0)
        hit = np.flatnonzero(stats >= threshold)
        rounds += hit[0] + 1 if hit.size else 400
        alarms += bool(hit.size)
    assert rounds / max(alarms, 1) >= 100  # the measured ARL0 respects the guarantee


def test_siegmund_arl_is_exact_at_zero_drift_and_grows_with_negative_drift():
    assert siegmund_arl(0.0, 1.0, 3.0) == pytest.approx((3 + 1.166) ** 2)
    assert siegmund_arl(-0.5, 1.0, np.log(1000)) > 1000 > siegmund_arl(0.2, 1.0, np.log(1000))


def test_chart_weights_sum_to_one_and_favour_the_collapse_signal():
    # a signal of one unit is one chart with the whole budget
    assert chart_weights({"collapse": [("a",)], "drift": []}) == {"signal:collapse": 1.0}
    assert chart_weights({"collapse": [], "drift": [("d",)]}) == {"signal:drift": 1.0}
    # collapse three quarters, drift a quarter, whatever their numbers of metrics; half of it for the combined chart
    w = chart_weights({"collapse": [("a",), ("b", "c")], "drift": [("d",), ("e",), ("f",), ("g",)]})
    assert w["signal:collapse"] == 0.375 and w["signal:drift"] == 0.125
    assert w["metric:a"] == w["metric:b"] == 0.1875 and w["metric:d"] == 0.03125
    assert "metric:c" not in w and abs(sum(w.values()) - 1.0) < 1e-12


def test_identical_metrics_share_one_chart_and_one_weight():
    rng = np.random.default_rng(5)
    a, b, c = rng.standard_normal((3, 400))
    null_z = np.column_stack([a, a, b + 0.01 * c, b, c])
    assert metric_units(null_z, ["a1", "a2", "b1", "b2", "c"]) == [("a1", "a2"), ("b1", "b2"), ("c",)]
    # correlated but distinct metrics stay apart
    assert metric_units(np.column_stack([a, 0.9 * a + 0.44 * b]), ["x", "y"]) == [("x",), ("y",)]
    # a unit's score is its members' mean in the null SD of that mean: identical members give the member's score
    u, n = unit_scores(np.array([[3.0, 3.0]]), np.column_stack([a, a]))
    assert abs(u[0] - 3.0 / a.std(ddof=1)) < 1e-12 and abs(n.std(ddof=1) - 1.0) < 1e-12


def test_a_duplicated_metric_does_not_dilute_the_signal():
    # Two collapse metrics, one twice under two names: the charts are those of two units, not three.
    rng = np.random.default_rng(2)
    base = rng.standard_normal((600, 2))
    null = LoopNull(np.column_stack([base[:, 0], base[:, 0], base[:, 1]]), ("distinct_1", "ttr", "entropy_1"),
                    round_size=50, pool_size=50 * 256)
    rows = [(r, m, v) for r in range(4) for m, v in (("distinct_1", -4.0), ("ttr", -4.0), ("entropy_1", 0.0))]
    traj = pd.DataFrame(rows, columns=["round", "metric", "value"])
    ev = evaluate_sequential(traj, null, {"distinct_1": "collapse", "ttr": "collapse", "entropy_1": "collapse"})
    assert ev.charts["metric:ttr"] is ev.charts["metric:distinct_1"]
    assert ev.thresholds["metric:ttr"] == ev.thresholds["metric:distinct_1"] == pytest.approx(np.log(1000 / 0.25))
    assert ev.scores["ttr"][0] > 3  # a drop of distinct-1 is bad
    assert ev.levels["collapse"][-1] >= 1


def test_pseudo_rounds_and_split_are_reproducible_and_disjoint():
    a = pseudo_round_indices(50, 20, 7, seed=3)
    assert len(np.unique(a)) == 20 and (a == pseudo_round_indices(50, 20, 7, seed=3)).all()
    assert not (a == pseudo_round_indices(50, 20, 8, seed=3)).all()
    with pytest.raises(ValueError, match="round_size"):
        pseudo_round_indices(10, 20, 0, seed=0)
    texts = [f"t{i}" for i in range(9)]
    ref, pool = split_reference(texts, seed=1)
    assert sorted(ref + pool) == sorted(texts) and len(pool) == 4


def _null(values: np.ndarray, metrics=("log_volume_ratio", "precision"), n=100, pool=6400) -> LoopNull:
    return LoopNull(values, metrics, n, pool)


def test_null_statistics_spread_and_offset():
    rng = np.random.default_rng(3)
    values = np.column_stack([rng.normal(0.0, 0.1, 1000), rng.normal(0.9, 0.02, 1000)])
    null = _null(values)
    assert null.mean == pytest.approx([0.0, 0.9], abs=0.01)
    assert null.spread == pytest.approx(1 / np.sqrt(1 - 100 / 6400))
    assert null.offset == pytest.approx(2 * np.sqrt(100 / 6400 + 1 / 1000))
    # oriented: both higher-is-better, so a drop is positive
    z = null.scores(np.array([[-0.3, 0.9]]), np.array([1.0, 1.0]))
    assert z[0, 0] == pytest.approx((null.mean[0] + 0.3) / (null.sd[0] * null.spread), rel=1e-9) and abs(z[0, 1]) < 0.2
    again = LoopNull.from_json(null.as_json())
    assert np.allclose(again.values, null.values) and again.metrics == null.metrics
    constant = _null(np.column_stack([values[:, 0], np.full(1000, 0.5)]))
    assert constant.usable.tolist() == [True, False]


def _trajectory(values: dict[str, np.ndarray]) -> pd.DataFrame:
    rows = [(r, m, float(v)) for m, vs in values.items() for r, v in enumerate(vs)]
    return pd.DataFrame(rows, columns=["round", "metric", "value"]).assign(std_error=np.nan)


def test_engine_stays_quiet_on_null_rounds_and_names_the_collapsing_metric():
    rng = np.random.default_rng(4)
    metrics = ("log_volume_ratio", "precision")
    null = _null(np.column_stack([rng.normal(0, 0.1, 2000), rng.normal(0.9, 0.02, 2000)]), metrics)
    rules = load_rules()
    signal_of = {m: rules.signal_of(m) for m in metrics}
    assert signal_of == {"log_volume_ratio": "collapse", "precision": "drift"}
    quiet = _trajectory({"log_volume_ratio": rng.normal(0, 0.1, 300), "precision": rng.normal(0.9, 0.02, 300)})
    seq = evaluate_sequential(quiet, null, signal_of)
    assert not seq.alarms().any()
    assert seq.guarantee.arl0 == 1000 and not seq.guarantee.pool_too_small
    drop = np.r_[rng.normal(0, 0.1, 10), rng.normal(-0.25, 0.1, 10)]  # 2.5 SD of lost log-volume from round 10
    loud = _trajectory({"log_volume_ratio": drop, "precision": rng.normal(0.9, 0.02, 20)})
    ev = evaluate_loop(loud, rules, null=null)
    first = int(np.argmax(ev.sequential.alarms("collapse")))
    assert ev.sequential.alarms("collapse").any() and 10 <= first <= 18
    assert not ev.sequential.alarms("drift").any()
    collapse = {s.signal: s for s in ev.signals}["collapse"]
    assert collapse.severity != "ok" and collapse.metrics == ("log_volume_ratio",)
    state = {s.metric: s for s in ev.states}
    assert state["log_volume_ratio"].severity != "ok" and state["precision"].severity == "ok"
    assert "null SD" in state["log_volume_ratio"].message and ev.guarantee["arl0"] == 1000
    assert any(t.metric == "log_volume_ratio" and t.to_severity != "ok" for t in ev.transitions)


def test_small_pool_is_reported_with_the_arl0_it_supports():
    rng = np.random.default_rng(5)
    null = _null(np.column_stack([rng.normal(0, 0.1, 500), rng.normal(0.9, 0.02, 500)]), n=100, pool=300)
    seq = evaluate_sequential(_trajectory({"log_volume_ratio": [0.0], "precision": [0.9]}), null,
                              {"log_volume_ratio": "collapse", "precision": "drift"})
    g = seq.guarantee
    assert g.pool_too_small and g.uncorrected_arl0 < 1000 and "too small" in g.message()
    assert "a pool of 300 rows, 3.0x the round size" in g.message()


def test_split_reference_guarantee_says_the_reference_was_split():
    rng = np.random.default_rng(6)
    values = np.column_stack([rng.normal(0, 0.1, 500), rng.normal(0.9, 0.02, 500)])
    null = LoopNull(values, ("log_volume_ratio", "precision"), 100, 250, "split")
    g = evaluate_sequential(_trajectory({"log_volume_ratio": [0.0], "precision": [0.9]}), null,
                            {"log_volume_ratio": "collapse", "precision": "drift"}).guarantee
    text = g.message()
    assert "250 rows held out of the reference (no pool was given" in text
    assert "the held-out part of the reference is too small" in text and "--pool" in text


def test_null_from_rows_keeps_metrics_missing_in_some_pseudo_rounds():
    null = null_from_rows([{"a": 1.0, "b": 2.0}, {"a": 2.0}], round_size=5, pool_size=50)
    assert null.metrics == ("a", "b") and np.isnan(null.values[1, 1])


def test_a_text_loops_embedding_spread_feeds_the_drift_signal():
    """In a text loop the same loss of log-volume pages drift, not collapse ([modality.text.metric.*])."""
    rng = np.random.default_rng(4)
    metrics = ("log_volume_ratio", "distinct_2")
    null = _null(np.column_stack([rng.normal(0, 0.1, 2000), rng.normal(0.6, 0.01, 2000)]), metrics)
    drop = np.r_[rng.normal(0, 0.1, 10), rng.normal(-0.25, 0.1, 10)]
    text_loop = _trajectory({"log_volume_ratio": drop, "distinct_2": rng.normal(0.6, 0.01, 20)})
    ev = evaluate_loop(text_loop, load_rules(), null=null)
    assert ev.sequential.signal_metrics["drift"] == ["log_volume_ratio"]
    assert ev.sequential.signal_metrics["collapse"] == ["distinct_2"]
    assert not ev.sequential.alarms("collapse").any() and ev.sequential.alarms("drift").any()
    signals = {s.signal: s for s in ev.signals}
    assert signals["collapse"].severity == "ok" and signals["drift"].metrics == ("log_volume_ratio",)


def test_adaptive_e_cusum_matches_a_hand_computed_stream():
    from monitor.engine.detectors.adaptive_e_cusum import AdaptiveECusum

    rng = np.random.default_rng(11)
    null = rng.standard_normal((500, 2))
    corr = np.array([[1.0, 0.3], [0.3, 1.0]])
    det = AdaptiveECusum(null, corr, deltas=(1.0,), prior=0.5, smoothing=0.5, offset=0.1)
    rounds = np.array([[2.0, 0.0], [3.0, -1.0]])
    expected, log_m, direction = [], -np.inf, np.zeros(2)
    for z in rounds:  # the formula written out: weights from the past, projection, MGF bound of the projected null
        a = 0.5 + np.maximum(direction, 0.0)
        norm = np.sqrt(a @ corr @ a)
        bound = log_mgf_upper_bound(null @ a / norm, [1.0])[0]
        log_m = max(log_m, 0.0) + 1.0 * (a @ z / norm - 0.1) - bound
        expected.append(log_m)
        direction += 0.5 * (z - direction)
    assert det.run(rounds) == pytest.approx(expected, rel=1e-12)
    # the first round is the plain sum's e-value (equal weights), the second leans on the first metric
    assert det.weights().tolist() == pytest.approx([0.5 + 2.0, 0.5])  # means 1 then 1 + (3 - 1) / 2; -1/2 clipped


def test_adaptive_e_cusum_handles_missing_scores():
    from monitor.engine.detectors.adaptive_e_cusum import AdaptiveECusum

    null = np.random.default_rng(12).standard_normal((400, 2))
    det = AdaptiveECusum(null, np.eye(2), deltas=(1.0,))
    # nothing defined: an e-value of 1, and the direction keeps its value
    assert det.update(np.array([np.nan, np.nan])) == 0.0 and det.direction.tolist() == [0.0, 0.0]
    # one metric defined: the projection is that metric alone, against its own null
    one = det.update(np.array([2.0, np.nan]))
    assert one == pytest.approx(2.0 - log_mgf_upper_bound(null[:, 0], [1.0])[0])
    with pytest.raises(ValueError, match="scores"):
        det.update(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="correlation"):
        AdaptiveECusum(null, np.eye(3))
    with pytest.raises(ValueError, match="smoothing"):
        AdaptiveECusum(null, np.eye(2), smoothing=0.0)


def test_adaptive_e_cusum_keeps_its_guarantee_and_finds_a_sparse_shift_sooner():
    from monitor.engine.detectors.adaptive_e_cusum import AdaptiveECusum

    rng = np.random.default_rng(13)
    k, threshold = 6, np.log(100.0)
    null = rng.exponential(size=(5_000, k)) - 1.0  # right-skewed, independent metrics
    det = AdaptiveECusum(null, np.eye(k))
    alarms = rounds = 0
    for _ in range(150):  # ARL0 >= 100 on null streams of skewed scores
        stats = det.run(rng.exponential(size=(200, k)) - 1.0)
        hit = np.flatnonzero(stats >= threshold)
        rounds += hit[0] + 1 if hit.size else 200
        alarms += bool(hit.size)
    assert rounds / max(alarms, 1) >= 100
    # one metric of six shifts by 2 SDs: the adaptive chart crosses sooner than a chart on the plain sum
    plain = ECusum.from_null(null.sum(axis=1) / np.sqrt(k))
    delays = []
    for _ in range(40):
        stream = rng.exponential(size=(30, k)) - 1.0
        stream[:, 0] += 2.0
        first = [np.flatnonzero(s >= threshold) for s in (det.run(stream), plain.run(stream.sum(axis=1) / np.sqrt(k)))]
        delays.append([f[0] if f.size else 30 for f in first])
    adaptive_delay, plain_delay = np.median(delays, axis=0)
    assert adaptive_delay + 2 <= plain_delay
