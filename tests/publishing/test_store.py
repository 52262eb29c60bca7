import pytest

from metrics_core.bootstrap import Estimate
from monitor.store import RoundRecord, TrajectoryStore


def _record(loop, rnd, values, fp="f"):
    return RoundRecord(
        loop=loop, round=rnd, metrics={k: Estimate(v, v - 0.01, v + 0.01, 0.005) for k, v in values.items()},
        n_reference=100, n_round=90, fingerprint=fp * 64, reference_fingerprint="r" * 64, metrics_version="1",
        audited_at=1000.0 + rnd,
    )


@pytest.fixture
def store(store_url):
    s = TrajectoryStore(store_url)
    yield s
    s.close()


def test_reaudit_replaces_rows_and_keeps_other_rounds(store):
    store.record_round(_record("a", 0, {"coverage": 0.9, "recall": 0.8}))
    store.record_round(_record("a", 1, {"coverage": 0.85, "recall": 0.7}))
    store.record_round(_record("a", 1, {"coverage": 0.5, "recall": 0.4}, fp="g"))
    t = store.trajectory("a")
    assert len(t) == 4
    r1 = t[t["round"] == 1].set_index("metric")
    assert r1.loc["coverage", "value"] == 0.5 and r1.loc["coverage", "fingerprint"] == "g" * 64
    assert t[t["round"] == 0].set_index("metric").loc["recall", "value"] == 0.8
    assert r1.loc["coverage", "ci_low"] == pytest.approx(0.49)
    assert r1.loc["coverage", "n_reference"] == 100 and r1.loc["coverage", "n_round"] == 90


def test_reaudit_with_fewer_metrics_drops_stale_rows(store):
    store.record_round(_record("a", 0, {"coverage": 0.9, "recall": 0.8}))
    store.record_round(_record("a", 0, {"coverage": 0.7}))
    assert store.trajectory("a")["metric"].tolist() == ["coverage"]


def test_failed_write_keeps_existing_rows(store):
    store.record_round(_record("a", 0, {"coverage": 0.9}))
    bad = _record("a", 0, {"coverage": 0.1})
    bad = RoundRecord(**{**bad.__dict__, "metrics": {"coverage": Estimate(None)}})  # NOT NULL violation
    with pytest.raises(Exception):
        store.record_round(bad)
    assert store.trajectory("a")["value"].tolist() == [0.9]


def test_out_of_order_rounds_sorted_and_loops_isolated(store):
    for rnd, v in [(3, 0.6), (0, 0.9), (2, 0.7), (1, 0.8)]:
        store.record_round(_record("a", rnd, {"coverage": v}))
    store.record_round(_record("b", 5, {"coverage": 0.1}))
    t = store.trajectory("a")
    assert t["round"].tolist() == [0, 1, 2, 3]
    assert t["value"].tolist() == [0.9, 0.8, 0.7, 0.6]
    assert store.loops() == ["a", "b"]
    summary = store.loop_summaries().set_index("loop")
    assert summary.loc["a", "round"] == 3 and summary.loc["b", "round"] == 5
    assert summary.loc["a", "audited_at"] == 1003.0


def _write_rounds(url, writer, rounds, barrier):
    with TrajectoryStore(url) as store:
        barrier.wait(timeout=60)
        for r in rounds:
            store.record_round(_record("c", r, {f"m{j}": float(writer) for j in range(20)}, fp=str(writer)))


@pytest.mark.faults
def test_two_processes_auditing_one_loop_concurrently_leave_each_round_once_and_whole(store_url):
    import multiprocessing

    TrajectoryStore(store_url).close()  # tables exist before the race
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    # both write rounds 0-29 (the same rounds, racing), in opposite orders
    procs = [ctx.Process(target=_write_rounds, args=(store_url, w, order, barrier))
             for w, order in ((1, list(range(30))), (2, list(range(29, -1, -1))))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    with TrajectoryStore(store_url) as store:
        t = store.trajectory("c")
        assert len(t) == 30 * 20 and not t.duplicated(["round", "metric"]).any()
        per_round = t.groupby("round")["value"].nunique()
        assert (per_round == 1).all()  # every round entirely one writer's audit, never a mix


def test_the_alarm_path_stores_and_reads_back_on_each_backend(store):
    import numpy as np

    from monitor.engine.evaluation import evaluate_and_store
    from monitor.engine.null import LoopNull
    from monitor.engine.rules import load_rules

    rng = np.random.default_rng(0)
    metrics = ("log_volume_ratio", "recall")
    null = LoopNull(np.column_stack([rng.normal(0, 0.05, 400), rng.normal(0.8, 0.01, 400)]), metrics, 100, 6400)
    store.save_null("n", "key", "/pool.npy", 400, null)
    for r, lvr in enumerate([0.0, 0.01, -0.02, -0.6, -0.9]):  # spread collapses from round 3
        store.record_round(_record("n", r, {"log_volume_ratio": lvr, "recall": 0.8}))
        store.record_audit("n", r, "audited", 1.5)
    store.record_audit("n", 5, "failed", 0.2)
    evaluation = evaluate_and_store(store, "n", load_rules())
    assert evaluation.guarantee is not None and store.null("n").n_rounds == 400
    signals = store.signals("n").set_index("signal")
    assert signals.loc["collapse", "severity"] in ("warning", "critical") and signals.loc["drift", "severity"] == "ok"
    assert signals.loc["collapse", "since_round"] == 3
    counts = store.audit_counts().set_index("outcome")
    assert counts.loc["audited", "count"] == 5 and counts.loc["audited", "seconds"] == pytest.approx(7.5)
    assert counts.loc["failed", "count"] == 1 and counts.loc["audited", "le_4"] == 5  # all under 2.5 s
    summary = store.loop_summaries().set_index("loop")
    assert summary.loc["n", "round"] == 4
    store.observe_file("/w/n/round_4.npy", "n", 4, 10, 1.0)
    store.mark_file("/w/n/round_4.npy", "audited", "f" * 64, 10, 1.0)
    assert store.watched_files("n")["status"].tolist() == ["audited"]
