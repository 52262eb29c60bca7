"""MLflow logging: one experiment per loop, a parent run for the loop and a nested run per round.

Layout, for loop ``L``:

* experiment ``collapse-monitor/L`` (artifacts under ``mlartifacts/L``);
* the loop's parent run (tags ``collapse_loop=L``, ``collapse_kind=loop``):
  every round's metrics, derivatives and risk at ``step = round``, so MLflow
  charts the trajectory;
* a nested run per round (``mlflow.parentRunId`` = the parent; tags
  ``collapse_loop``, ``collapse_round``, ``collapse_fingerprint``,
  ``collapse_metrics_version``, ``collapse_digest``, ``collapse_kind=round``):
  the same values at ``step = round`` plus the round's artifacts (trajectory
  plots, alert explanations, the Evidently HTML).

Exactly once, from the store. The store is the source of truth; MLflow is a
copy of it. A round's *payload* is what the store holds for it (fingerprint,
metrics version, values, derivatives, risk) and its digest names it. Before a
round is logged, the store records the digest and the timestamp its points
will carry (``mlflow_writes``); once MLflow took every write, the store marks
it confirmed. Every publish logs, in round order, each stored round whose
current digest is not confirmed, whatever interrupted it (a kill after the
store commit, a dead or hanging server, a full disk). A repeated write carries
the same timestamp and values, which MLflow stores once, so a round re-logged
after a kill mid-logging holds one point per series. Runs are found by tag
before one is created, so re-auditing a round reopens its run.

Rounds that arrive out of order change the derivatives of the later rounds
(``delta`` is taken from the previous stored round): their digests change, so
those steps are **re-logged** with the new values and a newer timestamp.
MLflow keeps metric history, so such a step then holds the superseded point
and the current one; the latest timestamp is the current value, as in the store.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

EXPERIMENT_PREFIX = "collapse-monitor/"
LOOP_TAG = "collapse_loop"
ROUND_TAG = "collapse_round"
KIND_TAG = "collapse_kind"
FINGERPRINT_TAG = "collapse_fingerprint"
DIGEST_TAG = "collapse_digest"
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


def round_points(metrics: dict[str, float], derived: dict[str, float | None]) -> dict[str, float]:
    """A round's series and values as MLflow gets them: metric values and the finite derived values."""
    points = {name: float(v) for name, v in metrics.items()}
    points.update({name: float(v) for name, v in derived.items() if v is not None and not math.isnan(v)})
    return points


def payload_digest(fingerprint: str, metrics_version: str, points: dict[str, float]) -> str:
    """SHA-256 of a round's MLflow payload; equal payloads, equal digests (floats by their exact ``repr``).

    >>> a = payload_digest("f", "1", {"precision": 0.5})
    >>> a == payload_digest("f", "1", {"precision": 0.5}), a == payload_digest("f", "1", {"precision": 0.25})
    (True, False)
    """
    import hashlib

    text = json.dumps([fingerprint, metrics_version, sorted((k, repr(v)) for k, v in points.items())])
    return hashlib.sha256(text.encode()).hexdigest()


def log_round(
    tracking_uri: str,
    artifact_root: Path,
    loop: str,
    round_number: int,
    fingerprint: str,
    points: dict[str, float],
    digest: str,
    artifacts: tuple[Path, ...] = (),
    metrics_version: str | None = None,
    timestamp_ms: int | None = None,
) -> tuple[str, bool]:
    """Log one round's points into its nested run and the loop's parent run; returns ``(round_run_id, logged)``.

    ``points`` holds named series (metric values, ``delta/<metric>``,
    ``zscore/<metric>``, ``collapse_risk``) to log at ``step = round``, all
    with ``timestamp_ms`` (default: now): the same points logged again add
    nothing. ``artifacts`` (plots, alert JSON, the Evidently HTML) go to the
    round's run. A round run already tagged with ``digest`` is left as it is
    (``logged`` False).
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
    elif run.data.tags.get(DIGEST_TAG) == digest:
        return run.info.run_id, False
    now = int(time.time() * 1000) if timestamp_ms is None else int(timestamp_ms)
    batch = [Metric(name, v, now, round_number) for name, v in sorted(points.items())]
    for run_id in (run.info.run_id, parent.info.run_id):
        for start in range(0, len(batch), 1000):  # MLflow's log_batch limit
            client.log_batch(run_id, metrics=batch[start:start + 1000])
    for path in artifacts:  # same name, same place: a repeated upload replaces the file
        client.log_artifact(run.info.run_id, str(path))
    # Tagged last: a round whose logging failed part-way is logged again in full.
    client.set_tag(run.info.run_id, VERSION_TAG, version)
    client.set_tag(run.info.run_id, FINGERPRINT_TAG, fingerprint)
    client.set_tag(run.info.run_id, DIGEST_TAG, digest)
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


def staged_report(reports_root: Path | None, loop: str, round_number: int) -> Path | None:
    """Where an audit stages a round's Evidently HTML until MLflow holds it (None without a reports folder)."""
    return None if reports_root is None else reports_root / loop / f"round_{round_number}.html"


