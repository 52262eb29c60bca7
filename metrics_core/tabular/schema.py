"""Column kinds of a table: schema inference, overrides and the column checks every tabular metric shares.

Part of :mod:`metrics_core.tabular` (its docstring states the conventions: schema, level codes, nulls).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metrics_core._checks import _check_dataframe, _check_positive_int


NUMERIC = "numeric"
CATEGORICAL = "categorical"
KINDS = (NUMERIC, CATEGORICAL)
DEFAULT_MAX_CATEGORICAL_LEVELS = 20
DEFAULT_N_BINS = 10
DEFAULT_RARE_SHARE = 0.05
DEFAULT_CHI2_ALPHA = 0.05
DEFAULT_MIN_EXPECTED = 5.0
DEFAULT_DET_MAX_ROWS = 10_000
DEFAULT_N_SPLITS = 3
DEFAULT_MAX_ITER = 1000

def _is_numeric_dtype(dtype) -> bool:
    """Integer or float (numpy or nullable pandas); bool and complex are not numeric here."""
    return (
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
        and not pd.api.types.is_complex_dtype(dtype)
    )


def _is_label_dtype(dtype) -> bool:
    return (
        pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    )


def _check_overrides(overrides, df: pd.DataFrame) -> dict[str, str]:
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise ValueError(f"overrides: expected a mapping column -> kind, got {type(overrides).__name__}")
    for column, kind in overrides.items():
        if column not in df.columns:
            raise ValueError(f"overrides: column {column!r} is not in the reference columns {list(df.columns)}")
        if kind not in KINDS:
            raise ValueError(f"overrides: column {column!r}: expected kind 'numeric' or 'categorical', got {kind!r}")
    return dict(overrides)


def _check_columns(
    df: pd.DataFrame, schema: TableSchema, name: str, reference_dtypes: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """Every schema column present, numeric where the schema says so, none all-null, no infinities.

    Returns the columns of ``df`` that the schema does not name (ignored).
    """
    missing = [c for c in schema.columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing reference column(s) {missing}; expected all of {list(schema.columns)}")
    for column in schema.numeric:
        dtype = df[column].dtype
        if not _is_numeric_dtype(dtype):
            ref = f" like the reference ({reference_dtypes[column]})" if reference_dtypes else ""
            raise ValueError(f"{name}: column {column!r}: expected a numeric dtype{ref}, got {dtype}")
    for column in schema.columns:
        if bool(df[column].isna().all()):
            raise ValueError(f"{name}: column {column!r} is entirely null ({len(df)} rows)")
    for column in schema.numeric:
        values = _float_values(df[column])
        n_inf = int(np.isinf(values).sum())
        if n_inf:
            raise ValueError(f"{name}: column {column!r}: expected finite values or nulls, got {n_inf} infinite values")
    return tuple(c for c in df.columns if c not in schema.kinds_dict)


def _float_values(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=np.float64, na_value=np.nan)

@dataclass(frozen=True)
class TableSchema:
    """The kind (``"numeric"`` or ``"categorical"``) of every compared column, in reference order.

    Example:
        >>> s = TableSchema.from_dict({"age": "numeric", "sex": "categorical"})
        >>> s.numeric, s.categorical, s.kind("sex")
        (('age',), ('sex',), 'categorical')
    """

    kinds: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        names = [c for c, _ in self.kinds]
        if not names:
            raise ValueError("schema: expected at least one column, got none")
        if len(set(names)) != len(names):
            raise ValueError(f"schema: expected unique column names, got {names!r}")
        for column, kind in self.kinds:
            if not isinstance(column, str):
                raise ValueError(f"schema: expected string column names, got {column!r}")
            if kind not in KINDS:
                raise ValueError(f"schema: column {column!r}: expected kind 'numeric' or 'categorical', got {kind!r}")

    @classmethod
    def from_dict(cls, kinds: Mapping[str, str]) -> TableSchema:
        return cls(tuple((str(c), k) for c, k in kinds.items()))

    @property
    def kinds_dict(self) -> dict[str, str]:
        return dict(self.kinds)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.kinds)

    @property
    def numeric(self) -> tuple[str, ...]:
        return tuple(c for c, k in self.kinds if k == NUMERIC)

    @property
    def categorical(self) -> tuple[str, ...]:
        return tuple(c for c, k in self.kinds if k == CATEGORICAL)

    def kind(self, column: str) -> str:
        try:
            return self.kinds_dict[column]
        except KeyError:
            raise ValueError(f"schema: column {column!r} is not in {list(self.columns)}") from None


def infer_schema(
    reference_df: pd.DataFrame,
    overrides: Mapping[str, str] | None = None,
    *,
    max_categorical_levels: int = DEFAULT_MAX_CATEGORICAL_LEVELS,
) -> TableSchema:
    r"""Classify every reference column as numeric or categorical.

    A column is numeric when its dtype is integer or float (numpy or nullable
    pandas) and it has more than ``max_categorical_levels`` distinct non-null
    values; integer or float columns with fewer levels (codes, flags, ratings)
    and bool, object, string and category columns are categorical. Other
    dtypes (datetime, complex) are refused unless overridden as categorical,
    whose values are then compared as labels.

    Args:
        reference_df: the reference table, string column names.
        overrides: column -> ``"numeric"`` or ``"categorical"``; ``"numeric"``
            needs an integer or float dtype.
        max_categorical_levels: most distinct values a numeric-dtype column may
            have and still be categorical.

    Example:
        >>> df = pd.DataFrame({"x": np.arange(30.0), "code": [1, 2, 3] * 10, "s": ["a", "b", "c"] * 10})
        >>> infer_schema(df).kinds
        (('x', 'numeric'), ('code', 'categorical'), ('s', 'categorical'))
        >>> infer_schema(df, {"x": "categorical"}).kind("x")
        'categorical'
    """
    _check_dataframe(reference_df, "reference")
    _check_positive_int(max_categorical_levels, "max_categorical_levels", minimum=0)
    forced = _check_overrides(overrides, reference_df)
    kinds = []
    for column in reference_df.columns:
        dtype = reference_df[column].dtype
        if column in forced:
            kind = forced[column]
            if kind == NUMERIC and not _is_numeric_dtype(dtype):
                raise ValueError(f"overrides: column {column!r}: 'numeric' needs an integer or float dtype, got {dtype}")
        elif _is_numeric_dtype(dtype):
            n_levels = int(reference_df[column].nunique(dropna=True))
            kind = NUMERIC if n_levels > max_categorical_levels else CATEGORICAL
        elif _is_label_dtype(dtype):
            kind = CATEGORICAL
        else:
            raise ValueError(
                f"reference: column {column!r}: expected an integer, float, bool, object, string or category "
                f"dtype, got {dtype}; override it as 'categorical' to compare its values as labels"
            )
        kinds.append((column, kind))
    return TableSchema(tuple(kinds))
