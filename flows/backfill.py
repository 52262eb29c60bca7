"""The ``backfill-loop`` flow: re-audit a loop's rounds from their recorded sources with ``audit_round``."""

from __future__ import annotations

from prefect import flow, get_run_logger

import metrics_core
from flows.audit import audit_round
from monitor.config import check_loop_name, load_settings
from monitor.engine.rules import load_rules
from monitor.errors import CollapseMonitorError
from monitor.options import AuditOptions
from monitor.store import TrajectoryStore


def plan_backfill(sources: list[dict], audits: dict[int, dict], started: float | None,
                  force: bool) -> tuple[list[dict], list[int]]:
    """The recorded sources a backfill re-audits, and the rounds it skips.

    Skipped: rounds already re-audited by this backfill (audited at or after
    ``started``), and without ``force`` rounds audited with the current
    ``METRICS_VERSION``.
    """
    todo, skipped = [], []
    for src in sources:
        previous = audits.get(src["round"])
        done_here = previous is not None and started is not None and previous["audited_at"] >= started
        stale = previous is None or previous["metrics_version"] != metrics_core.METRICS_VERSION
        if done_here or not (force or stale):
            skipped.append(src["round"])
        else:
            todo.append(src)
    return todo, skipped


@flow(name="backfill-loop", log_prints=False)
def backfill_loop(loop: str, home: str | None = None, force: bool = False, rules_path: str | None = None,
                  pushgateway: str | None = None) -> dict:
    """Re-audit the rounds of a loop from their recorded sources, then its alerts are current.

    Without ``force`` only stale rounds are re-audited: those audited with
    another ``METRICS_VERSION`` (e.g. before a metric was added). With
    ``force`` every round is. A backfill that stopped part-way is resumed by
    the next one: rounds it already re-audited (audited after it started) are
    skipped, and re-audits replace rows and log unchanged data to MLflow only
    once, so nothing is duplicated.
    """
    logger = get_run_logger()
    check_loop_name(loop)
    settings = load_settings(home, rules_path)
    load_rules(settings.rules_path)
    with TrajectoryStore(settings.store_url) as store:
        sources = store.sources(loop)
        if not sources:
            raise CollapseMonitorError(
                f"loop {loop!r}: no recorded round sources in {store.url}; audit its rounds first"
            )
        backfill_id, started, resumed = store.open_backfill(loop)
        audits = store.round_audits(loop)
    todo, skipped = plan_backfill(sources, audits, started, force)
    audited = []
    for src in todo:
        logger.info("backfill %s: re-auditing round %d", loop, src["round"])
        options, extras = AuditOptions.from_record(src["options"])
        audit_round(loop, src["round"], src["data_path"], src["reference_path"], options, home=str(settings.home),
                    rules_path=None if settings.rules_path is None else str(settings.rules_path),
                    pushgateway=pushgateway, **extras)
        audited.append(src["round"])
    with TrajectoryStore(settings.store_url) as store:
        store.finish_backfill(backfill_id)
    return {"loop": loop, "audited": audited, "skipped": skipped, "resumed": resumed}
