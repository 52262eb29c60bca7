r"""Chunked exact k-nearest-neighbour engine (torch, CPU by default, CUDA when present).

One file over 500 lines on purpose: the tiled GEMM passes, the candidate
buffers and the exact float64 re-checks share private state and tile
constants and form one engine; split, they would only import each other.

The engine never materialises an ``N x M`` distance matrix: it works on tiles
of at most 512 rows by ``chunk_size`` columns, each produced by one float32
GEMM on augmented operands,

.. math:: \lVert y\rVert^2 - 2\,x^\top y = [x, 1] \cdot [-2y, \lVert y\rVert^2] ,

which is the squared distance less the row constant :math:`\lVert x\rVert^2`.
Float32 rounding would make ties (duplicates, which collapse produces)
undecidable, so every comparison inside a rigorous rounding band is re-decided
in float64 from the difference vectors, and every radius is recomputed in
float64 from its neighbour's index and kept squared. Results are therefore
exact (to float64) and deterministic, independent of chunk size, thread count
and device.

Both sets are translated by the reference mean first: distances are
translation-invariant, and centring shrinks the norms that drive rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from metrics_core._checks import _check_chunk_size, _check_embeddings, _check_k, _check_same_dim


DEFAULT_CHUNK_SIZE = 8192
# Tiles have at most _ROW_TILE rows, so the passes after each GEMM run on
# cached data. The first column tile of a k-NN search (_BOUND_TILE wide) sets
# a per-row bound; the ball tests use _BALL_TILE-wide tiles of the reference
# sorted by radius, so one bound per tile is tight.
_ROW_TILE = 1024
# For D < _WIDE_D the passes after each GEMM dominate and smaller row tiles
# keep them in cache; for wide embeddings the GEMM dominates and runs faster
# on taller tiles (measured on 2 cores, D = 64 and D = 384).
_WIDE_D = 128
_BOUND_TILE = 1024
_BALL_TILE = 4096
# Extra fp32 candidates kept beyond k+1 so near-ties at the k-th neighbour are
# usually settled by the exact recomputation of the candidates alone.
_EXTRA_CANDIDATES = 4
_EPS32 = torch.finfo(torch.float32).eps
_EPS64 = torch.finfo(torch.float64).eps
# Exact pair batches hold at most this many float64 values.
_PAIR_BATCH_ELEMENTS = 1 << 22


def default_device() -> torch.device:
    """CUDA when a device is present, else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def resolve_device(device=None) -> torch.device:
    """The device asked for, else :func:`default_device`."""
    return torch.device(device) if device is not None else default_device()


class _PreparedSet:
    """A set of rows ready for tiled distance GEMMs.

    ``rows_full`` ``[N, D+2] = [x, 1, ||x||^2]`` and ``cols_full``
    ``[D+2, N] = [-2x, ||x||^2, 1]^T`` (centred, float32) are built on first
    use and can be released, so a set used only as columns (the reference in
    the ball pass) never holds its row form, and vice versa.
    """

    def __init__(self, source: torch.Tensor, center: torch.Tensor):
        self.source = source  # the input rows on the device (float32 or float64)
        self.center = center  # float64 [D], subtracted before every computation
        self._rows_full: torch.Tensor | None = None
        self._cols_full: torch.Tensor | None = None
        self.sqnorm = torch.cat([(f * f).sum(dim=1) for f in self._fast_chunks()])  # float32 [N]

    @property
    def n(self) -> int:
        return self.source.shape[0]

    @property
    def d(self) -> int:
        return self.source.shape[1]

    @property
    def device(self) -> torch.device:
        return self.source.device

    def _fast_chunks(self):
        for start in range(0, self.n, 8192):  # centre in float64 without a full float64 copy
            yield (self.source[start : start + 8192].to(torch.float64) - self.center).to(torch.float32)

    @property
    def rows_full(self) -> torch.Tensor:
        if self._rows_full is None:
            rows = torch.empty(self.n, self.d + 2, dtype=torch.float32, device=self.device)
            rows[:, : self.d] = torch.cat(list(self._fast_chunks()))
            rows[:, self.d] = 1.0
            rows[:, self.d + 1] = self.sqnorm
            self._rows_full = rows
        return self._rows_full

    @property
    def cols_full(self) -> torch.Tensor:
        if self._cols_full is None:
            cols = torch.empty(self.d + 2, self.n, dtype=torch.float32, device=self.device)
            start = 0
            for fast in self._fast_chunks():
                cols[: self.d, start : start + fast.shape[0]] = fast.T
                start += fast.shape[0]
            cols[: self.d] *= -2.0
            cols[self.d] = self.sqnorm
            cols[self.d + 1] = 1.0
            self._cols_full = cols
        return self._cols_full

    def release_cols(self) -> None:
        self._cols_full = None

    @property
    def rows_aug(self) -> torch.Tensor:
        """``[x, 1]``: times :attr:`cols_aug` gives ``||y||^2 - 2 x.y`` (the row norm left out)."""
        return self.rows_full[:, :-1]

    @property
    def cols_aug(self) -> torch.Tensor:
        return self.cols_full[:-1]

    def rows64(self, index) -> torch.Tensor:
        """Centred float64 rows, made on demand (bit-identical every time) rather than stored."""
        return self.source[index].to(torch.float64) - self.center


