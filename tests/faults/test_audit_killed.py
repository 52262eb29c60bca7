"""SIGKILL of ``collapse-monitor audit`` at each phase, each followed by the next round's audit.

Each audit is a real process (``kill_at.py`` wraps the real function of that phase and kills itself with
SIGKILL there). One loop lives through the kills in turn, the way a long-running loop would: after each
kill, the next round's audit must repair whatever it left: the store is intact, every round stored exactly
once and whole, and every stored round in MLflow exactly once. After a kill mid-logging, running the killed
command again adds no MLflow point.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from fault_checks import audit, check_repaired

LOOP = "killed"

# (phase, does the killed audit's round reach the store): in this order, each killed at the next round and
# followed by the audit of the round after it. MLflow's database is created by the loop's first audit; the
# reference fit, cached by the first audit, gets a loop of its own.
PHASES_IN_TURN = [
    ("mlflow-database-creation", True),
    ("loading", False),
    ("metrics", False),
    ("store-commit", False),
    ("after-store-commit", True),
    ("mlflow-logging", True),
]
# Where the store's backend matters (a transaction cut, a commit MLflow never heard of): on Postgres too.
STORE_PHASES_IN_TURN = [("store-commit", False), ("after-store-commit", True)]


@pytest.fixture(scope="module")
def many_rounds(tmp_path_factory):
    """A reference and 14 rounds contracting slowly towards the mean."""
    d = tmp_path_factory.mktemp("rounds")
    rng = np.random.default_rng(11)
    np.save(d / "reference.npy", rng.normal(size=(400, 8)).astype(np.float32))
    paths = []
    for r in range(14):
        paths.append(d / f"round_{r}.npy")
        np.save(paths[-1], (rng.normal(size=(300, 8)) * (1.0 - 0.03 * r)).astype(np.float32))
    return d / "reference.npy", paths


def _env(prefect_api: str, token: str, store_url: str | None) -> dict:
    env = {**os.environ, "PREFECT_API_URL": prefect_api, token.split("=")[0]: token.split("=")[1]}
    for name in ("COLLAPSE_MONITOR_STORE_URL", "COLLAPSE_MONITOR_MLFLOW_URI", "COLLAPSE_MONITOR_RULES"):
        env.pop(name, None)
    if store_url is not None:
        env["COLLAPSE_MONITOR_STORE_URL"] = store_url
    return env


def _kills_in_turn(phases, home, env, rounds, ref, stored: frozenset[int] = frozenset()) -> None:
    stored = set(stored)
    rnd = 0
    for phase, reaches_store in phases:
        killed = audit(LOOP, phase, home, env, rnd, rounds[rnd], ref)
        assert killed.returncode == -signal.SIGKILL, (phase, killed.returncode, killed.stderr[-3000:])
        nxt = audit(LOOP, "none", home, env, rnd + 1, rounds[rnd + 1], ref)
        assert nxt.returncode == 0, (phase, nxt.stderr[-3000:])
        stored |= {rnd, rnd + 1} if reaches_store else {rnd + 1}
        check_repaired(home, env, LOOP, stored)
        if phase == "mlflow-database-creation":  # it held no run: moved aside, recreated, every round logged
            assert len(list(home.glob("mlflow.db.broken-*"))) == 1
            assert "MLflow cannot open this database" in nxt.stderr + nxt.stdout
        if phase == "mlflow-logging":  # the case that used to duplicate points: re-run the killed command
            again = audit(LOOP, "none", home, env, rnd, rounds[rnd], ref)
            assert again.returncode == 0, again.stderr[-3000:]
            check_repaired(home, env, LOOP, stored)
        rnd += 2


def test_a_loop_killed_at_every_phase_in_turn_is_repaired_by_each_next_audit(tmp_path, many_rounds, prefect_api,
                                                                             no_process_outlives):
    ref, rounds = many_rounds
    _kills_in_turn(PHASES_IN_TURN, tmp_path / "home", _env(prefect_api, no_process_outlives, None), rounds, ref)


def test_an_audit_killed_while_fitting_the_reference_is_repaired_by_the_next_audit(tmp_path, many_rounds,
                                                                                   prefect_api, no_process_outlives):
    ref, rounds = many_rounds
    _kills_in_turn([("reference-fit", False)], tmp_path / "home", _env(prefect_api, no_process_outlives, None),
                   rounds, ref)


@pytest.mark.postgres
def test_kills_around_the_commit_of_a_postgres_store_are_repaired(tmp_path, many_rounds, prefect_api,
                                                                  no_process_outlives, postgres_url):
    ref, rounds = many_rounds
    env = _env(prefect_api, no_process_outlives, postgres_url)
    first = audit(LOOP, "none", tmp_path / "home", env, 13, rounds[13], ref)  # the reference fit, cached
    assert first.returncode == 0, first.stderr[-3000:]
    _kills_in_turn(STORE_PHASES_IN_TURN, tmp_path / "home", env, rounds, ref, frozenset({13}))
