"""A full disk (a small tmpfs) and a tracking server that hangs: the audit fails or degrades in one line, nothing is
lost, and the next run repairs the state."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_checks import audit, check_repaired

from monitor.publishing import tracking
from monitor.store import TrajectoryStore


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB tmpfs, unmounted after the test; skipped where mounting needs privileges the tests lack."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("a full disk is simulated with a tmpfs mount, which needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True,
                          text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    """Fill the disk to the last byte; returns the filler file."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as fh:  # unbuffered: nothing left to flush at close
        for block in (1 << 20, 4096, 1):
            try:
                while fh.write(b"\0" * block):
                    pass
            except OSError:
                pass
    return filler


def test_a_full_disk_fails_the_audit_in_one_line_and_the_next_run_repairs_the_state(
        small_disk, shrinking_rounds, prefect_api, no_process_outlives):
    ref, rounds = shrinking_rounds
    home = small_disk / "home"
    key, value = no_process_outlives.split("=")
    env = {**os.environ, "PREFECT_API_URL": prefect_api, key: value}
    for name in ("COLLAPSE_MONITOR_STORE_URL", "COLLAPSE_MONITOR_MLFLOW_URI", "COLLAPSE_MONITOR_RULES"):
        env.pop(name, None)
    first = audit("disk", "none", home, env, 0, rounds[0], ref)
    assert first.returncode == 0, first.stderr[-3000:]
    filler = _fill(small_disk)
    full = audit("disk", "none", home, env, 1, rounds[1], ref)
    assert full.returncode == 1, full.stderr[-3000:]
    last = full.stderr.strip().splitlines()[-1]
    # the first write that fails is named: the round's Evidently report, or the store's database
    assert re.fullmatch(r"collapse-monitor: error: (\S+\.html: )?no space left on device.*", last), full.stderr[-3000:]
    assert "Traceback" not in full.stderr, full.stderr[-3000:]
    filler.unlink()
    nxt = audit("disk", "none", home, env, 2, rounds[2], ref)
    assert nxt.returncode == 0, nxt.stderr[-3000:]
    check_repaired(home, env, "disk", {0, 2})


def test_a_hanging_tracking_server_delays_the_audit_by_its_timeout_and_the_round_waits_in_the_store(
        tmp_path, shrinking_rounds, prefect_api, no_process_outlives):
    """A server that accepts connections and never answers: the audit completes; MLflow gets the round later."""
    ref, rounds = shrinking_rounds
    home = tmp_path / "home"
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)  # connections queue in the backlog and are never answered
    key, value = no_process_outlives.split("=")
    env = {**os.environ, "PREFECT_API_URL": prefect_api, key: value,
           "COLLAPSE_MONITOR_MLFLOW_URI": f"http://127.0.0.1:{hung.getsockname()[1]}",
           "MLFLOW_HTTP_REQUEST_TIMEOUT": "3"}
    env.pop("COLLAPSE_MONITOR_STORE_URL", None)
    try:
        started = time.monotonic()
        result = audit("hang", "none", home, env, 0, rounds[0], ref)
        elapsed = time.monotonic() - started
    finally:
        hung.close()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wait in the store" in result.stderr + result.stdout
    assert elapsed < 120
    with TrajectoryStore(f"sqlite:///{home / 'store.db'}") as store:
        assert len(store.trajectory("hang")) > 0
        assert list(tracking.unconfirmed_rounds(store, "hang")) == [0]
