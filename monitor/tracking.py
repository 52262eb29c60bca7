"""MLflow logging: one experiment per loop, a parent run for the loop and a nested run per round.

Layout, for loop ``L``:

* experiment ``collapse-monitor/L`` (artifacts under ``mlartifacts/L``);
* the loop's parent run (tags ``collapse_loop=L``, ``collapse_kind=loop``):
  every round's metrics, derivatives and risk at ``step = round``, so MLflow
  charts the trajectory;
* a nested run per round (``mlflow.parentRunId`` = the parent; tags
  ``collapse_loop``, ``collapse_round``, ``collapse_fingerprint``,
  ``collapse_metrics_version``, ``collapse_kind=round``): the same values at
  ``step = round`` plus the round's artifacts (trajectory plots, alert
  explanations, the Evidently HTML).

Runs are found by tag before one is created, so re-auditing a round (or
restarting the daemon) reopens its run instead of making another. A round
whose fingerprint and metrics version were already logged is not logged
again, so each round holds one point unless its data changed.

If the tracking server is unreachable the audit still completes: the round is
queued in the store (``mlflow_pending``) and :func:`publish_round` logs it,
from the store, before the next round it publishes.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

EXPERIMENT_PREFIX = "collapse-monitor/"
LOOP_TAG = "collapse_loop"
ROUND_TAG = "collapse_round"
KIND_TAG = "collapse_kind"
FINGERPRINT_TAG = "collapse_fingerprint"
VERSION_TAG = "collapse_metrics_version"
PARENT_TAG = "mlflow.parentRunId"


def experiment_name(loop: str) -> str:
    return f"{EXPERIMENT_PREFIX}{loop}"


def _client(tracking_uri: str):
    # A tracking server that is down must fail fast: the round is queued and caught up later.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    from mlflow.tracking import MlflowClient  # heavy import, only when logging

    return MlflowClient(tracking_uri=tracking_uri)


def _experiment_id(client, loop: str, artifact_root: Path) -> str:
    name = experiment_name(loop)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    if tracking_uri_is_server(client.tracking_uri):  # the server's own artifact store (mlflow-artifacts:)
        return client.create_experiment(name)
    # An explicit artifact location: the default would be ./mlruns in the CWD.
    return client.create_experiment(name, artifact_location=(artifact_root / loop).resolve().as_uri())


def tracking_uri_is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "databricks"))


def _find(client, exp_id: str, filter_string: str):
    runs = client.search_runs([exp_id], filter_string=filter_string, order_by=["attributes.start_time ASC"],
                              max_results=1)
    return runs[0] if runs else None


def _loop_filter(loop: str) -> str:
    # Loop names are validated (no quotes).
    return f"tags.{LOOP_TAG} = '{loop}' and tags.{KIND_TAG} = 'loop'"


def _round_filter(loop: str, round_number: int) -> str:
    return f"tags.{LOOP_TAG} = '{loop}' and tags.{KIND_TAG} = 'round' and tags.{ROUND_TAG} = '{round_number}'"


def find_loop_run(tracking_uri: str, loop: str, artifact_root: Path):
    """The loop's parent run, or None."""
    client = _client(tracking_uri)
    return _find(client, _experiment_id(client, loop, artifact_root), _loop_filter(loop))


def find_round_run(tracking_uri: str, loop: str, round_number: int, artifact_root: Path):
    """The round's nested run, or None."""
    client = _client(tracking_uri)
    return _find(client, _experiment_id(client, loop, artifact_root), _round_filter(loop, round_number))


def round_runs(tracking_uri: str, loop: str, artifact_root: Path) -> list:
    """Every nested round run of the loop, by round."""
    client = _client(tracking_uri)
    runs = client.search_runs([_experiment_id(client, loop, artifact_root)],
                              filter_string=f"tags.{LOOP_TAG} = '{loop}' and tags.{KIND_TAG} = 'round'",
                              max_results=50_000)
    return sorted(runs, key=lambda r: int(r.data.tags[ROUND_TAG]))


