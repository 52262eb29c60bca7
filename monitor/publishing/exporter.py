"""Prometheus exporter: a custom Collector that reads the store at scrape time.

Nothing is cached between scrapes, so a restarted exporter serves exactly
what is stored and series of deleted loops disappear. The daemon's own work
(audits run in this process) is counted by module-level metrics.

Series (labels are bounded: ``loop``, ``metric``, ``family``, ``modality``, ``signal``):

* ``collapse_up`` 1 when the store was readable at this scrape, else 0
* ``collapse_scrape_duration_seconds`` seconds the last scrape took to read the store
  (absent when it was unreadable)
* ``collapse_build_info{version,metrics_version,python}`` 1: what is serving
* ``collapse_metric_value{loop,metric,family,modality}`` latest value
* ``collapse_metric_ci_low`` / ``collapse_metric_ci_high`` its interval
* ``collapse_metric_delta`` first difference at that round
* ``collapse_metric_slope`` Theil-Sen slope over the rule's window, per round
* ``collapse_metric_zscore`` that slope over its standard error, negative = bad direction
* ``collapse_metric_cusum`` CUSUM of standardised bad-direction changes
* ``collapse_rounds_to_threshold`` forecast rounds until the threshold (absent: none)
* ``collapse_alert_state{loop,metric,family,modality}`` 0 ok, 1 warning, 2 critical
* ``collapse_signal_state{loop,signal}`` the ``collapse`` and ``drift`` alarm signals, 0 ok, 1 warning, 2 critical
* ``collapse_signal_evidence_ratio{loop,signal}`` strongest chart's log e-value over its threshold (1 = alarm)
* ``collapse_loop_arl0_rounds{loop}`` the guaranteed average rounds to a false alarm (loops with a null)
* ``collapse_loop_risk{loop}`` collapse risk in [0, 1] at the loop's latest round
* ``collapse_family_risk{loop,family}`` each family's part of it
* ``collapse_round{loop}`` highest audited round
* ``collapse_last_audit_timestamp_seconds{loop}`` Unix time of the last audit
* ``collapse_watch_pending_files{loop}`` / ``collapse_watch_audited_files{loop}`` /
  ``collapse_watch_refused_files{loop}`` round files seen by ``serve --watch``
  by state (refused: bad input, not retried until the file changes)
* ``collapse_audits_total{loop}``, ``collapse_audit_failures_total{loop}``,
  ``collapse_audit_duration_seconds{loop}`` (histogram) every audit of the loop, by any process
  (CLI, API, the watch flow's runs), read from the store
"""

from __future__ import annotations

import logging
import math
import platform
import threading
import time

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from metrics_core.registry import FAMILIES
from metrics_core.suite import METRICS_VERSION
from monitor import __version__
from metrics_core.registry import REGISTRY as METRIC_REGISTRY
from monitor.engine.alerts import SEVERITY_LEVEL
from monitor.store import AUDIT_DURATION_BUCKETS, TrajectoryStore

log = logging.getLogger(__name__)


def _labels(metric: str) -> tuple[str, str]:
    spec = METRIC_REGISTRY.get(metric)
    return (spec.family, spec.modality) if spec else ("unknown", "unknown")


