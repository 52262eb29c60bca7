"""A running ``serve`` audits the CLI's rounds in its warm process (:mod:`flows.audit_service`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest

from flows.audit_service import SERVICE_FILE, AuditService, service_record, submit_audit
from monitor.errors import CollapseMonitorError
from monitor.store import TrajectoryStore
from processes import free_port, save_array, scrape, stop_serve, wait_for

pytestmark = pytest.mark.prefect


def _post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_service_answers_only_its_token_and_its_endpoint(tmp_path):
    with AuditService(tmp_path, "http://127.0.0.1:9/api") as service:
        record = json.loads((tmp_path / SERVICE_FILE).read_text())
        assert record == {"url": service.url, "pid": os.getpid(), "token": service.token}
        assert (tmp_path / SERVICE_FILE).stat().st_mode & 0o077 == 0  # the token is the owner's only
        wrong = json.dumps({"token": "guess", "parameters": {"loop": "x"}}).encode()
        assert _post(service.url + "/audit", wrong) == (403, {"error": "wrong token"})
        assert _post(service.url + "/audit", b"not json")[0] == 400
        assert _post(service.url + "/other", wrong)[0] == 404
    assert not (tmp_path / SERVICE_FILE).exists()  # withdrawn on stop


def test_without_a_live_daemon_the_command_runs_the_flow_itself(tmp_path):
    assert submit_audit(tmp_path, {}) is None  # no record
    (tmp_path / SERVICE_FILE).write_text("garbage")
    assert submit_audit(tmp_path, {}) is None
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / SERVICE_FILE).write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": dead.pid, "token": "t"}))
    assert submit_audit(tmp_path, {}) is None and not (tmp_path / SERVICE_FILE).exists()  # left by kill -9: removed
    (tmp_path / SERVICE_FILE).write_text(json.dumps({"url": f"http://127.0.0.1:{free_port()}", "pid": os.getpid(),
                                                     "token": "t"}))
    assert service_record(tmp_path) is not None and submit_audit(tmp_path, {}) is None  # alive, nothing listening
    (tmp_path / SERVICE_FILE).write_text(json.dumps({"url": "http://example.org:80", "pid": os.getpid(), "token": "t"}))
    assert service_record(tmp_path) is None  # never anything but this machine's loopback


def _cli(home, *argv, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor.cli", "--home", str(home), *argv], capture_output=True,
                          text=True, timeout=300, env=env)


def test_a_cli_audit_is_run_by_the_serve_daemon_and_published_after_its_answer(tmp_path):
    home, port = tmp_path / "home", free_port()
    env = {**os.environ, "COLLAPSE_MONITOR_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_for(lambda: (home / SERVICE_FILE).exists() and "collapse_up 1.0" in scrape(port), 120, proc,
                 "the audit service")
        save_array(tmp_path / "ref.npy", 0)
        save_array(tmp_path / "r0.npy", 1)
        save_array(tmp_path / "r1.npy", 2, scale=0.5)
        # A Prefect API nothing listens on: had the command run the flow itself, it would have failed.
        cli_env = {**env, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
        answers = []
        for r in (0, 1):
            done = _cli(home, "audit", "lp", str(r), str(tmp_path / f"r{r}.npy"), "--reference",
                        str(tmp_path / "ref.npy"), "--bootstrap", "0", "--json", env=cli_env)
            assert done.returncode == 0, done.stderr[-3000:]
            answers.append(json.loads(done.stdout))
        assert [a["round"] for a in answers] == [0, 1] and answers[1]["metrics"]["recall"]["value"] < 1.0
        with TrajectoryStore(f"sqlite:///{home / 'store.db'}") as store:
            assert sorted(store.round_audits("lp")) == [0, 1]
            # the plots and the MLflow run follow the answer, in the daemon
            wait_for(lambda: (home / "reports" / "lp" / "round_1" / "alerts.json").exists() and sorted(
                r for r, w in store.mlflow_writes("lp").items() if w["confirmed_at"] is not None) == [0, 1],
                120, proc, "both rounds' plots and MLflow runs")
        # a round the daemon refuses is one line and exit 1, as a local run's
        np.save(tmp_path / "pool.npy", np.zeros((5, 6), np.float32))  # far smaller than a round: no null
        refused = _cli(home, "audit", "lp", "2", str(tmp_path / "r1.npy"), "--reference", str(tmp_path / "ref.npy"),
                       "--bootstrap", "0", "--pool", str(tmp_path / "pool.npy"), env=cli_env)
        assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr[-3000:]
        assert refused.stderr.startswith("collapse-monitor: error: ") and "pool" in refused.stderr
        with TrajectoryStore(f"sqlite:///{home / 'store.db'}") as store:
            assert sorted(store.round_audits("lp")) == [0, 1]  # nothing stored for the refused round
    finally:
        out = stop_serve(proc)
    assert proc.returncode == 0, out[-3000:]
    assert not (home / SERVICE_FILE).exists() and not (home / "prefect-api.json").exists()


def test_a_refusal_from_the_daemon_raises_its_one_line(monkeypatch, tmp_path):
    with AuditService(tmp_path, "http://127.0.0.1:9/api") as service:
        def refuse(parameters):
            raise CollapseMonitorError(f"loop {parameters['loop']}: refused")

        monkeypatch.setattr(service, "audit", refuse)
        with pytest.raises(CollapseMonitorError, match=r"^loop x: refused$"):
            submit_audit(tmp_path, {"loop": "x"})

        def crash(parameters):
            raise RuntimeError("boom")

        monkeypatch.setattr(service, "audit", crash)
        with pytest.raises(CollapseMonitorError, match=r"failed the audit: RuntimeError: boom$"):
            submit_audit(tmp_path, {"loop": "x"})
