"""Tests of MMD^2 (metrics_core.mmd), the Fréchet distance and EDS (metrics_core.distribution)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance
import scipy.stats
import torch

from metrics_core.bootstrap import bootstrap_counts
from metrics_core.distribution import GaussianStats, embedding_distribution_similarity, fit_gaussian, frechet_distance
from metrics_core.mmd import MMDResult, median_heuristic_bandwidth, mmd2

# --------------------------------------------------------------------------
# Naive reference implementations (float64 numpy / scipy, full matrices).
# --------------------------------------------------------------------------


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    diff = np.asarray(a, np.float64)[:, None, :] - np.asarray(b, np.float64)[None, :, :]
    return (diff * diff).sum(axis=-1)


def _rbf(a, b, sigma):
    return np.exp(-_sqdist(a, b) / (2.0 * sigma * sigma))


def naive_mmd2(x, y, sigma, biased=False, w=None):
    """Gretton et al. eq. 3 (eq. 5 when biased) with full kernel matrices; ``w`` are round counts,
    the round-round term of the unbiased form keeping pairs of distinct original samples only."""
    n, m = len(x), len(y)
    w = np.ones(m) if w is None else np.asarray(w, np.float64)
    kxx, kyy, kxy = _rbf(x, x, sigma), _rbf(y, y, sigma), _rbf(x, y, sigma)
    if biased:
        return kxx.mean() + (w @ kyy @ w) / w.sum() ** 2 - 2.0 * (kxy @ w).sum() / (n * w.sum())
    kxx_off = kxx - np.diag(np.diag(kxx))
    kyy_off = kyy - np.diag(np.diag(kyy))
    pair_w = np.outer(w, w) - np.diag(w * w)
    if pair_w.sum() == 0:  # a replicate drawing one sample only: no pairs, dropped by the bootstrap
        return float("nan")
    return (
        kxx_off.sum() / (n * (n - 1))
        + (pair_w * kyy_off).sum() / pair_w.sum()
        - 2.0 * (kxy @ w).sum() / (n * w.sum())
    )


def naive_median_sigma(z):
    return math.sqrt(np.median(scipy.spatial.distance.pdist(z, "sqeuclidean")) / 2.0)


def naive_perm_p(x, y, sigma, n_perm, seed, max_points, biased=False):
    """The permutation protocol of the mmd2 docstring, with full kernel matrices."""
    rng = np.random.default_rng([seed, 1])
    n, m = len(x), len(y)
    if n + m > max_points:
        n2 = min(n, max(2, round(max_points * n / (n + m))))
        m2 = min(m, max(2, max_points - n2))
        x = x[rng.choice(n, size=n2, replace=False)]
        y = y[rng.choice(m, size=m2, replace=False)]
    z = np.vstack([x, y])
    n2 = len(x)
    obs = naive_mmd2(x, y, sigma, biased)
    k = 0
    for _ in range(n_perm):
        p = rng.permutation(len(z))
        k += naive_mmd2(z[p[:n2]], z[p[n2:]], sigma, biased) >= obs - 1e-12
    return (k + 1) / (n_perm + 1)


def naive_fd(mx, cx, my, cy):
    """FID formula with scipy's non-symmetric sqrtm of cov_x cov_y."""
    covmean = scipy.linalg.sqrtm(cx @ cy)
    covmean = np.real(covmean)
    return float(((mx - my) ** 2).sum() + np.trace(cx) + np.trace(cy) - 2.0 * np.trace(covmean))


def svd_fd(x, y):
    """Independent FD for singular covariances: with centred data A (N x D), B (M x D),
    tr(Sx^1/2 Sy Sx^1/2)^1/2 = nuclear norm of A B^T / sqrt((N-1)(M-1)) (polar decomposition)."""
    a = x - x.mean(axis=0)
    b = y - y.mean(axis=0)
    nuc = np.linalg.svd(a @ b.T, compute_uv=False).sum() / math.sqrt((len(x) - 1) * (len(y) - 1))
    tr = (a * a).sum() / (len(x) - 1) + (b * b).sum() / (len(y) - 1)
    return float(((x.mean(0) - y.mean(0)) ** 2).sum() + tr - 2.0 * nuc)


def naive_eds(x, y, w=None):
    ux = x / np.linalg.norm(x, axis=1, keepdims=True)
    uy = y / np.linalg.norm(y, axis=1, keepdims=True)
    w = np.ones(len(y)) if w is None else np.asarray(w, np.float64)
    ex, ey = ux.mean(axis=0), (w @ uy) / w.sum()
    return float(ex @ ey / (np.linalg.norm(ex) * np.linalg.norm(ey)))



