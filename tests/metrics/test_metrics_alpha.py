"""Tests of α-Precision, β-Recall and Authenticity (metrics_core.alpha).

Evidence:

* exact curves, integrated scores and authenticity on tiny 1-D / 2-D sets,
  worked out by hand in the comments (grids of 5 points: α = 0, .25, .5, .75, 1;
  trapezoid ∫f ≈ .25·(f0/2 + f1 + f2 + f3 + f4/2));
* a case that the "ρ indexed by the synthetic sample" bug gets wrong;
* identities: a round that copies the reference, a round far away, roles swapped;
* agreement with an independent brute-force implementation (scipy cdist,
  float64) on random data and on integer data full of exact ties;
* the bootstrap replicates rebuilt naively from the same generator draws;
* bad inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import torch
from scipy.spatial.distance import cdist

from metrics_core.alpha import (

    AlphaPrecisionResult,
    AlphaReference,
    alpha_precision_beta_recall_authenticity,
    alpha_precision_beta_recall_authenticity_from_reference,
    fit_alpha_reference,
)

pytestmark = pytest.mark.usefixtures("single_torch_thread")

ABS = 1e-12
GRID5 = [0.0, 0.25, 0.5, 0.75, 1.0]




def run(ref, rnd, **kw) -> AlphaPrecisionResult:
    return alpha_precision_beta_recall_authenticity(np.asarray(ref, float), np.asarray(rnd, float), **kw)


# --------------------------------------------------------------------------
# Independent naive implementation (float64, full scipy distance matrices).
# --------------------------------------------------------------------------


def naive_embed(ref, rnd, standardize):
    ref = np.asarray(ref, dtype=np.float64)
    rnd = np.asarray(rnd, dtype=np.float64)
    if not standardize:
        return ref, rnd
    mu = ref.mean(axis=0)
    sd = ref.std(axis=0)
    const = ref.max(axis=0) == ref.min(axis=0)
    mu[const] = ref[0, const]
    sd[const] = 1.0
    return (ref - mu) / sd, (rnd - mu) / sd


def naive_parts(ref, rnd, standardize=True, n_alphas=101):
    """Per-sample ingredients, straight from the definitions."""
    R, S = naive_embed(ref, rnd, standardize)
    n, m = len(R), len(S)
    alphas = np.linspace(0.0, 1.0, n_alphas)
    c, c_round = R.mean(axis=0), S.mean(axis=0)
    d_ref = np.sqrt(((R - c) ** 2).sum(axis=1))
    d_round = np.sqrt(((S - c) ** 2).sum(axis=1))
    radii = np.quantile(d_ref, alphas)
    DRR = cdist(R, R)
    np.fill_diagonal(DRR, np.inf)
    rho = DRR.min(axis=1)
    DRS = cdist(R, S)  # [N, M]
    s = DRS.argmin(axis=1)  # first index among ties
    a = DRS[np.arange(n), s] <= rho
    e = np.sqrt(((S[s] - c_round) ** 2).sum(axis=1))
    DSR = DRS.T
    istar = DSR.argmin(axis=1)
    dj = DSR[np.arange(m), istar]
    authentic = ~(dj < rho[istar])
    return dict(alphas=alphas, radii=radii, d_round=d_round, a=a, e=e, authentic=authentic, rho=rho, dj=dj)


def naive_integrated(curve, alphas):
    return 1.0 - 2.0 * scipy.integrate.trapezoid(np.abs(curve - alphas), alphas)


def naive_precision_curve(p):
    return np.array([np.mean(p["d_round"] <= r) for r in p["radii"]])


def naive_recall_curve(a, e, alphas):
    qs = np.quantile(e, alphas)
    return np.array([np.mean(a & (e <= q)) for q in qs])


def naive_all(ref, rnd, standardize=True, n_alphas=101):
    p = naive_parts(ref, rnd, standardize, n_alphas)
    P = naive_precision_curve(p)
    R = naive_recall_curve(p["a"], p["e"], p["alphas"])
    return P, R, naive_integrated(P, p["alphas"]), naive_integrated(R, p["alphas"]), p["authentic"].mean()


# --------------------------------------------------------------------------
# Hand-computed cases.
# --------------------------------------------------------------------------


def test_hand_1d_every_value():
    # standardize=False, n_alphas=5.
    # Reference x = [-2, -1, 0.5, 2.5]: c = 0, distances to c [2, 1, .5, 2.5],
    # sorted [.5, 1, 2, 2.5], position h = 3α:
    #   r_0 = .5; r_.25 (h=.75) = .5+.75·.5 = .875; r_.5 (h=1.5) = 1+.5·1 = 1.5;
    #   r_.75 (h=2.25) = 2+.25·.5 = 2.125; r_1 = 2.5.
    # Own NN distances ρ = [1, 1, 1.5, 2].
    # Round y = [-.8, .3, 4.6, -3.1]: distances to c [.8, .3, 4.6, 3.1].
    #   P: r=.5 {.3} 1/4; .875 {.3,.8} 2/4; 1.5: 2/4; 2.125: 2/4; 2.5: 2/4.
    #   |P-α| = [.25, .25, 0, .25, .5]; ∫ = .25·(.125+.25+0+.25+.25) = .21875;
    #   IP = 1 - .4375 = .5625.
    # β: c̃ = (-.8+.3+4.6-3.1)/4 = .25. Nearest round s(i), distance vs ρ_i:
    #   -2 -> -3.1 (1.1 > 1: F);  -1 -> -.8 (.2 <= 1: T);
    #   .5 -> .3 (.2 <= 1.5: T);  2.5 -> 4.6 (2.1 > 2: F).
    #   e = |s(i) - .25| = [3.35, 1.05, .05, 4.35], sorted [.05, 1.05, 3.35, 4.35]:
    #   q_0 = .05; q_.25 = .05+.75·1 = .8; q_.5 = 1.05+.5·2.3 = 2.2; q_.75 = 3.35+.25 = 3.6; q_1 = 4.35.
    #   R: {.5} 1/4; {.5} 1/4; {.5,-1} 2/4; +(-2, F) 2/4; +(2.5, F) 2/4.
    #   |R-β| = [.25, 0, 0, .25, .5]; ∫ = .25·(.125+0+0+.25+.25) = .15625; IR = .6875.
    # Authenticity: nearest reference i*(j), d vs ρ_{i*}:
    #   -.8 -> -1 (.2 < 1 copy); .3 -> .5 (.2 < 1.5 copy);
    #   4.6 -> 2.5 (2.1 >= 2 authentic); -3.1 -> -2 (1.1 >= 1 authentic).  A = 2/4.
    res = run([[-2.0], [-1.0], [0.5], [2.5]], [[-0.8], [0.3], [4.6], [-3.1]], standardize=False, n_alphas=5)
    assert res.alphas.tolist() == GRID5
    assert res.alpha_precision_curve.tolist() == [0.25, 0.5, 0.5, 0.5, 0.5]
    assert res.beta_recall_curve.tolist() == [0.25, 0.25, 0.5, 0.5, 0.5]
    assert res.alpha_precision.value == pytest.approx(0.5625, abs=ABS)
    assert res.beta_recall.value == pytest.approx(0.6875, abs=ABS)
    assert res.authenticity.value == 0.5
    assert res.alpha_precision.ci_low is None and res.authenticity.std_error is None
    fit = fit_alpha_reference([[-2.0], [-1.0], [0.5], [2.5]], standardize=False, n_alphas=5)
    np.testing.assert_allclose(fit.radii, [0.5, 0.875, 1.5, 2.125, 2.5], atol=ABS)
    assert fit.sq_nn_distances.tolist() == [1.0, 1.0, 2.25, 4.0]


def test_hand_2d_standardized():
    # Reference (0,0),(2,0),(0,4),(2,4): μ = (1,2), σ = (1,2) (ddof=0) ->
    # embedded a=(-1,-1), b=(1,-1), c'=(-1,1), d=(1,1); c = 0; all at distance √2,
    # so r_α = √2 for every α; ρ = 2 for all.
    # Round (1,2),(3,1),(1,4),(4,8) -> u0=(0,0), u1=(2,-.5), u2=(0,1), u3=(3,3).
    # α: distances 0, √4.25, 1, √18; <= √2: u0, u2 -> P = .5 everywhere;
    #   |.5-α| = [.5,.25,0,.25,.5]; ∫ = .25·(.25+.25+0+.25+.25) = .25; IP = .5.
    # β: c̃ = ((0+2+0+3)/4, (0-.5+1+3)/4) = (1.25, .875).
    #   squared distances to u0..u3: a: 2, 9.25, 5, 32 -> u0 (2 <= 4 T)
    #                                b: 2, 1.25, 5, 20 -> u1 (T)
    #                                c': 2, 11.25, 1, 20 -> u2 (T)
    #                                d: 2, 3.25, 1, 8 -> u2 (T)
    #   e² : u0 1.25²+.875² = 2.328125; u1 .75²+1.375² = 2.453125; u2 1.25²+.125² = 1.578125
    #   e = [a 1.5258, b 1.5662, c' 1.2562, d 1.2562], sorted [1.2562, 1.2562, 1.5258, 1.5662]
    #   q: 1.2562; 1.2562; (1.2562+1.5258)/2 = 1.391; 1.5258+.25·.0404 = 1.5359; 1.5662
    #   R = [.5, .5, .5, .75, 1]; |R-β| = [.5,.25,0,0,0]; ∫ = .25·(.25+.25) = .125; IR = .75.
    # Authenticity (ρ² = 4): u0 (d²=2 copy), u1 -> b (1.25 copy), u2 -> c' (1 copy),
    #   u3 -> d (d² = 8 >= 4 authentic): A = 1/4.
    ref = [[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 4.0]]
    rnd = [[1.0, 2.0], [3.0, 1.0], [1.0, 4.0], [4.0, 8.0]]
    res = run(ref, rnd, n_alphas=5)
    assert res.alpha_precision_curve.tolist() == [0.5] * 5
    assert res.beta_recall_curve.tolist() == [0.5, 0.5, 0.5, 0.75, 1.0]
    assert res.alpha_precision.value == pytest.approx(0.5, abs=ABS)
    assert res.beta_recall.value == pytest.approx(0.75, abs=ABS)
    assert res.authenticity.value == 0.25
    fit = fit_alpha_reference(ref, n_alphas=5)
    assert fit.mean.tolist() == [1.0, 2.0] and fit.scale.tolist() == [1.0, 2.0]
    np.testing.assert_allclose(fit.radii, [np.sqrt(2.0)] * 5, rtol=1e-15)


def naive_buggy_authenticity_synthetic_index(ref, rnd):
    """The known bug: ρ indexed by the round sample's index j instead of i*(j)."""
    p = naive_parts(ref, rnd, standardize=False, n_alphas=2)
    return np.mean(~(p["dj"] < p["rho"][: len(p["dj"])]))


