"""The audit path end to end with real components: Prefect, SQLite, MLflow, HTTP scrape."""

import urllib.request

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from flows.audit import audit_round
from monitor.options import AuditOptions
import metrics_core
from metrics_core.registry import metric_names
from monitor.config import load_settings
from monitor.publishing.exporter import StoreCollector, Exporter
from monitor.store import TrajectoryStore
from monitor.publishing.tracking import experiment_name, find_round_run, round_runs, unconfirmed_rounds

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _scrape(url: str) -> dict[tuple[str, tuple], float]:
    body = urllib.request.urlopen(url, timeout=10).read().decode()
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _loop_run(settings, loop):
    """The loop's experiment's parent runs (runs without a parent)."""
    client = MlflowClient(settings.mlflow_uri)
    exp = client.get_experiment_by_name(experiment_name(loop))
    runs = client.search_runs([exp.experiment_id])
    return client, [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


def test_audit_flow_store_mlflow_and_exporter(home, shrinking_rounds):
    ref, rounds = shrinking_rounds
    results = [audit_round("loop-a", r, str(p), str(ref)) for r, p in enumerate(rounds)]
    last = results[-1]
    assert set(last) == {"loop", "round", "metrics", "derivatives", "alerts", "risk", "transitions", "signals",
                         "guarantee", "status"}
    assert last["guarantee"] is None  # no pool: no null, the derivative rules
    assert list(last["metrics"]) == ["evidently_drift_share", *metric_names("embedding")]  # the report's, then the suite
    for name in metric_names("embedding"):  # bootstrapped; Evidently's share has no interval
        m = last["metrics"][name]
        assert m["ci_low"] <= m["value"] <= m["ci_high"]
    assert last["metrics"]["evidently_drift_share"]["ci_low"] is None
    # Contraction: recall falls round over round, and the loop ends critical.
    recalls = [r["metrics"]["recall"]["value"] for r in results]
    assert recalls == sorted(recalls, reverse=True) and recalls[0] - recalls[-1] > 0.2
    assert last["status"] == "critical"
    recall_alert = next(a for a in last["alerts"] if a["metric"] == "recall")
    assert recall_alert["severity"] == "critical"
    why = recall_alert["explanation"]
    assert [v["value"] for v in why["recent_values"]] == pytest.approx(recalls)
    assert why["decline_began_round"] == 0 and why["intervention"].startswith("stop the loop")
    assert last["derivatives"]["recall"]["delta"] == pytest.approx(recalls[3] - recalls[2])
    assert last["derivatives"]["recall"]["zscore"] < 0 and last["risk"]["risk"] > 0.5
    assert last["risk"]["driver_family"] in {"coverage", "diversity", "fidelity"}
    history = [(t["metric"], t["to"]) for r in results for t in r["transitions"]]
    assert ("recall", "critical") in history

    settings = load_settings()
    store = TrajectoryStore(settings.store_url)
    traj = store.trajectory("loop-a")
    assert len(traj) == 4 * (1 + len(metric_names("embedding")))  # with Evidently's drift share
    assert traj[traj.metric == "recall"]["value"].tolist() == pytest.approx(recalls)

    # MLflow: the loop's experiment has one parent run, one point per round at step = round...
    client, runs = _loop_run(settings, "loop-a")
    assert len(runs) == 1
    parent = runs[0].info.run_id
    history = client.get_metric_history(parent, "recall")
    assert sorted((h.step, h.value) for h in history) == [(i, pytest.approx(v)) for i, v in enumerate(recalls)]
    deltas = client.get_metric_history(parent, "delta/recall")
    assert sorted(h.step for h in deltas) == [1, 2, 3]
    risk = client.get_metric_history(parent, "collapse_risk")
    assert sorted(h.step for h in risk) == [0, 1, 2, 3]
    # ...and a nested run per round, tagged, holding its values and artifacts.
    nested = round_runs(settings.mlflow_uri, "loop-a", settings.artifact_root)
    assert [r.data.tags["collapse_round"] for r in nested] == ["0", "1", "2", "3"]
    for r, run in enumerate(nested):
        assert run.data.tags["mlflow.parentRunId"] == parent
        assert run.data.tags["collapse_loop"] == "loop-a" and run.data.tags["collapse_metrics_version"] == metrics_core.METRICS_VERSION
        assert run.data.tags["collapse_fingerprint"] == store.round_audits("loop-a")[r]["fingerprint"]
        assert run.data.metrics["recall"] == pytest.approx(recalls[r])
        assert [h.step for h in client.get_metric_history(run.info.run_id, "recall")] == [r]
    # Each round logs the trajectory plots and the alert explanations as of that round.
    artifacts = {a.path for a in client.list_artifacts(nested[3].info.run_id)}
    assert {"loop-a-coverage.png", "loop-a-diversity.png", "loop-a-risk.png", "alerts.json"} <= artifacts

    # Re-auditing the same round: same values, the round's run found by tag, no second run or point.
    again = audit_round("loop-a", 2, str(rounds[2]), str(ref))
    assert again["metrics"] == results[2]["metrics"]
    client, runs = _loop_run(settings, "loop-a")
    assert len(runs) == 1
    assert len(client.get_metric_history(parent, "recall")) == 4
    assert [r.info.run_id for r in round_runs(settings.mlflow_uri, "loop-a", settings.artifact_root)] == [
        r.info.run_id for r in nested]
    assert find_round_run(settings.mlflow_uri, "loop-a", 2, settings.artifact_root).info.run_id == nested[2].info.run_id
    assert len(store.trajectory("loop-a")) == 4 * (1 + len(metric_names("embedding")))

    # The exporter reads the store at scrape time.
    exporter = Exporter(store, "127.0.0.1", 0)
    try:
        samples = _scrape(exporter.url)
    finally:
        exporter.stop()
    labels = (("family", "coverage"), ("loop", "loop-a"), ("metric", "recall"), ("modality", "embedding"))
    assert samples[("collapse_metric_value", labels)] == pytest.approx(recalls[3])
    assert samples[("collapse_metric_delta", labels)] == pytest.approx(recalls[3] - recalls[2])
    assert samples[("collapse_alert_state", labels)] == 2.0
    assert samples[("collapse_metric_zscore", labels)] == pytest.approx(last["derivatives"]["recall"]["zscore"])
    assert samples[("collapse_metric_slope", labels)] == pytest.approx(last["derivatives"]["recall"]["slope"])
    assert samples[("collapse_loop_risk", (("loop", "loop-a"),))] == pytest.approx(last["risk"]["risk"])
    assert samples[("collapse_family_risk", (("family", "coverage"), ("loop", "loop-a")))] == pytest.approx(
        last["risk"]["families"]["coverage"])
    if last["derivatives"]["recall"]["rounds_to_threshold"] is not None:
        assert samples[("collapse_rounds_to_threshold", labels)] == pytest.approx(
            last["derivatives"]["recall"]["rounds_to_threshold"])
    assert samples[("collapse_round", (("loop", "loop-a"),))] == 3.0
    assert samples[("collapse_last_audit_timestamp_seconds", (("loop", "loop-a"),))] == pytest.approx(
        traj["audited_at"].max(), abs=60
    )
    assert samples[("collapse_up", ())] == 1.0
    (info,) = [dict(lbl) for name, lbl in samples if name == "collapse_build_info"]
    assert info["version"] == "0.1.0" and info["metrics_version"] == metrics_core.METRICS_VERSION
    # every audit of the loop (4 rounds and one re-audit), counted in the store where any process's exporter reads it
    loop_label = (("loop", "loop-a"),)
    assert samples[("collapse_audits_total", loop_label)] == 5.0
    assert samples[("collapse_audit_failures_total", loop_label)] == 0.0
    assert samples[("collapse_audit_duration_seconds_count", loop_label)] == 5.0
    assert samples[("collapse_audit_duration_seconds_bucket", (("le", "+Inf"), ("loop", "loop-a")))] == 5.0
    assert samples[("collapse_audit_duration_seconds_sum", loop_label)] > 0
    assert not any("round" in dict(lbl) for _, lbl in samples)  # never a round label
    store.close()


def test_out_of_order_round_recomputes_derivatives_and_mlflow_keeps_one_run(home, shrinking_rounds):
    ref, rounds = shrinking_rounds
    r0 = audit_round("loop-b", 0, str(rounds[0]), str(ref), AuditOptions(n_boot=0))
    r2 = audit_round("loop-b", 2, str(rounds[2]), str(ref), AuditOptions(n_boot=0))
    assert r2["derivatives"]["coverage"]["delta"] == pytest.approx(
        r2["metrics"]["coverage"]["value"] - r0["metrics"]["coverage"]["value"]
    )
    r1 = audit_round("loop-b", 1, str(rounds[1]), str(ref), AuditOptions(n_boot=0))
    assert r1["metrics"]["coverage"]["ci_low"] is None  # n_boot=0: no interval
    store = TrajectoryStore(load_settings().store_url)
    d = store.derivatives("loop-b").set_index(["round", "metric"])
    assert d.loc[(2, "coverage"), "delta"] == pytest.approx(
        r2["metrics"]["coverage"]["value"] - r1["metrics"]["coverage"]["value"]
    )
    store.close()
    _, runs = _loop_run(load_settings(), "loop-b")
    assert len(runs) == 1


def test_changed_round_data_reaudits_with_new_fingerprint(home, shrinking_rounds, tmp_path):
    ref, rounds = shrinking_rounds
    audit_round("loop-c", 0, str(rounds[0]), str(ref), AuditOptions(n_boot=0))
    before = TrajectoryStore(load_settings().store_url).trajectory("loop-c")
    changed = tmp_path / "changed.npy"
    np.save(changed, np.load(rounds[3]))
    res = audit_round("loop-c", 0, str(changed), str(ref), AuditOptions(n_boot=0))
    after = TrajectoryStore(load_settings().store_url).trajectory("loop-c")
    assert (before["fingerprint"] != after["fingerprint"]).all()
    assert after.set_index("metric").loc["recall", "value"] == pytest.approx(res["metrics"]["recall"]["value"])
    assert res["metrics"]["recall"]["value"] < before.set_index("metric").loc["recall", "value"]


def test_collector_reports_down_when_store_is_unreadable(tmp_path):
    store = TrajectoryStore(f"sqlite:///{tmp_path / 's.db'}")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE metric_values")
    families = {f.name: f for f in StoreCollector(store).collect()}
    assert families["collapse_up"].samples[0].value == 0.0
    assert list(families) == ["collapse_build_info", "collapse_up"]
    store.close()


def _half_migrated_mlflow_db(path, with_run: bool) -> None:
    """An MLflow database as a kill during its creation leaves it (migrations not recorded), in a fresh process."""
    import subprocess
    import sys

    code = ("import mlflow, sqlite3, sys\n"
            "c = mlflow.MlflowClient(tracking_uri='sqlite:///' + sys.argv[1])\n"
            "if sys.argv[2] == '1':\n"
            "    c.create_run(c.create_experiment('mine')).info.run_id\n"
            "con = sqlite3.connect(sys.argv[1]); con.execute('DROP TABLE alembic_version'); con.commit()\n")
    subprocess.run([sys.executable, "-c", code, str(path), "1" if with_run else "0"], check=True, capture_output=True)


@pytest.mark.faults
@pytest.mark.parametrize("with_run", [False, True])
def test_a_half_migrated_mlflow_database_is_repaired_only_when_it_holds_no_run(home, shrinking_rounds, with_run):
    ref, rounds = shrinking_rounds
    settings = load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    db = settings.home / "mlflow.db"
    _half_migrated_mlflow_db(db, with_run=with_run)
    before = db.read_bytes()
    audit_round("mb", 0, str(rounds[0]), str(ref), AuditOptions(n_boot=0))
    aside = list(settings.home.glob("mlflow.db.broken-*"))
    with TrajectoryStore(settings.store_url) as store:
        assert len(store.trajectory("mb")) > 0  # the audit itself never depends on MLflow
        pending = list(unconfirmed_rounds(store, "mb"))
    if with_run:  # holds someone's runs: left exactly as it was, the round queued, not lost
        assert db.read_bytes() == before and aside == [] and pending == [0]
    else:  # nothing to lose: moved aside, recreated, the round logged
        assert len(aside) == 1 and db.is_file() and pending == []
        assert [r.data.tags["collapse_round"]
                for r in round_runs(settings.mlflow_uri, "mb", settings.artifact_root)] == ["0"]


@pytest.mark.faults
def test_an_audit_that_fails_after_storing_leaves_the_round_as_it_was(home, shrinking_rounds, monkeypatch):
    import errno

    import flows.audit as audit_module

    ref, rounds = shrinking_rounds
    first = audit_round("fd", 0, str(rounds[0]), str(ref), AuditOptions(n_boot=0))
    settings = load_settings()
    with TrajectoryStore(settings.store_url) as store:
        kept = store.trajectory("fd").drop(columns=["audited_at"])
        kept_sources = store.sources("fd")

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audit_module, "write_round_artifacts", disk_full)
    for rnd, data in ((0, rounds[2]), (1, rounds[1])):  # a re-audit with other data, and a new round
        with pytest.raises(OSError, match="No space left"):
            audit_round("fd", rnd, str(data), str(ref), AuditOptions(n_boot=0))
    with TrajectoryStore(settings.store_url) as store:
        after = store.trajectory("fd").drop(columns=["audited_at"])
        assert after.equals(kept)  # round 0 as the first audit stored it, round 1 absent
        assert store.sources("fd") == kept_sources
        assert sorted(store.round_audits("fd")) == [0]
        assert set(store.derivatives("fd")["round"]) == {0}  # the evaluation is the pre-failure one again
    assert first["round"] == 0
