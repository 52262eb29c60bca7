"""The domain error: the CLI prints its message as one line and exits 1."""


class CollapseMonitorError(Exception):
    """Anything a user can fix: bad input, unknown loop, unreadable config."""


class InputError(CollapseMonitorError):
    """A round or reference file that cannot be audited; nothing was stored."""
