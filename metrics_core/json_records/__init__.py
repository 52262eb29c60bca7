r"""JSON-records metrics: valid-JSON rate, schema correctness, field and categorical value coverage, match percentage.

A JSON-records round is a generator's structured outputs, one per line of a ``.jsonl`` file, each *supposed* to
be a JSON object (LLM Data Auditor survey §5.2-5.3, structured data). Collapse in such data shows as outputs
that stop parsing or stop conforming to their schema (malformed and schema-violating outputs that get back into
the training data unfiltered are reinforced), and as records that narrow: optional fields and array elements
stop appearing, categorical fields lose their rare values (Shumailov et al. 2024, Nature). Every metric here is
a pure function of the round's records (and of the reference's, the schema or the ground truth);
:func:`json_suite` computes all of them.

A round is a list of *records*, one per output line (blank lines are not outputs), each either a parsed JSON
value (``dict`` with ``str`` keys, ``list``, ``str``, ``int``, finite ``float``, ``bool``, or ``None`` for a
JSON ``null`` inside them) or ``None`` for a line that did not parse. A line holding only ``null`` is
therefore indistinguishable from an unparsed line; both are outputs that are not records, and every metric
treats them alike. Only JSON objects are records: a line that parses to an array, a string or a number counts
as invalid (:func:`valid_json_rate`), schema-incorrect, and has no fields. Field paths (dotted object keys;
arrays counted as ``p.__len__`` with their elements pooled under ``p[]``) are
:mod:`~metrics_core.json_records.flatten`'s, and :func:`flatten_records` turns a round into a table for the
tabular suite.

The reference is a list of records too (a loader refuses reference lines that are not JSON objects; the
metrics skip any that are not). ``schema`` is a JSON Schema (``dict``, or ``bool``), checked against its
metaschema. ``truth_records`` are ground-truth objects with a unique key path each.

Uncertainty: the rates are means of per-output (or per aligned truth record) values and return a
:class:`~metrics_core.bootstrap.Estimate` whose interval resamples outputs (:func:`valid_json_rate`,
:func:`schema_correctness_rate`) or aligned truth records (:func:`mean_match_percentage`). The coverages are
point estimates (``float``), as the text modality's vocabulary coverage: resampling the round duplicates some
records and drops others, which by itself lowers coverage, so a plain bootstrap interval would not even cover
the estimate.

The package holds :mod:`~metrics_core.json_records.flatten`, :mod:`~metrics_core.json_records.validity`,
:mod:`~metrics_core.json_records.coverage`, :mod:`~metrics_core.json_records.matching` and
:mod:`~metrics_core.json_records.suite`.
"""

from metrics_core.json_records.flatten import flatten_record, flatten_records  # noqa: F401
from metrics_core.json_records.validity import (  # noqa: F401
    json_schema_validator,
    schema_correctness_rate,
    schema_violations,
    valid_json_rate,
)
from metrics_core.json_records.coverage import (  # noqa: F401
    categorical_value_coverage,
    categorical_values,
    field_coverage,
)
from metrics_core.json_records.matching import aligned_match_shares, mean_match_percentage, same_leaf  # noqa: F401
from metrics_core.json_records.suite import JSON_METRIC_NAMES, json_suite  # noqa: F401
