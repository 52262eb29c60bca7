"""Alert rules, Grafana dashboards, provisioning, Alertmanager and the docker stack, without a Prometheus server.

* ``promtool check rules`` / ``promtool test rules`` on the shipped rule file,
  and the conventions every rule follows (names, severity, `for:`,
  annotations, runbook anchors that exist in docs/runbook.md);
* the dashboards' structure (fixed uids, the datasource template variable,
  ``$loop``/``$metric`` from ``label_values``), and every series they and the
  rules use checked against a real exporter's ``/metrics`` over a populated
  store;
* the committed dashboards are exactly what dashboards/generate.py
  (grafana-foundation-sdk) generates;
* the Grafana provisioning files against the dashboards and the compose file;
* ``amtool check-config`` and the routes by severity;
* docker/compose.yml: ``docker compose config`` where the client has compose,
  and always the structural checks (services, images, healthchecks, volumes,
  mounted files, variables documented in .env.example).

Against a real Prometheus: tests/test_prometheus_integration.py.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from metrics_core.bootstrap import Estimate
from monitor.engine.evaluation import evaluate_and_store
from monitor.publishing.exporter import Exporter
from monitor.engine.rules import load_rules
from monitor.store import RoundRecord, TrajectoryStore

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "dashboards" / "prometheus"
RULES_FILE = PROM_DIR / "collapse.rules.yml"
RULES_TEST_FILE = PROM_DIR / "collapse.rules.test.yml"
GRAFANA_DIR = ROOT / "dashboards" / "grafana"
GENERATE = ROOT / "dashboards" / "generate.py"
DASHBOARDS = sorted(GRAFANA_DIR.glob("*.json"))
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "collapse-prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA_DIR / "provisioning" / "dashboards" / "collapse-monitor.yml"
ALERTMANAGER_CONFIG = ROOT / "dashboards" / "alertmanager" / "alertmanager.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yml"
ENV_EXAMPLE = DOCKER / ".env.example"
RUNBOOK_BASE = "https://github.com/collapse-monitor/collapse-monitor/blob/main/docs/runbook.md#"

PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
NEEDS_PROMTOOL = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus; "
                                    "scripts/test.sh installs it where apt-get is available)")
NEEDS_AMTOOL = pytest.mark.skipif(AMTOOL is None, reason="amtool not installed (Debian package prometheus-alertmanager; "
                                  "scripts/test.sh installs it where apt-get is available)")


def _rules() -> dict:
    return yaml.safe_load(RULES_FILE.read_text())


def _all_rules() -> list[dict]:
    return [r for g in _rules()["groups"] for r in g["rules"]]


def _alerts() -> list[dict]:
    return [r for r in _all_rules() if "alert" in r]


def _recorded_names(expr: str) -> set[str]:
    """Recording-rule names (level:metric[:operations]) an expression selects."""
    return set(re.findall(r"(?<![\w:])[a-z_]+:[a-z0-9_]+(?::[a-z0-9_]+)?(?![\w:])", expr))


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


# -- rules ---------------------------------------------------------------------------------

@NEEDS_PROMTOOL
def test_promtool_check_rules():
    res = _run([PROMTOOL, "check", "rules", "--lint=all", "--lint-fatal", str(RULES_FILE)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"SUCCESS: {len(_all_rules())} rules found" in res.stdout


@NEEDS_PROMTOOL
def test_promtool_test_rules():
    res = _run([PROMTOOL, "test", "rules", RULES_TEST_FILE.name], cwd=PROM_DIR)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_rule_tests_cover_every_rule_firing_and_silent():
    doc = yaml.safe_load(RULES_TEST_FILE.read_text())
    assert doc["rule_files"] == [RULES_FILE.name]
    fires, silent, recorded = set(), set(), set()
    for case in doc["tests"]:
        for t in case.get("alert_rule_test", []):
            (fires if t["exp_alerts"] else silent).add(t["alertname"])
        for t in case.get("promql_expr_test", []):
            recorded.update(_recorded_names(t["expr"]))
    names = {r["alert"] for r in _alerts()}
    assert fires == names, "every alert needs a case where it fires"
    assert silent == names, "every alert needs a case where it must not fire"
    assert recorded == {r["record"] for r in _all_rules() if "record" in r}, "every recording rule needs a case"


def test_alert_rules_follow_the_conventions():
    alerts = _alerts()
    assert len(alerts) == 9
    for rule in alerts:
        name = rule["alert"]
        assert re.fullmatch(r"Collapse(?:[A-Z][a-z]+)+", name), name
        assert set(rule["labels"]) == {"severity"} and rule["labels"]["severity"] in {"warning", "critical"}, name
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, name
        assert rule["annotations"]["runbook_url"] == RUNBOOK_BASE + name.lower(), name
        # Batch loops: minutes, not seconds (a scrape blip) and not hours (a round is already debounced).
        m = re.fullmatch(r"(\d+)m", rule["for"])
        assert m and 5 <= int(m.group(1)) <= 60, (name, rule["for"])
    names = [r["alert"] for r in alerts]
    assert len(set(names)) == len(names)
    assert {r["alert"]: r["labels"]["severity"] for r in alerts if r["labels"]["severity"] == "critical"} == {
        "CollapseCritical": "critical", "CollapseExporterDown": "critical", "CollapseStoreUnreadable": "critical"}


def test_rules_never_use_a_round_label_and_select_the_shipped_scrape_job():
    for rule in _all_rules():
        assert not re.search(r"\bround\b", rule["expr"]), rule["expr"]
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    jobs = {j["job_name"] for j in config["scrape_configs"]}
    for rule in _all_rules():
        for job in re.findall(r'job="([^"]+)"', rule["expr"]):
            assert job in jobs, (rule.get("alert"), job)


def _github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_runbook_url_points_to_a_runbook_section_and_every_section_to_a_rule():
    headings = re.findall(r"^## (.+)$", RUNBOOK.read_text(), flags=re.M)
    anchors = {_github_anchor(h) for h in headings}
    for rule in _alerts():
        assert rule["annotations"]["runbook_url"].split("#", 1)[1] in anchors, rule["alert"]
    alert_sections = {h for h in headings if h.startswith("Collapse")}
    assert alert_sections == {r["alert"] for r in _alerts()}
    # The recording rules are documented too.
    text = RUNBOOK.read_text()
    for rule in _all_rules():
        if "record" in rule:
            assert f"`{rule['record']}`" in text, rule["record"]


# -- the exporter's real series --------------------------------------------------------------

@pytest.fixture(scope="module")
def exporter_series(tmp_path_factory):
    """Sample names on a real exporter's /metrics over a store with a collapsing loop."""
    tmp = tmp_path_factory.mktemp("exporter")
    store = TrajectoryStore(f"sqlite:///{tmp / 'store.db'}")
    values = np.r_[np.full(8, 0.9), np.full(4, 0.6)] + np.tile([0.002, -0.002], 6)
    se = 0.01
    for r, v in enumerate(values):
        est = Estimate(float(v), float(v) - 2 * se, float(v) + 2 * se, se)
        store.record_round(RoundRecord(loop="a", round=r, metrics={"coverage": est, "vendi_score": est},
                                       n_reference=100, n_round=100, fingerprint=f"{r:064d}",
                                       reference_fingerprint="r" * 64, metrics_version="2"))
        # The audit counters and the duration histogram come from the store's audit log.
        store.record_audit("a", r, "audited", 0.5)
    evaluate_and_store(store, "a", load_rules())
    # Round files seen by `serve --watch`: the collapse_watch_* series exist only for loops that have some.
    for r, status in enumerate(("audited", "failed", "pending")):
        store.observe_file(f"file:///watch/a/{r}.npy", "a", r, 100, 1.0)
        store.mark_file(f"file:///watch/a/{r}.npy", status, None, 100, 1.0)
    exporter = Exporter(store, "127.0.0.1", 0)
    try:
        body = urllib.request.urlopen(exporter.url, timeout=10).read().decode()
    finally:
        exporter.stop()
        store.close()
    return {s.name: s.labels for fam in text_string_to_metric_families(body) for s in fam.samples}


