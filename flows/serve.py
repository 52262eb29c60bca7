"""Serving the ``watch-rounds`` flow: the deployment, its runner and its schedule (``collapse-monitor serve``).

The process serves ``watch-rounds`` with Prefect's runner on ``interval``
seconds (``pause_on_shutdown`` off, one run at a time). Prefect is ephemeral
unless ``PREFECT_API_URL`` names a server; either way the API is advertised in
the home (``prefect-api.json``) so the CLI's audits on that home share it.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from pathlib import Path

from flows.prefect_api import advertise_api, withdraw_api
from monitor.publishing.render import console

DEPLOYMENT = "watch"


def deployment_name(parameters: dict) -> str:
    """``watch-<hash>`` of the daemon's home and sources: two daemons on one Prefect API never share a deployment
    (nor run each other's scans), and a restarted daemon finds its own.

    >>> a = deployment_name({"home": "/h1", "sources": ["/w"], "manifests": []})
    >>> a == deployment_name({"home": "/h1", "sources": ["/w"], "manifests": []}), a.startswith("watch-")
    (True, True)
    >>> a == deployment_name({"home": "/h2", "sources": ["/w"], "manifests": []})
    False
    """
    import hashlib
    import json

    key = json.dumps({"home": os.path.abspath(parameters["home"]),
                      "sources": sorted(parameters.get("sources") or []),
                      "manifests": sorted(parameters.get("manifests") or [])}, sort_keys=True)
    return f"{DEPLOYMENT}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


@contextmanager
def daemon_api(home: Path):
    """The daemon's Prefect API for its lifetime: ``PREFECT_API_URL``'s server, else a temporary API tied to this
    process (started here, on the main thread). It is advertised in the home (``prefect-api.json``) for the
    commands' flows, and the audit service (:mod:`flows.audit_service`) runs the CLI's audits on it; yields its URL.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.audit_service import AuditService
    from flows.prefect_api import prepare_flows

    server = os.environ.get("PREFECT_API_URL")
    temporary = None
    try:
        if server:
            url = server
        else:
            from prefect.server.api.server import SubprocessASGIServer

            prepare_flows()  # a SIGKILL of the daemon takes the API down with it
            temporary = SubprocessASGIServer()
            temporary.start()
            url = temporary.api_url
        advertise_api(home, url)  # `audit` and `backfill` on this home use it too
        with temporary_settings({PREFECT_API_URL: url}), AuditService(home, url):
            yield url
    finally:
        withdraw_api(home)
        if temporary is not None:
            temporary.stop()


def serve_deployment(parameters: dict, interval: float) -> None:
    """Serve ``watch-rounds`` every ``interval`` seconds until SIGTERM or SIGINT (the caller stops its exporter)."""
    import asyncio

    from flows.runners import task_runner

    task_runner(parameters["runner"], parameters["dask_address"])
    # Prefect's runner turns SIGTERM into a graceful stop and SystemExit(0);
    # SIGINT arrives as KeyboardInterrupt. Either way the caller's finally block stops the exporter.
    scheduled_by_server = bool(os.environ.get("PREFECT_API_URL"))
    try:
        # One API for this process and its flow-run subprocesses (which would otherwise each start their own),
        # and for the CLI's audits on this home.
        with daemon_api(Path(parameters["home"])):
            asyncio.run(_run_deployment(parameters, interval, scheduled_by_server=scheduled_by_server))
    except (SystemExit, KeyboardInterrupt):
        pass


def serve_audits(home: Path, stop) -> None:
    """Without sources: keep the daemon's API and audit service up until ``stop`` (a ``threading.Event``) is set."""
    with daemon_api(home):
        while not stop.wait(0.5):
            pass


async def _run_deployment(parameters: dict, interval: float, scheduled_by_server: bool) -> None:
    """Prefect's ``serve()`` of ``watch-rounds``: a runner executing the deployment's runs.

    A Prefect server schedules the runs itself (an interval schedule, kept
    running on shutdown). The ephemeral API has no scheduler service, so
    without a server this process creates a run of the same deployment every
    ``interval`` seconds, which the runner picks up like any scheduled run.
    """
    import asyncio

    from prefect import get_client
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.deployments.runner import EntrypointType
    from prefect.runner import Runner

    from flows.watch import watch_rounds

    name = deployment_name(parameters)
    runner = Runner(name=f"collapse-monitor-{name}", pause_on_shutdown=False, limit=1,
                    query_seconds=min(interval, 5.0))
    # With a server, scans that come due while one is running are cancelled, not queued behind it.
    one_at_a_time = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)
    deployment_id = await runner.aadd_flow(
        watch_rounds, name=name, interval=interval if scheduled_by_server else None, parameters=parameters,
        entrypoint_type=EntrypointType.MODULE_PATH, concurrency_limit=one_at_a_time if scheduled_by_server else None,
    )
    await _crash_orphaned_runs(deployment_id)
    runner_task = asyncio.create_task(runner.start())
    await asyncio.sleep(0)  # let start() install its handlers, then take SIGTERM/SIGINT over
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.create_task(stop.wait())
    try:
        if scheduled_by_server:
            await asyncio.wait({runner_task, stopping}, return_when=asyncio.FIRST_COMPLETED)
            return
        async with get_client() as client:
            while not (runner_task.done() or stop.is_set()):
                running = await client.read_flow_runs(
                    deployment_filter=_deployment_filter(deployment_id), flow_run_filter=_unfinished_filter())
                if not running:  # one run at a time; a slow scan is not queued behind itself
                    await client.create_flow_run_from_deployment(deployment_id)
                await asyncio.wait({runner_task, stopping}, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        runner_task.cancel()  # the runner's context exit stops its flow-run processes
        await asyncio.gather(runner_task, return_exceptions=True)
        if runner_task.done() and not runner_task.cancelled() and runner_task.exception() is not None:
            raise runner_task.exception()


async def _crash_orphaned_runs(deployment_id) -> int:
    """Mark the deployment's unfinished runs crashed: this daemon was just started, so they belong to a killed one.

    The deployment is bound to this home and these sources (:func:`deployment_name`), so no live process owns
    them; left RUNNING they would block every scan (one run at a time). Their rounds were never marked audited,
    so the next scan picks them up.
    """
    from prefect import get_client
    from prefect.states import Crashed

    async with get_client() as client:
        # PENDING or RUNNING only: a server's SCHEDULED runs are future scans, owned by no process yet.
        orphans = await client.read_flow_runs(deployment_filter=_deployment_filter(deployment_id),
                                              flow_run_filter=_unfinished_filter(scheduled=False))
        for run in orphans:
            await client.set_flow_run_state(run.id, Crashed(message="left unfinished by a daemon that was killed; "
                                                                    "marked crashed when the next one started"),
                                            force=True)
    if orphans:
        console().print(f"marked {len(orphans)} watch run(s) left by a killed daemon as crashed; their rounds are "
                        "rescanned")
    return len(orphans)


def _deployment_filter(deployment_id):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    return DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))


def _unfinished_filter(scheduled: bool = True):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    states = [StateType.SCHEDULED] * scheduled + [StateType.PENDING, StateType.RUNNING]
    return FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=states)))
