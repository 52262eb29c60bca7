r"""Well-formedness of structured captions: the share of captions that are JSON records valid under a schema.

Part of :mod:`metrics_core.image_text` (its docstring states the round's layout and the uncertainty rules).
"""

from __future__ import annotations

import json

import numpy as np

from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, mean_estimate


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_caption(caption: str):
    """A caption's JSON value, or None when it is not JSON (``NaN`` and ``Infinity`` are not).

    >>> parse_caption('{"objects": ["cat"]}'), parse_caption("a cat on a mat"), parse_caption("NaN")
    ({'objects': ['cat']}, None, None)
    """
    try:
        return json.loads(caption, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return None


def well_formed_rate(captions, schema, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0) -> Estimate:
    r"""Well-formed rate (LLM Data Auditor survey §6.2, validity of structured image-text records): the share of
    a round's captions that parse as a JSON object valid under the JSON Schema :math:`S`,

    .. math:: \text{WellFormed} = \frac1N \sum_{i=1}^N 1[c_i \text{ parses as a JSON object that validates
              against } S],

    the schema correctness of :func:`metrics_core.json_records.schema_correctness_rate` applied to the captions
    (a caption that is not JSON, or a JSON value other than an object, is not well formed). For captioners
    asked for structured output (objects, attributes, a caption field), whose self-distillation lets malformed
    or incomplete records creep in. Range [0, 1], higher is better. The interval bootstraps the mean of the
    per-caption indicators.

    Args:
        captions: ``[N]`` ``str``, the round's captions, ``N >= 1``.
        schema: a JSON Schema (``dict`` or ``bool``; its ``$schema`` picks the draft, Draft 2020-12 otherwise).
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> schema = {"type": "object", "required": ["objects"]}
        >>> well_formed_rate(['{"objects": []}', '{"caption": "x"}', "a dog", '["objects"]'], schema).value
        0.25
    """
    from metrics_core.json_records import schema_violations

    captions = list(captions)
    if not captions or not all(isinstance(c, str) for c in captions):
        raise ValueError("captions: expected a non-empty sequence of str")
    ok = np.array([v is None for v in schema_violations([parse_caption(c) for c in captions], schema)],
                  dtype=np.float64)
    return mean_estimate(ok, n_boot=n_boot, level=level, seed=seed)
