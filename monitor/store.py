"""The trajectory store: metric values, derivatives, alert state, history and risk per loop.

SQLAlchemy Core over any URL (a SQLite file by default). Every write happens
in one transaction, so a failed write never loses or half-replaces what was
stored. Re-auditing a round replaces that round's rows; rounds may arrive in
any order. ``metric_values`` is the source of truth; ``derivatives``,
``alert_states`` and ``loop_risk`` are recomputed from it on every evaluation
(an older layout of them is rebuilt, never migrated); ``alert_history`` is
append-only.

One file over 500 lines, on purpose: the schema (the tables below) and the one class that reads and
writes it change together, and every method's transaction relies on the tables' shared metadata.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from metrics_core.bootstrap import Estimate
from metrics_core.registry import FAMILIES
from monitor.engine.derivatives import COLUMNS as DERIVATIVE_COLUMNS
from monitor.engine.derivatives import finite_or_none

_meta = sa.MetaData()

metric_values = sa.Table(
    "metric_values",
    _meta,
    sa.Column("loop", sa.String(128), primary_key=True),
    sa.Column("round", sa.Integer, primary_key=True),
    sa.Column("metric", sa.String(64), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("ci_low", sa.Float),
    sa.Column("ci_high", sa.Float),
    sa.Column("std_error", sa.Float),
    sa.Column("n_reference", sa.Integer, nullable=False),
    sa.Column("n_round", sa.Integer, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("reference_fingerprint", sa.String(64), nullable=False),
    sa.Column("metrics_version", sa.String(16), nullable=False),
    sa.Column("audited_at", sa.Float, nullable=False),
)

derivatives = sa.Table(
    "derivatives",
    _meta,
    sa.Column("loop", sa.String(128), primary_key=True),
    sa.Column("round", sa.Integer, primary_key=True),
    sa.Column("metric", sa.String(64), primary_key=True),
    *(sa.Column(name, sa.Float) for name in DERIVATIVE_COLUMNS),
)

alert_states = sa.Table(
    "alert_states",
    _meta,
    sa.Column("loop", sa.String(128), primary_key=True),
    sa.Column("metric", sa.String(64), primary_key=True),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("since_round", sa.Integer),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("explanation", sa.Text),  # JSON, for non-ok states
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Append-only: a transition the replay no longer produces (a late or
# re-audited round changed history) is marked superseded, never deleted.
alert_history = sa.Table(
    "alert_history",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("loop", sa.String(128), nullable=False, index=True),
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("from_severity", sa.String(16), nullable=False),
    sa.Column("to_severity", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.Float, nullable=False),
    sa.Column("superseded_at", sa.Float),
)

loop_risk = sa.Table(
    "loop_risk",
    _meta,
    sa.Column("loop", sa.String(128), primary_key=True),
    sa.Column("round", sa.Integer, primary_key=True),
    sa.Column("risk", sa.Float, nullable=False),
    sa.Column("driver_family", sa.String(16)),
    sa.Column("driver_metric", sa.String(64)),
    *(sa.Column(f"{family}_risk", sa.Float, nullable=False) for family in FAMILIES),
)

# Where each round came from and how it was audited: what a backfill re-runs.
round_sources = sa.Table(
    "round_sources",
    _meta,
    sa.Column("loop", sa.String(128), primary_key=True),
    sa.Column("round", sa.Integer, primary_key=True),
    sa.Column("data_path", sa.Text, nullable=False),
    sa.Column("reference_path", sa.Text, nullable=False),
    sa.Column("options", sa.Text, nullable=False),  # JSON of the audit_round options
    sa.Column("recorded_at", sa.Float, nullable=False),
)

# MLflow writes per round, exactly once from the store (monitor.publishing.tracking): before logging a round's payload
# (its digest), its intent and the timestamp its points carry are committed here; after MLflow confirms,
# ``confirmed_at`` is set. A round whose current payload digest has no confirmed row is caught up, whatever
# interrupted it; an interrupted write is repeated with the same timestamp, which MLflow deduplicates.
mlflow_writes = sa.Table(
    "mlflow_writes",
    _meta,
    sa.Column("loop", sa.String(128), primary_key=True),
    sa.Column("round", sa.BigInteger, primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
    sa.Column("artifacts", sa.Text, nullable=False),  # JSON list of file paths
    sa.Column("confirmed_at", sa.Float),
    sa.Column("confirmed_points", sa.Text, nullable=False),  # JSON {series: value} MLflow holds at this step
)

# One row per backfill of a loop; an unfinished one is resumed.
backfills = sa.Table(
    "backfills",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("loop", sa.String(128), nullable=False, index=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
)

# Round files seen by the watcher: last observed size/mtime (a file is complete
# once they are stable across two scans) and what was audited, keyed by the
# content fingerprint, so each version of a round file is audited once.
watched_files = sa.Table(
    "watched_files",
    _meta,
    sa.Column("url", sa.Text, primary_key=True),
    sa.Column("loop", sa.String(128), nullable=False, index=True),
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("observed_size", sa.BigInteger, nullable=False),
    sa.Column("observed_mtime", sa.Float),
    sa.Column("observed_at", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | audited | failed
    sa.Column("fingerprint", sa.String(64)),  # of the version last audited (or refused)
    sa.Column("handled_size", sa.BigInteger),
    sa.Column("handled_mtime", sa.Float),
    sa.Column("error", sa.Text),
    sa.Column("handled_at", sa.Float),
)

# Each loop's alarm signals (collapse, drift) at its latest round, recomputed with the states.
loop_signals = sa.Table(
    "loop_signals",
    _meta,
    sa.Column("loop", sa.String(128), primary_key=True),
    sa.Column("signal", sa.String(16), primary_key=True),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("since_round", sa.Integer),
    sa.Column("log_evidence", sa.Float),
    sa.Column("log_threshold", sa.Float),
    sa.Column("arl0", sa.Float),  # the guaranteed ARL0 (None without a null)
    sa.Column("metrics", sa.Text, nullable=False),  # JSON list of the metrics an alarm names
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("guarantee", sa.Text),  # JSON (sequential mode)
    sa.Column("updated_at", sa.Float, nullable=False),
)

# A loop's null (monitor.engine.null): pseudo-round values audited from its pool, grown
# incrementally (an interrupted build resumes), rebuilt when its key changes.
loop_nulls = sa.Table(
    "loop_nulls",
    _meta,
    sa.Column("loop", sa.String(128), primary_key=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("pool_path", sa.Text, nullable=False),
    sa.Column("target_rounds", sa.Integer, nullable=False),
    sa.Column("n_rounds", sa.Integer, nullable=False),
    sa.Column("document", sa.Text, nullable=False),  # LoopNull.as_json
    sa.Column("updated_at", sa.Float, nullable=False),
)

# One row per audit attempt (any process: CLI, API, watch flow runs): the exporter's audit counters and
# duration histogram are read from here at scrape time, so they count every process's audits.
audit_log = sa.Table(
    "audit_log",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("loop", sa.String(128), nullable=False),
    sa.Column("round", sa.BigInteger),
    sa.Column("outcome", sa.String(16), nullable=False),  # audited | failed
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("ix_audit_log_loop_outcome", "loop", "outcome"),
)
AUDIT_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

# Tables recomputed from metric_values on every evaluation: an older layout is
# dropped and rebuilt (the next evaluation refills it) instead of migrated.
_DERIVED = (derivatives, alert_states, loop_risk, loop_signals)


@dataclass(frozen=True)
class RoundRecord:
    """What one audit of one round produced, ready to store."""

    loop: str
    round: int
    metrics: dict[str, Estimate]
    n_reference: int
    n_round: int
    fingerprint: str
    reference_fingerprint: str
    metrics_version: str
    audited_at: float | None = None


class TrajectoryStore:
    def __init__(self, url: str):
        self.url = url
        self.engine: Engine = sa.create_engine(url)
        self._rebuild_outdated_derived_tables()
        _meta.create_all(self.engine)

    def _rebuild_outdated_derived_tables(self) -> None:
        inspector = sa.inspect(self.engine)
        existing = set(inspector.get_table_names())
        for table in _DERIVED:
            if table.name in existing:
                columns = {c["name"] for c in inspector.get_columns(table.name)}
                if columns != {c.name for c in table.columns}:
                    table.drop(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> TrajectoryStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- metric values -------------------------------------------------
    def record_round(self, record: RoundRecord) -> None:
        """Replace every row of ``(loop, round)`` with this audit's, atomically."""
        now = record.audited_at if record.audited_at is not None else time.time()
        rows = [
            {
                "loop": record.loop,
                "round": record.round,
                "metric": name,
                "value": est.value,
                "ci_low": est.ci_low,
                "ci_high": est.ci_high,
                "std_error": est.std_error,
                "n_reference": record.n_reference,
                "n_round": record.n_round,
                "fingerprint": record.fingerprint,
                "reference_fingerprint": record.reference_fingerprint,
                "metrics_version": record.metrics_version,
                "audited_at": now,
            }
            for name, est in record.metrics.items()
        ]
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        metric_values.delete().where(
                            (metric_values.c.loop == record.loop) & (metric_values.c.round == record.round)
                        )
                    )
                    if rows:
                        conn.execute(metric_values.insert(), rows)
                return
            except sa.exc.IntegrityError:
                # Another process audited the same round concurrently and committed first (its rows were not
                # visible to our delete): replace them now; the last audit wins, whole.
                if attempt == 2:
                    raise

    # -- audit counters ------------------------------------------------
    def record_audit(self, loop: str, round_number: int | None, outcome: str, seconds: float) -> None:
        """Count one audit attempt (``audited`` or ``failed``) with its wall time."""
        if outcome not in ("audited", "failed"):
            raise ValueError(f"outcome: expected 'audited' or 'failed', got {outcome!r}")
        with self.engine.begin() as conn:
            conn.execute(audit_log.insert(), [{"loop": loop, "round": round_number, "outcome": outcome,
                                               "seconds": float(seconds), "at": time.time()}])

    def audit_counts(self) -> pd.DataFrame:
        """Per (loop, outcome): count, summed seconds and the cumulative count at or under each duration bucket."""
        buckets = [sa.func.sum(sa.case((audit_log.c.seconds <= b, 1), else_=0)).label(f"le_{i}")
                   for i, b in enumerate(AUDIT_DURATION_BUCKETS)]
        q = sa.select(audit_log.c.loop, audit_log.c.outcome, sa.func.count().label("count"),
                      sa.func.sum(audit_log.c.seconds).label("seconds"), *buckets
                      ).group_by(audit_log.c.loop, audit_log.c.outcome)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).mappings().all(),
                                columns=["loop", "outcome", "count", "seconds",
                                         *(f"le_{i}" for i in range(len(AUDIT_DURATION_BUCKETS)))])

    def trajectory(self, loop: str) -> pd.DataFrame:
        """All metric rows of a loop, sorted by metric then round."""
        q = sa.select(metric_values).where(metric_values.c.loop == loop).order_by(
            metric_values.c.metric, metric_values.c.round
        )
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).mappings().all(), columns=[c.name for c in metric_values.columns])

    def round_sizes(self, loop: str) -> pd.DataFrame:
        """One row per audited round: sizes used and the reference fingerprint."""
        mv = metric_values
        q = (
            sa.select(mv.c.round, mv.c.n_reference, mv.c.n_round, mv.c.reference_fingerprint)
            .where(mv.c.loop == loop)
            .distinct()
            .order_by(mv.c.round)
        )
        with self.engine.connect() as conn:
            return pd.DataFrame(
                conn.execute(q).mappings().all(), columns=["round", "n_reference", "n_round", "reference_fingerprint"]
            )

    def loops(self) -> list[str]:
        q = sa.select(metric_values.c.loop).distinct().order_by(metric_values.c.loop)
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(q)]

    def loop_summaries(self) -> pd.DataFrame:
        """Per loop: the highest audited round and the time of the last audit."""
        q = sa.select(
            metric_values.c.loop,
            sa.func.max(metric_values.c.round).label("round"),
            sa.func.max(metric_values.c.audited_at).label("audited_at"),
        ).group_by(metric_values.c.loop)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).mappings().all(), columns=["loop", "round", "audited_at"])

    def latest_values(self) -> pd.DataFrame:
        """Per (loop, metric): the row of its highest round, joined with its derivatives."""
        latest = (
            sa.select(
                metric_values.c.loop,
                metric_values.c.metric,
                sa.func.max(metric_values.c.round).label("round"),
            )
            .group_by(metric_values.c.loop, metric_values.c.metric)
            .subquery()
        )
        mv, dv = metric_values, derivatives
        q = (
            sa.select(mv.c.loop, mv.c.metric, mv.c.round, mv.c.value, mv.c.ci_low, mv.c.ci_high, mv.c.std_error,
                      *(dv.c[name] for name in DERIVATIVE_COLUMNS))
            .join(latest, (mv.c.loop == latest.c.loop) & (mv.c.metric == latest.c.metric) & (mv.c.round == latest.c.round))
            .outerjoin(dv, (dv.c.loop == mv.c.loop) & (dv.c.metric == mv.c.metric) & (dv.c.round == mv.c.round))
            .order_by(mv.c.loop, mv.c.metric)
        )
        cols = ["loop", "metric", "round", "value", "ci_low", "ci_high", "std_error", *DERIVATIVE_COLUMNS]
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).mappings().all(), columns=cols)

    # -- round sources and backfills ---------------------------------------
    def record_source(self, loop: str, round_number: int, data_path: str, reference_path: str, options: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(round_sources.delete().where(
                (round_sources.c.loop == loop) & (round_sources.c.round == round_number)))
            conn.execute(round_sources.insert(), [{
                "loop": loop, "round": round_number, "data_path": data_path, "reference_path": reference_path,
                "options": json.dumps(options, sort_keys=True), "recorded_at": time.time()}])

    def round_snapshot(self, loop: str, round_number: int) -> dict:
        """The round's stored rows (metric values and its source), to put back if a new audit of it fails."""
        mv, rs = metric_values, round_sources
        with self.engine.connect() as conn:
            values = [dict(r) for r in conn.execute(
                sa.select(mv).where((mv.c.loop == loop) & (mv.c.round == round_number))).mappings()]
            sources = [dict(r) for r in conn.execute(
                sa.select(rs).where((rs.c.loop == loop) & (rs.c.round == round_number))).mappings()]
        return {"metric_values": values, "round_sources": sources}

    def restore_round(self, loop: str, round_number: int, snapshot: dict) -> None:
        """Put a round back as :meth:`round_snapshot` saw it (no rows: the round is removed), in one transaction."""
        with self.engine.begin() as conn:
            for table in (metric_values, round_sources):
                conn.execute(table.delete().where((table.c.loop == loop) & (table.c.round == round_number)))
                if snapshot[table.name]:
                    conn.execute(table.insert(), snapshot[table.name])

    def sources(self, loop: str) -> list[dict]:
        q = sa.select(round_sources).where(round_sources.c.loop == loop).order_by(round_sources.c.round)
        with self.engine.connect() as conn:
            return [{**r, "options": json.loads(r["options"])} for r in conn.execute(q).mappings().all()]

    def round_audits(self, loop: str) -> dict[int, dict]:
        """Per round: when it was last audited, its fingerprint and metrics version."""
        mv = metric_values
        q = (sa.select(mv.c.round, sa.func.max(mv.c.audited_at).label("audited_at"), mv.c.fingerprint,
                       mv.c.metrics_version)
             .where(mv.c.loop == loop).group_by(mv.c.round, mv.c.fingerprint, mv.c.metrics_version))
        with self.engine.connect() as conn:
            return {int(r.round): {"audited_at": float(r.audited_at), "fingerprint": r.fingerprint,
                                   "metrics_version": r.metrics_version} for r in conn.execute(q)}

    def mlflow_writes(self, loop: str) -> dict[int, dict]:
        """Per round: the MLflow write last intended (``digest``, ``timestamp_ms``, ``artifacts``) and whether
        MLflow confirmed it (``confirmed_at``, None while unconfirmed)."""
        q = sa.select(mlflow_writes).where(mlflow_writes.c.loop == loop)
        with self.engine.connect() as conn:
            return {int(r["round"]): {**r, "artifacts": json.loads(r["artifacts"]),
                                      "confirmed_points": json.loads(r["confirmed_points"])}
                    for r in conn.execute(q).mappings().all()}

    def intend_mlflow_write(self, loop: str, round_number: int, digest: str, timestamp_ms: int,
                            artifacts: list[str]) -> None:
        """Record, before logging, which payload a round's MLflow write carries and with which timestamp
        (the points MLflow already holds for the round are kept)."""
        w = mlflow_writes
        where = (w.c.loop == loop) & (w.c.round == round_number)
        with self.engine.begin() as conn:
            held = conn.execute(sa.select(w.c.confirmed_points).where(where)).scalar()
            conn.execute(w.delete().where(where))
            conn.execute(w.insert(), [{
                "loop": loop, "round": round_number, "digest": digest, "timestamp_ms": int(timestamp_ms),
                "artifacts": json.dumps(artifacts), "confirmed_at": None, "confirmed_points": held or "{}"}])

    def confirm_mlflow_write(self, loop: str, round_number: int, digest: str, points: dict[str, float]) -> None:
        """Mark the round's intended write of ``digest`` as confirmed: MLflow holds ``points`` at its step."""
        w = mlflow_writes
        with self.engine.begin() as conn:
            conn.execute(w.update().where((w.c.loop == loop) & (w.c.round == round_number) & (w.c.digest == digest))
                         .values(confirmed_at=time.time(), confirmed_points=json.dumps(points, sort_keys=True)))

    def forget_mlflow_writes(self) -> None:
        """Forget every MLflow write on record (its database was recreated empty): every round is logged again."""
        with self.engine.begin() as conn:
            conn.execute(mlflow_writes.delete())

    def round_payloads(self, loop: str) -> dict[int, tuple[str, str, dict[str, float], dict[str, float | None]]]:
        """What MLflow gets for every stored round of a loop: ``{round: (fingerprint, metrics_version, metrics,
        derived series)}``, read in three queries."""
        mv, dv, lr = metric_values, derivatives, loop_risk
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(mv.c.round, mv.c.metric, mv.c.value, mv.c.fingerprint, mv.c.metrics_version)
                                .where(mv.c.loop == loop)).all()
            derived_rows = conn.execute(sa.select(dv).where(dv.c.loop == loop)).mappings().all()
            risks = conn.execute(sa.select(lr.c.round, lr.c.risk).where(lr.c.loop == loop)).all()
        payloads: dict[int, tuple[str, str, dict, dict]] = {}
        for r in rows:
            payloads.setdefault(int(r.round), (r.fingerprint, r.metrics_version, {}, {}))[2][r.metric] = float(r.value)
        for r in derived_rows:
            if int(r["round"]) in payloads:
                payloads[int(r["round"])][3].update({f"{key}/{r['metric']}": r[key] for key in ("delta", "slope", "zscore")})
        for r in risks:
            if int(r.round) in payloads and r.risk is not None:
                payloads[int(r.round)][3]["collapse_risk"] = float(r.risk)
        return payloads

    @staticmethod
    def _unfinished_backfill_query(loop: str):
        return (sa.select(backfills.c.id, backfills.c.started_at)
                .where((backfills.c.loop == loop) & backfills.c.finished_at.is_(None))
                .order_by(backfills.c.id.desc()).limit(1))

    def unfinished_backfill(self, loop: str) -> tuple[int, float] | None:
        """The loop's unfinished backfill ``(id, started_at)``, if any (nothing is created)."""
        with self.engine.connect() as conn:
            row = conn.execute(self._unfinished_backfill_query(loop)).first()
        return None if row is None else (int(row.id), float(row.started_at))

    def open_backfill(self, loop: str) -> tuple[int, float, bool]:
        """The loop's unfinished backfill ``(id, started_at, resumed=True)``, else a new one."""
        with self.engine.begin() as conn:
            row = conn.execute(self._unfinished_backfill_query(loop)).first()
            if row is not None:
                return int(row.id), float(row.started_at), True
            started = time.time()
            new_id = conn.execute(backfills.insert().values(loop=loop, started_at=started)).inserted_primary_key[0]
            return int(new_id), started, False

    def finish_backfill(self, backfill_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(backfills.update().where(backfills.c.id == backfill_id).values(finished_at=time.time()))

    # -- watched round files -------------------------------------------------
    def watched_file(self, url: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(watched_files).where(watched_files.c.url == url)).mappings().first()
        return None if row is None else dict(row)

    def observe_file(self, url: str, loop: str, round_number: int, size: int, mtime: float | None) -> None:
        """Record this scan's size and mtime of a round file (a new file starts ``pending``)."""
        now = time.time()
        wf = watched_files
        with self.engine.begin() as conn:
            updated = conn.execute(wf.update().where(wf.c.url == url).values(
                loop=loop, round=round_number, observed_size=size, observed_mtime=mtime, observed_at=now)).rowcount
            if not updated:
                conn.execute(wf.insert().values(url=url, loop=loop, round=round_number, observed_size=size,
                                                observed_mtime=mtime, observed_at=now, status="pending"))

    def mark_file(self, url: str, status: str, fingerprint: str | None, size: int | None, mtime: float | None,
                  error: str | None = None) -> None:
        """Record how a version of a round file was handled: ``audited``, ``failed`` (refused) or ``pending``."""
        if status not in ("pending", "audited", "failed"):
            raise ValueError(f"status: expected pending, audited or failed, got {status!r}")
        with self.engine.begin() as conn:
            conn.execute(watched_files.update().where(watched_files.c.url == url).values(
                status=status, fingerprint=fingerprint, handled_size=size, handled_mtime=mtime, error=error,
                handled_at=time.time()))

    def watched_files(self, loop: str | None = None) -> pd.DataFrame:
        q = sa.select(watched_files).order_by(watched_files.c.loop, watched_files.c.round, watched_files.c.url)
        if loop is not None:
            q = q.where(watched_files.c.loop == loop)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).mappings().all(), columns=[c.name for c in watched_files.columns])

    # -- derived state: derivatives, alerts, risk, history ---------------
    def save_evaluation(self, loop: str, evaluation) -> None:
        """Replace a loop's derivatives, alert states and risk, and sync its alert history, atomically.

        ``evaluation`` is a :class:`monitor.engine.alerts.LoopEvaluation`. History
        rows are only ever appended or marked superseded.
        """
        now = time.time()
        derivative_rows = [
            {"loop": loop, "round": int(r["round"]), "metric": r["metric"],
             **{name: finite_or_none(r[name]) for name in DERIVATIVE_COLUMNS}}
            for r in evaluation.derivatives.to_dict("records")
        ]
        state_rows = [
            {"loop": loop, "metric": st.metric, "severity": st.severity, "since_round": st.since_round,
             "message": st.message, "explanation": None if st.explanation is None else json.dumps(st.explanation),
             "updated_at": now}
            for st in evaluation.states
        ]
        risk_rows = [
            {"loop": loop, "round": int(r["round"]), "risk": float(r["risk"]), "driver_family": r["driver_family"],
             "driver_metric": r["driver_metric"], **{f"{f}_risk": float(r[f"{f}_risk"]) for f in FAMILIES}}
            for r in evaluation.risk.to_dict("records")
        ]
        guarantee = getattr(evaluation, "guarantee", None)
        signal_rows = [
            {"loop": loop, "signal": sig.signal, "severity": sig.severity, "since_round": sig.since_round,
             "log_evidence": finite_or_none(sig.log_evidence), "log_threshold": finite_or_none(sig.log_threshold),
             "arl0": None if guarantee is None else float(guarantee["arl0"]), "metrics": json.dumps(list(sig.metrics)),
             "message": sig.message, "guarantee": None if guarantee is None else json.dumps(guarantee),
             "updated_at": now}
            for sig in getattr(evaluation, "signals", [])
        ]
        replayed = {(t.metric, t.round, t.from_severity, t.to_severity): t for t in evaluation.transitions}
        with self.engine.begin() as conn:
            for table, rows in ((derivatives, derivative_rows), (alert_states, state_rows), (loop_risk, risk_rows),
                                (loop_signals, signal_rows)):
                conn.execute(table.delete().where(table.c.loop == loop))
                if rows:
                    conn.execute(table.insert(), rows)
            ah = alert_history
            current = conn.execute(
                sa.select(ah.c.id, ah.c.metric, ah.c.round, ah.c.from_severity, ah.c.to_severity)
                .where((ah.c.loop == loop) & ah.c.superseded_at.is_(None))
            ).all()
            stale = [row.id for row in current if (row.metric, row.round, row.from_severity, row.to_severity) not in replayed]
            known = {(row.metric, row.round, row.from_severity, row.to_severity) for row in current}
            if stale:
                conn.execute(ah.update().where(ah.c.id.in_(stale)).values(superseded_at=now))
            fresh = [
                {"loop": loop, "metric": t.metric, "round": t.round, "from_severity": t.from_severity,
                 "to_severity": t.to_severity, "reason": t.reason, "recorded_at": now}
                for key, t in replayed.items()
                if key not in known
            ]
            if fresh:
                conn.execute(ah.insert(), fresh)

    def signals(self, loop: str | None = None) -> pd.DataFrame:
        """Each loop's alarm signals (collapse, drift) at its latest evaluation."""
        q = sa.select(loop_signals).order_by(loop_signals.c.loop, loop_signals.c.signal)
        if loop is not None:
            q = q.where(loop_signals.c.loop == loop)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).mappings().all(), columns=[c.name for c in loop_signals.columns])

    # -- nulls ---------------------------------------------------------
    def save_null(self, loop: str, key: str, pool_path: str, target_rounds: int, null) -> None:
        """Replace the loop's null (a partial one too: ``null.n_rounds`` < ``target_rounds`` resumes)."""
        row = {"loop": loop, "key": key, "pool_path": pool_path, "target_rounds": int(target_rounds),
               "n_rounds": int(null.n_rounds), "document": null.as_json(), "updated_at": time.time()}
        with self.engine.begin() as conn:
            conn.execute(loop_nulls.delete().where(loop_nulls.c.loop == loop))
            conn.execute(loop_nulls.insert(), [row])

    def null_record(self, loop: str) -> dict | None:
        """The loop's stored null row (``document`` still JSON), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(loop_nulls).where(loop_nulls.c.loop == loop)).mappings().first()
        return None if row is None else dict(row)

    def null(self, loop: str):
        """The loop's complete null (:class:`monitor.engine.null.LoopNull`), or None (none, or still being built)."""
        from monitor.engine.null import LoopNull

        row = self.null_record(loop)
        if row is None or row["n_rounds"] < row["target_rounds"]:
            return None
        return LoopNull.from_json(row["document"])

    def derivatives(self, loop: str) -> pd.DataFrame:
        q = sa.select(derivatives).where(derivatives.c.loop == loop).order_by(derivatives.c.metric, derivatives.c.round)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).mappings().all(), columns=[c.name for c in derivatives.columns])

    def alert_states(self, loop: str | None = None) -> pd.DataFrame:
        q = sa.select(alert_states).order_by(alert_states.c.loop, alert_states.c.metric)
        if loop is not None:
            q = q.where(alert_states.c.loop == loop)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).mappings().all(), columns=[c.name for c in alert_states.columns])

    def alert_history(self, loop: str, include_superseded: bool = False) -> pd.DataFrame:
        """A loop's alert transitions in order of round, then of recording."""
        ah = alert_history
        q = sa.select(ah).where(ah.c.loop == loop).order_by(ah.c.round, ah.c.recorded_at, ah.c.id)
        if not include_superseded:
            q = q.where(ah.c.superseded_at.is_(None))
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).mappings().all(), columns=[c.name for c in ah.columns])

    def risk(self, loop: str | None = None, latest_only: bool = False) -> pd.DataFrame:
        """Collapse risk per loop and round (``latest_only``: each loop's highest round)."""
        q = sa.select(loop_risk).order_by(loop_risk.c.loop, loop_risk.c.round)
        if loop is not None:
            q = q.where(loop_risk.c.loop == loop)
        if latest_only:
            top = sa.select(loop_risk.c.loop, sa.func.max(loop_risk.c.round).label("round")).group_by(
                loop_risk.c.loop).subquery()
            q = q.join(top, (loop_risk.c.loop == top.c.loop) & (loop_risk.c.round == top.c.round))
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).mappings().all(), columns=[c.name for c in loop_risk.columns])
