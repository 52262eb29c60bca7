"""The ``audit_round`` flow: load -> compute -> persist -> derive -> alert -> publish.

Runs in Prefect's ephemeral mode when no ``PREFECT_API_URL`` is set. Tasks
only call ``metrics_core`` and ``monitor``; the expensive ones are cached by
explicit keys (inputs + task source + ``METRICS_VERSION``, with the arrays
represented by their fingerprints), results are stored as JSON, and only I/O
tasks retry, with exponential backoff.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import sqlalchemy.exc
from prefect import flow, get_run_logger, task
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
from prefect.tasks import exponential_backoff

import metrics_core
from metrics_core.bootstrap import Estimate
from monitor import modalities
from monitor import inputs
from monitor.inputs import comparability
from monitor.engine import evaluation
from monitor.publishing import exporter, tracking
from monitor.config import check_loop_name, check_round_number, load_settings
from monitor.engine.derivatives import finite_or_none
from monitor.errors import CollapseMonitorError
from monitor.options import AuditOptions
from monitor.engine import null as null_mod
from monitor.modalities.pipeline import AuditPipeline
from monitor.engine.rules import load_rules
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
_CACHE = INPUTS - "pipeline" - "round_data" - "profile" + TASK_SOURCE


@task(cache_policy=NO_CACHE, **_IO_RETRIES)  # in-process loads of an unchanged file are remembered (monitor.inputs.files.remembered)
def load_input(modality: str, path: str, role: str, round_number: int | None, options: AuditOptions,
               reference: modalities.LoadedInput | None = None) -> modalities.LoadedInput:
    return modalities.MODALITY[modality].load(path, role, round_number, options, reference)


@task(cache_policy=NO_CACHE)  # featurizer, embeddings and profile are cached on disk by content
def prepare_reference(modality: str, reference_data, options: dict, cache_dir: str, reference_fingerprint: str,
                      reference_where: str) -> AuditPipeline:
    """The reference prepared once for this audit (see :class:`monitor.modalities.pipeline.AuditPipeline`)."""
    pipeline = AuditPipeline(modality, reference_data, cache_dir=cache_dir, reference_fingerprint=reference_fingerprint,
                             reference_where=reference_where, **options)
    for note in pipeline.notes:
        get_run_logger().warning("%s", note)
    return pipeline


# Keyed by the files' fingerprints and the options' digest (task inputs too); the pipeline holds the reference.
_MODALITY_CACHE = INPUTS - "pipeline" - "round_data" - "round_where" + TASK_SOURCE


@task(cache_policy=_MODALITY_CACHE, persist_result=True, result_serializer="json")
def compute_modality_metrics(modality: str, reference_fingerprint: str, round_fingerprint: str, options_key: str,
                             metrics_version: str, pipeline: AuditPipeline, round_data,
                             round_where: str) -> dict[str, dict]:
    """The modality's own metrics of the round (text, tabular, reasoning, agent), before the embedding suite."""
    metrics = pipeline.modality_metrics(round_data, round_where=round_where)
    return {name: est.as_dict() for name, est in metrics.items()}


@task(cache_policy=NO_CACHE)  # cached on disk by content hash, see monitor.modalities.embedding_cache
def embed_round(pipeline: AuditPipeline, round_data):
    """The reference's and the round's embeddings, and the featurizer's cache key."""
    return pipeline.reference_embeddings, pipeline.embed(round_data), pipeline.feature_key


@task(cache_policy=NO_CACHE)
def drift_report(modality: str, seed: int, reference_data, round_data, reference_embeddings, round_embeddings,
                 columns) -> tuple[float, str]:
    """Evidently's drift share of the round and its HTML report (returned, not written: the task may run
    on a Dask worker without the state directory)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        html_path = Path(tmp) / "report.html"
        report = modalities.MODALITY[modality].drift_report(
            reference_data, round_data, reference_embeddings=reference_embeddings,
            round_embeddings=round_embeddings, columns=columns, html_path=html_path, seed=seed)
        return report.drift_share, html_path.read_text(encoding="utf-8")


@task(**_IO_RETRIES)
def save_report(html_path: str, html: str) -> None:
    path = Path(html_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:  # a failed write() carries no file name: name the report for the one-line error
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


@task(cache_policy=NO_CACHE, **_IO_RETRIES)  # cached on disk by key, see monitor.modalities.profile_cache
def reference_profile(pipeline: AuditPipeline) -> metrics_core.SuiteReference:
    """The reference's fitted profile: from the cache when present, else fitted and cached."""
    profile = pipeline.fit_profile()
    used, asked = int(profile.clusters.centres.shape[0]), pipeline.suite_config().n_clusters
    if used < asked and used < len(pipeline.reference):
        get_run_logger().warning("%s: only %d distinct rows, so the cluster metrics use %d clusters instead of %d",
                                 pipeline.reference_where, used, used, asked)
    return profile


