"""Tests of the Vendi score and the self cosine similarity (metrics_core.diversity)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from metrics_core.bootstrap import bootstrap_counts
from metrics_core import self_cosine_similarity, vendi_score
from metrics_core.bootstrap import Estimate

# --------------------------------------------------------------------------
# Naive reference implementations (full n x n cosine kernel).
# --------------------------------------------------------------------------


def _cosine_kernel(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=1)
    return (x @ x.T) / np.outer(n, n)


def naive_vendi(x: np.ndarray, w: np.ndarray | None = None) -> float:
    """exp of the Shannon entropy of the eigenvalues of K/n (or of the reweighted
    kernel diag(sqrt w) K diag(sqrt w) / sum(w) for bootstrap counts w)."""
    k = _cosine_kernel(x)
    if w is None:
        w = np.ones(len(k))
    sw = np.sqrt(np.asarray(w, dtype=np.float64))
    lam = np.linalg.eigvalsh(sw[:, None] * k * sw[None, :] / sw.dot(sw))
    lam = lam[lam > 1e-15]
    lam = lam / lam.sum()
    return float(np.exp(-(lam * np.log(lam)).sum()))


def naive_self_cos(x: np.ndarray, w: np.ndarray | None = None) -> float:
    """Mean of cos(x_i, x_j) over pairs i < j of distinct samples (weighted by w_i w_j)."""
    k = _cosine_kernel(x)
    n = len(k)
    if w is None:
        w = np.ones(n)
    w = np.asarray(w, dtype=np.float64)
    num = den = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            num += w[i] * w[j] * k[i, j]
            den += w[i] * w[j]
    return num / den



Z975 = float(scipy.stats.norm.ppf(0.975))  # 1.959963984540054

# --------------------------------------------------------------------------
# vendi_score
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n,d", [(1, 3), (2, 3), (5, 3), (50, 4), (7, 64)])
def test_vendi_copies_of_one_vector_is_one(n, d):
    v = np.random.default_rng(n).standard_normal(d)
    x = np.tile(v, (n, 1)) * np.linspace(0.5, 3.0, n)[:, None]  # positive rescaling keeps the direction
    assert vendi_score(x).value == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("n,d", [(2, 2), (3, 3), (4, 10), (16, 16), (20, 64)])
def test_vendi_orthogonal_vectors_is_n(n, d):
    # n orthonormal directions (random rotation, random positive lengths): K = I, eigenvalues 1/n
    rng = np.random.default_rng(d)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    x = q[:n] * rng.uniform(0.1, 10.0, size=(n, 1))
    assert vendi_score(x).value == pytest.approx(float(n), rel=1e-10)


def test_vendi_doc_example():
    assert round(vendi_score(np.eye(3)).value, 6) == 3.0
    assert round(vendi_score(np.ones((4, 2))).value, 6) == 1.0


@pytest.mark.parametrize("theta_deg", [0.0, 30.0, 60.0, 90.0, 120.0, 180.0])
@pytest.mark.parametrize("d", [2, 5])
def test_vendi_two_vectors_at_angle(theta_deg, d):
    # K = [[1, c], [c, 1]] with c = cos(theta); K/2 has eigenvalues p = (1+c)/2 and q = (1-c)/2,
    # so VS = exp(-(p log p + q log q)) (0 log 0 = 0). E.g. theta = 60: p = 3/4, q = 1/4,
    # H = -(0.75 ln 0.75 + 0.25 ln 0.25) = 0.562335..., VS = 1.754765...; theta = 90: VS = 2;
    # theta = 0 or 180: one eigenvalue is 0 and VS = 1.
    t = math.radians(theta_deg)
    x = np.zeros((2, d))
    x[0, 0] = 1.0
    x[1, 0], x[1, 1] = 3.0 * math.cos(t), 3.0 * math.sin(t)
    c = math.cos(t)
    p, q = (1 + c) / 2, (1 - c) / 2
    h = -sum(v * math.log(v) for v in (p, q) if v > 1e-15)
    assert vendi_score(x).value == pytest.approx(math.exp(h), abs=1e-9)


def test_vendi_two_vectors_60_degrees_literal():
    x = np.array([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    assert vendi_score(x).value == pytest.approx(1.7547654, abs=1e-6)


def test_vendi_antipodal_in_one_dimension():
    # n > D path with D = 1: x and -2x: K = [[1,-1],[-1,1]], eigenvalues of K/2 are {1, 0} -> 1
    assert vendi_score(np.array([[1.0], [-2.0]])).value == pytest.approx(1.0, abs=1e-12)
    assert vendi_score(np.array([[1.0], [-2.0], [0.5]])).value == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    "n,d,seed",
    [(200, 8, 0), (65, 64, 1), (64, 64, 2), (30, 64, 3), (9, 8, 4), (8, 8, 5), (3, 50, 6)],
)
def test_vendi_matches_naive(n, d, seed):
    # covers n > D (D x D second moment) and n <= D (n x n Gram) paths
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) + 0.3 * rng.standard_normal(d)
    got = vendi_score(x).value
    want = naive_vendi(x)
    assert got == pytest.approx(want, rel=1e-9)
    assert 1.0 <= got <= min(n, d) + 1e-9


def test_vendi_float32_and_tensor_input():
    x = np.random.default_rng(0).standard_normal((40, 6))
    want = naive_vendi(x)
    assert vendi_score(torch.from_numpy(x)).value == pytest.approx(want, rel=1e-12)
    x32 = x.astype(np.float32)
    assert vendi_score(x32).value == pytest.approx(naive_vendi(x32.astype(np.float64)), rel=1e-9)


def test_vendi_is_scale_invariant_per_row_and_permutation_invariant():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 5))
    base = vendi_score(x).value
    assert vendi_score(x * rng.uniform(0.01, 100.0, size=(30, 1))).value == pytest.approx(base, rel=1e-10)
    assert vendi_score(x[rng.permutation(30)]).value == pytest.approx(base, rel=1e-10)


def test_vendi_more_collapse_means_lower_score():
    rng = np.random.default_rng(2)
    diverse = rng.standard_normal((100, 16))
    collapsed = np.tile(rng.standard_normal(16), (100, 1)) + 0.05 * rng.standard_normal((100, 16))
    assert vendi_score(collapsed).value < 2.0 < vendi_score(diverse).value


# --------------------------------------------------------------------------
# self_cosine_similarity
# --------------------------------------------------------------------------


def test_self_cos_hand_values():
    # (1,0), (0,1), (1,1): cosines 0, 1/sqrt2, 1/sqrt2 -> mean sqrt(2)/3 = 0.471404...
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert self_cosine_similarity(x).value == pytest.approx(math.sqrt(2) / 3, abs=1e-15)
    # two orthogonal vectors: 0
    assert self_cosine_similarity(np.array([[2.0, 0.0], [0.0, 5.0]])).value == pytest.approx(0.0, abs=1e-15)
    # opposite vectors: -1
    assert self_cosine_similarity(np.array([[1.0, 2.0], [-3.0, -6.0]])).value == pytest.approx(-1.0, abs=1e-15)
    # three unit vectors at 120 degrees: every cosine -1/2 = -1/(n-1), the lower bound
    x = np.array([[math.cos(a), math.sin(a)] for a in (0.0, 2 * math.pi / 3, 4 * math.pi / 3)])
    assert self_cosine_similarity(x).value == pytest.approx(-0.5, abs=1e-12)


def test_self_cos_collapsed_set_is_one():
    v = np.array([0.3, -1.2, 2.0, 0.7])
    x = np.tile(v, (25, 1)) * np.linspace(0.1, 4.0, 25)[:, None]
    assert self_cosine_similarity(x).value == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("n,d,seed", [(2, 3, 0), (10, 2, 1), (60, 8, 2), (120, 64, 3), (40, 300, 4)])
def test_self_cos_matches_naive(n, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) + 0.5 * rng.standard_normal(d)
    assert self_cosine_similarity(x).value == pytest.approx(naive_self_cos(x), abs=1e-12)


def test_self_cos_scale_and_order_invariant():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((30, 4))
    base = self_cosine_similarity(x).value
    scaled = x * rng.uniform(0.01, 100.0, size=(30, 1))
    assert self_cosine_similarity(scaled).value == pytest.approx(base, abs=1e-12)
    assert self_cosine_similarity(x[::-1].copy()).value == pytest.approx(base, abs=1e-12)


# --------------------------------------------------------------------------
# Input validation.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [vendi_score, self_cosine_similarity])
def test_zero_row_raises(fn):
    x = np.array([[1.0, 2.0], [0.0, 0.0], [3.0, 1.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match=r"x: cosine similarity is undefined for zero vectors; 2 rows are all zero \(first is row 1\)"):
        fn(x)


@pytest.mark.parametrize("fn", [vendi_score, self_cosine_similarity])
@pytest.mark.parametrize(
    "x,match",
    [
        (np.array([[1.0, np.nan], [1.0, 2.0]]), r"x: 1 NaN or inf values"),
        (np.array([[1.0, np.inf], [1.0, 2.0]]), r"x: 1 NaN or inf values"),
        (np.array([1.0, 2.0, 3.0]), r"x: expected a 2-D array"),
        (np.empty((0, 3)), r"x: expected a non-empty array"),
        (np.ones((3, 2), dtype=np.int64), r"x: expected a float array, got dtype int64"),
    ],
)
def test_bad_input_raises(fn, x, match):
    with pytest.raises(ValueError, match=match):
        fn(x)


def test_self_cos_needs_two_rows_vendi_one():
    with pytest.raises(ValueError, match=r"x: expected at least 2 rows, got 1"):
        self_cosine_similarity(np.array([[1.0, 2.0]]))
    assert vendi_score(np.array([[1.0, 2.0]])).value == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("fn", [vendi_score, self_cosine_similarity])
def test_bad_bootstrap_arguments_raise(fn):
    x = np.random.default_rng(0).standard_normal((10, 3))
    with pytest.raises(ValueError, match="n_boot"):
        fn(x, n_boot=-1)
    with pytest.raises(ValueError, match="level"):
        fn(x, n_boot=10, level=1.0)
    with pytest.raises(ValueError, match="level"):
        fn(x, level=0.0)


# --------------------------------------------------------------------------
# Bootstrap intervals.
# --------------------------------------------------------------------------

X_BOOT = np.random.default_rng(42).standard_normal((80, 6)) + 0.4


@pytest.mark.parametrize("fn", [vendi_score, self_cosine_similarity])
def test_no_bootstrap_gives_none_intervals(fn):
    est = fn(X_BOOT)
    assert isinstance(est, Estimate)
    assert est.ci_low is None and est.ci_high is None and est.std_error is None
    assert est == fn(X_BOOT, n_boot=0)


@pytest.mark.parametrize("fn", [vendi_score, self_cosine_similarity])
def test_bootstrap_seeded_and_deterministic(fn):
    a = fn(X_BOOT, n_boot=100, seed=3)
    b = fn(X_BOOT, n_boot=100, seed=3)
    c = fn(X_BOOT, n_boot=100, seed=4)
    assert a == b
    assert a.value == c.value == fn(X_BOOT).value  # the point estimate ignores the bootstrap
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)


@pytest.mark.parametrize("fn", [vendi_score, self_cosine_similarity])
def test_bootstrap_interval_brackets_value(fn):
    est = fn(X_BOOT, n_boot=200, seed=0)
    assert est.ci_low <= est.value <= est.ci_high
    assert est.ci_low < est.ci_high
    assert est.std_error > 0


def test_vendi_interval_is_normal_around_estimate():
    est = vendi_score(X_BOOT, n_boot=150, seed=1)
    assert est.value - est.ci_low == pytest.approx(Z975 * est.std_error, rel=1e-10)
    assert est.ci_high - est.value == pytest.approx(Z975 * est.std_error, rel=1e-10)
    est90 = vendi_score(X_BOOT, n_boot=150, seed=1, level=0.9)
    assert est90.std_error == est.std_error
    assert est90.ci_high - est90.value == pytest.approx(float(scipy.stats.norm.ppf(0.95)) * est.std_error, rel=1e-10)


@pytest.mark.parametrize("n,d", [(40, 5), (12, 30)])
def test_vendi_bootstrap_replicates_match_naive_reweighted_kernel(n, d):
    # Replicate b is the Vendi score of diag(sqrt w) K diag(sqrt w) / sum(w) for its counts w.
    x = np.random.default_rng(n).standard_normal((n, d))
    n_boot, seed = 60, 9
    reps = np.array([naive_vendi(x, w) for w in bootstrap_counts(n, n_boot, seed)])
    est = vendi_score(x, n_boot=n_boot, seed=seed)
    assert est.std_error == pytest.approx(reps.std(ddof=1), rel=1e-8)


def test_self_cos_bootstrap_uses_distinct_pairs_only():
    # Replicate b is the weighted mean over pairs i < j of distinct original samples.
    x = np.random.default_rng(7).standard_normal((25, 4)) + 0.2
    n_boot, seed = 80, 2
    reps = np.array([naive_self_cos(x, w) for w in bootstrap_counts(25, n_boot, seed)])
    est = self_cosine_similarity(x, n_boot=n_boot, seed=seed)
    lo, hi = np.quantile(reps, [0.025, 0.975])
    assert est.ci_low == pytest.approx(lo, abs=1e-12)
    assert est.ci_high == pytest.approx(hi, abs=1e-12)
    assert est.std_error == pytest.approx(reps.std(ddof=1), rel=1e-9)


def test_self_cos_bootstrap_of_collapsed_set_is_degenerate():
    # Every replicate of a collapsed set is 1 (duplicates of one sample are not counted as pairs).
    x = np.tile(np.array([1.0, 2.0, -1.0]), (30, 1))
    est = self_cosine_similarity(x, n_boot=50, seed=0)
    assert est.value == pytest.approx(1.0, abs=1e-12)
    assert est.ci_low == pytest.approx(1.0, abs=1e-12) and est.ci_high == pytest.approx(1.0, abs=1e-12)
    assert est.std_error == pytest.approx(0.0, abs=1e-12)


def test_vendi_bootstrap_of_collapsed_set_is_degenerate():
    x = np.tile(np.array([1.0, 2.0, -1.0]), (30, 1))
    est = vendi_score(x, n_boot=50, seed=0)
    assert est.value == pytest.approx(1.0, abs=1e-9)
    assert est.std_error == pytest.approx(0.0, abs=1e-9)
    assert est.ci_low == pytest.approx(1.0, abs=1e-8) and est.ci_high == pytest.approx(1.0, abs=1e-8)