class StoreCollector(Collector):
    """The store's series at collection time; ``loops`` limits them to those loops (a Pushgateway push)."""

    def __init__(self, store: TrajectoryStore, loops: set[str] | None = None):
        self.store = store
        self.loops = loops

    def _only(self, frame):
        return frame if self.loops is None else frame[frame["loop"].isin(self.loops)]

    def describe(self):
        return []  # series depend on the store; collected only at scrape time

    def collect(self):
        info = GaugeMetricFamily("collapse_build_info", "collapse-monitor build serving these series.",
                                 labels=["version", "metrics_version", "python"])
        info.add_metric([__version__, METRICS_VERSION, platform.python_version()], 1.0)
        yield info
        up = GaugeMetricFamily("collapse_up", "1 if the trajectory store was readable at this scrape.")
        started = time.perf_counter()
        try:
            latest = self._only(self.store.latest_values())
            loops = self._only(self.store.loop_summaries())
            alerts = self._only(self.store.alert_states())
            risk = self._only(self.store.risk(latest_only=True))
            watched = self._only(self.store.watched_files())
            signals = self._only(self.store.signals())
            audit_rows = self._only(self.store.audit_counts())
        except Exception:  # noqa: BLE001 - any store failure is reported as collapse_up 0
            log.exception("store unreadable at scrape time")
            up.add_metric([], 0.0)
            yield up
            return
        read_s = time.perf_counter() - started
        up.add_metric([], 1.0)
        yield up
        duration = GaugeMetricFamily("collapse_scrape_duration_seconds",
                                     "Seconds the last scrape took to read the store.")
        duration.add_metric([], read_s)
        yield duration

        metric_labels = ["loop", "metric", "family", "modality"]
        families = {
            "value": GaugeMetricFamily("collapse_metric_value", "Latest audited value of a metric.", labels=metric_labels),
            "ci_low": GaugeMetricFamily("collapse_metric_ci_low", "Lower confidence bound of the latest value.", labels=metric_labels),
            "ci_high": GaugeMetricFamily("collapse_metric_ci_high", "Upper confidence bound of the latest value.", labels=metric_labels),
            "delta": GaugeMetricFamily("collapse_metric_delta", "First difference of a metric at its latest round.", labels=metric_labels),
            "slope": GaugeMetricFamily("collapse_metric_slope", "Theil-Sen slope per round over the rule's window.", labels=metric_labels),
            "zscore": GaugeMetricFamily(
                "collapse_metric_zscore", "Slope over its standard error; negative is the bad direction.", labels=metric_labels),
            "cusum": GaugeMetricFamily(
                "collapse_metric_cusum", "CUSUM of standardised per-round changes in the bad direction.", labels=metric_labels),
            "rounds_to_threshold": GaugeMetricFamily(
                "collapse_rounds_to_threshold", "Forecast rounds until the metric crosses its threshold.", labels=metric_labels),
        }
        for row in latest.itertuples(index=False):
            labels = [row.loop, row.metric, *_labels(row.metric)]
            for column, fam in families.items():
                v = getattr(row, column)
                if v is not None and not (isinstance(v, float) and math.isnan(v)):
                    fam.add_metric(labels, float(v))
        yield from families.values()

        state = GaugeMetricFamily(
            "collapse_alert_state", "Alert state per loop and metric: 0 ok, 1 warning, 2 critical.", labels=metric_labels
        )
        for row in alerts.itertuples(index=False):
            state.add_metric([row.loop, row.metric, *_labels(row.metric)], float(SEVERITY_LEVEL[row.severity]))
        yield state

        loop_risk = GaugeMetricFamily("collapse_loop_risk", "Collapse risk of a loop at its latest round, 0 to 1.",
                                      labels=["loop"])
        family_risk = GaugeMetricFamily("collapse_family_risk", "Collapse risk per metric family at the latest round.",
                                        labels=["loop", "family"])
        for row in risk.to_dict("records"):
            loop_risk.add_metric([row["loop"]], float(row["risk"]))
            for family in FAMILIES:
                family_risk.add_metric([row["loop"], family], float(row[f"{family}_risk"]))
        yield loop_risk
        yield family_risk

        signal_state = GaugeMetricFamily(
            "collapse_signal_state", "Alarm signal state per loop: 0 ok, 1 warning, 2 critical.", labels=["loop", "signal"])
        evidence = GaugeMetricFamily(
            "collapse_signal_evidence_ratio",
            "Strongest chart's log e-value over its warning threshold (1 = alarm), per loop and signal.",
            labels=["loop", "signal"])
        arl0 = GaugeMetricFamily(
            "collapse_loop_arl0_rounds", "Guaranteed average rounds to a false alarm under no feedback (loops with a null).",
            labels=["loop"])
        for row in signals.to_dict("records"):
            signal_state.add_metric([row["loop"], row["signal"]], float(SEVERITY_LEVEL[row["severity"]]))
            ev, thr = row["log_evidence"], row["log_threshold"]
            if ev is not None and thr and not math.isnan(ev) and not math.isnan(thr):
                evidence.add_metric([row["loop"], row["signal"]], float(ev) / float(thr))
            if row["signal"] == "collapse" and row["arl0"] is not None and not math.isnan(row["arl0"]):
                arl0.add_metric([row["loop"]], float(row["arl0"]))
        yield signal_state
        yield evidence
        yield arl0

        rnd = GaugeMetricFamily("collapse_round", "Highest audited round of a loop.", labels=["loop"])
        ts = GaugeMetricFamily(
            "collapse_last_audit_timestamp_seconds", "Unix time of the loop's last audit.", labels=["loop"]
        )
        for row in loops.itertuples(index=False):
            rnd.add_metric([row.loop], float(row.round))
            ts.add_metric([row.loop], float(row.audited_at))
        yield rnd
        yield ts

        yield from _audit_families(audit_rows)

        counts = watched.groupby(["loop", "status"]).size() if len(watched) else {}
        for status, name, text in (("pending", "pending", "waiting to be complete or retried"),
                                   ("audited", "audited", "audited in their current version"),
                                   ("failed", "refused", "refused as bad input (retried when changed)")):
            family = GaugeMetricFamily(f"collapse_watch_{name}_files", f"Watched round files {text}.",
                                       labels=["loop"])
            for loop in sorted(set(watched["loop"])) if len(watched) else ():
                family.add_metric([loop], float(counts.get((loop, status), 0)))
            yield family