def test_authenticity_uses_rho_of_the_nearest_reference_not_of_the_synthetic_index():
    # Reference [0, 9, 10, 15]: ρ = [9, 1, 1, 5].
    # Round [16, 5, 17]:
    #   16 -> i* = 15 (idx 3), d = 1 < ρ_3 = 5: copy
    #    5 -> i* = 9 (idx 1),  d = 4 >= ρ_1 = 1: authentic
    #   17 -> i* = 15 (idx 3), d = 2 < ρ_3 = 5: copy         -> A = 1/3.
    # The bug compares with ρ_j: 1 < ρ_0=9 copy; 4 >= ρ_1=1 auth; 2 >= ρ_2=1 auth -> 2/3.
    # The authors' code (per reference i, ρ_{s(i)} < d(i, s(i)), over the reference):
    #   0 -> 5 (idx1): 1 < 5 T; 9 -> 5: 1 < 4 T; 10 -> 5: 1 < 5 T; 15 -> 16 (idx0): 9 < 1 F -> 3/4.
    ref, rnd = [[0.0], [9.0], [10.0], [15.0]], [[16.0], [5.0], [17.0]]
    res = run(ref, rnd, standardize=False)
    assert res.authenticity.value == pytest.approx(1 / 3, abs=ABS)
    assert naive_buggy_authenticity_synthetic_index(ref, rnd) == pytest.approx(2 / 3)
    assert res.authenticity.value != pytest.approx(0.75)


