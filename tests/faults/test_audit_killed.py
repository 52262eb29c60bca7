"""SIGKILL of ``collapse-monitor audit`` at each phase, then the next audit.

Each audit is a real process (``kill_at.py`` wraps the real function of that phase and kills itself with
SIGKILL there). After the kill, the next round's audit must repair whatever the kill left: the store is
intact, every round stored exactly once and whole, and every stored round in MLflow exactly once. After a
kill mid-logging, running the killed command again adds no MLflow point.
"""

from __future__ import annotations

import os
import signal

import pytest
from fault_checks import audit, check_repaired

LOOP = "killed"
# Where the store's backend matters (a transaction cut, a commit MLflow never heard of), on SQLite and Postgres;
# the other phases on SQLite.
STORE_PHASES = ["store-commit", "after-store-commit"]
OTHER_PHASES = ["loading", "reference-fit", "metrics", "mlflow-database-creation", "mlflow-logging"]
FIRST_AUDIT_PHASES = {"reference-fit", "mlflow-database-creation"}  # cached or created by a loop's first audit


def _run_fault(phase, tmp_path, shrinking_rounds, prefect_api, token, store_url=None):
    ref, rounds = shrinking_rounds
    home = tmp_path / "home"
    env = {**os.environ, "PREFECT_API_URL": prefect_api, token.split("=")[0]: token.split("=")[1]}
    for name in ("COLLAPSE_MONITOR_STORE_URL", "COLLAPSE_MONITOR_MLFLOW_URI", "COLLAPSE_MONITOR_RULES"):
        env.pop(name, None)
    if store_url is not None:
        env["COLLAPSE_MONITOR_STORE_URL"] = store_url
    first_audit = phase in FIRST_AUDIT_PHASES
    if not first_audit:
        first = audit(LOOP, "none", home, env, 0, rounds[0], ref)
        assert first.returncode == 0, first.stderr[-3000:]
    killed_round = 0 if first_audit else 1
    killed = audit(LOOP, phase, home, env, killed_round, rounds[killed_round], ref)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-3000:])

    # The next audit repairs what the kill left, then the killed command, run again, completes the loop.
    nxt = audit(LOOP, "none", home, env, 2, rounds[2], ref)
    assert nxt.returncode == 0, nxt.stderr[-3000:]
    committed = phase in ("after-store-commit", "mlflow-database-creation", "mlflow-logging")
    expected = {2} | ({0} if not first_audit else set()) | ({killed_round} if committed else set())
    check_repaired(home, env, LOOP, expected)
    if phase == "mlflow-logging":  # the case that used to duplicate points: re-run the killed command
        again = audit(LOOP, "none", home, env, killed_round, rounds[killed_round], ref)
        assert again.returncode == 0, again.stderr[-3000:]
        check_repaired(home, env, LOOP, expected | {killed_round})
    return home, nxt


@pytest.mark.parametrize("phase", OTHER_PHASES)
def test_an_audit_killed_at_a_phase_is_repaired_by_the_next_run(phase, tmp_path, shrinking_rounds, prefect_api,
                                                                 no_process_outlives):
    home, nxt = _run_fault(phase, tmp_path, shrinking_rounds, prefect_api, no_process_outlives)
    if phase == "mlflow-database-creation":  # the half-migrated database held no run: moved aside, recreated
        assert len(list(home.glob("mlflow.db.broken-*"))) == 1
        assert "MLflow cannot open this database" in nxt.stderr + nxt.stdout


@pytest.mark.parametrize("phase", STORE_PHASES)
def test_an_audit_killed_around_the_store_commit_is_repaired_on_each_store(phase, tmp_path, shrinking_rounds,
                                                                           prefect_api, no_process_outlives,
                                                                           store_url):
    _run_fault(phase, tmp_path, shrinking_rounds, prefect_api, no_process_outlives, store_url)
