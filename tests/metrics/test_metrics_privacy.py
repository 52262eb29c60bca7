"""Tests of the distance to closest record (metrics_core.privacy).

Evidence: the weighted quantile against ``numpy.quantile`` of the expanded
sample; the seeded split read back against the permutation it documents;
hand-built 1-D cases with an explicit split (arithmetic in the comments);
exact copies; a round drawn from the reference distribution (copy rate
about q); an independent naive implementation with full ``scipy`` distance
matrices on random data; the bootstrap replicates recomputed naively; bad input.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from metrics_core.bootstrap import bootstrap_counts
from metrics_core.bootstrap import Estimate
from metrics_core.privacy import (

    DCRReference,
    DCRResult,
    distance_to_closest_record,
    fit_dcr_reference,
    weighted_quantile,
)

pytestmark = pytest.mark.usefixtures("single_torch_thread")




# --------------------------------------------------------------------------
# Naive reference implementation (full float64 distance matrices).
# --------------------------------------------------------------------------


def naive_dcr(reference: np.ndarray, holdout_index: np.ndarray, rnd: np.ndarray, q: float) -> dict:
    ref = np.asarray(reference, dtype=np.float64)
    rnd = np.asarray(rnd, dtype=np.float64)
    mask = np.zeros(len(ref), dtype=bool)
    mask[holdout_index] = True
    train, hold = ref[~mask], ref[mask]
    base = cdist(hold, train).min(axis=1)
    d = cdist(rnd, train).min(axis=1)
    e = cdist(hold, rnd).min(axis=1)
    tau = np.quantile(base, q)
    return {
        "baseline": base,
        "d": d,
        "e": e,
        "threshold": tau,
        "dcr_median": np.median(d),
        "dcr_p05": np.quantile(d, 0.05),
        "real_median": np.median(e),
        "copy_rate": np.mean((d < tau) | (d == 0)),
        "baseline_median": np.median(base),
        "baseline_p05": np.quantile(base, 0.05),
    }



def _col(*values) -> np.ndarray:
    return np.array(values, dtype=np.float64)[:, None]


# --------------------------------------------------------------------------
# weighted_quantile
# --------------------------------------------------------------------------


def test_weighted_quantile_hand_cases():
    # Expanded sample 1, 2, 2, 10 (W = 4): median h = 3 * 0.5 = 1.5 -> y(1) + 0.5 (y(2) - y(1)) = 2 + 0 = 2;
    # q = 0.25: h = 0.75 -> 1 + 0.75 * (2 - 1) = 1.75; q = 0.9: h = 2.7 -> 2 + 0.7 * (10 - 2) = 7.6.
    assert weighted_quantile([10.0, 1.0, 2.0], [1, 1, 2], 0.5) == 2.0
    assert weighted_quantile([10.0, 1.0, 2.0], [1, 1, 2], 0.25) == pytest.approx(1.75, abs=1e-15)
    assert weighted_quantile([10.0, 1.0, 2.0], [1, 1, 2], 0.9) == pytest.approx(7.6, abs=1e-14)
    # A single value with a count of 3: every quantile is that value.
    assert weighted_quantile([4.0, 9.0], [3, 0], [0.0, 0.5, 1.0]).tolist() == [4.0, 4.0, 4.0]


@pytest.mark.parametrize("seed", range(6))
def test_weighted_quantile_equals_numpy_on_expanded_sample(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    values = np.round(rng.standard_normal(n), 1)  # rounding creates ties
    weights = rng.integers(0, 4, n)
    weights[rng.integers(0, n)] += 1  # not all zero
    qs = np.concatenate([[0.0, 0.05, 0.5, 0.95, 1.0], rng.uniform(0, 1, 20)])
    got = weighted_quantile(values, weights, qs)
    expected = np.quantile(np.repeat(values, weights), qs)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    # Unit weights: numpy's default quantile.
    unit = weighted_quantile(values, np.ones(n, dtype=int), qs)
    np.testing.assert_allclose(unit, np.quantile(values, qs), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(
    "values,weights,q,match",
    [
        ([1.0, 2.0], [1, -1], 0.5, "weights: expected non-negative integer counts"),
        ([1.0, 2.0], [0.5, 1.0], 0.5, "weights: expected non-negative integer counts"),
        ([1.0, 2.0], [0, 0], 0.5, "weights: the counts sum to 0"),
        ([1.0, 2.0], [1, 1, 1], 0.5, r"weights: expected shape \(2,\)"),
        ([1.0, np.nan], [1, 1], 0.5, "values: NaN or inf"),
        ([], [], 0.5, "values: expected a non-empty 1-D array"),
        ([1.0, 2.0], [1, 1], 1.5, r"q: expected levels in \[0, 1\]"),
        ([1.0, 2.0], [1, 1], [0.5, -0.1], r"q: expected levels in \[0, 1\]"),
    ],
)
def test_weighted_quantile_bad_input(values, weights, q, match):
    with pytest.raises(ValueError, match=match):
        weighted_quantile(values, weights, q)


# --------------------------------------------------------------------------
# fit_dcr_reference: the split
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n,fraction,n_holdout",
    [(10, 0.2, 2), (2, 0.2, 1), (3, 0.2, 1), (5, 0.9, 4), (5, 0.01, 1), (101, 0.2, 20), (13, 0.5, 7)],
)
def test_split_sizes(n, fraction, n_holdout):
    # round half up of fraction * n, clipped to [1, n - 1]: 0.2*3 = 0.6 -> 1, 0.9*5 = 4.5 -> 5 -> 4,
    # 0.01*5 = 0.05 -> 0 -> 1, 0.2*101 = 20.2 -> 20, 0.5*13 = 6.5 -> 7.
    ref = np.random.default_rng(n).standard_normal((n, 2))
    fitted = fit_dcr_reference(ref, fraction)
    assert fitted.holdout.shape == (n_holdout, 2)
    assert fitted.train.shape == (n - n_holdout, 2)
    assert fitted.n_reference == n


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_split_is_the_documented_permutation(seed):
    ref = np.random.default_rng(100 + seed).standard_normal((50, 3))
    fitted = fit_dcr_reference(ref, 0.2, seed)
    expected = np.sort(np.random.default_rng(seed).permutation(50)[:10])
    np.testing.assert_array_equal(fitted.holdout_index, expected)
    np.testing.assert_array_equal(np.sort(np.concatenate([fitted.train_index, fitted.holdout_index])), np.arange(50))
    np.testing.assert_array_equal(fitted.holdout.numpy(), ref[fitted.holdout_index])
    np.testing.assert_array_equal(fitted.train.numpy(), ref[fitted.train_index])
    assert fitted.seed == seed
    naive = naive_dcr(ref, fitted.holdout_index, ref[:3], 0.05)
    np.testing.assert_allclose(fitted.baseline_distances, naive["baseline"], rtol=1e-12)


def test_split_determinism_and_seed_dependence():
    ref = np.random.default_rng(0).standard_normal((40, 2))
    a, b, c = fit_dcr_reference(ref, seed=3), fit_dcr_reference(ref, seed=3), fit_dcr_reference(ref, seed=4)
    np.testing.assert_array_equal(a.holdout_index, b.holdout_index)
    np.testing.assert_array_equal(a.baseline_distances, b.baseline_distances)
    assert not np.array_equal(a.holdout_index, c.holdout_index)


def test_explicit_split_and_baseline_by_hand():
    # Reference 0, 1, 3, 6, 10, 15; holdout rows 1 and 4 (values 1, 10); train 0, 3, 6, 15.
    # Baseline: 1 -> |1 - 0| = 1; 10 -> min(|10 - 6|, |10 - 15|) = 4.
    fitted = fit_dcr_reference(_col(0, 1, 3, 6, 10, 15), holdout_index=[4, 1])
    assert isinstance(fitted, DCRReference)
    assert fitted.holdout_index.tolist() == [1, 4]
    assert fitted.train_index.tolist() == [0, 2, 3, 5]
    assert fitted.baseline_distances.tolist() == [1.0, 4.0]
    assert fitted.seed is None


# --------------------------------------------------------------------------
# distance_to_closest_record: hand-computed cases
# --------------------------------------------------------------------------


def test_dcr_hand_case():
    fitted = fit_dcr_reference(_col(0, 1, 3, 6, 10, 15), holdout_index=[1, 4])  # baseline [1, 4]
    r = distance_to_closest_record(fitted, _col(0, 2, 4.5, 8, 20))
    assert isinstance(r, DCRResult)
    # Round to train {0, 3, 6, 15}: 0 -> 0; 2 -> 1; 4.5 -> 1.5; 8 -> 2; 20 -> 5.
    assert r.round_distances.tolist() == [0.0, 1.0, 1.5, 2.0, 5.0]
    # Median of 0, 1, 1.5, 2, 5 = 1.5; p05: h = 4 * 0.05 = 0.2 -> 0 + 0.2 * (1 - 0) = 0.2.
    assert r.dcr_median.value == 1.5
    assert r.dcr_p05.value == pytest.approx(0.2, abs=1e-15)
    # Baseline [1, 4]: tau = Q_0.05 = 1 + 0.05 * (4 - 1) = 1.15 (h = 1 * 0.05); median 2.5.
    assert r.threshold == pytest.approx(1.15, abs=1e-15)
    assert r.baseline_p05 == pytest.approx(1.15, abs=1e-15)
    assert r.baseline_median == 2.5
    assert r.quantile == 0.05
    # Copies: d < 1.15 or d = 0 -> 0 and 1 -> 2 of 5.
    assert r.copy_rate.value == 0.4
    # Holdout to round {0, 2, 4.5, 8, 20}: 1 -> 1; 10 -> 2; median 1.5.
    assert r.real_to_round_distances.tolist() == [1.0, 2.0]
    assert r.dcr_real_to_round_median.value == 1.5
    # q = 0.5: tau = 2.5, copies 0, 1, 1.5, 2 -> 4 of 5.
    r50 = distance_to_closest_record(fitted, _col(0, 2, 4.5, 8, 20), quantile=0.5)
    assert (r50.threshold, r50.copy_rate.value) == (2.5, 0.8)
    assert set(r.estimates()) == {"dcr_median", "dcr_p05", "dcr_real_to_round_median", "copy_rate"}


def test_exact_copies_count_even_when_threshold_is_zero():
    # Reference 0, 0, 5, 5; holdout rows 1, 3 (values 0, 5) each have an exact twin in train {0, 5},
    # so the baseline is [0, 0] and tau = 0. Round 0, 5, 2.5: d = 0, 0, 2.5. The two exact copies
    # count (d = 0) although nothing is below tau: copy rate 2/3.
    fitted = fit_dcr_reference(_col(0, 0, 5, 5), holdout_index=[1, 3])
    r = distance_to_closest_record(fitted, _col(0, 5, 2.5))
    assert r.threshold == 0.0
    assert r.copy_rate.value == pytest.approx(2 / 3, abs=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_of_exact_train_copies(dtype):
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((300, 16)).astype(dtype)
    fitted = fit_dcr_reference(ref, 0.2, 5)
    train = fitted.train.numpy()
    rnd = train[rng.integers(0, len(train), 400)]
    r = distance_to_closest_record(fitted, rnd, n_boot=20)
    assert r.copy_rate.value == 1.0
    assert (r.copy_rate.ci_low, r.copy_rate.ci_high) == (1.0, 1.0)
    assert r.dcr_median.value == 0.0
    assert r.dcr_p05.value == 0.0
    assert np.all(r.round_distances == 0.0)
    # A round equal to the whole train part: holdout -> round equals holdout -> train.
    full = distance_to_closest_record(fitted, train)
    np.testing.assert_array_equal(full.real_to_round_distances, fitted.baseline_distances)
    assert full.dcr_real_to_round_median.value == full.baseline_median


@pytest.mark.parametrize("q,tol", [(0.05, 0.03), (0.25, 0.06)])
def test_round_from_reference_distribution_copy_rate_near_q(q, tol):
    # With no copying, round -> train DCRs are distributed like holdout -> train ones, so
    # P(d < tau) ~ q. Sampling error: tau from 1000 holdout rows (sd of its level
    # sqrt(q(1-q)/1000) <= 0.014) and 4000 round rows (sd <= 0.007): the bounds are > 4 sd.
    rng = np.random.default_rng(2)
    ref = rng.standard_normal((5000, 4))
    rnd = rng.standard_normal((4000, 4))
    r = distance_to_closest_record(ref, rnd, quantile=q, seed=1)
    assert abs(r.copy_rate.value - q) < tol
    # The round-side medians match the baseline's within sampling noise.
    assert r.dcr_median.value == pytest.approx(r.baseline_median, rel=0.1)
    # A memorising round (train rows plus tiny noise) is flagged, a spread-out one is not.
    fitted = fit_dcr_reference(ref, seed=1)
    memo = fitted.train.numpy()[:4000] + 1e-3 * rng.standard_normal((4000, 4))
    assert distance_to_closest_record(fitted, memo, quantile=q).copy_rate.value > 0.95
    assert distance_to_closest_record(fitted, 3.0 * rnd, quantile=q).copy_rate.value < q / 2


# --------------------------------------------------------------------------
# distance_to_closest_record: naive implementation, reuse, bootstrap
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n,m,d,chunk", [(10, 7, 1, 4096), (60, 45, 3, 7), (200, 150, 16, 64), (120, 80, 384, 4096)])
def test_dcr_matches_naive(seed, n, m, d, chunk):
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal((n, d))
    rnd = rng.standard_normal((m, d)) * 1.1
    rnd[: m // 5] = ref[rng.integers(0, n, m // 5)]  # some exact copies (of train or holdout rows)
    ref[1] = ref[0]  # a duplicate inside the reference
    q = [0.05, 0.1, 0.3][seed]
    r = distance_to_closest_record(ref, rnd, quantile=q, seed=seed, chunk_size=chunk)
    fitted = fit_dcr_reference(ref, seed=seed)
    naive = naive_dcr(ref, fitted.holdout_index, rnd, q)
    np.testing.assert_allclose(fitted.baseline_distances, naive["baseline"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r.round_distances, naive["d"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r.real_to_round_distances, naive["e"], rtol=1e-12, atol=1e-12)
    assert r.threshold == pytest.approx(naive["threshold"], rel=1e-12, abs=1e-12)
    assert r.dcr_median.value == pytest.approx(naive["dcr_median"], rel=1e-12, abs=1e-12)
    assert r.dcr_p05.value == pytest.approx(naive["dcr_p05"], rel=1e-12, abs=1e-12)
    assert r.dcr_real_to_round_median.value == pytest.approx(naive["real_median"], rel=1e-12, abs=1e-12)
    assert r.copy_rate.value == naive["copy_rate"]
    assert r.baseline_median == pytest.approx(naive["baseline_median"], rel=1e-12)
    assert r.baseline_p05 == pytest.approx(naive["baseline_p05"], rel=1e-12, abs=1e-12)


def test_fitted_reference_equals_one_call():
    rng = np.random.default_rng(3)
    ref, rnd = rng.standard_normal((80, 5)), rng.standard_normal((50, 5))
    fitted = fit_dcr_reference(ref, 0.3, 9)
    a = distance_to_closest_record(fitted, rnd, n_boot=10, seed=9)
    b = distance_to_closest_record(ref, rnd, holdout_fraction=0.3, n_boot=10, seed=9)
    assert a.estimates() == b.estimates()
    np.testing.assert_array_equal(a.round_distances, b.round_distances)
    assert a.threshold == b.threshold


def test_dcr_bootstrap_replicates_match_naive():
    rng = np.random.default_rng(4)
    ref = rng.standard_normal((100, 3))
    rnd = rng.standard_normal((40, 3))
    n_boot, seed = 50, 6
    fitted = fit_dcr_reference(ref, seed=0)
    r = distance_to_closest_record(fitted, rnd, n_boot=n_boot, seed=seed)
    d, e, tau = r.round_distances, r.real_to_round_distances, r.threshold

    def check(est: Estimate, reps: np.ndarray):
        assert est.std_error == pytest.approx(reps.std(ddof=1), rel=1e-10, abs=1e-15)
        lo, hi = np.quantile(reps, [0.025, 0.975])
        assert (est.ci_low, est.ci_high) == (pytest.approx(lo, rel=1e-12), pytest.approx(hi, rel=1e-12))

    round_counts = bootstrap_counts(40, n_boot, seed)  # one set of replicates for all round-side statistics
    check(r.dcr_median, np.array([np.median(np.repeat(d, w)) for w in round_counts]))
    check(r.dcr_p05, np.array([np.quantile(np.repeat(d, w), 0.05) for w in round_counts]))
    check(r.copy_rate, np.array([np.mean(np.repeat((d < tau) | (d == 0), w)) for w in round_counts]))
    hold_counts = bootstrap_counts(len(e), n_boot, seed + 1)
    check(r.dcr_real_to_round_median, np.array([np.median(np.repeat(e, w)) for w in hold_counts]))


def test_dcr_determinism():
    rng = np.random.default_rng(5)
    ref, rnd = rng.standard_normal((60, 4)), rng.standard_normal((30, 4))
    a = distance_to_closest_record(ref, rnd, n_boot=20, seed=2)
    b = distance_to_closest_record(ref, rnd, n_boot=20, seed=2)
    c = distance_to_closest_record(ref, rnd, n_boot=20, seed=3)
    assert a.estimates() == b.estimates()
    assert a.dcr_median.std_error is not None and a.dcr_median.std_error > 0
    assert a.estimates() != c.estimates()
    n = distance_to_closest_record(ref, rnd)
    assert (n.dcr_median.ci_low, n.dcr_median.std_error) == (None, None)
    assert n.dcr_median.value == pytest.approx(float(np.median(n.round_distances)), abs=0)


def test_dcr_torch_input():
    rng = np.random.default_rng(6)
    ref, rnd = rng.standard_normal((40, 3)), rng.standard_normal((20, 3))
    a = distance_to_closest_record(torch.from_numpy(ref), torch.from_numpy(rnd))
    b = distance_to_closest_record(ref, rnd)
    assert a.estimates() == b.estimates()


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------


def test_dcr_bad_input():
    rng = np.random.default_rng(7)
    ref = rng.standard_normal((20, 3))
    with pytest.raises(ValueError, match="round: expected D=3 features to match reference, got D=2"):
        distance_to_closest_record(ref, rng.standard_normal((5, 2)))
    with pytest.raises(ValueError, match="round: 1 NaN or inf values"):
        distance_to_closest_record(ref, np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(ValueError, match="reference: expected at least 2 rows, got 1"):
        distance_to_closest_record(ref[:1], ref)
    with pytest.raises(ValueError, match="reference: expected a float array"):
        fit_dcr_reference(np.ones((5, 2), dtype=int))
    for bad in (0.0, 1.0, -0.2, True, "0.2"):
        with pytest.raises(ValueError, match="holdout_fraction: expected a number in \\(0, 1\\)"):
            distance_to_closest_record(ref, ref, holdout_fraction=bad)
        with pytest.raises(ValueError, match="quantile: expected a number in \\(0, 1\\)"):
            distance_to_closest_record(ref, ref, quantile=bad)
    with pytest.raises(ValueError, match="seed: expected an integer"):
        fit_dcr_reference(ref, 0.2, 1.5)
    with pytest.raises(ValueError, match="n_boot"):
        distance_to_closest_record(ref, ref, n_boot=-3)


@pytest.mark.parametrize(
    "index,match",
    [
        ([], "holdout_index: expected between 1 and N-1=4 indices, got 0"),
        ([0, 1, 2, 3, 4], "holdout_index: expected between 1 and N-1=4 indices, got 5"),
        ([1, 1], "holdout_index: repeated indices"),
        ([0, 5], r"holdout_index: expected indices in \[0, 5\)"),
        ([-1], r"holdout_index: expected indices in \[0, 5\)"),
        ([0.5], "holdout_index: expected a 1-D integer array"),
        ([[0, 1]], "holdout_index: expected a 1-D integer array"),
    ],
)
def test_explicit_holdout_bad_input(index, match):
    with pytest.raises(ValueError, match=match):
        fit_dcr_reference(np.random.default_rng(0).standard_normal((5, 2)), holdout_index=index)
