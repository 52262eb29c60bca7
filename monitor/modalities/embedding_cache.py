"""On-disk cache of text embeddings, keyed by content hash, without pickle.

Each unique text is embedded once per featurizer across all rounds (and the
reference once per featurizer): :meth:`EmbeddingCache.embed` hashes every text
(blake2b-16 of its UTF-8 bytes), reads the vectors it already has, calls the
embedding function on the missing unique texts only, stores them and returns
the rows in input order.

Storage is one SQLite file, ``<directory>/embeddings.sqlite3``, table
``embeddings(featurizer TEXT, key TEXT, dim INTEGER, vector BLOB, used INTEGER)``
with the vector as little-endian float32 bytes, so a tampered cache can at worst give
wrong numbers, never run code. WAL journaling, a busy timeout and ``INSERT OR
IGNORE`` make concurrent writers from several processes safe: the first
writer of a (featurizer, text) pair wins, and with a deterministic featurizer
every writer holds the same vector anyway.

The cache is bounded: ``used`` numbers the calls that last asked for each
vector, and once the vectors exceed ``max_bytes`` (default 512 MiB, or
``$COLLAPSE_MONITOR_EMBEDDING_CACHE_MB``) the least recently used are deleted,
never the ones of the current call. A loop's rounds are new texts each time, so
without a bound the cache grew by every round's vectors (7.6 MiB per round of
2,000 short answers, ``benchmarks/bench_audit_footprint.py``) while only
re-audits and the reference hit it. SQLite reuses the freed pages, so the file
stops growing near the bound.
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
DEFAULT_MAX_MB = 512
MAX_MB_ENV = "COLLAPSE_MONITOR_EMBEDDING_CACHE_MB"
_BUSY_TIMEOUT_S = 120.0
_LOOKUP_BATCH = 500  # bound on SQL variables per SELECT (SQLite's floor is 999)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    featurizer TEXT NOT NULL,
    key TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (featurizer, key)
) WITHOUT ROWID
"""
_USED_INDEX = "CREATE INDEX IF NOT EXISTS embeddings_used ON embeddings (used)"
_STORED_BYTES = "SELECT COALESCE(SUM(length(vector)), 0) FROM embeddings"

_FLOAT32_LE = np.dtype("<f4")


def _check_max_bytes(max_bytes) -> int:
    import os

    if max_bytes is None:
        raw = os.environ.get(MAX_MB_ENV, "").strip()
        try:
            mb = float(raw) if raw else DEFAULT_MAX_MB
        except ValueError:
            mb = float("nan")
        if not mb > 0:
            from monitor.errors import CollapseMonitorError

            raise CollapseMonitorError(f"${MAX_MB_ENV}: expected a size in MiB > 0, got {raw!r}")
        return int(mb * 2**20)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_bytes: expected a positive int, got {max_bytes!r}")
    return max_bytes


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
        max_bytes: bound on the stored vectors' bytes (least recently used deleted beyond it); default
            ``$COLLAPSE_MONITOR_EMBEDDING_CACHE_MB`` MiB, else 512 MiB.

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

    def __init__(self, directory, max_bytes: int | None = None) -> None:
        self.max_bytes = _check_max_bytes(max_bytes)
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / DB_NAME
        self.last_stats: CacheStats | None = None
        with closing(self._connect()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # persistent: readers never block the writer
            conn.execute(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(embeddings)")}
            if "used" not in columns:  # a cache written before the bound: every vector counts as oldest
                conn.execute("ALTER TABLE embeddings ADD COLUMN used INTEGER NOT NULL DEFAULT 0")
            conn.execute(_USED_INDEX)
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
            new = self._call(embed_fn, [first_text[k] for k in missing]) if missing else None
            conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlock
            try:
                stamp = conn.execute("SELECT COALESCE(MAX(used), 0) + 1 FROM embeddings").fetchone()[0]
                found = [k for k in unique_keys if k in vectors]
                for i in range(0, len(found), _LOOKUP_BATCH):
                    batch = found[i:i + _LOOKUP_BATCH]
                    conn.execute(f"UPDATE embeddings SET used = ? WHERE featurizer = ? AND key IN "
                                 f"({','.join('?' * len(batch))})", [stamp, featurizer_key, *batch])
                if new is not None:
                    for key, vec in zip(missing, new):
                        vectors[key] = vec
                    conn.executemany(
                        "INSERT OR IGNORE INTO embeddings (featurizer, key, dim, vector, used) VALUES (?, ?, ?, ?, ?)",
                        [(featurizer_key, k, new.shape[1], v.tobytes(), stamp) for k, v in zip(missing, new)],
                    )
                self._evict(conn, stamp)
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

    def _evict(self, conn, stamp: int) -> None:
        """Delete the least recently used vectors beyond ``max_bytes``; never those of call ``stamp``."""
        total = conn.execute(_STORED_BYTES).fetchone()[0]
        if total <= self.max_bytes:
            return
        doomed, freed = [], 0
        for featurizer, key, size in conn.execute(
                "SELECT featurizer, key, length(vector) FROM embeddings WHERE used < ? ORDER BY used", (stamp,)):
            if total - freed <= self.max_bytes:
                break
            doomed.append((featurizer, key))
            freed += size
        conn.executemany("DELETE FROM embeddings WHERE featurizer = ? AND key = ?", doomed)

    def stored_bytes(self) -> int:
        """Bytes of the vectors held (what ``max_bytes`` bounds)."""
        with closing(self._connect()) as conn:
            return int(conn.execute(_STORED_BYTES).fetchone()[0])

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
