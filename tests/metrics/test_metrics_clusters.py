"""Tests of seeded k-means and tail/mode coverage (metrics_core.clusters)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats
import torch

from metrics_core.bootstrap import bootstrap_counts
import metrics_core.kmeans as K
from metrics_core.clusters import (
    ClusterReference,
    expected_tail_coverage,
    fit_cluster_reference,
    jensen_shannon_divergence,
    tail_clusters,
    tail_mode_coverage,
)
from metrics_core.kmeans import assign_clusters, kmeans, kmeans_plusplus_init

Z975 = float(scipy.stats.norm.ppf(0.975))

# --------------------------------------------------------------------------
# Naive reference implementations (float64 numpy, full N x K distance matrices).
# --------------------------------------------------------------------------


def naive_sqdist(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    return ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=-1)


def naive_assign(x, c) -> np.ndarray:
    return naive_sqdist(x, c).argmin(axis=1)  # argmin: first (smallest id) on ties


def sklearn_kmeanspp(x: np.ndarray, k: int, random_state: np.random.RandomState) -> list[int]:
    """The documented seeding: scikit-learn's greedy k-means++ on the mean-centred float64 rows."""
    from sklearn.cluster import kmeans_plusplus

    x = np.asarray(x, dtype=np.float64)
    return kmeans_plusplus(x - x.mean(axis=0), k, random_state=random_state)[1].tolist()


