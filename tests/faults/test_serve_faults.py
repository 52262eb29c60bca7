"""Daemons killed and crowded: ``serve`` killed with its whole process tree mid-audit, two daemons on one Prefect
database, and a killed command's temporary Prefect API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from monitor.store import TrajectoryStore
from processes import (Output, alive, children, descendants_alive, free_port, save_array, scrape, start_serve,
                       stop_serve, wait_for)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_daemon_killed_mid_audit_is_replaced_by_one_that_scans_again(tmp_path):
    home, src = tmp_path / "home", tmp_path / "src"
    prefect_home = {"PREFECT_HOME": str(tmp_path / "prefect-home")}  # one Prefect database across both daemons
    (src / "lp").mkdir(parents=True)
    (src / "lp" / "loop.toml").write_text("bootstrap = 20\n")
    save_array(src / "lp" / "reference.npy", 0)
    save_array(src / "lp" / "round_0.npy", 1)
    (src / "lp" / "round_0.npy.done").touch()
    port = free_port()
    first = start_serve(home, src, port, prefect_home)
    output = Output(first)
    try:
        wait_for(lambda: "watch: auditing lp/0" in output.text(), 240, first, "the first daemon to start auditing")
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the whole tree, mid-audit
        first.wait(timeout=30)
    time.sleep(2)
    assert descendants_alive(first.pid) == []  # nothing it started outlives it
    port = free_port()
    second = start_serve(home, src, port, prefect_home)
    try:
        wait_for(lambda: 'collapse_round{loop="lp"} 0.0' in scrape(port), 300, second,
                  "the restarted daemon to audit round 0")
    except BaseException:
        print(stop_serve(second)[-5000:])
        raise
    out = stop_serve(second)
    assert "left by a killed daemon as crashed" in out, out[-3000:]
    with TrajectoryStore(f"sqlite:///{home / 'store.db'}") as store:
        assert len(store.trajectory("lp").query("metric == 'recall'")) == 1  # exactly once


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_two_daemons_on_one_prefect_database_keep_to_their_own_sources(tmp_path):
    prefect_home = {"PREFECT_HOME": str(tmp_path / "prefect-home")}
    daemons = []
    for name in ("a", "b"):
        home, src = tmp_path / f"home-{name}", tmp_path / f"src-{name}"
        (src / name).mkdir(parents=True)
        save_array(src / name / "reference.npy", 0)
        save_array(src / name / "round_0.npy", 1)
        (src / name / "round_0.npy.done").touch()
        (src / name / "loop.toml").write_text("bootstrap = 10\n")
        port = free_port()
        daemons.append((name, home, port, start_serve(home, src, port, prefect_home)))
    try:
        for name, _, port, proc in daemons:
            wait_for(lambda: f'collapse_round{{loop="{name}"}} 0.0' in scrape(port), 300, proc,
                      f"daemon {name} to audit its round")
        time.sleep(6)  # a few more scans of each
        for name, _, port, _ in daemons:
            other = "b" if name == "a" else "a"
            assert f'loop="{other}"' not in scrape(port)
    finally:
        outs = [stop_serve(proc) for *_, proc in daemons]
    for (name, home, _, _), out in zip(daemons, outs):
        with TrajectoryStore(f"sqlite:///{home / 'store.db'}") as store:
            assert store.loops() == [name], out[-3000:]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
@pytest.mark.parametrize("verb", ["audit", "serve"])
def test_a_killed_command_takes_its_temporary_prefect_api_with_it(tmp_path, verb):
    home, src = tmp_path / "home", tmp_path / "src"
    (src / "lp").mkdir(parents=True)
    save_array(src / "lp" / "reference.npy", 0)
    save_array(src / "lp" / "round_0.npy", 1)
    env = {**os.environ, "COLLAPSE_MONITOR_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    argv = (["audit", "lp", "0", str(src / "lp" / "round_0.npy"), "--reference", str(src / "lp" / "reference.npy")]
            if verb == "audit" else ["serve", "--watch", str(src), "--port", str(free_port())])
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", *argv], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        api = wait_for(lambda: [p for p, args in children(proc.pid) if "uvicorn" in args], 180, proc,
                        "the temporary Prefect API")
        proc.kill()  # SIGKILL: no atexit, no finally
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(alive(p) for p in api) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(alive(p) for p in api), f"the temporary API outlived its {verb}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p, args in children(1):
            if "uvicorn" in args and str(tmp_path) in open(f"/proc/{p}/environ", "rb").read().decode(errors="replace"):
                os.kill(p, signal.SIGKILL)  # never leave one behind, even when the test fails
