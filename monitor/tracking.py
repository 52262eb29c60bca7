"""MLflow logging: one run per loop, metrics at ``step = round``.

The run is found by its ``collapse_loop`` tag before one is created, so
re-auditing a round (or restarting the daemon) never makes a second run. A
round whose fingerprint was already logged is not logged again, so MLflow's
metric history holds one point per round unless the round's data changed.

If the tracking server is unreachable the audit still completes: the round is
queued in the store (``mlflow_pending``) and :func:`publish_round` logs it,
from the store, before the next round it publishes.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

EXPERIMENT = "collapse-monitor"
LOOP_TAG = "collapse_loop"


def _client(tracking_uri: str):
    # A tracking server that is down must fail fast: the round is queued and caught up later.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    from mlflow.tracking import MlflowClient  # heavy import, only when logging

    return MlflowClient(tracking_uri=tracking_uri)


def _experiment_id(client, artifact_root: Path) -> str:
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    # An explicit artifact location: the default would be ./mlruns in the CWD.
    return client.create_experiment(EXPERIMENT, artifact_location=artifact_root.resolve().as_uri())


def find_loop_run(tracking_uri: str, loop: str, artifact_root: Path):
    """The loop's run, or None. Loop names are validated (no quotes)."""
    client = _client(tracking_uri)
    exp_id = _experiment_id(client, artifact_root)
    runs = client.search_runs(
        [exp_id], filter_string=f"tags.{LOOP_TAG} = '{loop}'", order_by=["attributes.start_time ASC"], max_results=1
    )
    return runs[0] if runs else None


def log_round(
    tracking_uri: str,
    artifact_root: Path,
    loop: str,
    round_number: int,
    fingerprint: str,
    metrics: dict[str, float],
    derived: dict[str, float | None],
    artifacts: tuple[Path, ...] = (),
) -> tuple[str, bool]:
    """Log one round into the loop's run; returns ``(run_id, logged)``.

    ``derived`` holds already-named series (``delta/<metric>``,
    ``zscore/<metric>``, ``collapse_risk``); missing values are skipped.
    ``artifacts`` (e.g. the round's Evidently HTML) go under ``round_<N>/``.
    """
    from mlflow.entities import Metric

    client = _client(tracking_uri)
    exp_id = _experiment_id(client, artifact_root)
    run = find_loop_run(tracking_uri, loop, artifact_root)
    if run is None:
        run = client.create_run(exp_id, tags={LOOP_TAG: loop}, run_name=loop)
    run_id = run.info.run_id
    fp_tag = f"collapse_round_{round_number}_fingerprint"
    if run.data.tags.get(fp_tag) == fingerprint:
        return run_id, False
    now = int(time.time() * 1000)
    batch = [Metric(name, float(v), now, round_number) for name, v in metrics.items()]
    batch += [
        Metric(name, float(v), now, round_number)
        for name, v in derived.items()
        if v is not None and not math.isnan(v)
    ]
    client.log_batch(run_id, metrics=batch)
    for path in artifacts:
        client.log_artifact(run_id, str(path), artifact_path=f"round_{round_number}")
    client.set_tag(run_id, fp_tag, fingerprint)
    return run_id, True


def publish_round(store, tracking_uri: str, artifact_root: Path, loop: str, round_number: int,
                  artifacts: list[str]) -> tuple[list[int], list[int]]:
    """Log the loop's queued rounds, then this one, from the store; returns ``(logged, queued)`` rounds.

    A failure queues the round (and keeps earlier queued ones) instead of
    failing the audit: the store holds everything MLflow needs.
    """
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