Z975 = float(scipy.stats.norm.ppf(0.975))  # 1.959963984540054
E = math.e

# --------------------------------------------------------------------------
# MMD^2
# --------------------------------------------------------------------------

X2 = np.array([[0.0], [1.0]])
Y2 = np.array([[0.0], [2.0]])
SIGMA_HALF = math.sqrt(0.5)  # 2 sigma^2 = 1 -> k(a, b) = exp(-(a - b)^2)


def test_mmd_hand_values():
    # X = {0, 1}, Y = {0, 2}, k = exp(-d^2):
    #   XX off-diagonal: k(0,1) = e^-1                      -> mean e^-1
    #   YY off-diagonal: k(0,2) = e^-4                      -> mean e^-4
    #   XY: k(0,0)=1, k(0,2)=e^-4, k(1,0)=e^-1, k(1,2)=e^-1 -> sum 1 + e^-4 + 2e^-1
    #   MMD_u = e^-1 + e^-4 - 2 (1 + e^-4 + 2e^-1) / 4 = (e^-4 - 1) / 2 = -0.490842...
    r = mmd2(X2, Y2, bandwidth=SIGMA_HALF)
    assert isinstance(r, MMDResult)
    assert r.mmd2.value == pytest.approx((E**-4 - 1) / 2, abs=1e-15)
    assert r.bandwidth == SIGMA_HALF and r.p_value is None
    # Biased: XX all pairs (2 + 2e^-1)/4, YY (2 + 2e^-4)/4, XY (1 + e^-4 + 2e^-1)/4
    #   -> (2 + 2e^-1 + 2 + 2e^-4 - 2 - 2e^-4 - 4e^-1) / 4 = (1 - e^-1) / 2 = 0.316060...
    assert mmd2(X2, Y2, bandwidth=SIGMA_HALF, biased=True).mmd2.value == pytest.approx((1 - E**-1) / 2, abs=1e-15)


def test_mmd_median_heuristic_hand():
    # pooled {0, 1, 0, 2}: squared distances 1, 0, 4, 1, 1, 4 -> sorted 0 1 1 1 4 4 -> median 1, sigma^2 = 1/2
    assert median_heuristic_bandwidth(X2, Y2) == pytest.approx(SIGMA_HALF, abs=1e-15)
    r = mmd2(X2, Y2)
    assert r.bandwidth == pytest.approx(SIGMA_HALF, abs=1e-15)
    assert r.mmd2.value == pytest.approx((E**-4 - 1) / 2, abs=1e-14)
    # reference alone {0, 1}: one pair, squared distance 1 -> sigma^2 = 1/2
    assert median_heuristic_bandwidth(X2) == pytest.approx(SIGMA_HALF, abs=1e-15)
    # {0, 1, 3}: 1, 9, 4 -> median 4, sigma^2 = 2
    assert median_heuristic_bandwidth(np.array([[0.0], [1.0], [3.0]])) == pytest.approx(math.sqrt(2.0), abs=1e-15)


def test_mmd_median_heuristic_duplicates_fallback():
    # {0, 0, 0, 0, 1}: 10 pairs, 6 at 0 and 4 at 1 -> median 0 -> median of positives = 1 -> sigma^2 = 1/2
    z = np.array([[0.0], [0.0], [0.0], [0.0], [1.0]])
    assert median_heuristic_bandwidth(z) == pytest.approx(SIGMA_HALF, abs=1e-15)
    # the same with large offsets (Gram rounding must still see the duplicates)
    v = np.array([1e3, -2e3, 5e2])
    zz = np.vstack([np.tile(v, (4, 1)), v + np.array([1.0, 0.0, 0.0])])
    assert median_heuristic_bandwidth(zz) == pytest.approx(SIGMA_HALF, rel=1e-9)
    # all identical: sigma = 1, and MMD of two identical constant sets is (1 + 1 - 2) = 0
    c = np.tile(v, (5, 1))
    assert median_heuristic_bandwidth(c) == 1.0
    r = mmd2(c, c[:3])
    assert r.bandwidth == 1.0 and r.mmd2.value == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n,m,d,seed", [(2, 2, 1, 0), (30, 20, 3, 1), (17, 41, 8, 2), (50, 50, 64, 3), (9, 3, 200, 4)])
def test_mmd_median_heuristic_matches_pdist(n, m, d, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, d)), rng.standard_normal((m, d)) + 0.5
    want = naive_median_sigma(np.vstack([x, y]))
    assert median_heuristic_bandwidth(x, y) == pytest.approx(want, rel=1e-12)
    assert mmd2(x, y).bandwidth == pytest.approx(want, rel=1e-12)