def _series_names(expr: str) -> set[str]:
    """The exporter series an expression selects (recording-rule names, with colons, excluded)."""
    return set(re.findall(r"(?<![\w:])(collapse_[a-z0-9_]+)(?![\w:])", expr))


def _walk_panels(panels):
    for p in panels:
        yield p
        yield from _walk_panels(p.get("panels", []))


def _dashboard(path: Path) -> dict:
    return json.loads(path.read_text())


def _dashboard_exprs(d: dict) -> list[str]:
    exprs = [t["expr"] for p in _walk_panels(d["panels"]) for t in p.get("targets", [])]
    exprs += [a["expr"] for a in d["annotations"]["list"] if "expr" in a]
    exprs += [v["query"]["query"] for v in d["templating"]["list"] if v["type"] == "query"]
    return exprs


def test_every_series_in_rules_and_dashboards_is_exposed_by_the_exporter(exporter_series):
    assert exporter_series["collapse_up"] == {}
    assert exporter_series["collapse_scrape_duration_seconds"] == {}
    assert not any("round" in labels for labels in exporter_series.values())
    exprs = [r["expr"] for r in _all_rules()] + [e for p in DASHBOARDS for e in _dashboard_exprs(_dashboard(p))]
    used = set().union(*map(_series_names, exprs))
    assert used, "no collapse_ series found in the expressions"
    assert used <= set(exporter_series), sorted(used - set(exporter_series))
    # The dashboards show every per-metric and per-loop series of the contract.
    shown = set().union(*(_series_names(e) for p in DASHBOARDS for e in _dashboard_exprs(_dashboard(p))))
    assert {"collapse_metric_value", "collapse_metric_ci_low", "collapse_metric_ci_high", "collapse_metric_delta",
            "collapse_metric_slope", "collapse_metric_zscore", "collapse_metric_cusum",
            "collapse_rounds_to_threshold", "collapse_alert_state", "collapse_loop_risk", "collapse_family_risk",
            "collapse_round", "collapse_last_audit_timestamp_seconds", "collapse_up", "collapse_signal_state",
            "collapse_watch_pending_files", "collapse_watch_refused_files", "collapse_watch_audited_files",
            "collapse_scrape_duration_seconds"} <= shown


