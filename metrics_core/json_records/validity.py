r"""Validity of a JSON-records round: valid-JSON rate, JSON Schema correctness and per-record violations.

Part of :mod:`metrics_core.json_records` (its docstring states the round's layout and the uncertainty rules).
Schemas are checked and applied with ``jsonschema`` (Berman et al., the reference Python implementation of JSON
Schema): the validator class is the one the schema's ``$schema`` names, Draft 2020-12 when it names none, and
the schema is checked against its metaschema first. ``format`` is an annotation, as the specification makes it
by default: it is not asserted.
"""

from __future__ import annotations

import numpy as np

from metrics_core._checks import _check_json_records
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, mean_estimate


def json_object_indicator(records) -> np.ndarray:
    """``[N]`` bool: record ``i`` parsed as a JSON object.

    Example:
        >>> json_object_indicator([{"a": 1}, None, [1, 2], {}]).tolist()
        [True, False, False, True]
    """
    return np.array([isinstance(r, dict) for r in _check_json_records(records)], dtype=bool)


def valid_json_rate(records, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0) -> Estimate:
    r"""Valid-JSON rate (LLM Data Auditor survey §5.2; Shorten et al. 2024, "StructuredRAG: JSON Response
    Formatting with Large Language Models"): share of the round's outputs that parse as a JSON object.

    .. math:: \text{ValidJSON} = \frac1N \sum_{i=1}^N 1[\text{output } i \text{ parses as a JSON object}],

    over all :math:`N` outputs (blank lines are not outputs). An output is meant to be a record, so a line that
    parses to another JSON value (an array, a string, a number, ``true``, ``null``) is *not* valid, any more
    than one that does not parse. Range [0, 1], higher is better: a generator that learns from its own
    malformed outputs produces ever more of them. The interval bootstraps the mean of the per-output indicators.

    Args:
        records: ``[N]`` parsed JSON values, ``None`` for a line that did not parse.
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> valid_json_rate([{"a": 1}, None, [1, 2], {}]).value  # the array is JSON but not a record
        0.5
    """
    return mean_estimate(json_object_indicator(records), n_boot=n_boot, level=level, seed=seed)


def json_schema_validator(schema):
    """A ``jsonschema`` validator for ``schema``: the class its ``$schema`` names (Draft 2020-12 when none), after
    checking the schema against that class's metaschema. ValueError naming ``schema`` when it is not one.

    Example:
        >>> type(json_schema_validator({"type": "object"})).__name__
        'Draft202012Validator'
        >>> json_schema_validator({"type": "objekt"})
        Traceback (most recent call last):
        ...
        ValueError: schema: not a valid JSON Schema (Draft202012Validator): 'objekt' is not valid under any of ...
    """
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    if not isinstance(schema, (dict, bool)):
        raise ValueError(f"schema: expected a JSON Schema (a dict or bool), got {type(schema).__name__}")
    cls = validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        first = str(exc.message).split("\n", 1)[0]
        raise ValueError(f"schema: not a valid JSON Schema ({cls.__name__}): {first} at {exc.json_path}") from None
    return cls(schema)


def _violation(validator, record) -> str | None:
    from jsonschema.exceptions import best_match
    from referencing.exceptions import Unresolvable

    if record is None:
        return "$: not valid JSON (the line did not parse)"
    if not isinstance(record, dict):
        return f"$: not a JSON object (got {_json_kind(record)})"
    try:
        error = best_match(validator.iter_errors(record))
    except Unresolvable as exc:
        raise ValueError(f"schema: unresolvable reference: {exc}") from None
    return None if error is None else f"{error.json_path}: {error.message}"


def _json_kind(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string" if isinstance(value, str) else "an array"


def schema_violations(records, schema) -> list[str | None]:
    r"""Per output, its first JSON Schema violation as ``"<JSON path>: <message>"``, or None when it conforms.

    The violation shown is ``jsonschema.exceptions.best_match`` of the record's errors (the most relevant one,
    shallowest first), its path a JSONPath from the record's root (``$``). A line that did not parse gives
    ``"$: not valid JSON (the line did not parse)"`` and a JSON value other than an object ``"$: not a JSON
    object (got an array)"`` (or a string, a number, a boolean), whatever the schema: an output is meant to be
    a record.

    Args:
        records: ``[N]`` parsed JSON values, ``None`` for a line that did not parse.
        schema: a JSON Schema (``dict`` or ``bool``); see :func:`json_schema_validator`.

    Example:
        >>> schema = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}
        >>> for violation in schema_violations([{"id": 1}, {"id": "1"}, {}, None, [1]], schema):
        ...     print(violation)
        None
        $.id: '1' is not of type 'integer'
        $: 'id' is a required property
        $: not valid JSON (the line did not parse)
        $: not a JSON object (got an array)
    """
    validator = json_schema_validator(schema)
    return [_violation(validator, r) for r in _check_json_records(records)]


def schema_correctness_rate(
    records, schema, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0
) -> Estimate:
    r"""Schema correctness (LLM Data Auditor survey §5.2; Geng et al. 2025, "Generating Structured Outputs from
    Language Models: Benchmark and Studies" (JSONSchemaBench)): share of outputs that are JSON objects valid
    under the JSON Schema.

    .. math:: \text{SchemaCorrect} = \frac1N \sum_{i=1}^N 1[\text{output } i \text{ is an object and }
              \text{validates against } S],

    over all :math:`N` outputs: a line that did not parse, or a non-object value, counts as incorrect (see
    :func:`schema_violations`, whose None entries these are). It is at most :func:`valid_json_rate`. Range
    [0, 1], higher is better: violations a generator is retrained on, unfiltered, are reinforced. The interval
    bootstraps the mean of the per-output indicators.

    Args:
        records: ``[N]`` parsed JSON values, ``None`` for a line that did not parse.
        schema: a JSON Schema (``dict`` or ``bool``); see :func:`json_schema_validator`.
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> schema = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}
        >>> schema_correctness_rate([{"id": 1}, {"id": "1"}, {}, None], schema).value  # 1 of 4
        0.25
    """
    ok = np.array([v is None for v in schema_violations(records, schema)], dtype=np.float64)
    return mean_estimate(ok, n_boot=n_boot, level=level, seed=seed)
