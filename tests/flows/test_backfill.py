"""Backfill: re-audit a loop from its recorded sources; stale-only by default, resumable, no duplicates."""

import json

import pytest
from mlflow.tracking import MlflowClient

import metrics_core
from flows.audit import audit_round
from flows.backfill import backfill_loop
from monitor.options import AuditOptions
from monitor.cli import main
from monitor.config import load_settings
from monitor.errors import CollapseMonitorError
from monitor.store import TrajectoryStore
from monitor.publishing.tracking import find_loop_run

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _recall_points(loop):
    settings = load_settings()
    run = find_loop_run(settings.mlflow_uri, loop, settings.artifact_root)
    return sorted(h.step for h in MlflowClient(settings.mlflow_uri).get_metric_history(run.info.run_id, "recall"))


def test_backfill_reaudits_stale_rounds_and_resumes_after_a_failure(home, shrinking_rounds, capsys):
    ref, rounds = shrinking_rounds
    for r, path in enumerate(rounds):
        audit_round("bf", r, str(path), str(ref), AuditOptions(n_boot=0))
    store = TrajectoryStore(load_settings().store_url)
    assert [s["round"] for s in store.sources("bf")] == [0, 1, 2, 3]
    assert store.sources("bf")[2]["options"]["n_boot"] == 0
    # Everything is current: nothing to do.
    assert backfill_loop("bf") == {"loop": "bf", "audited": [], "skipped": [0, 1, 2, 3], "resumed": False}
    # Rounds audited by an older metrics version are stale.
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE metric_values SET metrics_version = '1' WHERE loop = 'bf' AND round IN (1, 3)")
    assert backfill_loop("bf")["audited"] == [1, 3]
    assert {a["metrics_version"] for a in store.round_audits("bf").values()} == {metrics_core.METRICS_VERSION}

    # A forced backfill stops at round 2 (its file went missing), then resumes where it stopped.
    moved = rounds[2].with_suffix(".moved")
    rounds[2].rename(moved)
    with pytest.raises(Exception, match="round_2.npy"):
        backfill_loop("bf", force=True)
    before = store.round_audits("bf")
    moved.rename(rounds[2])
    capsys.readouterr()
    assert main(["backfill", "bf", "--force", "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed == {"loop": "bf", "audited": [2, 3], "skipped": [0, 1], "resumed": True}
    after = store.round_audits("bf")
    assert [after[r]["audited_at"] for r in (0, 1)] == [before[r]["audited_at"] for r in (0, 1)]
    assert after[2]["audited_at"] > before[2]["audited_at"]
    # No duplicates: one row per (round, metric), one MLflow point per round (unchanged data is not relogged).
    traj = store.trajectory("bf")
    assert not traj.duplicated(["round", "metric"]).any()
    assert _recall_points("bf") == [0, 1, 2, 3]
    # The finished backfill is closed: the next forced one starts afresh.
    assert backfill_loop("bf", force=True)["resumed"] is False
    store.close()


def test_backfill_of_a_loop_without_sources_is_refused(home, capsys):
    with pytest.raises(CollapseMonitorError, match="no recorded round sources"):
        backfill_loop("never")
    assert main(["backfill", "never"]) == 1
    assert "loop 'never': no recorded round sources" in capsys.readouterr().err
