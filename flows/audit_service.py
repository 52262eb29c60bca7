"""A running ``serve`` audits rounds for the CLI: the ``audit-round`` flow in a process that is already warm.

A fresh ``collapse-monitor audit`` process pays for importing torch, Prefect, MLflow and the metrics, and
for a Prefect API, before it computes anything (docs/benchmarks.md). While a ``serve`` daemon runs on the
home it listens on ``127.0.0.1`` (a port of its own, recorded with a random token in the home's
``audit-service.json``, readable by its owner only), and ``audit`` hands it the round: the daemon runs the
same flow, with the same parameters, against its own Prefect API and answers with the flow's result once the
round is stored and evaluated. The round's plots and its MLflow run follow right after, in the daemon
(``publish_round``); a round whose publishing is interrupted waits in the store and is logged by the next
audit or scan, as any round MLflow did not confirm.

Without a live daemon (no record, a dead process, a closed port) :func:`submit_audit` returns None and the
command runs the flow itself, as before. The client side imports only the standard library.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

SERVICE_FILE = "audit-service.json"  # in the home: where the daemon listens, and its token
_PATH = "/audit"


# -- the client (the CLI) -----------------------------------------------------------------------------------------


def service_record(home: Path) -> dict | None:
    """The live daemon's record on ``home`` (``url``, ``pid``, ``token``), else None (a dead daemon's record is
    removed)."""
    from flows.prefect_api import live_record

    record = live_record(home, SERVICE_FILE)
    try:
        url, pid, token = str(record["url"]), int(record["pid"]), str(record["token"])
    except (KeyError, TypeError, ValueError):
        return None
    if not url.startswith("http://127.0.0.1:"):
        return None
    return {"url": url, "pid": pid, "token": token}


def submit_audit(home: Path, parameters: dict, timeout: float | None = None) -> dict | None:
    """Run ``audit_round(**parameters)`` in the home's ``serve`` daemon; its result, or None when no daemon
    answers (the caller then runs the flow itself).

    ``parameters`` are the flow's keyword arguments, JSON-ready (``options`` as a dict). A round the daemon
    refuses raises :class:`~monitor.errors.CollapseMonitorError` with the daemon's one-line message.
    """
    from monitor.errors import CollapseMonitorError

    record = service_record(home)
    if record is None:
        return None
    body = json.dumps({"token": record["token"], "parameters": parameters}).encode()
    request = urllib.request.Request(record["url"] + _PATH, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return json.loads(resp.read())["result"]
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]
        except (ValueError, KeyError, TypeError, OSError):
            message = f"HTTP {exc.code}"
        if exc.code == 400:  # the round was refused: the same one line a local run prints
            raise CollapseMonitorError(message) from None
        raise CollapseMonitorError(f"the serve daemon (pid {record['pid']}) failed the audit: {message}") from None
    except (urllib.error.URLError, ConnectionError) as exc:
        if isinstance(getattr(exc, "reason", None), TimeoutError):
            raise CollapseMonitorError(f"the serve daemon (pid {record['pid']}) did not answer in {timeout} s")
        return None  # nothing listens (the daemon is stopping): run it here


# -- the daemon -----------------------------------------------------------------------------------------------------


class AuditService:
    """The daemon's side: an HTTP listener on ``127.0.0.1`` that runs ``audit-round`` for :func:`submit_audit`.

    Args:
        home: the daemon's home (the record is written there).
        api_url: the Prefect API the daemon keeps up; the flows run against it.

    Audits run one at a time, each in the listener's request thread; the flow modules are imported in the
    background at :meth:`start`, so the first audit does not pay for them.
    """

    def __init__(self, home: Path, api_url: str) -> None:
        self.home, self.api_url = Path(home), api_url
        self.token = secrets.token_urlsafe(24)
        self._lock = threading.Lock()  # one audit at a time
        self._publish_lock = threading.Lock()  # publishing runs beside the next audit, one round after the other
        self._server = None
        self._closing = False

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "AuditService":
        from http.server import ThreadingHTTPServer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        for target in (self._server.serve_forever, self._warm):
            threading.Thread(target=target, name=f"audit-service-{target.__name__}", daemon=True).start()
        self._advertise()
        return self

    def stop(self, timeout: float = 120.0) -> None:
        """Stop listening, let an audit or publish in flight finish (up to ``timeout`` s each), and drain
        Prefect's event and log workers while the API still answers (else they retry it at exit)."""
        self._withdraw()
        self._closing = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for lock in (self._lock, self._publish_lock):
            if lock.acquire(timeout=timeout):
                lock.release()
        if "prefect" in sys.modules:
            from prefect.events.worker import EventsWorker
            from prefect.logging.handlers import APILogWorker

            for worker in (EventsWorker, APILogWorker):
                worker.drain_all(timeout=10, at_exit=False)

    def __enter__(self) -> "AuditService":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _advertise(self) -> None:
        from flows.prefect_api import write_record

        write_record(self.home, SERVICE_FILE, {"url": self.url, "token": self.token}, private=True)

    def _withdraw(self) -> None:
        from flows.prefect_api import remove_record

        remove_record(self.home, SERVICE_FILE)

    def _warm(self) -> None:
        import logging

        try:
            import flows.audit  # noqa: F401 - torch, Prefect, MLflow and the metrics, before the first audit
        except Exception as exc:  # noqa: BLE001 - the first audit then imports them and reports any error
            logging.getLogger(__name__).warning("audit service: warming up failed: %s", exc)

    def audit(self, parameters: dict) -> dict:
        """Run the flow on ``parameters`` (one audit at a time); its round's plots and MLflow run follow."""
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from flows.audit import audit_round
        from flows.runners import task_runner
        from monitor.options import AuditOptions

        parameters = dict(parameters)
        runner = task_runner(parameters.pop("task_runner", None) or "threads",
                             parameters.pop("dask_address", None))
        parameters["options"] = AuditOptions(**(parameters.get("options") or {}))
        with self._lock, temporary_settings({PREFECT_API_URL: self.api_url}):
            result = audit_round.with_options(task_runner=runner)(**parameters, publish=False)
        publisher = threading.Thread(target=self._publish, args=(parameters, result["alerts"]), daemon=True,
                                     name=f"audit-service-publish-{parameters['loop']}")
        publisher.start()
        return result

    def _publish(self, parameters: dict, alerts: list[dict]) -> None:
        import logging

        from prefect.settings import PREFECT_API_URL, temporary_settings

        from flows.audit import publish_round

        try:
            with self._publish_lock, temporary_settings({PREFECT_API_URL: self.api_url}):
                if self._closing:  # stopping: the round waits in the store for the next audit or scan
                    return
                publish_round(parameters["loop"], parameters["round_number"], alerts, home=parameters.get("home"),
                              rules_path=parameters.get("rules_path"), pushgateway=parameters.get("pushgateway"))
        except Exception as exc:  # noqa: BLE001 - the round is stored; the next audit or scan publishes it
            logging.getLogger(__name__).warning("loop %s round %s: publishing deferred: %s", parameters.get("loop"),
                                                parameters.get("round_number"), exc)


def _handler(service: AuditService):
    import hmac
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # the flow logs the audit; no access log on the console
            pass

        def _answer(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            from monitor.errors import CollapseMonitorError, disk_full_message

            if self.path != _PATH:
                return self._answer(404, {"error": f"no such endpoint {self.path}"})
            try:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                token, parameters = str(request["token"]), dict(request["parameters"])
            except (ValueError, KeyError, TypeError) as exc:
                return self._answer(400, {"error": f"bad request: {exc}"})
            if not hmac.compare_digest(token, service.token):
                return self._answer(403, {"error": "wrong token"})
            try:
                return self._answer(200, {"result": service.audit(parameters)})
            except CollapseMonitorError as exc:
                return self._answer(400, {"error": str(exc)})
            except Exception as exc:  # noqa: BLE001 - one line back to the CLI; the daemon keeps serving
                full = disk_full_message(exc)
                message = f"{full}: free some space and run it again" if full else f"{type(exc).__name__}: {exc}"
                return self._answer(500 if full is None else 400, {"error": message})

    return Handler
