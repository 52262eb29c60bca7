"""Declared constraints (ranges, allowed values, uniqueness, functional dependencies) and the violation rate.

Part of :mod:`metrics_core.tabular` (its docstring states the conventions: schema, level codes, nulls).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Union

import numpy as np
import pandas as pd

from metrics_core._checks import DEFAULT_FAILURE_LIMIT, _check_dataframe, _check_failure_limit, _check_positive_int
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, bootstrap_estimate
from metrics_core.tabular.schema import _float_values, _is_numeric_dtype


def _check_column_name(value, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}: expected a column name, got {value!r}")
    return value


@dataclass(frozen=True)
class RangeConstraint:
    """``min <= value <= max`` (either bound may be None), one check per non-null value."""

    column: str
    min: float | None = None
    max: float | None = None
    type: ClassVar[str] = "range"

    def __post_init__(self) -> None:
        _check_column_name(self.column, "range.column")
        for bound in ("min", "max"):
            v = getattr(self, bound)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v)):
                raise ValueError(f"range.{bound}: expected a number or None, got {v!r}")
        if self.min is None and self.max is None:
            raise ValueError(f"range {self.column!r}: expected at least one of min, max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"range {self.column!r}: expected min <= max, got min={self.min}, max={self.max}")

    @property
    def label(self) -> str:
        return f"range:{self.column}"


@dataclass(frozen=True)
class AllowedValuesConstraint:
    """The value is one of ``values``, one check per non-null value."""

    column: str
    values: tuple
    type: ClassVar[str] = "allowed"

    def __post_init__(self) -> None:
        _check_column_name(self.column, "allowed.column")
        if isinstance(self.values, (str, bytes)) or not isinstance(self.values, Iterable):
            raise ValueError(f"allowed.values: expected a list of values, got {self.values!r}")
        object.__setattr__(self, "values", tuple(self.values))
        if not self.values:
            raise ValueError(f"allowed {self.column!r}: expected at least one allowed value")

    @property
    def label(self) -> str:
        return f"allowed:{self.column}"


@dataclass(frozen=True)
class UniqueConstraint:
    """No value repeats; one check per non-null value, a repeat of an earlier value fails."""

    column: str
    type: ClassVar[str] = "unique"

    def __post_init__(self) -> None:
        _check_column_name(self.column, "unique.column")

    @property
    def label(self) -> str:
        return f"unique:{self.column}"


@dataclass(frozen=True)
class FunctionalDependency:
    """``determinant -> dependent`` within the round; one check per row with all its values non-null."""

    determinant: tuple[str, ...]
    dependent: str
    type: ClassVar[str] = "functional_dependency"

    def __post_init__(self) -> None:
        det = (self.determinant,) if isinstance(self.determinant, str) else self.determinant
        if not isinstance(det, Iterable) or not det:
            raise ValueError(f"functional_dependency.determinant: expected column names, got {self.determinant!r}")
        det = tuple(_check_column_name(c, "functional_dependency.determinant") for c in det)
        object.__setattr__(self, "determinant", det)
        _check_column_name(self.dependent, "functional_dependency.dependent")
        if self.dependent in det:
            raise ValueError(f"functional_dependency: the dependent {self.dependent!r} is also a determinant")

    @property
    def label(self) -> str:
        return f"fd:{','.join(self.determinant)}->{self.dependent}"


Constraint = Union[RangeConstraint, AllowedValuesConstraint, UniqueConstraint, FunctionalDependency]
_CONSTRAINT_TYPES = {
    cls.type: cls for cls in (RangeConstraint, AllowedValuesConstraint, UniqueConstraint, FunctionalDependency)
}
_CONSTRAINT_FIELDS = {
    "range": ({"column"}, {"min", "max"}),
    "allowed": ({"column", "values"}, set()),
    "unique": ({"column"}, set()),
    "functional_dependency": ({"determinant", "dependent"}, set()),
}


def constraint_from_dict(spec: Mapping) -> Constraint:
    """One constraint from a plain mapping such as a TOML table.

    Keys: ``type`` (``range``, ``allowed``, ``unique``, ``functional_dependency``)
    and that type's fields: ``column``, ``min``, ``max`` / ``column``, ``values``
    / ``column`` / ``determinant`` (a name or a list), ``dependent``.

    Example:
        >>> constraint_from_dict({"type": "range", "column": "age", "min": 0, "max": 120})
        RangeConstraint(column='age', min=0, max=120)
        >>> constraint_from_dict({"type": "functional_dependency", "determinant": "zip", "dependent": "city"}).label
        'fd:zip->city'
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"constraint: expected a mapping, got {type(spec).__name__}")
    kind = spec.get("type")
    if kind not in _CONSTRAINT_TYPES:
        raise ValueError(f"constraint: expected type one of {list(_CONSTRAINT_TYPES)}, got {kind!r}")
    required, optional = _CONSTRAINT_FIELDS[kind]
    given = set(spec) - {"type"}
    missing = sorted(required - given)
    if missing:
        raise ValueError(f"constraint {kind!r}: missing field(s) {missing}")
    unknown = sorted(given - required - optional)
    if unknown:
        raise ValueError(f"constraint {kind!r}: unknown field(s) {unknown}; expected {sorted(required | optional)}")
    return _CONSTRAINT_TYPES[kind](**{k: spec[k] for k in given})


