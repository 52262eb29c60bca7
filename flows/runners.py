"""Task runners for the audit flow: threads on this machine, or a Dask cluster (prefect-dask)."""

from __future__ import annotations

from monitor.errors import CollapseMonitorError

TASK_RUNNERS = ("threads", "dask")


def task_runner(name: str = "threads", dask_address: str | None = None):
    """``threads``: a thread pool here. ``dask``: the Dask scheduler at ``dask_address``
    (``tcp://host:8786``), or a temporary local cluster when it is None."""
    if name == "threads":
        if dask_address:
            raise CollapseMonitorError("--dask-address needs --task-runner dask")
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner()
    if name == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as exc:
            raise CollapseMonitorError(
                "--task-runner dask needs prefect-dask: pip install 'collapse-monitor[dask]'") from exc
        return DaskTaskRunner(address=dask_address) if dask_address else DaskTaskRunner()
    raise CollapseMonitorError(f"task runner {name!r}: expected one of {', '.join(TASK_RUNNERS)}")
