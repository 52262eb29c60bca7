"""Engine paths the metric tests do not reach: the symmetric self-search (D >= 128),
compaction of candidate lists, the fused nearest-neighbour query, lazily built operands."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from metrics_core import ball_statistics, knn_radii, nearest_neighbours
from metrics_core import knn


def _wide(seed: int, n: int = 400, d: int = 130) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    # duplicates and near-duplicates: ties the exact stage must settle
    return np.concatenate([x, x[:25], x[:5] + 1e-12, np.repeat(x[7:8], 9, axis=0)])


@pytest.mark.parametrize("chunk_size", [16, 64, 8192])
def test_symmetric_radii_and_self_query_equal_brute_force(chunk_size):
    x = _wide(chunk_size)
    assert x.shape[1] >= knn._WIDE_D
    d2 = cdist(x, x, "sqeuclidean")
    for k in (1, 5):
        assert np.allclose(knn_radii(x, k, chunk_size=chunk_size).numpy(), np.sqrt(np.sort(d2, 1)[:, k]), rtol=0, atol=1e-12)
    dist, idx = nearest_neighbours(None, x, k=3, exclude_self=True, chunk_size=chunk_size)
    np.fill_diagonal(d2, np.inf)
    assert np.allclose(dist.numpy(), np.sort(d2, 1)[:, :3], rtol=0, atol=1e-12)
    assert np.allclose(d2[np.arange(x.shape[0])[:, None], idx.numpy()], dist.numpy(), rtol=0, atol=1e-12)


def test_compaction_keeps_the_smallest_and_tightens_bounds():
    val = torch.tensor([[5.0, 1.0, 3.0], [2.0, 9.0, 4.0]])
    idx = torch.tensor([[10, 11, 12], [20, 21, 22]])
    cand = knn._RowCandidates(val, idx)
    cand.add(torch.tensor([0, 0, 1]), torch.tensor([13, 14, 23]), torch.tensor([0.5, 7.0, 1.5]))
    bounds = cand.compact(2)
    assert bounds.tolist() == [1.0, 2.0]
    v, i = cand.smallest(2)
    assert v.tolist() == [[0.5, 1.0], [1.5, 2.0]] and i.tolist() == [[13, 11], [23, 20]]


@pytest.mark.parametrize("d", [8, 130])
def test_fused_nearest_columns_equal_brute_force(d):
    rng = np.random.default_rng(d)
    ref = rng.normal(size=(500, d))
    rnd = np.concatenate([rng.normal(size=(200, d)), ref[:30]])
    mask = rng.random(500) < 0.7
    stats = ball_statistics(ref, rnd, 4, chunk_size=64, nn_columns=mask)
    want = cdist(rnd, ref[mask], "sqeuclidean").min(axis=1)
    assert np.allclose(stats.round_nearest_sq.numpy(), want, rtol=0, atol=1e-12)
    plain = ball_statistics(ref, rnd, 4, chunk_size=64)
    assert torch.equal(plain.round_in_reference_balls, stats.round_in_reference_balls)
    assert torch.equal(plain.reference_in_round_manifold, stats.reference_in_round_manifold)
    with pytest.raises(ValueError, match=r"nn_columns: expected a boolean mask of shape \(500,\)"):
        ball_statistics(ref, rnd, 4, nn_columns=np.zeros(500, dtype=bool))


def test_operands_are_built_lazily_and_released():
    x = torch.randn(50, 130, dtype=torch.float64)
    p = knn._prepare(x, x.mean(0), torch.device("cpu"))
    assert p._rows_full is None and p._cols_full is None
    full = p.rows_full @ p.cols_full  # squared distances from one GEMM
    assert torch.allclose(full.double(), torch.cdist(x, x) ** 2, atol=1e-3)
    p.release_cols()
    assert p._cols_full is None
    assert torch.equal(p.rows64(slice(0, 3)), x[:3] - x.mean(0))
