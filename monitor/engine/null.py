r"""A loop's own null: pseudo-rounds of real data audited exactly like its rounds.

A loop is registered with its reference and a **pool** of real data held out
from it (or, without one, the reference is split in two: one part stays the
reference, the other becomes the pool, and the split is recorded). The null
is ``B`` pseudo-rounds of the loop's round size :math:`n`, each drawn from the
pool without replacement (pseudo-round :math:`b` from its own seed stream, so
a build can stop and resume and give the same rounds) and audited against the
reference by :class:`monitor.modalities.pipeline.AuditPipeline` with no bootstrap. From
their values :math:`v_{bm}`:

* each metric's null level :math:`\mu_m` and spread :math:`\sigma_m` (mean and
  standard deviation over the pseudo-rounds; a metric constant under the null,
  or defined in fewer than half of them, is left out of alarming);
* the finite-population correction: pseudo-rounds of :math:`n` out of a pool of
  :math:`P` rows vary less than rounds from the truth, by
  :math:`\sqrt{1-n/P}`, so a round's score uses
  :math:`\sigma_m / \sqrt{1 - n/P}`;
* the **offset bound** :math:`b = 2\sqrt{n/P + 1/B}`: the pool is itself a
  sample, so the null's level is known only to about :math:`\sqrt{n/P}` null
  standard deviations (to first order, for any metric that is a smooth
  functional of the round's distribution), plus the Monte-Carlo error
  :math:`1/\sqrt B` of the mean; the detectors discount :math:`b` per round;
* the metrics' correlation, shrunk (Ledoit & Wolf 2004, "A well-conditioned
  estimator for large-dimensional covariance matrices").

A round's score for metric :math:`m` is the oriented level deviation
:math:`z_m = s_m(\mu_m - v_m)\sqrt{1-n/P}/\sigma_m` with :math:`s_m=+1` when
higher is better, else :math:`-1`: **positive means the bad direction**, in
null standard deviations.

Rows are the modality's units (:func:`unit_count`): a reasoning round's are its questions, so a pseudo-round
draws whole questions, each with every sample the pool holds of it, and :math:`n` and :math:`P` count questions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monitor.audit_defaults import AUDIT_DEFAULTS, MIN_NULL_ROUNDS
from monitor.errors import CollapseMonitorError

DEFAULT_NULL_ROUNDS = AUDIT_DEFAULTS["null_rounds"]
OFFSET_Z = 2.0  # the offset bound's confidence, in standard errors
POOL_RATIO_MIN = 16  # pool rows per round row below which a pool is too small for full sensitivity
NULL_VERSION = "1"


def take_rows(data, indices: np.ndarray):
    """Rows of an array, a list of texts, a DataFrame, or a loaded input with its own ``take_rows`` (episodes)."""
    if hasattr(data, "take_rows"):
        return data.take_rows(indices)
    if hasattr(data, "iloc"):
        return data.iloc[indices].reset_index(drop=True)
    if isinstance(data, np.ndarray):
        return data[indices]
    return [data[int(i)] for i in indices]


def unit_count(data) -> int:
    """What a pseudo-round draws from: rows, or a loaded input's own units (reasoning records: questions).

    >>> unit_count(np.zeros((7, 2))), unit_count(["a", "b"])
    (7, 2)
    """
    return int(data.n_units) if hasattr(data, "n_units") else len(data)


def take_units(data, indices: np.ndarray):
    """The units at ``indices``: rows (:func:`take_rows`), or a loaded input's own units (reasoning: every record
    of the questions drawn)."""
    return data.take_units(indices) if hasattr(data, "take_units") else take_rows(data, indices)


def pseudo_round_indices(pool_rows: int, round_size: int, index: int, seed: int) -> np.ndarray:
    """Rows of pseudo-round ``index``: ``round_size`` of ``pool_rows``, without replacement, from its own stream.

    >>> a = pseudo_round_indices(100, 10, 3, seed=0)
    >>> len(set(a.tolist())), bool((a == pseudo_round_indices(100, 10, 3, seed=0)).all())
    (10, True)
    """
    if round_size > pool_rows:
        raise ValueError(f"round_size: expected at most the pool's {pool_rows} rows, got {round_size}")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0x6E756C6C, int(index))))
    return np.sort(rng.choice(pool_rows, round_size, replace=False))


def split_reference(reference, seed: int, pool_fraction: float = 0.5):
    """Split a reference into (reference part, pool part), seeded; the recorded split of a loop without a pool.

    >>> ref, pool = split_reference(np.arange(10.0)[:, None], seed=0)
    >>> ref.shape, pool.shape, sorted(np.r_[ref[:, 0], pool[:, 0]].tolist()) == list(range(10))
    ((5, 1), (5, 1), True)
    """
    n = unit_count(reference)
    n_pool = int(round(n * pool_fraction))
    if not 0 < n_pool < n:
        raise ValueError(f"reference: {n} rows cannot be split into a reference and a pool")
    order = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0x73706C74,))).permutation(n)
    return take_units(reference, np.sort(order[n_pool:])), take_units(reference, np.sort(order[:n_pool]))


def null_key(reference_fingerprint: str, pool_fingerprint: str, round_size: int, options: dict,
             metrics_version: str) -> str:
    """What a null depends on: the reference, the pool, the round size, the audit options and the metrics."""
    blob = json.dumps({"reference": reference_fingerprint, "pool": pool_fingerprint, "n": int(round_size),
                       "options": options, "metrics": metrics_version, "null": NULL_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def audit_pseudo_rounds(pipeline, pool, round_size: int, indices, seed: int, progress=None) -> list[dict[str, float]]:
    """Audit pseudo-rounds ``indices`` of the pool against the pipeline's reference (no bootstrap).

    ``progress`` (optional) is called with the number of pseudo-rounds done after each one.
    """
    out = []
    for done, index in enumerate(indices, 1):
        rows = take_units(pool, pseudo_round_indices(unit_count(pool), round_size, index, seed))
        audit = pipeline.audit(rows, n_boot=0, round_where=f"null pseudo-round {index}", skip_failed_groups=True)
        out.append({name: float(est.value) for name, est in audit.metrics.items()})
        if progress is not None:
            progress(done)
    return out


@dataclass
class LoopNull:
    """The null of one loop: pseudo-round values and what the detectors need from them.

    Attributes:
        values: ``[B, M]`` pseudo-round values (NaN where a metric was undefined).
        metrics: the ``M`` metric names.
        round_size: :math:`n`, the loop's round size.
        pool_size: :math:`P`, the pool's rows.
        source: ``"pool"`` or ``"split"`` (the reference was split).
        key: :func:`null_key` of what it was built from.
    """

    values: np.ndarray
    metrics: tuple[str, ...]
    round_size: int
    pool_size: int
    source: str = "pool"
    key: str = ""
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        self.metrics = tuple(self.metrics)
        if self.values.ndim != 2 or self.values.shape[1] != len(self.metrics):
            raise ValueError(f"values: expected [B, {len(self.metrics)}], got {self.values.shape}")
        if not 0 < self.round_size < self.pool_size:
            raise ValueError(f"round_size, pool_size: expected 0 < n < P, got {self.round_size}, {self.pool_size}")
        finite = np.isfinite(self.values)
        count = finite.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.mean = np.where(count > 0, np.nansum(self.values, axis=0) / np.maximum(count, 1), np.nan)
            resid = np.where(finite, self.values - self.mean, 0.0)
            self.sd = np.sqrt((resid**2).sum(axis=0) / np.maximum(count - 1, 1))
        # Alarm only on metrics defined in most pseudo-rounds and not constant under the null.
        scale = np.maximum(np.abs(self.mean), 1.0)
        self.usable = (count >= max(2, self.n_rounds // 2)) & (self.sd > 1e-9 * scale)

    @property
    def n_rounds(self) -> int:
        return int(self.values.shape[0])

    @property
    def spread(self) -> float:
        """:math:`1/\\sqrt{1-n/P}`: how much more real rounds vary than pseudo-rounds."""
        return float(1.0 / np.sqrt(1.0 - self.round_size / self.pool_size))

    @property
    def offset(self) -> float:
        """:math:`b = 2\\sqrt{n/P + 1/B}`: the bound on the null level's error, in null standard deviations."""
        return float(OFFSET_Z * np.sqrt(self.round_size / self.pool_size + 1.0 / self.n_rounds))

    def index(self, metric: str) -> int:
        return self.metrics.index(metric)

    def null_scores(self, orientation: np.ndarray) -> np.ndarray:
        """``[B, M]`` oriented standardised scores of the pseudo-rounds themselves (unit variance)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return orientation * (self.mean - self.values) / self.sd

    def scores(self, values: np.ndarray, orientation: np.ndarray) -> np.ndarray:
        """Oriented scores of real rounds ``values`` ``[..., M]`` (positive = bad, null standard deviations)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return orientation * (self.mean - np.asarray(values, dtype=np.float64)) / (self.sd * self.spread)

    def correlation(self, orientation: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Ledoit-Wolf shrunk correlation of the oriented null scores of ``columns`` (rows with a NaN dropped)."""
        from sklearn.covariance import ledoit_wolf

        z = self.null_scores(orientation)[:, columns]
        z = z[np.isfinite(z).all(axis=1)]
        if len(z) < 3 or z.shape[1] == 1:
            return np.eye(len(columns))
        z = (z - z.mean(axis=0)) / z.std(axis=0)
        cov, _ = ledoit_wolf(z, assume_centered=True)
        d = np.sqrt(np.diag(cov))
        return cov / np.outer(d, d)

    def as_json(self) -> str:
        return json.dumps({"metrics": list(self.metrics), "round_size": self.round_size, "pool_size": self.pool_size,
                           "source": self.source, "key": self.key, "info": self.info,
                           "values": [[None if not np.isfinite(v) else float(v) for v in row] for row in self.values]})

    @classmethod
    def from_json(cls, text: str) -> "LoopNull":
        doc = json.loads(text)
        values = np.array([[np.nan if v is None else v for v in row] for row in doc["values"]], dtype=np.float64)
        if values.size == 0:
            values = values.reshape(0, len(doc["metrics"]))
        return cls(values, tuple(doc["metrics"]), int(doc["round_size"]), int(doc["pool_size"]), doc["source"],
                   doc["key"], doc.get("info", {}))


def null_from_rows(rows: list[dict[str, float]], round_size: int, pool_size: int, *, source: str = "pool",
                   key: str = "", info: dict | None = None) -> LoopNull:
    """A :class:`LoopNull` from audited pseudo-rounds (metric name -> value per pseudo-round)."""
    if not rows:
        raise CollapseMonitorError("null: no pseudo-round was audited")
    metrics = sorted({name for row in rows for name in row})
    values = np.array([[row.get(m, np.nan) for m in metrics] for row in rows], dtype=np.float64)
    return LoopNull(values, tuple(metrics), round_size, pool_size, source, key, dict(info or {}))


def load_pool(path: str, modality: str, *, text_field: str = "text", reference=None, seed: int = 0,
              options: dict | None = None):
    """A pool file, loaded like a reference of its modality (tables: against ``reference``'s columns, the
    reference's rows; reasoning: its questions must have gold answers in ``reference``): ``(rows, fingerprint)``.

    ``options`` are the loop's :meth:`~monitor.options.AuditOptions.null_options` (field names, for reasoning
    records); ``text_field`` and ``seed`` override theirs."""
    from monitor.modalities import MODALITY
    from monitor.options import AuditOptions

    loop_options = AuditOptions(**{**(options or {}), "text_field": text_field, "seed": seed})
    loaded = MODALITY[modality].load_pool(path, loop_options, reference)
    return loaded.data, loaded.fingerprint


def file_signature(path: str | Path) -> str:
    """A cheap signature of a file or folder's state: resolved path, sizes and modification times (no reading).

    Equal signatures let an audit reuse a stored null without re-reading and re-fingerprinting a large pool; any
    write, rename or added file changes it (and the content fingerprint then decides).
    """
    root = Path(path).resolve()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    h = hashlib.sha256(str(root).encode())
    for f in files:
        st = f.stat()
        h.update(f"\0{f.relative_to(root) if root.is_dir() else f.name}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()


def stored_null_for(store, loop: str, pool_path: str, reference_fingerprint: str, round_size: int, options: dict,
                    metrics_version: str, n_rounds: int) -> LoopNull | None:
    """The loop's stored, complete null when the pool file is unchanged since it was built (no pool read), else None."""
    row = store.null_record(loop)
    if row is None or row["n_rounds"] < max(n_rounds, row["target_rounds"]):
        return None
    null = LoopNull.from_json(row["document"])
    fingerprint, signature = null.info.get("pool_fingerprint"), null.info.get("pool_signature")
    if not fingerprint or signature != file_signature(pool_path):
        return None
    if row["key"] != null_key(reference_fingerprint, fingerprint, round_size, options, metrics_version):
        return None
    return null


def ensure_loop_null(store, loop: str, pipeline, pool, pool_path: str, key: str, round_size: int, *,
                     n_rounds: int = DEFAULT_NULL_ROUNDS, seed: int = 0, source: str = "pool", checkpoint: int = 50,
                     progress=None, info: dict | None = None) -> LoopNull:
    """The loop's null for ``key``: stored, resumed from a partial build, or built now (saved every ``checkpoint``).

    ``progress(done, total)`` is called as pseudo-rounds are audited; ``info`` is stored with the null.
    """
    if n_rounds < MIN_NULL_ROUNDS:
        raise CollapseMonitorError(f"null rounds: expected at least {MIN_NULL_ROUNDS}, got {n_rounds}")
    if unit_count(pool) <= round_size:
        raise CollapseMonitorError(
            f"{pool_path} (pool): {unit_count(pool)} {getattr(pool, 'unit_name', 'rows')}, but pseudo-rounds of the loop's round size {round_size} need "
            f"more (>= {int(POOL_RATIO_MIN * round_size)} recommended)")
    row = store.null_record(loop)
    rows: list[dict[str, float]] = []
    if row is not None and row["key"] == key:
        stored = LoopNull.from_json(row["document"])
        if stored.n_rounds >= n_rounds:
            return stored
        rows = [{m: v for m, v in zip(stored.metrics, r) if np.isfinite(v)} for r in stored.values]
    info = {**(info or {}), "seed": int(seed), "pool_path": pool_path}
    while len(rows) < n_rounds:
        todo = range(len(rows), min(n_rounds, len(rows) + checkpoint))
        done0 = len(rows)
        rows += audit_pseudo_rounds(pipeline, pool, round_size, todo, seed,
                                    None if progress is None else (lambda k: progress(done0 + k, n_rounds)))
        null = null_from_rows(rows, round_size, unit_count(pool), source=source, key=key, info=info)
        store.save_null(loop, key, pool_path, n_rounds, null)
    return null
