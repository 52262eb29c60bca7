r"""The JSON-records suite: every JSON-records metric of a round in one call.

Part of :mod:`metrics_core.json_records` (its docstring states the round's layout and the uncertainty rules).
"""

from __future__ import annotations

from metrics_core._checks import _check_bootstrap, _check_json_records, _check_seed
from metrics_core.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, Estimate, mean_estimate
from metrics_core.json_records.coverage import (
    DEFAULT_MAX_CATEGORIES,
    categorical_value_coverage,
    categorical_values,
    field_coverage,
)
from metrics_core.json_records.matching import aligned_match_shares
from metrics_core.json_records.validity import schema_correctness_rate, valid_json_rate

#: The JSON-records metrics, in the registry's order.
JSON_METRIC_NAMES = (
    "valid_json_rate", "schema_correctness_rate", "field_coverage", "categorical_value_coverage",
    "mean_match_percentage",
)


def json_suite(
    records,
    reference_records,
    *,
    schema=None,
    truth_records=None,
    key: str | None = None,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Every defined JSON-records metric of one round, keyed by :data:`JSON_METRIC_NAMES`, in that order.

    Left out, as undefined: ``schema_correctness_rate`` without a ``schema``; ``categorical_value_coverage`` when
    the reference has no categorical path; ``mean_match_percentage`` without ``truth_records`` and ``key`` (give
    both or neither), or when no round record aligns with a truth record. ``valid_json_rate``,
    ``schema_correctness_rate`` and ``mean_match_percentage`` carry bootstrap intervals (outputs, or aligned
    truth records, resampled with ``seed``); the two coverages are point estimates (``ci_low`` etc. None).

    Args:
        records: ``[N]`` the round's parsed JSON values, ``None`` for a line that did not parse.
        reference_records: ``[N_ref]`` the reference's, likewise, with at least one field path.
        schema: a JSON Schema (``dict`` or ``bool``), or None.
        truth_records: ``[T]`` ground-truth JSON objects with a unique ``key`` each, or None.
        key: the key path aligning round and truth records, or None.
        max_categories: :func:`~metrics_core.json_records.coverage.categorical_value_coverage`'s.
        n_boot: bootstrap replicates (0: point estimates only).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> ref = [{"id": 1, "c": "a"}, {"id": 2, "c": "b"}]
        >>> out = json_suite([{"id": 1, "c": "a"}, None], ref, schema={"required": ["c"]}, truth_records=ref,
        ...                  key="id", n_boot=0)
        >>> for name, estimate in out.items():
        ...     print(name, estimate.value)
        valid_json_rate 0.5
        schema_correctness_rate 0.5
        field_coverage 1.0
        categorical_value_coverage 0.5
        mean_match_percentage 1.0
    """
    _check_bootstrap(n_boot, level)
    seed = _check_seed(seed)
    records = _check_json_records(records)
    if (truth_records is None) != (key is None):
        raise ValueError(f"key: expected truth_records and key together or neither, got "
                         f"{'truth_records without a key' if key is None else 'a key without truth_records'}")
    boot = {"n_boot": n_boot, "level": level, "seed": seed}

    out: dict[str, Estimate] = {"valid_json_rate": valid_json_rate(records, **boot)}
    if schema is not None:
        out["schema_correctness_rate"] = schema_correctness_rate(records, schema, **boot)
    out["field_coverage"] = Estimate(field_coverage(records, reference_records))
    if categorical_values(reference_records, max_categories):
        out["categorical_value_coverage"] = Estimate(
            categorical_value_coverage(records, reference_records, max_categories=max_categories))
    if truth_records is not None:
        shares = aligned_match_shares(records, truth_records, key)
        if shares.size:
            out["mean_match_percentage"] = mean_estimate(shares, **boot)
    return {name: out[name] for name in JSON_METRIC_NAMES if name in out}
