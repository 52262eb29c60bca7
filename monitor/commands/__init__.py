"""One module per CLI verb; each exposes ``run(args) -> exit code``.

The Prefect plumbing the verbs share lives in :mod:`flows.prefect_api` (the one arrow from the commands up to
``flows/``); importing it here also sets Prefect's environment defaults before any verb imports Prefect.
"""

from flows.prefect_api import (  # noqa: F401
    API_FILE,
    advertise_api,
    prepare_flows,
    quiet_prefect,
    running_api,
    tie_temporary_api,
    withdraw_api,
)