def single_trial_kmeanspp(x: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
    """The original k-means++ (one D^2 draw per centre), for comparison."""
    chosen = [int(rng.integers(len(x)))]
    d2 = ((x - x[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(1, k):
        i = int(np.searchsorted(np.cumsum(d2), rng.random() * d2.sum(), side="right"))
        chosen.append(min(i, int(np.flatnonzero(d2 > 0)[-1])))
        d2 = np.minimum(d2, ((x - x[chosen[-1]]) ** 2).sum(axis=1))
    return chosen


def naive_lloyd(x: np.ndarray, init: np.ndarray, max_iter: int, tol: float):
    """Lloyd's iterations with the documented stopping and empty-cluster rules."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    c = np.array(init, dtype=np.float64)
    k = len(c)
    tol_abs = tol * np.mean(np.var(x, axis=0))
    n_iter, converged, reseeded = max_iter, False, False
    for it in range(max_iter):
        d = naive_sqdist(x, c)
        labels = d.argmin(axis=1)
        counts = np.bincount(labels, minlength=k)
        new = c.copy()
        for j in range(k):
            if counts[j]:
                new[j] = x[labels == j].mean(axis=0)
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            reseeded = True
            d2 = d[np.arange(n), labels]
            order = sorted(range(n), key=lambda i: (-d2[i], i))
            cnt = counts.copy()
            moved = np.zeros(n, dtype=bool)
            pos = 0
            for e in empty:
                while cnt[labels[order[pos]]] < 2:
                    pos += 1
                i = order[pos]
                pos += 1
                donor = labels[i]
                cnt[donor] -= 1
                moved[i] = True
                new[donor] = x[(labels == donor) & ~moved].mean(axis=0)
                new[e] = x[i]
        shift = ((new - c) ** 2).sum()
        c = new
        if shift <= tol_abs:
            n_iter, converged = it + 1, True
            break
    labels = naive_assign(x, c)
    inertia = naive_sqdist(x, c)[np.arange(n), labels].sum()
    return c, labels, inertia, n_iter, converged, reseeded


def naive_jsd(p, q) -> float:
    p = np.asarray(p, dtype=np.float64) / np.sum(p)
    q = np.asarray(q, dtype=np.float64) / np.sum(q)
    m = (p + q) / 2
    total = 0.0
    for a in (p, q):
        for ak, mk in zip(a, m):
            if ak > 0:
                total += 0.5 * ak * math.log2(ak / mk)
    return total



# --------------------------------------------------------------------------
# Hand-built blobs: sizes 50, 30, 15, 5 (N = 100), far apart in 2-D.
# --------------------------------------------------------------------------

BLOB_MEANS = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]])
BLOB_SIZES = (50, 30, 15, 5)


def _blobs(sizes, seed: int, means=BLOB_MEANS, scale=0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([m + scale * rng.standard_normal((s, means.shape[1])) for m, s in zip(means, sizes)])


@pytest.fixture(scope="module")
def blobs():
    ref = _blobs(BLOB_SIZES, seed=0)
    rc = fit_cluster_reference(ref, n_clusters=4, tail_mass=0.1, seed=0)
    # cluster id of each blob (blob b's rows all share one id)
    starts = np.cumsum((0,) + BLOB_SIZES)
    labels = assign_clusters(ref, rc.centres)
    blob_ids = [int(labels[starts[b]]) for b in range(4)]
    for b in range(4):
        assert (labels[starts[b] : starts[b + 1]] == blob_ids[b]).all()
    assert sorted(blob_ids) == [0, 1, 2, 3]
    return ref, rc, blob_ids


def test_blob_shares_counts_and_centres(blobs):
    ref, rc, ids = blobs
    # shares 50/100, 30/100, 15/100, 5/100, in blob order
    assert rc.shares[ids].tolist() == [0.5, 0.3, 0.15, 0.05]
    assert rc.counts[ids].tolist() == [50, 30, 15, 5]
    assert rc.shares.sum() == pytest.approx(1.0, abs=1e-15)
    starts = np.cumsum((0,) + BLOB_SIZES)
    for b in range(4):
        np.testing.assert_allclose(rc.centres[ids[b]], ref[starts[b] : starts[b + 1]].mean(axis=0), rtol=0, atol=1e-12)
    assert rc.n_clusters == 4 and rc.dim == 2 and rc.n_reference == 100 and rc.p_ref is rc.shares
    # tail_mass 0.1: cumulative shares sorted ascending 0.05, 0.20, ... -> only the 5-blob
    assert rc.tail_ids.tolist() == [ids[3]]
    assert rc.reference_tail_share == 0.05


@pytest.mark.parametrize(
    "tail_mass,blobs_in_tail",
    [
        (0.01, [3]),  # even the rarest (0.05) exceeds 0.01: take it alone
        (0.05, [3]),  # 0.05 <= 0.05; 0.05 + 0.15 = 0.20 > 0.05
        (0.1, [3]),
        (0.2, [2, 3]),  # 0.05 + 0.15 = 0.20 <= 0.2 (boundary included)
        (0.25, [2, 3]),  # + 0.30 = 0.50 > 0.25
        (0.5, [1, 2, 3]),  # 0.05 + 0.15 + 0.30 = 0.50 <= 0.5
        (0.99, [1, 2, 3]),  # + 0.5 = 1.0 > 0.99
    ],
)
def test_blob_tail_sets(blobs, tail_mass, blobs_in_tail):
    _, rc, ids = blobs
    assert tail_clusters(rc.counts, tail_mass).tolist() == sorted(ids[b] for b in blobs_in_tail)


def test_round_missing_one_blob_exact_numbers(blobs):
    _, rc, ids = blobs
    # Round: 12 points near blob A, 6 near B, 2 near C, none near D (M = 20).
    rnd = _blobs((12, 6, 2, 0), seed=5)
    res = tail_mode_coverage(rc, rnd, tail_mass=0.2)  # tail = {C, D}, reference tail mass 0.20
    assert res.round_histogram[ids].tolist() == [12, 6, 2, 0]
    assert res.tail_ids.tolist() == sorted([ids[2], ids[3]])
    assert res.tail_coverage.value == 0.5  # C hit, D missed: 1/2
    assert res.tail_mass_ratio.value == pytest.approx(0.5, abs=1e-15)  # (2/20) / 0.20
    assert res.modes_hit.value == 3.0
    assert res.mode_coverage.value == 0.75  # 3 / 4
    # p = (.5, .3, .15, .05), q = (.6, .3, .1, 0), m = (.55, .3, .125, .025)
    kl_p = 0.5 * math.log2(0.5 / 0.55) + 0.3 * 0.0 + 0.15 * math.log2(0.15 / 0.125) + 0.05 * math.log2(2.0)
    kl_q = 0.6 * math.log2(0.6 / 0.55) + 0.3 * 0.0 + 0.1 * math.log2(0.1 / 0.125)
    assert res.cluster_jsd.value == pytest.approx(0.5 * kl_p + 0.5 * kl_q, rel=1e-12)
    assert res.cluster_jsd.value == pytest.approx(0.0319, abs=1e-4)  # 0.5 * (0.0207 + 0.0431)
    # Expected tail coverage with no collapse at M = 20: mean(1 - .85**20, 1 - .95**20)
    assert res.expected_tail_coverage == pytest.approx(((1 - 0.85**20) + (1 - 0.95**20)) / 2, rel=1e-12)
    assert res.expected_mode_coverage == pytest.approx(
        np.mean([1 - 0.5**20, 1 - 0.7**20, 1 - 0.85**20, 1 - 0.95**20]), rel=1e-12
    )
    # Default tail (0.1): only D, which is missed
    res01 = tail_mode_coverage(rc, rnd)
    assert (res01.tail_coverage.value, res01.tail_mass_ratio.value) == (0.0, 0.0)
    # No estimates get intervals with n_boot = 0
    assert all(e.ci_low is None and e.std_error is None for e in res.metrics().values())


def test_over_represented_tail_gives_ratio_above_one(blobs):
    _, rc, ids = blobs
    rnd = _blobs((2, 2, 2, 4), seed=6)  # M = 10, D holds 4/10 against 0.05
    res = tail_mode_coverage(rc, rnd)
    assert res.tail_mass_ratio.value == pytest.approx(8.0, rel=1e-14)  # 0.4 / 0.05
    assert res.tail_coverage.value == 1.0 and res.modes_hit.value == 4.0


def test_collapsed_round_on_one_mode(blobs):
    ref, rc, ids = blobs
    rnd = np.repeat(ref[:1], 30, axis=0)  # every sample is the same point of blob A
    res = tail_mode_coverage(rc, rnd, tail_mass=0.5)
    assert res.modes_hit.value == 1.0 and res.mode_coverage.value == 0.25
    assert res.tail_coverage.value == 0.0 and res.tail_mass_ratio.value == 0.0
    # q = (1, 0, 0, 0): JSD = 0.5 * log2(1/0.75) + 0.5 * sum_{k>1} p_k log2(p_k / (p_k/2)) ... by hand:
    p = np.array([0.5, 0.3, 0.15, 0.05])
    hand = 0.5 * (0.5 * math.log2(0.5 / 0.75) + 0.5 * 1.0) + 0.5 * (1.0 * math.log2(1.0 / 0.75))
    assert res.cluster_jsd.value == pytest.approx(hand, rel=1e-12)
    assert res.cluster_jsd.value == pytest.approx(naive_jsd(p, [1, 0, 0, 0]), rel=1e-12)


# --------------------------------------------------------------------------
# Identities
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed,n,d,k", [(0, 200, 3, 8), (1, 150, 16, 20), (2, 300, 2, 5)])
def test_round_equal_to_reference_is_perfect(seed, n, d, k):
    ref = np.random.default_rng(seed).standard_normal((n, d))
    rc = fit_cluster_reference(ref, n_clusters=k, tail_mass=0.3, seed=seed)
    for rnd in (ref, ref[np.random.default_rng(seed + 10).permutation(n)], ref.astype(np.float32)):
        res = tail_mode_coverage(rc, rnd)
        if rnd.dtype == np.float64:
            assert res.cluster_jsd.value == 0.0
            assert res.tail_mass_ratio.value == 1.0
            assert res.round_histogram.tolist() == rc.counts.tolist()
        else:  # float32 rounding may move a boundary point; still essentially perfect
            assert res.cluster_jsd.value < 1e-3
        assert res.tail_coverage.value == 1.0
        assert res.mode_coverage.value == 1.0
        assert res.modes_hit.value == float(k)


def test_one_call_equals_fit_then_metrics():
    ref = np.random.default_rng(3).standard_normal((120, 4))
    rnd = np.random.default_rng(4).standard_normal((60, 4)) * 0.5
    rc = fit_cluster_reference(ref, n_clusters=6, tail_mass=0.2, seed=7)
    a = tail_mode_coverage(rc, rnd, n_boot=20, seed=7)
    b = tail_mode_coverage(ref, rnd, n_clusters=6, tail_mass=0.2, n_boot=20, seed=7)
    assert a.metrics() == b.metrics()
    assert a.round_histogram.tolist() == b.round_histogram.tolist()
    # Overriding tail_mass on fitted clusters recomputes only the tail set.
    c = tail_mode_coverage(rc, rnd, tail_mass=0.5)
    assert c.tail_ids.tolist() == tail_clusters(rc.counts, 0.5).tolist()
    assert c.cluster_jsd.value == a.cluster_jsd.value and c.cluster_jsd.std_error is None


# --------------------------------------------------------------------------
# Jensen-Shannon divergence
# --------------------------------------------------------------------------


def test_jsd_hand_values():
    assert jensen_shannon_divergence([1, 0], [0, 1]) == 1.0  # disjoint supports: 1 bit
    assert jensen_shannon_divergence([0.25, 0.75], [1, 3]) == 0.0  # normalised first
    # p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4)
    # KL(p||m) = log2(4/3); KL(q||m) = 1/2 log2(2/3) + 1/2 log2(2)
    hand = 0.5 * math.log2(4 / 3) + 0.5 * (0.5 * math.log2(2 / 3) + 0.5)
    assert jensen_shannon_divergence([1, 0], [1, 1]) == pytest.approx(hand, rel=1e-14)


@pytest.mark.parametrize("seed,k", [(0, 4), (1, 10), (2, 50), (3, 1000)])
def test_jsd_matches_scipy_and_naive(seed, k):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k))
    q = rng.integers(0, 5, size=k).astype(float)
    q[0] += 1  # positive sum
    p[rng.random(k) < 0.2] = 0.0  # zeros on both sides
    p[1] += 0.1
    ours = jensen_shannon_divergence(p, q)
    assert ours == pytest.approx(scipy.spatial.distance.jensenshannon(p, q, base=2) ** 2, rel=1e-9, abs=1e-15)
    assert ours == pytest.approx(naive_jsd(p, q), rel=1e-12, abs=1e-15)
    assert 0.0 <= ours <= 1.0
    assert ours == pytest.approx(jensen_shannon_divergence(q, p), rel=1e-14)


# --------------------------------------------------------------------------
# Tail set
# --------------------------------------------------------------------------


def test_tail_clusters_ties_and_empty_clusters():
    # shares 0.05, 0.05, 0.9: ties by id -> cluster 0 first
    assert tail_clusters([5, 5, 90], 0.05).tolist() == [0]
    assert tail_clusters([5, 5, 90], 0.1).tolist() == [0, 1]
    assert tail_clusters([5, 5, 90], 0.099).tolist() == [0]
    # Empty clusters sort first; a tail of empty clusters only is extended to the
    # first cluster with mass (ties by id: cluster 2 before 3).
    assert tail_clusters([0, 0, 50, 50], 0.1).tolist() == [0, 1, 2]
    assert tail_clusters([50, 0, 50], 0.6).tolist() == [0, 1]
    assert tail_clusters([100], 0.1).tolist() == [0]
    assert tail_clusters(np.array([0.2, 0.3, 0.5]), 0.5).tolist() == [0, 1]


# --------------------------------------------------------------------------
# k-means engine
# --------------------------------------------------------------------------


def test_kmeans_doc_example_empty_cluster_reseeded():
    # E-step: 0 -> c0; 1, 2, 10 -> c1 (10 is 9 from 1, 90 from 100): c2 is empty.
    # Farthest from its centre: 10 (81). c2 := 10, c1 := mean(1, 2) = 1.5.
    # Next E-step: labels [0, 1, 1, 2]; the means do not move: stop.
    r = kmeans(np.array([[0.0], [1.0], [2.0], [10.0]]), 3, init=np.array([[0.0], [1.0], [100.0]]))
    assert r.centres[:, 0].tolist() == [0.0, 1.5, 10.0]
    assert r.labels.tolist() == [0, 1, 1, 2]
    assert r.inertia == 0.5  # 0.25 + 0.25
    assert r.converged and r.n_iter == 2


def test_kmeans_reseed_never_empties_a_singleton_donor():
    # E-step with centres (-3, 6, 100): 0 -> c0 (9 < 36); 5, 6, 7 -> c1; c2 empty.
    # Distances to own centre: 0 -> 9, 5 -> 1, 6 -> 0, 7 -> 1. The farthest row (0)
    # is alone in c0, so it is skipped; next is row 5 (tie with 7, lower index).
    # c2 := 5, c1 := mean(6, 7) = 6.5, c0 := 0; then labels [0, 2, 1, 1] are stable.
    x = np.array([[0.0], [5.0], [6.0], [7.0]])
    r = kmeans(x, 3, init=np.array([[-3.0], [6.0], [100.0]]))
    assert r.centres[:, 0].tolist() == [0.0, 6.5, 5.0]
    assert r.labels.tolist() == [0, 2, 1, 1]
    c, labels, *_ = naive_lloyd(x, np.array([[-3.0], [6.0], [100.0]]), 50, 1e-4)
    assert c[:, 0].tolist() == [0.0, 6.5, 5.0] and labels.tolist() == [0, 2, 1, 1]


@pytest.mark.parametrize(
    "seed,n,d,k,max_iter,tol",
    [(0, 200, 2, 5, 50, 1e-4), (1, 300, 8, 12, 50, 0.0), (2, 150, 3, 30, 4, 0.0), (3, 400, 16, 7, 50, 1e-2)],
)
def test_kmeans_matches_naive_lloyd_from_same_init(seed, n, d, k, max_iter, tol):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, size=d) + 5.0
    idx = kmeans_plusplus_init(x, k, seed=seed)
    ours = kmeans(x, k, init=x[idx], max_iter=max_iter, tol=tol)
    c, labels, inertia, n_iter, converged, _ = naive_lloyd(x, x[idx], max_iter, tol)
    assert ours.labels.tolist() == labels.tolist()
    np.testing.assert_allclose(ours.centres, c, rtol=0, atol=1e-10)
    assert ours.n_iter == n_iter and ours.converged == converged
    assert ours.inertia == pytest.approx(inertia, rel=1e-12)
    # the seeded run starts from the same k-means++ draw
    seeded = kmeans(x, k, seed=seed, max_iter=max_iter, tol=tol)
    np.testing.assert_array_equal(seeded.centres, ours.centres)


def test_kmeans_matches_naive_with_empty_clusters():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((120, 3))
    init = np.concatenate([x[:4], np.full((3, 3), 50.0), np.full((1, 3), -60.0)])  # 4 far centres start empty
    ours = kmeans(x, 8, init=init, tol=0.0)
    c, labels, inertia, n_iter, _, reseeded = naive_lloyd(x, init, 50, 0.0)
    assert reseeded  # the naive run did go through the re-seeding rule
    assert ours.labels.tolist() == labels.tolist()
    np.testing.assert_allclose(ours.centres, c, rtol=0, atol=1e-10)
    assert ours.n_iter == n_iter
    assert np.bincount(ours.labels, minlength=8).min() >= 1


@pytest.mark.parametrize("seed,n,d,k", [(0, 100, 2, 5), (1, 500, 10, 40), (2, 60, 384, 60)])
def test_kmeanspp_is_sklearns_greedy_seeding(seed, n, d, k):
    x = np.random.default_rng(seed).standard_normal((n, d))
    ours = kmeans_plusplus_init(x, k, seed=seed)
    assert ours.tolist() == sklearn_kmeanspp(x, k, np.random.RandomState(seed))
    assert len(set(ours.tolist())) == k


def test_greedy_seeds_end_lower_than_single_trial_seeds_on_a_mixture():
    """Why the library's seeding (benchmarks/bench_kmeans.py): better local optima on many modes."""
    rng = np.random.default_rng(4)
    centres = rng.normal(0, 4, size=(30, 8))
    x = centres[rng.integers(0, 30, size=3000)] + rng.normal(size=(3000, 8))
    greedy = [kmeans(x, 30, seed=s).inertia for s in range(4)]
    single = [kmeans(x, 30, init=x[single_trial_kmeanspp(x, 30, np.random.default_rng(s))]).inertia for s in range(4)]
    assert np.mean(greedy) < 0.95 * np.mean(single), (greedy, single)


def test_kmeanspp_skips_duplicates_and_refuses_too_few_distinct_rows():
    x = np.array([[0.0, 0.0]] * 5 + [[1.0, 0.0]] * 5 + [[0.0, 3.0]])
    for seed in range(5):
        idx = kmeans_plusplus_init(x, 3, seed=seed)
        assert sorted(map(tuple, x[idx])) == [(0.0, 0.0), (0.0, 3.0), (1.0, 0.0)]
    with pytest.raises(ValueError, match=r"reference: only 3 distinct rows .* n_clusters=4"):
        kmeans_plusplus_init(x, 4)
    with pytest.raises(ValueError, match="distinct rows"):
        fit_cluster_reference(x, n_clusters=4)


def test_kmeans_n_init_picks_lowest_inertia_restart():
    rng = np.random.default_rng(5)
    x = rng.uniform(size=(150, 2))
    k = 6
    ours = kmeans(x, k, seed=9, n_init=4, tol=0.0)
    draws = np.random.RandomState(9)  # restarts draw one after the other from one generator
    naive = [naive_lloyd(x, x[sklearn_kmeanspp(x, k, draws)], 50, 0.0) for _ in range(4)]
    inertias = [r[2] for r in naive]
    assert ours.restart == int(np.argmin(inertias))
    assert ours.inertia == pytest.approx(min(inertias), rel=1e-12)
    np.testing.assert_allclose(ours.centres, naive[ours.restart][0], rtol=0, atol=1e-10)
    assert len(set(np.round(inertias, 9))) > 1  # the restarts did differ
    assert ours.inertia <= kmeans(x, k, seed=9, n_init=1, tol=0.0).inertia


def test_kmeans_determinism_and_seed_dependence():
    x = np.random.default_rng(6).uniform(size=(300, 3))
    a = fit_cluster_reference(x, n_clusters=10, seed=1)
    b = fit_cluster_reference(x, n_clusters=10, seed=1)
    np.testing.assert_array_equal(a.centres, b.centres)
    np.testing.assert_array_equal(a.counts, b.counts)
    assert a.inertia == b.inertia
    others = [fit_cluster_reference(x, n_clusters=10, seed=s).centres for s in (2, 3, 4)]
    assert any(not np.array_equal(a.centres, o) for o in others)


def test_kmeans_independent_of_threads_and_tiles(monkeypatch):
    x = np.random.default_rng(8).standard_normal((700, 6)).astype(np.float32)
    base = kmeans(x, 9, seed=2)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = kmeans(x, 9, seed=2)
    finally:
        torch.set_num_threads(threads)
    monkeypatch.setattr(K, "_MIN_ROW_TILE", 37)
    monkeypatch.setattr(K, "_MAX_ROW_TILE", 37)
    monkeypatch.setattr(K, "_BATCH_ELEMENTS", 300)
    tiled = kmeans(x, 9, seed=2)
    for other in (one, tiled):
        np.testing.assert_array_equal(other.centres, base.centres)
        np.testing.assert_array_equal(other.labels, base.labels)


# --------------------------------------------------------------------------
# Exact assignment
# --------------------------------------------------------------------------


def test_assign_exact_ties_and_near_ties():
    c = np.array([[0.0], [1.0]])
    # 0.5 is a tie (smaller id wins); float32 cannot separate 0.5 +- 1e-12, float64 can
    x = np.array([[0.5], [0.5 + 1e-12], [0.5 - 1e-12], [-3.0], [7.0]])
    assert assign_clusters(x, c).tolist() == [0, 1, 0, 0, 1]
    # Duplicated centres: the smaller id takes everything
    assert assign_clusters(x, np.array([[1.0], [0.0], [1.0]])).tolist() == [0, 0, 1, 1, 0]


@pytest.mark.parametrize("seed,offset", [(0, 0.0), (1, 1e3), (2, 1e5)])
def test_assign_matches_naive_across_tiles(monkeypatch, seed, offset):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((37, 5)) + offset
    x = np.concatenate([rng.standard_normal((500, 5)) + offset, c[:5]]).astype(np.float32)  # + rows on centres
    monkeypatch.setattr(K, "_MIN_ROW_TILE", 64)
    monkeypatch.setattr(K, "_MAX_ROW_TILE", 64)
    ours = assign_clusters(x, c)
    assert ours.tolist() == naive_assign(x, c).tolist()
    if offset == 0.0:  # (float32 rounding of 1e5 + z moves a row off its centre)
        assert ours[500:505].tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_assign_exact_ties_on_a_lattice(monkeypatch, seed):
    # Integer centres and half-integer rows: every distance is exact in float64,
    # so equidistant centres are true ties and the smaller id must win.
    rng = np.random.default_rng(seed)
    c = rng.integers(-3, 4, size=(40, 3)).astype(np.float64) + 1000.0
    pairs = rng.integers(0, 40, size=(300, 2))
    x = np.concatenate([(c[pairs[:, 0]] + c[pairs[:, 1]]) / 2, c + 0.5, np.repeat(c[:3], 2, axis=0)])
    d = naive_sqdist(x, c)
    n_ties = int(((d == d.min(axis=1, keepdims=True)).sum(axis=1) > 1).sum())
    assert n_ties > 50  # many rows really are ties
    monkeypatch.setattr(K, "_MIN_ROW_TILE", 32)
    monkeypatch.setattr(K, "_MAX_ROW_TILE", 32)
    assert assign_clusters(x, c).tolist() == naive_assign(x, c).tolist()


# --------------------------------------------------------------------------
# Round-size dependence: expected tail coverage
# --------------------------------------------------------------------------


def test_expected_tail_coverage_formula_by_simulation():
    sizes = (40, 25, 15, 8, 6, 4, 2)  # N = 100
    means = np.array([[30.0 * i, 0.0] for i in range(7)])
    ref = _blobs(sizes, seed=1, means=means)
    rc = fit_cluster_reference(ref, n_clusters=7, tail_mass=0.13, seed=0)
    # sorted shares .02, .04, .06, .08: cumulative .02, .06, .12, .20 -> tail = blobs of 2, 4, 6
    assert sorted(rc.shares[rc.tail_ids].tolist()) == [0.02, 0.04, 0.06]
    m = 30
    expected = np.mean([1 - 0.98**m, 1 - 0.96**m, 1 - 0.94**m])  # 0.668
    assert expected_tail_coverage(rc, m) == pytest.approx(expected, rel=1e-12)
    rng = np.random.default_rng(123)
    tail_sims, mode_sims = [], []
    for _ in range(300):
        res = tail_mode_coverage(rc, ref[rng.integers(0, 100, size=m)])  # no collapse: i.i.d. reference draws
        tail_sims.append(res.tail_coverage.value)
        mode_sims.append(res.mode_coverage.value)
    assert res.expected_tail_coverage == pytest.approx(expected, rel=1e-12)
    assert np.mean(tail_sims) == pytest.approx(expected, abs=0.04)  # Monte Carlo se ~ 0.012
    assert np.mean(mode_sims) == pytest.approx(res.expected_mode_coverage, abs=0.03)
    # and small rounds miss tails by chance: the expectation falls with M
    assert expected_tail_coverage(rc, 5) < expected_tail_coverage(rc, 30) < expected_tail_coverage(rc, 300)


# --------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------


def test_bootstrap_matches_naive_replicates(blobs):
    _, rc, ids = blobs
    rnd = _blobs((20, 10, 3, 1), seed=9)  # the rare blobs are hit once or thrice
    n_boot, seed = 60, 4
    res = tail_mode_coverage(rc, rnd, tail_mass=0.2, n_boot=n_boot, seed=seed)
    labels = naive_assign(rnd, rc.centres)
    tail = [ids[2], ids[3]]
    reps = {"tail_coverage": [], "tail_mass_ratio": [], "modes_hit": [], "cluster_jsd": []}
    for w in bootstrap_counts(len(rnd), n_boot, seed):
        h = np.bincount(np.repeat(labels, w), minlength=4)
        reps["tail_coverage"].append(np.mean(h[tail] > 0))
        reps["tail_mass_ratio"].append(h[tail].sum() / h.sum() / 0.2)
        reps["modes_hit"].append(float((h > 0).sum()))
        reps["cluster_jsd"].append(naive_jsd(rc.shares, h))
    for name, hi in (("tail_coverage", 1.0), ("modes_hit", 4.0), ("cluster_jsd", 1.0)):
        est = getattr(res, name)
        se = np.std(reps[name], ddof=1)
        assert se > 0
        assert est.std_error == pytest.approx(se, rel=1e-9)
        assert est.ci_low == pytest.approx(max(est.value - Z975 * se, 0.0), rel=1e-9, abs=1e-12)
        assert est.ci_high == pytest.approx(min(est.value + Z975 * se, hi), rel=1e-9, abs=1e-12)
    lo, hi = np.quantile(reps["tail_mass_ratio"], [0.025, 0.975])
    assert (res.tail_mass_ratio.ci_low, res.tail_mass_ratio.ci_high) == pytest.approx((lo, hi), rel=1e-12)
    assert res.tail_mass_ratio.value == pytest.approx(4 / 34 / 0.2, rel=1e-14)
    assert res.mode_coverage.value == res.modes_hit.value / 4
    assert res.mode_coverage.std_error == pytest.approx(res.modes_hit.std_error / 4, rel=1e-14)
    # determinism: same seed, same intervals; another seed, other intervals
    again = tail_mode_coverage(rc, rnd, tail_mass=0.2, n_boot=n_boot, seed=seed)
    assert again.metrics() == res.metrics()
    other = tail_mode_coverage(rc, rnd, tail_mass=0.2, n_boot=n_boot, seed=seed + 1)
    assert other.tail_mass_ratio != res.tail_mass_ratio


# --------------------------------------------------------------------------
# Containers and bad input
# --------------------------------------------------------------------------


def test_results_are_frozen_and_read_only(blobs):
    _, rc, _ = blobs
    with pytest.raises(dataclasses.FrozenInstanceError):
        rc.tail_mass = 0.5
    for arr in (rc.centres, rc.counts, rc.shares, rc.tail_ids):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 0
    assert rc.centres.dtype == np.float64 and rc.counts.dtype == np.int64
    assert isinstance(rc, ClusterReference)


def test_bad_input():
    ref = np.random.default_rng(0).standard_normal((20, 3))
    rc = fit_cluster_reference(ref, n_clusters=4)
    bad = ref.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"reference: 1 NaN or inf values \(first in row 3\)"):
        fit_cluster_reference(bad, n_clusters=4)
    with pytest.raises(ValueError, match=r"round: 1 NaN or inf values"):
        tail_mode_coverage(rc, bad)
    with pytest.raises(ValueError, match=r"round: expected D=3 features to match reference, got D=2"):
        tail_mode_coverage(rc, ref[:, :2])
    with pytest.raises(ValueError, match=r"round: expected D=3 features to match reference, got D=4"):
        tail_mode_coverage(ref, np.ones((5, 4)), n_clusters=4)
    with pytest.raises(ValueError, match=r"x: expected D=3 features to match centres, got D=2"):
        assign_clusters(ref[:, :2], rc.centres)
    with pytest.raises(ValueError, match=r"n_clusters: expected at most the N=20 rows of reference, got n_clusters=21"):
        fit_cluster_reference(ref, n_clusters=21)
    with pytest.raises(ValueError, match=r"n_clusters: expected at most the N=20 rows of reference"):
        tail_mode_coverage(ref, ref)  # default K = 50 > N = 20
    for k in (0, -1, 2.5, True, "4"):
        with pytest.raises(ValueError, match="n_clusters: expected a positive integer"):
            fit_cluster_reference(ref, n_clusters=k)
    for tm in (0.0, 1.0, -0.1, 1.5, float("nan"), None):
        with pytest.raises(ValueError, match=r"tail_mass: expected a share in \(0, 1\)"):
            fit_cluster_reference(ref, n_clusters=4, tail_mass=tm)
    with pytest.raises(ValueError, match=r"tail_mass: expected a share in \(0, 1\)"):
        tail_mode_coverage(rc, ref, tail_mass=1.0)
    with pytest.raises(ValueError, match=r"n_clusters: the fitted clusters have K=4, got n_clusters=5"):
        tail_mode_coverage(rc, ref, n_clusters=5)
    with pytest.raises(ValueError, match="max_iter: expected a positive integer"):
        fit_cluster_reference(ref, n_clusters=4, max_iter=0)
    with pytest.raises(ValueError, match="n_init: expected a positive integer"):
        fit_cluster_reference(ref, n_clusters=4, n_init=0)
    with pytest.raises(ValueError, match="tol: expected a finite number >= 0"):
        kmeans(ref, 4, tol=-1.0)
    with pytest.raises(ValueError, match="seed: expected an integer >= 0"):
        kmeans(ref, 4, seed=-1)
    with pytest.raises(ValueError, match=r"init: expected shape \(4, 3\), got \(3, 3\)"):
        kmeans(ref, 4, init=ref[:3])
    with pytest.raises(ValueError, match="n_init: expected 1 when init is given"):
        kmeans(ref, 4, init=ref[:4], n_init=2)
    with pytest.raises(ValueError, match=r"round: expected a 2-D array \[N, D\], got 1-D"):
        tail_mode_coverage(rc, ref[0])
    with pytest.raises(ValueError, match="reference: expected a float array, got dtype int64"):
        fit_cluster_reference(np.arange(12).reshape(4, 3), n_clusters=2)
    with pytest.raises(ValueError, match="n_boot: expected a non-negative integer"):
        tail_mode_coverage(rc, ref, n_boot=-1)
    with pytest.raises(ValueError, match=r"level: expected a confidence level in \(0, 1\)"):
        tail_mode_coverage(rc, ref, level=1.0)
    with pytest.raises(ValueError, match="clusters: expected ClusterReference"):
        expected_tail_coverage(ref, 10)
    with pytest.raises(ValueError, match="m: expected a positive integer"):
        expected_tail_coverage(rc, 0)
    with pytest.raises(ValueError, match="counts: expected finite non-negative values"):
        tail_clusters([0, 0], 0.1)
    with pytest.raises(ValueError, match="q: expected finite non-negative values"):
        jensen_shannon_divergence([1, 0], [np.nan, 1])
    with pytest.raises(ValueError, match="expected two non-empty 1-D histograms of one length"):
        jensen_shannon_divergence([1, 0], [1, 0, 0])
