"""``collapse-monitor serve``: the exporter, plus the ``watch-rounds`` deployment when sources are given.

With ``--watch``/``--manifest`` the process serves the ``watch-rounds`` flow
with Prefect's ``serve()`` on ``--interval`` seconds (``pause_on_shutdown``
off, one run at a time) and the Prometheus exporter alongside it, until
SIGTERM or SIGINT. Prefect is ephemeral unless ``PREFECT_API_URL`` names a
server. ``--once`` runs one scan in this process and exits (for cron).
While it runs, the daemon records its Prefect API in the home
(``prefect-api.json``): ``backfill`` and ``calibrate`` on the same home run
their flows against it instead of starting a temporary API each, and
``audit`` hands its round to the daemon, which audits it in its warm process
(:mod:`flows.audit_service`).
The Prefect plumbing (the deployment, its runner and schedule) is
:mod:`flows.serve`.
"""

from __future__ import annotations

import os
import signal
import threading

from monitor.config import load_settings
from monitor.errors import CollapseMonitorError
from monitor.publishing.exporter import Exporter
from monitor.publishing.render import console
from monitor.store import TrajectoryStore

def _watch_parameters(args, settings) -> dict:
    from monitor.inputs import watch

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
            from flows.serve import serve_deployment

            console().print(f"serving {exporter.url}; watching {', '.join(parameters['sources'] + parameters['manifests'])} "
                            f"every {args.interval:g} s ({os.environ.get('PREFECT_API_URL') or 'ephemeral Prefect'}); "
                            "SIGTERM or Ctrl-C to stop")
            serve_deployment(parameters, args.interval)
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
    from flows.serve import serve_audits

    console().print(f"serving {exporter.url} from {settings.store_url}; audits on this home run here "
                    "(Ctrl-C to stop)")
    serve_audits(settings.home, stop)
