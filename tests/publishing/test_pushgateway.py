"""Pushing a loop's series to a real Prometheus Pushgateway (Debian package prometheus-pushgateway)."""

import shutil
import socket
import subprocess
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from metrics_core.bootstrap import Estimate
from monitor.engine.evaluation import evaluate_and_store
from monitor.publishing.exporter import push_loop
from monitor.engine.rules import load_rules
from monitor.store import RoundRecord, TrajectoryStore

GATEWAY = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
pytestmark = pytest.mark.skipif(GATEWAY is None, reason="prometheus-pushgateway is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gateway(tmp_path):
    port = _free_port()
    proc = subprocess.Popen([GATEWAY, f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{url}/-/ready", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("pushgateway did not become ready")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def _samples(url: str) -> dict:
    body = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(body) for s in fam.samples}


def test_push_sends_one_loops_series_grouped_by_loop(gateway, tmp_path):
    store = TrajectoryStore(f"sqlite:///{tmp_path / 'store.db'}")
    for loop, values in (("pushed", [0.9, 0.902, 0.898, 0.65, 0.652]), ("other", [0.5, 0.5, 0.5, 0.5, 0.5])):
        for r, v in enumerate(values):
            store.record_round(RoundRecord(loop=loop, round=r, metrics={"coverage": Estimate(v, v - 0.02, v + 0.02, 0.01)},
                                           n_reference=100, n_round=100, fingerprint=f"{r:064d}",
                                           reference_fingerprint="r" * 64, metrics_version="2", audited_at=1000.0 + r))
        evaluate_and_store(store, loop, load_rules())
    push_loop(store, "pushed", gateway)
    samples = _samples(gateway)
    labels = (("family", "coverage"), ("instance", ""), ("job", "collapse-monitor"), ("loop", "pushed"),
              ("metric", "coverage"), ("modality", "embedding"))
    assert samples[("collapse_metric_value", labels)] == pytest.approx(0.652)
    assert samples[("collapse_alert_state", labels)] == 2.0
    assert samples[("collapse_round", (("instance", ""), ("job", "collapse-monitor"), ("loop", "pushed")))] == 4.0
    assert not any(dict(lbl).get("loop") == "other" for _, lbl in samples)
    # A second push replaces the group: the latest state, no stale series.
    store.record_round(RoundRecord(loop="pushed", round=5, metrics={"coverage": Estimate(0.4, 0.38, 0.42, 0.01)},
                                   n_reference=100, n_round=100, fingerprint="5" * 64, reference_fingerprint="r" * 64,
                                   metrics_version="2", audited_at=2000.0))
    evaluate_and_store(store, "pushed", load_rules())
    push_loop(store, "pushed", gateway)
    assert _samples(gateway)[("collapse_metric_value", labels)] == pytest.approx(0.4)
    store.close()


@pytest.mark.usefixtures("prefect_harness")
def test_audit_pushes_after_the_round_and_survives_a_dead_gateway(home, shrinking_rounds, gateway):
    from flows.audit import audit_round
    from monitor.options import AuditOptions

    ref, rounds = shrinking_rounds
    audit_round("pg", 0, str(rounds[0]), str(ref), AuditOptions(n_boot=0), pushgateway=gateway)
    assert any(name == "collapse_metric_value" and dict(lbl).get("loop") == "pg" for name, lbl in _samples(gateway))
    # Nothing listens here: the push fails after its retries, the audit still stores the round.
    dead = f"http://127.0.0.1:{_free_port()}"
    result = audit_round("pg", 1, str(rounds[1]), str(ref), AuditOptions(n_boot=0), pushgateway=dead)
    assert result["round"] == 1
    assert sorted(TrajectoryStore(f"sqlite:///{home / 'store.db'}").trajectory("pg")["round"].unique()) == [0, 1]