def test_mmd_median_heuristic_subsample():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((40, 3)), rng.standard_normal((25, 3)) * 2.0
    z = np.vstack([x, y])
    for seed in (0, 3):
        idx = np.random.default_rng(seed).choice(65, size=20, replace=False)
        want = naive_median_sigma(z[idx])
        assert median_heuristic_bandwidth(x, y, max_points=20, seed=seed) == pytest.approx(want, rel=1e-12)
    assert median_heuristic_bandwidth(x, y, max_points=20, seed=0) != median_heuristic_bandwidth(
        x, y, max_points=20, seed=3
    )


@pytest.mark.parametrize(
    "n,m,d,seed,shift",
    [
        (2, 2, 1, 0, 0.0),
        (3, 2, 2, 1, 1.0),
        (30, 20, 3, 2, 0.3),
        (17, 41, 8, 3, 0.0),
        (60, 45, 32, 4, 0.2),
        (8, 9, 300, 5, 0.1),
    ],
)
@pytest.mark.parametrize("biased", [False, True])
def test_mmd_matches_naive(n, m, d, seed, shift, biased):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) + 3.0
    y = rng.standard_normal((m, d)) * 1.2 + 3.0 + shift
    sigma = naive_median_sigma(np.vstack([x, y]))
    r = mmd2(x, y, biased=biased)
    assert r.mmd2.value == pytest.approx(naive_mmd2(x, y, sigma, biased), rel=1e-10, abs=1e-13)
    # a fixed bandwidth too
    r = mmd2(x, y, bandwidth=0.7 * sigma, biased=biased)
    assert r.bandwidth == 0.7 * sigma
    assert r.mmd2.value == pytest.approx(naive_mmd2(x, y, 0.7 * sigma, biased), rel=1e-10, abs=1e-13)


@pytest.mark.parametrize("biased", [False, True])
def test_mmd_chunking_independent(biased):
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((37, 5)), rng.standard_normal((23, 5)) + 0.4
    base = mmd2(x, y, biased=biased, n_boot=20, seed=2)
    for chunk in (1, 3, 7, 23, 36):
        r = mmd2(x, y, biased=biased, n_boot=20, seed=2, chunk_size=chunk)
        assert r.mmd2.value == pytest.approx(base.mmd2.value, abs=1e-12)
        assert r.mmd2.std_error == pytest.approx(base.mmd2.std_error, abs=1e-12)
        assert r.mmd2.ci_low == pytest.approx(base.mmd2.ci_low, abs=1e-12)
        assert r.mmd2.ci_high == pytest.approx(base.mmd2.ci_high, abs=1e-12)


