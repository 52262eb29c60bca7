"""``collapse-monitor serve``: the exporter, plus the ``watch-rounds`` deployment when sources are given.

With ``--watch``/``--manifest`` the process serves the ``watch-rounds`` flow
with Prefect's ``serve()`` on ``--interval`` seconds (``pause_on_shutdown``
off, one run at a time) and the Prometheus exporter alongside it, until
SIGTERM or SIGINT. Prefect is ephemeral unless ``PREFECT_API_URL`` names a
server. ``--once`` runs one scan in this process and exits (for cron).
While it runs, the daemon records its Prefect API in the home
(``prefect-api.json``): ``audit``, ``backfill`` and ``calibrate`` on the same
home run their flows against it instead of starting a temporary API each.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

from monitor.commands import advertise_api, withdraw_api
from monitor.config import load_settings
from monitor.errors import CollapseMonitorError
from monitor.exporter import Exporter
from monitor.render import console
from monitor.store import TrajectoryStore

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


def _watch_parameters(args, settings) -> dict:
    from monitor import watch

    sources = list(args.watch or [])
    manifests = list(args.manifest or [])
    watch.check_sources(sources, manifests, args.reference)
    return {
        "sources": sources, "manifests": manifests, "reference": args.reference, "home": str(settings.home),
        "rules_path": None if settings.rules_path is None else str(settings.rules_path),
        "pushgateway": args.push_gateway or os.environ.get("COLLAPSE_MONITOR_PUSHGATEWAY"),
        "runner": args.task_runner, "dask_address": args.dask_address, "follow_links": args.follow_links,
    }


def _start_exporter(store, args) -> Exporter:
    try:
        return Exporter(store, args.host, args.port)
    except OSError as exc:
        raise CollapseMonitorError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc


def run(args) -> int:
    settings = load_settings(args.home, args.rules)
    settings.rules()  # a bad rules file fails before serving
    watching = bool(args.watch or args.manifest)
    parameters = _watch_parameters(args, settings) if watching else None
    if args.once:
        if not watching:
            raise CollapseMonitorError("--once needs --watch or --manifest")
        from flows.runners import task_runner
        from flows.watch import watch_rounds

        task_runner(args.task_runner, args.dask_address)  # a bad runner choice fails before the flow
        result = watch_rounds(**parameters)
        console().print(f"audited {len(result['audited'])}, refused {len(result['refused'])}, "
                        f"to retry {len(result['retry'])}")
        return 0
    store = TrajectoryStore(settings.store_url)
    exporter = _start_exporter(store, args)
    try:
        if watching:
            _serve_deployment(exporter, parameters, args.interval)
        else:
            _serve_exporter_only(exporter, settings)
    finally:
        exporter.stop()
        store.close()
    console().print("stopped")
    return 0


def _serve_exporter_only(exporter: Exporter, settings) -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    console().print(f"serving {exporter.url} from {settings.store_url} (Ctrl-C to stop)")
    while not stop.wait(0.5):
        pass


def _serve_deployment(exporter: Exporter, parameters: dict, interval: float) -> None:
    import asyncio

    from flows.runners import task_runner

    task_runner(parameters["runner"], parameters["dask_address"])
    server = os.environ.get("PREFECT_API_URL")
    console().print(f"serving {exporter.url}; watching {', '.join(parameters['sources'] + parameters['manifests'])} "
                    f"every {interval:g} s ({server or 'ephemeral Prefect'}); SIGTERM or Ctrl-C to stop")
    # Prefect's runner turns SIGTERM into a graceful stop and SystemExit(0);
    # SIGINT arrives as KeyboardInterrupt. Either way the finally block of run() stops the exporter.
    temporary = None
    home = Path(parameters["home"])
    try:
        if server:
            advertise_api(home, server)  # `audit` and `backfill` on this home use it too
            asyncio.run(_run_deployment(parameters, interval, scheduled_by_server=True))
        else:
            # One temporary API for this process and its flow-run subprocesses
            # (which would otherwise each start their own), and for the CLI's audits on this home.
            from prefect.server.api.server import SubprocessASGIServer
            from prefect.settings import PREFECT_API_URL, temporary_settings

            from monitor.commands import prepare_flows

            prepare_flows()  # a SIGKILL of the daemon takes the API down with it
            temporary = SubprocessASGIServer()
            temporary.start()
            advertise_api(home, temporary.api_url)
            with temporary_settings({PREFECT_API_URL: temporary.api_url}):
                asyncio.run(_run_deployment(parameters, interval, scheduled_by_server=False))
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        withdraw_api(home)
        if temporary is not None:
            temporary.stop()


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
