"""The shipped rules and dashboards against a real Prometheus, a real exporter and a real Alertmanager.

One Prometheus is started on loopback (temporary storage, 1 s scrape and rule
intervals) with the shipped ``dashboards/prometheus/collapse.rules.yml``,
copied byte for byte, and a scrape config derived from
``docker/prometheus.yml`` (same job name). It scrapes three targets of that
job: a real ``monitor.publishing.exporter.Exporter`` over a SQLite store of real
``RoundRecord``s evaluated by the engine, a second exporter whose store is
unreadable, and a port where nothing listens.

The loops: ``collapsing`` (healthy for 10 rounds; its 6 collapsing rounds are
fed while Prometheus is already scraping), ``drifting`` (a slow diversity
decline: warning, not critical), ``healthy``, and ``stale`` (healthy, last
audited 8 hours ago). Every round is in the store's audit log, and the
collapsing loop has round files seen by ``serve --watch`` in each state
(pending, refused, audited), so every dashboard panel has data.

Pending, then firing, with the real rules. With the shipped `for:` (5 to 30
minutes) the collapse alerts go *pending* and stay pending: that is checked
with the shipped file. To see the same alerts turn *firing* within a test,
the rule file is then rewritten at the same path with only the `for:`
durations shortened to 1 s (the test checks that nothing else differs) and
Prometheus is reloaded. A reload carries the state of each alert over to the
rule of the same group, name and labels, so the very alert instances that
were pending fire, with their original ``activeAt``. The `for:` durations
themselves are checked in virtual time by ``promtool test rules``
(tests/test_dashboards.py).
"""

from __future__ import annotations

import copy
import json
import logging
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml

from metrics_core.bootstrap import Estimate
from monitor.engine.evaluation import evaluate_and_store
from monitor.publishing.exporter import Exporter
from monitor.engine.rules import load_rules
from monitor.store import RoundRecord, TrajectoryStore

ROOT = Path(__file__).resolve().parents[2]
RULES_FILE = ROOT / "dashboards" / "prometheus" / "collapse.rules.yml"
SCRAPE_CONFIG = ROOT / "docker" / "prometheus.yml"
ALERTMANAGER_CONFIG = ROOT / "dashboards" / "alertmanager" / "alertmanager.yml"
DASHBOARDS = sorted((ROOT / "dashboards" / "grafana").glob("*.json"))
RUNBOOK_BASE = "https://github.com/collapse-monitor/collapse-monitor/blob/main/docs/runbook.md#"

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None or ALERTMANAGER is None,
    reason="needs the prometheus and alertmanager binaries (Debian packages prometheus and "
    "prometheus-alertmanager; scripts/test.sh installs them where apt-get is available)",
)

WAIT_S = 90  # an upper bound for each wait, never a timing assertion

# -- the loops ---------------------------------------------------------------------------

N_ROUNDS = 16
COLLAPSE_AT = 10


def _wiggle(n: int) -> np.ndarray:
    return np.tile([0.002, -0.002], n)[:n]


def _flat(base: float) -> np.ndarray:
    return base + _wiggle(N_ROUNDS)


def _step(base: float, drop: float) -> np.ndarray:
    return np.r_[np.full(COLLAPSE_AT, base), np.full(N_ROUNDS - COLLAPSE_AT, base - drop)] + _wiggle(N_ROUNDS)


def _linear(base: float, per_round: float) -> np.ndarray:
    return base - per_round * np.arange(N_ROUNDS) + _wiggle(N_ROUNDS)