def test_authenticity_tie_counts_as_authentic():
    # Reference [0, 10, 11]: ρ = [10, 1, 1]. Round [12, 4, 3]:
    #   12 -> 11 at distance 1 == ρ_2 = 1: not strictly closer -> authentic
    #    4 -> 0 at 4 < 10 copy;  3 -> 0 at 3 < 10 copy. A = 1/3.
    res = run([[0.0], [10.0], [11.0]], [[12.0], [4.0], [3.0]], standardize=False)
    assert res.authenticity.value == pytest.approx(1 / 3, abs=ABS)
    # Nudged strictly inside, 11.999 is a copy: A = 0.
    assert run([[0.0], [10.0], [11.0]], [[11.999], [4.0], [3.0]], standardize=False).authenticity.value == 0.0


def test_copy_of_a_duplicated_reference_point_is_authentic():
    # Reference [0, 0, 5]: ρ = [0, 0, 5] (the duplicate is another sample).
    #   round 0   -> i* = idx 0, d = 0, 0 < 0 false: authentic
    #   round 5   -> i* = idx 2, d = 0 < 5: copy
    #   round 0.1 -> i* = idx 0, d = .1 >= 0: authentic        -> A = 2/3.
    res = run([[0.0], [0.0], [5.0]], [[0.0], [5.0], [0.1]], standardize=False)
    assert res.authenticity.value == pytest.approx(2 / 3, abs=ABS)


