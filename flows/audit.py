"""The ``audit_round`` flow: load -> compute -> persist -> derive -> alert -> publish.

Runs in Prefect's ephemeral mode when no ``PREFECT_API_URL`` is set. Tasks
only call ``metrics_core`` and ``monitor``; the expensive ones are cached by
explicit keys (inputs + task source + ``METRICS_VERSION``, with the arrays
represented by their fingerprints), results are stored as JSON, and only I/O
tasks retry, with exponential backoff.
"""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy.exc
from prefect import flow, get_run_logger, task
from prefect.cache_policies import INPUTS, TASK_SOURCE
from prefect.tasks import exponential_backoff

import metrics_core
from metrics_core.bootstrap import Estimate
from monitor import alerts as alerts_mod
from monitor import derivatives as derivatives_mod
from monitor import exporter, io, tracking
from monitor.config import check_loop_name, check_round_number, load_settings
from monitor.store import RoundRecord, TrajectoryStore

_IO_ERRORS = (OSError, sqlalchemy.exc.OperationalError, ConnectionError, TimeoutError)


def _retry_on_io(task_, task_run, state) -> bool:
    """Retry transient I/O failures only; bad input fails at once."""
    try:
        state.result()
    except _IO_ERRORS:
        return True
    except Exception:  # noqa: BLE001 - anything else is not transient
        return False
    return False


_IO_RETRIES = {"retries": 3, "retry_delay_seconds": exponential_backoff(backoff_factor=1), "retry_condition_fn": _retry_on_io}
# Arrays are keyed by their fingerprints (also task inputs), and the radii by
# the reference fingerprint and k, not hashed again.
_CACHE = INPUTS - "reference" - "round_data" - "sq_radii" + TASK_SOURCE


@task(**_IO_RETRIES)
def load_array(path: str, role: str, round_number: int | None) -> io.LoadedArray:
    return io.load_embeddings(path, role, round_number)


@task(cache_policy=_CACHE, persist_result=True, result_serializer="json")
def reference_sq_radii(reference_fingerprint: str, k: int, metrics_version: str, reference) -> list[float]:
    # Squared and exact: JSON keeps float64 bit for bit, and a rounded root would lose ties.
    return metrics_core.knn_radii(reference, k, squared=True).tolist()


@task(cache_policy=_CACHE, persist_result=True, result_serializer="json")
def compute_metrics(
    reference_fingerprint: str,
    round_fingerprint: str,
    k: int,
    n_boot: int,
    seed: int,
    metrics_version: str,
    sq_radii: list[float],
    reference,
    round_data,
) -> dict[str, dict]:
    import torch

    suite = metrics_core.embedding_suite(
        reference, round_data, k=k, n_boot=n_boot, seed=seed, reference_sq_radii=torch.tensor(sq_radii, dtype=torch.float64)
    )
    return {name: est.as_dict() for name, est in suite.items()}


@task(**_IO_RETRIES)
def persist(store_url: str, record: RoundRecord) -> None:
    store = TrajectoryStore(store_url)
    try:
        store.record_round(record)
    finally:
        store.close()


@task(**_IO_RETRIES)
def derive(store_url: str, loop: str) -> dict[int, dict[str, dict]]:
    store = TrajectoryStore(store_url)
    try:
        frame = derivatives_mod.compute_derivatives(store.trajectory(loop))
        store.replace_derivatives(loop, frame)
    finally:
        store.close()
    out: dict[int, dict[str, dict]] = {}
    for r in frame.itertuples(index=False):
        out.setdefault(int(r.round), {})[r.metric] = {"delta": _none_if_nan(r.delta), "slope": _none_if_nan(r.slope)}
    return out


@task(**_IO_RETRIES)
def evaluate_alerts(store_url: str, loop: str) -> list[dict]:
    store = TrajectoryStore(store_url)
    try:
        states = alerts_mod.evaluate_alerts(store.trajectory(loop))
        store.set_alert_states(loop, [s.as_dict() for s in states])
    finally:
        store.close()
    return [s.as_dict() for s in states]


@task(**_IO_RETRIES)
def publish_mlflow(tracking_uri: str, artifact_root: str, loop: str, round_number: int, fingerprint: str,
                   metrics: dict[str, float], deltas: dict[str, float | None]) -> str:
    run_id, logged = tracking.log_round(
        tracking_uri, Path(artifact_root), loop, round_number, fingerprint, metrics, deltas
    )
    get_run_logger().info("MLflow run %s: round %d %s", run_id, round_number, "logged" if logged else "already logged")
    return run_id


def _none_if_nan(v):
    return None if v is None or v != v else float(v)


@flow(name="audit-round", log_prints=False)
def audit_round(
    loop: str,
    round_number: int,
    data_path: str,
    reference_path: str,
    home: str | None = None,
    k: int = 5,
    n_boot: int = 200,
    seed: int = 0,
) -> dict:
    """Audit one generation round against the reference and publish the verdict.

    Returns the CLI's JSON contract: ``loop, round, metrics, derivatives,
    alerts, status`` (see docs/architecture.md).
    """
    logger = get_run_logger()
    started = time.perf_counter()
    try:
        check_loop_name(loop)
        check_round_number(round_number)
        settings = load_settings(home)
        reference = load_array(reference_path, "reference", None)
        round_ = load_array(data_path, "round", round_number)
        io.check_same_dim(reference, round_, round_number)
        version = metrics_core.METRICS_VERSION
        storage = settings.results_dir
        sq_radii = reference_sq_radii.with_options(result_storage=storage)(reference.fingerprint, k, version, reference.data)
        metrics = compute_metrics.with_options(result_storage=storage)(
            reference.fingerprint, round_.fingerprint, k, n_boot, seed, version, sq_radii, reference.data, round_.data
        )
        record = RoundRecord(
            loop=loop,
            round=round_number,
            metrics={name: Estimate(**m) for name, m in metrics.items()},
            n_reference=int(reference.data.shape[0]),
            n_round=int(round_.data.shape[0]),
            fingerprint=round_.fingerprint,
            reference_fingerprint=reference.fingerprint,
            metrics_version=version,
        )
        persist(settings.store_url, record)
        all_derivatives = derive(settings.store_url, loop)
        states = evaluate_alerts(settings.store_url, loop)
        round_derivatives = all_derivatives.get(round_number, {})
        publish_mlflow(
            settings.mlflow_uri,
            str(settings.artifact_root),
            loop,
            round_number,
            round_.fingerprint,
            {name: m["value"] for name, m in metrics.items()},
            {name: d["delta"] for name, d in round_derivatives.items()},
        )
    except Exception:
        exporter.AUDIT_FAILURES.inc()
        raise
    exporter.AUDITS.inc()
    exporter.AUDIT_DURATION.observe(time.perf_counter() - started)
    active = [
        {"metric": s["metric"], "severity": s["severity"], "message": s["message"]}
        for s in states
        if s["severity"] != alerts_mod.OK
    ]
    status = alerts_mod.loop_status([alerts_mod.AlertState(**s) for s in states])
    logger.info("loop %s round %d audited: %s", loop, round_number, status)
    return {
        "loop": loop,
        "round": round_number,
        "metrics": {name: {key: m[key] for key in ("value", "ci_low", "ci_high", "std_error")} for name, m in metrics.items()},
        "derivatives": round_derivatives,
        "alerts": active,
        "status": status,
    }