LOOPS = {
    # coverage (coverage family), vendi_score (diversity; drift signal) and log_volume_ratio (diversity;
    # collapse signal) drop at round 10: critical on both signals.
    "collapsing": {"coverage": _step(0.9, 0.3), "recall": _step(0.8, 0.3), "vendi_score": _step(0.9, 0.3),
                   "log_volume_ratio": _step(0.0, 0.3), "precision": _flat(0.8)},
    # vendi_score declines 0.6 standard errors a round: a significant slope (warning), loss still below critical.
    # It is direction-based, so it feeds the drift signal: a drift, not a collapse.
    "drifting": {"coverage": _flat(0.9), "recall": _flat(0.8), "vendi_score": _linear(0.9, 0.006),
                 "precision": _flat(0.8)},
    "healthy": {"coverage": _flat(0.9), "recall": _flat(0.8), "vendi_score": _flat(0.9), "precision": _flat(0.8)},
    "stale": {"coverage": _flat(0.9), "recall": _flat(0.8), "vendi_score": _flat(0.9), "precision": _flat(0.8)},
}
STALE_AGE_S = 8 * 3600
SE = 0.01
RULES = load_rules()


def _record(store: TrajectoryStore, loop: str, rnd: int, audited_at: float) -> None:
    metrics = {m: Estimate(float(v[rnd]), float(v[rnd]) - 2 * SE, float(v[rnd]) + 2 * SE, SE)
               for m, v in LOOPS[loop].items()}
    store.record_round(RoundRecord(loop=loop, round=rnd, metrics=metrics, n_reference=500, n_round=500,
                                   fingerprint=f"{loop}-{rnd}".ljust(64, "0"), reference_fingerprint="r" * 64,
                                   metrics_version="2", audited_at=audited_at))
    store.record_audit(loop, rnd, "audited", 0.5)  # the audit counters and histogram read the store's audit log


# Round files of the collapsing loop seen by `serve --watch`, by state (refused: status "failed").
WATCHED = {"audited": 2, "failed": 1, "pending": 1}


def _watch(store: TrajectoryStore, loop: str) -> None:
    n = 0
    for status, count in WATCHED.items():
        for _ in range(count):
            url = f"file:///watch/{loop}/round-{n}.npy"
            store.observe_file(url, loop, n, 1000, 1.0)
            store.mark_file(url, status, None, 1000, 1.0)
            n += 1


# -- processes and HTTP ------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, **params) -> dict:
    if params:
        url += "?" + urllib.parse.urlencode(params, doseq=True)
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _api(base: str, path: str, **params):
    body = _get(base + path, **params)
    assert body["status"] == "success", body
    return body["data"]


def _wait(what: str, probe, timeout: float = WAIT_S):
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (OSError, ValueError) as exc:  # not up yet
            last = exc
        else:
            if last:
                return last
        time.sleep(0.25)
    raise AssertionError(f"gave up waiting for {what}; last: {last!r}")


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    out = log.open("wb")
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _ready(base: str, proc: subprocess.Popen, log: Path) -> None:
    def probe():
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with urllib.request.urlopen(base + "/-/ready", timeout=2) as r:
            return r.status == 200

    _wait(f"{base}/-/ready", probe)


def _alerts(prom: str) -> list[dict]:
    return _api(prom, "/api/v1/alerts")["alerts"]


def _key(alert: dict) -> tuple[str, str]:
    labels = alert["labels"]
    return labels["alertname"], labels.get("loop") or labels.get("instance") or labels.get("job")


def _shortened(rules_doc: dict, duration: str = "1s") -> dict:
    doc = copy.deepcopy(rules_doc)
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = duration
    return doc