@pytest.mark.parametrize("n,d,seed", [(2, 1, 0), (5, 3, 1), (40, 6, 2), (13, 100, 3)])
def test_mmd_set_against_itself(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((n, d)) * 2.0 + 1.0
    # biased: the three sums are the same sum -> exactly 0
    assert mmd2(x, x, biased=True).mmd2.value == 0.0
    assert mmd2(x, x.copy(), biased=True, chunk_size=3).mmd2.value == 0.0
    # unbiased, with S the full kernel sum (diagonal included):
    #   2 (S - N) / (N (N-1)) - 2 S / N^2 = 2 (S - N^2) / (N^2 (N-1)) = -2 (1 - S/N^2) / (N - 1) <= 0
    sigma = naive_median_sigma(np.vstack([x, x]))  # the pooled sample holds every point twice
    s = _rbf(x, x, sigma).sum()
    want = -2.0 * (n * n - s) / (n * n * (n - 1))
    got = mmd2(x, x).mmd2.value
    assert got == pytest.approx(want, rel=1e-10, abs=1e-15)
    assert got < 0.0


def test_mmd_hand_set_against_itself():
    # X = {0, 1} with k = exp(-d^2): S = 2 + 2e^-1, so MMD_u = -2 (4 - 2 - 2e^-1) / (4 * 1) = -(1 - e^-1)
    assert mmd2(X2, X2, bandwidth=SIGMA_HALF).mmd2.value == pytest.approx(-(1 - E**-1), abs=1e-15)


def test_mmd_grows_with_shift():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((80, 4))
    base = rng.standard_normal((60, 4))
    values = [mmd2(x, base + s, bandwidth=2.0).mmd2.value for s in (0.0, 0.5, 1.0, 2.0)]
    assert values == sorted(values)
    assert values[0] < 0.02 < values[-1]


@pytest.mark.parametrize("biased", [False, True])
def test_mmd_bootstrap_matches_naive_replicates(biased):
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((12, 3)), rng.standard_normal((9, 3)) + 0.3
    sigma = 1.3
    n_boot, seed = 60, 4
    r = mmd2(x, y, bandwidth=sigma, biased=biased, n_boot=n_boot, seed=seed)
    reps = np.array([naive_mmd2(x, y, sigma, biased, w) for w in bootstrap_counts(9, n_boot, seed)])
    reps = reps[np.isfinite(reps)]
    assert r.mmd2.value == pytest.approx(naive_mmd2(x, y, sigma, biased), rel=1e-12)
    assert r.mmd2.std_error == pytest.approx(reps.std(ddof=1), rel=1e-9)
    lo, hi = np.quantile(reps, [0.025, 0.975])
    assert (r.mmd2.ci_low, r.mmd2.ci_high) == pytest.approx((lo, hi), rel=1e-9)
    # the point estimate does not depend on the bootstrap
    assert r.mmd2.value == mmd2(x, y, bandwidth=sigma, biased=biased).mmd2.value


def test_mmd_bootstrap_excludes_tied_duplicates():
    # M = 3, counts (2, 1, 0): the pairs of distinct originals are (0,1) and (1,0), each of weight 2*1,
    # so the round-round term is (2 * 2 k01) / (2 * 2) = k01 = e^-4, whereas the literal resampled set
    # {0, 0, 2} would give (2 k(0,0) + 4 k01) / 6 = (2 + 4e^-4) / 6, counting the tie as a pair at distance 0.
    x = np.array([[0.0], [1.0]])
    y = np.array([[0.0], [2.0], [5.0]])
    w = np.array([2, 1, 0])
    k01 = math.exp(-4.0)
    # XY: (1/(N sum w)) sum_i sum_j w_j k(x_i, y_j) = (2 (1 + e^-1) + (e^-4 + e^-1)) / 6
    want = math.exp(-1.0) + k01 - 2.0 * (2 * (1 + E**-1) + (E**-4 + E**-1)) / 6.0
    assert naive_mmd2(x, y, SIGMA_HALF, w=w) == pytest.approx(want, abs=1e-15)
    r = mmd2(x, y, bandwidth=SIGMA_HALF, n_boot=200, seed=0)
    counts = bootstrap_counts(3, 200, 0)
    reps = np.array([naive_mmd2(x, y, SIGMA_HALF, w=c) for c in counts])
    assert r.mmd2.std_error == pytest.approx(reps[np.isfinite(reps)].std(ddof=1), rel=1e-9)


def test_mmd_bootstrap_deterministic_and_seeded():
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((20, 3)), rng.standard_normal((15, 3))
    a = mmd2(x, y, n_boot=50, seed=1, n_permutations=30)
    b = mmd2(x, y, n_boot=50, seed=1, n_permutations=30)
    c = mmd2(x, y, n_boot=50, seed=2, n_permutations=30)
    assert a == b
    assert a.mmd2.value == c.mmd2.value  # the bandwidth subsample does not use `seed`
    assert a.mmd2.std_error != c.mmd2.std_error
    assert a.mmd2.ci_low <= a.mmd2.ci_high and a.mmd2.std_error > 0


@pytest.mark.parametrize("biased", [False, True])
@pytest.mark.parametrize("n,m,shift,seed", [(10, 8, 0.0, 0), (12, 15, 0.8, 1), (6, 4, 3.0, 2)])
def test_mmd_permutation_matches_naive(n, m, shift, seed, biased):
    rng = np.random.default_rng(seed + 20)
    x, y = rng.standard_normal((n, 2)), rng.standard_normal((m, 2)) + shift
    sigma = 1.1
    r = mmd2(x, y, bandwidth=sigma, biased=biased, n_permutations=99, seed=seed)
    assert r.p_value == pytest.approx(naive_perm_p(x, y, sigma, 99, seed, 5000, biased), abs=1e-15)
    # several batches of permutations (internal batch 512) give the same protocol
    r = mmd2(x, y, bandwidth=sigma, biased=biased, n_permutations=600, seed=seed, chunk_size=4)
    assert r.p_value == pytest.approx(naive_perm_p(x, y, sigma, 600, seed, 5000, biased), abs=1e-15)


def test_mmd_permutation_subsample_matches_naive():
    rng = np.random.default_rng(11)
    x, y = rng.standard_normal((30, 3)), rng.standard_normal((20, 3)) + 0.5
    # 50 > 12 pooled rows: n' = round(12 * 30 / 50) = 7, m' = 5
    r = mmd2(x, y, bandwidth=1.0, n_permutations=150, max_permutation_points=12, seed=3)
    assert r.p_value == pytest.approx(naive_perm_p(x, y, 1.0, 150, 3, 12), abs=1e-15)
    # the reported statistic is still the full-sample one
    assert r.mmd2.value == pytest.approx(naive_mmd2(x, y, 1.0), rel=1e-10)


def test_mmd_permutation_power_and_null():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((40, 3))
    far = mmd2(x, rng.standard_normal((30, 3)) + 3.0, n_permutations=199)
    assert far.p_value == 1 / 200  # no permuted statistic reaches the observed one
    same = mmd2(x, rng.standard_normal((30, 3)), n_permutations=199)
    assert 0.05 < same.p_value <= 1.0
    # X against itself: the observed labelling is one of the most balanced, p is large
    assert mmd2(x, x, n_permutations=99).p_value > 0.5


def test_mmd_float32_and_tensor_input():
    rng = np.random.default_rng(13)
    x, y = rng.standard_normal((25, 4)), rng.standard_normal((18, 4))
    want = naive_mmd2(x, y, 1.5)
    assert mmd2(torch.from_numpy(x), torch.from_numpy(y), bandwidth=1.5).mmd2.value == pytest.approx(want, rel=1e-12)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    want32 = naive_mmd2(x32.astype(np.float64), y32.astype(np.float64), 1.5)
    assert mmd2(x32, y32, bandwidth=1.5).mmd2.value == pytest.approx(want32, rel=1e-10)


def test_mmd_bad_input():
    x = np.random.default_rng(0).standard_normal((5, 3))
    with pytest.raises(ValueError, match="reference: expected at least 2 rows, got 1"):
        mmd2(x[:1], x)
    with pytest.raises(ValueError, match="round: expected at least 2 rows, got 1"):
        mmd2(x, x[:1])
    with pytest.raises(ValueError, match="round: expected D=3 features to match reference, got D=2"):
        mmd2(x, x[:, :2])
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="round: 1 NaN or inf values"):
        mmd2(x, bad)
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="reference: 1 NaN or inf values"):
        mmd2(bad, x)
    for bw in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="bandwidth: expected a finite positive float"):
            mmd2(x, x, bandwidth=bw)
    with pytest.raises(ValueError, match="bandwidth: .* too small"):
        mmd2(x, x, bandwidth=1e-200)
    with pytest.raises(ValueError, match="n_permutations: expected an integer >= 0"):
        mmd2(x, x, n_permutations=-1)
    with pytest.raises(ValueError, match="max_permutation_points: expected an integer >= 4"):
        mmd2(x, x, n_permutations=5, max_permutation_points=3)
    with pytest.raises(ValueError, match="n_boot"):
        mmd2(x, x, n_boot=-1)
    with pytest.raises(ValueError, match="level"):
        mmd2(x, x, level=1.5)
    with pytest.raises(ValueError, match="chunk_size"):
        mmd2(x, x, chunk_size=0)
    with pytest.raises(ValueError, match="expected a float array"):
        mmd2(x.astype(np.int64), x)
    with pytest.raises(ValueError, match="max_points: expected an integer >= 2"):
        median_heuristic_bandwidth(x, max_points=1)
    with pytest.raises(ValueError, match="at least 2 pooled rows"):
        median_heuristic_bandwidth(x[:1])


