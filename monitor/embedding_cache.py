"""On-disk cache of text embeddings, keyed by content hash, without pickle.

Each unique text is embedded once per featurizer across all rounds (and the
reference once per featurizer): :meth:`EmbeddingCache.embed` hashes every text
(blake2b-16 of its UTF-8 bytes), reads the vectors it already has, calls the
embedding function on the missing unique texts only, stores them and returns
the rows in input order.

Storage is one SQLite file, ``<directory>/embeddings.sqlite3``, table
``embeddings(featurizer TEXT, key TEXT, dim INTEGER, vector BLOB)`` with the
vector as little-endian float32 bytes, so a tampered cache can at worst give
wrong numbers, never run code. WAL journaling, a busy timeout and ``INSERT OR
IGNORE`` make concurrent writers from several processes safe: the first
writer of a (featurizer, text) pair wins, and with a deterministic featurizer
every writer holds the same vector anyway.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metrics_core._checks import _check_texts

DB_NAME = "embeddings.sqlite3"
_BUSY_TIMEOUT_S = 120.0
_LOOKUP_BATCH = 500  # bound on SQL variables per SELECT (SQLite's floor is 999)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    featurizer TEXT NOT NULL,
    key TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (featurizer, key)
) WITHOUT ROWID
"""
_FLOAT32_LE = np.dtype("<f4")


def text_key(text: str) -> str:
    """blake2b-16 hex digest of the text's UTF-8 bytes (lone surrogates kept as is).

    Example:
        >>> text_key("hello")
        '46fb7408d4f285228f4af516ea25851b'
    """
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class CacheStats:
    """Counts of the last :meth:`EmbeddingCache.embed` call.

    Args:
        rows: texts asked for (duplicates included).
        unique: distinct texts among them.
        hits: distinct texts found in the cache.
        misses: distinct texts embedded by the call (``unique - hits``).
    """

    rows: int
    unique: int
    hits: int
    misses: int


class EmbeddingCache:
    """Embeddings of texts on disk, one SQLite file per directory.

    Args:
        directory: folder of the cache (created when missing).

    Example:
        >>> import tempfile, numpy as np
        >>> calls = []
        >>> def embed(texts):
        ...     calls.append(list(texts))
        ...     return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     cache = EmbeddingCache(d)
        ...     first = cache.embed(["a", "bb", "a"], "toy", embed)
        ...     second = cache.embed(["bb", "ccc"], "toy", embed)
        >>> first.tolist(), second.tolist(), calls
        ([[1.0, 1.0], [2.0, 1.0], [1.0, 1.0]], [[2.0, 1.0], [3.0, 1.0]], [['a', 'bb'], ['ccc']])
        >>> cache.last_stats
        CacheStats(rows=2, unique=2, hits=1, misses=1)
    """

    def __init__(self, directory) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / DB_NAME
        self.last_stats: CacheStats | None = None
        with closing(self._connect()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # persistent: readers never block the writer
            conn.execute(_SCHEMA)
            conn.commit()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)  # timeout: busy wait
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @property
    def last_hits(self) -> int:
        """Distinct texts of the last call found in the cache."""
        return self.last_stats.hits if self.last_stats else 0

    @property
    def last_misses(self) -> int:
        """Distinct texts of the last call that had to be embedded."""
        return self.last_stats.misses if self.last_stats else 0

    def _lookup(self, conn, featurizer_key: str, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(keys), _LOOKUP_BATCH):
            batch = keys[i:i + _LOOKUP_BATCH]
            marks = ",".join("?" * len(batch))
            rows = conn.execute(
                f"SELECT key, dim, vector FROM embeddings WHERE featurizer = ? AND key IN ({marks})",
                [featurizer_key, *batch],
            )
            for key, dim, blob in rows:
                if len(blob) != dim * _FLOAT32_LE.itemsize:
                    raise ValueError(
                        f"{self.path}: entry {key} of {featurizer_key!r}: expected {dim} float32 "
                        f"({dim * 4} bytes), got {len(blob)} bytes"
                    )
                found[key] = np.frombuffer(blob, dtype=_FLOAT32_LE)
        return found

    def embed(self, texts, featurizer_key: str, embed_fn: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Embeddings ``[len(texts), D]`` float32 in input order, embedding only what is missing.

        Args:
            texts: non-empty list of ``str``.
            featurizer_key: identifies the featurizer (e.g. ``featurizer.key``):
                vectors are shared only between calls with the same key.
            embed_fn: called at most once, with the missing distinct texts in
                first-occurrence order; returns a ``[m, D]`` float array.

        Raises:
            ValueError: bad texts or key, ``embed_fn`` output of the wrong shape
                or with NaN/inf, or cached vectors whose dimension differs.
        """
        items = _check_texts(texts)
        if not isinstance(featurizer_key, str) or not featurizer_key:
            raise ValueError(f"featurizer_key: expected a non-empty str, got {featurizer_key!r}")
        row_keys = [text_key(t) for t in items]
        first_text: dict[str, str] = {}
        for key, text in zip(row_keys, items):
            first_text.setdefault(key, text)
        unique_keys = list(first_text)

        with closing(self._connect()) as conn:
            vectors = self._lookup(conn, featurizer_key, unique_keys)
            hits = len(vectors)
            missing = [k for k in unique_keys if k not in vectors]
            if missing:
                new = self._call(embed_fn, [first_text[k] for k in missing])
                for key, vec in zip(missing, new):
                    vectors[key] = vec
                payload = [(featurizer_key, k, new.shape[1], v.tobytes()) for k, v in zip(missing, new)]
                conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlock
                try:
                    conn.executemany(
                        "INSERT OR IGNORE INTO embeddings (featurizer, key, dim, vector) VALUES (?, ?, ?, ?)", payload
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

        dims = {v.shape[0] for v in vectors.values()}
        if len(dims) != 1:
            raise ValueError(
                f"{self.path}: vectors of {featurizer_key!r} have different dimensions {sorted(dims)}; "
                "the featurizer key does not identify one featurizer"
            )
        self.last_stats = CacheStats(rows=len(items), unique=len(unique_keys), hits=hits, misses=len(missing))
        return np.stack([vectors[k] for k in row_keys]).astype(np.float32, copy=False)

    @staticmethod
    def _call(embed_fn, texts: list[str]) -> np.ndarray:
        out = np.asarray(embed_fn(texts))
        if out.ndim != 2 or out.shape[0] != len(texts) or out.shape[1] == 0:
            raise ValueError(
                f"embed_fn: expected an array [{len(texts)}, D] for {len(texts)} texts, got shape {out.shape}"
            )
        if out.dtype == object or not np.issubdtype(out.dtype, np.floating):
            raise ValueError(f"embed_fn: expected a float array, got dtype {out.dtype}")
        if not np.isfinite(out).all():
            raise ValueError(f"embed_fn: {int((~np.isfinite(out)).sum())} NaN or inf values")
        return np.ascontiguousarray(out, dtype=_FLOAT32_LE)