# -- the stack ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Store, exporters, Alertmanager and Prometheus; the collapse not fed yet."""
    tmp = tmp_path_factory.mktemp("prometheus-integration")
    now = time.time()
    store = TrajectoryStore(f"sqlite:///{tmp / 'store.db'}")
    for loop in LOOPS:
        rounds = range(COLLAPSE_AT) if loop == "collapsing" else range(N_ROUNDS)
        offset = STALE_AGE_S if loop == "stale" else 0
        for r in rounds:
            _record(store, loop, r, now - offset - (N_ROUNDS - r) * 60)
        evaluate_and_store(store, loop, RULES)
    _watch(store, "collapsing")
    broken = TrajectoryStore(f"sqlite:///{tmp / 'broken.db'}")
    with broken.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE metric_values")

    # The unreadable store logs a traceback at every scrape (once a second here).
    exporter_log = logging.getLogger("monitor.publishing.exporter")
    exporter_log_disabled, exporter_log.disabled = exporter_log.disabled, True
    procs: list[subprocess.Popen] = []
    exporters = [Exporter(store, "127.0.0.1", 0), Exporter(broken, "127.0.0.1", 0)]
    try:
        good, unreadable = (f"127.0.0.1:{e.port}" for e in exporters)
        dead = f"127.0.0.1:{_free_port()}"

        am_port = _free_port()
        am = f"http://127.0.0.1:{am_port}"
        am_log = tmp / "alertmanager.log"
        procs.append(_start([ALERTMANAGER, f"--config.file={ALERTMANAGER_CONFIG}", f"--storage.path={tmp / 'am'}",
                             f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
                             "--log.level=warn"], am_log))
        _ready(am, procs[-1], am_log)

        # The shipped rules, byte for byte, at a path the test may later rewrite.
        rules_copy = tmp / "rules" / "collapse.rules.yml"
        rules_copy.parent.mkdir()
        shutil.copyfile(RULES_FILE, rules_copy)
        config = yaml.safe_load(SCRAPE_CONFIG.read_text())
        (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "collapse-monitor"]
        job["static_configs"] = [{"targets": [good, unreadable, dead]}]
        config["scrape_configs"] = [job]
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"}
        config["rule_files"] = [str(rules_copy)]
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]}
        config_path = tmp / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))

        prom_port = _free_port()
        prom = f"http://127.0.0.1:{prom_port}"
        prom_log = tmp / "prometheus.log"
        procs.append(_start([PROMETHEUS, f"--config.file={config_path}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}", "--web.enable-lifecycle",
                             # Resend firing alerts every second (default 1m): alerts that fire while the
                             # Alertmanager is being rediscovered after the reload are dropped, not queued.
                             "--rules.alert.resend-delay=1s", "--log.level=warn"], prom_log))
        _ready(prom, procs[-1], prom_log)

        # Every target scraped once and every rule evaluated once.
        def scraped():
            targets = _api(prom, "/api/v1/targets")["activeTargets"]
            health = {t["labels"]["instance"]: t["health"] for t in targets}
            return health if health == {good: "up", unreadable: "up", dead: "down"} else None

        _wait("the first scrape of every target", scraped)
        _wait("an evaluation of every rule", lambda: all(
            r["lastEvaluation"] > "1970-01-02" for g in _api(prom, "/api/v1/rules")["groups"] for r in g["rules"]))
        yield {"prom": prom, "am": am, "store": store, "good": good, "unreadable": unreadable, "dead": dead,
               "rules_copy": rules_copy, "tmp": tmp}
    finally:
        for p in reversed(procs):
            _stop(p)
        for e in exporters:
            e.stop()
        store.close()
        broken.close()
        exporter_log.disabled = exporter_log_disabled


@pytest.fixture(scope="module")
def collapse(stack):
    """Feed the collapsing rounds; follow the collapse alerts from pending (shipped rules) to firing."""
    prom, store = stack["prom"], stack["store"]
    before = {_key(a) for a in _alerts(prom)}
    for r in range(COLLAPSE_AT, N_ROUNDS):
        _record(store, "collapsing", r, time.time())
        evaluate_and_store(store, "collapsing", RULES)

    collapse_keys = {("CollapseWarning", "collapsing"), ("CollapseCritical", "collapsing")}

    def pending():
        alerts = {_key(a): a for a in _alerts(prom)}
        return {k: alerts[k] for k in collapse_keys} if collapse_keys <= alerts.keys() else None

    pending_alerts = _wait("the collapse alerts to go pending", pending)

    # Three more evaluations of every rule group with the shipped `for:`: still pending.
    def evaluated():
        return {g["name"]: g["lastEvaluation"] for g in _api(prom, "/api/v1/rules")["groups"]}

    def next_evaluation():
        seen = evaluated()
        _wait("the next evaluation of every rule group",
              lambda: all(t != seen.get(name) for name, t in evaluated().items()))

    for _ in range(3):
        next_evaluation()
    still = {_key(a): a for a in _alerts(prom)}

    # Shorten every `for:` to 1 s at the same path, reload: the pending alerts fire.
    shipped = yaml.safe_load(RULES_FILE.read_text())
    stack["rules_copy"].write_text(yaml.safe_dump(_shortened(shipped)))
    with urllib.request.urlopen(urllib.request.Request(prom + "/-/reload", method="POST"), timeout=10) as r:
        assert r.status == 200

    expected = _expected_firing(stack)

    def firing():
        alerts = {_key(a) for a in _alerts(prom) if a["state"] == "firing"}
        return alerts if expected <= alerts else None

    _wait("every expected alert to fire after the reload", firing)
    # One more evaluation of every group, so that nothing else is still on its way to firing.
    next_evaluation()
    return {"before": before, "pending": pending_alerts, "still": still,
            "firing": {_key(a): a for a in _alerts(prom) if a["state"] == "firing"},
            "expected": expected, "shipped": shipped}


