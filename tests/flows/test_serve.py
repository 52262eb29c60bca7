"""``collapse-monitor serve --watch``: a real long-lived process fed round files, scraped, stopped with SIGTERM."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest

from monitor.store import TrajectoryStore
from processes import (free_port, save_array, scrape, start_prefect_server, start_serve, stop_serve, stop_server,
                       wait_for)


def _feed_and_check(tmp_path, proc, port, src, loop):
    """Round 0 arrives with a .done marker, round 1 without (complete once its size is stable)."""
    wait_for(lambda: "collapse_up 1.0" in scrape(port), 120, proc, "the exporter")
    (src / loop).mkdir(parents=True, exist_ok=True)
    (src / loop / "loop.toml").write_text("bootstrap = 20\n")
    save_array(src / loop / "reference.npy", 0)
    save_array(src / loop / "round_0.npy", 1)
    (src / loop / "round_0.npy.done").touch()
    wait_for(lambda: f'collapse_round{{loop="{loop}"}} 0.0' in scrape(port), 240, proc, "round 0 to be audited")
    save_array(src / loop / "round_1.npy", 2, scale=0.6)
    text = wait_for(lambda: (t := scrape(port)) and f'collapse_watch_audited_files{{loop="{loop}"}} 2.0' in t and t,
                     240, proc, "round 1 to be audited")
    assert f'collapse_round{{loop="{loop}"}} 1.0' in text
    assert f'collapse_audits_total{{loop="{loop}"}} 2.0' in text  # counted by the flow runs, read from the store
    assert f'collapse_metric_value{{family="coverage",loop="{loop}",metric="recall",modality="embedding"}}' in text
    time.sleep(5)  # a few more scans: nothing is audited twice


def _check_store(home, src, loop):
    with TrajectoryStore(f"sqlite:///{home / 'store.db'}") as store:
        files = store.watched_files(loop)
        assert list(files["status"]) == ["audited", "audited"]
        assert len(store.trajectory(loop).query("metric == 'recall'")) == 2
        audits = store.round_audits(loop)
        assert sorted(audits) == [0, 1]
        assert all(a["audited_at"] < files["handled_at"].max() + 1 for a in audits.values())


def _cli_audit_on_the_daemons_api(tmp_path, home) -> str:
    """While serve runs: a CLI audit on its home is run by the daemon, on its advertised API; the API's URL."""
    import json

    api = json.loads((home / "prefect-api.json").read_text())
    assert api["url"].startswith("http://127.0.0.1:")
    save_array(tmp_path / "cli_ref.npy", 10)
    save_array(tmp_path / "cli_round.npy", 11)
    env = {k: v for k, v in __import__("os").environ.items() if k != "PREFECT_API_URL"}
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1))
    proc = subprocess.run([sys.executable, "-m", "monitor.cli", "--home", str(home), "audit", "cli-loop", "0",
                           str(tmp_path / "cli_round.npy"), "--reference", str(tmp_path / "cli_ref.npy"),
                           "--bootstrap", "0", "--json"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["loop"] == "cli-loop"
    # The temporary API's database outlives it (Prefect's home): this audit's run is the one on this round file.
    audits = [r for r in _completed_runs(api["url"]) if r["parameters"].get("loop") == "cli-loop"
              and r["parameters"].get("data_path") == str(tmp_path / "cli_round.npy") and r["created"] >= started]
    assert len(audits) == 1 and audits[0]["deployment_id"] is None  # the CLI's own flow run, on the daemon's API
    return api["url"]


def test_serve_watches_a_directory_audits_new_rounds_once_and_stops_on_sigterm(tmp_path):
    home, src, port = tmp_path / "home", tmp_path / "src", free_port()
    src.mkdir()
    proc = start_serve(home, src, port)
    try:
        _feed_and_check(tmp_path, proc, port, src, "lp")
        _cli_audit_on_the_daemons_api(tmp_path, home)
    except BaseException:
        out = stop_serve(proc)
        print(out[-5000:])
        raise
    out = stop_serve(proc)
    assert proc.returncode == 0, out[-3000:]
    assert "(ephemeral Prefect)" in out and "stopped" in out, out[-3000:]
    assert out.count("loop lp round 0 audited: ") == 1 and out.count("loop lp round 1 audited: ") == 1, out[-3000:]
    assert out.count("loop cli-loop round 0 audited: ") == 1, out[-3000:]  # the CLI's audit, run by the daemon
    _check_store(home, src, "lp")
    assert scrape(port) == ""  # the exporter went down with the process
    assert not (home / "prefect-api.json").exists()  # withdrawn on a clean stop


def test_a_stale_or_dead_api_record_is_ignored(tmp_path, monkeypatch):
    import json
    import os

    from monitor.cli import API_FILE, advertise_api, prepare_flows, running_api, withdraw_api

    assert running_api(tmp_path) is None  # no record
    (tmp_path / API_FILE).write_text("not json")
    assert running_api(tmp_path) is None
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / API_FILE).write_text(json.dumps({"url": "http://127.0.0.1:9/api", "pid": dead.pid}))
    assert running_api(tmp_path) is None and not (tmp_path / API_FILE).exists()  # a kill -9 left it: removed
    advertise_api(tmp_path, f"http://127.0.0.1:{free_port()}/api")  # alive (this process), nothing listening
    assert running_api(tmp_path, timeout=2) is None and (tmp_path / API_FILE).exists()
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert prepare_flows(tmp_path) is None and "PREFECT_API_URL" not in os.environ  # falls back to its own API
    withdraw_api(tmp_path)
    assert not (tmp_path / API_FILE).exists()


def test_serve_refuses_a_missing_watch_directory_before_starting(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "--home", str(tmp_path / "h"), "serve", "--watch",
         str(tmp_path / "nope"), "--port", "0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"collapse-monitor: error: {tmp_path / 'nope'}: the watched source is not a directory"


def _serve_fed_and_stopped(tmp_path, home, src, loop, env) -> str:
    """A daemon on a Prefect server fed two rounds (:func:`_feed_and_check`), then stopped cleanly; its output."""
    port = free_port()
    src.mkdir(exist_ok=True)
    proc = start_serve(home, src, port, env, interval=5)
    try:
        _feed_and_check(tmp_path, proc, port, src, loop)
    except BaseException:
        print(stop_serve(proc)[-5000:])
        raise
    out = stop_serve(proc)
    assert proc.returncode == 0, out[-3000:]
    return out


def _completed_runs(url: str) -> list[dict]:
    """The Prefect server's completed flow runs."""
    with urllib.request.urlopen(urllib.request.Request(
            f"{url}/flow_runs/filter", data=b'{"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}',
            headers={"Content-Type": "application/json"}, method="POST"), timeout=10) as resp:
        return __import__("json").loads(resp.read())


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_serve_uses_a_prefect_server_when_prefect_api_url_is_set(tmp_path):
    server, url = start_prefect_server(tmp_path)
    try:
        home, src = tmp_path / "home", tmp_path / "src"
        out = _serve_fed_and_stopped(tmp_path, home, src, "srv", {"PREFECT_API_URL": url})
        assert url in out and "ephemeral" not in out
        _check_store(home, src, "srv")
        # The server scheduled and recorded the deployment's runs.
        watch_runs = [r for r in _completed_runs(url) if r["deployment_id"] is not None]
        assert len(watch_runs) >= 3  # scans that audited round 0, round 1, and later ones that found nothing
    finally:
        stop_server(server)


def test_serve_once_scans_audits_and_exits(tmp_path, home, prefect_harness, capsys):
    from monitor.cli import main

    src = tmp_path / "src"
    (src / "lp").mkdir(parents=True)
    save_array(src / "lp" / "reference.npy", 0)
    save_array(src / "lp" / "round_0.npy", 1)
    (src / "lp" / "round_0.npy.done").touch()
    save_array(src / "lp" / "round_1.npy", 2)  # no marker, first sight: not complete yet
    (src / "lp" / "loop.toml").write_text("bootstrap = 10\n")
    assert main(["serve", "--watch", str(src), "--once"]) == 0
    assert "audited 1, refused 0, to retry 0" in capsys.readouterr().out
    assert main(["serve", "--watch", str(src), "--once"]) == 0  # round 1 now stable across two scans
    assert "audited 1, refused 0, to retry 0" in capsys.readouterr().out
    assert main(["serve", "--watch", str(src), "--once"]) == 0
    assert "audited 0, refused 0, to retry 0" in capsys.readouterr().out
    assert main(["serve", "--once"]) == 1
    assert capsys.readouterr().err.strip() == "collapse-monitor: error: --once needs --watch or --manifest"


@pytest.mark.postgres
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_serve_with_the_store_mlflow_and_a_prefect_server_all_on_postgres(tmp_path, postgres_databases):
    POSTGRES_SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432"  # as tests/conftest.py
    import mlflow

    store_url = f"{POSTGRES_SERVER}/{postgres_databases()}"
    mlflow_uri = f"{POSTGRES_SERVER}/{postgres_databases()}"
    prefect_db = POSTGRES_SERVER.replace("+psycopg2", "+asyncpg") + "/" + postgres_databases()
    server, url = start_prefect_server(tmp_path, prefect_db)
    try:
        _serve_fed_and_stopped(tmp_path, tmp_path / "home", tmp_path / "src", "pg", {
            "PREFECT_API_URL": url, "COLLAPSE_MONITOR_STORE_URL": store_url, "COLLAPSE_MONITOR_MLFLOW_URI": mlflow_uri})
        with TrajectoryStore(store_url) as store:
            assert len(store.trajectory("pg").query("metric == 'recall'")) == 2
            assert sorted(store.round_audits("pg")) == [0, 1]
        client = mlflow.MlflowClient(tracking_uri=mlflow_uri)
        (experiment,) = [e for e in client.search_experiments() if e.name == "collapse-monitor/pg"]
        runs = client.search_runs([experiment.experiment_id])
        assert sorted(r.data.tags.get("collapse_round", "loop") for r in runs) == ["0", "1", "loop"]
        assert len(_completed_runs(url)) >= 2  # the server, on Postgres, recorded the scans
    finally:
        stop_server(server)