def load_constraints(specs) -> tuple[Constraint, ...]:
    """Constraints from a list of mappings or constraint objects, or a mapping with a ``constraints`` list.

    Example:
        >>> [c.label for c in load_constraints({"constraints": [{"type": "unique", "column": "id"}]})]
        ['unique:id']
    """
    if isinstance(specs, Mapping):
        if "constraints" not in specs:
            raise ValueError(f"constraints: expected a 'constraints' list in the mapping, got keys {list(specs)}")
        specs = specs["constraints"]
    if isinstance(specs, (str, bytes)) or not isinstance(specs, Iterable):
        raise ValueError(f"constraints: expected a list of constraints, got {type(specs).__name__}")
    out = []
    for item in specs:
        out.append(item if isinstance(item, tuple(_CONSTRAINT_TYPES.values())) else constraint_from_dict(item))
    return tuple(out)


def _constraint_checks(constraint: Constraint, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per-row ``(checked, violated)`` booleans ``[m]`` of one constraint."""
    if isinstance(constraint, FunctionalDependency):
        columns = [*constraint.determinant, constraint.dependent]
    else:
        columns = [constraint.column]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"constraint {constraint.label!r}: round is missing column(s) {missing}")
    m = len(df)
    checked = ~df[columns].isna().any(axis=1).to_numpy()
    violated = np.zeros(m, dtype=bool)
    if isinstance(constraint, RangeConstraint):
        dtype = df[constraint.column].dtype
        if not _is_numeric_dtype(dtype):
            raise ValueError(f"constraint {constraint.label!r}: expected a numeric column, got dtype {dtype}")
        x = _float_values(df[constraint.column])
        low = -np.inf if constraint.min is None else constraint.min
        high = np.inf if constraint.max is None else constraint.max
        violated = checked & ((x < low) | (x > high))
    elif isinstance(constraint, AllowedValuesConstraint):
        violated = checked & ~df[constraint.column].isin(list(constraint.values)).to_numpy()
    elif isinstance(constraint, UniqueConstraint):
        violated = checked & df[constraint.column].duplicated(keep="first").to_numpy()
    else:
        rows = np.flatnonzero(checked)
        if rows.size:
            sub = df.iloc[rows]
            group = sub.groupby(list(constraint.determinant), sort=False, dropna=True).ngroup().to_numpy()
            value = pd.factorize(sub[constraint.dependent])[0]
            n_values = int(value.max()) + 1
            pair, inverse, count = np.unique(
                group.astype(np.int64) * n_values + value, return_inverse=True, return_counts=True
            )
            # Each group keeps its most frequent dependent value (ties: first seen); the
            # other rows are the fewest to delete for the dependency to hold (g3).
            pair_group = pair // n_values
            order = np.lexsort((pair % n_values, -count, pair_group))
            first = np.r_[True, pair_group[order][1:] != pair_group[order][:-1]]
            keep = np.zeros(pair.size, dtype=bool)
            keep[order[first]] = True
            violated[rows] = ~keep[inverse.ravel()]
    return checked, violated


@dataclass(frozen=True)
class ViolationResult:
    """The violation rate with its counts and each constraint's own rate (NaN: no checks).

    ``switched_off``: label -> the reference's own violation rate, for each
    constraint switched off because the reference violates it too often.
    """

    rate: Estimate
    n_checks: int
    n_violations: int
    per_constraint: dict[str, float]
    switched_off: dict[str, float] = field(default_factory=dict)


def _labelled_checks(df: pd.DataFrame, items) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(label, checked, violated)`` per constraint; a repeated label gets ``#2``, ``#3``..."""
    out, seen = [], set()
    for constraint in items:
        checked, violated = _constraint_checks(constraint, df)
        label, k = constraint.label, 2
        while label in seen:
            label, k = f"{constraint.label}#{k}", k + 1
        seen.add(label)
        out.append((label, checked, violated))
    return out


@dataclass(frozen=True)
class ViolationBaseline:
    """The reference's violations of each constraint (:func:`fit_violation_baseline`).

    Attributes:
        rates: label -> the whole reference's violation rate (NaN: no checks).
        n_rows: the round size the mean counts are for.
        checks, violations: label -> mean checks and violations over the
            reference's subsamples of ``n_rows`` rows.
    """

    rates: dict[str, float]
    n_rows: int
    checks: dict[str, float]
    violations: dict[str, float]


def fit_violation_baseline(reference_df: pd.DataFrame, constraints, n_rows: int, *, repeats: int = 8,
                           seed: int = 0) -> ViolationBaseline:
    r"""The reference's violations of each constraint, on the whole of it and at a round's size.

    ``unique`` and ``functional_dependency`` fail more often in a larger table,
    so the reference is compared at the round's size: its counts are the means
    over ``repeats`` seeded subsamples of ``n_rows`` rows without replacement
    (the whole reference once when it has at most ``n_rows`` rows).

    Example:
        >>> ref = pd.DataFrame({"age": [5, 130, 40, 41]})
        >>> fit_violation_baseline(ref, [{"type": "range", "column": "age", "max": 120}], 4).rates
        {'range:age': 0.25}
    """
    _check_dataframe(reference_df, "reference")
    items = load_constraints(constraints)
    _check_positive_int(n_rows, "n_rows")
    _check_positive_int(repeats, "repeats")
    whole_checks = _labelled_checks(reference_df, items)
    whole = {label: int(v.sum()) / int(c.sum()) if c.sum() else math.nan for label, c, v in whole_checks}
    n = len(reference_df)
    rng = np.random.default_rng(seed)
    per_sample = [whole_checks] if n <= n_rows else [
        _labelled_checks(reference_df.iloc[np.sort(rng.choice(n, size=n_rows, replace=False))], items)
        for _ in range(repeats)]
    checks = {label: 0.0 for label in whole}
    violations = {label: 0.0 for label in whole}
    for sample in per_sample:
        for label, c, v in sample:
            checks[label] += int(c.sum()) / len(per_sample)
            violations[label] += int(v.sum()) / len(per_sample)
    return ViolationBaseline(whole, n_rows, checks, violations)


def violation_rate(
    round_df: pd.DataFrame,
    constraints,
    *,
    reference: ViolationBaseline | None = None,
    failure_limit: float = DEFAULT_FAILURE_LIMIT,
    n_boot: int = 0,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> ViolationResult:
    r"""Violation rate VR, the share of integrity checks the round fails (survey §4.2).

    .. math:: \text{VR} = \frac{\#\text{violations}}{\#\text{checks}}
              = \frac{\sum_i v_i}{\sum_i c_i},

    pooled over constraints, where row :math:`i` contributes :math:`c_i` checks
    and :math:`v_i` failures:

    * ``range`` (column, min, max): one check per non-null value, failing
      outside :math:`[\min, \max]`;
    * ``allowed`` (column, values): one check per non-null value, failing
      when the value is not listed;
    * ``unique`` (column): one check per non-null value, failing when the value
      already occurred in an earlier row (a value seen :math:`k` times gives
      :math:`k-1` failures);
    * ``functional_dependency`` (determinant -> dependent), within the round:
      one check per row whose determinant and dependent are all non-null;
      within each determinant group, rows holding the group's most frequent
      dependent value pass and the others fail, so the failures are the fewest
      rows whose deletion makes the dependency hold (the :math:`g_3` measure,
      Kivinen & Mannila 1995).

    Nulls are not checked. The bootstrap resamples rows with their
    :math:`(c_i, v_i)` fixed on the round, the ratio
    :math:`\sum_i w_i v_i / \sum_i w_i c_i`; a row drawn twice is not a new
    uniqueness failure. Range [0, 1]; lower is better.

    **Relative to the reference** (``reference``, from
    :func:`fit_violation_baseline` at the round's size): a constraint the
    whole reference violates in more than ``failure_limit`` of its checks is
    switched off (``switched_off``; it describes the data, not an error), and
    the rate is :math:`\text{VR} - \text{VR}^{ref}`, with
    :math:`\text{VR}^{ref}` the reference's pooled rate over the constraints
    left on at the round's size: 0 means as often as the reference, in [-1, 1].

    Args:
        round_df: the round's table (any columns the constraints name).
        constraints: see :func:`load_constraints`; at least one.
        reference: the reference's :class:`ViolationBaseline` (None: the absolute rate).
        failure_limit: with a reference, the largest violation rate of the
            reference a constraint may have and stay on (default 0.2).
        n_boot: bootstrap replicates for the interval (0: none).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> df = pd.DataFrame({"age": [5, 130, None, 40], "id": [1, 2, 2, 2]})
        >>> r = violation_rate(df, [{"type": "range", "column": "age", "min": 0, "max": 120},
        ...                         {"type": "unique", "column": "id"}])
        >>> r.rate.value, r.n_violations, r.n_checks  # (1 + 2) / (3 + 4)
        (0.42857142857142855, 3, 7)
        >>> ref = pd.DataFrame({"age": [5, 30, 40, 50], "id": [1, 1, 1, 2]})
        >>> base = fit_violation_baseline(ref, [{"type": "range", "column": "age", "min": 0, "max": 120},
        ...                                     {"type": "unique", "column": "id"}], 4)
        >>> r = violation_rate(df, [{"type": "range", "column": "age", "min": 0, "max": 120},
        ...                         {"type": "unique", "column": "id"}], reference=base)
        >>> r.switched_off, r.rate.value  # the reference repeats ids in 2 of 4 rows: that check is off
        ({'unique:id': 0.5}, 0.3333333333333333)
    """
    _check_dataframe(round_df, "round")
    items = load_constraints(constraints)
    if not items:
        raise ValueError("constraints: expected at least one constraint, got none")
    _check_failure_limit(failure_limit)
    m = len(round_df)
    checks = np.zeros(m, dtype=np.int64)
    fails = np.zeros(m, dtype=np.int64)
    per_constraint, switched_off = {}, {}
    ref_checks = ref_violations = 0.0
    for label, checked, violated in _labelled_checks(round_df, items):
        if reference is not None:
            if reference.rates[label] > failure_limit:  # NaN (no reference checks) stays on
                switched_off[label] = reference.rates[label]
                continue
            ref_checks += reference.checks[label]
            ref_violations += reference.violations[label]
        checks += checked
        fails += violated
        n_checked = int(checked.sum())
        per_constraint[label] = int(violated.sum()) / n_checked if n_checked else math.nan
    n_checks, n_fails = int(checks.sum()), int(fails.sum())
    if n_checks == 0:
        why = "every constraint is switched off or checks only nulls" if switched_off else "every constrained value is null"
        raise ValueError(f"constraints: no check applies to the round ({why})")
    c, v = checks.astype(np.float64), fails.astype(np.float64)
    offset = ref_violations / ref_checks if ref_checks > 0 else 0.0

    def ratio(w: np.ndarray) -> float:
        denom = float(w @ c)
        return float(w @ v) / denom - offset if denom > 0 else math.nan

    rate = bootstrap_estimate(ratio, m, n_boot=n_boot, level=level, seed=seed)
    return ViolationResult(rate, n_checks, n_fails, per_constraint, switched_off)
