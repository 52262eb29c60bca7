"""Tests of the effective rank and the log-volume ratio (metrics_core.spectral).

Evidence: hand-computed spectra (data built to have an exact covariance),
the identities named in the definitions (same set, scaling, translation,
rotation), an independent naive numpy/scipy implementation (``np.cov``,
``scipy.linalg.eigh`` generalised eigenvalues on an SVD basis) on random
data, the bootstrap replicates recomputed naively, and bad input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from metrics_core.bootstrap import bootstrap_counts
from metrics_core.bootstrap import Estimate
from metrics_core.spectral import (

    SpectrumReference,
    VolumeRatio,
    effective_rank,
    fit_spectrum_reference,
    log_volume_ratio,
)

pytestmark = pytest.mark.usefixtures("single_torch_thread")

LOG_FLOOR = math.log(1e-12)  # -27.631021115928547




# --------------------------------------------------------------------------
# Naive reference implementations (float64, numpy / scipy).
# --------------------------------------------------------------------------


def naive_erank(x: np.ndarray, w: np.ndarray | None = None) -> float:
    """exp(entropy) of the normalised eigenvalues of np.cov (ddof=1, optional frequency weights)."""
    x = np.asarray(x, dtype=np.float64)
    cov = np.atleast_2d(np.cov(x, rowvar=False, fweights=w))
    lam = np.linalg.eigvalsh(cov)
    lam = lam[lam > 1e-12 * lam.max()]
    p = lam / lam.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def naive_lvr(ref: np.ndarray, rnd: np.ndarray, w: np.ndarray | None = None, floor: float = 1e-12) -> float:
    """Mean log generalised eigenvalue of (B'S_round B, B'S_ref B), B an orthonormal basis of the
    reference's centred row space from an SVD (an independent route to the reference's support)."""
    ref = np.asarray(ref, dtype=np.float64)
    rnd = np.asarray(rnd, dtype=np.float64)
    centred = ref - ref.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    basis = vt[s > 1e-5 * s[0]].T  # (singular value ratio 1e-5 <=> eigenvalue ratio 1e-10)
    s_ref = np.atleast_2d(np.cov(ref, rowvar=False))
    s_rnd = np.atleast_2d(np.cov(rnd, rowvar=False, fweights=w))
    rho = scipy.linalg.eigh(basis.T @ s_rnd @ basis, basis.T @ s_ref @ basis, eigvals_only=True)
    return float(np.mean(np.log(np.maximum(rho, floor))))



def _axis_pairs(a) -> np.ndarray:
    """Rows +a_i e_i and -a_i e_i: mean 0, covariance diag(2 a_i^2) / (2D - 1) exactly."""
    d = len(a)
    rows = []
    for i, ai in enumerate(a):
        e = np.zeros(d)
        e[i] = ai
        rows += [e, -e]
    return np.array(rows)


def _random_rotation(d: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


# --------------------------------------------------------------------------
# effective_rank: hand-computed values
# --------------------------------------------------------------------------


def test_erank_known_eigenvalues_1_4():
    # Rows +-1 e1, +-2 e2: covariance diag(2*1, 2*4)/3, so p = (1/5, 4/5) and
    # H = -(0.2 ln 0.2 + 0.8 ln 0.8) = 0.2*1.6094379 + 0.8*0.2231436 = 0.5004024,
    # erank = exp(0.5004024) = 1.6493848.
    x = _axis_pairs([1.0, 2.0])
    expected = math.exp(-(0.2 * math.log(0.2) + 0.8 * math.log(0.8)))
    assert expected == pytest.approx(1.6493848, abs=1e-7)
    assert effective_rank(x).value == pytest.approx(expected, abs=1e-12)


def test_erank_known_eigenvalues_1_1_2():
    # Rows +-e1, +-e2, +-sqrt(2) e3: eigenvalues proportional to (1, 1, 2), p = (1/4, 1/4, 1/2),
    # H = 2 * (1/4) ln 4 + (1/2) ln 2 = ln 2 + 0.5 ln 2 = 1.5 ln 2, erank = 2^1.5 = 2.8284271.
    x = _axis_pairs([1.0, 1.0, math.sqrt(2.0)])
    assert effective_rank(x).value == pytest.approx(2.0**1.5, abs=1e-12)


@pytest.mark.parametrize("d", [1, 2, 5, 17])
def test_erank_isotropic_exact_is_d(d):
    # Rows +-e_i: covariance I * 2/(2d-1), all p_i = 1/d, erank = exp(ln d) = d.
    assert effective_rank(_axis_pairs(np.ones(d))).value == pytest.approx(d, abs=1e-11)


def test_erank_isotropic_gaussian_is_close_to_d():
    # Sample-covariance eigenvalues deviate by O(sqrt(D/N)) = 2%; the entropy loss is second order.
    x = np.random.default_rng(0).standard_normal((20000, 8))
    value = effective_rank(x).value
    assert 7.95 < value <= 8.0


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_erank_rank_one_data_is_one(seed, dtype):
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(6)
    x = (rng.standard_normal(50)[:, None] * v[None, :] + rng.standard_normal(6)).astype(dtype)
    assert effective_rank(x).value == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_erank_identical_rows_is_zero_by_convention(dtype):
    # 0.1 is not representable: the float mean of the copies need not equal the row, yet the
    # covariance is exactly 0 and the documented convention gives erank 0 (not 1, not NaN).
    x = np.tile(np.array([0.1, 0.7, -3.3], dtype=dtype), (7, 1))
    assert effective_rank(x).value == 0.0
    est = effective_rank(x, n_boot=20, seed=3)
    assert (est.value, est.std_error, est.ci_low, est.ci_high) == (0.0, 0.0, 0.0, 0.0)


def test_erank_two_distinct_rows_is_one():
    # Two distinct points span one direction: rank 1, erank 1; one copy less changes nothing.
    assert effective_rank(np.array([[0.0, 0.0], [1.0, 2.0]])).value == pytest.approx(1.0, abs=1e-12)
    assert effective_rank(np.array([[0.0, 0.0], [1.0, 2.0], [1.0, 2.0]])).value == pytest.approx(1.0, abs=1e-12)


def test_erank_invariances():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 6)) * np.array([3.0, 2.0, 1.0, 0.5, 0.2, 0.1])
    base = effective_rank(x).value
    assert effective_rank(7.5 * x + 100.0).value == pytest.approx(base, rel=1e-10)
    assert effective_rank(x @ _random_rotation(6, 5)).value == pytest.approx(base, rel=1e-10)


def test_erank_bounded_by_rank():
    # N - 1 < D: at most N - 1 nonzero eigenvalues.
    x = np.random.default_rng(6).standard_normal((5, 40))
    value = effective_rank(x).value
    assert 1.0 <= value <= 4.0 + 1e-9
    assert value == pytest.approx(naive_erank(x), rel=1e-10)


# --------------------------------------------------------------------------
# effective_rank: naive implementation, bootstrap
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("n,d", [(2, 3), (10, 3), (200, 16), (30, 64), (9000, 5)])
def test_erank_matches_naive(seed, n, d):
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.uniform(-2.0, 2.0, d))
    x = rng.standard_normal((n, d)) * scales + rng.standard_normal(d) * 10
    assert effective_rank(x).value == pytest.approx(naive_erank(x), rel=1e-10)


def test_erank_float32_matches_naive_of_the_same_values():
    x = np.random.default_rng(8).standard_normal((100, 12)).astype(np.float32)
    assert effective_rank(x).value == pytest.approx(naive_erank(x.astype(np.float64)), rel=1e-10)
    assert effective_rank(torch.from_numpy(x)).value == effective_rank(x).value


def test_erank_bootstrap_replicates_match_naive_weighted_covariance():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((40, 5)) * np.array([4.0, 2.0, 1.0, 1.0, 0.3])
    n_boot, seed = 30, 11
    est = effective_rank(x, n_boot=n_boot, seed=seed)
    reps = np.array([naive_erank(x, w) for w in bootstrap_counts(40, n_boot, seed)])
    assert est.value == pytest.approx(naive_erank(x), rel=1e-10)
    assert est.std_error == pytest.approx(reps.std(ddof=1), rel=1e-8)
    # Normal interval: symmetric around the estimate.
    assert est.ci_high - est.value == pytest.approx(est.value - est.ci_low, rel=1e-10)
    assert est.ci_low < est.value < est.ci_high


def test_erank_determinism():
    x = np.random.default_rng(12).standard_normal((60, 7))
    a = effective_rank(x, n_boot=15, seed=4)
    b = effective_rank(x, n_boot=15, seed=4)
    c = effective_rank(x, n_boot=15, seed=5)
    assert a == b
    assert isinstance(a, Estimate)
    assert a.std_error != c.std_error


def test_erank_chunked_accumulation_matches_naive():
    # More rows than one 8192-row chunk: the chunked two-pass covariance equals np.cov's.
    x = np.random.default_rng(13).standard_normal((17000, 3)) * np.array([1.0, 2.0, 3.0]) + 50.0
    assert effective_rank(x).value == pytest.approx(naive_erank(x), rel=1e-10)
    w = np.random.default_rng(14).integers(0, 3, 17000)
    from metrics_core.spectral import _spectral_effective_rank, _weighted_covariance

    cov = _weighted_covariance(torch.from_numpy(x), w).numpy()
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False, fweights=w), rtol=1e-11, atol=1e-12)
    assert _spectral_effective_rank(torch.linalg.eigvalsh(torch.from_numpy(cov))) == pytest.approx(
        naive_erank(x, w), rel=1e-10
    )


@pytest.mark.parametrize(
    "x,match",
    [
        (np.array([[1.0, 2.0]]), "x: expected at least 2 rows, got 1"),
        (np.array([1.0, 2.0, 3.0]), "x: expected a 2-D array"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "x: 1 NaN or inf values"),
        (np.array([[1, 2], [3, 4]]), "x: expected a float array"),
        (np.zeros((0, 3)), "x: expected a non-empty array"),
    ],
)
def test_erank_bad_input(x, match):
    with pytest.raises(ValueError, match=match):
        effective_rank(x)


def test_erank_bad_bootstrap_arguments():
    x = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(ValueError, match="n_boot"):
        effective_rank(x, n_boot=-1)
    with pytest.raises(ValueError, match="level"):
        effective_rank(x, n_boot=5, level=1.5)


# --------------------------------------------------------------------------
# log_volume_ratio: identities and hand-computed values
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n,d", [(50, 3), (500, 20), (30, 60)])
def test_lvr_same_set_is_zero(seed, n, d):
    x = np.random.default_rng(seed).standard_normal((n, d)) * np.linspace(0.5, 3.0, d)
    r = log_volume_ratio(x, x)
    assert abs(r.log_volume_ratio.value) <= 1e-12
    assert r.n_axes == min(n - 1, d)
    assert r.n_floored == 0


@pytest.mark.parametrize("s", [2.0, 0.5, 3.0, 1e-3])
def test_lvr_scaled_round_is_log_s_squared(s):
    # Sigma_round = s^2 Sigma_ref: every generalised eigenvalue is s^2, so the mean log is log(s^2);
    # a translation changes nothing.
    x = np.random.default_rng(1).standard_normal((200, 6)) * np.array([5.0, 2.0, 1.0, 1.0, 0.5, 0.1])
    r = log_volume_ratio(x, s * x + 42.0)
    assert r.log_volume_ratio.value == pytest.approx(math.log(s * s), abs=1e-11)
    assert r.log_det_ratio.value == pytest.approx(6 * math.log(s * s), abs=1e-10)


def test_lvr_hand_diagonal_case():
    # Reference rows +-2 e1, +-e2: Sigma_ref = diag(8, 2)/3. Round rows +-e1, +-e2: diag(2, 2)/3.
    # Variance ratios (2/8, 2/2) = (1/4, 1): mean log = (ln(1/4) + 0)/2 = -ln 2 = -0.6931472.
    r = log_volume_ratio(_axis_pairs([2.0, 1.0]), _axis_pairs([1.0, 1.0]))
    assert r.log_volume_ratio.value == pytest.approx(-math.log(2.0), abs=1e-12)
    assert r.log_det_ratio.value == pytest.approx(-2 * math.log(2.0), abs=1e-12)
    assert (r.n_axes, r.n_floored) == (2, 0)


def test_lvr_rotation_inside_support_keeps_volume():
    # Reference +-2 e1, +-e2: Sigma_ref = diag(8, 2)/3, det = 16/9.
    # Round = the reference rotated by 45 degrees: Sigma_round = [[5, 3], [3, 5]]/3, det = (25 - 9)/9 = 16/9,
    # so the log volume ratio is 0. (The sum of log ratios along the reference's own axes would be
    # ln(5/8) + ln(5/2) = ln(25/16), i.e. 0.2231436 per axis: not a volume.)
    ref = _axis_pairs([2.0, 1.0])
    c = math.sqrt(0.5)
    rot = np.array([[c, -c], [c, c]])
    r = log_volume_ratio(ref, ref @ rot.T)
    assert r.log_volume_ratio.value == pytest.approx(0.0, abs=1e-12)
    assert math.log(25 / 16) / 2 == pytest.approx(0.2231436, abs=1e-7)


def test_lvr_identical_round_rows_floor_exactly():
    ref = np.random.default_rng(2).standard_normal((40, 5))
    rnd = np.tile(np.array([0.1, 0.2, 0.3, 0.4, 0.5]), (9, 1))
    r = log_volume_ratio(ref, rnd)
    # Zero round covariance: every ratio is floored at 1e-12, so the mean is ln(1e-12) = -27.631.
    assert r.log_volume_ratio.value == LOG_FLOOR
    assert (r.n_axes, r.n_floored) == (5, 5)
    assert r.log_det_ratio.value == pytest.approx(5 * LOG_FLOOR, abs=1e-12)


def test_lvr_collapsed_round_is_large_negative_finite():
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((500, 10))
    rnd = rng.standard_normal((4, 10))  # 4 rows: rank 3, 7 generalised variances are 0
    r = log_volume_ratio(ref, rnd)
    assert math.isfinite(r.log_volume_ratio.value)
    assert r.n_floored == 7
    # 7 of 10 axes at the floor, the other 3 ratios below 10: at most (7 ln 1e-12 + 3 ln 10)/10 = -18.65.
    assert r.log_volume_ratio.value < (7 * LOG_FLOOR + 3 * math.log(10.0)) / 10
    assert r.log_volume_ratio.value == pytest.approx(naive_lvr(ref, rnd), abs=1e-6)
    # Shrinking the round towards a point lowers the value monotonically.
    contracted = [log_volume_ratio(ref, ref * s).log_volume_ratio.value for s in (1.0, 0.5, 0.1, 1e-4)]
    assert contracted == sorted(contracted, reverse=True)


def test_lvr_reference_with_d_greater_than_n():
    rng = np.random.default_rng(4)
    ref = rng.standard_normal((20, 50))
    rnd = rng.standard_normal((100, 50)) * 0.7
    spec = fit_spectrum_reference(ref)
    assert spec.n_axes == 19  # rank of 20 centred rows
    r = log_volume_ratio(spec, rnd)
    assert math.isfinite(r.log_volume_ratio.value)
    assert r.n_axes == 19
    assert r.log_volume_ratio.value == pytest.approx(naive_lvr(ref, rnd), rel=1e-8)


def test_lvr_constant_reference_feature_is_dropped():
    rng = np.random.default_rng(5)
    ref = rng.standard_normal((100, 4))
    ref[:, 2] = 3.0
    rnd = rng.standard_normal((80, 4))  # varies along the constant axis: ignored, not +inf
    r = log_volume_ratio(ref, rnd)
    assert r.n_axes == 3
    assert r.log_volume_ratio.value == pytest.approx(naive_lvr(ref, rnd), rel=1e-9)


# --------------------------------------------------------------------------
# log_volume_ratio: naive implementation, reuse, bootstrap
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("n,m,d", [(50, 40, 3), (400, 300, 16), (60, 200, 8), (300, 10, 12)])
def test_lvr_matches_naive(seed, n, m, d):
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d))
    ref = rng.standard_normal((n, d)) @ mix + 5.0
    rnd = rng.standard_normal((m, d)) @ mix * rng.uniform(0.3, 1.5, d) - 1.0
    got = log_volume_ratio(ref, rnd).log_volume_ratio.value
    assert got == pytest.approx(naive_lvr(ref, rnd), rel=1e-8, abs=1e-9)


def test_lvr_float32_input():
    rng = np.random.default_rng(6)
    ref = rng.standard_normal((120, 6)).astype(np.float32)
    rnd = (rng.standard_normal((90, 6)) * 0.8).astype(np.float32)
    got = log_volume_ratio(torch.from_numpy(ref), rnd).log_volume_ratio.value
    assert got == pytest.approx(naive_lvr(ref.astype(np.float64), rnd.astype(np.float64)), rel=1e-9)


def test_fitted_spectrum_equals_one_call_and_describes_reference():
    rng = np.random.default_rng(7)
    ref = rng.standard_normal((150, 5)) * np.array([3.0, 2.0, 1.0, 0.5, 0.25])
    spec = fit_spectrum_reference(ref)
    assert isinstance(spec, SpectrumReference)
    assert (spec.dim, spec.n_axes, spec.n_rows) == (5, 5, 150)
    expected = np.linalg.eigvalsh(np.cov(ref, rowvar=False))[::-1]
    np.testing.assert_allclose(spec.eigenvalues.numpy(), expected, rtol=1e-12)
    assert spec.effective_rank == pytest.approx(naive_erank(ref), rel=1e-12)
    for s in (0.5, 1.0):
        rnd = rng.standard_normal((70, 5)) * s
        a, b = log_volume_ratio(spec, rnd), log_volume_ratio(ref, rnd)
        assert isinstance(a, VolumeRatio)
        assert a.log_volume_ratio == b.log_volume_ratio


def test_lvr_bootstrap_replicates_match_naive():
    rng = np.random.default_rng(8)
    ref = rng.standard_normal((100, 4))
    rnd = rng.standard_normal((30, 4)) * 0.6
    n_boot, seed = 25, 3
    r = log_volume_ratio(ref, rnd, n_boot=n_boot, seed=seed)
    reps = np.array([naive_lvr(ref, rnd, w) for w in bootstrap_counts(30, n_boot, seed)])
    assert r.log_volume_ratio.std_error == pytest.approx(reps.std(ddof=1), rel=1e-8)
    assert r.log_volume_ratio.ci_low < r.log_volume_ratio.value < r.log_volume_ratio.ci_high
    # log_det_ratio is the per-axis estimate times K, interval included.
    for field in ("value", "ci_low", "ci_high", "std_error"):
        assert getattr(r.log_det_ratio, field) == pytest.approx(4 * getattr(r.log_volume_ratio, field), rel=1e-12)
    again = log_volume_ratio(ref, rnd, n_boot=n_boot, seed=seed)
    assert again.log_volume_ratio == r.log_volume_ratio
    assert log_volume_ratio(ref, rnd, n_boot=n_boot, seed=seed + 1).log_volume_ratio != r.log_volume_ratio


def test_lvr_custom_floor():
    ref = np.random.default_rng(9).standard_normal((30, 3))
    r = log_volume_ratio(ref, np.ones((4, 3)), floor=1e-6)
    assert r.log_volume_ratio.value == pytest.approx(math.log(1e-6), abs=1e-12)


def test_lvr_bad_input():
    rng = np.random.default_rng(10)
    ref = rng.standard_normal((20, 3))
    with pytest.raises(ValueError, match="round: expected D=3 features to match reference, got D=4"):
        log_volume_ratio(ref, rng.standard_normal((20, 4)))
    with pytest.raises(ValueError, match="round: expected D=3 features to match reference, got D=2"):
        log_volume_ratio(fit_spectrum_reference(ref), rng.standard_normal((20, 2)))
    with pytest.raises(ValueError, match="round: expected at least 2 rows, got 1"):
        log_volume_ratio(ref, rng.standard_normal((1, 3)))
    with pytest.raises(ValueError, match="round: 1 NaN or inf values"):
        log_volume_ratio(ref, np.array([[0.0, np.inf, 0.0], [1.0, 1.0, 1.0]]))
    with pytest.raises(ValueError, match="reference: zero covariance"):
        log_volume_ratio(np.ones((5, 3)), ref)
    with pytest.raises(ValueError, match="reference: expected at least 2 rows"):
        fit_spectrum_reference(ref[:1])
    for bad in (0.0, 1.0, -1e-3, True):
        with pytest.raises(ValueError, match="floor: expected a number in \\(0, 1\\)"):
            log_volume_ratio(ref, ref, floor=bad)
    for bad in (1.0, -0.1, "1e-10"):
        with pytest.raises(ValueError, match="rel_tol: expected a number in \\[0, 1\\)"):
            fit_spectrum_reference(ref, rel_tol=bad)