EXPECTED_FIRING = {
    ("CollapseWarning", "collapsing"), ("CollapseDriftDetected", "drifting"), ("CollapseDriftDetected", "collapsing"),
    ("CollapseCritical", "collapsing"),
    ("CollapseCoverageDeclining", "collapsing"),
    ("CollapseDiversityDeclining", "collapsing"), ("CollapseDiversityDeclining", "drifting"),
    ("CollapseRiskHigh", "collapsing"), ("CollapseRiskHigh", "drifting"),
    ("CollapseAuditStale", "stale"),
}


def _expected_firing(stack) -> set[tuple[str, str]]:
    """Every alert of the shipped rules, each for its case; the exporter alerts are keyed by instance."""
    return EXPECTED_FIRING | {("CollapseExporterDown", stack["dead"]), ("CollapseStoreUnreadable", stack["unreadable"])}


# -- tests -------------------------------------------------------------------------------

def test_shipped_rules_load_and_evaluate_without_errors(stack):
    groups = _api(stack["prom"], "/api/v1/rules")["groups"]
    shipped = yaml.safe_load(RULES_FILE.read_text())
    assert {g["name"]: [r["name"] for r in g["rules"]] for g in groups} == {
        g["name"]: [r.get("alert") or r.get("record") for r in g["rules"]] for g in shipped["groups"]}
    for g in groups:
        for r in g["rules"]:
            assert r["health"] == "ok" and not r.get("lastError"), (r["name"], r.get("lastError"))


def test_collapse_warning_and_critical_go_pending_then_firing(stack, collapse):
    # Before the collapsing rounds were fed, no alert named that loop.
    assert not [k for k in collapse["before"] if k[1] == "collapsing"]
    # With the shipped rules: pending, and still pending three evaluations later (for: 10m and 5m).
    for key, alert in collapse["pending"].items():
        assert alert["state"] == "pending", key
        assert collapse["still"][key]["state"] == "pending", key
        assert collapse["still"][key]["activeAt"] == alert["activeAt"], key
    # With the shipped `for:` nothing fires within seconds: every alert of every case is pending.
    assert set(collapse["still"]) == collapse["expected"]
    assert {a["state"] for a in collapse["still"].values()} == {"pending"}
    # The same alert instances fire once `for:` is shortened: their activeAt is kept.
    for key, alert in collapse["pending"].items():
        fired = collapse["firing"][key]
        assert fired["activeAt"] == alert["activeAt"], key
        assert fired["labels"] == alert["labels"]
    warning = collapse["firing"][("CollapseWarning", "collapsing")]
    assert warning["labels"] == {"alertname": "CollapseWarning", "loop": "collapsing", "severity": "warning"}
    assert float(warning["value"]) == 2.0  # worst state: critical
    assert warning["annotations"]["summary"] == "Loop collapsing: collapse warning"
    assert warning["annotations"]["runbook_url"] == RUNBOOK_BASE + "collapsewarning"
    critical = collapse["firing"][("CollapseCritical", "collapsing")]
    assert critical["labels"]["severity"] == "critical"
    assert critical["annotations"]["runbook_url"] == RUNBOOK_BASE + "collapsecritical"
    assert float(collapse["firing"][("CollapseDriftDetected", "drifting")]["value"]) == 1.0
    assert ("CollapseWarning", "drifting") not in collapse["firing"]  # a drift is not paged as a collapse


