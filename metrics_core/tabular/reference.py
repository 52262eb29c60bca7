"""The fitted reference a round is compared with, a round checked and coded once, and row encoding.

Part of :mod:`metrics_core.tabular` (its docstring states the conventions: schema, level codes, nulls).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from metrics_core._checks import _check_dataframe, _check_positive_int
from metrics_core.sampling import subsample_indices
from metrics_core.tabular.schema import (
    DEFAULT_DET_MAX_ROWS, DEFAULT_N_BINS, NUMERIC, TableSchema, _check_columns, _float_values, infer_schema,
)


def _sorted_labels(values: list) -> list:
    try:
        return sorted(values)
    except TypeError:  # mixed types: a deterministic order all the same
        return sorted(values, key=lambda v: (type(v).__name__, repr(v)))


def _categories(series: pd.Series) -> pd.Index:
    labels = list(series.dropna().astype(object).unique())
    return pd.Index(_sorted_labels(labels))


def _quantile_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Interior edges of ``n_bins`` reference quantile bins; tied quantiles collapse to one edge."""
    return np.unique(np.quantile(values, np.linspace(0.0, 1.0, n_bins + 1))[1:-1])


def _correlations(frame: np.ndarray) -> np.ndarray:
    """Pearson correlations ``[p, p]`` over pairwise-complete rows; NaN where undefined (constant, < 2 rows)."""
    if frame.shape[1] == 0:
        return np.zeros((0, 0))
    return pd.DataFrame(frame).corr(method="pearson", min_periods=2).to_numpy()


@dataclass(frozen=True, eq=False)
class TabularReference:
    """Everything about the reference table that a round is compared with.

    ``level_codes[:, j]`` holds the level code (see the module docstring) of
    every reference cell of ``schema.columns[j]``; ``n_levels[c]`` is the number
    of levels of column ``c``. ``detection_rows`` are :func:`encode_rows` of at
    most ``det_max_rows`` reference rows (seeded subsample).
    """

    schema: TableSchema
    n_rows: int
    dtypes: dict[str, str]
    n_bins: int
    det_max_rows: int | None
    seed: int
    sorted_values: dict[str, np.ndarray]
    means: dict[str, float]
    stds: dict[str, float]
    bin_edges: dict[str, np.ndarray]
    categories: dict[str, pd.Index]
    category_counts: dict[str, np.ndarray]
    null_counts: dict[str, int]
    n_levels: dict[str, int]
    level_codes: np.ndarray
    correlations: np.ndarray
    detection_rows: np.ndarray


