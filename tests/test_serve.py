"""``collapse-monitor serve --watch``: a real long-lived process fed round files, scraped, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from monitor.store import TrajectoryStore
from processes import free_port, start_prefect_server, stop_server, wait_for


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return resp.read().decode()
    except OSError:
        return ""


def _save(path, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    np.save(path, (rng.normal(size=(120, 6)) * scale).astype(np.float32))


def _start_serve(home, src, port, extra_env=None, interval=2):
    env = {**os.environ, "COLLAPSE_MONITOR_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "INFO", **(extra_env or {})}
    if not (extra_env and "PREFECT_API_URL" in extra_env):
        env.pop("PREFECT_API_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "serve", "--watch", str(src), "--interval", str(interval), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
    )


def _stop(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"serve did not stop within 60 s of SIGTERM:\n{out[-3000:]}")
    return out


def _feed_and_check(tmp_path, proc, port, src, loop):
    """Round 0 arrives with a .done marker, round 1 without (complete once its size is stable)."""
    wait_for(lambda: "collapse_up 1.0" in _scrape(port), 120, proc, "the exporter")
    (src / loop).mkdir(parents=True, exist_ok=True)
    (src / loop / "loop.toml").write_text("bootstrap = 20\n")
    _save(src / loop / "reference.npy", 0)
    _save(src / loop / "round_0.npy", 1)
    (src / loop / "round_0.npy.done").touch()
    wait_for(lambda: f'collapse_round{{loop="{loop}"}} 0.0' in _scrape(port), 240, proc, "round 0 to be audited")
    _save(src / loop / "round_1.npy", 2, scale=0.6)
    text = wait_for(lambda: (t := _scrape(port)) and f'collapse_watch_audited_files{{loop="{loop}"}} 2.0' in t and t,
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


def test_serve_watches_a_directory_audits_new_rounds_once_and_stops_on_sigterm(tmp_path):
    home, src, port = tmp_path / "home", tmp_path / "src", free_port()
    src.mkdir()
    proc = _start_serve(home, src, port)
    try:
        _feed_and_check(tmp_path, proc, port, src, "lp")
    except BaseException:
        out = _stop(proc)
        print(out[-5000:])
        raise
    out = _stop(proc)
    assert proc.returncode == 0, out[-3000:]
    assert "(ephemeral Prefect)" in out and "stopped" in out, out[-3000:]
    assert out.count("round 0 audited: ") == 1 and out.count("round 1 audited: ") == 1, out[-3000:]
    _check_store(home, src, "lp")
    assert _scrape(port) == ""  # the exporter went down with the process


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
    proc = _start_serve(home, src, port, env, interval=5)
    try:
        _feed_and_check(tmp_path, proc, port, src, loop)
    except BaseException:
        print(_stop(proc)[-5000:])
        raise
    out = _stop(proc)
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
    _save(src / "lp" / "reference.npy", 0)
    _save(src / "lp" / "round_0.npy", 1)
    (src / "lp" / "round_0.npy.done").touch()
    _save(src / "lp" / "round_1.npy", 2)  # no marker, first sight: not complete yet
    (src / "lp" / "loop.toml").write_text("bootstrap = 10\n")
    assert main(["serve", "--watch", str(src), "--once"]) == 0
    assert "audited 1, refused 0, to retry 0" in capsys.readouterr().out
    assert main(["serve", "--watch", str(src), "--once"]) == 0  # round 1 now stable across two scans
    assert "audited 1, refused 0, to retry 0" in capsys.readouterr().out
    assert main(["serve", "--watch", str(src), "--once"]) == 0
    assert "audited 0, refused 0, to retry 0" in capsys.readouterr().out
    assert main(["serve", "--once"]) == 1
    assert capsys.readouterr().err.strip() == "collapse-monitor: error: --once needs --watch or --manifest"


class _Output:
    """A serve process's output, read by a thread so the test can wait for a line while it runs."""

    def __init__(self, proc):
        import threading

        self.lines: list[str] = []
        self._thread = threading.Thread(target=lambda: self.lines.extend(iter(proc.stdout.readline, "")),
                                        daemon=True)
        self._thread.start()

    def text(self) -> str:
        return "".join(self.lines)


def _descendants_alive(pgid: int) -> list[int]:
    """Processes still in a killed daemon's process group (its temporary Prefect API, flow-run children)."""
    out = subprocess.run(["ps", "-eo", "pid=,pgid="], capture_output=True, text=True).stdout.split("\n")
    return [int(p) for p, g in (line.split() for line in out if line.strip()) if int(g) == pgid]


