"""The trajectory store: metric values, derivatives and alert state per loop.

SQLAlchemy Core over any URL (a SQLite file by default). Every write happens
in one transaction, so a failed write never loses or half-replaces what was
stored. Re-auditing a round replaces that round's rows; rounds may arrive in
any order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from metrics_core.bootstrap import Estimate

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
    sa.Column("delta", sa.Float),
    sa.Column("slope", sa.Float),
)

alert_states = sa.Table(
    "alert_states",
    _meta,
    sa.Column("loop", sa.String(128), primary_key=True),
    sa.Column("metric", sa.String(64), primary_key=True),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("since_round", sa.Integer),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


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
        _meta.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

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
        with self.engine.begin() as conn:
            conn.execute(
                metric_values.delete().where(
                    (metric_values.c.loop == record.loop) & (metric_values.c.round == record.round)
                )
            )
            if rows:
                conn.execute(metric_values.insert(), rows)

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
            sa.select(mv.c.loop, mv.c.metric, mv.c.round, mv.c.value, mv.c.ci_low, mv.c.ci_high, dv.c.delta, dv.c.slope)
            .join(latest, (mv.c.loop == latest.c.loop) & (mv.c.metric == latest.c.metric) & (mv.c.round == latest.c.round))
            .outerjoin(dv, (dv.c.loop == mv.c.loop) & (dv.c.metric == mv.c.metric) & (dv.c.round == mv.c.round))
            .order_by(mv.c.loop, mv.c.metric)
        )
        cols = ["loop", "metric", "round", "value", "ci_low", "ci_high", "delta", "slope"]
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).mappings().all(), columns=cols)

    # -- derivatives ---------------------------------------------------
    def replace_derivatives(self, loop: str, frame: pd.DataFrame) -> None:
        """Replace all derivative rows of a loop (they depend on every round)."""
        rows = [
            {
                "loop": loop,
                "round": int(r.round),
                "metric": r.metric,
                "delta": None if pd.isna(r.delta) else float(r.delta),
                "slope": None if pd.isna(r.slope) else float(r.slope),
            }
            for r in frame.itertuples(index=False)
        ]
        with self.engine.begin() as conn:
            conn.execute(derivatives.delete().where(derivatives.c.loop == loop))
            if rows:
                conn.execute(derivatives.insert(), rows)

    def derivatives(self, loop: str) -> pd.DataFrame:
        q = sa.select(derivatives).where(derivatives.c.loop == loop).order_by(derivatives.c.metric, derivatives.c.round)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).mappings().all(), columns=[c.name for c in derivatives.columns])

    # -- alert state ---------------------------------------------------
    def set_alert_states(self, loop: str, states: list[dict]) -> None:
        """Replace a loop's alert states: ``{metric, severity, since_round, message}`` each."""
        now = time.time()
        rows = [{"loop": loop, "updated_at": now, **s} for s in states]
        with self.engine.begin() as conn:
            conn.execute(alert_states.delete().where(alert_states.c.loop == loop))
            if rows:
                conn.execute(alert_states.insert(), rows)

    def alert_states(self, loop: str | None = None) -> pd.DataFrame:
        q = sa.select(alert_states).order_by(alert_states.c.loop, alert_states.c.metric)
        if loop is not None:
            q = q.where(alert_states.c.loop == loop)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).mappings().all(), columns=[c.name for c in alert_states.columns])