# --------------------------------------------------------------------------
# Fréchet distance
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "d,a,b,shift", [(1, 1.0, 2.0, 0.0), (2, 1.0, 1.0, 1.0), (5, 0.5, 3.0, 2.0), (64, 2.0, 0.1, 0.3)]
)
def test_fd_isotropic_gaussians_exact(d, a, b, shift):
    # Sx = a^2 I, Sy = b^2 I: (Sx^1/2 Sy Sx^1/2)^1/2 = a b I -> FD = |dmu|^2 + D a^2 + D b^2 - 2 D a b
    #                                                             = |dmu|^2 + D (a - b)^2
    mu_y = np.full(d, shift)
    gx = GaussianStats(np.zeros(d), a * a * np.eye(d), n=100)
    gy = GaussianStats(mu_y, b * b * np.eye(d), n=100)
    want = d * shift * shift + d * (a - b) ** 2
    assert frechet_distance(gx, gy).value == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert frechet_distance(gy, gx).value == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_fd_hand_singular_case():
    # X = {(0,1), (2,1)}: mean (1,1), cov diag(2, 0);  Y = {(0,0), (0,2)}: mean (0,1), cov diag(0, 2).
    # Sx^1/2 = diag(sqrt2, 0), Sx^1/2 Sy Sx^1/2 = 0 -> FD = |(1,0)|^2 + 2 + 2 - 0 = 5
    x = np.array([[0.0, 1.0], [2.0, 1.0]])
    y = np.array([[0.0, 0.0], [0.0, 2.0]])
    assert frechet_distance(x, y).value == pytest.approx(5.0, abs=1e-12)
    # and a non-diagonal population case: Sx = [[2,1],[1,2]] (eigen 3, 1), Sy = Sx:
    # FD = |dmu|^2 = 0.5^2 + 1^2 = 1.25
    c = np.array([[2.0, 1.0], [1.0, 2.0]])
    assert frechet_distance(GaussianStats([0, 0], c, 5), GaussianStats([0.5, 1.0], c, 5)).value == pytest.approx(
        1.25, abs=1e-12
    )


