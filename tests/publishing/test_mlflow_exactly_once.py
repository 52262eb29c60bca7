"""MLflow exactly once from the store: every stored round reaches MLflow, whatever interrupted it, one point a step.

The store holds synthetic rounds (evaluated by the real rules); MLflow is a real SQLite tracking store.
Interruptions are injected into the MLflow client the way a kill or a dead server cuts a write short.
"""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from metrics_core.bootstrap import Estimate
from monitor.engine import evaluation
from monitor.publishing import tracking
from monitor.engine.rules import load_rules
from monitor.store import RoundRecord, TrajectoryStore

RECALLS = [0.80, 0.74, 0.66, 0.61, 0.52]


def _store_round(store: TrajectoryStore, loop: str, rnd: int, recall: float, version: str = "2") -> None:
    metrics = {"recall": Estimate(recall, recall - 0.02, recall + 0.02, 0.01),
               "precision": Estimate(0.9 - 0.01 * rnd, None, None, 0.01)}
    store.record_round(RoundRecord(loop, rnd, metrics, 300, 300, f"fp-{rnd}-{recall}", "ref", version))
    evaluation.evaluate_and_store(store, loop, load_rules())


def _history(uri: str, root, loop: str, key: str) -> list[tuple[int, float]]:
    run = tracking.find_loop_run(uri, loop, root)
    return sorted((h.step, h.value) for h in MlflowClient(uri).get_metric_history(run.info.run_id, key))


@pytest.fixture
def store(store_url):
    with TrajectoryStore(store_url) as opened:
        yield opened


@pytest.fixture
def root(tmp_path):
    """The MLflow artifact root."""
    return tmp_path / "artifacts"


