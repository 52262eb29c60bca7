r"""Model-free text featurizer: hashed n-gram TF-IDF, projected by a sparse sign random projection.

Turns a list of strings into ``float32`` embeddings ``[n, dim]`` for the
embedding-space suite without any model download. Pure: no I/O, no global
random state; a fitted :class:`HashingFeaturizer` is plain arrays, saved by the
caller as JSON + ``.npz`` through :meth:`HashingFeaturizer.to_arrays`.

Features and hash (:mod:`metrics_core.hashing`, which documents them and their
speed): per text, after ``str.lower()``, word unigrams and bigrams of the
``\w\w+`` tokens and character 3- to 5-grams of each space-padded token
(scikit-learn's ``HashingVectorizer`` features for ``analyzer="word"``,
``ngram_range=(1, 2)`` plus ``analyzer="char_wb"``), each sent to one of
``n_features`` buckets :math:`b(s)` by plain 64-bit integer arithmetic, the
same in every process.

Weighting (scikit-learn's ``TfidfTransformer(sublinear_tf=True,
smooth_idf=True, norm="l2")`` with the idf fitted on the reference only):

.. math::
    w_{dj} = \big(1 + \ln \mathrm{tf}_{dj}\big)\,\mathrm{idf}_j, \qquad
    \mathrm{idf}_j = \ln\frac{1 + n}{1 + \mathrm{df}_j} + 1, \qquad
    x_d = w_d / \lVert w_d \rVert_2,

where :math:`n` is the number of reference texts and :math:`\mathrm{df}_j` the
number of reference texts holding bucket :math:`j` (a bucket the reference
never holds gets the largest idf, :math:`\ln(1 + n) + 1`).

Projection to ``dim`` dimensions (``method="sparse-jl"``, the default): a
fixed, data-independent sparse sign random projection :math:`P`
``[n_features, dim]`` (the hashing trick of Weinberger et al. 2009 with the
block construction of Kane & Nelson 2014), :math:`e_d = x_d P`; its entries
come from :func:`~metrics_core.hashing.sparse_jl_map` and its construction and
variance are in :mod:`metrics_core.hashing`.

Why not a projection fitted on the reference: every bucket, seen in the
reference or not, has its column, and the projection does not depend on the
data, so a text maps to the same point whether or not it was in the fitting
set. The previous default, latent semantic analysis (``method="lsa"``,
Deerwester et al. 1990: the top-``dim`` right singular vectors :math:`V` of the
reference TF-IDF matrix over its ``max_columns`` most frequent buckets, by
randomised SVD, Halko et al. 2011, so the reference maps to :math:`U\Sigma`),
is biased in-sample versus out-of-sample: the reference texts lie in the span
it was fitted to, while new texts lose the share of their weight outside that
span and on buckets without a projection row. Measured with 400 reference and
300 round texts split from one Zipfian generator (``tests/test_featurize.py``,
3,000-word vocabulary), ``dim=256``: mean embedding norm 0.92 on the reference
and 0.52 on the round, and improved precision/recall
(:func:`metrics_core.precision_recall`, ``k=5``) (1.0, 0.0) although both sets
come from the same distribution; at ``dim=64`` norms 0.64 and 0.42 and
(1.0, 0.0025). The sparse projection gives norms 0.995 and 0.998 and
(0.76, 0.80) at ``dim=256``, 0.984 and 0.986 and (0.80, 0.80) at ``dim=64``
(2,000-word vocabulary: LSA 0.92 and 0.56, (1.0, 0.0); sparse 1.00 and 1.00,
(0.81, 0.80)). LSA stays available as ``method="lsa"`` for offline analysis of a
fixed corpus; when the reference has fewer texts (or observed buckets) than
``dim``, or spans fewer than ``dim`` directions, it falls back to a Gaussian
random projection :math:`N(0, 1/\text{dim})` of the observed buckets
(``method="random"``). Under LSA a text's weight on buckets without a
projection row still counts in its TF-IDF norm, so it is shrunk toward the
origin. A text with no token of two or more word characters (``"4"``, ``"7."``)
is featurized from its one-character tokens, and a text with no word character
at all (``""``, ``"?!"``) from one constant feature
(:mod:`metrics_core.hashing`), so short answers embed to non-zero vectors
(under LSA, only where the reference holds those buckets).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp
import torch

from metrics_core._checks import _check_int, _check_positive_int, _check_texts
from metrics_core.hashing import (
    DEFAULT_N_FEATURES,
    DEFAULT_NNZ_PER_BUCKET,
    _check_n_features,
    _chunks,
    _hashed_counts,
    _inverse_row_norms,
    _map_chunks,
    _projected_rows,
    _top_right_singular_vectors,
    hashed_ngram_counts,
    sparse_jl_map,
)

# Part of the key, and from_arrays refuses any other: change it when the features or the
# projection change. v2: sparse-jl became the default, so stored v1 (LSA) featurizers are refitted.
# v3: texts without a two-character token get one-character tokens or a constant feature.
HASHING_SCHEME = "hashing-v3"
SPARSE_JL, LSA, RANDOM = "sparse-jl", "lsa", "random"
DEFAULT_METHOD = SPARSE_JL
DEFAULT_DIM = 256
DEFAULT_MAX_COLUMNS = 2**15
_MAX_TABLE_ENTRIES = 2**22  # n_features * s up to this: the bucket map is tabulated once (<= 32 MiB)


@dataclass(frozen=True, eq=False)
class HashingFeaturizer:
    r"""A fitted hashing TF-IDF featurizer and its projection; plain arrays, no pickling needed.

    Build with :func:`fit_hashing_featurizer`, embed with :meth:`transform`,
    store with :meth:`to_arrays` / :meth:`from_arrays` (JSON + ``.npz``).

    Args:
        n_features: hash buckets.
        dim: output dimension ``D``.
        seed: seed of the sparse projection (or random state of the SVD / random projection).
        n_reference: number of reference texts the idf was fitted on.
        method: ``"sparse-jl"`` (data-independent sparse sign projection),
            ``"lsa"`` (fitted on the reference; biased in-sample vs
            out-of-sample, see the module docstring) or ``"random"`` (the LSA
            fallback for a reference smaller than ``dim``).
        idf: ``[n_features]`` float64 smooth idf of every bucket.
        nnz_per_bucket: ``"sparse-jl"`` only: entries per bucket ``s``, ``1 <= s <= D``.
        max_columns: ``"lsa"``/``"random"`` only: most buckets carrying a projection row.
        columns: ``"lsa"``/``"random"`` only: ``[K]`` int64 strictly increasing
            bucket ids with a projection row.
        projection: ``"lsa"``/``"random"`` only: ``[K, dim]`` float32 projection rows.
    """

    n_features: int
    dim: int
    seed: int
    n_reference: int
    method: str
    idf: np.ndarray = field(repr=False)
    nnz_per_bucket: int | None = None
    max_columns: int | None = None
    columns: np.ndarray | None = field(default=None, repr=False)
    projection: np.ndarray | None = field(default=None, repr=False)
    _idf32: np.ndarray = field(init=False, repr=False)
    _bucket_table: tuple | None = field(init=False, repr=False)
    _bag_row: np.ndarray | None = field(init=False, repr=False)
    _projection_t: torch.Tensor | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n_features = _check_n_features(self.n_features)
        dim = _check_positive_int(self.dim, "dim")
        _check_positive_int(self.n_reference, "n_reference")
        object.__setattr__(self, "seed", _check_int(self.seed, "seed"))  # a hash seed: any integer
        if self.method not in (SPARSE_JL, LSA, RANDOM):
            raise ValueError(f"method: expected {SPARSE_JL!r}, {LSA!r} or {RANDOM!r}, got {self.method!r}")
        idf = np.asarray(self.idf)
        if idf.dtype != np.float64 or idf.shape != (n_features,) or not np.isfinite(idf).all():
            raise ValueError(f"idf: expected finite float64 [{n_features}], got {idf.dtype} {idf.shape}")
        object.__setattr__(self, "idf", idf)
        object.__setattr__(self, "n_features", n_features)
        object.__setattr__(self, "dim", dim)
        if self.method == SPARSE_JL:
            self._init_sparse_jl()
        else:
            self._init_fitted_projection()
        for name in ("idf", "columns", "projection"):
            arr = getattr(self, name)
            if arr is None:
                continue
            arr = np.ascontiguousarray(arr).copy() if arr.flags.writeable else np.ascontiguousarray(arr)
            arr.setflags(write=False)  # frozen means frozen: the key must stay true
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "_idf32", self.idf.astype(np.float32))

    def _init_sparse_jl(self) -> None:
        unused = [k for k in ("max_columns", "columns", "projection") if getattr(self, k) is not None]
        if unused:
            raise ValueError(f"{', '.join(unused)}: expected None for method {SPARSE_JL!r} (no fitted projection)")
        s = _check_positive_int(self.nnz_per_bucket, "nnz_per_bucket")
        if s > self.dim:
            raise ValueError(f"nnz_per_bucket: expected at most dim = {self.dim}, got {s}")
        object.__setattr__(self, "nnz_per_bucket", s)
        table = None
        if self.n_features * s <= _MAX_TABLE_ENTRIES:  # else each chunk hashes its own buckets
            coordinates, weights = sparse_jl_map(
                np.arange(self.n_features), dim=self.dim, nnz_per_bucket=s, seed=self.seed
            )
            table = (coordinates.astype(np.int32), weights)
        object.__setattr__(self, "_bucket_table", table)
        object.__setattr__(self, "_bag_row", None)
        object.__setattr__(self, "_projection_t", None)

    def _init_fitted_projection(self) -> None:
        if self.nnz_per_bucket is not None:
            raise ValueError(f"nnz_per_bucket: expected None for method {self.method!r}, got {self.nnz_per_bucket!r}")
        max_columns = _check_positive_int(self.max_columns, "max_columns")
        if self.columns is None or self.projection is None:
            raise ValueError(f"columns, projection: expected arrays for method {self.method!r}, got None")
        columns = np.asarray(self.columns)
        if columns.dtype != np.int64 or columns.ndim != 1 or not 1 <= columns.size <= max_columns:
            raise ValueError(
                f"columns: expected int64 [K] with 1 <= K <= {max_columns}, got {columns.dtype} {columns.shape}"
            )
        if columns[0] < 0 or columns[-1] >= self.n_features or (np.diff(columns) <= 0).any():
            raise ValueError(f"columns: expected strictly increasing bucket ids in [0, {self.n_features})")
        projection = np.asarray(self.projection)
        shape = (columns.size, self.dim)
        if projection.dtype != np.float32 or projection.shape != shape or not np.isfinite(projection).all():
            raise ValueError(
                f"projection: expected finite float32 [{shape[0]}, {shape[1]}], got {projection.dtype} {projection.shape}"
            )
        object.__setattr__(self, "max_columns", max_columns)
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "projection", projection)
        bag_row = np.full(self.n_features, columns.size, dtype=np.int64)  # no projection row: the zero row
        bag_row[columns] = np.arange(columns.size)
        padded = np.zeros((columns.size + 1, self.dim), dtype=np.float32)
        padded[:-1] = projection
        object.__setattr__(self, "_bucket_table", None)
        object.__setattr__(self, "_bag_row", bag_row)
        object.__setattr__(self, "_projection_t", torch.from_numpy(padded))

    def config(self) -> dict:
        """The JSON-serialisable scalars (everything but the arrays); they depend on ``method``."""
        config = {
            "scheme": HASHING_SCHEME,
            "n_features": self.n_features,
            "dim": self.dim,
            "seed": self.seed,
            "n_reference": int(self.n_reference),
            "method": self.method,
        }
        if self.method == SPARSE_JL:
            config["nnz_per_bucket"] = int(self.nnz_per_bucket)
        else:
            config["max_columns"] = int(self.max_columns)
        return config

    def to_arrays(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(config, arrays)``: write the config as JSON and the arrays with ``np.savez``.

        The arrays are ``idf`` (and ``columns``, ``projection`` for a fitted projection)."""
        arrays = {"idf": self.idf}
        if self.method != SPARSE_JL:
            arrays.update(columns=self.columns, projection=self.projection)
        return self.config(), arrays

    @classmethod
    def from_arrays(cls, config: dict, arrays) -> HashingFeaturizer:
        """Rebuild from :meth:`to_arrays` output (``arrays`` may be an ``np.load`` result)."""
        if config.get("scheme") != HASHING_SCHEME:
            raise ValueError(f"config.scheme: expected {HASHING_SCHEME!r}, got {config.get('scheme')!r}")
        method = config.get("method")
        if method not in (SPARSE_JL, LSA, RANDOM):
            raise ValueError(f"config.method: expected {SPARSE_JL!r}, {LSA!r} or {RANDOM!r}, got {method!r}")
        scalars = ["n_features", "dim", "seed", "n_reference", "method"]
        names = ["idf"]
        if method == SPARSE_JL:
            scalars.append("nnz_per_bucket")
        else:
            scalars.append("max_columns")
            names += ["columns", "projection"]
        missing = [k for k in scalars if k not in config] + [f"arrays.{k}" for k in names if k not in arrays]
        if missing:
            raise ValueError(f"from_arrays: missing {', '.join(missing)}")
        return cls(**{k: config[k] for k in scalars}, **{k: np.asarray(arrays[k]) for k in names})

    @cached_property
    def key(self) -> str:
        """Stable content hash of the config (scheme and method included) and arrays (a cache key)."""
        h = hashlib.blake2b(digest_size=16)
        h.update(json.dumps(self.config(), sort_keys=True).encode())
        for name, arr in sorted(self.to_arrays()[1].items()):
            little = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
            h.update(f"{name}:{little.dtype.str}:{little.shape}".encode())
            h.update(np.ascontiguousarray(little).tobytes())
        return f"{HASHING_SCHEME}:{h.hexdigest()}"

    def _transform_chunk(self, texts: list[str]) -> np.ndarray:
        counts = _hashed_counts(texts, self.n_features)
        weights = (np.log(counts.data) + np.float32(1.0)) * self._idf32[counts.indices]
        inv_norm = _inverse_row_norms(weights, counts.indptr)
        if self.method == SPARSE_JL:
            return self._sparse_jl_rows(counts, weights * inv_norm.repeat(np.diff(counts.indptr)))
        # Buckets without a projection row point at an all-zero last row: no filtering pass.
        out = torch.nn.functional.embedding_bag(
            torch.from_numpy(self._bag_row[counts.indices]),
            self._projection_t,
            torch.from_numpy(counts.indptr[:-1].astype(np.int64)),
            mode="sum",
            per_sample_weights=torch.from_numpy(weights),
        )
        out *= torch.from_numpy(inv_norm)[:, None]
        return out.numpy()

    def _sparse_jl_rows(self, counts: sp.csr_matrix, x: np.ndarray) -> np.ndarray:
        """``x P`` for the normalised TF-IDF values ``x`` of ``counts``' entries.

        Each entry expands to its ``s`` (coordinate, signed weight) pairs, kept
        in entry order as the rows of a ``[n, dim]`` CSR matrix with duplicate
        coordinates; ``toarray`` adds duplicates up row by row in stored order,
        so a row depends on its own text only (and the C loop drops the GIL)."""
        n_docs, s = counts.shape[0], self.nnz_per_bucket
        if self._bucket_table is not None:
            coordinates, signs = (np.take(t, counts.indices, axis=0) for t in self._bucket_table)
        else:
            coordinates, signs = sparse_jl_map(counts.indices, dim=self.dim, nnz_per_bucket=s, seed=self.seed)
        index_dtype = np.int32 if counts.nnz * s < 2**31 and self.dim < 2**31 else np.int64
        expanded = sp.csr_matrix(
            (
                (signs * x[:, None]).ravel(),
                coordinates.astype(index_dtype, copy=False).ravel(),
                counts.indptr.astype(index_dtype) * s,
            ),
            shape=(n_docs, self.dim),
        )
        return expanded.toarray()

    def transform(self, texts, *, n_threads: int | None = None) -> np.ndarray:
        """Embed texts: ``[n, dim]`` float32, row ``i`` depends on ``texts[i]`` only.

        Args:
            texts: non-empty list of ``str``.
            n_threads: worker threads over chunks of 2,048 texts (default:
                ``torch.get_num_threads()``). The output does not depend on it.
        """
        items = _check_texts(texts)
        return np.concatenate(_map_chunks(self._transform_chunk, _chunks(items), n_threads), axis=0)