def release_staged_report(reports_root: Path | None, loop: str, round_number: int, files) -> None:
    """Delete the round's staged Evidently HTML once MLflow confirmed a write that carried it.

    The report is ~4 MiB, nearly all of it Evidently's inlined JavaScript: keeping it in the reports
    folder too doubled a text loop's home per round (benchmarks/bench_audit_footprint.py). A later
    re-log of the round without the file leaves MLflow's copy in place.
    """
    staged = staged_report(reports_root, loop, round_number)
    if staged is not None and any(Path(f) == staged for f in files):
        staged.unlink(missing_ok=True)


def round_artifacts(reports_root: Path | None, loop: str, round_number: int) -> list[str]:
    """The artifacts an audit wrote for a round (its plots folder and Evidently HTML), for a round caught up
    without them on record."""
    if reports_root is None:
        return []
    folder = reports_root / loop / f"round_{round_number}"
    found = sorted(str(p) for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    html = staged_report(reports_root, loop, round_number)
    return found + ([str(html)] if html.is_file() else [])


def unconfirmed_rounds(store, loop: str, writes: dict[int, dict] | None = None) -> dict[int, tuple]:
    """Stored rounds of the loop whose current payload MLflow has not confirmed:
    ``{round: (fingerprint, metrics_version, points, digest)}``, in round order. ``writes``: the loop's
    :meth:`~monitor.store.TrajectoryStore.mlflow_writes`, when the caller has read them already."""
    writes = store.mlflow_writes(loop) if writes is None else writes
    out = {}
    for rnd, (fingerprint, version, metrics, derived) in sorted(store.round_payloads(loop).items()):
        points = round_points(metrics, derived)
        digest = payload_digest(fingerprint, version, points)
        w = writes.get(rnd)
        if w is None or w["digest"] != digest or w["confirmed_at"] is None:
            out[rnd] = (fingerprint, version, points, digest)
    return out


def publish_loop(store, tracking_uri: str, artifact_root: Path, loop: str,
                 artifacts: dict[int, list[str]] | None = None, reports_root: Path | None = None,
                 warn=None) -> tuple[list[int], list[int]]:
    """Log every stored round of the loop that MLflow has not confirmed, in round order; ``(logged, left)``.

    Only the points whose value MLflow does not already hold at the round's
    step are logged, so a re-audit with unchanged values, or a new metrics
    version that changes nothing, adds no point. ``artifacts`` gives the
    files of rounds just audited; other rounds reuse the files on record or,
    without any, find them under ``reports_root``. A round's Evidently HTML staged there
    (``reports_root/<loop>/round_<N>.html``) is deleted once MLflow confirmed it: MLflow keeps
    the one copy. A failure leaves that round
    and every later one unconfirmed (``left``) instead of failing the audit:
    the store holds everything MLflow needs, and the next publish catches them up.
    """
    if tracking_uri.startswith("sqlite:///") and not _opens(tracking_uri):
        aside = repair_local_database(tracking_uri)
        if aside:  # a new database holds none of the points on record
            store.forget_mlflow_writes()
        if warn is not None:
            warn(f"{tracking_uri[len('sqlite:///'):]}: MLflow cannot open this database; "
                 + (f"it held no run, so it was moved to {aside} and is recreated now; every round is logged "
                    "again from the store" if aside else
                    "it holds runs, so it is left as it is and rounds wait in the store: back it up, then run "
                    f"`mlflow db upgrade {tracking_uri}`"))
    writes = store.mlflow_writes(loop)
    todo = unconfirmed_rounds(store, loop, writes)
    if not todo:
        return [], []
    logged, left = [], []
    for rnd, (fingerprint, version, points, digest) in todo.items():
        if left:  # keep the order: once one fails, the later ones wait too
            left.append(rnd)
            continue
        w = writes.get(rnd)
        held = {} if w is None else w["confirmed_points"]
        if w is not None and w["digest"] == digest:  # an interrupted write of this payload: the same points again
            timestamp_ms, files = w["timestamp_ms"], w["artifacts"]
        else:
            timestamp_ms, files = int(time.time() * 1000), None
        if artifacts and rnd in artifacts:
            files = artifacts[rnd]
        if files is None:
            files = (w["artifacts"] if w is not None else None) or round_artifacts(reports_root, loop, rnd)
        try:
            store.intend_mlflow_write(loop, rnd, digest, timestamp_ms, files)
            log_round(tracking_uri, artifact_root, loop, rnd, fingerprint,
                      {k: v for k, v in points.items() if held.get(k) != v}, digest,
                      tuple(Path(a) for a in files if Path(a).exists()), metrics_version=version,
                      timestamp_ms=timestamp_ms)
            store.confirm_mlflow_write(loop, rnd, digest, {**held, **points})
        except Exception:  # noqa: BLE001 - any tracking or store failure: caught up by the next publish
            left.append(rnd)
            continue
        logged.append(rnd)
        try:
            release_staged_report(reports_root, loop, rnd, files)
        except OSError:  # MLflow holds the round: a staged copy that cannot be deleted costs space, not data
            pass
    return logged, left
