r"""Hashing kernels of the model-free text featurizer: hashed n-gram counts and the sparse sign projection.

The vectorised NumPy code behind :mod:`metrics_core.featurize`: stateless, no
I/O, no metric (no direction). The constants below define the features and the
projection; changing any of them changes every embedding, so bump
``metrics_core.featurize.HASHING_SCHEME`` (part of the featurizer's key) with it.

Features (per text, after ``str.lower()``):

* tokens are the runs of two or more word characters (``\w\w+``, scikit-learn's
  default ``token_pattern``); punctuation and one-character words are dropped.
  Short texts keep a direction of their own: a text with no such run (``"4"``,
  ``"7."``, ``"X. Y"``) takes its one-character runs as its tokens instead
  (``\w+``), and a text with no word character at all (``""``, ``"?!"``) gets
  one constant feature (bucket :math:`b` of the tag ``_NO_WORD_TAG``, below), so
  every text has a non-zero count row and these texts are all alike;
* word unigrams and bigrams of consecutive tokens (``"w1 w2"``), as
  ``HashingVectorizer(analyzer="word", ngram_range=(1, 2))``;
* character 3- to 5-grams inside each token padded with one space either side,
  as ``analyzer="char_wb"`` applied to the space-joined tokens.

Each feature string :math:`s = s_0 \dots s_{L-1}` goes to bucket

.. math::
    b(s) = \mathrm{fmix64}\Big(\big(\textstyle\sum_{i<L} \mathrm{ord}(s_i)\, B^i \bmod 2^{64}\big)
           \oplus t\Big) \bmod n_{\text{features}},

with :math:`B` = ``_BASE``, :math:`t` = ``_WORD_TAG`` for word n-grams and
``_CHAR_TAG`` for character n-grams (so the word ``"the"`` and the character
3-gram ``"the"`` of ``"other"`` are different features), and ``fmix64`` the
MurmurHash3 64-bit finaliser. The hash is plain modular integer arithmetic, so
it is identical in every process and on every platform (Python's ``hash()`` is
salted per process and is never used).

Why not ``sklearn.feature_extraction.text.HashingVectorizer``: it builds every
n-gram as a Python string. Measured with ``benchmarks/bench_featurize.py`` on
the 2-core development machine (shared with other jobs, so the numbers move by
about 30% between runs), 20,000 generated texts of 20-40 words: the same
features through ``HashingVectorizer`` (word 1-2-grams + ``char_wb`` 3-5-grams)
ran at 2,500-3,400 texts/s, and word 1-2-grams alone at 12,000 texts/s, below
the 20,000 texts/s target before any weighting or projection. Hashed here with
vectorised NumPy over the code points of a chunk of texts, each distinct token
hashed once, the same features run at 41,000-66,000 texts/s, so the character
n-grams are kept. The whole ``HashingFeaturizer.transform`` (hashing, TF-IDF,
sparse projection to 256 dims) ran at 34,000-35,000 texts/s on one thread and 26,500-27,700 on
two (the two cores are shared, so two threads were not faster), against
23,700-29,000 and 22,300-23,400 for the LSA projection measured side by side in
the same runs (an embedding bag adding a 256-float row per bucket, where the
sparse projection adds 4 numbers). About 60% of ``transform`` is the hashing.

The featurizer's default projection to ``dim`` dimensions (``method="sparse-jl"``)
is a fixed, data-independent sparse sign random projection :math:`P`
``[n_features, dim]``, the hashing trick of Weinberger et al. (2009, "Feature
hashing for large scale multitask learning") with the block construction of
Kane & Nelson (2014, "Sparser Johnson-Lindenstrauss transforms", JACM 61(1)).
The ``dim`` outputs are cut into :math:`s` = ``nnz_per_bucket`` (default 4)
consecutive blocks, and bucket :math:`j` has one signed entry in each:

.. math::
    h_{jr} = \mathrm{fmix64}\big((s\,j + r) \oplus \tau\big), \quad
    \tau = \mathrm{fmix64}\big((\text{seed} \bmod 2^{64}) \oplus t_P\big), \quad r < s,

    c_{jr} = \lfloor rD/s \rfloor + \big(h_{jr} \bmod (\lfloor (r+1)D/s \rfloor - \lfloor rD/s \rfloor)\big),
    \qquad P_{j\,c_{jr}} = \frac{1 - 2\lfloor h_{jr} / 2^{63} \rfloor}{\sqrt{s}},

with :math:`D` = ``dim`` and :math:`t_P` = ``_PROJECTION_TAG``; the
featurizer's embedding is :math:`e_d = x_d P`. No matrix is stored:
:func:`sparse_jl_map` recomputes any bucket's column from the seed. Every column has unit norm, and with signs
independent and of mean zero
:math:`\mathbb{E}\langle xP, yP\rangle = \langle x, y\rangle` with
:math:`\mathrm{Var} = \frac{1}{D}\big(\lVert x\rVert^2\lVert y\rVert^2 +
\langle x,y\rangle^2 - 2\sum_j x_j^2 y_j^2\big)` when :math:`s` divides
:math:`D` (so :math:`\lVert e_d\rVert^2 = 1 \pm \sqrt{2/D}` roughly).

The ``method="lsa"`` projection of the featurizer is fitted here too: the top
right singular vectors of the reference TF-IDF matrix by randomised SVD
(Halko, Martinsson & Tropp 2011).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch

from metrics_core._checks import _check_int, _check_positive_int, _check_texts

# Change metrics_core.featurize.HASHING_SCHEME with any of these (module docstring).
DEFAULT_N_FEATURES = 2**18
DEFAULT_NNZ_PER_BUCKET = 4
_CHAR_NGRAMS = (3, 4, 5)
_CHUNK_TEXTS = 2048  # keeps each chunk's arrays small enough to stay in cache and off mmap
_CHUNK_CHARS = 2**20
_MAX_N_FEATURES = 2**31 - 1

_BASE = 0x9E3779B97F4A7C15  # odd, so invertible mod 2^64
_BASE_INVERSE = pow(_BASE, -1, 1 << 64)
_WORD_TAG = 0x243F6A8885A308D3
_CHAR_TAG = 0x13198A2E03707344
_PROJECTION_TAG = 0xA4093822299F31D0  # the next hex digits of pi, like the tags above
_NO_WORD_TAG = 0x082EFA98EC4E6C89  # and the next: the one feature of a text without a word character
_SPACE = 32
_SEPARATOR = "\x00"  # not a word character: it splits tokens, and marks text boundaries

_U64 = np.uint64
_ASCII_WORD = np.zeros(128, dtype=bool)
_ASCII_WORD[[ord(c) for c in "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"]] = True


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, in place on a uint64 array."""
    h ^= h >> _U64(33)
    h *= _U64(0xFF51AFD7ED558CCD)
    h ^= h >> _U64(33)
    h *= _U64(0xC4CEB9FE1A85EC53)
    h ^= h >> _U64(33)
    return h


