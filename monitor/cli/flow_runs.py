"""Where the commands and the in-loop API start flows: the one arrow from ``monitor`` up to ``flows/``."""

from __future__ import annotations

from pathlib import Path


def audit_flow(home: Path, *, quiet: bool = True, task_runner=None):
    """The ``audit-round`` flow, ready to run in this process on the home's Prefect API: a running ``serve``'s
    when there is one, else a temporary API tied to this process (see :func:`flows.prefect_api.prepare_flows`).

    Args:
        home: the state directory.
        quiet: keep Prefect's console logging down (JSON output, the in-loop API).
        task_runner: a Prefect task runner for the flow's tasks (None: the flow's default).
    """
    from flows.prefect_api import prepare_flows, quiet_prefect

    if quiet:
        quiet_prefect()
    prepare_flows(home)
    from flows.audit import audit_round

    return audit_round if task_runner is None else audit_round.with_options(task_runner=task_runner)