def fit_tabular_reference(
    reference_df: pd.DataFrame,
    schema: TableSchema | None = None,
    *,
    n_bins: int = DEFAULT_N_BINS,
    det_max_rows: int | None = DEFAULT_DET_MAX_ROWS,
    seed: int = 0,
) -> TabularReference:
    r"""Fit the reference statistics every tabular metric reuses.

    Numeric columns: the sorted non-null values, mean and standard deviation
    (population, ``ddof=0``; 0 is stored as 1) and the interior edges of
    ``n_bins`` quantile bins, :math:`Q(j/B)` for :math:`j=1..B-1` (numpy's
    linear quantile) with tied edges collapsed, so a heavily tied column gets
    fewer bins. Bin :math:`j` is :math:`[e_j, e_{j+1})`; the outer bins are open
    (:math:`-\infty`, :math:`+\infty`), so round values beyond the reference range
    fall into the end bins. Categorical columns: the non-null categories
    (sorted), their counts and the null count.

    Args:
        reference_df: the reference table.
        schema: column kinds; inferred with :func:`infer_schema` when None.
        n_bins: quantile bins per numeric column for contingency tables.
        det_max_rows: most reference (and round) rows DetScore uses, a seeded
            subsample (None: all).
        seed: seed of that subsample.

    Example:
        >>> ref = fit_tabular_reference(pd.DataFrame({"x": np.arange(100.0), "c": ["a", "b"] * 50}), n_bins=4)
        >>> ref.bin_edges["x"].tolist(), ref.categories["c"].tolist(), ref.n_levels
        ([24.75, 49.5, 74.25], ['a', 'b'], {'x': 5, 'c': 4})
    """
    _check_dataframe(reference_df, "reference")
    schema = infer_schema(reference_df) if schema is None else schema
    if not isinstance(schema, TableSchema):
        raise ValueError(f"schema: expected a TableSchema, got {type(schema).__name__}")
    _check_columns(reference_df, schema, "reference")
    _check_positive_int(n_bins, "n_bins")
    if det_max_rows is not None:
        _check_positive_int(det_max_rows, "det_max_rows")
    n = len(reference_df)
    sorted_values, means, stds, edges = {}, {}, {}, {}
    categories, counts, nulls, n_levels = {}, {}, {}, {}
    codes = np.empty((n, len(schema.columns)), dtype=np.int64)
    for j, column in enumerate(schema.columns):
        series = reference_df[column]
        if schema.kind(column) == NUMERIC:
            x = _float_values(series)
            v = np.sort(x[~np.isnan(x)])
            sorted_values[column] = v
            means[column] = float(v.mean())
            sd = float(v.std())
            stds[column] = sd if sd > 0 else 1.0
            edges[column] = _quantile_edges(v, n_bins)
            n_levels[column] = edges[column].size + 2
            codes[:, j] = _numeric_codes(x, edges[column])
        else:
            cats = _categories(series)
            categories[column] = cats
            n_levels[column] = len(cats) + 2
            codes[:, j] = _categorical_codes(series, cats)
            counts[column] = np.bincount(codes[:, j], minlength=n_levels[column])[: len(cats)]
            nulls[column] = int(series.isna().sum())
    numeric_block = np.zeros((n, 0))
    if schema.numeric:
        numeric_block = np.column_stack([_float_values(reference_df[c]) for c in schema.numeric])
    correlations = _correlations(numeric_block)
    det_index = subsample_indices(n, det_max_rows, seed)
    fit = TabularReference(
        schema=schema, n_rows=n, dtypes={c: str(reference_df[c].dtype) for c in schema.columns},
        n_bins=int(n_bins), det_max_rows=det_max_rows, seed=int(seed), sorted_values=sorted_values,
        means=means, stds=stds, bin_edges=edges, categories=categories, category_counts=counts,
        null_counts=nulls, n_levels=n_levels, level_codes=codes, correlations=correlations,
        detection_rows=np.zeros((0, 0), dtype=np.float32),
    )
    object.__setattr__(fit, "detection_rows", _encode(reference_df.iloc[det_index], fit))
    return fit