def _powers(base: int, n: int, block: int = 1024) -> np.ndarray:
    """``base**i mod 2**64`` for ``i < n``, as ``base**(block*q) * base**r``: a
    short running product and one outer product instead of a length-``n`` chain."""
    def chain(step: int, m: int) -> np.ndarray:
        out = np.empty(m, dtype=_U64)
        out[0] = 1
        if m > 1:
            out[1:] = step
            np.cumprod(out[1:], out=out[1:])  # uint64 products wrap mod 2^64, as intended
        return out

    low = chain(base, block)
    high = chain(pow(base, block, 1 << 64), -(-n // block))
    return (high[:, None] * low[None, :]).ravel()[:n]


def _is_word_char(cp: np.ndarray) -> np.ndarray:
    """``re``'s ``\\w`` for str patterns: ``str.isalnum()`` or ``'_'``."""
    if cp.size == 0 or cp.max() < 128:
        return _ASCII_WORD[cp]
    out = _ASCII_WORD[np.minimum(cp, 127)] & (cp < 128)
    other = np.flatnonzero(cp >= 128)
    uniq, inverse = np.unique(cp[other], return_inverse=True)
    flags = np.fromiter((chr(c).isalnum() for c in uniq.tolist()), dtype=bool, count=uniq.size)
    out[other] = flags[inverse]
    return out


def _segment_offsets(lengths: np.ndarray) -> np.ndarray:
    offsets = np.zeros(lengths.size, dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    return offsets


def _gather_segments(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``starts[k] + j`` for ``j < lengths[k]``, and each ``j``."""
    offsets = _segment_offsets(lengths)
    within = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(offsets, lengths)
    return np.repeat(starts, lengths) + within, within


def _token_rows(cp, starts, lengths, word_hash, pw) -> tuple[np.ndarray, np.ndarray]:
    """One row per distinct token: its word-unigram hash, then the hashes of the
    character 3-, 4- and 5-grams of ``" token "``. Returns row lengths and hashes."""
    padded_len = lengths + 2
    pad_offsets = _segment_offsets(padded_len)
    src, within = _gather_segments(starts, lengths)
    padded = np.full(int(padded_len.sum()), _SPACE, dtype=_U64)
    padded[np.repeat(pad_offsets + 1, lengths) + within] = cp[src]

    per_n = {n: np.maximum(padded_len - n + 1, 0) for n in _CHAR_NGRAMS}
    row_len = 1 + sum(per_n.values())
    row_offsets = _segment_offsets(row_len)
    out = np.empty(int(row_len.sum()), dtype=_U64)
    out[row_offsets] = word_hash
    block = row_offsets + 1
    rolling = padded.copy()  # rolling[p] = sum_{i<n} padded[p+i] B^i, grown one n at a time
    for n in range(2, _CHAR_NGRAMS[-1] + 1):
        rolling = rolling[:-1] + padded[n - 1:] * pw[n - 1]
        if n in per_n:
            gram_starts, j = _gather_segments(pad_offsets, per_n[n])
            out[np.repeat(block, per_n[n]) + j] = _fmix64(rolling[gram_starts] ^ _U64(_CHAR_TAG))
            block = block + per_n[n]
    return row_len, out


def _hashed_counts(texts: list[str], n_features: int) -> sp.csr_matrix:
    """Bucket counts ``[len(texts), n_features]`` float32 of one chunk.

    Each distinct token of the chunk is hashed once (its unigram and character
    n-grams form one row of ``G``; each word bigram is a one-entry row), and a
    sparse product ``A @ G`` with ``A`` listing every text's tokens and bigrams
    in text order does the counting. A row's entries, and their order, depend
    only on its own text, so results do not depend on the chunking.
    """
    n_docs = len(texts)
    joined = _SEPARATOR.join(texts)
    if joined.count(_SEPARATOR) != n_docs - 1:  # a text holds NUL: any non-word char splits alike
        joined = _SEPARATOR.join(t.replace(_SEPARATOR, " ") for t in texts)
    cp = np.frombuffer(joined.lower().encode("utf-32-le", "surrogatepass"), dtype=np.uint32)

    word = np.zeros(cp.size + 2, dtype=bool)
    word[1:-1] = _is_word_char(cp)
    edges = np.flatnonzero(word[1:] != word[:-1])
    starts, ends = edges[0::2], edges[1::2]
    token_doc = np.searchsorted(np.flatnonzero(cp == 0), starts)  # separators before it = its text
    long_run = ends - starts >= 2
    has_long_run = np.zeros(n_docs, dtype=bool)
    has_long_run[token_doc[long_run]] = True
    keep = long_run | ~has_long_run[token_doc]  # a text without a \w\w+ run keeps its one-character runs
    starts, ends, token_doc = starts[keep], ends[keep], token_doc[keep]
    no_word = np.bincount(token_doc, minlength=n_docs) == 0
    n_tokens = starts.size
    if n_tokens == 0:
        return _no_word_rows(no_word, sp.csr_matrix((n_docs, n_features), dtype=np.float32))
    lengths = ends - starts

    # Every token's sum_i c_i B^i from one prefix sum: (S[end] - S[start]) B^-start.
    pw = _powers(_BASE, max(cp.size + 2, _CHAR_NGRAMS[-1] + 1))
    prefix = np.zeros(cp.size + 1, dtype=_U64)
    np.cumsum(cp * pw[:cp.size], out=prefix[1:])
    word_poly = (prefix[ends] - prefix[starts]) * _powers(_BASE_INVERSE, cp.size)[starts]

    order = np.argsort(word_poly)
    sorted_poly = word_poly[order]
    new = np.empty(n_tokens, dtype=bool)
    new[0] = True
    np.not_equal(sorted_poly[1:], sorted_poly[:-1], out=new[1:])
    distinct = sorted_poly[new]
    n_distinct = distinct.size
    token_id = np.empty(n_tokens, dtype=np.int64)
    token_id[order] = np.cumsum(new) - 1
    example = order[new]  # one occurrence of each: equal hashes, equal characters
    row_len, token_hashes = _token_rows(
        cp, starts[example], lengths[example], _fmix64(distinct ^ _U64(_WORD_TAG)), pw
    )

    # Word bigrams "w1 w2" of consecutive tokens of the same text.
    is_pair = np.zeros(n_tokens, dtype=bool)
    is_pair[:-1] = token_doc[1:] == token_doc[:-1]
    pair = np.flatnonzero(is_pair)
    n_pairs = pair.size
    bigram_poly = word_poly[pair] + pw[lengths[pair]] * _U64(_SPACE) + pw[lengths[pair] + 1] * word_poly[pair + 1]

    g_indptr = np.zeros(n_distinct + n_pairs + 1, dtype=np.int32)
    np.cumsum(np.concatenate([row_len, np.ones(n_pairs, dtype=np.int64)]), out=g_indptr[1:])
    g_indices = np.concatenate([token_hashes, _fmix64(bigram_poly ^ _U64(_WORD_TAG))]) % _U64(n_features)
    g = sp.csr_matrix(
        (np.ones(g_indices.size, dtype=np.float32), g_indices.astype(np.int32), g_indptr),
        shape=(n_distinct + n_pairs, n_features),
    )

    # A: each text's tokens in order, each bigram right after its first word.
    position = np.arange(n_tokens) + np.cumsum(is_pair) - is_pair
    a_indices = np.empty(n_tokens + n_pairs, dtype=np.int32)
    a_indices[position] = token_id
    a_indices[position[pair] + 1] = n_distinct + np.arange(n_pairs)
    a_indptr = np.zeros(n_docs + 1, dtype=np.int32)
    per_doc = np.bincount(token_doc, minlength=n_docs) + np.bincount(token_doc[pair], minlength=n_docs)
    np.cumsum(per_doc, out=a_indptr[1:])
    a = sp.csr_matrix(
        (np.ones(a_indices.size, dtype=np.float32), a_indices, a_indptr), shape=(n_docs, n_distinct + n_pairs)
    )
    return _no_word_rows(no_word, a @ g)


def _no_word_rows(no_word: np.ndarray, counts: sp.csr_matrix) -> sp.csr_matrix:
    """``counts`` with a count of 1 in the constant bucket for each text without a word character."""
    rows = np.flatnonzero(no_word)
    if rows.size == 0:
        return counts
    n_docs, n_features = counts.shape
    bucket = int(_fmix64(np.array([_NO_WORD_TAG], dtype=_U64))[0] % _U64(n_features))
    constant = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.float32), (rows, np.full(rows.size, bucket))), shape=(n_docs, n_features)
    )
    return (counts + constant).tocsr()


def _inverse_row_norms(weights: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """``1 / ||row||_2`` of a CSR matrix's data (0 for empty rows), float32."""
    n_rows = indptr.size - 1
    lengths = np.diff(indptr)
    nonempty = lengths > 0
    inv = np.zeros(n_rows, dtype=np.float32)
    if nonempty.any():
        # reduceat over the starts of non-empty rows: each sums up to the next start.
        sq = np.add.reduceat(weights.astype(np.float64) ** 2, indptr[:-1][nonempty])
        inv[nonempty] = 1.0 / np.sqrt(sq)
    return inv


def _projected_rows(counts: sp.csr_matrix, idf: np.ndarray, column_of_bucket: np.ndarray) -> sp.csr_matrix:
    """L2-normalised sublinear TF-IDF rows (norm over every bucket), restricted to
    the buckets with a projection row and re-indexed by ``column_of_bucket``."""
    n_docs = counts.shape[0]
    rows = np.repeat(np.arange(n_docs, dtype=np.int64), np.diff(counts.indptr))
    weights = (np.log(counts.data) + np.float32(1.0)) * idf[counts.indices]
    inv_norm = _inverse_row_norms(weights, counts.indptr)
    column = column_of_bucket[counts.indices]
    kept = column >= 0
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[kept], minlength=n_docs), out=indptr[1:])
    data = weights[kept] * inv_norm[rows[kept]]
    return sp.csr_matrix((data, column[kept].astype(np.int64), indptr), shape=(n_docs, int(column_of_bucket.max()) + 1))


def _sparse_times_dense(x: sp.csr_matrix, dense: torch.Tensor) -> torch.Tensor:
    """``x @ dense`` as an embedding bag: each row sums its weighted rows of
    ``dense`` in stored order (several times faster than SciPy here, and the
    result of a row does not depend on the other rows or on the thread count)."""
    return torch.nn.functional.embedding_bag(
        torch.from_numpy(x.indices.astype(np.int64, copy=False)),
        dense,
        torch.from_numpy(x.indptr[:-1].astype(np.int64, copy=False)),
        mode="sum",
        per_sample_weights=torch.from_numpy(x.data.astype(np.float32, copy=False)),
    )


def _top_right_singular_vectors(x: sp.csr_matrix, k: int, seed: int, n_iter: int = 5, n_oversamples: int = 10):
    """Top-``k`` right singular vectors ``[columns, k]`` of ``x`` by randomised
    subspace iteration (Halko, Martinsson & Tropp 2011, Alg. 4.4, with the LU
    renormalisation of scikit-learn's ``randomized_svd``), each signed so its
    largest-magnitude entry is positive; ``None`` when ``x`` has rank below ``k``.

    The sparse products run as float32 embedding bags; the last basis is
    orthonormalised by QR and the small ``width x width`` problem is solved in
    float64 through the eigenvectors of ``B B^T`` (``B = Q^T x``), which avoids
    an SVD of the tall ``columns x width`` matrix.
    """
    n, m = x.shape
    width = min(k + n_oversamples, n, m)
    xt = x.T.tocsr()

    def times(a: sp.csr_matrix, dense: np.ndarray) -> np.ndarray:
        return _sparse_times_dense(a, torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float32))).numpy()

    y = times(x, np.random.default_rng(seed).standard_normal((m, width)))
    for _ in range(n_iter):
        z = times(xt, scipy.linalg.lu(y, permute_l=True, check_finite=False)[0])
        y = times(x, scipy.linalg.lu(z, permute_l=True, check_finite=False)[0])
    q, _ = np.linalg.qr(y.astype(np.float64))
    b_t = times(xt, q).astype(np.float64)  # (Q^T x)^T, [m, width]
    eigenvalues, eigenvectors = np.linalg.eigh(b_t.T @ b_t)  # ascending
    singular = np.sqrt(np.clip(eigenvalues[::-1][:k], 0.0, None))
    if singular[-1] <= 1e-6 * singular[0]:
        return None
    v_t = np.ascontiguousarray(((b_t @ eigenvectors[:, ::-1][:, :k]) / singular).T)  # [k, m]
    flip = v_t[np.arange(k), np.argmax(np.abs(v_t), axis=1)] < 0
    v_t[flip] *= -1.0
    return v_t.T


