"""Tests of the oracle e-CUSUM (monitor.meta_evaluation.oracle): exact log-likelihood ratios of the true models.

Statistical checks use fixed seeds; each states its tolerance in standard errors next to the assertion.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from monitor.meta_evaluation import loop_agent as A
from monitor.meta_evaluation import loops as L
from monitor.meta_evaluation import ngram as N
from monitor.meta_evaluation import ngram_truth as G
from monitor.meta_evaluation import textloop as T
from monitor.meta_evaluation.drift import DRIFT_CONTROLS, drift_direction
from monitor.meta_evaluation.oracle import (
    agent_log_ratios,
    copula_log_evalue,
    gaussian_logpdf,
    length_acceptance,
    marginal_log_measure,
    mixture_logpdf,
    ngram_log_probabilities,
    oracle_alarms,
    oracle_cusum,
    oracle_first_alarm,
    oracle_log_evalues,
    oracle_models,
    spread_log_evalues,
    wishart_log_ratio,
)
from monitor.engine.simulate import GaussianMixture

L4_SMALL = dict(n_train=200, n_samples=600, n_audit=60, n_reference=60)


# --- the e-CUSUM -------------------------------------------------------------------------------------------------


def test_cusum_path_and_alarms_by_hand():
    log_e = np.array([2.0, -5.0, 4.0, 3.5, -1.0, -np.inf, 1.0])
    # S: 2, -3, 0 + 4 = 4, 7.5, 6.5, -inf, 0 + 1 = 1
    assert oracle_cusum(log_e).tolist() == [2.0, -3.0, 4.0, 7.5, 6.5, -np.inf, 1.0]
    assert oracle_alarms(log_e, arl0=np.exp(7.0)).tolist() == [False, False, False, True, True, True, True]
    assert oracle_first_alarm(log_e, arl0=np.exp(7.0)) == 3
    assert oracle_first_alarm(log_e, arl0=np.exp(8.0)) is None
    assert oracle_first_alarm(np.array([0.0, np.inf, -np.inf])) == 1  # an impossible-under-p_0 round alarms
    assert oracle_first_alarm(np.full(3, np.log(1000.0))) == 0  # default arl0 = 1000: S_t >= log 1000
    with pytest.raises(ValueError, match="arl0"):
        oracle_alarms(log_e, arl0=1.0)
    with pytest.raises(ValueError, match="log_e"):
        oracle_cusum(np.array([0.0, np.nan]))


# --- densities ---------------------------------------------------------------------------------------------------


def test_gaussian_and_mixture_logpdf_match_scipy():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 3))
    cov, mean, x = a @ a.T + 0.5 * np.eye(3), rng.standard_normal(3), rng.standard_normal((5, 3))
    assert np.allclose(gaussian_logpdf(x, mean, cov), stats.multivariate_normal(mean, cov).logpdf(x))
    mixture = GaussianMixture(np.array([0.3, 0.7]), np.stack([mean, -mean]), np.stack([cov, np.eye(3)]))
    manual = np.log(0.3 * stats.multivariate_normal(mean, cov).pdf(x) + 0.7 * stats.multivariate_normal(-mean).pdf(x))
    assert np.allclose(mixture_logpdf(x, mixture), manual)


def test_marginal_measure_and_copula_evalue_by_hand():
    s0 = np.array([0.0, 1.0, 1.0, 2.0, 3.0])  # atom at 1 of mass 1/4; density 1/4 on [0, 1], [1, 2], [2, 3]
    sg = np.array([0.5, 1.0, 1.0, 2.0, 2.5])  # atom at 1 of mass 1/4; density 1/2, 1/4, 1/2
    mass, density = marginal_log_measure(s0, np.array([1.0, 0.2, 3.5]))
    assert np.allclose(np.exp(mass), [0.25, 0, 0]) and np.allclose(np.exp(density), [0.25, 0.25, 0.0])
    c0 = L.GaussianCopula(s0[:, None], np.eye(1))
    cg = L.GaussianCopula(sg[:, None], np.eye(1))
    # rows 0.7 (density 1/2 vs 1/4), 1.0 (atom 1/4 vs 1/4), 2.2 (1/2 vs 1/4): log e = 2 log 2
    assert np.isclose(copula_log_evalue(np.array([[0.7], [1.0], [2.2]]), cg, c0), 2 * np.log(2))
    assert copula_log_evalue(np.array([[0.2]]), cg, c0) == -np.inf  # p_g(0.2) = 0
    assert copula_log_evalue(np.array([[0.7]]), c0, c0) == 0.0
    # two columns: the mean of the columns' e-values, log((2 + 1/2) / 2)
    c0_2 = L.GaussianCopula(np.stack([s0, s0], axis=1), np.eye(2))
    cg_2 = L.GaussianCopula(np.stack([sg, s0], axis=1), np.eye(2))
    x = np.array([[0.7, 0.5], [1.0, 1.0]])
    assert np.isclose(copula_log_evalue(x, cg_2, c0_2), np.log((2 + 1) / 2))
    assert copula_log_evalue(np.array([[0.2, 1.5]]), c0_2, cg_2) == np.inf  # 0.2 is outside the second model
    with pytest.raises(ValueError, match="impossible under both"):
        copula_log_evalue(np.array([[3.5, 1.5]]), c0_2, cg_2)


def test_ngram_probabilities_and_length_cap_by_hand():
    enc = N.encode_corpus(["the cat sat", "the cat ran", "the dog sat"])
    model = N.fit_ngram(enc.sentences, len(enc.vocabulary))
    ids = {w: i for i, w in enumerate(enc.vocabulary)}
    sentence = np.array([ids["the"], ids["cat"], ids["sat"]])
    # P(the | <s>) = 1, P(cat | the) = 2/3, P(sat | cat) = 1/2, P(</s> | sat) = 1
    assert np.isclose(ngram_log_probabilities(model, [sentence])[0], np.log(2 / 3 * 1 / 2))
    # tau = 0.5 squares the counts: P(cat | the) = 4/5, P(sat | cat) = 1/2
    assert np.isclose(ngram_log_probabilities(model, [sentence], tau=0.5)[0], np.log(4 / 5 * 1 / 2))
    assert ngram_log_probabilities(model, [np.array([ids["sat"]])])[0] == -np.inf  # <s> sat unseen
    assert length_acceptance(model, 1.0, 3) == pytest.approx(1.0) and length_acceptance(model, 1.0, 2) == 0.0
    looping = N.fit_ngram([np.array([2]), np.array([2, 2])], n_types=3)  # after "a": </s> 2/3, "a" 1/3
    assert length_acceptance(looping, 1.0, 2) == pytest.approx(2 / 3 + 2 / 9)
    two = np.array([2, 2])
    assert np.isclose(ngram_log_probabilities(looping, [two], max_tokens=2)[0],
                      np.log(1 / 3 * 2 / 3) - np.log(8 / 9))
    assert ngram_log_probabilities(looping, [np.array([2, 2, 2])], max_tokens=2)[0] == -np.inf


# --- the e-value property: E_{p_0}[e] = 1 ------------------------------------------------------------------------


def test_gaussian_likelihood_ratio_has_mean_one_under_p0():
    rng = np.random.default_rng(0)
    n_rounds, size = 200_000, 2
    x = rng.standard_normal((n_rounds * size, 1))
    log_e = (gaussian_logpdf(x, np.array([0.3]), np.array([[0.8]]))
             - gaussian_logpdf(x, np.zeros(1), np.eye(1))).reshape(n_rounds, size).sum(axis=1)
    e = np.exp(log_e)
    assert abs(e.mean() - 1.0) < 4 * e.std() / np.sqrt(n_rounds)  # se ~ 0.001
    assert np.mean(log_e) < 0  # and it is no e-value for a change: E log e = -2 KL < 0 under p_0


def test_wishart_ratio_matches_scipy_ignores_the_mean_and_has_mean_one_under_p0():
    rng = np.random.default_rng(4)
    cov_0 = np.array([[1.0, 0.3], [0.3, 0.8]])
    cov_g = np.array([[0.5, 0.1], [0.1, 0.6]])
    x = rng.multivariate_normal([0.0, 0.0], cov_0, size=12)
    centred = x - x.mean(axis=0)
    scatter = centred.T @ centred
    expected = stats.wishart(11, cov_g).logpdf(scatter) - stats.wishart(11, cov_0).logpdf(scatter)
    assert wishart_log_ratio(x, cov_g, cov_0) == pytest.approx(expected, rel=1e-10)
    assert wishart_log_ratio(x + 5.0, cov_g, cov_0) == pytest.approx(expected, rel=1e-10)  # blind to the mean
    # an e-value under Sigma_0 (1-d rounds of 3)
    rounds = rng.standard_normal((20_000, 3, 1))
    e = np.exp([wishart_log_ratio(r, np.array([[0.7]]), np.eye(1)) for r in rounds])
    assert abs(e.mean() - 1.0) < 4 * e.std() / np.sqrt(e.size)


def test_collapse_oracle_bets_only_on_lost_spread_and_only_on_gaussian_loops():
    trace = L.gaussian_refit_loop(2, 12, n_audit=40, n_reference=40)
    log_e = spread_log_evalues(trace)
    covs = [cov for _, cov in oracle_models(trace)]
    grown = np.array([np.trace(covs[g]) >= np.trace(covs[0]) for g in trace.generations])
    assert (log_e[grown] == 0).all() and (log_e[~grown] != 0).all()
    drift = DRIFT_CONTROLS["D0-L1-d1-M20"](0, 6, 1)  # a pure shift at constant spread: no bet, no evidence
    assert spread_log_evalues(drift).tolist() == [0.0] * len(drift.rounds)
    assert spread_log_evalues(L.LOOPS["L2-K10-d8"](0, 2, 1, n_audit=30, n_reference=30)) is None



def test_collapse_oracle_is_never_nan_on_a_numerically_singular_late_covariance():
    # L1-d16-M1000, seed 2: late covariances have eigenvalues at the floor in rotated directions; an explicit
    # inverse times the round's scatter overflowed to inf - inf = NaN there and stopped a full benchmark run.
    from monitor.meta_evaluation import runner as R

    settings = R.default_settings(False, 8)
    trace = R.generate_trace("L1-d16-M1000", 2, settings)
    log_e = spread_log_evalues(trace)
    assert not np.isnan(log_e).any() and log_e.shape == (len(trace.rounds),)
    assert oracle_alarms(log_e).any()  # and the oracle still alarms: the spread collapsed


def test_zipf_oracle_pipeline_has_mean_one_under_p0():
    trace = L.zipf_tail_loop(0, 2, V=50, T=200, n_documents=2, tokens_per_document=2)
    p = oracle_models(trace)
    assert np.array_equal(p[2], L.zipf_refit_distributions(0, 2, V=50, T=200)[2]) and (p[2] == 0).any()
    rng = np.random.default_rng(1)
    vocabulary = np.array([f"w{i}" for i in range(1, 51)])
    rounds = [L._render_documents(rng.choice(50, size=(1, 2), p=p[0]), vocabulary) for _ in range(20_000)]
    fake = dataclasses.replace(trace, rounds=rounds, generations=np.full(len(rounds), 2))
    e = np.exp(oracle_log_evalues(fake))
    assert abs(e.mean() - 1.0) < 4 * e.std() / np.sqrt(e.size)


def test_copula_marginal_evalue_has_mean_one_under_p0():
    c0 = L.fit_gaussian_copula(np.array([[0, 0], [1, 1], [1, 2], [2, 2], [3, 1.0]]))
    cg = L.fit_gaussian_copula(np.array([[0.5, 0], [1, 1], [1, 1], [2, 1], [2.5, 2.0]]))  # atoms within c0's
    x = c0.sample(15_000, np.random.default_rng(0)).reshape(5000, 3, 2)
    e = np.exp([copula_log_evalue(rows, cg, c0) for rows in x])
    assert abs(e.mean() - 1.0) < 4 * e.std() / np.sqrt(e.size)  # se ~ 0.016
    # exactly for L5's generation-1 marginals: E_{p_0} r_j = 1 column by column (midpoint rule in u)
    models = L.copula_refit_models(0, 1)
    m = models[0].sorted_columns.shape[0]
    position = (np.arange(1_000_000) + 0.5) / 1_000_000 * (m - 1)
    k, frac = np.floor(position).astype(int), position % 1
    for j in range(13):
        s0, sg = models[0].sorted_columns[:, j], models[1].sorted_columns[:, j]
        values = s0[k] + frac * (s0[k + 1] - s0[k])
        mass_g, dens_g = marginal_log_measure(sg, values)
        mass_0, dens_0 = marginal_log_measure(s0, values)
        atom = (mass_g > -np.inf) | (mass_0 > -np.inf)
        with np.errstate(invalid="ignore"):
            ratio = np.exp(np.where(atom, mass_g - mass_0, dens_g - dens_0))
        assert abs(ratio.mean() - 1.0) < 2e-3


def test_length_conditioned_ngram_ratio_has_mean_one_under_p0():
    enc = N.encode_corpus(["a b", "a a b", "b a", "a b a b a", "b", "a"])
    model0 = N.fit_ngram(enc.sentences, len(enc.vocabulary))
    sample = N.sample_ngram(model0, 8, np.random.default_rng(3), tau=0.7, max_tokens=3)
    model_g = N.fit_ngram(sample, len(enc.vocabulary))
    sentences = N.sample_ngram(model0, 100_000, np.random.default_rng(4), tau=0.7, max_tokens=3)
    log_e = ngram_log_probabilities(model_g, sentences, 0.7, 3) - ngram_log_probabilities(model0, sentences, 0.7, 3)
    e = np.exp(log_e)
    assert abs(e.mean() - 1.0) < 4 * e.std() / np.sqrt(e.size)  # se ~ 0.0026
    unconditioned = np.exp(ngram_log_probabilities(model_g, sentences, 0.7)
                           - ngram_log_probabilities(model0, sentences, 0.7))
    assert abs(unconditioned.mean() - 1.0) > 10 * e.std() / np.sqrt(e.size)  # the length cap matters here


# --- traces ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("run_id, sizes", [
    ("C0-L1-d16-M20", dict(n_audit=20, n_reference=5)),
    ("C0-L2-K10-d8", dict(n_audit=20, n_reference=5)),
    ("C0-L3-tau0.9", dict(n_documents=20)),
    ("C0-L5-wine", dict(n_audit=20)),
    ("C0-L4-text", L4_SMALL),
])
def test_c0_log_evalues_are_exactly_zero_and_never_alarm(run_id, sizes):
    log_e = oracle_log_evalues(run_id, 0, 6, 2, **sizes)
    assert log_e.tolist() == [0.0] * 4
    assert not oracle_alarms(log_e).any() and oracle_first_alarm(log_e) is None


def test_l1_log_evalue_is_a_sum_of_normal_log_densities():
    trace = L.gaussian_refit_loop(0, 40, 1, d=1, M=20, n_audit=50, n_reference=5)
    means, covs = L.gaussian_refit_parameters(0, 40, d=1, M=20)
    log_e = oracle_log_evalues("L1-d1-M20", 0, 40, 1, n_audit=50, n_reference=5)
    assert np.array_equal(log_e, oracle_log_evalues(trace))
    for g in (0, 7, 40):
        x = trace.rounds[g][:, 0]
        by_hand = np.sum(stats.norm.logpdf(x, means[g, 0], np.sqrt(covs[g, 0, 0])) - stats.norm.logpdf(x))
        assert np.isclose(log_e[g], by_hand, rtol=1e-10, atol=1e-10)
    assert log_e[0] == 0.0


def test_l1_oracle_alarms_no_later_than_the_onset():
    on_time = 0
    for seed in range(5):
        trace = L.gaussian_refit_loop(seed, 40, 1, d=1, M=20, n_audit=200, n_reference=5)
        alarm = oracle_first_alarm(oracle_log_evalues(trace))
        assert alarm is not None
        onset = trace.onset if trace.onset is not None else 40
        on_time += trace.generations[alarm] <= onset
    assert on_time >= 4  # measured: 5 of 5 (alarms at generations 1-4, onsets 4-31)


def test_drift_oracle_matches_the_kullback_leibler_growth():
    n = 1000
    trace = DRIFT_CONTROLS["D0-L1-d16-M20"](0, 60, 10, n_audit=n, n_reference=5)
    log_e = oracle_log_evalues(trace)
    # x ~ N(d, I): log e = sum_i (d . x_i - |d|^2 / 2), mean n s^2 / 2, sd sqrt(n) s; 4 sd
    s = trace.truth["shift_sd"][trace.generations]
    assert np.all(np.abs(log_e - n * s ** 2 / 2) <= 4 * np.sqrt(n) * s)
    assert log_e[-1] > 1000 and oracle_first_alarm(log_e) is not None
    means = oracle_models(trace)
    assert np.allclose(means[60][0], 1.5 * drift_direction(0, 16))
    zipf = oracle_log_evalues("D0-L3-tau1.0", 0, 30, 10, n_documents=50)
    assert zipf[0] == 0.0 and np.all(np.isfinite(zipf)) and np.all(zipf[1:] > 0)
    tabular = oracle_log_evalues("D0-L5-wine", 0, 8, 4, n_audit=50)  # rows leave the bounded support
    assert tabular.tolist() == [0.0, np.inf, np.inf]


def test_numeric_loops_and_controls_give_finite_positive_evidence():
    gmm = oracle_log_evalues("L2-K10-d8", 0, 4, 2, M=200, n_audit=100, n_reference=5)
    assert gmm[0] == 0.0 and np.all(np.isfinite(gmm)) and np.all(gmm[1:] > 0)
    models = oracle_models(L.gmm_mode_dropping_loop(0, 2, M=200, n_audit=3, n_reference=3))
    x = models[2].sample(5, np.random.default_rng(0))
    assert np.isclose(oracle_log_evalues(dataclasses.replace(
        L.gmm_mode_dropping_loop(0, 2, M=200, n_audit=3, n_reference=3), rounds=[x], generations=np.array([2])))[0],
        np.sum(mixture_logpdf(x, models[2]) - mixture_logpdf(x, models[0])))
    for run_id in ("L5-wine", "C1-L5-wine", "C2-L5-wine"):
        log_e = oracle_log_evalues(run_id, 0, 8, 4, n_audit=50)
        assert log_e[0] == 0.0 and np.all(np.isfinite(log_e)), run_id
    tau = oracle_log_evalues("C2-L3-tau0.9", 0, 3, 1, n_documents=30, V=200, T=2000)
    assert np.all(np.isfinite(tau)) and tau[0] == 0.0


def test_l4_oracle_from_trace_and_id_and_its_support_checks():
    trace = T.l4_text(0, 4, **L4_SMALL)
    log_e = oracle_log_evalues(trace)
    assert np.array_equal(log_e, oracle_log_evalues("L4-text", 0, 4, 1, **L4_SMALL))
    assert log_e[0] == 0.0 and np.all(np.isfinite(log_e)) and np.all(log_e[1:] > 0)
    # by hand for one round: length-conditioned sentence log-probabilities at the run's tau
    _, models = T.run_with_models("L4-text", 0, 4, **L4_SMALL)
    index = {w: i for i, w in enumerate(N._encoded_wordnet().vocabulary)}
    sentences = [np.array([index[w] for w in text.split(" ")]) for text in trace.rounds[3]]
    by_hand = sum(ngram_log_probabilities(models[3], sentences, 1.0, 60)
                  - ngram_log_probabilities(models[0], sentences, 1.0, 60))
    assert np.isclose(log_e[3], by_hand)
    accumulate = oracle_log_evalues("C1-L4-text", 0, 2, 1, **L4_SMALL)  # support kept: finite
    assert np.all(np.isfinite(accumulate))
    fresh = oracle_log_evalues("C2-L4-text", 0, 3, 1, **L4_SMALL)  # fresh real glosses leave p_0's support
    assert fresh[0] == 0.0 and np.isposinf(fresh[1:]).any()
    hot = oracle_log_evalues("L4-text", 0, 2, 1, tau=0.8, **L4_SMALL)
    assert np.all(np.isfinite(hot)) and not np.allclose(hot, log_e[:3])
    with pytest.raises(ValueError, match="does not match"):
        oracle_log_evalues(dataclasses.replace(trace, rounds=trace.rounds[::-1]))


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="seed, n_generations"):
        oracle_log_evalues("L1-d1-M20")
    with pytest.raises(ValueError, match="trace_or_run_id"):
        oracle_log_evalues("L9-nope", 0, 2)
    with pytest.raises(ValueError, match="seed"):
        oracle_log_evalues(L.gaussian_refit_loop(0, 2, n_audit=2, n_reference=2), seed=3)
    with pytest.raises(ValueError, match="overrides"):
        oracle_models(L.gaussian_refit_loop(0, 2, n_audit=2, n_reference=2), corpus=["a"])


def test_run_with_models_returns_the_registry_trace_and_its_models():
    trace, models = T.run_with_models("C2-L4-text", 1, 3, 2, **L4_SMALL)
    reference = T.c2_l4_text(1, 3, 2, **L4_SMALL)
    assert trace.rounds == reference.rounds and trace.reference == reference.reference
    assert all(np.array_equal(trace.truth[k], reference.truth[k]) for k in reference.truth)
    assert len(models) == 4
    assert [float(G.bigram_keys(m).size) for m in models] == reference.truth["distinct_bigrams"].tolist()
    _, frozen = T.run_with_models("C0-L4-text", 1, 3, **L4_SMALL)
    assert all(m is frozen[0] for m in frozen)
    with pytest.raises(ValueError, match="overrides"):
        T.run_with_models("L4-text", 0, 2, source="real")
    with pytest.raises(ValueError, match="run_id"):
        T.run_with_models("D0-L4-text", 0, 2)


# --- L6-agent: the policies' likelihood ratio ----------------------------------------------------------------------

A_SMALL = dict(n_samples=40, n_audit=12, n_reference=10)


def test_agent_log_ratio_by_hand():
    p0 = A.initial_policy()
    pg = p0.copy()
    east_ok = A._context((5, 0), (5, 3), False)  # goal east, last step ok
    pg[east_ok] = [0.0, 0.0, 0.8, 0.0, 0.2]  # east 0.8, wait 0.2
    # (5, 0) -> (5, 3) by east, wait, east, east: four steps in context "goal east, last step ok"
    east, wait = A.ACTIONS.index("east"), A.ACTIONS.index("wait")
    contexts = np.array([[east_ok] * 4, [east_ok, -1, -1, -1]])
    actions = np.array([[east, wait, east, east], [A.ACTIONS.index("north"), -1, -1, -1]])
    expected = 3 * np.log(0.8 / p0[east_ok, east]) + np.log(0.2 / p0[east_ok, wait])
    log_r = agent_log_ratios(contexts, actions, pg, p0)
    assert log_r[0] == pytest.approx(expected, rel=1e-12)
    assert log_r[1] == -np.inf  # north has probability 0 under pg: likelihood ratio 0
    # a round is the sum over its episodes; one impossible episode makes it -inf (the e-CUSUM restarts)
    assert oracle_cusum(np.array([5.0, log_r.sum(), 2.0])).tolist() == [5.0, -np.inf, 2.0]
    # the reverse: an action of probability 0 under p_0 is +inf; under both an error
    assert agent_log_ratios(contexts[1:], actions[1:], p0, pg).tolist() == [np.inf]
    with pytest.raises(ValueError, match="probability 0 under both"):
        agent_log_ratios(contexts[1:], actions[1:], pg, pg)
    with pytest.raises(ValueError, match="contexts, actions"):
        agent_log_ratios(contexts, actions[:, :2], pg, p0)


def _replayed_log_ratio(episode: dict, start: tuple, goal: tuple, policy_g, policy_0) -> float:
    """An episode's log-likelihood ratio, replayed step by step through the environment (no vectorised code)."""
    cell, bumped, total = start, False, 0.0
    for step in episode["steps"]:
        context, action = A._context(cell, goal, bumped), A.ACTIONS.index(step["action"])
        total += np.log(policy_g[context, action]) - np.log(policy_0[context, action])
        cell, error = A._move(cell, action)
        assert step["observation"] == f"r{cell[0]}c{cell[1]}" and (error is None) == (step["error"] is None)
        bumped = error is not None
    assert episode["success"] == (cell == goal)
    return total


