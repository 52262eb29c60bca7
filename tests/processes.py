"""Helpers for tests that run real processes: free ports, waiting on them, a real ``prefect server start``.

Importable from any test module (pytest puts ``tests/`` on ``sys.path`` for its ``conftest.py``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, proc, what: str):
    """Poll ``predicate`` every second until it is truthy; fail if ``proc`` exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[:4]} exited ({proc.returncode}) while waiting for {what}")
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def start_prefect_server(state_dir, database_url: str | None = None) -> tuple[subprocess.Popen, str]:
    """A real ``prefect server start`` on a free port, its state under ``state_dir``; ``(process, API URL)``."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(state_dir / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2", "PREFECT_UI_ENABLED": "false",
           "PREFECT_API_DATABASE_CONNECTION_URL": database_url or f"sqlite+aiosqlite:///{state_dir / 'prefect.db'}"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                             str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"

    def healthy():
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=3) as resp:
                return resp.status == 200
        except OSError:
            return False

    wait_for(healthy, 180, proc, "the Prefect server")
    return proc, url


def stop_server(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)


# -- collapse-monitor serve ------------------------------------------------------------------

def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return resp.read().decode()
    except OSError:
        return ""


def save_array(path, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    np.save(path, (rng.normal(size=(120, 6)) * scale).astype(np.float32))


def start_serve(home, src, port, extra_env=None, interval=2):
    env = {**os.environ, "COLLAPSE_MONITOR_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "INFO", **(extra_env or {})}
    if not (extra_env and "PREFECT_API_URL" in extra_env):
        env.pop("PREFECT_API_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "serve", "--watch", str(src), "--interval", str(interval), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
    )


def stop_serve(proc) -> str:
    """SIGTERM a serve process and return its output; fail if it does not stop within 60 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"serve did not stop within 60 s of SIGTERM:\n{out[-3000:]}")
    return out


class Output:
    """A serve process's output, read by a thread so the test can wait for a line while it runs."""

    def __init__(self, proc):
        import threading

        self.lines: list[str] = []
        self._thread = threading.Thread(target=lambda: self.lines.extend(iter(proc.stdout.readline, "")),
                                        daemon=True)
        self._thread.start()

    def text(self) -> str:
        return "".join(self.lines)


def descendants_alive(pgid: int) -> list[int]:
    """Processes still in a killed daemon's process group (its temporary Prefect API, flow-run children)."""
    out = subprocess.run(["ps", "-eo", "pid=,pgid="], capture_output=True, text=True).stdout.split("\n")
    return [int(p) for p, g in (line.split() for line in out if line.strip()) if int(g) == pgid]


def children(pid: int) -> list[tuple[int, str]]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
    rows = [line.split(None, 2) for line in out.splitlines() if line.strip()]
    return [(int(p), args) for p, pp, args in (r for r in rows if len(r) == 3) if int(pp) == pid]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is dead
        return fh.read().split(") ", 1)[1][0] != "Z"