def test_round_copying_reference_without_duplicates():
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(60, 3)) * [1.0, 5.0, 0.1]
    res = run(ref, ref.copy(), n_alphas=101)
    # Every round sample is at distance 0 < ρ of its own original: all copies.
    assert res.authenticity.value == 0.0
    # s(i) = i at distance 0 <= ρ_i, c̃ = c, e_i = ||x_i - c||: the two curves coincide.
    np.testing.assert_array_equal(res.alpha_precision_curve, res.beta_recall_curve)
    assert res.alpha_precision.value == res.beta_recall.value
    # With 60 distinct distances, r_α lies in [d_(⌊59α⌋), d_(⌊59α⌋+1)) (59α is never an
    # integer for 0 < α < 1 on this grid), so P_α = (⌊59α⌋ + 1)/60.
    expected = np.array([(59 * k // 100 + 1) / 60 for k in range(101)])
    np.testing.assert_allclose(res.alpha_precision_curve, expected, rtol=0, atol=1e-15)
    assert 0.98 < res.alpha_precision.value < 1.0


def test_round_far_away_scores_zero_and_is_authentic():
    rng = np.random.default_rng(4)
    ref = rng.normal(size=(40, 2))
    res = run(ref, rng.normal(size=(30, 2)) + 100.0, n_alphas=11)
    # Every round distance exceeds r_1 = max reference distance: P ≡ 0, ∫α = 1/2, IP = 0.
    assert res.alpha_precision_curve.tolist() == [0.0] * 11
    assert res.alpha_precision.value == pytest.approx(0.0, abs=ABS)
    # No reference sample is reached: R ≡ 0, IR = 0.
    assert res.beta_recall_curve.tolist() == [0.0] * 11
    assert res.beta_recall.value == pytest.approx(0.0, abs=ABS)
    assert res.authenticity.value == 1.0


def test_swapping_roles_changes_values():
    # standardize=False, n_alphas=5. A = [-1, 0, 1], B = [.1, .3, 3, 4.4].
    # reference A (real), round B:
    #   c = 0, distances [1, 0, 1] sorted [0, 1, 1], h = 2α: r = [0, .5, 1, 1, 1].
    #   B distances [.1, .3, 3, 4.4]: P = [0, .5, .5, .5, .5]; |P-α| = [0,.25,0,.25,.5];
    #   ∫ = .25·(0+.25+0+.25+.25) = .1875; IP = .625.
    #   ρ_A = [1, 1, 1]; c̃ = 7.8/4 = 1.95; s: -1 -> .1 (1.1 > 1 F), 0 -> .1 (T), 1 -> .3 (.7 T);
    #   e = [1.85, 1.85, 1.65] sorted [1.65, 1.85, 1.85]; q = [1.65, 1.75, 1.85, 1.85, 1.85]
    #   R = [1/3, 1/3, 2/3, 2/3, 2/3]; |R-β| = [1/3, 1/12, 1/6, 1/12, 1/3]; ∫ = .25·(2/3) = 1/6; IR = 2/3.
    #   authenticity: .1 -> 0 copy, .3 -> 0 copy, 3 -> 1 (2 >= 1), 4.4 -> 1 (3.4 >= 1): 1/2.
    # reference B (real), round A:
    #   c = 1.95, distances [1.85, 1.65, 1.05, 2.45] sorted [1.05, 1.65, 1.85, 2.45], h = 3α:
    #   r = [1.05, 1.5, 1.75, 2.0, 2.45]; A distances [2.95, 1.95, .95]:
    #   P = [1/3, 1/3, 1/3, 2/3, 2/3]; |P-α| = [1/3, 1/12, 1/6, 1/12, 1/3]; IP = 2/3.
    #   ρ_B = [.2, .2, 1.4, 1.4]; c̃ = 0; s: .1 -> 0 (.1 <= .2 T), .3 -> 0 (.3 F), 3 -> 1 (2 F), 4.4 -> 1 (F);
    #   e = [0, 0, 1, 1]; q = [0, 0, .5, 1, 1]; R = [.25]*5 (only .1 counts);
    #   |R-β| = [.25, 0, .25, .5, .75]; ∫ = .25·(.125+0+.25+.5+.375) = .3125; IR = .375.
    #   authenticity: -1 -> .1 (1.1 >= .2), 0 -> .1 (.1 < .2 copy), 1 -> .3 (.7 >= .2): 2/3.
    a, b = [[-1.0], [0.0], [1.0]], [[0.1], [0.3], [3.0], [4.4]]
    ab = run(a, b, standardize=False, n_alphas=5)
    ba = run(b, a, standardize=False, n_alphas=5)
    assert ab.alpha_precision_curve.tolist() == [0.0, 0.5, 0.5, 0.5, 0.5]
    np.testing.assert_allclose(ab.beta_recall_curve, [1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3], atol=ABS)
    assert (ab.alpha_precision.value, ab.beta_recall.value, ab.authenticity.value) == pytest.approx(
        (0.625, 2 / 3, 0.5), abs=ABS
    )
    np.testing.assert_allclose(ba.alpha_precision_curve, [1 / 3, 1 / 3, 1 / 3, 2 / 3, 2 / 3], atol=ABS)
    assert ba.beta_recall_curve.tolist() == [0.25] * 5
    assert (ba.alpha_precision.value, ba.beta_recall.value, ba.authenticity.value) == pytest.approx(
        (2 / 3, 0.375, 2 / 3), abs=ABS
    )


def test_constant_reference_feature_is_centred_not_scaled():
    # Reference [[0,7],[2,7],[4,7]]: μ = (2,7), σ = (√(8/3), 0 -> 1).
    # Embedded reference (±1.2247, 0), (0, 0); c = 0; distances sorted [0, 1.2247, 1.2247]
    # -> with n_alphas=3: r = [0, 1.2247, 1.2247]; ρ = 1.2247 for all.
    # Round [[2, 7.5], [2, 9]] -> (0, .5), (0, 2): distances .5 and 2.
    #   P = [0 (.5 > 0), .5, .5]. Dropping the feature would give distances 0 and P = [1,1,1];
    #   dividing by a tiny σ would give P = [0, 0, 0].
    #   authenticity: (0,.5) -> (0,0), .5 < 1.2247 copy; (0,2) -> (0,0), 2 >= 1.2247 authentic: 1/2.
    ref = np.array([[0.0, 7.0], [2.0, 7.0], [4.0, 7.0]])
    rnd = np.array([[2.0, 7.5], [2.0, 9.0]])
    res = run(ref, rnd, n_alphas=3)
    assert res.alpha_precision_curve.tolist() == [0.0, 0.5, 0.5]
    assert res.authenticity.value == 0.5
    fit = fit_alpha_reference(ref, n_alphas=3)
    assert fit.scale[1].item() == 1.0 and fit.mean[1].item() == 7.0
    # The same as standardising by hand (σ -> 1 for the constant column) and standardize=False.
    mu, sd = ref.mean(axis=0), np.array([np.sqrt(8 / 3), 1.0])
    manual = run((ref - mu) / sd, (rnd - mu) / sd, standardize=False, n_alphas=3)
    np.testing.assert_array_equal(manual.alpha_precision_curve, res.alpha_precision_curve)
    np.testing.assert_array_equal(manual.beta_recall_curve, res.beta_recall_curve)
    assert manual.alpha_precision.value == pytest.approx(res.alpha_precision.value, abs=ABS)


def test_constant_column_with_inexact_mean_is_not_blown_up():
    # 0.1 summed three times is not 3·0.1 in float64; the column is still constant,
    # so its scale is 1 and the round value 0.1 embeds to exactly 0.
    ref = np.array([[0.0, 0.1], [1.0, 0.1], [2.0, 0.1]])
    fit = fit_alpha_reference(ref)
    assert fit.scale[1].item() == 1.0
    assert fit.embed(torch.tensor([[1.0, 0.1]], dtype=torch.float64))[0].tolist() == [0.0, 0.0]


def test_fully_constant_reference_is_finite():
    # All reference rows equal (1, 1): σ -> 1, c = 0, r_α = 0, ρ = 0.
    # Round (1,1) -> 0 and (2,1) -> (1,0): P = [.5]*5 -> IP = .5 (as in the 2-D case).
    # ρ = 0 so nothing is strictly closer: A = 1. c̃ = (.5, 0), every s(i) = idx 0 at
    # distance 0 <= 0, e = .5 for all -> R ≡ 1, ∫(1-β) = 1/2, IR = 0.
    res = run([[1.0, 1.0]] * 3, [[1.0, 1.0], [2.0, 1.0]], n_alphas=5)
    assert res.alpha_precision_curve.tolist() == [0.5] * 5
    assert res.beta_recall_curve.tolist() == [1.0] * 5
    assert (res.alpha_precision.value, res.beta_recall.value, res.authenticity.value) == pytest.approx(
        (0.5, 0.0, 1.0), abs=ABS
    )


# --------------------------------------------------------------------------
# Agreement with the naive implementation.
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seed,n,m,d,standardize,n_alphas",
    [
        (0, 50, 40, 3, True, 101),
        (1, 30, 70, 1, True, 101),
        (2, 80, 80, 8, False, 21),
        (3, 20, 5, 2, True, 7),
        (4, 2, 3, 4, True, 101),
        (5, 300, 200, 16, True, 101),
    ],
)
def test_matches_naive_random(seed, n, m, d, standardize, n_alphas):
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.1, 10.0, size=d)
    ref = rng.normal(size=(n, d)) * scales + 3.0
    rnd = rng.normal(size=(m, d)) * scales * 0.8 + 3.2
    P, R, ip, ir, auth = naive_all(ref, rnd, standardize, n_alphas)
    # chunk_size=7 splits every tile of the k-NN engine.
    for chunk_size in (7, 4096):
        res = run(ref, rnd, standardize=standardize, n_alphas=n_alphas, chunk_size=chunk_size)
        np.testing.assert_array_equal(res.alpha_precision_curve, P)
        np.testing.assert_array_equal(res.beta_recall_curve, R)
        assert res.alpha_precision.value == pytest.approx(ip, abs=1e-12)
        assert res.beta_recall.value == pytest.approx(ir, abs=1e-12)
        assert res.authenticity.value == auth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_naive_on_integer_data_with_ties(seed):
    # Small integers with sizes 64 and 32: both means are dyadic, so every distance is
    # exact and the many ties (duplicates, equidistant neighbours) are real ties, decided
    # by the documented rules (smaller index; <= for recall; strict < for copies).
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 8, size=(64, 2)).astype(np.float64)
    rnd = rng.integers(0, 9, size=(32, 2)).astype(np.float64)
    P, R, ip, ir, auth = naive_all(ref, rnd, standardize=False, n_alphas=11)
    res = run(ref, rnd, standardize=False, n_alphas=11)
    np.testing.assert_array_equal(res.alpha_precision_curve, P)
    np.testing.assert_array_equal(res.beta_recall_curve, R)
    assert res.alpha_precision.value == pytest.approx(ip, abs=1e-12)
    assert res.beta_recall.value == pytest.approx(ir, abs=1e-12)
    assert res.authenticity.value == auth
    # Some exact copies of duplicated reference points (authentic, ρ = 0) and of unique ones (copies).
    p = naive_parts(ref, rnd, standardize=False, n_alphas=2)
    exact_copy = p["dj"] == 0
    assert np.any(exact_copy & p["authentic"])
    assert np.any(exact_copy & ~p["authentic"])


