"""The domain error: the CLI prints its message as one line and exits 1."""


class CollapseMonitorError(Exception):
    """Anything a user can fix: bad input, unknown loop, unreadable config."""


class InputError(CollapseMonitorError):
    """A round or reference file that cannot be audited; nothing was stored."""


def disk_full_message(exc: BaseException) -> str | None:
    """One line for a failure a full disk caused, at any layer (a file write, SQLite, Postgres); else None.

    >>> import errno
    >>> disk_full_message(OSError(errno.ENOSPC, "No space left on device", "/h/store.db"))
    '/h/store.db: no space left on device'
    >>> disk_full_message(ValueError("x")) is None
    True
    """
    import errno

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return f"{exc.filename or 'a file'}: no space left on device"
        first = str(exc).split("\n", 1)[0].split(" [SQL:", 1)[0]
        if any(s in first for s in ("database or disk is full", "No space left on device", "could not extend file")):
            return f"no space left on device ({first.strip()})"
        exc = exc.__cause__ or exc.__context__
    return None