@pytest.fixture
def mlflow_uri(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_a_round_stored_but_never_published_is_caught_up_by_the_next_publish(store, root, mlflow_uri):
    for rnd in (0, 1, 2):  # a kill after each store commit: nothing reached MLflow
        _store_round(store, "L", rnd, RECALLS[rnd])
    assert list(tracking.unconfirmed_rounds(store, "L")) == [0, 1, 2]
    _store_round(store, "L", 3, RECALLS[3])
    logged, left = tracking.publish_loop(store, mlflow_uri, root, "L", {3: []})
    assert (logged, left) == ([0, 1, 2, 3], [])
    assert tracking.unconfirmed_rounds(store, "L") == {}
    assert _history(mlflow_uri, root, "L", "recall") == [(r, pytest.approx(RECALLS[r])) for r in range(4)]
    # Nothing left: publishing again logs nothing and adds no point.
    assert tracking.publish_loop(store, mlflow_uri, root, "L") == ([], [])
    assert len(_history(mlflow_uri, root, "L", "recall")) == 4


class _CutAfter:
    """An MLflow client whose ``method`` dies after ``n`` calls, as a kill mid-logging leaves it."""

    def __init__(self, real, method: str, n: int):
        self._real, self._method, self._left = real, method, n

    def __getattr__(self, name):
        real = getattr(self._real, name)
        if name != self._method:
            return real

        def cut(*args, **kwargs):
            if self._left == 0:
                raise ConnectionError("killed mid-logging")
            self._left -= 1
            return real(*args, **kwargs)

        return cut


# The round's run has its points and the parent not; or both have them and the round is not tagged yet.
@pytest.mark.parametrize(("method", "cut_after"), [("log_batch", 1), ("set_tag", 0)])
def test_a_write_cut_short_is_repeated_without_a_second_point(store, root, mlflow_uri, monkeypatch, method,
                                                              cut_after):
    real_client = tracking._client
    _store_round(store, "L", 0, RECALLS[0])
    assert tracking.publish_loop(store, mlflow_uri, root, "L") == ([0], [])
    _store_round(store, "L", 1, RECALLS[1])
    monkeypatch.setattr(tracking, "_client", lambda uri: _CutAfter(real_client(uri), method, cut_after))
    assert tracking.publish_loop(store, mlflow_uri, root, "L") == ([], [1])
    assert list(tracking.unconfirmed_rounds(store, "L")) == [1]
    monkeypatch.setattr(tracking, "_client", real_client)
    assert tracking.publish_loop(store, mlflow_uri, root, "L") == ([1], [])
    run = tracking.find_round_run(mlflow_uri, "L", 1, root)
    client = MlflowClient(mlflow_uri)
    for key in ("recall", "precision", "delta/recall", "collapse_risk"):
        assert len(client.get_metric_history(run.info.run_id, key)) == 1, key
        assert [s for s, _ in _history(mlflow_uri, root, "L", key)].count(1) == 1, key


def test_a_reaudit_with_the_same_values_or_a_new_metrics_version_adds_no_point(store, root, mlflow_uri):
    for rnd in (0, 1):
        _store_round(store, "L", rnd, RECALLS[rnd])
    tracking.publish_loop(store, mlflow_uri, root, "L")
    _store_round(store, "L", 1, RECALLS[1])  # the same values again
    assert tracking.publish_loop(store, mlflow_uri, root, "L") == ([], [])
    _store_round(store, "L", 1, RECALLS[1], version="3")  # a new version, unchanged values: tags only
    assert tracking.publish_loop(store, mlflow_uri, root, "L") == ([1], [])
    assert _history(mlflow_uri, root, "L", "recall") == [(0, pytest.approx(RECALLS[0])), (1, pytest.approx(RECALLS[1]))]
    assert tracking.find_round_run(mlflow_uri, "L", 1, root).data.tags["collapse_metrics_version"] == "3"


def test_a_round_arriving_out_of_order_relogs_the_later_steps_it_changes(store, root, mlflow_uri):
    for rnd in (0, 1, 2, 4):
        _store_round(store, "L", rnd, RECALLS[rnd])
        tracking.publish_loop(store, mlflow_uri, root, "L")
    stale = dict(_history(mlflow_uri, root, "L", "delta/recall"))[4]
    assert stale == pytest.approx(RECALLS[4] - RECALLS[2])
    _store_round(store, "L", 3, RECALLS[3])
    logged, _ = tracking.publish_loop(store, mlflow_uri, root, "L")
    assert 3 in logged and 4 in logged  # round 4's delta now runs from round 3
    run = tracking.find_loop_run(mlflow_uri, "L", root)
    deltas = MlflowClient(mlflow_uri).get_metric_history(run.info.run_id, "delta/recall")
    latest_at_4 = max((h for h in deltas if h.step == 4), key=lambda h: h.timestamp)
    assert latest_at_4.value == pytest.approx(RECALLS[4] - RECALLS[3])
    # The raw values did not change: one point a step.
    assert [s for s, _ in _history(mlflow_uri, root, "L", "recall")] == [0, 1, 2, 3, 4]


def test_a_dead_tracking_server_leaves_every_round_in_the_store_in_order(store, root):
    for rnd in (0, 1, 2):
        _store_round(store, "L", rnd, RECALLS[rnd])
    dead = "http://127.0.0.1:9"  # discard port: refused at once
    assert tracking.publish_loop(store, dead, root, "L") == ([], [0, 1, 2])
    assert list(tracking.unconfirmed_rounds(store, "L")) == [0, 1, 2]


def test_a_staged_report_that_cannot_be_deleted_does_not_unconfirm_its_round(store, root, mlflow_uri, tmp_path,
                                                                            monkeypatch):
    reports = tmp_path / "reports"
    staged = tracking.staged_report(reports, "L", 0)
    staged.parent.mkdir(parents=True)
    staged.write_text("<html>round 0</html>", encoding="utf-8")
    _store_round(store, "L", 0, RECALLS[0])

    def refuse(self, missing_ok=False):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(tracking.Path, "unlink", refuse)
    assert tracking.publish_loop(store, mlflow_uri, root, "L", {0: [str(staged)]}, reports) == ([0], [])
    assert staged.is_file() and list(tracking.unconfirmed_rounds(store, "L")) == []


def test_the_staged_evidently_report_is_kept_until_mlflow_holds_it_then_mlflow_has_the_one_copy(
        store, root, mlflow_uri, tmp_path):
    reports = tmp_path / "reports"
    staged = tracking.staged_report(reports, "L", 0)
    staged.parent.mkdir(parents=True)
    staged.write_text("<html>drift report of round 0</html>", encoding="utf-8")
    _store_round(store, "L", 0, RECALLS[0])
    # MLflow is down: the staged report is all there is, so it stays for the catch-up.
    assert tracking.publish_loop(store, "http://127.0.0.1:9", root, "L", {0: [str(staged)]}, reports) == ([], [0])
    assert staged.is_file()
    # The catch-up finds it on record, logs it, and only then deletes the staged copy.
    assert tracking.publish_loop(store, mlflow_uri, root, "L", None, reports) == ([0], [])
    assert not staged.exists()
    run = tracking.find_round_run(mlflow_uri, "L", 0, root)
    held = MlflowClient(mlflow_uri).download_artifacts(run.info.run_id, "round_0.html", str(tmp_path / "dl"))
    assert open(held, encoding="utf-8").read() == "<html>drift report of round 0</html>"
    # A new payload for the round (another round changed its derivatives) re-logs it without the file:
    # MLflow's copy stays.
    _store_round(store, "L", 1, RECALLS[1])
    _store_round(store, "L", 0, RECALLS[2])
    assert tracking.publish_loop(store, mlflow_uri, root, "L", None, reports) == ([0, 1], [])
    assert "round_0.html" in [a.path for a in MlflowClient(mlflow_uri).list_artifacts(run.info.run_id)]
