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
