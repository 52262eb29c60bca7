"""The ``audit_round`` flow: load -> compute -> persist -> derive -> alert -> publish.

Runs in Prefect's ephemeral mode when no ``PREFECT_API_URL`` is set. Tasks
only call ``metrics_core`` and ``monitor``; the expensive ones are cached by
explicit keys (inputs + task source + ``METRICS_VERSION``, with the arrays
represented by their fingerprints), results are stored as JSON, and only I/O
tasks retry, with exponential backoff.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import sqlalchemy.exc
from prefect import flow, get_run_logger, task
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
from prefect.tasks import exponential_backoff

import metrics_core
from metrics_core.bootstrap import Estimate
from metrics_core.sampling import DEFAULT_MAX_SAMPLES
from monitor import comparability, evaluation, exporter, io, profile_cache, tracking
from monitor.config import check_loop_name, check_round_number, load_settings
from monitor.errors import InputError
from monitor.rules import load_rules
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
# Arrays and the fitted profile are keyed by fingerprints and the config (also
# task inputs), not hashed again.
_CACHE = INPUTS - "reference" - "round_data" - "profile" + TASK_SOURCE


@task(**_IO_RETRIES)
def load_array(path: str, role: str, round_number: int | None) -> io.LoadedArray:
    return io.load_embeddings(path, role, round_number)


@task(cache_policy=NO_CACHE, **_IO_RETRIES)  # cached on disk by key, see monitor.profile_cache
def reference_profile(cache_dir: str, key: str, config: dict, reference) -> metrics_core.ReferenceProfile:
    """The reference's fitted profile: from the cache when present, else fitted and cached."""
    profile = profile_cache.load_profile(Path(cache_dir), key)
    if profile is None:
        get_run_logger().info("fitting the reference profile %s", key)
        profile = metrics_core.fit_reference_profile(reference, metrics_core.SuiteConfig(**config))
        profile_cache.save_profile(profile, Path(cache_dir), key)
    return profile


@task(cache_policy=_CACHE, persist_result=True, result_serializer="json")
def compute_metrics(
    reference_key: str,
    round_fingerprint: str,
    n_round: int,
    config: dict,
    metrics_version: str,
    profile,
    reference,
    round_data,
) -> dict[str, dict]:
    suite = metrics_core.embedding_suite(
        reference, round_data, config=metrics_core.SuiteConfig(**config), profile=profile
    )
    return {name: est.as_dict() for name, est in suite.items()}


@task(**_IO_RETRIES)
def check_comparable(store_url: str, loop: str, round_number: int, n_reference: int, n_round: int,
                     reference_fingerprint: str, allow_size_change: bool) -> None:
    store = TrajectoryStore(store_url)
    try:
        comparability.check_comparable(
            store.round_sizes(loop), loop, round_number, n_reference=n_reference, n_round=n_round,
            reference_fingerprint=reference_fingerprint, allow_size_change=allow_size_change,
        )
    finally:
        store.close()


@task(**_IO_RETRIES)
def persist(store_url: str, record: RoundRecord) -> None:
    store = TrajectoryStore(store_url)
    try:
        store.record_round(record)
    finally:
        store.close()


@task(**_IO_RETRIES)
def evaluate(store_url: str, loop: str, round_number: int, rules_path: str | None) -> dict:
    """Derivatives, alert states (with history) and risk of the loop, recomputed from the store."""
    store = TrajectoryStore(store_url)
    try:
        verdict = evaluation.round_verdict(
            evaluation.evaluate_and_store(store, loop, load_rules(rules_path)), round_number
        )
    finally:
        store.close()
    for t in verdict["transitions"]:
        get_run_logger().warning("loop %s %s: %s -> %s at round %d: %s", loop, t["metric"], t["from"], t["to"],
                                 t["round"], t["reason"])
    return verdict


@task(**_IO_RETRIES)
def publish_mlflow(tracking_uri: str, artifact_root: str, loop: str, round_number: int, fingerprint: str,
                   metrics: dict[str, float], derived: dict[str, float | None]) -> str:
    run_id, logged = tracking.log_round(
        tracking_uri, Path(artifact_root), loop, round_number, fingerprint, metrics, derived
    )
    get_run_logger().info("MLflow run %s: round %d %s", run_id, round_number, "logged" if logged else "already logged")
    return run_id


