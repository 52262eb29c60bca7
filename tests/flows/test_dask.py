"""``--task-runner dask``: an audit whose tasks run on a real Dask LocalCluster (prefect-dask)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import metrics_core

from monitor.cli import main
from monitor.store import TrajectoryStore

distributed = pytest.importorskip("distributed")
pytest.importorskip("prefect_dask")


@pytest.fixture(scope="module")
def cluster():
    # Worker processes, as on separate machines: every task and argument crosses a process boundary.
    environ = dict(os.environ)
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                      scheduler_port=0) as c:
            yield c
    finally:
        # distributed sets OMP_NUM_THREADS=1 (and MKL's, OpenBLAS') for its workers in this process's
        # environment; later tests' subprocesses must not inherit it.
        os.environ.clear()
        os.environ.update(environ)


def test_audit_runs_its_tasks_on_a_dask_cluster_and_matches_the_thread_runner(tmp_path, cluster, prefect_harness,
                                                                              monkeypatch, capsys):
    rng = np.random.default_rng(4)
    np.save(tmp_path / "ref.npy", rng.normal(size=(200, 6)).astype(np.float32))
    np.save(tmp_path / "round.npy", (rng.normal(size=(150, 6)) * 0.7).astype(np.float32))
    results = {}
    with distributed.Client(cluster.scheduler_address) as client:
        for runner in ("dask", "threads"):
            home = tmp_path / runner
            args = ["--home", str(home), "audit", "lp", "0", str(tmp_path / "round.npy"), "--reference",
                    str(tmp_path / "ref.npy"), "--bootstrap", "20", "--json", "--task-runner", runner]
            if runner == "dask":
                args += ["--dask-address", cluster.scheduler_address]
                with distributed.get_task_stream(client) as stream:
                    assert main(args) == 0
                ran = {t["key"] for t in stream.data}
            else:
                assert main(args) == 0
            results[runner] = json.loads(capsys.readouterr().out)
    # The metric groups and Evidently's report (submitted tasks) ran on the cluster, one task each; loads and
    # store writes run in the flow's process, next to the state directory.
    names = sorted(str(k).rsplit("-", 1)[0] for k in ran)
    assert names == ["compute_metric_group"] * len(metrics_core.SUITE_GROUPS) + ["drift_report"]
    assert results["dask"]["metrics"] == results["threads"]["metrics"]
    assert results["dask"]["status"] == results["threads"]["status"]
    with TrajectoryStore(f"sqlite:///{tmp_path / 'dask' / 'store.db'}") as store:
        assert len(store.trajectory("lp")) == len(results["dask"]["metrics"])


def test_a_dask_address_without_the_dask_runner_is_refused(tmp_path, capsys):
    np.save(tmp_path / "ref.npy", np.ones((20, 2), dtype=np.float32))
    code = main(["--home", str(tmp_path / "h"), "audit", "lp", "0", str(tmp_path / "ref.npy"), "--reference",
                 str(tmp_path / "ref.npy"), "--dask-address", "tcp://127.0.0.1:1"])
    assert code == 1
    assert capsys.readouterr().err.strip() == "collapse-monitor: error: --dask-address needs --task-runner dask"