def _row_tile(d: int, chunk_size: int) -> int:
    return min(_ROW_TILE if d >= _WIDE_D else _ROW_TILE // 2, chunk_size)


def _prepare(x: torch.Tensor, center: torch.Tensor, device: torch.device) -> _PreparedSet:
    return _PreparedSet(x.to(device=device), center)


def _sqnorm64(p: _PreparedSet) -> torch.Tensor:
    return torch.cat([(r * r).sum(dim=1) for r in (p.rows64(slice(s, s + 8192)) for s in range(0, p.n, 8192))])


def _band_factor(d: int, eps: float = _EPS32) -> float:
    # Rigorous bound on the rounding of ||x||^2 + ||y||^2 - 2 x.y (a dot
    # product of length d + 1, the norms and the cast of a float64 threshold),
    # as a multiple of ||x||^2 + ||y||^2.
    return (d + 16) * eps


def _exact_sqdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise squared distance in float64 from difference vectors."""
    diff = a - b
    return (diff * diff).sum(dim=-1)


def _exact_sqdist_pairs(a: torch.Tensor, ii: torch.Tensor, b: _PreparedSet, jj: torch.Tensor) -> torch.Tensor:
    """Exact float64 squared distances of the pairs ``(a[ii], b[jj])``, in memory-bounded batches.

    ``a`` holds centred float64 rows; ``b``'s rows are made on demand. Degenerate
    data (a collapsed round) can put millions of pairs on a ball boundary.
    """
    out = torch.empty(ii.shape[0], dtype=torch.float64, device=a.device)
    step = max(1, _PAIR_BATCH_ELEMENTS // a.shape[1])
    for s in range(0, ii.shape[0], step):
        out[s : s + step] = _exact_sqdist(a[ii[s : s + step]], b.rows64(jj[s : s + step]))
    return out


def _flat_nonzero(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of the True entries of a 2-D mask."""
    if mask.device.type == "cpu":
        # numpy's flatnonzero is several times faster than torch's CPU nonzero.
        flat = torch.from_numpy(np.flatnonzero(mask.numpy()))
        cols = mask.shape[1]
        return flat // cols, flat % cols
    return mask.nonzero(as_tuple=True)


class _RowCandidates:
    """Per-row candidate lists in a padded matrix (+inf where empty), grown on demand."""

    def __init__(self, val: torch.Tensor, idx: torch.Tensor):
        n_rows, width = val.shape
        cap = 4 * width
        self.val = torch.full((n_rows, cap), float("inf"), dtype=val.dtype, device=val.device)
        self.idx = torch.zeros((n_rows, cap), dtype=torch.int32, device=val.device)
        self.val[:, :width] = val
        self.idx[:, :width] = idx.to(torch.int32)
        self.fill = torch.full((n_rows,), width, dtype=torch.int64, device=val.device)

    def add(self, ii: torch.Tensor, jj: torch.Tensor, vals: torch.Tensor, row_start: int = 0, n_rows: int | None = None) -> None:
        """Append entries for rows ``row_start + ii``; ``ii`` must be ascending (row-major nonzero order)."""
        if ii.shape[0] == 0:
            return
        n_rows = self.val.shape[0] - row_start if n_rows is None else n_rows
        block = slice(row_start, row_start + n_rows)
        counts = torch.bincount(ii, minlength=n_rows)
        starts = torch.cumsum(counts, 0) - counts
        pos = self.fill[block][ii] + torch.arange(ii.shape[0], device=ii.device) - starts[ii]
        self.fill[block] += counts
        ii = ii + row_start
        need = int(self.fill[block].max())
        if need > self.val.shape[1]:
            grow = max(need, 2 * self.val.shape[1]) - self.val.shape[1]
            self.val = torch.cat([self.val, torch.full((self.val.shape[0], grow), float("inf"), dtype=self.val.dtype, device=self.val.device)], 1)
            self.idx = torch.cat([self.idx, torch.zeros((self.idx.shape[0], grow), dtype=torch.int32, device=self.idx.device)], 1)
        self.val[ii, pos] = vals
        self.idx[ii, pos] = jj.to(torch.int32)

    def compact(self, n_keep: int) -> torch.Tensor:
        """Keep each row's ``n_keep`` smallest entries; returns their maxima (tighter bounds)."""
        val, idx = self.smallest(n_keep)
        self.__init__(val, idx)
        return val.max(dim=1).values

    def smallest(self, n_keep: int) -> tuple[torch.Tensor, torch.Tensor]:
        width = int(self.fill.max())
        val, pos = torch.topk(self.val[:, :width], n_keep, dim=1, largest=False, sorted=True)
        return val, torch.gather(self.idx[:, :width], 1, pos).to(torch.int64)


class _Workspace:
    """Reusable tile buffers: a fresh multi-MB tensor per tile costs page faults."""

    def __init__(self, rows: int, cols: int, device: torch.device):
        self._part = torch.empty(rows * cols, dtype=torch.float32, device=device)
        self._mask = torch.empty(rows * cols, dtype=torch.bool, device=device)

    def gemm(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = self._part[: a.shape[0] * b.shape[1]].view(a.shape[0], b.shape[1])
        return torch.mm(a, b, out=out)

    def le(self, part: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
        out = self._mask[: part.numel()].view(part.shape)
        return torch.le(part, bound, out=out)


def _topk_partial(q: _PreparedSet, rows: slice, p: _PreparedSet, n_cand: int, chunk_size: int, ws: _Workspace):
    """The ``n_cand`` smallest partial distances ``||p_j||^2 - 2 q_i.p_j`` of each query row, sorted.

    The first column tile sets a per-row bound (its ``n_cand``-th smallest
    value, an upper bound on the final one); later tiles only contribute the
    few entries below it, found with one comparison instead of a top-k.
    """
    a = q.rows_aug[rows]
    n = p.n
    width = max(min(_BOUND_TILE, chunk_size, n), n_cand)
    part = a @ p.cols_aug[:, :width]
    val, idx = torch.topk(part, n_cand, dim=1, largest=False, sorted=False)
    bound = val.max(dim=1, keepdim=True).values
    candidates = _RowCandidates(val, idx)
    for cstart in range(width, n, chunk_size):
        cols = slice(cstart, min(cstart + chunk_size, n))
        part = ws.gemm(a, p.cols_aug[:, cols])
        ii, jj = _flat_nonzero(ws.le(part, bound))
        candidates.add(ii, jj + cstart, part[ii, jj])
    return candidates.smallest(n_cand)


def _self_topk(p: _PreparedSet, n_cand: int, width: int):
    """:func:`_topk_partial` for every point of ``p`` against ``p`` itself, using symmetry.

    The distance matrix is symmetric, so tile ``(I, J)`` (``I < J``) serves
    row block ``I`` and, transposed, row block ``J``: half the GEMM work.
    The first blocks' columns (about an eighth) set every row's bound with a
    top-k; every other pair is then visited exactly once: rows of those first
    blocks through the row side of tiles ``(I, J)``, all other rows through
    both sides of tiles ``(I, J)``, ``I <= J``. The candidate lists are
    compacted to the ``n_cand`` smallest whenever they grow, which also
    tightens the bounds.
    """
    n = p.n
    blocks = [slice(s, min(s + width, n)) for s in range(0, n, width)]
    # The bound step is a top-k (slow per element): about an eighth of the
    # columns gives tight enough bounds, and compaction tightens them further.
    n_first = max(1, min(len(blocks), (n // 8) // width))
    first = slice(0, blocks[n_first - 1].stop)
    init_val = torch.empty(n, n_cand, dtype=torch.float32, device=p.device)
    init_idx = torch.empty(n, n_cand, dtype=torch.int64, device=p.device)
    for rows in blocks:
        part = p.rows_aug[rows] @ p.cols_aug[:, first]
        init_val[rows], init_idx[rows] = torch.topk(part, n_cand, dim=1, largest=False, sorted=False)
    candidates = _RowCandidates(init_val, init_idx)
    # Thresholds on the full squared distance: d^2 <= bound + ||p_i||^2.
    threshold = init_val.max(dim=1).values + p.sqnorm
    ws = _Workspace(width, width, p.device)
    for i, rows in enumerate(blocks):
        row_norm = p.sqnorm[rows]
        for j in range(max(i, n_first), len(blocks)):
            cols = blocks[j]
            d2 = ws.gemm(p.rows_full[rows], p.cols_full[:, cols])  # full squared distances
            ii, jj = _flat_nonzero(ws.le(d2, threshold[rows][:, None]))
            candidates.add(ii, jj + cols.start, d2[ii, jj] - row_norm[ii], rows.start, rows.stop - rows.start)
            if i >= n_first and i != j:  # the transposed side: rows of block j, columns of block i
                ii, jj = _flat_nonzero(ws.le(d2, threshold[cols][None, :]))
                order = torch.argsort(jj, stable=True)
                ii, jj = ii[order], jj[order]
                candidates.add(jj, ii + rows.start, d2[ii, jj] - p.sqnorm[cols][jj], cols.start, cols.stop - cols.start)
            if candidates.val.shape[1] > 4 * n_cand:
                threshold = candidates.compact(n_cand) + p.sqnorm
    return candidates.smallest(n_cand)


def _sort_exact(dist: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row by (distance, index): ties are broken by index, deterministically."""
    by_idx = torch.argsort(idx, dim=1)
    dist, idx = torch.gather(dist, 1, by_idx), torch.gather(idx, 1, by_idx)
    order = torch.argsort(dist, dim=1, stable=True)
    return torch.gather(dist, 1, order), torch.gather(idx, 1, order)


def _knn(q: _PreparedSet, p: _PreparedSet, k: int, chunk_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact float64 squared distances and indices of the ``k`` nearest points of ``p`` to each query.

    fp32 picks ``k + 2`` candidates per query and float64 recomputes them. A
    query is settled when no other point can be closer than its exact k-th
    candidate ``e`` even after rounding: when ``e == 0`` (nothing is closer than
    a duplicate) or when the largest fp32 candidate, less the rounding band,
    is at least ``e``. Other queries (near-ties beyond the candidate list,
    tight clusters far from the mean) are redone in float64, every point that
    can lie within ``e`` evaluated exactly. Ties are broken by index.
    """
    n_cand = min(p.n, k + _EXTRA_CANDIDATES)
    out_d = torch.empty(q.n, k, dtype=torch.float64, device=q.device)
    out_i = torch.empty(q.n, k, dtype=torch.int64, device=q.device)
    max_sq32 = p.sqnorm.max()
    sqnorm64 = None
    row_tile = _row_tile(q.d, chunk_size)
    ws = _Workspace(min(row_tile, q.n), min(chunk_size, p.n), q.device)
    # Symmetry halves the GEMM, which only pays where the GEMM dominates.
    symmetric = q is p and p.d >= _WIDE_D and p.n > row_tile >= n_cand
    if symmetric:
        all_val, all_idx = _self_topk(p, n_cand, row_tile)
    for start in range(0, q.n, row_tile):
        rows = slice(start, min(start + row_tile, q.n))
        if symmetric:
            val, idx = all_val[rows], all_idx[rows]
        else:
            val, idx = _topk_partial(q, rows, p, n_cand, chunk_size, ws)
        q64 = q.rows64(rows)
        # One candidate column at a time keeps the float64 temporaries in cache.
        exact = torch.stack([_exact_sqdist(q64, p.rows64(idx[:, c])) for c in range(idx.shape[1])], dim=1)
        dist, idx = _sort_exact(exact, idx)
        out_d[rows], out_i[rows] = dist[:, :k], idx[:, :k]
        if n_cand == p.n:
            continue  # every point was a candidate
        kth = dist[:, k - 1]
        band = (q.sqnorm[rows] + max_sq32) * _band_factor(q.d)
        lower_bound_rest = (val[:, -1] + q.sqnorm[rows] - band).double()
        unsettled = ((kth > 0) & (lower_bound_rest < kth)).nonzero(as_tuple=True)[0]
        if unsettled.shape[0]:
            if sqnorm64 is None:
                sqnorm64 = _sqnorm64(p)
            rows_u = unsettled + start
            out_d[rows_u], out_i[rows_u] = _knn_float64(q.rows64(rows_u), p, sqnorm64, k, out_d[rows_u, k - 1], chunk_size)
    return out_d, out_i


def _knn_float64(a: torch.Tensor, p: _PreparedSet, sqnorm64, k: int, upper: torch.Tensor, chunk_size: int):
    """Exact k nearest neighbours of the queries ``a`` given upper bounds on their k-th squared distances.

    One float64 pass over ``p`` for all the queries: every point that can lie
    within a query's bound (after float64 rounding) is evaluated exactly.
    """
    a_sq = (a * a).sum(dim=1)
    band = (a_sq + sqnorm64.max()) * _band_factor(p.d, _EPS64)
    limit = (upper - a_sq + band)[:, None]
    rows_l, cols_l = [], []
    for cstart in range(0, p.n, chunk_size):
        cols = slice(cstart, min(cstart + chunk_size, p.n))
        part = torch.addmm(sqnorm64[None, cols], a, p.rows64(cols).T, beta=1.0, alpha=-2.0)
        ii, jj = (part <= limit).nonzero(as_tuple=True)
        rows_l.append(ii)
        cols_l.append(jj + cstart)
    ii, jj = torch.cat(rows_l), torch.cat(cols_l)
    # Every point within a query's bound (>= its k-th distance) is a candidate.
    dist = _exact_sqdist_pairs(a, ii, p, jj)
    counts = torch.bincount(ii, minlength=a.shape[0])
    width = int(counts.max())
    padded_d = torch.full((a.shape[0], width), float("inf"), dtype=torch.float64, device=a.device)
    padded_i = torch.full((a.shape[0], width), torch.iinfo(torch.int64).max, dtype=torch.int64, device=a.device)
    order = torch.argsort(ii, stable=True)
    ii, jj, dist = ii[order], jj[order], dist[order]
    pos = torch.arange(ii.shape[0], device=a.device) - (torch.cumsum(counts, 0) - counts)[ii]
    padded_d[ii, pos], padded_i[ii, pos] = dist, jj
    dist, idx = _sort_exact(padded_d, padded_i)
    return dist[:, :k], idx[:, :k]


def _kth_sq_radii(points: _PreparedSet, k: int, chunk_size: int) -> torch.Tensor:
    """Exact float64 squared distance from each point to its k-th nearest other point.

    The self-distance 0 is among the ``k + 1`` nearest, so the (k+1)-th is
    the k-th nearest *other* point (a duplicate counts as another point).
    """
    return _knn(points, points, k + 1, chunk_size)[0][:, k]


def _ball_pass(
    r: _PreparedSet,
    r_sq: torch.Tensor,
    f: _PreparedSet,
    f_sq: torch.Tensor,
    chunk_size: int,
    nn_columns: torch.Tensor | None = None,
):
    """Every ``||f_i - r_j||^2 <= R_j^2`` and ``<= F_i^2`` test, tile by tile.

    The reference is visited sorted by radius, so one per-row bound per tile,
    ``max(F_i^2, max_tile R_j^2) + band``, selects a tight superset of the pairs
    that can pass either test with a single comparison; those candidates are
    then decided exactly.

    With ``nn_columns`` (a boolean mask over the reference) the same pass also
    finds each round point's exact nearest reference point among those
    columns: a running per-row fp32 minimum ``u_i`` over the masked columns
    widens the bound to ``u_i + 2 band``, which provably keeps the true
    nearest point among the candidates, and the candidates' float64 distances
    give the exact minimum.

    Returns:
        per reference point the number of round points in its ball and whether
        it lies in some round ball; per round point the number of reference
        balls holding it, and (with ``nn_columns``) its exact squared distance
        to the nearest masked reference point, else None.
    """
    device = r.device
    order = torch.argsort(r_sq)
    width = min(_BALL_TILE, chunk_size)
    want_nn = nn_columns is not None
    n_masked = None
    if want_nn:
        # Within each tile (a contiguous run of the radius order), put the
        # masked columns first, so the tile's nearest-neighbour minimum is one
        # reduction over a contiguous prefix.
        mask_sorted = nn_columns.to(device)[order]
        blocks, n_masked = [], []
        for c in range(0, r.n, width):
            o, m = order[c : c + width], mask_sorted[c : c + width]
            blocks.append(torch.cat([o[m], o[~m]]))
            n_masked.append(int(m.sum()))
        order = torch.cat(blocks)
    r_cols = r.cols_aug[:, order]
    r_sq = r_sq[order]
    r_sq32 = r_sq.to(torch.float32)
    r_norm = r.sqnorm[order]
    f_sq32 = f_sq.to(torch.float32)
    factor = _band_factor(r.d)
    tiles = [slice(c, min(c + width, r.n)) for c in range(0, r.n, width)]
    tile_max_r_sq = [r_sq32[t].max() for t in tiles]
    tile_max_norm = [r_norm[t].max() for t in tiles]
    if want_nn:
        nn_sorted = nn_columns.to(device)[order]
        nn_sq = torch.full((f.n,), float("inf"), dtype=torch.float64, device=device)

    row_tile = _row_tile(f.d, chunk_size)
    ws = _Workspace(min(row_tile, f.n), width, device)
    in_ref_balls = torch.zeros(f.n, dtype=torch.int64, device=device)
    counts_sorted = torch.zeros(r.n, dtype=torch.int64, device=device)
    in_round_sorted = torch.zeros(r.n, dtype=torch.bool, device=device)
    for fstart in range(0, f.n, row_tile):
        frows = slice(fstart, min(fstart + row_tile, f.n))
        a = f.rows_aug[frows]
        f_norm = f.sqnorm[frows]
        f_exact = f.rows64(frows)
        nn_bound = torch.full((a.shape[0],), float("inf"), dtype=torch.float32, device=device)
        for t, cols in enumerate(tiles):
            part = ws.gemm(a, r_cols[:, cols])  # ||f_i - r_j||^2 - ||f_i||^2
            band = (f_norm + tile_max_norm[t]) * factor
            bound = torch.maximum(f_sq32[frows], tile_max_r_sq[t]) - f_norm + band
            if want_nn and n_masked[t]:
                nn_bound = torch.minimum(nn_bound, part[:, : n_masked[t]].min(dim=1).values)
                bound = torch.maximum(bound, nn_bound + 2 * band)
            ii, jj = _flat_nonzero(ws.le(part, bound[:, None]))
            if ii.shape[0] == 0:
                continue
            part_c = part[ii, jj]
            # Decide both tests in fp32 where that is provably right; pairs
            # within the rounding band of either threshold are redone exactly.
            d2_32 = part_c + f_norm[ii]
            pair_band = band[ii]
            thr_r32, thr_f32 = r_sq32[cols][jj], f_sq32[frows][ii]
            hit_r = d2_32 <= thr_r32 - pair_band
            hit_f = d2_32 <= thr_f32 - pair_band
            unsure = ((d2_32 - thr_r32).abs() <= pair_band) | ((d2_32 - thr_f32).abs() <= pair_band)
            if want_nn:
                nn_cand = nn_sorted[cols][jj] & (part_c <= nn_bound[ii] + 2 * pair_band)
                unsure |= nn_cand
            pos = unsure.nonzero(as_tuple=True)[0]
            if pos.shape[0]:
                exact = _exact_sqdist_pairs(f_exact, ii[pos], r, order[cols][jj[pos]])
                hit_r[pos] = exact <= r_sq[cols][jj[pos]]
                hit_f[pos] = exact <= f_sq[frows][ii[pos]]
                if want_nn:
                    is_nn = nn_cand[pos]
                    nn_sq.scatter_reduce_(0, fstart + ii[pos][is_nn], exact[is_nn], reduce="amin")
            in_ref_balls[frows] += torch.bincount(ii[hit_r], minlength=a.shape[0])
            counts_sorted[cols] += torch.bincount(jj[hit_r], minlength=cols.stop - cols.start)
            in_round_sorted[cols.start + jj[hit_f]] = True
    counts = torch.empty_like(counts_sorted)
    counts[order] = counts_sorted
    in_round = torch.empty_like(in_round_sorted)
    in_round[order] = in_round_sorted
    return counts, in_round, in_ref_balls, (nn_sq if want_nn else None)


@dataclass(frozen=True)
class BallStatistics:
    """Sufficient statistics of the two k-NN manifolds, mergeable across shards.

    Attributes:
        reference_sq_radii: ``[N]`` float64, squared k-th NN distance inside the reference.
        round_sq_radii: ``[M]`` float64, squared k-th NN distance inside the round.
        round_in_reference_balls: ``[M]`` int64, number of reference balls
            ``B(r_i, R_i)`` containing each round point (``<=``).
        reference_ball_counts: ``[N]`` int64, number of round points inside each
            reference ball.
        reference_in_round_manifold: ``[N]`` bool, whether each reference point
            lies inside at least one round ball ``B(f_j, F_j)``.
        k: the neighbourhood size.
        round_nearest_sq: ``[M]`` float64, exact squared distance from each
            round point to its nearest reference point among ``nn_columns``
            (None unless asked for).
    """

    reference_sq_radii: torch.Tensor
    round_sq_radii: torch.Tensor
    round_in_reference_balls: torch.Tensor
    reference_ball_counts: torch.Tensor
    reference_in_round_manifold: torch.Tensor
    k: int
    round_nearest_sq: torch.Tensor | None = None

    @property
    def reference_radii(self) -> torch.Tensor:
        return self.reference_sq_radii.sqrt()

    @property
    def round_radii(self) -> torch.Tensor:
        return self.round_sq_radii.sqrt()


def knn_radii(
    x, k: int = 5, *, chunk_size: int = DEFAULT_CHUNK_SIZE, device=None, squared: bool = False
) -> torch.Tensor:
    r"""Distance from every point to its k-th nearest neighbour in the same set.

    .. math:: R_i = \lVert x_i - \mathrm{NN}_k(x_i)\rVert_2 ,

    where the point itself is excluded (its duplicates are not). Exact in float64.

    Args:
        x: ``[N, D]`` float array, ``N >= k + 1``.
        k: neighbourhood size.
        chunk_size: columns per tile (tiles have at most 512 rows); memory is
            ``O(chunk_size)`` per tile.
        device: torch device, default CUDA when present else CPU.
        squared: return :math:`R_i^2` exactly (what :func:`ball_statistics`
            takes as a cache; squaring a rounded root can miss a tie).

    Returns:
        ``[N]`` float64 tensor on the CPU.

    Example:
        >>> import numpy as np
        >>> knn_radii(np.array([[0.0], [1.0], [3.0]]), k=1).tolist()
        [1.0, 1.0, 2.0]
    """
    xt = _check_embeddings(x, "x")
    _check_k(k, ("x", xt.shape[0]))
    _check_chunk_size(chunk_size)
    device = resolve_device(device)
    center = xt.to(device=device, dtype=torch.float64).mean(dim=0)
    sq = _kth_sq_radii(_prepare(xt, center, device), k, chunk_size).cpu()
    return sq if squared else sq.sqrt()


def nearest_neighbours(
    queries,
    points,
    k: int = 1,
    *,
    exclude_self: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    device=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Exact k nearest neighbours of each query among ``points``.

    .. math:: d_{i,(1)} \le \dots \le d_{i,(k)},\quad d_{i,(m)} = \lVert q_i - p_{j_m}\rVert_2^2 ,

    exact in float64, ties broken by the smaller index. With
    ``exclude_self=True`` the queries must be the points themselves and each
    query's own row is left out (its duplicates are not).

    Args:
        queries: ``[Q, D]`` float array.
        points: ``[P, D]`` float array, ``P >= k`` (``P >= k + 1`` when excluding self).
        k: number of neighbours.
        exclude_self: leave out each query's own index (queries is points).
        chunk_size: columns per tile.
        device: torch device, default CUDA when present else CPU.

    Returns:
        ``(squared_distances [Q, k] float64, indices [Q, k] int64)`` on the CPU.

    Example:
        >>> import numpy as np
        >>> d, i = nearest_neighbours(np.array([[0.0], [2.5]]), np.array([[0.0], [1.0], [3.0]]), k=2)
        >>> d.tolist(), i.tolist()
        ([[0.0, 1.0], [0.25, 2.25]], [[0, 1], [2, 1]])
    """
    p = _check_embeddings(points, "points")
    if exclude_self:
        _check_k(k, ("points", p.shape[0]))
        q = p
    else:
        q = _check_embeddings(queries, "queries")
        _check_same_dim(p, q, "points", "queries")
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k: expected a positive integer, got {k!r}")
        if p.shape[0] < k:
            raise ValueError(f"points: expected at least k={k} rows, got {p.shape[0]}")
    _check_chunk_size(chunk_size)
    device = resolve_device(device)
    center = p.to(device=device, dtype=torch.float64).mean(dim=0)
    pp = _prepare(p, center, device)
    if not exclude_self:
        dist, idx = _knn(_prepare(q, center, device), pp, k, chunk_size)
        return dist.cpu(), idx.cpu()
    dist, idx = _knn(pp, pp, k + 1, chunk_size)
    own = idx == torch.arange(pp.n, device=device)[:, None]
    # Drop the query's own column where present, else the last (all are ties).
    drop = torch.where(own.any(dim=1), own.float().argmax(dim=1), torch.full_like(idx[:, 0], k))
    keep = torch.ones_like(idx, dtype=torch.bool)
    keep[torch.arange(pp.n, device=device), drop] = False
    return dist[keep].view(pp.n, k).cpu(), idx[keep].view(pp.n, k).cpu()


def ball_statistics(
    reference,
    round_,
    k: int = 5,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    device=None,
    reference_sq_radii: torch.Tensor | None = None,
    nn_columns=None,
) -> BallStatistics:
    r"""One pass over all reference x round blocks collecting every ball test.

    For reference points :math:`r_i` with radii :math:`R_i` and round points
    :math:`f_j` with radii :math:`F_j`, it records
    :math:`\sum_i 1[\lVert f_j - r_i\rVert \le R_i]` per round point,
    :math:`\sum_j 1[\lVert f_j - r_i\rVert \le R_i]` per reference point, and
    :math:`\max_j 1[\lVert r_i - f_j\rVert \le F_j]` per reference point.
    Memory is bounded by ``chunk_size`` (tiles of at most 512 x chunk_size);
    no ``N x M`` matrix is formed.

    Args:
        reference: ``[N, D]`` float array.
        round_: ``[M, D]`` float array.
        k: neighbourhood size.
        chunk_size: block side length.
        device: torch device, default CUDA when present else CPU.
        reference_sq_radii: optional cached ``[N]`` squared radii of this
            reference and k, from ``knn_radii(reference, k, squared=True)``.
        nn_columns: optional ``[N]`` boolean mask; the same pass then also
            returns each round point's exact squared distance to its nearest
            masked reference point (e.g. a DCR train split), at almost no cost.

    Returns:
        :class:`BallStatistics` with CPU tensors.
    """
    ref = _check_embeddings(reference, "reference")
    rnd = _check_embeddings(round_, "round")
    _check_same_dim(ref, rnd, "reference", "round")
    _check_k(k, ("reference", ref.shape[0]), ("round", rnd.shape[0]))
    _check_chunk_size(chunk_size)
    device = resolve_device(device)
    center = ref.to(device=device, dtype=torch.float64).mean(dim=0)
    r = _prepare(ref, center, device)
    f = _prepare(rnd, center, device)
    if reference_sq_radii is None:
        r_radii_sq = _kth_sq_radii(r, k, chunk_size)
    else:
        if tuple(reference_sq_radii.shape) != (r.n,):
            raise ValueError(
                f"reference_sq_radii: expected shape ({r.n},), got {tuple(reference_sq_radii.shape)}"
            )
        r_radii_sq = torch.as_tensor(reference_sq_radii).to(device=device, dtype=torch.float64)
    f_radii_sq = _kth_sq_radii(f, k, chunk_size)
    f.release_cols()  # the ball pass uses the round as rows only
    if nn_columns is not None:
        nn_columns = torch.as_tensor(np.asarray(nn_columns, dtype=bool))
        if tuple(nn_columns.shape) != (r.n,) or not bool(nn_columns.any()):
            raise ValueError(f"nn_columns: expected a boolean mask of shape ({r.n},) with a True entry")
    ref_ball_counts, ref_in_round, in_ref_balls, nn_sq = _ball_pass(
        r, r_radii_sq, f, f_radii_sq, chunk_size, nn_columns
    )
    return BallStatistics(
        reference_sq_radii=r_radii_sq.cpu(),
        round_sq_radii=f_radii_sq.cpu(),
        round_in_reference_balls=in_ref_balls.cpu(),
        reference_ball_counts=ref_ball_counts.cpu(),
        reference_in_round_manifold=ref_in_round.cpu(),
        k=k,
        round_nearest_sq=None if nn_sq is None else nn_sq.cpu(),
    )
