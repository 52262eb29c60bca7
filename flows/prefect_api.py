"""The Prefect API a process runs its flows against: a running ``serve``'s when there is one (advertised in the
home), else a temporary one tied to the process; and Prefect's logging kept to one line per user error.
"""

import os
from pathlib import Path


def quiet_prefect() -> None:
    """Keep Prefect's console logging to warnings (must run before prefect is imported)."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


# An ephemeral Prefect server phones home for telemetry; on closed networks
# that only prints errors.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Its first start migrates a fresh database, which can take longer than
# Prefect's default wait on a small, busy machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _without_traceback(record) -> bool:
    """Logging filter: a flow or task run that failed on a user-fixable error logs one line, not a traceback
    (the CLI prints the error itself, in one line)."""
    from monitor.errors import CollapseMonitorError, disk_full_message

    exc = record.exc_info[1] if record.exc_info else None
    if exc is not None and (isinstance(exc, CollapseMonitorError) or disk_full_message(exc) is not None):
        record.exc_info, record.exc_text = None, None
    return True


API_FILE = "prefect-api.json"  # in the home: the Prefect API a running `serve` uses, for other commands to share


def write_record(home: Path, name: str, payload: dict, *, private: bool = False) -> Path:
    """Record, in the home, something this process (a ``serve`` daemon) keeps up: ``payload`` plus its pid,
    written atomically; ``private``: readable by the owner only (it holds a token)."""
    import json

    path = Path(home) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({**payload, "pid": os.getpid()}, fh)
    os.replace(tmp, path)
    return path


def remove_record(home: Path, name: str) -> None:
    """Remove this process's record ``name`` from the home (another process's record is left alone)."""
    import json

    path = Path(home) / name
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def live_record(home: Path, name: str) -> dict | None:
    """The record ``name`` in the home if its process is alive, else None; a dead process's record (left by
    ``kill -9``) is removed, and an unreadable one ignored."""
    import json

    path = Path(home) / name
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        pid = int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return None
    except PermissionError:  # alive, another user's
        pass
    return record


def advertise_api(home: Path, url: str) -> Path:
    """Record, in the home, the Prefect API this process (a ``serve`` daemon) keeps up (atomic write)."""
    return write_record(home, API_FILE, {"url": url})


def withdraw_api(home: Path) -> None:
    """Remove this process's record of its Prefect API (another process's record is left alone)."""
    remove_record(home, API_FILE)


def running_api(home: Path, timeout: float = 1.0) -> str | None:
    """The Prefect API a live ``serve`` of this home advertises and that answers its health check, else None.

    A record left by a daemon killed with ``kill -9`` names a dead process or a closed port: it is ignored
    (and a dead process's record removed), so the caller starts its own temporary API as before.
    """
    import urllib.request

    record = live_record(home, API_FILE)
    url = None if record is None else record.get("url")
    if not isinstance(url, str):
        return None
    if not url.startswith(("http://", "https://")):
        return None
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as resp:
            return url if resp.status == 200 else None
    except (OSError, ValueError):
        return None


def prepare_flows(home: Path | None = None) -> str | None:
    """Before a command runs flows: share the Prefect API of a ``serve`` running on ``home`` when there is one
    (no temporary API to start: the flow still runs here, through the same code), else tie the temporary
    Prefect API to this process; and keep the tracebacks of user-fixable errors out of the run logs.

    Returns the shared API's URL, or None. Must run before Prefect is imported (it reads its settings then).
    """
    import logging

    shared = None
    if home is not None and not os.environ.get("PREFECT_API_URL"):
        shared = running_api(home)
        if shared is not None:
            os.environ["PREFECT_API_URL"] = shared
    tie_temporary_api()
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        if _without_traceback not in logger.filters:
            logger.addFilter(_without_traceback)
    return shared


def tie_temporary_api() -> None:
    """Make the temporary Prefect API this process may start die with it, even on ``kill -9`` (Linux).

    Prefect starts it as a child process when no ``PREFECT_API_URL`` is set, and stops it at exit,
    which a SIGKILL skips: it used to live on under PID 1 holding a port. The kernel's parent-death
    signal is tied to the thread that started the child, so only a start from the main thread is tied
    (the CLI's flows start it there).
    """
    import subprocess
    import sys
    import threading

    if not sys.platform.startswith("linux") or os.environ.get("PREFECT_API_URL"):
        return  # no temporary API will start (an API URL is set): no need to import the server (about 2 s)
    from prefect.server.api import server

    from monitor.lifetime import die_with_parent

    cls = server.SubprocessASGIServer
    if getattr(cls._run_uvicorn_command, "_tied", False):
        return
    original = cls._run_uvicorn_command

    def run_uvicorn_command(self):
        if threading.current_thread() is not threading.main_thread():
            return original(self)
        real_popen = subprocess.Popen

        def popen(*args, **kwargs):
            kwargs.setdefault("preexec_fn", die_with_parent)
            return real_popen(*args, **kwargs)

        subprocess.Popen = popen  # only for this call, on the main thread, while nothing else starts processes
        try:
            return original(self)
        finally:
            subprocess.Popen = real_popen

    run_uvicorn_command._tied = True
    cls._run_uvicorn_command = run_uvicorn_command