def _numeric_codes(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    codes = np.searchsorted(edges, x, side="right").astype(np.int64)
    codes[np.isnan(x)] = edges.size + 1  # the null level
    return codes


def _categorical_codes(series: pd.Series, categories: pd.Index) -> np.ndarray:
    codes = np.asarray(categories.get_indexer(series), dtype=np.int64)
    codes[codes < 0] = len(categories) + 1  # unseen
    codes[series.isna().to_numpy()] = len(categories)  # null
    return codes


def _as_reference(reference, schema: TableSchema | None = None, **fit_kwargs) -> TabularReference:
    """A fitted reference from a fitted one (schema must agree) or from a DataFrame."""
    if isinstance(reference, TabularReference):
        if schema is not None and schema != reference.schema:
            raise ValueError("schema: differs from the schema the reference was fitted with")
        return reference
    if isinstance(reference, pd.DataFrame):
        return fit_tabular_reference(reference, schema, **fit_kwargs)
    raise ValueError(f"reference: expected a DataFrame or a TabularReference, got {type(reference).__name__}")

@dataclass(frozen=True, eq=False)
class _Round:
    df: pd.DataFrame
    extra_columns: tuple[str, ...]
    numeric: dict[str, np.ndarray]  # float values with NaN for nulls
    level_codes: np.ndarray  # [m, C]


def _prepare_round(fit: TabularReference, round_df) -> _Round:
    _check_dataframe(round_df, "round")
    extra = _check_columns(round_df, fit.schema, "round", fit.dtypes)
    numeric = {c: _float_values(round_df[c]) for c in fit.schema.numeric}
    codes = np.empty((len(round_df), len(fit.schema.columns)), dtype=np.int64)
    for j, column in enumerate(fit.schema.columns):
        if column in numeric:
            codes[:, j] = _numeric_codes(numeric[column], fit.bin_edges[column])
        else:
            codes[:, j] = _categorical_codes(round_df[column], fit.categories[column])
    return _Round(round_df, extra, numeric, codes)


def _level_shares(codes: np.ndarray, n_levels: int) -> np.ndarray:
    return np.bincount(codes, minlength=n_levels) / codes.shape[0]

def _encode(df: pd.DataFrame, fit: TabularReference) -> np.ndarray:
    schema = fit.schema
    width = len(schema.numeric) + sum(len(fit.categories[c]) for c in schema.categorical)
    out = np.zeros((len(df), width), dtype=np.float32)
    j = 0
    for column in schema.numeric:
        z = (_float_values(df[column]) - fit.means[column]) / fit.stds[column]
        out[:, j] = np.nan_to_num(z, nan=0.0)  # a null sits at the reference mean
        j += 1
    for column in schema.categorical:
        cats = fit.categories[column]
        codes = np.asarray(cats.get_indexer(df[column]), dtype=np.int64)  # -1: null or unseen
        hit = np.flatnonzero(codes >= 0)
        out[hit, j + codes[hit]] = 1.0
        j += len(cats)
    return out


def encode_rows(df: pd.DataFrame, schema: TableSchema, reference_fit: TabularReference) -> np.ndarray:
    r"""Embed table rows as float32 vectors ``[n, D]`` in the reference's coordinates.

    Numeric columns become :math:`z = (x - \mu_{\text{ref}})/\sigma_{\text{ref}}`
    (population standard deviation; :math:`\sigma = 0` is replaced by 1), with a
    null mapped to 0, i.e. to the reference mean. Each categorical column
    becomes a one-hot block over the reference categories (sorted, see
    :func:`encoded_feature_names`); null and unseen values give an all-zero
    block. ``D`` = number of numeric columns + total number of reference
    categories. Columns of ``df`` outside the schema are ignored.

    Args:
        df: a table with every schema column (a round or the reference).
        schema: must equal ``reference_fit.schema``.
        reference_fit: from :func:`fit_tabular_reference`.

    Example:
        >>> ref = pd.DataFrame({"x": [0.0, 2.0] * 15, "c": ["a", "b"] * 15})  # x: mean 1, std 1
        >>> fit = fit_tabular_reference(ref, TableSchema.from_dict({"x": "numeric", "c": "categorical"}))
        >>> encode_rows(pd.DataFrame({"x": [3.0, None], "c": ["b", "zz"]}), fit.schema, fit).tolist()
        [[2.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    """
    if not isinstance(reference_fit, TabularReference):
        raise ValueError(f"reference_fit: expected a TabularReference, got {type(reference_fit).__name__}")
    if schema != reference_fit.schema:
        raise ValueError("schema: differs from the schema the reference was fitted with")
    rnd = _prepare_round(reference_fit, df)
    return _encode(rnd.df, reference_fit)


def encoded_feature_names(reference_fit: TabularReference) -> list[str]:
    """Names of the columns of :func:`encode_rows`: ``"x"`` for numeric, ``"c=value"`` for one-hot.

    Example:
        >>> fit = fit_tabular_reference(pd.DataFrame({"c": ["b", "a"]}))
        >>> encoded_feature_names(fit)
        ['c=a', 'c=b']
    """
    names = list(reference_fit.schema.numeric)
    for column in reference_fit.schema.categorical:
        names.extend(f"{column}={value}" for value in reference_fit.categories[column])
    return names
