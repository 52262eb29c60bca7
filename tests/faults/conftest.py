"""The fault-injection suite: real processes killed at each phase, then the state checked and repaired.

Every test here carries the ``faults`` marker (``pytest -m faults`` runs the suite alone). After each fault
the tests check the same four things (:func:`check_repaired`): the store passes an integrity check, every
round is stored exactly once and whole, every stored round reached MLflow exactly once, and no process
the test started outlives it (:func:`no_process_outlives`).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    """One real ``prefect server start`` for the module's audits (a temporary API per command costs ~10 s)."""
    from processes import start_prefect_server, stop_server

    server, url = start_prefect_server(tmp_path_factory.mktemp("prefect"))
    yield url
    stop_server(server)


def _marked(token: str) -> list[int]:
    """Live processes whose environment carries ``token`` (children inherit it, reparented or not)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if token.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:  # gone, or not ours to read
            continue
    return found


@pytest.fixture
def no_process_outlives():
    """An environment marker for the test's processes; at teardown none of them may be alive (they are killed)."""
    token = f"COLLAPSE_FAULT_TOKEN={uuid.uuid4().hex}"
    yield token
    deadline = time.monotonic() + 15  # a child tied to its parent's death gets a moment to exit
    while (alive := _marked(token)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert alive == [], f"processes outlived the test: {alive}"
