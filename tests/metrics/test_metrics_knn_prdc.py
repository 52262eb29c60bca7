"""Tests of the chunked k-NN engine and of precision/recall/density/coverage.

Three kinds of evidence:

* exact values on tiny point sets, worked out by hand in the comments;
* exact agreement with an independent, naive O(N*M) float64 implementation
  (full scipy distance matrices, ``np.sort``, ``<=``) on random data, with and
  without exact duplicate rows and for chunk sizes that split every block;
* agreement with the ``prdc`` package (Naeem et al.'s reference code) on
  tie-free data, and the documented difference (``<`` vs ``<=``) on ties.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from metrics_core import ball_statistics, density_coverage, knn_radii, precision_recall
from metrics_core.knn import DEFAULT_CHUNK_SIZE

pytestmark = pytest.mark.usefixtures("single_torch_thread")




# --------------------------------------------------------------------------
# Independent naive reference implementation (float64, full matrices).
# --------------------------------------------------------------------------


def naive_radii(x: np.ndarray, k: int) -> np.ndarray:
    """k-th NN distance, self excluded: the (k+1)-th smallest of the row
    including the zero diagonal (index k after sorting)."""
    x = np.asarray(x, dtype=np.float64)
    d = cdist(x, x)
    return np.sort(d, axis=1)[:, k]


def naive_prdc(reference: np.ndarray, round_: np.ndarray, k: int, *, strict: bool = False) -> dict[str, float]:
    """Precision, recall, density, coverage from full distance matrices.

    ``strict=False`` uses ``<=`` (this project's definition); ``strict=True``
    uses ``<`` (the prdc package's), only to show that the tests can tell them
    apart on data with ties.
    """
    ref = np.asarray(reference, dtype=np.float64)
    rnd = np.asarray(round_, dtype=np.float64)
    cmp = np.less if strict else np.less_equal
    r_radii = naive_radii(ref, k)  # [N]
    f_radii = naive_radii(rnd, k)  # [M]
    d = cdist(ref, rnd)  # [N, M], d[i, j] = ||r_i - f_j||
    in_ref_ball = cmp(d, r_radii[:, None])  # f_j inside B(r_i, R_i)
    in_rnd_ball = cmp(d, f_radii[None, :])  # r_i inside B(f_j, F_j)
    return {
        "precision": float(in_ref_ball.any(axis=0).mean()),
        "recall": float(in_rnd_ball.any(axis=1).mean()),
        "density": float(in_ref_ball.sum(axis=0).mean() / k),
        "coverage": float(cmp(d.min(axis=1), r_radii).mean()),
    }


def ours(reference, round_, k, **kw) -> dict[str, float]:
    p, r = precision_recall(reference, round_, k, **kw)
    d, c = density_coverage(reference, round_, k, **kw)
    return {"precision": p, "recall": r, "density": d, "coverage": c}


def assert_metrics_equal(got: dict[str, float], want: dict[str, float], tol: float = 1e-12) -> None:
    assert set(got) == set(want)
    for name in want:
        assert abs(got[name] - want[name]) < tol, f"{name}: got {got[name]!r}, want {want[name]!r}"


def compute_prdc_quiet(real, fake, k):
    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        out = compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    return {name: float(v) for name, v in out.items()}


# --------------------------------------------------------------------------
# knn_radii: hand-computed values.
# --------------------------------------------------------------------------


def test_knn_radii_1d_hand_k1_k2():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    # k=1: 0->1 (1), 1->0 (1), 3->1 (2), 7->3 (4)
    assert knn_radii(x, k=1).tolist() == [1.0, 1.0, 2.0, 4.0]
    # k=2: 0: others at {1,3,7} -> 3; 1: {1,2,6} -> 2; 3: {3,2,4} -> 3; 7: {7,6,4} -> 6
    assert knn_radii(x, k=2).tolist() == [3.0, 2.0, 3.0, 6.0]
    # k=3: the farthest other point: 7, 6, 4, 7
    assert knn_radii(x, k=3).tolist() == [7.0, 6.0, 4.0, 7.0]


def test_knn_radii_2d_hand_345_triangle():
    # A=(0,0), B=(3,0), C=(0,4): |AB|=3, |AC|=4, |BC|=5.
    x = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    assert knn_radii(x, k=1).tolist() == [3.0, 3.0, 4.0]  # A:min(3,4) B:min(3,5) C:min(4,5)
    assert knn_radii(x, k=2).tolist() == [4.0, 5.0, 5.0]  # A:max(3,4) B:max(3,5) C:max(4,5)


def test_knn_radii_duplicates_count_as_neighbours():
    # Three copies of 0 and one 5: a copy's nearest *other* points are the other copies.
    x = np.array([[0.0], [0.0], [0.0], [5.0]])
    assert knn_radii(x, k=1).tolist() == [0.0, 0.0, 0.0, 5.0]
    assert knn_radii(x, k=2).tolist() == [0.0, 0.0, 0.0, 5.0]
    # k=3: each copy's 3rd other point is 5; the 5's 3rd is a copy at 5.
    assert knn_radii(x, k=3).tolist() == [5.0, 5.0, 5.0, 5.0]


def test_knn_radii_fully_collapsed_is_zero_and_finite():
    x = np.tile(np.array([[0.3, -1.7, 2.5]]), (12, 1))
    r = knn_radii(x, k=5)
    assert r.dtype == torch.float64
    assert r.shape == (12,)
    assert torch.all(r == 0.0)


def test_knn_radii_returns_cpu_float64_for_float32_input():
    x = np.random.default_rng(0).standard_normal((40, 6)).astype(np.float32)
    r = knn_radii(x, k=3)
    assert r.dtype == torch.float64 and r.device.type == "cpu" and r.shape == (40,)
    # float32 input is widened exactly, so it matches the naive float64 computation
    np.testing.assert_allclose(r.numpy(), naive_radii(x.astype(np.float64), 3), rtol=0, atol=1e-12)


def test_knn_radii_accepts_torch_tensor_and_is_translation_invariant():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 4))
    a = knn_radii(torch.from_numpy(x), k=2)
    b = knn_radii(x, k=2)
    assert torch.equal(a, b)
    shifted = knn_radii(x + 3.0, k=2)  # 3.0 keeps the shift small relative to the data
    np.testing.assert_allclose(shifted.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------
# precision / recall / density / coverage: hand-computed values.
# --------------------------------------------------------------------------

REF_1D = np.array([[0.0], [1.0], [2.0], [3.0]])
RND_1D = np.array([[0.5], [1.5], [9.0], [10.0]])


def test_prdc_1d_hand_k1():
    # ref radii (k=1): [1, 1, 1, 1]; round radii (k=1): 0.5<->1.5 and 9<->10 -> [1, 1, 1, 1]
    # precision: 0.5 (0.5 from ref 0) in, 1.5 in, 9 and 10 (>= 6 from ref 3) out -> 2/4
    # recall: ref 0 (0.5 from 0.5), ref 1, ref 2 (0.5 from 1.5) in; ref 3 (1.5 from 1.5) out -> 3/4
    # density: 0.5 in balls of ref 0, 1 (ref 2 at 1.5 > 1) -> 2; 1.5 in ref 1, 2 -> 2; others 0
    #          -> 4 / (k * M) = 4 / 4 = 1.0
    # coverage: balls of ref 0, 1, 2 hold a round point; ref 3's nearest round is 1.5 away -> 3/4
    got = ours(REF_1D, RND_1D, 1)
    assert got == {"precision": 0.5, "recall": 0.75, "density": 1.0, "coverage": 0.75}


def test_prdc_1d_hand_k2():
    # ref radii (k=2): ref 0: {1,2,3}->2; ref 1: {1,1,2}->1; ref 2: {1,1,2}->1; ref 3: {3,2,1}->2
    # round radii (k=2): 0.5: {1, 8.5, 9.5}->8.5; 1.5: {1, 7.5, 8.5}->7.5; 9: {8.5, 7.5, 1}->7.5;
    #                    10: {9.5, 8.5, 1}->8.5
    # precision: 0.5, 1.5 in; 9 is 6 > 2 from ref 3 -> 2/4
    # recall: every ref point is within 8.5 of 0.5 -> 1.0
    # density: 0.5 in ref0 (0.5<=2), ref1 (0.5<=1), not ref2 (1.5>1), not ref3 (2.5>2) -> 2
    #          1.5 in ref0 (1.5<=2), ref1 (0.5), ref2 (0.5), ref3 (1.5<=2) -> 4; 9, 10 -> 0
    #          -> 6 / (2 * 4) = 0.75
    # coverage: every ref ball holds 0.5 or 1.5 -> 1.0
    got = ours(REF_1D, RND_1D, 2)
    assert got == {"precision": 0.5, "recall": 1.0, "density": 0.75, "coverage": 1.0}


def test_prdc_boundary_ties_count_as_inside():
    ref = np.array([[0.0], [2.0], [4.0]])  # radii (k=1) [2, 2, 2]
    rnd = np.array([[6.0], [8.0], [10.0]])  # radii (k=1) [2, 2, 2]
    # precision: 6 is exactly 2 = R from ref 4 -> inside (<=); 8, 10 are >= 4 away -> 1/3
    # recall: ref 4 is exactly 2 = F from 6 -> inside; 0 and 2 are >= 4 away -> 1/3
    # density: 6 is in ref 4's ball only -> 1 / (1 * 3) = 1/3
    # coverage: only ref 4's ball holds a round point (6 at distance 2) -> 1/3
    got = ours(ref, rnd, 1)
    assert got == {"precision": 1 / 3, "recall": 1 / 3, "density": 1 / 3, "coverage": 1 / 3}
    # prdc's strict '<' puts every boundary point outside: all four are 0.
    theirs = compute_prdc_quiet(ref, rnd, 1)
    assert theirs == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_2d_hand_square():
    # Reference: unit square corners; each corner's nearest other corner is at 1 (k=1 radius 1).
    ref = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    rnd = np.array([[0.0, 0.0], [0.0, 0.5], [5.0, 5.0], [5.0, 6.0]])
    # round radii (k=1): (0,0)<->(0,.5): 0.5, 0.5; (5,5)<->(5,6): 1, 1
    # precision: (0,0) in ball of (0,0); (0,.5) 0.5 from (0,0); (5,5), (5,6) far -> 2/4
    # recall: (0,0) is 0 from round (0,0); (0,1) is exactly 0.5 from (0,.5) (tie -> in);
    #         (1,0): 1 > .5 from (0,0), sqrt(1.25) > .5 from (0,.5) -> out; (1,1) out -> 2/4
    # density: (0,0) in balls of (0,0) [0], (1,0) [1, tie], (0,1) [1, tie], not (1,1) [sqrt 2] -> 3
    #          (0,.5) in (0,0) [.5], (0,1) [.5]; (1,0), (1,1) at sqrt(1.25) > 1 -> 2
    #          -> 5 / (1 * 4) = 1.25
    # coverage: (0,0), (1,0), (0,1) hold (0,0); (1,1): nearest round (0,.5) at sqrt(1.25) > 1 -> 3/4
    got = ours(ref, rnd, 1)
    assert got == {"precision": 0.5, "recall": 0.5, "density": 1.25, "coverage": 0.75}


def test_prdc_2d_hand_square_k2():
    ref = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    rnd = np.array([[0.5, 0.5], [0.0, 2.0], [3.0, 3.0]])
    # ref radii (k=2): each corner has two others at 1 -> 1
    # round: |c-(0,2)| = sqrt(2.5), |c-(3,3)| = sqrt(12.5), |(0,2)-(3,3)| = sqrt(10);
    #        radii (k=2): c: sqrt(12.5); (0,2): sqrt(10); (3,3): sqrt(12.5)
    # precision: centre is sqrt(.5) < 1 from every corner; (0,2) exactly 1 from (0,1) (tie -> in);
    #            (3,3) is sqrt(8) from (1,1) -> 2/3
    # recall: every corner is sqrt(.5) from the centre -> 1
    # density: centre in 4 balls, (0,2) in 1 ((0,1)), (3,3) in 0 -> 5 / (2 * 3) = 5/6
    # coverage: every corner's ball holds the centre -> 1
    got = ours(ref, rnd, 2)
    assert got == {"precision": 2 / 3, "recall": 1.0, "density": 5 / 6, "coverage": 1.0}


def test_prdc_fully_collapsed_round_hand():
    # Round: three copies of 1.0 -> round radii 0 for k=1 and k=2.
    rnd = np.array([[1.0], [1.0], [1.0]])
    # k=1: ref radii [1,1,1,1].
    # precision: 1.0 is a reference point -> 1
    # recall: only ref 1 is within 0 of a round point -> 1/4
    # density: each copy lies in balls of ref 0 (1<=1), 1 (0), 2 (1<=1); not ref 3 (2>1) -> 3 each
    #          -> 9 / (1 * 3) = 3
    # coverage: balls of ref 0, 1, 2 hold it -> 3/4
    got = ours(REF_1D, rnd, 1)
    assert got == {"precision": 1.0, "recall": 0.25, "density": 3.0, "coverage": 0.75}
    # k=2: ref radii [2,1,1,2]; each copy lies in all 4 balls (1<=2, 0, 1<=1, 2<=2)
    #      -> density 12 / (2 * 3) = 2; coverage 1; recall still 1/4
    got = ours(REF_1D, rnd, 2)
    assert got == {"precision": 1.0, "recall": 0.25, "density": 2.0, "coverage": 1.0}
    assert knn_radii(rnd, k=2).tolist() == [0.0, 0.0, 0.0]


def test_prdc_fully_collapsed_round_random_reference_is_finite():
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((60, 8))
    rnd = np.tile(ref[7], (20, 1))  # a collapsed round: one reference row, 20 times
    got = ours(ref, rnd, 5)
    assert all(np.isfinite(v) for v in got.values())
    assert got["precision"] == 1.0
    assert got["recall"] == 1 / 60  # only ref 7 is within radius 0 of the round
    assert_metrics_equal(got, naive_prdc(ref, rnd, 5))
    # an off-reference collapsed round: still finite, nothing inside radius 0
    rnd2 = np.tile(ref.mean(axis=0) + 10.0, (20, 1))
    got2 = ours(ref, rnd2, 5)
    assert got2 == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


@pytest.mark.parametrize("k", [1, 2, 4])
def test_prdc_identical_collapsed_sets(k):
    # Reference == round == five copies of one point: every radius is 0 and every
    # distance is 0, so with '<=' every point is inside every ball.
    x = np.tile(np.array([[1.0, -2.0, 0.25]]), (5, 1))
    got = ours(x, x.copy(), k)
    assert got["precision"] == 1.0
    assert got["recall"] == 1.0
    assert got["coverage"] == 1.0
    assert got["density"] == 5 * 5 / (k * 5)  # each round point is in all 5 balls


def test_prdc_package_strict_less_gives_zero_coverage_on_identical_points():
    # Documented difference: prdc uses '<', so radius-0 balls contain nothing,
    # not even the identical point; ours uses '<=' and gives 1.
    x = np.tile(np.array([[0.5, 1.5]]), (6, 1))
    theirs = compute_prdc_quiet(x, x.copy(), 2)
    assert theirs["coverage"] == 0.0
    assert theirs["precision"] == 0.0
    assert theirs["density"] == 0.0
    assert theirs["recall"] == 0.0
    got = ours(x, x.copy(), 2)
    assert got["coverage"] == 1.0 and got["precision"] == 1.0 and got["recall"] == 1.0


def test_doc_examples():
    assert knn_radii(np.array([[0.0], [1.0], [3.0]]), k=1).tolist() == [1.0, 1.0, 2.0]
    assert precision_recall(REF_1D, RND_1D, k=1) == (0.5, 0.75)
    assert density_coverage(REF_1D, RND_1D, k=1) == (1.0, 0.75)


# --------------------------------------------------------------------------
# Agreement with the naive implementation on random data.
# --------------------------------------------------------------------------


def _sizes(seed, d):
    rng = np.random.default_rng(seed)
    return rng, rng.standard_normal((300, d)), rng.standard_normal((250, d)) * 1.1 + 0.2


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("d", [2, 8, 64])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_matches_naive_on_random_data(seed, d, k):
    _, ref, rnd = _sizes(seed, d)
    want = naive_prdc(ref, rnd, k)
    assert_metrics_equal(ours(ref, rnd, k), want)
    assert_metrics_equal(ours(ref, rnd, k, chunk_size=37), want)
    np.testing.assert_allclose(knn_radii(ref, k).numpy(), naive_radii(ref, k), rtol=0, atol=1e-12)
    np.testing.assert_allclose(knn_radii(rnd, k, chunk_size=37).numpy(), naive_radii(rnd, k), rtol=0, atol=1e-12)


def _with_duplicates(seed, d):
    """Reference with repeated rows; a round made mostly of copies of reference rows."""
    rng = np.random.default_rng(100 + seed)
    base = rng.standard_normal((240, d))
    ref = np.concatenate([base, base[rng.integers(0, 240, size=60)]])  # 300 rows, with duplicates
    rng.shuffle(ref)
    copies = ref[rng.integers(0, 300, size=200)]  # copies (and copies of copies) of reference rows
    fresh = rng.standard_normal((50, d))
    rnd = np.concatenate([copies, fresh])
    rng.shuffle(rnd)
    return ref, rnd


def _large_offset_with_duplicates():
    # Data far from the origin (the engine centres by the reference mean) with copies.
    rng = np.random.default_rng(11)
    ref = rng.standard_normal((200, 16)) + 50.0
    rnd = np.concatenate([ref[rng.integers(0, 200, size=120)], rng.standard_normal((60, 16)) + 50.0])
    return ref, rnd


def _integer_grid():
    # A 12 x 12 lattice: many exactly equal distances (1, sqrt 2, 2, sqrt 5, ...), not only duplicates.
    g = np.stack(np.meshgrid(np.arange(12.0), np.arange(12.0)), axis=-1).reshape(-1, 2)
    rng = np.random.default_rng(4)
    rnd = g[rng.integers(0, len(g), size=90)] + rng.integers(-1, 2, size=(90, 2))
    return g, rnd


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("d", [2, 8, 64])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_matches_naive_with_exact_duplicates(seed, d, k):
    # Radii, precision and recall are exact with duplicates. (Density and coverage are
    # not: see test_density_coverage_match_naive_on_tied_data below.)
    ref, rnd = _with_duplicates(seed, d)
    want = naive_prdc(ref, rnd, k)
    for chunk_size in (DEFAULT_CHUNK_SIZE, 37):
        p, r = precision_recall(ref, rnd, k, chunk_size=chunk_size)
        assert (p, r) == (want["precision"], want["recall"])
    np.testing.assert_allclose(knn_radii(ref, k).numpy(), naive_radii(ref, k), rtol=0, atol=1e-12)
    np.testing.assert_allclose(knn_radii(rnd, k, chunk_size=37).numpy(), naive_radii(rnd, k), rtol=0, atol=1e-12)
    # exact zeros stay exact zeros (duplicates with >= k copies)
    assert np.array_equal(knn_radii(rnd, k, chunk_size=37).numpy() == 0.0, naive_radii(rnd, k) == 0.0)


def test_duplicate_data_has_boundary_ties():
    # Guard on the guard: the duplicate data really puts round points *exactly* on
    # reference radii (a copy of r_i's k-th neighbour lies at distance R_i from r_i),
    # so '<' and '<=' differ on it and the naive comparison can tell them apart.
    ref, rnd = _with_duplicates(0, 8)
    radii = naive_radii(ref, 3)
    d = cdist(ref, rnd)
    assert int(((d == radii[:, None]) & (radii[:, None] > 0)).sum()) > 50
    le = naive_prdc(ref, rnd, 3)
    lt = naive_prdc(ref, rnd, 3, strict=True)
    assert le["density"] > lt["density"]
    assert le["coverage"] > lt["coverage"]


@pytest.mark.parametrize("d", [2, 16])
def test_matches_naive_float32_input_with_duplicates(d):
    ref, rnd = _with_duplicates(5, d)
    ref32, rnd32 = ref.astype(np.float32), rnd.astype(np.float32)
    want = naive_prdc(ref32.astype(np.float64), rnd32.astype(np.float64), 3)
    assert precision_recall(ref32, rnd32, 3, chunk_size=37) == (want["precision"], want["recall"])
    np.testing.assert_allclose(
        knn_radii(ref32, 3, chunk_size=37).numpy(), naive_radii(ref32.astype(np.float64), 3), rtol=0, atol=1e-12
    )


def test_matches_naive_with_large_offset_and_duplicates():
    ref, rnd = _large_offset_with_duplicates()
    for k in (1, 5):
        want = naive_prdc(ref, rnd, k)
        assert precision_recall(ref, rnd, k, chunk_size=37) == (want["precision"], want["recall"])
        np.testing.assert_allclose(knn_radii(ref, k, chunk_size=37).numpy(), naive_radii(ref, k), rtol=0, atol=1e-12)


def test_matches_naive_on_integer_valued_grid_radii_and_precision():
    g, rnd = _integer_grid()
    for k in (1, 2, 4, 5):
        p, _ = precision_recall(g, rnd, k, chunk_size=17)
        assert p == naive_prdc(g, rnd, k)["precision"]
        np.testing.assert_allclose(knn_radii(g, k, chunk_size=17).numpy(), naive_radii(g, k), rtol=0, atol=1e-12)


def _tied_cases():
    for seed in (0, 1, 2):
        for d in (2, 8, 64):
            for k in (1, 3, 5):
                yield (f"duplicates seed={seed} d={d}", *_with_duplicates(seed, d), k)
    for d in (2, 16):
        ref, rnd = _with_duplicates(5, d)
        yield (f"float32 duplicates d={d}", ref.astype(np.float32), rnd.astype(np.float32), 3)
    for k in (1, 5):
        yield ("large offset", *_large_offset_with_duplicates(), k)
    for k in (1, 2, 4, 5):
        yield ("integer grid", *_integer_grid(), k)


def test_density_coverage_match_naive_on_tied_data():
    mismatches = []
    for label, ref, rnd, k in _tied_cases():
        want = naive_prdc(np.asarray(ref, np.float64), np.asarray(rnd, np.float64), k)
        for chunk_size in (DEFAULT_CHUNK_SIZE, 37):
            got = ours(ref, rnd, k, chunk_size=chunk_size)
            for name in want:
                if abs(got[name] - want[name]) >= 1e-12:
                    mismatches.append((label, k, chunk_size, name, got[name], want[name]))
    assert mismatches == []


def test_prdc_hand_tie_at_irrational_radius():
    # Reference A=(0,0,0), B=(1,1,1), C=(-1,-1,-1) (mean 0, so centring changes nothing).
    # |AB| = |AC| = sqrt(3), |BC| = 2 sqrt(3): every k=1 reference radius is sqrt(3).
    ref = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])
    # Round F1=(1,1,1) (a copy of B), F2=(5,5,5), F3=(6,6,6); radii 4 sqrt 3, sqrt 3, sqrt 3.
    rnd = np.array([[1.0, 1.0, 1.0], [5.0, 5.0, 5.0], [6.0, 6.0, 6.0]])
    # precision: F1 is in B's ball (0); F2, F3 are >= 4 sqrt 3 from B -> 1/3
    # recall: F1's ball (radius 4 sqrt 3) holds A, B, C -> 1
    # density: F1 in A's ball (sqrt 3 <= sqrt 3, tie) and B's (0), not C's (2 sqrt 3) -> 2 / (1 * 3)
    # coverage: A's ball holds F1 (tie), B's holds F1, C's nearest round is 2 sqrt 3 away -> 2/3
    assert precision_recall(ref, rnd, 1) == (1 / 3, 1.0)  # no tie involved: passes
    assert density_coverage(ref, rnd, 1) == (2 / 3, 2 / 3)  # tie involved: gives (1/3, 1/3)


# --------------------------------------------------------------------------
# Agreement with the prdc package on tie-free data.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed,d,k", [(0, 2, 1), (1, 8, 3), (2, 64, 5), (3, 16, 5)])
def test_matches_prdc_package_on_tie_free_data(seed, d, k):
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal((300, d))
    rnd = rng.standard_normal((250, d)) * 0.9 + 0.3
    theirs = compute_prdc_quiet(ref, rnd, k)
    assert_metrics_equal(ours(ref, rnd, k), theirs)
    # and the values are not degenerate, so the agreement means something
    assert 0.0 < theirs["precision"] < 1.0 and 0.0 < theirs["recall"] < 1.0
    assert 0.0 < theirs["coverage"] < 1.0 and theirs["density"] > 0.0


# --------------------------------------------------------------------------
# Structural properties.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("k", [1, 3])
def test_swap_reference_and_round_swaps_precision_and_recall(seed, k):
    # precision(ref=A, round=B) = share of B inside A's k-NN manifold = recall(ref=B, round=A).
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((120, 5))
    b = rng.standard_normal((90, 5)) * 1.3 + 0.4
    p_ab, r_ab = precision_recall(a, b, k)
    p_ba, r_ba = precision_recall(b, a, k)
    assert p_ab == r_ba
    assert r_ab == p_ba
    assert p_ab != r_ab  # asymmetric data: the swap is visible
    want = naive_prdc(a, b, k)
    assert (p_ab, r_ab) == (want["precision"], want["recall"])


@pytest.mark.parametrize("chunk_size", [6, 7, 37, 64, 119, 120, 500, DEFAULT_CHUNK_SIZE])
def test_chunk_size_independence(chunk_size):
    ref, rnd = _with_duplicates(3, 8)
    ref, rnd = ref[:120], rnd[:100]
    base_p = precision_recall(ref, rnd, 5, chunk_size=DEFAULT_CHUNK_SIZE)
    base_d = density_coverage(ref, rnd, 5, chunk_size=DEFAULT_CHUNK_SIZE)
    assert precision_recall(ref, rnd, 5, chunk_size=chunk_size) == base_p
    assert density_coverage(ref, rnd, 5, chunk_size=chunk_size) == base_d
    s0 = ball_statistics(ref, rnd, 5)
    s1 = ball_statistics(ref, rnd, 5, chunk_size=chunk_size)
    for name in ("reference_radii", "round_radii", "round_in_reference_balls",
                 "reference_ball_counts", "reference_in_round_manifold"):
        assert torch.equal(getattr(s0, name), getattr(s1, name)), name
    assert torch.equal(knn_radii(ref, 5, chunk_size=chunk_size), knn_radii(ref, 5))


@pytest.mark.parametrize("chunk_size,k", [(1, 1), (2, 3), (3, 5), (4, 5)])
def test_small_chunk_size_still_exact(chunk_size, k):
    x = np.random.default_rng(0).standard_normal((40, 3))
    np.testing.assert_allclose(knn_radii(x, k, chunk_size=chunk_size).numpy(), naive_radii(x, k), atol=1e-12)


@pytest.mark.parametrize("chunk_size", [0, -1])
def test_nonpositive_chunk_size_rejected(chunk_size):
    x = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(ValueError, match="chunk_size"):
        knn_radii(x, 1, chunk_size=chunk_size)
    with pytest.raises(ValueError, match="chunk_size"):
        precision_recall(x, x + 0.01, 1, chunk_size=chunk_size)


def test_thread_count_independence():
    ref, rnd = _with_duplicates(6, 16)
    before = torch.get_num_threads()
    results = []
    try:
        for n_threads in (1, 2, 4):
            torch.set_num_threads(n_threads)
            s = ball_statistics(ref, rnd, 3, chunk_size=64)
            results.append((s, precision_recall(ref, rnd, 3, chunk_size=64)))
    finally:
        torch.set_num_threads(before)
    s0, pr0 = results[0]
    for s, pr in results[1:]:
        assert pr == pr0
        for name in ("reference_radii", "round_radii", "round_in_reference_balls",
                     "reference_ball_counts", "reference_in_round_manifold"):
            assert torch.equal(getattr(s, name), getattr(s0, name)), name


def test_deterministic_repeated_calls():
    ref, rnd = _with_duplicates(7, 32)
    first = (precision_recall(ref, rnd, 3, chunk_size=50), density_coverage(ref, rnd, 3, chunk_size=50))
    for _ in range(3):
        assert (precision_recall(ref, rnd, 3, chunk_size=50), density_coverage(ref, rnd, 3, chunk_size=50)) == first
    r0 = knn_radii(ref, 3)
    assert torch.equal(knn_radii(ref, 3), r0)


def test_inputs_not_modified():
    rng = np.random.default_rng(8)
    ref = rng.standard_normal((50, 4))
    rnd = rng.standard_normal((40, 4))
    ref_c, rnd_c = ref.copy(), rnd.copy()
    precision_recall(ref, rnd, 2)
    density_coverage(ref, rnd, 2)
    knn_radii(ref, 2)
    np.testing.assert_array_equal(ref, ref_c)
    np.testing.assert_array_equal(rnd, rnd_c)


def test_reference_radii_argument_gives_identical_results():
    ref, rnd = _with_duplicates(4, 8)
    for k in (1, 5):
        sq = knn_radii(ref, k, squared=True)
        assert precision_recall(ref, rnd, k, reference_sq_radii=sq) == precision_recall(ref, rnd, k)
        assert density_coverage(ref, rnd, k, reference_sq_radii=sq) == density_coverage(ref, rnd, k)
        s = ball_statistics(ref, rnd, k, reference_sq_radii=sq)
        assert torch.equal(s.reference_sq_radii, sq)
        assert torch.equal(s.reference_radii, knn_radii(ref, k))
        # knn_radii(rnd) centres by the round's own mean, ball_statistics by the reference mean:
        # equal to float64 rounding
        np.testing.assert_allclose(s.round_radii.numpy(), knn_radii(rnd, k).numpy(), rtol=0, atol=1e-12)
    # a float32 radii tensor is accepted (widened)
    r32 = knn_radii(ref, 3, squared=True).to(torch.float32)
    assert ball_statistics(ref, rnd, 3, reference_sq_radii=r32).reference_sq_radii.dtype == torch.float64


def test_reference_radii_are_actually_used():
    # Radii that differ from the true ones change the result: the argument is not ignored.
    ref, rnd = REF_1D, RND_1D
    huge = torch.full((4,), 100.0**2, dtype=torch.float64)
    p, _ = precision_recall(ref, rnd, 1, reference_sq_radii=huge)
    d, c = density_coverage(ref, rnd, 1, reference_sq_radii=huge)
    assert p == 1.0 and c == 1.0 and d == 4.0  # every round point in all 4 balls: 16 / (1 * 4)


@pytest.mark.parametrize("shape", [(3,), (5,), (4, 1), (1, 4)])
def test_reference_radii_wrong_shape_raises(shape):
    bad = torch.ones(shape, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"reference_sq_radii: expected shape \(4,\)"):
        precision_recall(REF_1D, RND_1D, 1, reference_sq_radii=bad)
    with pytest.raises(ValueError, match="reference_sq_radii"):
        density_coverage(REF_1D, RND_1D, 1, reference_sq_radii=bad)


def test_ball_statistics_fields_hand():
    s = ball_statistics(REF_1D, RND_1D, 1)
    # see test_prdc_1d_hand_k1
    assert s.k == 1
    assert s.reference_radii.tolist() == [1.0, 1.0, 1.0, 1.0]
    assert s.round_radii.tolist() == [1.0, 1.0, 1.0, 1.0]
    assert s.round_in_reference_balls.tolist() == [2, 2, 0, 0]
    # ref 0 holds 0.5; ref 1 holds 0.5, 1.5; ref 2 holds 1.5; ref 3 none
    assert s.reference_ball_counts.tolist() == [1, 2, 1, 0]
    assert s.reference_in_round_manifold.tolist() == [True, True, True, False]


# --------------------------------------------------------------------------
# Exactness for clustered data far from the reference mean (near-duplicates).
# --------------------------------------------------------------------------


def _tight_clusters(seed, d, spread=1e-4, n=100):
    # Two tight clusters of near-duplicates at +e1 and -e1: centring by the mean
    # leaves every norm ~1 while the within-cluster distances are ~1e-4.
    rng = np.random.default_rng(seed)
    c = np.zeros(d)
    c[0] = 1.0
    return np.concatenate([c + spread * rng.standard_normal((n, d)), -c + spread * rng.standard_normal((n, d))])


@pytest.mark.parametrize("d", [2, 64])
def test_knn_radii_exact_for_tight_clusters(d):
    x = _tight_clusters(0, d)
    np.testing.assert_allclose(knn_radii(x, 3).numpy(), naive_radii(x, 3), rtol=0, atol=1e-12)


def test_prdc_exact_for_tight_clusters():
    ref = _tight_clusters(0, 8)
    rnd = _tight_clusters(1, 8)
    assert_metrics_equal(ours(ref, rnd, 3), naive_prdc(ref, rnd, 3))


def test_moderately_tight_clusters_are_exact():
    # At spread 1e-2 the fp32 order is still right, so the engine is exact there.
    x = _tight_clusters(0, 8, spread=1e-2)
    np.testing.assert_allclose(knn_radii(x, 3).numpy(), naive_radii(x, 3), rtol=0, atol=1e-12)
    y = _tight_clusters(1, 8, spread=1e-2)
    assert_metrics_equal(ours(x, y, 3), naive_prdc(x, y, 3))


# --------------------------------------------------------------------------
# Bad input.
# --------------------------------------------------------------------------

GOOD = np.random.default_rng(0).standard_normal((10, 3))


def _with(value, row=4, col=1):
    x = GOOD.copy()
    x[row, col] = value
    return x


@pytest.mark.parametrize(
    "ref,rnd,k,match",
    [
        (GOOD, np.zeros((10, 4)), 1, r"round: expected D=3 features to match reference, got D=4"),
        (_with(np.nan), GOOD, 1, r"reference: 1 NaN or inf values \(first in row 4\)"),
        (GOOD, _with(np.inf, row=7), 1, r"round: 1 NaN or inf values \(first in row 7\)"),
        (GOOD, _with(-np.inf, row=0), 1, r"round: 1 NaN or inf values \(first in row 0\)"),
        (GOOD[:, 0], GOOD, 1, r"reference: expected a 2-D array \[N, D\], got 1-D"),
        (GOOD, GOOD[None], 1, r"round: expected a 2-D array \[N, D\], got 3-D"),
        (np.empty((0, 3)), GOOD, 1, r"reference: expected a non-empty array"),
        (GOOD, np.empty((5, 0)), 1, r"round: expected a non-empty array"),
        (np.array([]), GOOD, 1, r"reference: expected a 2-D array"),
        (np.arange(30).reshape(10, 3), GOOD, 1, r"reference: expected a float array, got dtype int64"),
        (GOOD, np.ones((10, 3), dtype=np.int32), 1, r"round: expected a float array, got dtype int32"),
        (GOOD, np.ones((10, 3), dtype=bool), 1, r"round: expected a float array, got dtype bool"),
        (GOOD, np.array([["a"] * 3] * 10, dtype=object), 1, r"round: expected a float array, got dtype object"),
        (torch.ones((10, 3), dtype=torch.int64), GOOD, 1, r"reference: expected a float array, got dtype torch.int64"),
        (GOOD[:3], GOOD, 3, r"reference: expected at least k\+1=4 rows for k=3, got 3"),
        (GOOD, GOOD[:5], 5, r"round: expected at least k\+1=6 rows for k=5, got 5"),
        (GOOD, GOOD, 0, r"k: expected a positive integer, got 0"),
        (GOOD, GOOD, -2, r"k: expected a positive integer, got -2"),
        (GOOD, GOOD, 2.0, r"k: expected a positive integer, got 2.0"),
    ],
)
def test_bad_input_raises_value_error(ref, rnd, k, match):
    with pytest.raises(ValueError, match=match):
        precision_recall(ref, rnd, k)
    with pytest.raises(ValueError, match=match):
        density_coverage(ref, rnd, k)


@pytest.mark.parametrize(
    "x,k,match",
    [
        (_with(np.nan), 1, r"x: 1 NaN or inf values"),
        (GOOD[:, 0], 1, r"x: expected a 2-D array"),
        (np.empty((0, 2)), 1, r"x: expected a non-empty array"),
        (np.ones((4, 2), dtype=np.int64), 1, r"x: expected a float array"),
        (GOOD[:2], 2, r"x: expected at least k\+1=3 rows for k=2, got 2"),
        (GOOD, 0, r"k: expected a positive integer"),
        (GOOD, "3", r"k: expected a positive integer"),
    ],
)
def test_knn_radii_bad_input(x, k, match):
    with pytest.raises(ValueError, match=match):
        knn_radii(x, k)


def test_nan_count_reported():
    x = GOOD.copy()
    x[2, 0] = np.nan
    x[5, :] = np.inf
    with pytest.raises(ValueError, match=r"x: 4 NaN or inf values \(first in row 2\)"):
        knn_radii(x, 1)


def test_minimum_sizes_accepted():
    # exactly k+1 rows is enough
    x = np.array([[0.0], [1.0], [3.0]])
    assert knn_radii(x, k=2).tolist() == [3.0, 2.0, 3.0]
    p, r = precision_recall(x, x + 0.5, 2)
    assert (p, r) == (1.0, 1.0)
    # float16 input is widened and accepted
    assert knn_radii(x.astype(np.float16), k=1).tolist() == [1.0, 1.0, 2.0]