def test_the_reloaded_rules_differ_from_the_shipped_ones_only_in_for(stack, collapse):
    shipped = collapse["shipped"]
    reloaded = yaml.safe_load(stack["rules_copy"].read_text())
    assert reloaded != shipped
    assert _shortened(reloaded, None) == _shortened(shipped, None)
    durations = [r["for"] for g in reloaded["groups"] for r in g["rules"] if "alert" in r]
    assert durations and set(durations) == {"1s"}


def test_every_alert_fires_for_its_case_and_none_for_the_healthy_loop(stack, collapse):
    expected = collapse["expected"]
    assert set(collapse["firing"]) == expected
    shipped_alerts = {r["alert"] for g in collapse["shipped"]["groups"] for r in g["rules"] if "alert" in r}
    assert {name for name, _ in expected} == shipped_alerts  # every rule has its firing case here
    for alert in collapse["firing"].values():
        labels = alert["labels"]
        assert labels["severity"] in {"warning", "critical"}
        assert labels.get("loop") != "healthy"
        assert "round" not in labels
        assert alert["annotations"]["runbook_url"] == RUNBOOK_BASE + labels["alertname"].lower()
    risk = collapse["firing"][("CollapseRiskHigh", "drifting")]
    assert float(risk["value"]) > 0.75
    stale = collapse["firing"][("CollapseAuditStale", "stale")]
    assert STALE_AGE_S <= float(stale["value"]) < STALE_AGE_S + 3600
    assert collapse["firing"][("CollapseCoverageDeclining", "collapsing")]["labels"]["family"] == "coverage"


def test_alertmanager_routes_by_severity_and_inhibits_the_warning_of_a_critical_loop(stack, collapse):
    wanted = {("CollapseWarning", "collapsing"), ("CollapseCritical", "collapsing"), ("CollapseDriftDetected", "drifting"),
              ("CollapseAuditStale", "stale"), ("CollapseExporterDown", stack["dead"]),
              ("CollapseStoreUnreadable", stack["unreadable"])}

    def fetch():
        return {_key(a): a for a in _get(stack["am"] + "/api/v2/alerts")}

    def received():
        # All there, and their inhibition settled (the same in two reads half a second apart).
        first = fetch()
        if not wanted <= first.keys():
            return None
        time.sleep(0.5)
        second = fetch()
        same = all(first[k]["status"] == second.get(k, {}).get("status") for k in wanted)
        return second if same else None

    alerts = _wait("Alertmanager to receive the collapse alerts", received)
    for alert in alerts.values():
        severity = alert["labels"]["severity"]
        assert [r["name"] for r in alert["receivers"]] == [f"collapse-{severity}"]
    critical = alerts[("CollapseCritical", "collapsing")]
    assert critical["status"]["state"] == "active"
    warning = alerts[("CollapseWarning", "collapsing")]
    assert warning["status"]["state"] == "suppressed"
    assert warning["status"]["inhibitedBy"] == [critical["fingerprint"]]
    assert alerts[("CollapseDriftDetected", "drifting")]["status"]["state"] == "active"
    # While an exporter is down (or its store unreadable), staleness is a consequence: held back.
    stale = alerts[("CollapseAuditStale", "stale")]["status"]
    assert stale["state"] == "suppressed"
    sources = {alerts[("CollapseExporterDown", stack["dead"])]["fingerprint"],
               alerts[("CollapseStoreUnreadable", stack["unreadable"])]["fingerprint"]}
    assert len(stale["inhibitedBy"]) == 1 and stale["inhibitedBy"][0] in sources  # the first source that matches


# -- every expression returns data -------------------------------------------------------

SUBSTITUTIONS = {
    "datasource": "collapse-prometheus", "loop": "collapsing", "metric": "coverage",
    "__rate_interval": "5m", "__interval": "30s", "__range": "1h", "__range_s": "3600",
}


