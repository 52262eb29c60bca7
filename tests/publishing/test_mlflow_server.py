"""A real `mlflow server` stopped in the middle of a loop and restarted: every round lands exactly once."""

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from flows.audit import audit_round
from monitor.options import AuditOptions
from monitor.config import load_settings
from monitor.store import TrajectoryStore
from monitor.publishing.tracking import find_loop_run, round_runs, unconfirmed_rounds

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(backend: Path, artifacts: Path, port: int) -> subprocess.Popen:
    mlflow = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen(
        [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{backend}", "--default-artifact-root",
         str(artifacts), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    for _ in range(240):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    pytest.fail("mlflow server did not start")


def _stop(proc: subprocess.Popen) -> None:
    import os
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


@pytest.mark.faults
def test_rounds_audited_while_the_tracking_server_is_down_are_caught_up_once(home, shrinking_rounds, tmp_path,
                                                                              monkeypatch):
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("COLLAPSE_MONITOR_MLFLOW_URI", uri)
    backend, artifacts = tmp_path / "mlflow.db", tmp_path / "artifacts"
    ref, rounds = shrinking_rounds
    server = _start_server(backend, artifacts, port)
    try:
        audit_round("down", 0, str(rounds[0]), str(ref), AuditOptions(n_boot=0))
    finally:
        _stop(server)
    # Server down: the audits complete and the rounds wait in the store.
    r1 = audit_round("down", 1, str(rounds[1]), str(ref), AuditOptions(n_boot=0))
    r2 = audit_round("down", 2, str(rounds[2]), str(ref), AuditOptions(n_boot=0))
    assert (r1["round"], r2["round"]) == (1, 2)
    store = TrajectoryStore(load_settings().store_url)
    assert list(unconfirmed_rounds(store, "down")) == [1, 2]
    server = _start_server(backend, artifacts, port)
    try:
        audit_round("down", 3, str(rounds[3]), str(ref), AuditOptions(n_boot=0))
        assert unconfirmed_rounds(store, "down") == {}
        settings = load_settings()
        run = find_loop_run(uri, "down", settings.artifact_root)
        client = MlflowClient(uri)
        history = client.get_metric_history(run.info.run_id, "recall")
        recalls = store.trajectory("down").query("metric == 'recall'")["value"].tolist()
        assert sorted((h.step, h.value) for h in history) == [(i, pytest.approx(v)) for i, v in enumerate(recalls)]
        assert sorted(h.step for h in client.get_metric_history(run.info.run_id, "collapse_risk")) == [0, 1, 2, 3]
        # Every round exactly once: one nested run each; the queued round's plots came along too.
        nested = round_runs(uri, "down", settings.artifact_root)
        assert [r.data.tags["collapse_round"] for r in nested] == ["0", "1", "2", "3"]
        assert "alerts.json" in {a.path for a in client.list_artifacts(nested[1].info.run_id)}
        # Re-auditing unchanged data logs nothing new.
        audit_round("down", 1, str(rounds[1]), str(ref), AuditOptions(n_boot=0))
        assert len(client.get_metric_history(run.info.run_id, "recall")) == 4
        assert len(round_runs(uri, "down", settings.artifact_root)) == 4
    finally:
        _stop(server)
        store.close()