def test_agent_oracle_is_the_replayed_likelihood_ratio_of_the_true_policies():
    trace = A.agent_loop(3, 6, 2, **A_SMALL)
    log_e = oracle_log_evalues(trace)
    policies = oracle_models(trace)
    assert np.array_equal(np.stack(policies), A.agent_policies(3, 6, n_samples=40))
    assert log_e[0] == 0.0 and np.isfinite(log_e).all()  # the loop's own rounds never take a vanished action
    for r, (g, episodes) in enumerate(zip(trace.generations, trace.rounds)):
        sim = A._simulate(policies[g], len(episodes), L._audit_stream(3, g), 20)  # for the hidden start and goal
        manual = sum(_replayed_log_ratio(e, A._FREE[s], A._FREE[z], policies[g], policies[0])
                     for e, s, z in zip(episodes, sim["start"], sim["goal"]))
        assert log_e[r] == pytest.approx(manual, rel=1e-9, abs=1e-9)
    # the same from the run id; C0 is zeros
    assert np.array_equal(oracle_log_evalues("L6-agent", 3, 6, 2, **A_SMALL), log_e)
    assert oracle_log_evalues("C0-L6-agent", 0, 3, **A_SMALL).tolist() == [0.0] * 4
    assert np.isfinite(oracle_log_evalues("C2-L6-agent", 0, 3, **A_SMALL)).all()
    # a trace whose rounds are not its regeneration is refused
    swapped = dataclasses.replace(trace, rounds=[trace.rounds[1], trace.rounds[0], *trace.rounds[2:]])
    with pytest.raises(ValueError, match="does not match its regeneration"):
        oracle_log_evalues(swapped)