@pytest.mark.faults
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_daemon_killed_mid_audit_is_replaced_by_one_that_scans_again(tmp_path):
    home, src = tmp_path / "home", tmp_path / "src"
    prefect_home = {"PREFECT_HOME": str(tmp_path / "prefect-home")}  # one Prefect database across both daemons
    (src / "lp").mkdir(parents=True)
    (src / "lp" / "loop.toml").write_text("bootstrap = 20\n")
    _save(src / "lp" / "reference.npy", 0)
    _save(src / "lp" / "round_0.npy", 1)
    (src / "lp" / "round_0.npy.done").touch()
    port = free_port()
    first = _start_serve(home, src, port, prefect_home)
    output = _Output(first)
    try:
        wait_for(lambda: "watch: auditing lp/0" in output.text(), 240, first, "the first daemon to start auditing")
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the whole tree, mid-audit
        first.wait(timeout=30)
    time.sleep(2)
    assert _descendants_alive(first.pid) == []  # nothing it started outlives it
    port = free_port()
    second = _start_serve(home, src, port, prefect_home)
    try:
        wait_for(lambda: 'collapse_round{loop="lp"} 0.0' in _scrape(port), 300, second,
                  "the restarted daemon to audit round 0")
    except BaseException:
        print(_stop(second)[-5000:])
        raise
    out = _stop(second)
    assert "left by a killed daemon as crashed" in out, out[-3000:]
    with TrajectoryStore(f"sqlite:///{home / 'store.db'}") as store:
        assert len(store.trajectory("lp").query("metric == 'recall'")) == 1  # exactly once


@pytest.mark.faults
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_two_daemons_on_one_prefect_database_keep_to_their_own_sources(tmp_path):
    prefect_home = {"PREFECT_HOME": str(tmp_path / "prefect-home")}
    daemons = []
    for name in ("a", "b"):
        home, src = tmp_path / f"home-{name}", tmp_path / f"src-{name}"
        (src / name).mkdir(parents=True)
        _save(src / name / "reference.npy", 0)
        _save(src / name / "round_0.npy", 1)
        (src / name / "round_0.npy.done").touch()
        (src / name / "loop.toml").write_text("bootstrap = 10\n")
        port = free_port()
        daemons.append((name, home, port, _start_serve(home, src, port, prefect_home)))
    try:
        for name, _, port, proc in daemons:
            wait_for(lambda: f'collapse_round{{loop="{name}"}} 0.0' in _scrape(port), 300, proc,
                      f"daemon {name} to audit its round")
        time.sleep(6)  # a few more scans of each
        for name, _, port, _ in daemons:
            other = "b" if name == "a" else "a"
            assert f'loop="{other}"' not in _scrape(port)
    finally:
        outs = [_stop(proc) for *_, proc in daemons]
    for (name, home, _, _), out in zip(daemons, outs):
        with TrajectoryStore(f"sqlite:///{home / 'store.db'}") as store:
            assert store.loops() == [name], out[-3000:]


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


def _children(pid: int) -> list[tuple[int, str]]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
    rows = [line.split(None, 2) for line in out.splitlines() if line.strip()]
    return [(int(p), args) for p, pp, args in (r for r in rows if len(r) == 3) if int(pp) == pid]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is dead
        return fh.read().split(") ", 1)[1][0] != "Z"


@pytest.mark.faults
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
@pytest.mark.parametrize("verb", ["audit", "serve"])
def test_a_killed_command_takes_its_temporary_prefect_api_with_it(tmp_path, verb):
    home, src = tmp_path / "home", tmp_path / "src"
    (src / "lp").mkdir(parents=True)
    _save(src / "lp" / "reference.npy", 0)
    _save(src / "lp" / "round_0.npy", 1)
    env = {**os.environ, "COLLAPSE_MONITOR_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    argv = (["audit", "lp", "0", str(src / "lp" / "round_0.npy"), "--reference", str(src / "lp" / "reference.npy")]
            if verb == "audit" else ["serve", "--watch", str(src), "--port", str(free_port())])
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", *argv], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        api = wait_for(lambda: [p for p, args in _children(proc.pid) if "uvicorn" in args], 180, proc,
                        "the temporary Prefect API")
        proc.kill()  # SIGKILL: no atexit, no finally
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in api) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(_alive(p) for p in api), f"the temporary API outlived its {verb}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p, args in _children(1):
            if "uvicorn" in args and str(tmp_path) in open(f"/proc/{p}/environ", "rb").read().decode(errors="replace"):
                os.kill(p, signal.SIGKILL)  # never leave one behind, even when the test fails