def _derived_series(verdict: dict) -> dict[str, float | None]:
    """The round's derived values as MLflow metric names."""
    series = {f"{key}/{name}": d[key] for name, d in verdict["derivatives"].items() for key in ("delta", "slope", "zscore")}
    if verdict["risk"] is not None:
        series["collapse_risk"] = verdict["risk"]["risk"]
    return series


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
    max_samples: int | None = DEFAULT_MAX_SAMPLES,
    allow_size_change: bool = False,
    rules_path: str | None = None,
) -> dict:
    """Audit one generation round against the reference and publish the verdict.

    Both sets are subsampled (seeded, without replacement) to at most
    ``max_samples`` rows so rounds are compared at equal sizes; an audit whose
    sizes or reference differ from the loop's other rounds is refused unless
    ``allow_size_change``. Alert rules are the defaults overlaid with
    ``rules_path`` (else the home's rules, see :mod:`monitor.config`). Returns
    the CLI's JSON contract: ``loop, round, metrics, derivatives, alerts,
    risk, transitions, status`` (see docs/architecture.md).
    """
    logger = get_run_logger()
    started = time.perf_counter()
    try:
        check_loop_name(loop)
        check_round_number(round_number)
        settings = load_settings(home, rules_path)
        load_rules(settings.rules_path)  # a bad rules file fails before any work
        reference = load_array(reference_path, "reference", None)
        round_ = load_array(data_path, "round", round_number)
        io.check_same_dim(reference, round_, round_number)
        config = metrics_core.SuiteConfig(k=k, n_boot=n_boot, seed=seed)
        ref_data = metrics_core.subsample(reference.data, max_samples, seed)
        round_data = metrics_core.subsample(round_.data, max_samples, seed)
        check_comparable(
            settings.store_url, loop, round_number, ref_data.shape[0], round_data.shape[0],
            reference.fingerprint, allow_size_change,
        )
        _check_suite_sizes(ref_data.shape[0], round_data.shape[0], k, reference, round_, round_number)
        version = metrics_core.METRICS_VERSION
        reference_key = f"{reference.fingerprint[:24]}-{ref_data.shape[0]}-{config.reference_key()}"
        config_dict = dataclasses.asdict(config)
        profile = reference_profile(str(settings.home / "cache"), reference_key, config_dict, ref_data)
        metrics = compute_metrics.with_options(result_storage=settings.results_dir)(
            reference_key, round_.fingerprint, round_data.shape[0], config_dict, version, profile, ref_data, round_data
        )
        record = RoundRecord(
            loop=loop,
            round=round_number,
            metrics={name: Estimate(**m) for name, m in metrics.items()},
            n_reference=int(ref_data.shape[0]),
            n_round=int(round_data.shape[0]),
            fingerprint=round_.fingerprint,
            reference_fingerprint=reference.fingerprint,
            metrics_version=version,
        )
        persist(settings.store_url, record)
        verdict = evaluate(settings.store_url, loop, round_number,
                           None if settings.rules_path is None else str(settings.rules_path))
        publish_mlflow(
            settings.mlflow_uri,
            str(settings.artifact_root),
            loop,
            round_number,
            round_.fingerprint,
            {name: m["value"] for name, m in metrics.items()},
            _derived_series(verdict),
        )
    except Exception:
        exporter.AUDIT_FAILURES.inc()
        raise
    exporter.AUDITS.inc()
    exporter.AUDIT_DURATION.observe(time.perf_counter() - started)
    logger.info("loop %s round %d audited: %s", loop, round_number, verdict["status"])
    return {
        "loop": loop,
        "round": round_number,
        "metrics": {name: {key: m[key] for key in ("value", "ci_low", "ci_high", "std_error")} for name, m in metrics.items()},
        **verdict,
    }


def _check_suite_sizes(n_reference: int, n_round: int, k: int, reference, round_, round_number: int) -> None:
    """k-NN radii need k other points in each set."""
    if n_reference < k + 1:
        raise InputError(f"{reference.path} (reference): {n_reference} rows, but k={k} needs at least {k + 1}")
    if n_round < k + 1:
        raise InputError(f"{round_.path} (round, round {round_number}): {n_round} rows, but k={k} needs at least {k + 1}")