def test_scores_stay_in_unit_interval():
    # Curves are non-decreasing, so 0 <= IP, IR <= 1 even for pathological rounds.
    rng = np.random.default_rng(9)
    ref = rng.normal(size=(50, 3))
    rounds = [
        np.zeros((20, 3)),  # collapsed to the centre
        np.full((20, 3), 1.5),  # collapsed off-centre
        ref[:5] + 1e-3,  # near-copies of a few
        rng.normal(size=(20, 3)) * 3.0,  # too wide
        rng.normal(size=(20, 3)) * 0.2,  # too narrow
    ]
    for rnd in rounds:
        res = run(ref, rnd, n_alphas=33)
        for v in (res.alpha_precision.value, res.beta_recall.value, res.authenticity.value):
            assert -ABS <= v <= 1.0
        assert np.all(np.diff(res.alpha_precision_curve) >= 0)
        assert np.all(np.diff(res.beta_recall_curve) >= 0)


def test_fit_reuse_and_torch_inputs():
    rng = np.random.default_rng(11)
    ref = rng.normal(size=(40, 3))
    r1, r2 = rng.normal(size=(25, 3)), rng.normal(size=(30, 3)) + 0.5
    fit = fit_alpha_reference(torch.from_numpy(ref), n_alphas=21)
    assert isinstance(fit, AlphaReference)
    for rnd in (r1, r2):
        a = alpha_precision_beta_recall_authenticity_from_reference(fit, torch.from_numpy(rnd))
        b = run(ref, rnd, n_alphas=21)
        np.testing.assert_array_equal(a.alpha_precision_curve, b.alpha_precision_curve)
        np.testing.assert_array_equal(a.beta_recall_curve, b.beta_recall_curve)
        assert (a.alpha_precision, a.beta_recall, a.authenticity) == (b.alpha_precision, b.beta_recall, b.authenticity)
    # float32 inputs give the same counts on tie-free data.
    c = run(ref.astype(np.float32), r1.astype(np.float32), n_alphas=21)
    d = alpha_precision_beta_recall_authenticity_from_reference(fit, r1)
    assert c.authenticity.value == d.authenticity.value


