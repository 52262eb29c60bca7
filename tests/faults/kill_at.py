"""Run ``collapse-monitor`` and SIGKILL it at one phase of an audit, as a crash or the OOM killer would.

Usage: ``python tests/faults/kill_at.py PHASE [CLI ARGS...]`` (PHASE ``none`` runs the CLI unharmed).
Nothing here changes what the audit does: each phase wraps the real function the audit calls, and the
process kills itself with SIGKILL when it gets there, so no ``finally``, ``atexit`` or signal handler runs.
"""

from __future__ import annotations

import os
import signal
import sys


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _wrap(owner, name: str, *, before=None, after=None) -> None:
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        if before is not None and before(*args, **kwargs):
            _die()
        result = original(*args, **kwargs)
        if after is not None and after(*args, **kwargs):
            _die()
        return result

    setattr(owner, name, wrapper)


def _always(*args, **kwargs) -> bool:
    return True


def _nth_call(n: int):
    calls = [0]

    def nth(*args, **kwargs) -> bool:
        calls[0] += 1
        return calls[0] == n

    return nth


def _kill_inside_the_round_commit(*args, **kwargs) -> bool:
    """Arm the store's engine: the transaction that writes the round's rows dies before COMMIT reaches the server."""
    import sqlalchemy as sa

    store = args[0]
    wrote = []

    def after_execute(conn, clauseelement, *rest):
        if getattr(clauseelement, "table", None) is not None and clauseelement.table.name == "metric_values":
            wrote.append(True)

    def commit(conn):
        if wrote:
            _die()

    sa.event.listen(store.engine, "after_execute", after_execute)
    sa.event.listen(store.engine, "commit", commit)
    return False


def arm(phase: str) -> None:
    if phase == "none":
        return
    if phase == "loading":  # the round's file is being read
        from monitor.inputs import embeddings

        _wrap(embeddings, "load_embeddings", before=lambda path, role, *a, **k: role == "round")
    elif phase == "reference-fit":
        from monitor.modalities.pipeline import AuditPipeline

        _wrap(AuditPipeline, "fit_profile", before=_always)
    elif phase == "metrics":
        from monitor.modalities.pipeline import AuditPipeline

        _wrap(AuditPipeline, "suite_group", before=_nth_call(2))  # one metric group done, the next one running
    elif phase == "store-commit":
        from monitor.store import TrajectoryStore

        _wrap(TrajectoryStore, "record_round", before=_kill_inside_the_round_commit)
    elif phase == "after-store-commit":
        from monitor.store import TrajectoryStore

        _wrap(TrajectoryStore, "record_round", after=_always)
    elif phase == "mlflow-database-creation":  # mid-migration: the spans table made, its migration not recorded
        import sqlalchemy as sa

        def after_cursor_execute(conn, cursor, statement, *rest):
            if "CREATE TABLE spans" in statement:
                _die()

        sa.event.listen(sa.engine.Engine, "after_cursor_execute", after_cursor_execute)
    elif phase == "mlflow-logging":  # the round's run has its points, the loop's parent run not yet
        from mlflow.tracking import MlflowClient

        _wrap(MlflowClient, "log_batch", before=_nth_call(2))
    else:
        raise SystemExit(f"kill_at.py: unknown phase {phase!r}")


if __name__ == "__main__":
    arm(sys.argv[1])
    from monitor.cli import main

    sys.exit(main(sys.argv[2:]))