def test_recording_rules_and_alert_names_used_by_dashboards_exist():
    recorded = {r["record"] for r in _all_rules() if "record" in r}
    for path in DASHBOARDS:
        for expr in _dashboard_exprs(_dashboard(path)):
            for name in _recorded_names(expr):
                assert name in recorded, (path.name, name)
            for pattern in re.findall(r'alertname=~?"([^"]+)"', expr):
                assert any(re.fullmatch(pattern, r["alert"]) for r in _alerts()), (path.name, pattern)


# -- dashboards --------------------------------------------------------------------------------

DS_REF = {"type": "prometheus", "uid": "${datasource}"}


def test_dashboards_have_fixed_unique_uids_and_no_inputs():
    assert [p.name for p in DASHBOARDS] == ["collapse-loop.json", "collapse-overview.json"]
    uids = {}
    for path in DASHBOARDS:
        d = _dashboard(path)
        assert "__inputs" not in d and "__requires" not in d, path.name
        assert re.fullmatch(r"[a-z0-9-]{1,40}", d["uid"]), d["uid"]
        assert d.get("id") is None, path.name  # Grafana assigns ids; a provisioned file must not pin one
        uids[path.stem] = d["uid"]
        assert d["title"].startswith("collapse-monitor / ")
        assert d["editable"] is False
    assert uids == {"collapse-loop": "collapse-loop", "collapse-overview": "collapse-overview"}