@task(cache_policy=_CACHE, persist_result=True, result_serializer="json", task_run_name="metrics-{group}")
def compute_metric_group(
    group: str,
    reference_key: str,
    round_fingerprint: str,
    n_round: int,
    metrics_version: str,
    pipeline: AuditPipeline,
    profile,
    round_data,
) -> dict[str, dict]:
    """One group of the embedding suite (see ``metrics_core.SUITE_GROUPS``); groups run as parallel tasks."""
    suite = pipeline.suite_group(group, round_data, profile=profile)
    return {name: est.as_dict() for name, est in suite.items()}


@task(**_IO_RETRIES)
def check_comparable(store_url: str, loop: str, round_number: int, n_reference: int, n_round: int,
                     reference_fingerprint: str, allow_size_change: bool, allow_reference_change: bool = False) -> None:
    with TrajectoryStore(store_url) as store:
        comparability.check_comparable(
            store.round_sizes(loop), loop, round_number, n_reference=n_reference, n_round=n_round,
            reference_fingerprint=reference_fingerprint, allow_size_change=allow_size_change,
            allow_reference_change=allow_reference_change,
        )


@task(**_IO_RETRIES)
def persist(store_url: str, record: RoundRecord) -> None:
    with TrajectoryStore(store_url) as store:
        store.record_round(record)