def _audit_families(rows):
    """Audit counters and the duration histogram per loop, from the store's audit log (``audit_counts`` rows)."""
    audits = CounterMetricFamily("collapse_audits", "Round audits completed, by any process.", labels=["loop"])
    failures = CounterMetricFamily("collapse_audit_failures", "Round audits that failed, by any process.",
                                   labels=["loop"])
    duration = HistogramMetricFamily("collapse_audit_duration_seconds", "Wall time of one completed round audit.",
                                     labels=["loop"])
    for loop in sorted(set(rows["loop"])):
        mine = rows[rows["loop"] == loop].set_index("outcome")
        done = mine.loc["audited"] if "audited" in mine.index else None
        audits.add_metric([loop], float(done["count"]) if done is not None else 0.0)
        failures.add_metric([loop], float(mine.loc["failed", "count"]) if "failed" in mine.index else 0.0)
        if done is not None:
            cumulative = [(str(float(b)), float(done[f"le_{i}"])) for i, b in enumerate(AUDIT_DURATION_BUCKETS)]
            duration.add_metric([loop], [*cumulative, ("+Inf", float(done["count"]))], float(done["seconds"]))
    yield audits
    yield failures
    yield duration


def build_registry(store: TrajectoryStore) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    return registry


def push_loop(store: TrajectoryStore, loop: str, gateway: str, job: str = "collapse-monitor",
              timeout: float = 10.0) -> None:
    """Push one loop's series to a Prometheus Pushgateway, grouped by ``job`` and ``loop``.

    For batch-only users without a scraped ``serve``: each push replaces the
    loop's group, so the gateway holds the loop's latest state.
    """
    from prometheus_client import push_to_gateway

    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, loops={loop}))
    push_to_gateway(gateway, job=job, registry=registry, grouping_key={"loop": loop}, timeout=timeout)


class Exporter:
    """The HTTP endpoint; ``stop()`` shuts it down and frees the port."""

    def __init__(self, store: TrajectoryStore, host: str = "127.0.0.1", port: int = 9464):
        self.registry = build_registry(store)
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.host = host
        self.port = self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_until(stop: threading.Event, store: TrajectoryStore, host: str, port: int) -> Exporter:
    exporter = Exporter(store, host, port)
    try:
        stop.wait()
    finally:
        exporter.stop()
    return exporter