# --------------------------------------------------------------------------
# Bootstrap.
# --------------------------------------------------------------------------


def _draws(seed, n, n_boot):
    rng = np.random.default_rng(seed)
    return [np.bincount(rng.integers(0, n, size=n), minlength=n) for _ in range(n_boot)]


def test_bootstrap_replicates_match_naive_resampling():
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(30, 2))
    rnd = rng.normal(size=(25, 2)) * 1.3
    n_boot, level, seed = 40, 0.9, 17
    res = run(ref, rnd, n_boot=n_boot, level=level, seed=seed, n_alphas=21)
    base = naive_parts(ref, rnd, True, 21)
    alphas = base["alphas"]
    z = scipy.stats.norm.ppf(0.95)

    # α-precision: the round resampled literally (the reference is the fixed yardstick), seed.
    reps = []
    for w in _draws(seed, len(rnd), n_boot):
        p = naive_parts(ref, np.repeat(rnd, w, axis=0), True, 21)
        reps.append(naive_integrated(naive_precision_curve(p), alphas))
    se = np.std(reps, ddof=1)
    assert res.alpha_precision.std_error == pytest.approx(se, rel=1e-9)
    assert res.alpha_precision.ci_low == pytest.approx(res.alpha_precision.value - z * se, rel=1e-9)
    assert res.alpha_precision.ci_high == pytest.approx(res.alpha_precision.value + z * se, rel=1e-9)

    # β-recall: reference weights, seed + 1; e_i repeated w_i times, condition (a) fixed.
    reps = []
    for w in _draws(seed + 1, len(ref), n_boot):
        a, e = np.repeat(base["a"], w), np.repeat(base["e"], w)
        reps.append(naive_integrated(naive_recall_curve(a, e, alphas), alphas))
    se = np.std(reps, ddof=1)
    assert res.beta_recall.std_error == pytest.approx(se, rel=1e-9)
    assert res.beta_recall.ci_high - res.beta_recall.ci_low == pytest.approx(2 * z * se, rel=1e-9)

    # Authenticity: the round resampled literally, seed + 2, percentile interval.
    reps = []
    for w in _draws(seed + 2, len(rnd), n_boot):
        reps.append(naive_parts(ref, np.repeat(rnd, w, axis=0), True, 2)["authentic"].mean())
    lo, hi = np.quantile(reps, [0.05, 0.95])
    assert res.authenticity.std_error == pytest.approx(np.std(reps, ddof=1), rel=1e-9)
    assert (res.authenticity.ci_low, res.authenticity.ci_high) == pytest.approx((lo, hi), rel=1e-9)
    assert res.authenticity.value == base["authentic"].mean()