@task(cache_policy=NO_CACHE)
def ensure_null(store_url: str, loop: str, pipeline: AuditPipeline, pool_path: str, modality: str, round_size: int,
                reference_fingerprint: str, options: dict, null_rounds: int, seed: int, text_field: str,
                source: str = "pool", round_data=None) -> dict:
    """The loop's null from its pool: stored, resumed or built now (see :mod:`monitor.engine.null`)."""
    logger = get_run_logger()
    with TrajectoryStore(store_url) as store:  # an unchanged pool file (same path, sizes, times) is not re-read
        stored = null_mod.stored_null_for(store, loop, pool_path, reference_fingerprint, round_size, options,
                                          metrics_core.METRICS_VERSION, null_rounds)
    if stored is not None:
        return {"key": stored.key, "n_rounds": stored.n_rounds, "pool_size": stored.pool_size}
    signature = null_mod.file_signature(pool_path)  # before reading: a write during the read changes it
    pool, pool_fingerprint = null_mod.load_pool(pool_path, modality, text_field=text_field,
                                                reference=pipeline.reference, seed=seed, options=options)
    if round_data is not None:
        modalities.MODALITY[modality].check_pool_rows(pool, round_data, pool_path)
    key = null_mod.null_key(reference_fingerprint, pool_fingerprint, round_size, options, metrics_core.METRICS_VERSION)
    step = max(1, null_rounds // 10)

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            logger.info("loop %s: null pseudo-round %d of %d", loop, done, total)

    with TrajectoryStore(store_url) as store:
        null = null_mod.ensure_loop_null(store, loop, pipeline, pool, str(Path(pool_path).resolve()), key, round_size,
                                         n_rounds=null_rounds, seed=seed, source=source, progress=progress,
                                         info={"pool_fingerprint": pool_fingerprint, "pool_signature": signature})
    return {"key": key, "n_rounds": null.n_rounds, "pool_size": null.pool_size}


@task(**_IO_RETRIES)
def evaluate(store_url: str, loop: str, round_number: int, rules_path: str | None) -> dict:
    """Derivatives, alert states (with history) and risk of the loop, recomputed from the store."""
    with TrajectoryStore(store_url) as store:
        verdict = evaluation.round_verdict(
            evaluation.evaluate_and_store(store, loop, load_rules(rules_path)), round_number
        )
    for t in verdict["transitions"]:
        get_run_logger().info("loop %s %s: %s -> %s at round %d: %s", loop, t["metric"], t["from"], t["to"],
                                 t["round"], t["reason"])
    return verdict


@task(**_IO_RETRIES)
def record_source(store_url: str, loop: str, round_number: int, data_path: str, reference_path: str,
                  options: dict) -> None:
    with TrajectoryStore(store_url) as store:
        store.record_source(loop, round_number, data_path, reference_path, options)


@task(**_IO_RETRIES)
def write_round_artifacts(store_url: str, loop: str, round_number: int, out_dir: str, alerts: list[dict]) -> list[str]:
    """Trajectory plots of every family (PNG) and the alert explanations (JSON) as of this round, with the
    per-record findings the audit left in the folder (:meth:`monitor.modalities.Modality.round_details`)."""
    from monitor.publishing.plots import loop_plots

    out = Path(out_dir)
    with TrajectoryStore(store_url) as store:
        paths = loop_plots(store, loop, out)
    explanations = out / "alerts.json"
    explanations.write_text(json.dumps({"loop": loop, "round": round_number, "alerts": alerts}, indent=1))
    written = {Path(p) for p in (*paths, explanations)}
    details = sorted(p for p in out.glob("*.jsonl") if p not in written)
    return [str(p) for p in (*paths, explanations, *details)]


@task(cache_policy=NO_CACHE)  # no retries: an unconfirmed round stays in the store and is caught up later
def publish_mlflow(store_url: str, tracking_uri: str, artifact_root: str, loop: str, round_number: int | None,
                   artifacts: list[str], reports_root: str | None = None) -> dict:
    """Log the loop's rounds MLflow has not confirmed (this one included), from the store."""
    logger = get_run_logger()
    with TrajectoryStore(store_url) as store:
        logged, left = tracking.publish_loop(
            store, tracking_uri, Path(artifact_root), loop,
            {round_number: artifacts} if round_number is not None else None,
            None if reports_root is None else Path(reports_root), warn=logger.warning)
    if left:
        logger.warning("MLflow at %s not reachable: rounds %s of loop %s wait in the store for the next audit or "
                       "scan", tracking_uri, left, loop)
    if logged:
        logger.info("MLflow: logged rounds %s of loop %s", logged, loop)
    return {"logged": logged, "queued": left}


@task(**_IO_RETRIES)
def push_to_gateway(store_url: str, loop: str, gateway: str) -> None:
    with TrajectoryStore(store_url) as store:
        exporter.push_loop(store, loop, gateway)


@flow(name="audit-round", log_prints=False)
def audit_round(
    loop: str,
    round_number: int,
    data_path: str,
    reference_path: str,
    options: AuditOptions | None = None,
    home: str | None = None,
    rules_path: str | None = None,
    pushgateway: str | None = None,
    pool_path: str | None = None,
    allow_reference_change: bool = False,
    pool_source: str = "pool",
    publish: bool = True,
) -> dict:
    """Audit one generation round against the reference and publish the verdict.

    ``options`` (:class:`monitor.options.AuditOptions`, its defaults when None) say how the loop is audited.
    Both sets are subsampled (seeded, without replacement) to at most
    ``max_samples`` rows so rounds are compared at equal sizes; an audit whose
    sizes or reference differ from the loop's other rounds is refused unless
    ``allow_size_change``. Alert rules are the defaults overlaid with
    ``rules_path`` (else the home's rules, see :mod:`monitor.config`). Returns
    the CLI's JSON contract: ``loop, round, metrics, derivatives, alerts,
    risk, transitions, status`` (see docs/architecture.md).

    ``modality`` (detected from the round file when None): ``embedding``
    (``.npy`` rows); ``text`` (the text metrics, then the embedding suite on
    ``featurizer`` embeddings, and an Evidently report on descriptors and
    embeddings); ``tabular`` (the tabular metrics, then the embedding suite on
    the encoded rows, and an Evidently ``DataDriftPreset``); ``reasoning`` (a ``.jsonl`` of records: the answer
    metrics against the reference's gold answers, then the embedding suite on the featurized rationales and
    Evidently's text report on them; no pool); ``agent`` (a ``.jsonl`` of episodes: the episode metrics of :mod:`metrics_core.agents`
    against the reference's episodes, then the embedding suite on the featurized action sequences and Evidently's
    text report on them). Evidently's HTML
    report is staged as ``reports/<loop>/round_<N>.html`` in the home and kept in
    the round's MLflow run once MLflow confirmed it (one copy).
    With ``pool_path`` (real data held out from the reference, same format) the
    loop's null is built from it once (``null_rounds`` pseudo-rounds at this
    round's size, audited by the same pipeline; resumed if interrupted, rebuilt
    when the reference, pool, options or metrics change), and the alarm is the
    sequential one with its false-alarm guarantee (:mod:`monitor.engine.sequential`).
    ``allow_reference_change`` is for ``calibrate LOOP`` moving a loop's rounds
    to the reference part of a recorded split, one round after the other;
    ``pool_source`` is ``"split"`` when the pool is the held-out part of such a split.
    With ``pushgateway`` (a URL, e.g. ``http://127.0.0.1:9091``) the loop's
    series are pushed there after the audit; a failed push is logged, not
    fatal (the store holds everything, and the next push sends it all).
    Without ``publish`` the flow returns once the round is stored and evaluated, and the caller runs
    :func:`publish_round` next (the ``serve`` daemon answering the CLI, :mod:`flows.audit_service`).
    """
    logger = get_run_logger()
    started = time.perf_counter()
    options = options or AuditOptions()
    seed = options.seed
    text_field, featurizer = options.text_field, options.featurizer
    try:
        check_loop_name(loop)
        check_round_number(round_number)
        settings = load_settings(home, rules_path)
        load_rules(settings.rules_path)  # a bad rules file fails before any work
        modality = inputs.detect_modality(data_path, options.modality, text_field, round_number=round_number,
                                          question_field=options.question_field, answer_field=options.answer_field)
        modalities.check_featurizer(featurizer)
        kind = modalities.MODALITY[modality]
        reference = load_input(modality, reference_path, "reference", None, options)
        round_ = load_input(modality, data_path, "round", round_number, options, reference)
        kind.check_pair(reference, round_, options, round_number)
        if pool_path is not None:
            kind.check_pool(pool_path)
        n_reference, n_round = reference.n_used, round_.n_used
        check_comparable(
            settings.store_url, loop, round_number, n_reference, n_round, reference.fingerprint,
            options.allow_size_change, allow_reference_change,
        )
        report_path = str(tracking.staged_report(settings.home / "reports", loop, round_number))
        pipeline = prepare_reference(modality, reference.data, options.pipeline_options(),
                                     str(settings.home / "cache"), reference.fingerprint,
                                     f"{reference.path} (reference)")
        # The modality's own metrics, the Evidently report and the embedding groups are independent tasks, run in
        # parallel.
        modality_future = drift_future = None
        if kind.has_own_metrics:
            modality_future = compute_modality_metrics.with_options(result_storage=settings.results_dir).submit(
                modality, reference.fingerprint, round_.fingerprint, options.cache_key(),
                metrics_core.METRICS_VERSION, pipeline, round_.data, f"{round_.path} (round, round {round_number})")
        ref_data, round_data, _ = embed_round(pipeline, round_.data)
        if kind.reports_drift:
            drift_future = drift_report.submit(modality, seed, reference.data, round_.data, ref_data, round_data,
                                               pipeline.tabular_columns)
        version = metrics_core.METRICS_VERSION
        profile = reference_profile(pipeline)
        group_task = compute_metric_group.with_options(result_storage=settings.results_dir)
        futures = [
            group_task.submit(group, pipeline.reference_key, round_.fingerprint, round_data.shape[0], version,
                              pipeline, profile, round_data)
            for group in metrics_core.SUITE_GROUPS
        ]
        metrics = {}
        for future in futures:
            metrics.update(future.result())
        metrics = {name: metrics[name] for name in metrics_core.metric_names("embedding")}
        modality_metrics = modality_future.result() if modality_future is not None else {}
        if drift_future is not None:
            drift, html = drift_future.result()
            save_report(report_path, html)
            logger.info("Evidently report %s: drift share %.3f", report_path, drift)
            modality_metrics["evidently_drift_share"] = Estimate(drift).as_dict()
        # Per-record findings (a JSON round's first schema violation per failing record) beside the round's plots.
        details_dir = settings.home / "reports" / loop / f"round_{round_number}"
        for name, content in kind.round_details(pipeline, round_.data).items():
            details_dir.mkdir(parents=True, exist_ok=True)
            tmp = details_dir / f".{name}.tmp"
            tmp.write_bytes(content)
            tmp.replace(details_dir / name)
            logger.info("%s: %s", round_.path, f"per-record findings in {details_dir / name}")
        # Modality metrics first; a metric undefined this round (NaN, e.g. a round without tokens) is not stored.
        metrics = {name: m for name, m in {**modality_metrics, **metrics}.items() if finite_or_none(m["value"]) is not None}
        record = RoundRecord(
            loop=loop,
            round=round_number,
            metrics={name: Estimate(**m) for name, m in metrics.items()},
            n_reference=n_reference,
            n_round=n_round,
            fingerprint=round_.fingerprint,
            reference_fingerprint=reference.fingerprint,
            metrics_version=version,
        )
        if pool_path is not None:  # before the round is stored: a pool that cannot make a null stores nothing
            ensure_null(settings.store_url, loop, pipeline, pool_path, modality, null_mod.unit_count(round_.data),
                        reference.fingerprint, options.null_options(), options.null_rounds, seed, text_field,
                        pool_source, round_.data)
        before = _snapshot(settings.store_url, loop, round_number)
        try:
            verdict = _store_and_publish(settings, record, loop, round_number, data_path, reference_path,
                                         options.record(modality, pool_path, pool_source),
                                         report_path if kind.reports_drift else None, publish)
        except BaseException:
            _restore(settings, loop, round_number, before)  # a failed audit stores nothing
            raise
        if pushgateway and publish:
            _push(settings, loop, pushgateway)
    except CollapseMonitorError:
        raise  # refused input: nothing was audited (serve --watch counts refused files)
    except Exception:
        _count_audit(loop, round_number, home, rules_path, "failed", time.perf_counter() - started)
        raise
    _count_audit(loop, round_number, home, rules_path, "audited", time.perf_counter() - started)
    logger.info("loop %s round %d audited: %s", loop, round_number, verdict["status"])
    return {
        "loop": loop,
        "round": round_number,
        "metrics": {name: {key: m[key] for key in ("value", "ci_low", "ci_high", "std_error")} for name, m in metrics.items()},
        **verdict,
    }


def _snapshot(store_url: str, loop: str, round_number: int) -> dict:
    with TrajectoryStore(store_url) as store:
        return store.round_snapshot(loop, round_number)


def _store_and_publish(settings, record: RoundRecord, loop: str, round_number: int, data_path: str,
                       reference_path: str, options: dict, report_path: str | None, publish: bool = True) -> dict:
    """Store the round, its source and the loop's evaluation, then (``publish``) its artifacts and MLflow; the
    verdict."""
    persist(settings.store_url, record)
    record_source(settings.store_url, loop, round_number, str(Path(data_path).resolve()),
                  str(Path(reference_path).resolve()), options)
    rules_path = None if settings.rules_path is None else str(settings.rules_path)
    verdict = evaluate(settings.store_url, loop, round_number, rules_path)
    if publish:
        _publish(settings, loop, round_number, verdict["alerts"], report_path)
    return verdict


def _publish(settings, loop: str, round_number: int, alerts: list[dict], report_path: str | None) -> None:
    artifacts = write_round_artifacts(
        settings.store_url, loop, round_number, str(settings.home / "reports" / loop / f"round_{round_number}"), alerts)
    publish_mlflow(settings.store_url, settings.mlflow_uri, str(settings.artifact_root), loop, round_number,
                   [*artifacts, report_path] if report_path is not None else artifacts, str(settings.home / "reports"))


def _push(settings, loop: str, pushgateway: str) -> None:
    try:
        push_to_gateway(settings.store_url, loop, pushgateway)
    except OSError as exc:  # retried first; the audit itself succeeded
        get_run_logger().warning("push to %s failed: %s", pushgateway, exc)


@flow(name="publish-round", log_prints=False)
def publish_round(loop: str, round_number: int, alerts: list[dict], home: str | None = None,
                  rules_path: str | None = None, pushgateway: str | None = None) -> dict:
    """The stored round's plots and alert explanations (``alerts``: its verdict's, as ``audit_round`` returned
    them), its MLflow run (with any round MLflow has not confirmed) and the Pushgateway push: what
    ``audit_round(..., publish=False)`` left for afterwards."""
    settings = load_settings(home, rules_path)
    staged = tracking.staged_report(settings.home / "reports", loop, round_number)
    _publish(settings, loop, round_number, alerts, str(staged) if staged.is_file() else None)
    if pushgateway:
        _push(settings, loop, pushgateway)
    return {"loop": loop, "round": round_number}


def _restore(settings, loop: str, round_number: int, before: dict) -> None:
    """Put the round back as it was before this audit, and the loop's evaluation with it (best effort: logged)."""
    try:
        with TrajectoryStore(settings.store_url) as store:
            store.restore_round(loop, round_number, before)
            if len(store.trajectory(loop)):
                evaluation.evaluate_and_store(store, loop, load_rules(settings.rules_path))
    except Exception as exc:  # noqa: BLE001 - e.g. the disk is still full: the next audit of the round repairs it
        get_run_logger().error("loop %s round %d: the failed audit's rows could not be removed: %s", loop,
                               round_number, exc)


def _count_audit(loop, round_number, home, rules_path, outcome: str, seconds: float) -> None:
    """Count the audit in the store, where the exporter of any process reads it; never fails the audit."""
    try:
        if not isinstance(loop, str) or not isinstance(round_number, int):
            return
        with TrajectoryStore(load_settings(home, rules_path).store_url) as store:
            store.record_audit(loop, round_number, outcome, seconds)
    except Exception as exc:  # noqa: BLE001 - a dead store already failed the audit; counting is best effort
        get_run_logger().warning("could not count the audit of loop %s round %s: %s", loop, round_number, exc)