def _provisioned_datasource() -> dict:
    (ds,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    return ds


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_variables_and_datasources(path):
    d = _dashboard(path)
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert list(variables) == ["datasource", "loop", "metric"]
    ds_var = variables["datasource"]
    assert ds_var["type"] == "datasource" and ds_var["query"] == "prometheus"
    provisioned = _provisioned_datasource()
    assert ds_var["current"]["value"] == provisioned["uid"] and ds_var["current"]["text"] == provisioned["name"]
    for name in ("loop", "metric"):
        v = variables[name]
        assert v["type"] == "query" and v["datasource"] == DS_REF, name
        assert re.fullmatch(r"label_values\(.+, " + name + r"\)", v["query"]["query"]), v["query"]
        assert v["definition"] == v["query"]["query"]
    assert "loop" in variables["metric"]["query"]["query"]  # metrics of the selected loop(s)

    ids = []
    for p in _walk_panels(d["panels"]):
        ids.append(p["id"])
        assert {"x", "y", "w", "h"} <= set(p["gridPos"]), p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"] == DS_REF, p["title"]
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(set(refs)) == len(refs), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DS_REF, (p["title"], t["refId"])
            assert t["expr"].strip(), (p["title"], t["refId"])
        assert p.get("description"), p["title"]
    assert len(set(ids)) == len(ids)
    for a in d["annotations"]["list"]:
        if a.get("builtIn"):
            continue
        assert a["datasource"] == DS_REF, a["name"]
    assert any('ALERTS{alertname=~"Collapse.*"' in a.get("expr", "") for a in d["annotations"]["list"])


def _panels_by_title(path: Path) -> dict[str, dict]:
    return {p["title"]: p for p in _walk_panels(_dashboard(path)["panels"])}


def test_overview_shows_status_risk_last_round_audit_age_and_active_alerts():
    panels = _panels_by_title(GRAFANA_DIR / "collapse-overview.json")
    table = " ".join(t["expr"] for t in panels["Loops"]["targets"])
    for series in ("collapse_alert_state", "collapse_loop_risk", "collapse_round", "collapse_last_audit_timestamp_seconds"):
        assert series in table
    assert "time() - collapse_last_audit_timestamp_seconds" in table
    link = panels["Loops"]["fieldConfig"]["overrides"][0]["properties"][0]["value"][0]["url"]
    assert link.startswith("/d/collapse-loop/") and "var-loop=" in link
    assert panels["Active alerts"]["targets"][0]["expr"] == 'ALERTS{alertname=~"Collapse.*"}'
    assert "collapse_loop_risk" in panels["Collapse risk"]["targets"][0]["expr"]
    assert "collapse_last_audit_timestamp_seconds" in panels["Time since last audit"]["targets"][0]["expr"]
    assert "collapse_round" in panels["Last round"]["targets"][0]["expr"]


def test_loop_dashboard_has_ci_bands_derivatives_zscores_and_rounds_to_threshold():
    panels = _panels_by_title(GRAFANA_DIR / "collapse-loop.json")
    band = panels["$metric"]
    assert band["repeat"] == "metric"
    legends = {t["legendFormat"]: t["expr"] for t in band["targets"]}
    assert legends["value"].startswith("collapse_metric_value{")
    assert legends["95% low"].startswith("collapse_metric_ci_low{")
    assert legends["95% high"].startswith("collapse_metric_ci_high{")
    fill = {o["matcher"]["options"]: {p["id"]: p["value"] for p in o["properties"]}
            for o in band["fieldConfig"]["overrides"]}
    assert fill["95% high"]["custom.fillBelowTo"] == "95% low"
    exprs = {title: p["targets"][0]["expr"] for title, p in panels.items() if p.get("targets")}
    assert exprs["First difference (delta)"].startswith("collapse_metric_delta{")
    assert exprs["Theil-Sen slope per round"].startswith("collapse_metric_slope{")
    assert exprs["Slope z-score"].startswith("collapse_metric_zscore{")
    assert exprs["CUSUM"].startswith("collapse_metric_cusum{")
    assert exprs["Rounds to threshold"].startswith("collapse_rounds_to_threshold{")
    for title in ("First difference (delta)", "Slope z-score", "Rounds to threshold", "Alert state by metric"):
        assert 'loop="$loop"' in exprs[title] and 'metric=~"$metric"' in exprs[title], title


def test_overview_shows_alarm_signals_risk_drivers_watch_queue_and_scrape_duration():
    panels = _panels_by_title(GRAFANA_DIR / "collapse-overview.json")

    signals = panels["Alarm signals"]  # alert state over time, per loop and signal
    assert signals["type"] == "state-timeline"
    (target,) = signals["targets"]
    assert target["expr"] == 'max by (loop, signal) (collapse_signal_state{loop=~"$loop"})' and target["range"]
    assert target["legendFormat"] == "{{loop}} {{signal}}"
    (mapping,) = signals["fieldConfig"]["defaults"]["mappings"]
    assert {v: m["text"] for v, m in mapping["options"].items()} == {"0": "OK", "1": "WARNING", "2": "CRITICAL"}

    drivers = panels["Risk and its driving family"]
    assert drivers["type"] == "table"
    exprs = {t["refId"]: t["expr"] for t in drivers["targets"]}
    assert exprs == {"A": 'max by (loop) (collapse_loop_risk{loop=~"$loop"})',
                     "B": 'max by (loop, family) (topk by (loop) (1, collapse_family_risk{loop=~"$loop"} > 0))'}
    assert all(t["instant"] and t["format"] == "table" for t in drivers["targets"])
    organize = {t["id"]: t["options"] for t in drivers["transformations"]}["organize"]
    assert organize["renameByName"] == {"Value #A": "Risk", "family": "Driving family", "Value #B": "Family risk"}

    queue = panels["Watch queue"]
    assert queue["type"] == "timeseries"
    assert {t["legendFormat"]: t["expr"] for t in queue["targets"]} == {
        f"{{{{loop}}}} {state}": f'collapse_watch_{state}_files{{loop=~"$loop"}}'
        for state in ("pending", "refused", "audited")}

    scrape = panels["Scrape duration"]
    assert scrape["type"] == "timeseries"
    assert [t["expr"] for t in scrape["targets"]] == ["collapse_scrape_duration_seconds"]
    assert scrape["fieldConfig"]["defaults"]["unit"] == "s"


# -- generated by dashboards/generate.py ------------------------------------------------------

@pytest.fixture(scope="module")
def generate():
    """dashboards/generate.py, imported by path (dashboards/ is not a package)."""
    pytest.importorskip("grafana_foundation_sdk",
                        reason="grafana-foundation-sdk not installed (extras test and dashboards)")
    spec = importlib.util.spec_from_file_location("dashboards_generate", GENERATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_dashboards_are_the_generated_ones(generate):
    built = {"collapse-overview.json": generate.overview_dashboard(), "collapse-loop.json": generate.loop_dashboard()}
    assert sorted(built) == [p.name for p in DASHBOARDS]
    for name, dashboard in built.items():
        path = GRAFANA_DIR / name
        hint = f"{name} is not what dashboards/generate.py makes: run .venv/bin/python dashboards/generate.py"
        assert dashboard == _dashboard(path), hint
        assert generate.render(dashboard) == path.read_text(encoding="utf-8"), hint  # byte for byte: no diff


def test_generate_main_writes_both_files_and_check_finds_them_current(generate, tmp_path, capsys):
    assert generate.main(["--check"]) == 0
    assert generate.main(["--out", str(tmp_path)]) == 0
    for path in DASHBOARDS:
        assert (tmp_path / path.name).read_text(encoding="utf-8") == path.read_text(encoding="utf-8")
    (tmp_path / "collapse-loop.json").write_text("{}\n")
    assert generate.main(["--check", "--out", str(tmp_path)]) == 1
    assert "collapse-loop.json" in capsys.readouterr().err


# -- provisioning ------------------------------------------------------------------------------

def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _mounts(service: dict) -> list[tuple[str, str]]:
    out = []
    for v in service.get("volumes", []):
        parts = v.split(":")
        out.append((parts[0], parts[1]))
    return out


def test_grafana_provisioning_matches_the_dashboards_and_the_stack():
    ds = _provisioned_datasource()
    assert yaml.safe_load(DATASOURCES.read_text())["apiVersion"] == 1
    assert ds["type"] == "prometheus" and ds["access"] == "proxy" and ds["editable"] is False
    compose = _compose()
    host_port = re.fullmatch(r"http://([\w-]+):(\d+)", ds["url"])
    assert host_port and host_port.group(1) in compose["services"]
    assert any(p.endswith(":" + host_port.group(2)) for p in compose["services"][host_port.group(1)]["ports"])

    doc = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["allowUiUpdates"] is False and provider["disableDeletion"] is True
    # The provider's path is where compose mounts dashboards/grafana.
    grafana = {target: (DOCKER / src).resolve() for src, target in _mounts(compose["services"]["grafana"])
               if src.startswith(".")}
    assert grafana[provider["options"]["path"]] == GRAFANA_DIR
    assert grafana["/etc/grafana/provisioning/datasources"] == DATASOURCES.parent
    assert grafana["/etc/grafana/provisioning/dashboards"] == DASHBOARD_PROVIDERS.parent
    home = compose["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == provider["options"]["path"] + "/collapse-overview.json"


# -- Alertmanager ------------------------------------------------------------------------------

@NEEDS_AMTOOL
def test_amtool_check_config():
    res = _run([AMTOOL, "check-config", str(ALERTMANAGER_CONFIG)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


@NEEDS_AMTOOL
@pytest.mark.parametrize("labels, receiver", [
    (["severity=critical", "alertname=CollapseCritical", "loop=a"], "collapse-critical"),
    (["severity=critical", "alertname=CollapseExporterDown"], "collapse-critical"),
    (["severity=warning", "alertname=CollapseWarning", "loop=a"], "collapse-warning"),
    (["alertname=SomethingElse"], "collapse-default"),
])
def test_alertmanager_routes_by_severity(labels, receiver):
    res = _run([AMTOOL, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels])
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.split() == [receiver]


def test_alertmanager_config_names_only_shipped_alerts_and_severities():
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    names = {r["alert"] for r in _alerts()}
    matchers = [m for r in config["route"]["routes"] for m in r["matchers"]]
    assert sorted(matchers) == ['severity="critical"', 'severity="warning"']
    for rule in config["inhibit_rules"]:
        for m in rule["source_matchers"] + rule["target_matchers"]:
            name, op, value = re.fullmatch(r'(\w+)(=~?)"(.*)"', m).groups()
            assert name == "alertname"
            assert any(re.fullmatch(value, n) for n in names), m
    assert {"source_matchers": ['alertname="CollapseCritical"'], "target_matchers": ['alertname="CollapseWarning"'],
            "equal": ["loop"]} in config["inhibit_rules"]


# -- docker ------------------------------------------------------------------------------------

SERVICES = {"postgres", "mlflow", "prefect", "monitor", "prometheus", "alertmanager", "grafana"}


def _env_example() -> dict[str, str]:
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE.read_text(), flags=re.M))


def _compose_variables() -> set[str]:
    text = COMPOSE.read_text().replace("$$", "")
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))


def _docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return _run(["docker", "compose", "version"]).returncode == 0


@pytest.mark.skipif(not _docker_compose_available(), reason="no `docker compose` client here: the structural "
                    "checks below stand in for it")
def test_docker_compose_config():
    res = _run(["docker", "compose", "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), "config", "--quiet"])
    assert res.returncode == 0, res.stdout + res.stderr


def test_compose_services_images_healthchecks_and_volumes():
    compose = _compose()
    services = compose["services"]
    assert set(services) == SERVICES
    declared = set(compose["volumes"])
    for name, s in services.items():
        assert s.get("image"), name
        if "build" in s:
            assert (DOCKER / s["build"]["context"] / s["build"]["dockerfile"]).is_file(), name
        else:
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", s["image"]) and not s["image"].endswith(":latest"), name
        test = s["healthcheck"]["test"]
        assert test[0] in {"CMD", "CMD-SHELL"} and len(test) > 1, name
        assert s["volumes"], name
        for src, target in _mounts(s):
            if src.startswith("."):
                assert (DOCKER / src).exists(), (name, src)
            else:
                assert src in declared, (name, src)
        for dep, cond in s.get("depends_on", {}).items():
            assert dep in services, (name, dep)
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], (name, dep)
    assert declared == {src for s in services.values() for src, _ in _mounts(s) if not src.startswith(".")}


def test_compose_wires_prometheus_rules_alertmanager_and_the_monitor():
    services = _compose()["services"]
    prom_mounts = dict((t, (DOCKER / s).resolve()) for s, t in _mounts(services["prometheus"]) if s.startswith("."))
    config_file = "/etc/prometheus/prometheus.yml"
    assert f"--config.file={config_file}" in services["prometheus"]["command"]
    assert prom_mounts[config_file] == DOCKER / "prometheus.yml"
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    for rule_file in config["rule_files"]:
        assert prom_mounts[str(Path(config_file).parent / rule_file)] == RULES_FILE
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "collapse-monitor"]
    assert job["static_configs"][0]["targets"] == ["monitor:9464"]
    assert services["monitor"]["command"][:6] == ["serve", "--host", "0.0.0.0", "--port", "9464", "--watch"]
    watched = services["monitor"]["command"][6]
    assert ("watch", watched) in _mounts(services["monitor"])  # serve watches the mounted volume
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    am_mounts = dict((t, (DOCKER / s).resolve()) for s, t in _mounts(services["alertmanager"]) if s.startswith("."))
    assert am_mounts["/etc/alertmanager/alertmanager.yml"] == ALERTMANAGER_CONFIG
    # The watched volume, the stores on Postgres.
    assert ("watch", "/watch") in _mounts(services["monitor"])
    env = services["monitor"]["environment"]
    assert env["COLLAPSE_MONITOR_STORE_URL"].startswith("postgresql+psycopg2://")
    assert env["COLLAPSE_MONITOR_MLFLOW_URI"] == "http://mlflow:5000"
    assert services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://")
    assert "--artifacts-destination=/mlartifacts" in services["mlflow"]["command"]
    assert ("mlflow-artifacts", "/mlartifacts") in _mounts(services["mlflow"])
    assert services["prefect"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")


def test_every_compose_variable_is_documented_in_env_example():
    documented = _env_example()
    used = _compose_variables()
    assert used == set(documented), {"undocumented": used - set(documented), "unused": set(documented) - used}
    lines = ENV_EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):  # each variable has its comment right above it
        if re.match(r"[A-Z]", line):
            assert lines[i - 1].startswith("# ") and not lines[i - 1].startswith("# --"), line


def test_dockerfile_cpu_torch_non_root_and_the_packages_it_copies():
    text = (DOCKER / "Dockerfile").read_text()
    pin = re.search(r'"torch==([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert f'"torch=={pin}"' in text
    assert re.search(r"ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu", text)
    assert '--index-url "${TORCH_INDEX_URL}"' in text
    users = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert users and users[-1] not in {"root", "0"}
    assert 'ENTRYPOINT ["collapse-monitor"]' in text and "HEALTHCHECK" in text
    for src in re.findall(r"^COPY (\S+)", text, flags=re.M):
        assert (ROOT / src).exists(), src


@NEEDS_PROMTOOL
def test_promtool_check_config_of_the_stack(tmp_path):
    # Laid out as in the container: prometheus.yml next to rules/.
    shutil.copyfile(DOCKER / "prometheus.yml", tmp_path / "prometheus.yml")
    (tmp_path / "rules").mkdir()
    shutil.copyfile(RULES_FILE, tmp_path / "rules" / RULES_FILE.name)
    res = _run([PROMTOOL, "check", "config", str(tmp_path / "prometheus.yml")])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 1 rule files found" in res.stdout + res.stderr
