"""Prefect flows: orchestration only; the metrics live in metrics_core.

Nothing is imported here, so the commands can reach :mod:`flows.prefect_api` without importing Prefect.
"""