def _chunks(items: list[str]) -> list[list[str]]:
    """Consecutive runs of at most ``_CHUNK_TEXTS`` texts and (unless one text is
    longer) ``_CHUNK_CHARS`` characters, which bounds the working memory."""
    chunks, start, chars = [], 0, 0
    for i, text in enumerate(items):
        if i > start and (i - start >= _CHUNK_TEXTS or chars + len(text) > _CHUNK_CHARS):
            chunks.append(items[start:i])
            start, chars = i, 0
        chars += len(text)
    chunks.append(items[start:])
    return chunks


def _map_chunks(fn, chunks: list, n_threads: int | None) -> list:
    threads = min(len(chunks), n_threads if n_threads is not None else torch.get_num_threads())
    if threads <= 1:
        return [fn(c) for c in chunks]
    with ThreadPoolExecutor(max_workers=threads) as pool:  # the NumPy, SciPy and torch kernels drop the GIL
        return list(pool.map(fn, chunks))


def _check_n_features(n_features) -> int:
    n_features = _check_positive_int(n_features, "n_features", 2)
    if n_features > _MAX_N_FEATURES:
        raise ValueError(f"n_features: expected at most {_MAX_N_FEATURES} (int32 bucket ids), got {n_features}")
    return n_features


def hashed_ngram_counts(texts, *, n_features: int = DEFAULT_N_FEATURES, n_threads: int | None = None) -> sp.csr_matrix:
    r"""Raw hashed feature counts :math:`\mathrm{tf}_{dj}`, before any weighting.

    Row ``d`` counts, for every word unigram, word bigram and character 3-5-gram
    of ``texts[d]`` (module docstring), one in bucket :math:`b(s)`. The rows are
    what ``TfidfTransformer`` would take; column indices within a row are not
    sorted.

    Args:
        texts: non-empty list of ``str``.
        n_features: hash buckets.
        n_threads: worker threads over chunks of 2,048 texts (default:
            ``torch.get_num_threads()``). The result does not depend on it.

    Returns:
        ``[len(texts), n_features]`` float32 CSR matrix of counts.

    Example:
        >>> c = hashed_ngram_counts(["Hi, cat!", "cat cat"])
        >>> # "hi", "cat", "hi cat"; " hi", "hi ", " hi "; " ca", "cat", "at ", " cat", "cat ", " cat "
        >>> c.shape, c.sum(axis=1).A1.tolist(), c[1].max()  # the second text: each feature twice but "cat cat"
        ((2, 262144), [12.0, 15.0], np.float32(2.0))
        >>> # "7": "7", " 7 "; "x", "y", "x y", " x ", " y "; the constant feature
        >>> hashed_ngram_counts(["7.", "X. Y", "?!"]).sum(axis=1).A1.tolist()
        [2.0, 5.0, 1.0]
    """
    items = _check_texts(texts)
    n_features = _check_n_features(n_features)
    parts = _map_chunks(lambda c: _hashed_counts(c, n_features), _chunks(items), n_threads)
    return parts[0] if len(parts) == 1 else sp.vstack(parts, format="csr")