def test_bootstrap_is_deterministic():
    rng = np.random.default_rng(6)
    ref, rnd = rng.normal(size=(40, 3)), rng.normal(size=(35, 3))
    a = run(ref, rnd, n_boot=25, seed=3)
    b = run(ref, rnd, n_boot=25, seed=3)
    c = run(ref, rnd, n_boot=25, seed=4)
    assert (a.alpha_precision, a.beta_recall, a.authenticity) == (b.alpha_precision, b.beta_recall, b.authenticity)
    assert a.alpha_precision.std_error != c.alpha_precision.std_error
    assert a.alpha_precision.value == c.alpha_precision.value
    for est in (a.alpha_precision, a.beta_recall, a.authenticity):
        assert est.std_error > 0 and est.ci_low <= est.value <= est.ci_high


# --------------------------------------------------------------------------
# Bad inputs.
# --------------------------------------------------------------------------


def test_bad_inputs():
    ref = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match=r"reference: 1 NaN or inf values \(first in row 2\)"):
        bad = ref.copy()
        bad[2, 1] = np.nan
        run(bad, ref)
    with pytest.raises(ValueError, match=r"round: 1 NaN or inf values \(first in row 4\)"):
        bad = ref.copy()
        bad[4, 0] = np.inf
        run(ref, bad)
    with pytest.raises(ValueError, match=r"round: expected D=3 features to match reference, got D=2"):
        run(ref, ref[:, :2])
    with pytest.raises(ValueError, match=r"reference: expected at least 2 rows, got 1"):
        run(ref[:1], ref)
    with pytest.raises(ValueError, match=r"round: expected a non-empty array"):
        run(ref, ref[:0])
    with pytest.raises(ValueError, match=r"round: expected a 2-D array"):
        run(ref, ref[0])
    with pytest.raises(ValueError, match=r"reference: expected a float array, got dtype int64"):
        alpha_precision_beta_recall_authenticity(np.ones((4, 3), dtype=np.int64), ref)
    for n_alphas in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match=r"n_alphas: expected an integer >= 2"):
            run(ref, ref, n_alphas=n_alphas)
    with pytest.raises(ValueError, match=r"n_boot: expected a non-negative integer"):
        run(ref, ref, n_boot=-1)
    with pytest.raises(ValueError, match=r"level: expected a confidence level in \(0, 1\)"):
        run(ref, ref, n_boot=5, level=1.5)
    with pytest.raises(ValueError, match=r"chunk_size: expected a positive integer"):
        run(ref, ref, chunk_size=0)
    with pytest.raises(ValueError, match=r"standardize: expected a bool"):
        run(ref, ref, standardize="yes")
    with pytest.raises(ValueError, match=r"fitted: expected an AlphaReference"):
        alpha_precision_beta_recall_authenticity_from_reference(ref, ref)
    fit = fit_alpha_reference(ref)
    with pytest.raises(ValueError, match=r"round: expected D=3 features to match reference, got D=4"):
        alpha_precision_beta_recall_authenticity_from_reference(fit, np.ones((5, 4)))
