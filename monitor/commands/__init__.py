"""One module per CLI verb; each exposes ``run(args) -> exit code``."""

import os


def quiet_prefect() -> None:
    """Keep Prefect's console logging to warnings (must run before prefect is imported)."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


# An ephemeral Prefect server phones home for telemetry; on closed networks
# that only prints errors.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Its first start migrates a fresh database, which can take longer than
# Prefect's default wait on a small, busy machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _die_with_parent() -> None:  # runs in the child, between fork and exec
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


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

    if not sys.platform.startswith("linux"):
        return
    from prefect.server.api import server

    cls = server.SubprocessASGIServer
    if getattr(cls._run_uvicorn_command, "_tied", False):
        return
    original = cls._run_uvicorn_command

    def run_uvicorn_command(self):
        if threading.current_thread() is not threading.main_thread():
            return original(self)
        real_popen = subprocess.Popen

        def popen(*args, **kwargs):
            kwargs.setdefault("preexec_fn", _die_with_parent)
            return real_popen(*args, **kwargs)

        subprocess.Popen = popen  # only for this call, on the main thread, while nothing else starts processes
        try:
            return original(self)
        finally:
            subprocess.Popen = real_popen

    run_uvicorn_command._tied = True
    cls._run_uvicorn_command = run_uvicorn_command