def sparse_jl_map(buckets, *, dim: int, nnz_per_bucket: int = DEFAULT_NNZ_PER_BUCKET, seed: int = 0):
    r"""The rows of the sparse sign projection :math:`P` for the given buckets.

    Bucket :math:`j` has :math:`s` = ``nnz_per_bucket`` entries, one in each of
    the :math:`s` consecutive blocks of the ``dim`` = :math:`D` outputs
    (Kane & Nelson 2014, block construction; :math:`s = 1` is the hashing
    trick of Weinberger et al. 2009):

    .. math::
        h_{jr} = \mathrm{fmix64}\big((s\,j + r) \oplus \tau\big), \quad
        \tau = \mathrm{fmix64}\big((\text{seed} \bmod 2^{64}) \oplus t_P\big),

        c_{jr} = \lfloor rD/s \rfloor + \big(h_{jr} \bmod (\lfloor (r+1)D/s \rfloor - \lfloor rD/s \rfloor)\big),
        \qquad P_{j\,c_{jr}} = \frac{1 - 2\lfloor h_{jr} / 2^{63} \rfloor}{\sqrt{s}}, \qquad r < s.

    Plain 64-bit integer arithmetic: the same in every process. Not a metric.

    Args:
        buckets: ``[K]`` integer bucket ids, each in ``[0, 2**31)``.
        dim: output dimension ``D``.
        nnz_per_bucket: entries per bucket ``s``, ``1 <= s <= D``.
        seed: integer; any value, taken mod ``2**64``.

    Returns:
        ``(coordinates, weights)``: ``[K, s]`` int64 output coordinates
        :math:`c_{jr}` (increasing along a row, one per block) and ``[K, s]``
        float32 weights :math:`\pm 1/\sqrt{s}`.

    Example:
        >>> coordinates, weights = sparse_jl_map([0, 1, 5], dim=8, nnz_per_bucket=4)
        >>> (coordinates // 2).tolist()  # one coordinate in each block of 2
        [[0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3]]
        >>> coordinates.tolist(), weights[1].tolist()
        ([[1, 3, 5, 7], [1, 3, 5, 6], [1, 3, 4, 7]], [0.5, 0.5, -0.5, -0.5])
    """
    dim = _check_positive_int(dim, "dim")
    s = _check_positive_int(nnz_per_bucket, "nnz_per_bucket")
    if s > dim:
        raise ValueError(f"nnz_per_bucket: expected at most dim = {dim}, got {s}")
    seed = _check_int(seed, "seed")  # a hash seed: any integer
    ids = np.asarray(buckets)
    if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
        raise ValueError(f"buckets: expected a 1-d integer array, got {ids.dtype} {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() > _MAX_N_FEATURES):
        raise ValueError(f"buckets: expected ids in [0, {_MAX_N_FEATURES}], got [{ids.min()}, {ids.max()}]")
    tau = _fmix64(np.array([(seed % (1 << 64)) ^ _PROJECTION_TAG], dtype=_U64))[0]
    r = np.arange(s, dtype=_U64)
    h = _fmix64((ids.astype(_U64)[:, None] * _U64(s) + r) ^ tau)
    low = np.arange(s, dtype=np.int64) * dim // s
    size = np.arange(1, s + 1, dtype=np.int64) * dim // s - low
    coordinates = low + (h % size.astype(_U64)).astype(np.int64)
    magnitude = np.float32(1.0 / np.sqrt(s))
    weights = np.where((h >> _U64(63)) == 0, magnitude, -magnitude).astype(np.float32)
    return coordinates, weights
