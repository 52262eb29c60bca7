"""Reading an Evidently 0.7 ``Snapshot.dict()``: the drift share and each column's test and verdict.

Part of the Evidently drift reports (:mod:`monitor.publishing.evidently_report`, which runs them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

_DRIFT_COUNT_TYPE = "DriftedColumnsCount"
_VALUE_DRIFT_TYPE = "ValueDrift"
_TEST_STATUS_DRIFTED = {"FAIL": True, "SUCCESS": False}


def _metric_type(metric, index: int) -> str:
    if not isinstance(metric, Mapping):
        raise ValueError(f"report dict: metrics[{index}]: expected a mapping, got {type(metric).__name__}")
    config = metric.get("config")
    if not isinstance(config, Mapping) or not isinstance(config.get("type"), str):
        found = sorted(config) if isinstance(config, Mapping) else type(config).__name__
        raise ValueError(
            f"report dict: metrics[{index}]: expected 'config' with a 'type' string, "
            f"got keys {sorted(metric)} and config {found}"
        )
    return config["type"].rsplit(":", 1)[-1]  # "evidently:metric_v2:ValueDrift" -> "ValueDrift"


def _metrics_list(d) -> list:
    if not isinstance(d, Mapping):
        raise ValueError(f"report dict: expected a mapping (Snapshot.dict()), got {type(d).__name__}")
    metrics = d.get("metrics")
    if not isinstance(metrics, list):
        raise ValueError(f"report dict: expected a 'metrics' list, got keys {sorted(d)}")
    return metrics


def drift_share_from_dict(d: Mapping) -> tuple[float, int, int]:
    r"""Read ``(drift_share, drifted_columns, n_columns)`` from an Evidently 0.7 ``Snapshot.dict()``.

    The share and count are the value ``{"count", "share"}`` of the single
    ``DriftedColumnsCount`` metric; ``n_columns`` is the number of
    ``ValueDrift`` metrics (``DataDriftPreset`` emits one per column), checked
    against :math:`\mathrm{count} = \mathrm{share}\cdot n_\mathrm{columns}`.

    Args:
        d: ``Snapshot.dict()`` of a report holding a ``DataDriftPreset``.

    Raises:
        ValueError: the dict is not shaped like that; the message names the keys found.

    Example:
        >>> d = {"metrics": [
        ...     {"config": {"type": "evidently:metric_v2:DriftedColumnsCount"}, "value": {"count": 1.0, "share": 0.5}},
        ...     {"config": {"type": "evidently:metric_v2:ValueDrift", "column": "a"}, "value": 0.01},
        ...     {"config": {"type": "evidently:metric_v2:ValueDrift", "column": "b"}, "value": 0.70}]}
        >>> drift_share_from_dict(d)
        (0.5, 1, 2)
    """
    metrics = _metrics_list(d)
    types = [_metric_type(m, i) for i, m in enumerate(metrics)]
    counts = [m for m, t in zip(metrics, types) if t == _DRIFT_COUNT_TYPE]
    if len(counts) != 1:
        raise ValueError(
            f"report dict: expected exactly one {_DRIFT_COUNT_TYPE} metric, found {len(counts)} "
            f"among metric types {sorted(set(types))}"
        )
    value = counts[0].get("value")
    if not isinstance(value, Mapping) or not {"count", "share"} <= set(value):
        found = sorted(value) if isinstance(value, Mapping) else type(value).__name__
        raise ValueError(f"report dict: {_DRIFT_COUNT_TYPE} value: expected keys 'count' and 'share', got {found}")
    count, share = value["count"], value["share"]
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (count, share)):
        raise ValueError(f"report dict: {_DRIFT_COUNT_TYPE} value: expected finite numbers, got {dict(value)}")
    n_columns = types.count(_VALUE_DRIFT_TYPE)
    if n_columns == 0:
        raise ValueError(
            f"report dict: no {_VALUE_DRIFT_TYPE} metrics, so the number of columns is unknown; "
            f"metric types found: {sorted(set(types))}"
        )
    if count != int(count) or not 0 <= count <= n_columns or abs(share * n_columns - count) > 1e-9:
        raise ValueError(
            f"report dict: {_DRIFT_COUNT_TYPE} count={count}, share={share} is inconsistent "
            f"with {n_columns} {_VALUE_DRIFT_TYPE} columns"
        )
    return float(share), int(count), n_columns


def per_column_drift_from_dict(d: Mapping) -> dict[str, dict]:
    """Each column's test, threshold, score and verdict from an Evidently 0.7 ``Snapshot.dict()``.

    The verdict is the status of the column's ``"drift"`` test (``FAIL``: drifted),
    so the report must be run with ``include_tests=True``.

    Args:
        d: ``Snapshot.dict()`` of a report holding a ``DataDriftPreset``.

    Raises:
        ValueError: a ``ValueDrift`` metric lacks its fields or its test.

    Example:
        >>> d = {"metrics": [{"id": "m1", "value": 0.01, "config": {"type": "evidently:metric_v2:ValueDrift",
        ...       "column": "a", "method": "K-S p_value", "threshold": 0.05}}],
        ...      "tests": [{"id": "drift", "status": "FAIL", "metric_config": {"metric_id": "m1"}}]}
        >>> per_column_drift_from_dict(d)
        {'a': {'stat_test': 'K-S p_value', 'threshold': 0.05, 'score': 0.01, 'drifted': True}}
    """
    metrics = _metrics_list(d)
    tests = d.get("tests")
    if not isinstance(tests, list):
        raise ValueError(f"report dict: expected a 'tests' list, got keys {sorted(d)}")
    status_by_metric = {}
    for test in tests:
        if isinstance(test, Mapping) and test.get("id") == "drift" and isinstance(test.get("metric_config"), Mapping):
            status_by_metric[test["metric_config"].get("metric_id")] = test.get("status")
    per_column: dict[str, dict] = {}
    for i, metric in enumerate(metrics):
        if _metric_type(metric, i) != _VALUE_DRIFT_TYPE:
            continue
        config = metric["config"]
        missing = [k for k in ("column", "method", "threshold") if k not in config] + (
            ["id"] if "id" not in metric else []
        ) + (["value"] if "value" not in metric else [])
        if missing:
            raise ValueError(
                f"report dict: metrics[{i}] ({_VALUE_DRIFT_TYPE}): missing {missing}; "
                f"got keys {sorted(metric)} and config keys {sorted(config)}"
            )
        status = status_by_metric.get(metric["id"])
        if status not in _TEST_STATUS_DRIFTED:
            raise ValueError(
                f"report dict: column {config['column']!r}: expected a 'drift' test with status FAIL or SUCCESS "
                f"(run the Report with include_tests=True), got {status!r}"
            )
        per_column[config["column"]] = {
            "stat_test": config["method"],
            "threshold": float(config["threshold"]),
            "score": float(metric["value"]),
            "drifted": _TEST_STATUS_DRIFTED[status],
        }
    return per_column
