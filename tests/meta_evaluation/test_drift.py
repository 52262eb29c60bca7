"""Tests of the pure-drift controls D0-<loop id> (monitor.meta_evaluation.drift): the mean moves, the spread does not.

Statistical checks use fixed seeds; each states its tolerance in standard errors next to the assertion.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from monitor.meta_evaluation import loop_agent as A
from monitor.meta_evaluation import loops as L
from monitor.meta_evaluation.drift import (
    DRIFT_CONTROLS,
    GOAL_REGION,
    drift_agent_pair_probabilities,
    drift_copula_loop,
    drift_copula_models,
    drift_direction,
    drift_gaussian_loop,
    drift_gaussian_parameters,
    drift_gmm_loop,
    drift_gmm_models,
    drift_horizon,
    drift_zipf_distributions,
    drift_zipf_loop,
    mixture_covariance,
    shift_schedule,
    zipf_swap_pairs,
)


def _same(a, b) -> bool:
    if isinstance(a, pd.DataFrame):
        return a.equals(b)
    if isinstance(a, list):
        return a == b
    return np.array_equal(a, b)


def test_registry_covers_every_numeric_loop_and_the_agent_loop():
    assert sorted(DRIFT_CONTROLS) == sorted([*(f"D0-{loop_id}" for loop_id in L.LOOPS), "D0-L6-agent"])
    trace = DRIFT_CONTROLS["D0-L3-tau0.9"](0, 2, n_documents=3)
    assert (trace.name, trace.kind, trace.onset, trace.modality) == ("D0-L3-tau0.9", "control", None, "text")
    assert trace.params["horizon"] == 24 and trace.params["workflow"] == "drift"


@pytest.mark.parametrize("run_id, sizes", [
    ("L1-d16-M20", dict(n_audit=30, n_reference=40)),
    ("L2-K10-d8", dict(n_audit=30, n_reference=40)),
    ("L3-tau1.0", dict(n_documents=30)),
    ("L5-wine", dict(n_audit=30)),
])
def test_reference_and_generation0_equal_the_c0_controls(run_id, sizes):
    c0 = L.CONTROLS[f"C0-{run_id}"](5, 2, **sizes)
    d0 = DRIFT_CONTROLS[f"D0-{run_id}"](5, 2, **sizes)
    assert _same(d0.reference, c0.reference)
    assert _same(d0.rounds[0], c0.rounds[0])
    assert not _same(d0.rounds[2], c0.rounds[2])
    assert _same(DRIFT_CONTROLS[f"D0-{run_id}"](5, 2, **sizes).rounds[2], d0.rounds[2])  # seeded


def test_horizon_and_schedule():
    assert drift_horizon("L1-d16-M1000", None, 10) == 2000
    assert drift_horizon("L1-d3-M7", None, 10) == 10  # not a registered family: the run's length
    assert shift_schedule(3, 3, 1.5).tolist() == [0.0, 0.5, 1.0, 1.5]
    with pytest.raises(ValueError, match="horizon"):
        drift_horizon("L1-d1-M20", 0, 10)
    with pytest.raises(ValueError, match="final_shift"):
        shift_schedule(3, 3, -1.0)
    with pytest.raises(ValueError, match="final_mass"):
        drift_zipf_distributions(0, 3, V=20, final_mass=1.5)
    u, v = drift_direction(0, 8), drift_direction(1, 8)
    assert np.isclose(u @ u, 1.0) and not np.allclose(u, v)


def test_l1_drift_moves_the_mean_and_keeps_the_covariance():
    means, covs = drift_gaussian_parameters(3, 60, d=16, M=20)  # horizon 60
    u = drift_direction(3, 16)
    assert np.allclose(means[60], 1.5 * u) and np.allclose(means[30], 0.75 * u)
    assert np.array_equal(covs, np.broadcast_to(np.eye(16), covs.shape))
    n = 4000
    trace = drift_gaussian_loop(3, 60, 30, d=16, M=20, n_audit=n, n_reference=10)
    c0 = L.gaussian_refit_loop(3, 60, 30, d=16, M=20, n_audit=n, n_reference=10, workflow="no_feedback")
    assert np.allclose(trace.rounds[2], c0.rounds[2] + 1.5 * u, atol=1e-12)  # the coupled C0 round, moved
    late = trace.rounds[2]
    # projection on u: mean 1.5 (se 1/sqrt(n)), variance 1 (se sqrt(2/n)); 4 se
    proj = late @ u
    assert abs(proj.mean() - 1.5) < 4 / np.sqrt(n)
    assert abs(proj.var(ddof=1) - 1.0) < 4 * np.sqrt(2 / n)
    # the sample covariance of the late round equals generation 0's: entry se ~ sqrt(2/n); 6 se over 136 entries
    assert np.max(np.abs(np.cov(late, rowvar=False) - np.eye(16))) < 6 * np.sqrt(2 / n)
    assert np.allclose(trace.truth["trace_cov"], 16.0)
    assert np.allclose(trace.truth["shift_sd"], 1.5 * np.arange(61) / 60)
    assert np.allclose(trace.truth["w2_squared"], trace.truth["shift_sd"] ** 2)


def test_l1_drift_in_one_dimension_reaches_one_and_a_half_sd():
    n = 10_000
    trace = DRIFT_CONTROLS["D0-L1-d1-M20"](0, 40, 40, n_audit=n, n_reference=5)
    first, last = trace.rounds[0][:, 0], trace.rounds[1][:, 0]
    sign = np.sign(drift_direction(0, 1)[0])
    assert abs((last.mean() - first.mean()) * sign - 1.5) < 4 * np.sqrt(2 / n)  # difference of two means
    assert abs(last.var(ddof=1) / first.var(ddof=1) - 1.0) < 4 * 2 / np.sqrt(n)  # ratio se ~ 2/sqrt(n)


def test_l2_drift_translates_the_whole_mixture():
    models = drift_gmm_models(2, 100, K=10, d=8)
    model0, last = models[0], models[100]
    delta = last.means - model0.means
    assert np.allclose(delta, delta[0])  # every component moves together
    u = delta[0] / np.linalg.norm(delta[0])
    sigma_u = np.sqrt(u @ mixture_covariance(model0) @ u)
    assert np.isclose(np.linalg.norm(delta[0]), 1.5 * sigma_u)
    assert last.weights is model0.weights and last.covs is model0.covs
    # mixture_covariance is the mixture's covariance: sample check, entry se ~ sd_i sd_j sqrt(2/n)
    n = 40_000
    x = model0.sample(n, np.random.default_rng(0))
    cov = mixture_covariance(model0)
    sd = np.sqrt(np.diag(cov))
    assert np.max(np.abs(np.cov(x, rowvar=False) - cov) / np.outer(sd, sd)) < 6 * np.sqrt(2 / n)
    trace = drift_gmm_loop(2, 100, 50, n_audit=n, n_reference=5)
    r0, r_last = trace.rounds[0], trace.rounds[2]
    assert np.all(np.abs((r_last.mean(axis=0) - r0.mean(axis=0)) - delta[0]) < 4.5 * sd * np.sqrt(2 / n))
    # spread unchanged: compare the two sample covariances (each entry se ~ sd_i sd_j sqrt(2/n))
    assert np.max(np.abs(np.cov(r_last, rowvar=False) - np.cov(r0, rowvar=False)) / np.outer(sd, sd)) < 0.1
    assert np.allclose(trace.truth["min_weight"], 0.1) and np.all(trace.truth["n_components"] == 10)


def test_l3_swap_pairs_keep_the_sorted_probabilities():
    pairs = zipf_swap_pairs(0, 10_000)
    assert pairs.shape == (4998, 2) and len(np.unique(pairs)) == 2 * 4998
    assert pairs[0, 0] == 4999 and pairs[-1, 0] == 2 and np.all(pairs[:, 1] >= 5000)
    p = drift_zipf_distributions(0, 30)
    p0 = L.zipf_law(10_000, 1.5)
    assert np.array_equal(p[0], p0)
    assert np.array_equal(np.sort(p, axis=1), np.broadcast_to(np.sort(p0), p.shape))  # exactly the same values
    assert np.all(p[:, :2] == p0[:2])  # ranks 1 and 2 never move
    trace = drift_zipf_loop(0, 30, 3, n_documents=400)
    mass = trace.truth["reassigned_mass"]
    assert np.all(np.diff(mass) >= 0) and mass[0] == 0
    assert 0.47 < mass[30] < 0.5  # "about half": everything the movers hold, 0.478
    # linear in g where the moved atoms are small (ranks > 8): |mass - 0.478 g / 30| below one step
    g = np.arange(16)
    assert np.max(np.abs(mass[:16] - mass[30] * g / 30)) < 0.016
    for key in ("fitted_exponent", "observed_support", "support"):
        assert np.all(trace.truth[key] == trace.truth[key][0])
    assert np.allclose(trace.truth["fitted_exponent"], 1.5)
    entropy = -(p * np.log(p)).sum(axis=1)
    assert np.allclose(entropy, entropy[0], rtol=0, atol=1e-12)
    assert 0.45 < trace.truth["tv_distance"][30] < mass[30]
    # in the audited text: rank 3 (7.4% of tokens) has swapped with a bottom-half word by generation 30
    partner = f"w{pairs[-1, 1] + 1}"
    first = " ".join(trace.rounds[0]).split(" ")
    last = " ".join(trace.rounds[-1]).split(" ")
    n = len(first)  # 20,000 tokens
    assert abs(first.count("w3") / n - p0[2]) < 4 * np.sqrt(p0[2] / n)
    assert last.count("w3") == first.count(partner) == 0
    assert abs(last.count(partner) / n - p0[2]) < 4 * np.sqrt(p0[2] / n)


def test_l5_drift_moves_the_marginals_and_keeps_spread_and_dependence():
    models = drift_copula_models(1, 120)
    model0 = models[0]
    assert np.allclose(models[120].marginal_sd(), model0.marginal_sd(), rtol=1e-12)
    assert np.allclose(models[120].marginal_range(), model0.marginal_range(), rtol=1e-12)
    assert models[120].correlation is model0.correlation
    delta = models[120].sorted_columns[0] - model0.sorted_columns[0]
    # 1.5 sd along u in standardised coordinates, sd measured with the real table's correlation
    real = L.load_real_table("wine").to_numpy()
    w = delta / model0.marginal_sd()
    assert np.isclose(np.sqrt(w @ np.corrcoef(real, rowvar=False) @ w), 1.5)
    n = 4000
    trace = drift_copula_loop(1, 120, 60, n_audit=n)
    r0, r_last = trace.rounds[0], trace.rounds[2]
    sd = model0.marginal_sd()
    # the audit streams are C0's, so the last round is C0's round of generation 120 moved by delta
    c0_last = L.copula_tabular_loop(1, 120, 60, n_audit=n, workflow="no_feedback").rounds[2]
    assert np.allclose(r_last.to_numpy(), c0_last.to_numpy() + delta, rtol=0, atol=1e-9 * np.abs(real).max())
    assert np.allclose(r_last.std().to_numpy(), c0_last.std().to_numpy(), rtol=1e-9)
    assert np.allclose(stats.spearmanr(r_last).statistic, stats.spearmanr(c0_last).statistic)
    # against generation 0's own round (independent draws): mean difference se sd sqrt(2/n), 4.5 se over 13
    # columns; sd ratio se ~ sqrt(kurtosis-ish / n), 0.06 is > 4 se for these marginals
    assert np.all(np.abs(r_last.mean().to_numpy() - r0.mean().to_numpy() - delta) < 4.5 * sd * np.sqrt(2 / n))
    assert np.all(np.abs(r_last.std().to_numpy() / r0.std().to_numpy() - 1.0) < 0.06)
    # Spearman entries: se of a difference ~ 0.022 at n = 4000; 0.08 is ~3.6 se over 78 entries
    assert np.max(np.abs(stats.spearmanr(r_last).statistic - stats.spearmanr(r0).statistic)) < 0.08
    assert np.allclose(trace.truth["sd_ratio"], 1.0) and np.allclose(trace.truth["range_ratio"], 1.0)
    # a fresh round of the drifted model (own stream) still has generation 0's spread: sd se ~ sd / sqrt(2n)
    fresh = models[120].sample(n, np.random.default_rng(9))
    assert np.all(np.abs(fresh.std(axis=0) / sd - 1.0) < 0.08)


def test_agent_drift_keeps_the_policy_and_moves_the_goals_into_the_centre():
    sizes = dict(n_audit=60, n_reference=30)
    c0 = A.CONTROLS["C0-L6-agent"](5, 6, **sizes)
    d0 = DRIFT_CONTROLS["D0-L6-agent"](5, 6, horizon=4, **sizes)
    assert (d0.name, d0.kind, d0.modality, d0.onset, d0.params["horizon"]) == ("D0-L6-agent", "control", "agent",
                                                                                None, 4)
    assert d0.reference == c0.reference and d0.rounds[0] == c0.rounds[0] and d0.rounds[2] != c0.rounds[2]
    assert DRIFT_CONTROLS["D0-L6-agent"](5, 6, horizon=4, **sizes).rounds[2] == d0.rounds[2]  # seeded
    # the policy, hence its true action diversity, is generation 0's throughout
    assert np.array_equal(d0.truth["action_entropy"], c0.truth["action_entropy"])
    assert len(set(d0.truth["action_entropy"].tolist())) == 1
    # q_g: (1 - m_g) uniform + m_g uniform over the 330 pairs with a centre goal, m_g = min(g, 4) / 4
    m = np.minimum(np.arange(7), 4) / 4
    assert np.allclose(d0.truth["goal_region_mass"], (1 - m) * 330 / 930 + m)
    assert np.allclose(d0.truth["tv_distance"], m * 600 / 930)
    free = np.array(A._FREE)
    distances = [abs(a - c) + abs(b - d) for (a, b) in free for (c, d) in free if (a, b) != (c, d)]
    assert d0.truth["mean_distance"][0] == pytest.approx(np.mean(distances))
    assert d0.truth["task_success_rate"][0] == pytest.approx(c0.truth["success_rate"][0], rel=1e-12)
    # nearer goals: shorter tasks, more often solved by the same policy
    assert d0.truth["mean_distance"][4] < d0.truth["mean_distance"][0]
    assert d0.truth["task_success_rate"][4] > d0.truth["task_success_rate"][0]
    # from the horizon on every goal is in the block: a successful episode ends there
    (r0, r1), (c0_, c1) = GOAL_REGION
    ends = [e["steps"][-1]["observation"] for r in d0.rounds[4:] for e in r if e["success"]]
    assert ends and all(r0 <= int(o[1]) <= r1 and c0_ <= int(o[3]) <= c1 for o in ends)
    assert drift_horizon("L6-agent", None, 6) == 30
    with pytest.raises(ValueError, match="final_mass"):
        drift_agent_pair_probabilities(4, final_mass=1.5)