def test_agent_oracle_on_rounds_of_another_policy_can_be_zero():
    # Generation 0's episodes judged by a collapsed policy (M = 20: actions vanish within a few generations):
    # an episode taking a vanished action has likelihood ratio 0, and the round's log e-value is -inf.
    policies = A.agent_policies(0, 10, n_samples=20)
    assert (policies[10] == 0).any()
    sim = A._simulate(policies[0], 300, np.random.default_rng(0), 20)
    log_r = agent_log_ratios(sim["contexts"], sim["actions"], policies[10], policies[0])
    assert np.isneginf(log_r).any() and not np.isposinf(log_r).any()
    assert oracle_alarms(np.array([log_r.sum()] * 3)).tolist() == [False] * 3


def test_agent_likelihood_ratio_has_mean_one_under_p0():
    policies = A.agent_policies(1, 1, n_samples=400)  # generation 1: sharpened by the success filter
    assert not np.allclose(policies[1], policies[0])
    sim = A._simulate(policies[0], 200_000, np.random.default_rng(2), 20)
    e = np.exp(agent_log_ratios(sim["contexts"], sim["actions"], policies[1], policies[0]))
    assert abs(e.mean() - 1.0) < 4 * e.std() / np.sqrt(e.size)


def test_agent_drift_oracle_is_the_start_goal_ratio():
    trace = DRIFT_CONTROLS["D0-L6-agent"](0, 6, 1, n_audit=20, n_reference=10, horizon=4)
    log_e = oracle_log_evalues(trace)
    assert log_e[0] == 0.0
    # from the horizon on every goal is in the centre block: each episode's ratio is (1/330) / (1/930)
    assert np.allclose(log_e[4:], 20 * np.log(930 / 330), rtol=1e-12)
    assert all(policy is not None and np.array_equal(policy, A.initial_policy()) for policy in oracle_models(trace))
