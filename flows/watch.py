"""The ``watch-rounds`` flow: find complete new round files and audit each once.

``collapse-monitor serve --watch ...`` serves this flow as a Prefect
deployment on an interval. Each run scans the sources (see
:mod:`monitor.inputs.watch`), then audits the ready rounds in (loop, round) order
with the ``audit-round`` flow. One bad file never stops the others: it is
marked refused with its one-line error (and not retried until it changes);
an unexpected failure leaves it pending for the next run.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task

from flows.audit import _IO_RETRIES, audit_round, publish_mlflow
from flows.runners import task_runner
from monitor.publishing import tracking
from monitor.inputs import watch
from monitor.config import load_settings
from monitor.errors import CollapseMonitorError
from monitor.options import AuditOptions
from monitor.engine.rules import load_rules
from monitor.store import TrajectoryStore


@task(**_IO_RETRIES)
def scan_sources(store_url: str, sources: list[str], manifests: list[str], reference: str | None,
                 follow_links: bool = False) -> dict:
    """The ready rounds (complete, not yet audited in this version) and the problems met on the way."""
    found = watch.discover(sources, manifests, reference, follow_links=follow_links)
    with TrajectoryStore(store_url) as store:
        ready = watch.ready_rounds(store, found.rounds)
    return {"ready": ready, "problems": found.problems, "seen": len(found.rounds)}


@task(**_IO_RETRIES)
def mark_file(store_url: str, url: str, status: str, fingerprint: str | None, size: int | None,
              mtime: float | None, error: str | None = None) -> None:
    with TrajectoryStore(store_url) as store:
        store.mark_file(url, status, fingerprint, size, mtime, error)


@task(**_IO_RETRIES)
def loops_behind_mlflow(store_url: str) -> list[str]:
    """Loops with a stored round MLflow has not confirmed (a kill after the store commit, a dead server)."""
    with TrajectoryStore(store_url) as store:
        return [loop for loop in store.loops() if tracking.unconfirmed_rounds(store, loop)]


@task(**_IO_RETRIES)
def fetch(url: str, cache_dir: str, fingerprint: str | None) -> str:
    """A local path for a round or reference file (remote files are copied into the cache)."""
    return watch.local_copy(url, Path(cache_dir), fingerprint)


@flow(name="watch-rounds", log_prints=False)
def watch_rounds(
    sources: list[str] | None = None,
    manifests: list[str] | None = None,
    reference: str | None = None,
    home: str | None = None,
    rules_path: str | None = None,
    pushgateway: str | None = None,
    runner: str = "threads",
    dask_address: str | None = None,
    follow_links: bool = False,
) -> dict:
    """Audit every complete round file not yet audited in its current version.

    Args:
        sources: directories or fsspec URLs laid out as ``<loop>/round_<N>.<ext>``.
        manifests: TOML/JSON manifests listing round files.
        reference: the reference for loops without their own
            (``<loop>/reference.<ext>``, ``reference`` in ``loop.toml`` or
            the manifest).
        home, rules_path, pushgateway: as for ``audit-round``.
        runner, dask_address: the task runner of each audit (``threads``,
            or ``dask`` on the cluster at ``dask_address``, a local cluster
            when None).
        follow_links: audit files and loop folders that are links out of their source (refused by default).

    Returns:
        ``{"audited": [...], "refused": [...], "retry": [...], "problems": [...]}``
        with ``"loop/round"`` entries.
    """
    logger = get_run_logger()
    settings = load_settings(home, rules_path)
    load_rules(settings.rules_path)
    scan = scan_sources(settings.store_url, list(sources or []), list(manifests or []), reference, follow_links)
    for problem in scan["problems"]:
        logger.warning("watch: %s", problem)
    audit = audit_round.with_options(task_runner=task_runner(runner, dask_address))
    cache = str(settings.home / "watch-cache")
    audited, refused, retry = [], [], []
    for rf, fingerprint in scan["ready"]:
        name = f"{rf.loop}/{rf.round}"
        if rf.reference is None:  # not refused: the file is fine, and a reference may appear
            logger.warning("watch: %s: loop %s has no reference: put reference.<ext> beside its rounds, set "
                           "reference in loop.toml or the manifest, or give serve --reference", rf.url, rf.loop)
            retry.append(name)
            continue
        try:
            data_path = fetch(rf.url, cache, fingerprint)
            reference_path = fetch(rf.reference, cache, None)
            logger.info("watch: auditing %s (%s)", name, rf.url)
            options, extras = AuditOptions.from_record(rf.options)
            audit(rf.loop, rf.round, data_path, reference_path, options, home=str(settings.home),
                  rules_path=None if settings.rules_path is None else str(settings.rules_path),
                  pushgateway=pushgateway, **extras)
        except CollapseMonitorError as exc:
            logger.error("watch: %s refused: %s", name, exc)
            mark_file(settings.store_url, rf.url, "failed", fingerprint, rf.size, rf.mtime, str(exc))
            refused.append(name)
            continue
        except Exception as exc:  # noqa: BLE001 - transient or unknown: retried at the next scan
            logger.error("watch: %s failed (%s: %s); retrying at the next scan", name, type(exc).__name__, exc)
            retry.append(name)
            continue
        mark_file(settings.store_url, rf.url, "audited", fingerprint, rf.size, rf.mtime)
        audited.append(name)
    for loop in loops_behind_mlflow(settings.store_url):  # every stored round reaches MLflow within a scan
        publish_mlflow(settings.store_url, settings.mlflow_uri, str(settings.artifact_root), loop, None, [],
                       str(settings.home / "reports"))
    logger.info("watch: %d round files seen, %d audited, %d refused, %d to retry", scan["seen"], len(audited),
                len(refused), len(retry))
    return {"audited": audited, "refused": refused, "retry": retry, "problems": scan["problems"]}