def log_round(
    tracking_uri: str,
    artifact_root: Path,
    loop: str,
    round_number: int,
    fingerprint: str,
    metrics: dict[str, float],
    derived: dict[str, float | None],
    artifacts: tuple[Path, ...] = (),
    metrics_version: str | None = None,
) -> tuple[str, bool]:
    """Log one round into its nested run and the loop's parent run; returns ``(round_run_id, logged)``.

    ``derived`` holds already-named series (``delta/<metric>``,
    ``zscore/<metric>``, ``collapse_risk``); missing values are skipped.
    ``artifacts`` (plots, alert JSON, the Evidently HTML) go to the round's run.
    """
    from mlflow.entities import Metric, RunStatus

    from metrics_core import METRICS_VERSION

    version = metrics_version or METRICS_VERSION
    client = _client(tracking_uri)
    exp_id = _experiment_id(client, loop, artifact_root)
    parent = _find(client, exp_id, _loop_filter(loop))
    if parent is None:
        parent = client.create_run(exp_id, tags={LOOP_TAG: loop, KIND_TAG: "loop"}, run_name=loop)
    run = _find(client, exp_id, _round_filter(loop, round_number))
    if run is None:
        run = client.create_run(exp_id, run_name=f"{loop}-round-{round_number}", tags={
            LOOP_TAG: loop, KIND_TAG: "round", ROUND_TAG: str(round_number), PARENT_TAG: parent.info.run_id})
    elif run.data.tags.get(FINGERPRINT_TAG) == fingerprint and run.data.tags.get(VERSION_TAG) == version:
        return run.info.run_id, False
    now = int(time.time() * 1000)
    batch = [Metric(name, float(v), now, round_number) for name, v in metrics.items()]
    batch += [
        Metric(name, float(v), now, round_number)
        for name, v in derived.items()
        if v is not None and not math.isnan(v)
    ]
    for run_id in (run.info.run_id, parent.info.run_id):
        for start in range(0, len(batch), 1000):  # MLflow's log_batch limit
            client.log_batch(run_id, metrics=batch[start:start + 1000])
    for path in artifacts:
        client.log_artifact(run.info.run_id, str(path))
    # Tagged last: a round whose logging failed part-way is logged again in full.
    client.set_tag(run.info.run_id, VERSION_TAG, version)
    client.set_tag(run.info.run_id, FINGERPRINT_TAG, fingerprint)
    client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FINISHED))
    return run.info.run_id, True


def repair_local_database(tracking_uri: str) -> str | None:
    """Move aside a local SQLite MLflow database that MLflow cannot open and that holds no run; returns where.

    A kill while MLflow creates its tables leaves the file half-migrated, and MLflow then refuses it
    forever ("out-of-date database schema", "table ... already exists"). Holding no run, it holds
    nothing the store cannot log again: it is renamed ``<file>.broken-<time>`` and the next logging
    recreates it and catches every round up. A broken database that holds runs is left alone (None).
    """
    import sqlite3

    if not tracking_uri.startswith("sqlite:///"):
        return None
    path = Path(tracking_uri[len("sqlite:///"):])
    if not path.is_file():
        return None
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            has_runs = con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone()
            n_runs = con.execute("SELECT count(*) FROM runs").fetchone()[0] if has_runs else 0
        finally:
            con.close()
    except sqlite3.DatabaseError:
        n_runs = 0  # not even a database: nothing to keep
    if n_runs:
        return None
    aside = path.with_name(f"{path.name}.broken-{int(time.time())}")
    path.rename(aside)
    try:  # MLflow keeps one engine per URI for the process; its pooled connections still read the old file
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        with SqlAlchemyStore._engine_map_lock:
            engine = SqlAlchemyStore._engine_map.pop(tracking_uri, None)
        if engine is not None:
            engine.dispose()
    except (ImportError, AttributeError):
        pass
    return str(aside)


def _opens(tracking_uri: str) -> bool:
    try:
        _client(tracking_uri).search_experiments(max_results=1)
        return True
    except Exception:  # noqa: BLE001 - any failure to open it
        return False


def publish_round(store, tracking_uri: str, artifact_root: Path, loop: str, round_number: int,
                  artifacts: list[str], warn=None) -> tuple[list[int], list[int]]:
    """Log the loop's queued rounds, then this one, from the store; returns ``(logged, queued)`` rounds.

    A failure queues the round (and keeps earlier queued ones) instead of
    failing the audit: the store holds everything MLflow needs.
    """
    if tracking_uri.startswith("sqlite:///") and not _opens(tracking_uri):
        aside = repair_local_database(tracking_uri)
        if warn is not None:
            warn(f"{tracking_uri[len('sqlite:///'):]}: MLflow cannot open this database; "
                 + (f"it held no run, so it was moved to {aside} and is recreated now; queued rounds are logged "
                    "again from the store" if aside else
                    "it holds runs, so it is left as it is and rounds are queued: back it up, then run "
                    f"`mlflow db upgrade {tracking_uri}`"))
    pending = {p["round"]: p["artifacts"] for p in store.mlflow_pending(loop)}
    pending[round_number] = artifacts
    logged, queued = [], []
    for rnd in sorted(pending):
        if queued:  # keep the order: once one fails, the later ones wait too
            store.queue_mlflow(loop, rnd, pending[rnd])
            queued.append(rnd)
            continue
        fingerprint, metrics, derived = store.round_payload(loop, rnd)
        try:
            log_round(tracking_uri, artifact_root, loop, rnd, fingerprint, metrics, derived,
                      tuple(Path(a) for a in pending[rnd] if Path(a).exists()))
        except Exception:  # noqa: BLE001 - any tracking failure: queue and go on
            store.queue_mlflow(loop, rnd, pending[rnd])
            queued.append(rnd)
            continue
        store.mlflow_done(loop, rnd)
        logged.append(rnd)
    return logged, queued