def test_fd_converges_to_population_value():
    # N((0,0,0), I) vs N((1,0,0), 4 I): FD = 1 + 3 (1 - 2)^2 = 4
    rng = np.random.default_rng(14)
    x = rng.standard_normal((20000, 3))
    y = 2.0 * rng.standard_normal((20000, 3)) + np.array([1.0, 0.0, 0.0])
    assert frechet_distance(x, y).value == pytest.approx(4.0, rel=0.03)


@pytest.mark.parametrize("n,m,d,seed", [(50, 40, 3, 0), (200, 150, 10, 1), (80, 300, 30, 2), (3, 4, 2, 3)])
def test_fd_matches_scipy_sqrtm(n, m, d, seed):
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d))
    x = rng.standard_normal((n, d)) @ mix + 1.0
    y = rng.standard_normal((m, d)) @ (mix + 0.3 * rng.standard_normal((d, d))) + 1.2
    want = naive_fd(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    got = frechet_distance(x, y).value
    assert got == pytest.approx(want, rel=1e-8)
    assert got == pytest.approx(svd_fd(x, y), rel=1e-8)


@pytest.mark.parametrize("n,m,d,seed", [(5, 8, 20, 0), (30, 12, 100, 1), (10, 10, 10, 2), (2, 2, 7, 3)])
def test_fd_singular_covariances_finite_and_match_svd(n, m, d, seed):
    # D >= N: the covariances are singular; the eigen route stays finite and matches the
    # independent SVD (nuclear norm) formula; sqrtm is unreliable here so it is not used.
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = rng.standard_normal((m, d)) * 1.5 + 0.2
    got = frechet_distance(x, y).value
    want = svd_fd(x, y)
    assert math.isfinite(got) and got >= 0.0
    assert got == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("n,d,seed", [(2, 1, 0), (10, 3, 1), (100, 20, 2), (6, 40, 3), (300, 64, 4)])
def test_fd_set_against_itself_is_zero(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((n, d)) * 3.0 + 5.0
    assert frechet_distance(x, x).value == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(fit_gaussian(x), x).value == pytest.approx(0.0, abs=1e-9)


def test_fit_gaussian_matches_numpy_and_is_reusable():
    rng = np.random.default_rng(15)
    x = rng.standard_normal((70, 6)) * np.arange(1, 7) + 2.0
    g = fit_gaussian(x, chunk_size=8)
    assert g.n == 70
    np.testing.assert_allclose(g.mean, x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(g.cov, np.cov(x, rowvar=False, ddof=1), rtol=1e-12, atol=1e-13)
    assert not g.mean.flags.writeable and not g.cov.flags.writeable
    y = rng.standard_normal((50, 6))
    assert frechet_distance(g, y).value == pytest.approx(frechet_distance(x, y).value, rel=1e-13)
    # constant features (zero variance) are fine: a singular covariance
    xc = x.copy()
    xc[:, 2] = 7.0
    assert frechet_distance(xc, y).value == pytest.approx(svd_fd(xc, y), rel=1e-8)


def test_fd_chunking_independent():
    rng = np.random.default_rng(16)
    x, y = rng.standard_normal((40, 5)), rng.standard_normal((33, 5)) + 0.5
    base = frechet_distance(x, y, n_boot=10, seed=1)
    for chunk in (1, 4, 32):
        r = frechet_distance(x, y, n_boot=10, seed=1, chunk_size=chunk)
        assert r.value == pytest.approx(base.value, abs=1e-12)
        assert r.std_error == pytest.approx(base.std_error, abs=1e-12)


def test_fd_bootstrap_matches_naive_replicates():
    rng = np.random.default_rng(17)
    x, y = rng.standard_normal((30, 3)), rng.standard_normal((25, 3)) * 1.3 + 0.4
    n_boot, seed = 40, 5
    r = frechet_distance(x, y, n_boot=n_boot, seed=seed)
    mx, cx = x.mean(0), np.cov(x, rowvar=False)
    reps = []
    for w in bootstrap_counts(25, n_boot, seed):
        # frequency-weighted mean and ddof=1 covariance = those of the literally resampled set
        yb = np.repeat(y, w, axis=0)
        reps.append(naive_fd(mx, cx, yb.mean(0), np.cov(yb, rowvar=False)))
    se = np.std(reps, ddof=1)
    assert r.value == pytest.approx(naive_fd(mx, cx, y.mean(0), np.cov(y, rowvar=False)), rel=1e-9)
    assert r.std_error == pytest.approx(se, rel=1e-7)
    assert r.ci_low == pytest.approx(max(0.0, r.value - Z975 * se), rel=1e-7)
    assert r.ci_high == pytest.approx(r.value + Z975 * se, rel=1e-7)
    assert r == frechet_distance(x, y, n_boot=n_boot, seed=seed)
    assert r.value == frechet_distance(x, y).value


def test_fd_bootstrap_interval_clamped_at_zero():
    rng = np.random.default_rng(18)
    x = rng.standard_normal((60, 2))
    r = frechet_distance(x, x, n_boot=30, seed=0)
    assert r.value == pytest.approx(0.0, abs=1e-9)
    assert r.ci_low == 0.0 and r.ci_high > 0.0 and r.std_error > 0.0


def test_fd_bad_input():
    x = np.random.default_rng(0).standard_normal((5, 3))
    with pytest.raises(ValueError, match="reference: expected at least 2 rows, got 1"):
        frechet_distance(x[:1], x)
    with pytest.raises(ValueError, match="round: expected at least 2 rows, got 1"):
        frechet_distance(x, x[:1])
    with pytest.raises(ValueError, match="round: expected D=3 features to match reference, got D=4"):
        frechet_distance(x, np.ones((5, 4)))
    with pytest.raises(ValueError, match="round: expected D=3 features to match reference, got D=2"):
        frechet_distance(fit_gaussian(x), GaussianStats(np.zeros(2), np.eye(2), 3))
    bad = x.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="round: 1 NaN or inf values"):
        frechet_distance(x, bad)
    with pytest.raises(ValueError, match="n_boot: the round is given as GaussianStats"):
        frechet_distance(x, fit_gaussian(x), n_boot=10)
    with pytest.raises(ValueError, match="cov: expected shape \\(3, 3\\)"):
        GaussianStats(np.zeros(3), np.eye(2), 3)
    with pytest.raises(ValueError, match="mean: expected a non-empty 1-D array"):
        GaussianStats(np.zeros((3, 1)), np.eye(3), 3)
    with pytest.raises(ValueError, match="cov: expected a symmetric matrix"):
        GaussianStats(np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), 3)
    with pytest.raises(ValueError, match="finite"):
        GaussianStats(np.array([0.0, np.nan]), np.eye(2), 3)
    with pytest.raises(ValueError, match="n: expected a positive integer"):
        GaussianStats(np.zeros(2), np.eye(2), 0)
    not_psd = GaussianStats(np.zeros(2), np.array([[1.0, 0.0], [0.0, -1.0]]), 3)
    with pytest.raises(ValueError, match="reference covariance: expected a positive semi-definite matrix"):
        frechet_distance(not_psd, np.ones((3, 2)))
    with pytest.raises(ValueError, match="round covariance: expected a positive semi-definite matrix"):
        frechet_distance(GaussianStats(np.zeros(2), np.eye(2), 3), not_psd)
    with pytest.raises(ValueError, match="level"):
        frechet_distance(x, x, level=0.0)


# --------------------------------------------------------------------------
# Embedding distribution similarity
# --------------------------------------------------------------------------


def test_eds_hand_values():
    ref = np.array([[3.0, 0.0]])  # mean unit vector (1, 0)
    # orthogonal directions: cos 90 = 0
    assert embedding_distribution_similarity(ref, np.array([[0.0, 5.0]])).value == pytest.approx(0.0, abs=1e-15)
    # round unit vectors (1,0), (0,1) -> mean (1/2, 1/2), at 45 degrees: cos = 1/sqrt2
    got = embedding_distribution_similarity(ref, np.array([[1.0, 0.0], [0.0, 2.0]])).value
    assert got == pytest.approx(1 / math.sqrt(2), abs=1e-15)
    # opposite: -1; same direction with other lengths: 1
    assert embedding_distribution_similarity(ref, np.array([[-0.1, 0.0]])).value == pytest.approx(-1.0, abs=1e-15)
    assert embedding_distribution_similarity(ref, np.array([[7.0, 0.0], [0.5, 0.0]])).value == pytest.approx(1.0)
    # normalisation happens before averaging: (10, 0) and (0, 1) average to (1/2, 1/2), not (5, 1/2)
    assert embedding_distribution_similarity(ref, np.array([[10.0, 0.0], [0.0, 1.0]])).value == pytest.approx(
        1 / math.sqrt(2), abs=1e-15
    )
    # 3-D: reference mean (1,1,0)/sqrt2 direction, round (0,0,1) and (1,0,0) -> mean (1/2, 0, 1/2)
    #   cos = (1/2 * 1/sqrt2) / (1/sqrt2 * 1/sqrt2) = 1/2
    r3 = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    assert embedding_distribution_similarity(r3, np.array([[0.0, 0.0, 3.0], [4.0, 0.0, 0.0]])).value == pytest.approx(
        0.5, abs=1e-15
    )


@pytest.mark.parametrize("n,m,d,seed", [(1, 1, 2, 0), (10, 7, 3, 1), (200, 150, 16, 2), (5, 40, 300, 3)])
def test_eds_matches_naive(n, m, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) + 0.5
    y = rng.standard_normal((m, d)) + 0.2
    got = embedding_distribution_similarity(x, y).value
    assert got == pytest.approx(naive_eds(x, y), abs=1e-13)
    for chunk in (1, 3):
        assert embedding_distribution_similarity(x, y, chunk_size=chunk).value == pytest.approx(got, abs=1e-13)
    # scale invariant per row
    xs = x * rng.uniform(0.01, 100.0, size=(n, 1))
    assert embedding_distribution_similarity(xs, y).value == pytest.approx(got, abs=1e-12)


def test_eds_set_against_itself_is_one():
    x = np.random.default_rng(19).standard_normal((30, 5)) + 0.1
    assert embedding_distribution_similarity(x, x).value == pytest.approx(1.0, abs=1e-12)


def test_eds_bootstrap_matches_naive_replicates():
    rng = np.random.default_rng(20)
    x, y = rng.standard_normal((20, 4)) + 1.0, rng.standard_normal((15, 4)) + np.array([1.0, 0.0, 1.0, 0.0])
    n_boot, seed = 80, 6
    r = embedding_distribution_similarity(x, y, n_boot=n_boot, seed=seed)
    reps = np.array([naive_eds(x, y, w) for w in bootstrap_counts(15, n_boot, seed)])
    se = reps.std(ddof=1)
    assert r.std_error == pytest.approx(se, rel=1e-9)
    # normal interval around the estimate (the replicates are biased low)
    assert (r.ci_low, r.ci_high) == pytest.approx((r.value - Z975 * se, r.value + Z975 * se), rel=1e-9)
    assert reps.mean() < r.value
    assert r == embedding_distribution_similarity(x, y, n_boot=n_boot, seed=seed)
    assert r.value == embedding_distribution_similarity(x, y).value
    assert -1.0 <= r.ci_low <= r.ci_high <= 1.0
    # near-identical directions: the upper end is clipped to 1
    near = embedding_distribution_similarity(x, x + 1e-3 * rng.standard_normal(x.shape), n_boot=50, seed=1)
    assert near.value > 0.999 and near.ci_high == 1.0 and near.ci_low < near.value


def test_eds_bad_input():
    x = np.random.default_rng(0).standard_normal((5, 3))
    z = x.copy()
    z[3] = 0.0
    with pytest.raises(ValueError, match="round: cosine similarity is undefined for zero vectors; 1 rows"):
        embedding_distribution_similarity(x, z)
    with pytest.raises(ValueError, match="reference: cosine similarity is undefined for zero vectors"):
        embedding_distribution_similarity(z, x)
    antipodal = np.array([[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]])
    with pytest.raises(ValueError, match="reference: the mean of the L2-normalised rows has norm"):
        embedding_distribution_similarity(antipodal, x)
    with pytest.raises(ValueError, match="round: the mean of the L2-normalised rows has norm"):
        embedding_distribution_similarity(x, antipodal)
    with pytest.raises(ValueError, match="round: expected D=3 features to match reference, got D=2"):
        embedding_distribution_similarity(x, x[:, :2])
    bad = x.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="reference: 1 NaN or inf values"):
        embedding_distribution_similarity(bad, x)
    with pytest.raises(ValueError, match="n_boot"):
        embedding_distribution_similarity(x, x, n_boot=1.5)
