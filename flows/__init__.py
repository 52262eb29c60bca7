"""Prefect flows: orchestration only; the metrics live in metrics_core."""

from flows.audit import audit_round

__all__ = ["audit_round"]
