"""Tests of the real-data pools (monitor.meta_evaluation.pools): generation 0's distribution, own seed stream, L4 disjointness.

Statistical checks use fixed seeds; each states its tolerance in standard errors next to the assertion.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitor.inputs.episodes import episodes_from_objects
from monitor.meta_evaluation import loop_agent as A
from monitor.meta_evaluation import loops as L
from monitor.meta_evaluation import ngram as N
from monitor.meta_evaluation import textloop as T
from monitor.meta_evaluation.pools import draw_pool, family_arguments, family_of, pool_capacity

L4_SMALL = dict(n_train=200, n_samples=600, n_audit=60, n_reference=300)


def test_family_of_strips_control_and_drift_prefixes():
    assert family_of("L1-d16-M100") == "L1-d16-M100"
    assert family_of("C2-L3-tau0.9") == "L3-tau0.9"
    assert family_of("D0-L5-wine") == "L5-wine"
    assert family_of("C0-L4-text") == "L4-text"
    assert family_of("D0-L6-agent") == family_of("C1-L6-agent") == "L6-agent"
    with pytest.raises(ValueError, match="loop_id"):
        family_of("D0-L4-text")  # no L4 drift control
    with pytest.raises(ValueError, match="loop_id"):
        family_of("L9-x")


def test_l1_pool_matches_generation0_moments():
    n = 20_000
    x = draw_pool("L1-d1-M20", 0, n)
    assert x.shape == (n, 1) and x.dtype == np.float64
    # N(0, 1): mean se 1/sqrt(n) = 0.0071, variance se sqrt(2/n) = 0.010; 4 se
    assert abs(x.mean()) < 4 / np.sqrt(n)
    assert abs(x.var(ddof=1) - 1.0) < 4 * np.sqrt(2 / n)
    y = draw_pool("C1-L1-d16-M100", 3, n)
    assert y.shape == (n, 16)
    assert np.max(np.abs(y.mean(axis=0))) < 4.5 / np.sqrt(n)  # max of 16 |N(0, se)|: 4.5 se
    # every covariance entry has se ~ 1/sqrt(n) (diagonal sqrt(2/n)): 6 se over 136 entries
    assert np.max(np.abs(np.cov(y, rowvar=False) - np.eye(16))) < 6 * np.sqrt(2 / n)


def test_pools_are_seeded_and_independent_of_reference_and_audits():
    a, b, c = draw_pool("L1-d1-M20", 0, 50), draw_pool("L1-d1-M20", 0, 50), draw_pool("L1-d1-M20", 1, 50)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    trace = L.gaussian_refit_loop(0, 2, n_audit=50, n_reference=50)
    rows = {tuple(r) for r in trace.reference} | {tuple(r) for rnd in trace.rounds for r in rnd}
    assert not any(tuple(r) in rows for r in a)
    # a drift or control id gives its family's pool, the same stream
    assert np.array_equal(draw_pool("D0-L1-d1-M20", 0, 50), a)
    assert np.array_equal(draw_pool("C0-L1-d1-M20", 0, 50, n_audit=7, n_reference=9), a)


def test_l2_pool_is_the_seeds_generation0_mixture():
    n = 20_000
    x = draw_pool("L2-K10-d8", 4, n, n_audit=100, n_reference=100)
    mixture = L.equal_weight_mixture(4, 10, 8)
    mean = mixture.weights @ mixture.means
    sd = np.sqrt(np.einsum("k,kjj->j", mixture.weights, mixture.covs)
                 + mixture.weights @ mixture.means ** 2 - mean ** 2)
    assert np.all(np.abs(x.mean(axis=0) - mean) < 4.5 * sd / np.sqrt(n))  # 4.5 se over 8 coordinates
    reference = L.gmm_mode_dropping_loop(4, 1, K=10, d=8, M=100, n_audit=5, n_reference=200).reference
    assert not np.isin(x, reference).any()
    assert not np.allclose(draw_pool("L2-K10-d8", 5, 20), x[:20])


def test_l3_pool_documents_follow_the_zipf_law():
    docs = draw_pool("C2-L3-tau1.0", 0, 2000, n_documents=50, tokens_per_document=20)
    assert len(docs) == 2000 and all(len(d.split(" ")) == 20 for d in docs)
    tokens = np.array([int(t[1:]) for d in docs for t in d.split(" ")])
    p = L.zipf_law(10_000, 1.5)
    n = tokens.size
    for rank in (1, 2, 3):  # binomial se sqrt(p (1 - p) / n); 4 se
        share = np.mean(tokens == rank)
        assert abs(share - p[rank - 1]) < 4 * np.sqrt(p[rank - 1] * (1 - p[rank - 1]) / n)
    assert draw_pool("L3-tau0.9", 0, 3) == draw_pool("L3-tau1.0", 0, 3)  # tau does not touch generation 0
    reference = L.zipf_tail_loop(0, 1, n_documents=2000, tokens_per_document=20).reference
    assert docs != reference


def test_l5_pool_has_the_tables_columns_and_generation0_marginals():
    n = 5000
    pool = draw_pool("L5-wine", 0, n, n_audit=10)
    real = L.load_real_table("wine")
    assert isinstance(pool, pd.DataFrame) and list(pool.columns) == list(real.columns) and pool.shape == (n, 13)
    copula = L.fit_gaussian_copula(real.to_numpy())
    a, b = copula.sorted_columns[:-1], copula.sorted_columns[1:]
    exact_mean = ((a + b) / 2).mean(axis=0)
    z = (pool.mean().to_numpy() - exact_mean) / (copula.marginal_sd() / np.sqrt(n))
    assert np.max(np.abs(z)) < 4.5  # 13 columns, 4.5 se
    assert ((pool >= real.min()) & (pool <= real.max())).all().all()  # the interpolated quantile stays in range
    c0_round = L.copula_tabular_loop(0, 1, n_audit=n, workflow="no_feedback").rounds[0]
    assert not np.isin(pool.to_numpy(), c0_round.to_numpy()).all(axis=1).any()


def test_l4_pool_is_disjoint_from_the_reference_and_sized_by_capacity():
    trace = T.c0_l4_text(0, 2, **L4_SMALL)
    pool = draw_pool("C0-L4-text", 0, 2000, **L4_SMALL)
    assert len(pool) == len(set(pool)) == 2000  # without replacement (the corpus is deduplicated)
    assert not set(pool) & set(trace.reference)
    corpus = set(N._encoded_wordnet().texts)
    assert set(pool) <= corpus
    # the same set C0 draws its rounds from: everything outside the reference
    assert all(set(r) <= corpus - set(trace.reference) for r in trace.rounds)
    assert draw_pool("L4-text", 0, 50, **L4_SMALL) == draw_pool("L4-text", 0, 50, **L4_SMALL)
    assert draw_pool("L4-text", 1, 50, **L4_SMALL) != draw_pool("L4-text", 0, 50, **L4_SMALL)
    assert pool_capacity("L4-text") == 19_000
    assert pool_capacity("C2-L4-text", **L4_SMALL) == 19_700
    assert pool_capacity("L1-d1-M20") is None and pool_capacity("D0-L5-wine") is None
    with pytest.raises(ValueError, match="size: expected at most 19700"):
        draw_pool("L4-text", 0, 19_701, **L4_SMALL)
    assert len(draw_pool("L4-text", 0, 19_700, **L4_SMALL)) == 19_700


def test_l4_pool_with_a_custom_corpus():
    corpus = [f"word{i} next{i % 3}" for i in range(30)]
    trace = T.l4_text(2, 1, n_train=10, n_samples=10, n_audit=3, n_reference=8, corpus=corpus)
    pool = draw_pool("L4-text", 2, 22, n_train=10, n_reference=8, corpus=corpus)
    assert pool_capacity("L4-text", n_train=10, n_reference=8, corpus=corpus) == 22
    assert sorted(pool) == sorted(set(trace.reference) ^ set(corpus))


def test_l6_pool_is_generation0_episodes_from_its_own_stream():
    n = 4000
    pool = draw_pool("L6-agent", 0, n, n_audit=50, n_reference=50)
    assert isinstance(pool, list) and len(pool) == n
    loaded = episodes_from_objects(pool, "pool")  # what the runner hands the pipeline
    assert len(loaded) == n and all(1 <= len(a) <= 20 for a in loaded.actions)
    # generation 0's exact success probability (0.474): binomial se sqrt(p (1 - p) / n) = 0.0079; 4 se
    p = float(A.agent_truth(A.initial_policy()[None])["success_rate"][0])
    assert abs(np.mean([e["success"] for e in pool]) - p) < 4 * np.sqrt(p * (1 - p) / n)
    # seeded, its own stream: not the reference nor an audit round of the same seed; controls share it
    small = draw_pool("L6-agent", 0, 30)
    assert draw_pool("C0-L6-agent", 0, 30) == draw_pool("D0-L6-agent", 0, 30, n_audit=7) == small
    assert draw_pool("L6-agent", 1, 30) != small
    trace = A.CONTROLS["C0-L6-agent"](0, 1, n_audit=30, n_reference=30)
    assert small != trace.reference and small != trace.rounds[0]
    assert all(len(e["steps"]) <= 4 for e in draw_pool("L6-agent", 0, 50, max_steps=4))
    with pytest.raises(ValueError, match="overrides: C2-L6-agent takes no 'n_documents'"):
        draw_pool("C2-L6-agent", 0, 3, n_documents=5)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="size"):
        draw_pool("L1-d1-M20", 0, 0)
    with pytest.raises(ValueError, match="seed"):
        draw_pool("L1-d1-M20", -1, 3)
    with pytest.raises(ValueError, match="overrides: L1-d1-M20 takes no 'n_documents'"):
        draw_pool("L1-d1-M20", 0, 3, n_documents=5)
    with pytest.raises(ValueError, match="loop_id"):
        pool_capacity("nope")
    assert family_arguments("D0-L3-tau0.9", {"n_documents": 4})["tau"] == 0.9
