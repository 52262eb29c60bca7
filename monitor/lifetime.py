"""A child process's lifetime tied to its parent's (Linux): what ``kill -9`` of a command must not leave behind."""

from __future__ import annotations


def die_with_parent() -> bool:
    """Ask the kernel to SIGKILL this process when the thread that started it exits (``PR_SET_PDEATHSIG``).

    Safe between fork and exec (a ``preexec_fn``). Returns False where the call is unavailable (not Linux).
    """
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False
    return True
