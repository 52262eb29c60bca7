"""The suite's audit runner and its four checks after a fault (importable: pytest puts this folder on sys.path)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from mlflow.tracking import MlflowClient

from monitor.publishing import tracking
from monitor.config import load_settings
from monitor.store import TrajectoryStore

KILL_AT = Path(__file__).with_name("kill_at.py")


def audit(loop: str, phase: str, home: Path, env: dict, rnd: int, data: Path, ref: Path) -> subprocess.CompletedProcess:
    """``collapse-monitor --home HOME audit LOOP RND DATA --reference REF --bootstrap 0``, killed at ``phase``."""
    return subprocess.run(
        [sys.executable, str(KILL_AT), phase, "--home", str(home), "audit", loop, str(rnd), str(data), "--reference",
         str(ref), "--bootstrap", "0"], env=env, capture_output=True, text=True, timeout=300, check=False)


def check_repaired(home: Path, env: dict, loop: str, expected_rounds: set[int]) -> None:
    """The four checks after a fault, on the loop as the next run left it."""
    settings = load_settings(home)
    store_url = env.get("COLLAPSE_MONITOR_STORE_URL", settings.store_url)
    # 1. The store passes an integrity check.
    if store_url.startswith("sqlite:///"):
        con = sqlite3.connect(store_url[len("sqlite:///"):])
        try:
            assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            con.close()
    with TrajectoryStore(store_url) as store:
        # 2. Every round exactly once, and whole: one row per (round, metric), every metric of the others.
        traj = store.trajectory(loop)
        assert set(traj["round"]) == expected_rounds
        assert not traj.duplicated(["round", "metric"]).any()
        per_round = traj.groupby("round")["metric"].apply(frozenset)
        assert per_round.nunique() == 1, per_round
        with store.engine.connect() as conn:  # one audit's rows per round, never a mix of two
            mixed = conn.execute(sa.text("SELECT round FROM metric_values WHERE loop = :l GROUP BY round "
                                         "HAVING count(DISTINCT audited_at) > 1"), {"l": loop}).all()
        assert mixed == []
        # 3. Every stored round in MLflow exactly once: confirmed, one round run, one point a step.
        assert tracking.unconfirmed_rounds(store, loop) == {}
    runs = tracking.round_runs(settings.mlflow_uri, loop, settings.artifact_root)
    assert [int(r.data.tags["collapse_round"]) for r in runs] == sorted(expected_rounds)
    parent = tracking.find_loop_run(settings.mlflow_uri, loop, settings.artifact_root)
    steps = sorted(h.step for h in MlflowClient(settings.mlflow_uri).get_metric_history(parent.info.run_id, "recall"))
    assert steps == sorted(expected_rounds)