def fit_hashing_featurizer(
    reference_texts,
    *,
    dim: int = DEFAULT_DIM,
    n_features: int = DEFAULT_N_FEATURES,
    seed: int = 0,
    method: str = DEFAULT_METHOD,
    nnz_per_bucket: int = DEFAULT_NNZ_PER_BUCKET,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    n_threads: int | None = None,
) -> HashingFeaturizer:
    r"""Fit the hashing TF-IDF featurizer on the reference texts.

    See the module docstring (and :mod:`metrics_core.hashing`) for the features,
    the hash, the weighting and the projection:
    :math:`\mathrm{idf}_j = \ln\frac{1+n}{1+\mathrm{df}_j} + 1` over the reference,
    rows :math:`x_d = w_d/\lVert w_d\rVert` with :math:`w_{dj} = (1 + \ln \mathrm{tf}_{dj})\,\mathrm{idf}_j`, then

    * ``method="sparse-jl"`` (default): :math:`e_d = x_d P` with :math:`P` the
      fixed sparse sign projection of :func:`sparse_jl_map` (Kane & Nelson
      2014; Weinberger et al. 2009), the same for in-sample and out-of-sample
      texts; only the idf is fitted;
    * ``method="lsa"``: :math:`e_d = x_d V` with :math:`V` the top-``dim``
      right singular vectors of the reference matrix (Deerwester et al. 1990),
      or a Gaussian random projection of the observed buckets when the
      reference has fewer texts or observed buckets than ``dim`` or spans fewer
      than ``dim`` directions (the fitted method is then ``"random"``). Biased:
      reference texts come out longer than new texts from the same
      distribution (module docstring).

    Not a metric: no direction.

    Args:
        reference_texts: non-empty list of ``str``.
        dim: output dimension ``D``.
        n_features: hash buckets.
        seed: seed of the sparse projection / random state of the randomised
            SVD and the random projection.
        method: ``"sparse-jl"`` or ``"lsa"``.
        nnz_per_bucket: ``"sparse-jl"``: entries per bucket ``s`` (``min(s, dim)`` is used).
        max_columns: ``"lsa"``: most buckets (highest reference document
            frequency first) that carry a projection row.
        n_threads: worker threads for the hashing (the result does not depend on it).

    Example:
        >>> ref = [f"the {a} {b} {c}" for a in ("red", "tall", "old") for b in ("cat", "dog") for c in ("runs", "sleeps")]
        >>> f = fit_hashing_featurizer(ref, dim=8)
        >>> f.method, f.nnz_per_bucket, f.transform(["the red cat sleeps", ""]).shape, f.transform(["x"]).dtype
        ('sparse-jl', 4, (2, 8), dtype('float32'))
        >>> fit_hashing_featurizer(ref, dim=8, method="lsa").method
        'lsa'
        >>> fit_hashing_featurizer(ref[:4], dim=8, method="lsa").method  # 4 texts span < 8 directions
        'random'
    """
    items = _check_texts(reference_texts, "reference_texts")
    dim = _check_positive_int(dim, "dim")
    n_features = _check_n_features(n_features)
    seed = _check_int(seed, "seed")  # a hash seed: any integer
    if method not in (SPARSE_JL, LSA):
        raise ValueError(f"method: expected {SPARSE_JL!r} or {LSA!r}, got {method!r}")
    nnz_per_bucket = min(_check_positive_int(nnz_per_bucket, "nnz_per_bucket"), dim)
    max_columns = _check_positive_int(max_columns, "max_columns")
    n_ref = len(items)

    counts = hashed_ngram_counts(items, n_features=n_features, n_threads=n_threads)
    df = np.bincount(counts.indices, minlength=n_features)  # a row holds each bucket once
    idf = np.log((1.0 + n_ref) / (1.0 + df)) + 1.0
    common = dict(n_features=n_features, dim=dim, seed=seed, n_reference=n_ref, idf=idf)
    if method == SPARSE_JL:
        return HashingFeaturizer(method=SPARSE_JL, nnz_per_bucket=nnz_per_bucket, **common)

    columns = np.flatnonzero(df)
    if columns.size > max_columns:
        order = np.lexsort((columns, -df[columns]))  # highest df first, then lowest bucket id
        columns = np.sort(columns[order[:max_columns]])
    column_of_bucket = np.full(n_features, -1, dtype=np.int32)
    column_of_bucket[columns] = np.arange(columns.size, dtype=np.int32)

    projection, method = None, LSA
    if n_ref >= dim and columns.size >= dim:
        x = _projected_rows(counts, idf.astype(np.float32), column_of_bucket)
        projection = _top_right_singular_vectors(x, dim, seed)
    if projection is None:  # the reference spans fewer than dim directions
        rng = np.random.default_rng(seed)
        projection, method = rng.standard_normal((columns.size, dim)) / np.sqrt(dim), RANDOM
    return HashingFeaturizer(
        method=method,
        max_columns=max_columns,
        columns=columns.astype(np.int64),
        projection=np.ascontiguousarray(projection, dtype=np.float32),
        **common,
    )