def _substitute(expr: str) -> str:
    def repl(m):
        name = m.group(1) or m.group(2)
        assert name in SUBSTITUTIONS, f"no test value for ${name} in {expr}"
        return SUBSTITUTIONS[name]

    out = re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)
    assert "$" not in out, out
    return out


def _walk_panels(panels):
    for p in panels:
        yield p
        yield from _walk_panels(p.get("panels", []))


def dashboard_expressions() -> list[tuple[str, str]]:
    """(where, expr) for every panel target and annotation of every dashboard."""
    out = []
    for path in DASHBOARDS:
        d = json.loads(path.read_text())
        for p in _walk_panels(d["panels"]):
            for t in p.get("targets", []):
                out.append((f"{path.name}: panel {p['title']!r} {t['refId']}", t["expr"]))
        for a in d["annotations"]["list"]:
            if "expr" in a:
                out.append((f"{path.name}: annotation {a['name']!r}", a["expr"]))
    return out


def dashboard_variables() -> list[tuple[str, str]]:
    out = []
    for path in DASHBOARDS:
        for v in json.loads(path.read_text())["templating"]["list"]:
            if v["type"] == "query":
                q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
                out.append((f"{path.name}: ${v['name']}", q))
    return out


def rule_expressions() -> list[tuple[str, str]]:
    doc = yaml.safe_load(RULES_FILE.read_text())
    return [(r.get("alert") or r.get("record"), r["expr"]) for g in doc["groups"] for r in g["rules"]]


def test_every_rule_and_dashboard_expression_parses_and_returns_data(stack, collapse):
    exprs = rule_expressions() + dashboard_expressions()
    assert len(exprs) > 40
    empty, failed = [], []
    for where, expr in exprs:
        try:
            data = _api(stack["prom"], "/api/v1/query", query=_substitute(expr))
        except urllib.error.HTTPError as exc:  # 400: does not parse
            failed.append((where, expr, exc.read().decode()))
            continue
        if not data["result"]:
            empty.append((where, expr))
    assert not failed, failed
    assert not empty, empty


def test_dashboard_variables_resolve_to_the_loops_and_metrics(stack, collapse):
    variables = dashboard_variables()
    assert {name.split(": ")[1] for name, _ in variables} == {"$loop", "$metric"}
    for where, query in variables:
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
        assert m, (where, query)
        values = _api(stack["prom"], f"/api/v1/label/{m.group(2)}/values", **{"match[]": _substitute(m.group(1))})
        if m.group(2) == "loop":
            assert set(values) == set(LOOPS), where
        else:
            assert set(values) == set(LOOPS["collapsing"]), where


def test_the_overview_shows_signals_risk_drivers_watch_queue_and_scrape_duration(stack, collapse):
    """The panels added with the generated dashboards show the values of the stored loops."""
    prom = stack["prom"]
    exprs = {where.split(": ", 1)[1]: expr for where, expr in dashboard_expressions()
             if where.startswith("collapse-overview.json: panel")}

    def query(where: str) -> list[dict]:
        return _api(prom, "/api/v1/query", query=_substitute(exprs[where]))["result"]

    signals = {r["metric"]["signal"]: float(r["value"][1]) for r in query("panel 'Alarm signals' A")}
    assert signals == {"collapse": 2.0, "drift": 2.0}  # the collapsing loop: critical on both signals (LOOPS)
    (driver,) = query("panel 'Risk and its driving family' B")
    assert set(driver["metric"]) == {"loop", "family"} and driver["metric"]["loop"] == "collapsing"
    (risk,) = query("panel 'Risk and its driving family' A")
    assert 0 < float(driver["value"][1]) <= float(risk["value"][1]) <= 1
    queue = {ref: float(r["value"][1]) for ref in "ABC" for r in query(f"panel 'Watch queue' {ref}")}
    assert queue == {"A": WATCHED["pending"], "B": WATCHED["failed"], "C": WATCHED["audited"]}
    durations = {r["metric"]["instance"]: float(r["value"][1]) for r in query("panel 'Scrape duration' A")}
    assert set(durations) == {stack["good"]}  # none for the unreadable store or the dead target
    assert 0 < durations[stack["good"]] < 10
