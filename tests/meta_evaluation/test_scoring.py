"""Tests of the benchmark's scoring (monitor.meta_evaluation.scoring) and baseline detectors (monitor.meta_evaluation.baselines)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from sklearn.metrics import roc_auc_score

from monitor.engine.alerts import first_raise_index
from monitor.meta_evaluation.baselines import (
    drift_share_scores,
    fixed_threshold_scores,
    mmd_permutation_pvalue,
    mmd_permutation_scores,
    one_round_delta_scores,
)
from monitor.meta_evaluation.scoring import (
    alarm_generation,
    alarms_from_scores,
    false_alarm_summary,
    first_alarm,
    lead_time,
    past_onset_labels,
    pooled_roc_auc,
    roc_auc,
    summarise_lead_times,
    sustained_rule,
    threshold_for_false_alarm_rate,
)
from monitor.engine.calibrate import arl_estimate

pytestmark = pytest.mark.usefixtures("single_torch_thread")

# --------------------------------------------------------------------------
# first alarm, lead time
# --------------------------------------------------------------------------


def test_first_alarm_hand_cases():
    assert first_alarm(np.array([False, False, True, False, True])) == 2
    assert first_alarm([True]) == 0  # all alarms: the first round
    assert first_alarm(np.zeros(5, dtype=bool)) is None  # no alarm


@pytest.mark.parametrize("bad", [[], np.zeros(0, bool), np.array([0, 1]), np.zeros((2, 2), bool), [1.0, 0.0]])
def test_first_alarm_refuses_empty_and_non_boolean(bad):
    with pytest.raises(ValueError, match="alarms"):
        first_alarm(bad)


def test_alarm_generation_maps_round_to_generation():
    # rounds audit generations 0, 3, 6, 9; first alarm at round index 2 -> generation 6
    assert alarm_generation([False, False, True, True], np.array([0, 3, 6, 9])) == 6
    assert alarm_generation([False, False], [0, 3]) is None
    with pytest.raises(ValueError, match="generations"):
        alarm_generation([False, True], [0, 3, 6])
    with pytest.raises(ValueError, match="generations"):
        alarm_generation([False, True], [0.0, 3.0])


def test_lead_time_hand_cases():
    assert lead_time(10, 7) == 3  # 10 - 7: early
    assert lead_time(10, 10) == 0  # at onset
    assert lead_time(10, 13) == -3  # late
    assert lead_time(np.int64(10), np.int64(4)) == 6
    assert lead_time(None, 4) is None  # no onset
    assert lead_time(10, None) is None  # no alarm
    assert lead_time(None, None) is None
    for bad in ((-1, 3), (3, -2), (True, 3), (3, 2.0)):
        with pytest.raises(ValueError, match="generation"):
            lead_time(*bad)


# --------------------------------------------------------------------------
# summarise_lead_times
# --------------------------------------------------------------------------


def test_summarise_lead_times_hand_case():
    # detected: 5, 3, 0, -2 (sorted -2, 0, 3, 5); misses: 2; n = 6
    # linear quantiles at positions 0.75, 1.5, 2.25 of the sorted four:
    # q25 = -2 + 0.75 * (0 - -2) = -0.5, median = (0 + 3) / 2 = 1.5, q75 = 3 + 0.25 * (5 - 3) = 3.5
    s = summarise_lead_times([5, None, 3, 0, -2, None])
    assert (s["q25"], s["median"], s["q75"]) == (-0.5, 1.5, 3.5)
    assert (s["n_runs"], s["n_detected"], s["n_missed"]) == (6, 4, 2)
    # strictly before onset: 5 and 3 (lead 0 is not before); misses count as failures -> 2 / 6
    assert s["n_before_onset"] == 2
    assert s["p_alarm_before_onset"] == pytest.approx(2 / 6, abs=1e-15)
    # Clopper-Pearson lower bound p_l: P(Binom(6, p_l) >= 2) = 0.05
    assert scipy.stats.binom.sf(1, 6, s["p_alarm_before_onset_lower"]) == pytest.approx(0.05, abs=1e-9)


def test_summarise_lead_times_all_before_and_all_missed():
    s = summarise_lead_times([2, 2, 4])
    # quantiles of 2, 2, 4: q25 = 2, median = 2, q75 = 2 + 0.5 * 2 = 3
    assert (s["q25"], s["median"], s["q75"]) == (2.0, 2.0, 3.0)
    assert s["p_alarm_before_onset"] == 1.0
    # k = n = 3: P(Binom(3, p) >= 3) = p^3 = 0.05 -> p = 0.05^(1/3) = 0.3684
    assert s["p_alarm_before_onset_lower"] == pytest.approx(0.05 ** (1 / 3), abs=1e-12)
    m = summarise_lead_times([None, None])
    assert math.isnan(m["median"]) and math.isnan(m["q25"]) and math.isnan(m["q75"])
    assert (m["n_detected"], m["n_missed"]) == (0, 2)
    assert (m["p_alarm_before_onset"], m["p_alarm_before_onset_lower"]) == (0.0, 0.0)


def test_summarise_lead_times_at_onset_is_not_before():
    # every alarm exactly at onset (lead 0): detected, but never "before onset"
    s = summarise_lead_times([0, 0, 0])
    assert (s["n_detected"], s["p_alarm_before_onset"], s["median"]) == (3, 0.0, 0.0)


@pytest.mark.parametrize("bad", [[], np.array([1, 2]), [1.5], [True], "12"])
def test_summarise_lead_times_refuses_bad_input(bad):
    with pytest.raises(ValueError, match="lead_times"):
        summarise_lead_times(bad)


# --------------------------------------------------------------------------
# False alarms on controls
# --------------------------------------------------------------------------


def test_false_alarm_summary_hand_case():
    runs = [
        np.array([False, False, True, True, False]),  # first raise at 2: 3 rounds at risk, 1 alarm
        np.array([True, False, True]),  # raise at 0: 1 round at risk, 1 alarm (the raise at 2 is not counted)
        np.zeros(6, dtype=bool),  # clean: 6 rounds at risk
    ]
    s = false_alarm_summary(runs)
    # F = 2, T = 3 + 1 + 6 = 10 -> 200 per 1000 rounds, ARL0 = 10 / 2 = 5
    assert (s["n_runs"], s["n_rounds"], s["rounds_at_risk"], s["n_false_alarms"]) == (3, 14, 10, 2)
    assert s["rate_per_1000"] == 200.0 and s["arl0"] == 5.0
    assert s["arl0"] == 1000.0 / s["rate_per_1000"]  # the two are one quantity
    # Garwood upper bound F_u: P(Poisson(F_u) <= 2) = 0.05 (F_u = chi2_0.95(6) / 2 = 6.2958)
    f_u = s["rate_per_1000_upper"] * 10 / 1000
    assert scipy.stats.poisson.cdf(2, f_u) == pytest.approx(0.05, abs=1e-9)
    assert f_u == pytest.approx(6.2957936, abs=1e-6)
    assert s["arl0_lower"] == pytest.approx(10 / f_u, rel=1e-12)


def test_false_alarm_summary_zero_alarms_rule_of_three():
    s = false_alarm_summary([np.zeros(400, bool), np.zeros(600, bool)])
    assert (s["n_false_alarms"], s["rounds_at_risk"], s["rate_per_1000"], s["arl0"]) == (0, 1000, 0.0, math.inf)
    # F = 0: F_u = -ln(0.05) = 2.9957 ("rule of three"): at most 3.0 per 1000, ARL0 >= 1000 / 2.9957 = 333.8
    assert s["rate_per_1000_upper"] == pytest.approx(-math.log(0.05), rel=1e-12)
    assert s["arl0_lower"] == pytest.approx(1000 / -math.log(0.05), rel=1e-12)
    s99 = false_alarm_summary([np.zeros(100, bool)], confidence=0.99)
    assert s99["rate_per_1000_upper"] == pytest.approx(1000 * -math.log(0.01) / 100, rel=1e-12)


def test_false_alarm_summary_matches_calibrate_arl_estimate():
    # monitor.engine.calibrate counts run lengths the same way: first alarm index + 1, length + 1 when none, censored
    rng = np.random.default_rng(3)
    length = 30
    runs = [rng.random(length) < 0.02 for _ in range(40)]
    lengths = np.array([(first_alarm(a) + 1) if a.any() else length + 1 for a in runs])
    arl, _, alarms = arl_estimate(lengths, length)
    s = false_alarm_summary(runs)
    assert alarms == s["n_false_alarms"] > 0
    assert s["arl0"] == pytest.approx(arl, rel=1e-12)


def test_false_alarm_summary_refuses_bad_input():
    with pytest.raises(ValueError, match="control_alarms"):
        false_alarm_summary([])
    with pytest.raises(ValueError, match=r"control_alarms\[1\]"):
        false_alarm_summary([np.zeros(3, bool), np.zeros(0, bool)])
    with pytest.raises(ValueError, match="control_alarms"):
        false_alarm_summary(np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="confidence"):
        false_alarm_summary([np.zeros(3, bool)], confidence=1.0)


# --------------------------------------------------------------------------
# Alarm rules and thresholded scores
# --------------------------------------------------------------------------


def test_sustained_rule_hand_and_engine():
    exceed = np.array([True, True, False, True, True, True, False])
    assert sustained_rule(1)(exceed).tolist() == exceed.tolist()
    # k = 2: raised where this and the previous round exceed -> indices 1, 4, 5
    assert np.flatnonzero(sustained_rule(2)(exceed)).tolist() == [1, 4, 5]
    # k = 3: only index 5 (3, 4, 5 exceed)
    assert np.flatnonzero(sustained_rule(3)(exceed)).tolist() == [5]
    # first raise agrees with the engine's own raise logic on random series
    rng = np.random.default_rng(0)
    for k in (1, 2, 3):
        series = rng.random((50, 20)) < 0.6
        engine = first_raise_index(series, k)
        ours = [first_alarm(sustained_rule(k)(s)) for s in series]
        assert [(-1 if f is None else f) for f in ours] == engine.tolist()
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="rounds"):
            sustained_rule(bad)


def test_alarms_from_scores_hand_and_edges():
    s = np.array([0.2, 0.5, -np.inf, 0.9, np.inf])
    assert alarms_from_scores(s, 0.5).tolist() == [False, True, False, True, True]  # >=: 0.5 alarms
    assert alarms_from_scores(s, np.inf).tolist() == [False] * 5  # +inf: never, even the +inf score
    assert alarms_from_scores(s, -np.inf).tolist() == [True] * 5  # -inf: every round
    assert alarms_from_scores(s, 0.4, sustained_rule(2)).tolist() == [False, False, False, False, True]
    with pytest.raises(ValueError, match="NaN"):
        alarms_from_scores(np.array([0.1, np.nan]), 0.0)
    with pytest.raises(ValueError, match="threshold"):
        alarms_from_scores(s, float("nan"))
    with pytest.raises(ValueError, match="alarm_rule"):
        alarms_from_scores(s, 0.0, lambda e: e.astype(int))
    with pytest.raises(ValueError, match="scores"):
        alarms_from_scores(np.array([]), 0.0)


CONTROLS = [np.array([0.1, 0.5, 0.3]), np.array([0.2, 0.4, 0.9])]
# Alarm classes of the identity rule on CONTROLS (first alarm index per run -> F / T):
#   t >  0.9        : none, none        -> 0 / (3 + 3) = 0
#   0.5 < t <= 0.9  : none, 2 (0.9)     -> 1 / (3 + 3) = 166.7 per 1000
#   0.4 < t <= 0.5  : 1 (0.5), 2        -> 2 / (2 + 3) = 400
#   0.3 < t <= 0.4  : 1, 1 (0.4)        -> 2 / (2 + 2) = 500
#   0.2 < t <= 0.3  : 1, 1              -> 2 / 4       = 500  (0.3 comes after run 1's 0.5)
#   0.1 < t <= 0.2  : 1, 0 (0.2)        -> 2 / (2 + 1) = 666.7
#   t <= 0.1        : 0, 0              -> 2 / (1 + 1) = 1000


@pytest.mark.parametrize(
    "rate, expected",
    [
        (0.0, np.nextafter(0.9, np.inf)),
        (166.0, np.nextafter(0.9, np.inf)),  # just below 1000 / 6
        (170.0, np.nextafter(0.5, np.inf)),
        (450.0, np.nextafter(0.4, np.inf)),
        (500.0, np.nextafter(0.2, np.inf)),  # the rate ties over two classes: the lower one
        (700.0, np.nextafter(0.1, np.inf)),
        (999.0, np.nextafter(0.1, np.inf)),
        (1000.0, -np.inf),  # alarming on every first round is exactly 1000 per 1000
    ],
)
def test_threshold_for_false_alarm_rate_hand_case(rate, expected):
    assert threshold_for_false_alarm_rate(CONTROLS, rate) == expected


def test_threshold_exact_boundary_rates():
    # 1 alarm in 1000 rounds at risk is exactly 1 per 1000: allowed (at most), not one ulp beyond
    controls = [np.concatenate([np.zeros(999), [5.0]])]  # 999 zeros then 5.0: first alarm at 999, T = 1000
    assert threshold_for_false_alarm_rate(controls, 1.0) == np.nextafter(0.0, np.inf)
    assert threshold_for_false_alarm_rate(controls, 0.999) == np.nextafter(5.0, np.inf)


def test_threshold_with_ties_and_sustained_rule():
    # scores with ties; rule: 2 rounds in a row
    controls = [np.array([1.0, 3.0, 3.0, 1.0]), np.array([2.0, 2.0, 1.0, 3.0])]
    # t in (2, 3]: run 1 exceeds at 1, 2 -> raised at 2 (T 3); run 2 only at 3 -> none (T 4): 1 / 7 = 142.9
    # t in (1, 2]: run 1 raised at 2 (T 3); run 2 exceeds 0, 1 -> raised at 1 (T 2): 2 / 5 = 400
    # t <= 1: both raised at 1: 2 / 4 = 500; t > 3: 0
    rule = sustained_rule(2)
    assert threshold_for_false_alarm_rate(controls, 0.0, rule) == np.nextafter(3.0, np.inf)
    assert threshold_for_false_alarm_rate(controls, 150.0, rule) == np.nextafter(2.0, np.inf)
    assert threshold_for_false_alarm_rate(controls, 400.0, rule) == np.nextafter(1.0, np.inf)
    assert threshold_for_false_alarm_rate(controls, 500.0, rule) == -np.inf
    # identity rule on the same controls: t in (2, 3]: first alarms at 1 and 3: 2 / (2 + 4) = 333.3
    assert threshold_for_false_alarm_rate(controls, 340.0) == np.nextafter(2.0, np.inf)


def test_threshold_none_achieves_returns_inf():
    # a +inf control score exceeds every threshold, so no threshold has zero alarms: never alarm
    controls = [np.array([0.0, np.inf]), np.array([1.0, 2.0])]
    t = threshold_for_false_alarm_rate(controls, 0.0)
    assert t == np.inf
    assert not alarms_from_scores(controls[0], t).any()
    # -inf scores (no evidence) are alarm-free at any finite threshold
    assert threshold_for_false_alarm_rate([np.array([-np.inf, -np.inf])], 0.0) == np.nextafter(-np.inf, np.inf)


def _naive_rate(control_scores, t, k):
    """Independent rate of 'k rounds in a row with score >= t': explicit loops."""
    events = exposure = 0
    for scores in control_scores:
        run = 0
        for i, s in enumerate(scores):
            run = run + 1 if (t != np.inf and s >= t) else 0
            if run >= k:
                events += 1
                exposure += i + 1
                break
        else:
            exposure += len(scores)
    return 1000.0 * events / exposure


@pytest.mark.parametrize("k", [1, 2, 3])
def test_threshold_matches_brute_force_on_random_controls(k):
    rng = np.random.default_rng(10 + k)
    for trial in range(4):
        controls = [np.round(rng.normal(size=rng.integers(5, 30)), 1) for _ in range(6)]  # rounded: many ties
        controls[0][0] = -np.inf
        values = np.unique(np.concatenate(controls))
        grid = np.unique(np.concatenate([[-np.inf, np.inf], values, np.nextafter(values, np.inf)]))
        for rate in (0.0, 10.0, 50.0, 150.0, 400.0):
            feasible = [t for t in grid if _naive_rate(controls, t, k) <= rate]
            t = threshold_for_false_alarm_rate(controls, rate, sustained_rule(k))
            assert t == min(feasible)
            # exact: at t the rate is met, one float lower it is not (unless t = -inf)
            assert _naive_rate(controls, t, k) <= rate
            if t > -np.inf:
                assert _naive_rate(controls, np.nextafter(t, -np.inf), k) > rate


def test_threshold_refuses_bad_input():
    with pytest.raises(ValueError, match="control_scores"):
        threshold_for_false_alarm_rate([], 1.0)
    with pytest.raises(ValueError, match="NaN"):
        threshold_for_false_alarm_rate([np.array([0.0, np.nan])], 1.0)
    with pytest.raises(ValueError, match="rate_per_1000"):
        threshold_for_false_alarm_rate(CONTROLS, -1.0)
    with pytest.raises(ValueError, match="rate_per_1000"):
        threshold_for_false_alarm_rate(CONTROLS, float("nan"))
    with pytest.raises(ValueError, match=r"control_scores\[0\]"):
        threshold_for_false_alarm_rate([np.array([])], 1.0)


# --------------------------------------------------------------------------
# ROC-AUC
# --------------------------------------------------------------------------


def test_roc_auc_hand_cases():
    # positives {3, 2}, negatives {2, 1, 0}: pairs won 3 + (1 + 0.5 tie + 1) = 5.5 of 6
    s = np.array([3.0, 2.0, 2.0, 1.0, 0.0])
    y = np.array([True, True, False, False, False])
    assert roc_auc(s, y) == pytest.approx(5.5 / 6, abs=1e-15)
    assert roc_auc(np.array([0.0, 0.0]), np.array([True, False])) == 0.5  # all tied
    assert roc_auc(np.array([-np.inf, np.inf]), np.array([False, True])) == 1.0
    assert roc_auc(np.array([1.0, 2.0]), np.array([True, False])) == 0.0


def test_roc_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(7)
    for n in (5, 40, 300):
        for _ in range(5):
            s = rng.integers(0, 6, size=n).astype(float)  # heavy ties
            y = rng.random(n) < 0.3
            if y.all() or not y.any():
                y[0], y[1] = True, False
            assert roc_auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
            s_cont = rng.normal(size=n) + y  # continuous scores
            assert roc_auc(s_cont, y) == pytest.approx(roc_auc_score(y, s_cont), abs=1e-12)


def test_roc_auc_refuses_bad_input():
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(np.array([0.1, 0.2]), np.array([True, True]))
    with pytest.raises(ValueError, match="NaN"):
        roc_auc(np.array([0.1, np.nan]), np.array([True, False]))
    with pytest.raises(ValueError, match="labels"):
        roc_auc(np.array([0.1, 0.2]), np.array([1, 0]))
    with pytest.raises(ValueError, match="labels"):
        roc_auc(np.array([0.1, 0.2]), np.array([True, False, True]))
    with pytest.raises(ValueError, match="scores"):
        roc_auc(np.array([]), np.array([], bool))


def test_pooled_roc_auc_and_labels():
    gens = np.array([0, 2, 4, 6])
    assert past_onset_labels(gens, 3).tolist() == [False, False, True, True]  # generation >= onset
    assert past_onset_labels(gens, 4).tolist() == [False, False, True, True]
    assert past_onset_labels(gens, None).tolist() == [False] * 4  # control
    rng = np.random.default_rng(2)
    runs = []
    for onset in (3, 5, None, 1):
        labels = past_onset_labels(np.arange(8), onset)
        runs.append((rng.integers(0, 4, 8).astype(float) + labels, labels))
    all_s = np.concatenate([r[0] for r in runs])
    all_y = np.concatenate([r[1] for r in runs])
    assert pooled_roc_auc(runs) == pytest.approx(roc_auc_score(all_y, all_s), abs=1e-12)
    with pytest.raises(ValueError, match="runs"):
        pooled_roc_auc([])
    with pytest.raises(ValueError, match=r"runs\[0\]"):
        pooled_roc_auc([(np.zeros(3), np.zeros(2, bool))])
    with pytest.raises(ValueError, match=r"runs\[0\]"):
        pooled_roc_auc([np.zeros(3)])
    with pytest.raises(ValueError, match="generations"):
        past_onset_labels(np.array([0.0, 1.0]), 1)


# --------------------------------------------------------------------------
# Baselines: value-based scores
# --------------------------------------------------------------------------


def test_fixed_threshold_scores():
    # higher is better (coverage): score = -value; lower is better (MMD): score = value
    assert fixed_threshold_scores(np.array([0.8, 0.6, np.nan]), True).tolist() == [-0.8, -0.6, -np.inf]
    assert fixed_threshold_scores([1, 3], False).tolist() == [1.0, 3.0]
    # thresholding: coverage <= 0.7 alarms <=> -coverage >= -0.7
    assert alarms_from_scores(fixed_threshold_scores(np.array([0.8, 0.7, 0.6]), True), -0.7).tolist() == [
        False, True, True]
    with pytest.raises(ValueError, match="higher_is_better"):
        fixed_threshold_scores([0.1], 1)
    with pytest.raises(ValueError, match="values"):
        fixed_threshold_scores([], True)
    with pytest.raises(ValueError, match="values"):
        fixed_threshold_scores(np.array(["a"]), True)


def test_one_round_delta_scores():
    # higher is better 1.0, 0.7, 0.9, 0.9: drops 0.3, -0.2, 0.0
    s = one_round_delta_scores(np.array([1.0, 0.7, 0.9, 0.9]), True)
    assert s[0] == -np.inf
    np.testing.assert_allclose(s[1:], [0.3, -0.2, 0.0], atol=1e-15)
    # lower is better 0.1, 0.4: oriented -0.1, -0.4, drop 0.3
    np.testing.assert_allclose(one_round_delta_scores(np.array([0.1, 0.4]), False), [-np.inf, 0.3], atol=1e-15)
    # a NaN spoils its own delta and the next one
    spoiled = one_round_delta_scores(np.array([1.0, np.nan, 0.5, 0.25]), True)
    assert spoiled.tolist() == [-np.inf, -np.inf, -np.inf, 0.25]
    assert one_round_delta_scores(np.array([0.5]), True).tolist() == [-np.inf]  # one round: never alarms


def test_drift_share_scores():
    assert drift_share_scores(np.array([0.0, 0.5, 1.0])).tolist() == [0.0, 0.5, 1.0]
    assert drift_share_scores([np.nan, 0.2]).tolist() == [-np.inf, 0.2]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        drift_share_scores([0.5, 1.5])
    with pytest.raises(ValueError, match="drift_shares"):
        drift_share_scores([])


# --------------------------------------------------------------------------
# Baselines: MMD permutation test
# --------------------------------------------------------------------------


def _naive_mmd2_u(k: np.ndarray, ix: np.ndarray, iy: np.ndarray) -> float:
    """Gretton et al. eq. 3 from the full pooled kernel matrix, explicit off-diagonal means."""
    kxx, kyy, kxy = k[np.ix_(ix, ix)], k[np.ix_(iy, iy)], k[np.ix_(ix, iy)]
    n, m = len(ix), len(iy)
    return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2.0 * kxy.mean())


def _naive_pvalue(x, y, n_perm, seed, sigma=None):
    """Full kernel matrix, median heuristic over all pooled pairs, explicit permutations.

    The relabellings are drawn as metrics_core.mmd draws them (rng = default_rng([seed, 1]),
    first n of rng.permutation(n + m) form the first set), so the p-values must agree exactly;
    the statistic, bandwidth and counting are computed independently here.
    """
    z = np.concatenate([x, y])
    n, total = len(x), len(z)
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    if sigma is None:
        sigma = math.sqrt(np.median(d2[np.triu_indices(total, 1)]) / 2.0)
    k = np.exp(-d2 / (2.0 * sigma**2))
    observed = _naive_mmd2_u(k, np.arange(n), np.arange(n, total))
    rng = np.random.default_rng([seed, 1])
    exceed = 0
    for _ in range(n_perm):
        perm = rng.permutation(total)
        exceed += _naive_mmd2_u(k, perm[:n], perm[n:]) >= observed - 1e-12
    return (1 + exceed) / (1 + n_perm)


@pytest.mark.parametrize("shift, sigma", [(0.0, None), (0.4, None), (0.7, None), (0.4, 1.3)])
def test_mmd_pvalue_matches_naive(shift, sigma):
    rng = np.random.default_rng(int(shift * 10) + 1)
    x = rng.normal(size=(25, 3))
    y = rng.normal(size=(18, 3)) + np.array([shift, 0.0, 0.0])
    for seed in (0, 5):
        p = mmd_permutation_pvalue(x, y, n_permutations=150, seed=seed, bandwidth=sigma, device="cpu")
        assert p == _naive_pvalue(x, y, 150, seed, sigma)
        assert p * 151 == round(p * 151)  # (1 + count) / (1 + B)
    assert mmd_permutation_pvalue(x, y, n_permutations=150, seed=5, device="cpu") == \
        mmd_permutation_pvalue(x, y, n_permutations=150, seed=5, device="cpu")  # deterministic


def test_mmd_pvalue_uniform_under_null():
    # 120 independent null data sets (both sets N(0, I_2)), B = 99. A valid permutation p-value is
    # discrete uniform on {1, ..., 100} / 100. The KS distance to U(0, 1) of 120 draws exceeds
    # 1.95 / sqrt(120) = 0.178 with probability 0.1% (asymptotic KS quantile); the 1/100 grid adds
    # at most 0.01, hence the bound 0.19 (deterministic: fixed seeds).
    ps = []
    for s in range(120):
        rng = np.random.default_rng([77, s])
        x, y = rng.normal(size=(12, 2)), rng.normal(size=(12, 2))
        ps.append(mmd_permutation_pvalue(x, y, n_permutations=99, seed=s, device="cpu"))
    ps = np.array(ps)
    assert scipy.stats.kstest(ps, "uniform").statistic < 0.19
    # P(p <= 0.05) = 0.05 under H0: Binomial(120, 0.05) has mean 6, P(count > 16) < 1e-3
    assert (ps <= 0.05).sum() <= 16


def test_mmd_pvalue_small_under_mean_shift():
    # a 1.5 sd mean shift with 40 + 40 points: the observed labelling beats all 99 relabellings
    for s in range(3):
        rng = np.random.default_rng([5, s])
        x = rng.normal(size=(40, 4))
        y = rng.normal(size=(40, 4)) + np.array([1.5, 0.0, 0.0, 0.0])
        assert mmd_permutation_pvalue(x, y, n_permutations=99, seed=s, device="cpu") == 0.01


def test_mmd_permutation_scores_seeds_and_values():
    rng = np.random.default_rng(4)
    ref = rng.normal(size=(20, 2))
    rounds = [rng.normal(size=(15, 2)), rng.normal(size=(15, 2)) + 0.5, rng.normal(size=(15, 2)) + 3.0]
    scores = mmd_permutation_scores(ref, rounds, n_permutations=49, seed=9, device="cpu")
    children = np.random.SeedSequence(9).spawn(3)
    expected = [-math.log10(mmd_permutation_pvalue(ref, r, 49, int(c.generate_state(1)[0]), device="cpu"))
                for r, c in zip(rounds, children)]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=0)
    assert scores[2] == pytest.approx(math.log10(50), abs=1e-12)  # p = 1/50: the maximal score
    assert (scores >= 0).all()
    # a round's score does not depend on the rounds after it
    assert mmd_permutation_scores(ref, rounds[:1], n_permutations=49, seed=9, device="cpu")[0] == scores[0]


def test_mmd_refuses_bad_input():
    x = np.zeros((5, 2)) + np.arange(5)[:, None]
    with pytest.raises(ValueError, match="n_permutations"):
        mmd_permutation_pvalue(x, x, n_permutations=0)
    with pytest.raises(ValueError, match="seed"):
        mmd_permutation_pvalue(x, x, seed=-1)
    with pytest.raises(ValueError, match="round"):
        mmd_permutation_pvalue(x, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="bandwidth"):
        mmd_permutation_pvalue(x, x, bandwidth=-1.0)
    with pytest.raises(ValueError, match="rounds"):
        mmd_permutation_scores(x, [])
    with pytest.raises(ValueError, match="rounds"):
        mmd_permutation_scores(x, np.zeros((2, 5, 2)))
