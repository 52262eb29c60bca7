r"""Tabular fidelity, validity and coverage of a round's table against a reference table.

The metrics follow the LLM Data Auditor survey (§4.2 validity and fidelity,
§4.3 CovGap) and TabSyn's low-order-statistics protocol (Zhang et al. 2024,
"Mixed-type tabular data synthesis with score-based diffusion in latent
space", ICLR 2024, App. E.3), which reads SDMetrics' column shapes (KS, TVD)
and column pair trends (correlation and contingency similarity).

**Schema.** :func:`infer_schema` calls a column *numeric* when it has an
integer or float dtype and more than ``max_categorical_levels`` (default 20)
distinct non-null values, and *categorical* otherwise (bool, object, string
and category dtypes always). ``overrides`` force a kind per column.

**The fitted reference.** :func:`fit_tabular_reference` stores everything a
round is compared with: sorted numeric values (KS), means and standard
deviations (:func:`encode_rows`), quantile bin edges (contingency tables),
the categories and their counts (TVD, chi-squared, coverage, CovGap), the
Pearson correlations, a level code for every reference cell and the encoded
reference rows for DetScore, so a round is scored without the reference table.

**Level codes.** Every cell is mapped to an integer level: a categorical
column with :math:`K` reference categories uses ``0..K-1`` for them, ``K``
for null and ``K+1`` for any value the reference never holds ("unseen"); a
numeric column uses its quantile bins ``0..B-1`` and ``B`` for null. Merging
all unseen values into one level leaves every total variation distance
unchanged: on cells where the reference has mass 0,
:math:`\sum_c |0 - S_c| = |0 - \sum_c S_c|`.

**Nulls.** KS and Pearson drop them (per column, and pairwise-complete rows
per pair); TVD, CovGap and contingency tables count null as one more category
(or bin); chi-squared counts null as a category when the reference has nulls
and as unseen otherwise; category coverage counts non-null reference
categories only; :func:`encode_rows` maps a null to zeros. A reference or
round column that is entirely null, a missing reference column in the round
and a numeric reference column that is not numeric in the round are refused.
Round columns absent from the schema are ignored and listed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import ClassVar, Union

import numpy as np
import pandas as pd
import scipy.stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from metrics_core._checks import DEFAULT_FAILURE_LIMIT, _check_failure_limit, _check_positive_int
from metrics_core.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, Estimate, bootstrap_estimate
from metrics_core.sampling import subsample_indices
from metrics_core.univariate import ks_statistic

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

# Stable names of the suite's metrics, in report order.
TABULAR_METRICS = (
    "ks_mean",
    "tvd_mean",
    "column_shape_error",
    "pearson_score",
    "contingency_score",
    "det_score",
    "chi2_min_pvalue",
    "chi2_reject_share",
    "category_coverage",
    "rare_category_coverage",
    "cov_gap",
    "violation_rate",
)


# --------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------


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


def _check_dataframe(df, name: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{name}: expected a pandas DataFrame, got {type(df).__name__}")
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty table, got shape {df.shape}")
    bad = [c for c in df.columns if not isinstance(c, str)]
    if bad:
        raise ValueError(f"{name}: expected string column names, got {bad!r}")
    dup = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dup:
        raise ValueError(f"{name}: expected unique column names, got duplicates {dup!r}")




def _check_share(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise ValueError(f"{name}: expected a share in (0, 1], got {value!r}")


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


# --------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# The fitted reference
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# A round, checked and coded once
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Row encoding (for the embedding-space suite and DetScore)
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Marginals: KS and TVD
# --------------------------------------------------------------------------


def _column_ks(reference_sorted: np.ndarray, values: np.ndarray) -> float:
    present = values[~np.isnan(values)]  # nulls are dropped per column; a column of only nulls has no KS
    return ks_statistic(reference_sorted, present, a_sorted=True) if present.size else float("nan")


def _ks_from_round(fit: TabularReference, rnd: _Round) -> dict[str, float]:
    return {c: _column_ks(fit.sorted_values[c], rnd.numeric[c]) for c in fit.schema.numeric}


def ks_statistics(reference, round_df: pd.DataFrame, *, schema: TableSchema | None = None) -> dict[str, float]:
    r"""Two-sample Kolmogorov-Smirnov statistic of every numeric column (survey §4.2; TabSyn).

    .. math:: \mathrm{KST} = \sup_x \lvert F_{\text{real}}(x) - F_{\text{syn}}(x)\rvert,

    with :math:`F` the empirical CDFs of the non-null values (nulls are
    dropped per column); the supremum is attained at a sample point, so it is
    evaluated on the pooled sample, equal to ``scipy.stats.ks_2samp(...).statistic``.
    Range [0, 1]; lower is better. SDMetrics' KSComplement is :math:`1-\mathrm{KST}`.

    Args:
        reference: the reference DataFrame or its :class:`TabularReference`.
        round_df: the round's table.
        schema: column kinds when ``reference`` is a DataFrame (inferred if None).

    Returns:
        numeric column -> KS statistic.

    Example:
        >>> ref = pd.DataFrame({"x": np.arange(1.0, 31.0)})
        >>> ks_statistics(ref, pd.DataFrame({"x": np.arange(16.0, 46.0)}))
        {'x': 0.5}
    """
    fit = _as_reference(reference, schema)
    return _ks_from_round(fit, _prepare_round(fit, round_df))


def _tvd_column(fit: TabularReference, rnd: _Round, column: str) -> float:
    j = fit.schema.columns.index(column)
    levels = fit.n_levels[column]
    p = _level_shares(fit.level_codes[:, j], levels)
    q = _level_shares(rnd.level_codes[:, j], levels)
    return float(0.5 * np.abs(p - q).sum())


def _tvd_from_round(fit: TabularReference, rnd: _Round) -> dict[str, float]:
    return {c: _tvd_column(fit, rnd, c) for c in fit.schema.categorical}


def tvd_distances(reference, round_df: pd.DataFrame, *, schema: TableSchema | None = None) -> dict[str, float]:
    r"""Total variation distance of every categorical column (survey §4.2; TabSyn).

    .. math:: \mathrm{TVD} = \tfrac12 \sum_{\omega\in\Omega} \lvert R(\omega) - S(\omega)\rvert,

    where :math:`R, S` are the reference and round shares of category
    :math:`\omega` and :math:`\Omega` is the union of both tables' categories,
    null counting as one more category. Range [0, 1]; lower is better.
    SDMetrics' TVComplement is :math:`1-\mathrm{TVD}`.

    Args:
        reference: the reference DataFrame or its :class:`TabularReference`.
        round_df: the round's table.
        schema: column kinds when ``reference`` is a DataFrame (inferred if None).

    Returns:
        categorical column -> TVD.

    Example:
        >>> ref = pd.DataFrame({"c": ["a", "a", "b", "b"]})
        >>> tvd_distances(ref, pd.DataFrame({"c": ["a", "a", "a", "z"]}))  # 1/2 (|.5-.75| + |.5-0| + |0-.25|)
        {'c': 0.5}
    """
    fit = _as_reference(reference, schema)
    return _tvd_from_round(fit, _prepare_round(fit, round_df))


# --------------------------------------------------------------------------
# Pairs: Pearson and contingency scores
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class PairScore:
    """A pairwise score: the mean over pairs and each pair's term."""

    score: float
    per_pair: dict[tuple[str, str], float]


def _pearson_from_round(fit: TabularReference, rnd: _Round) -> PairScore:
    cols = fit.schema.numeric
    if len(cols) < 2:
        return PairScore(math.nan, {})
    rho_round = _correlations(np.column_stack([rnd.numeric[c] for c in cols]))
    per_pair = {}
    for i, j in combinations(range(len(cols)), 2):
        rho_ref = fit.correlations[i, j]
        if np.isnan(rho_ref):  # no correlation to preserve
            continue
        rho_syn = rho_round[i, j]
        rho_syn = 0.0 if np.isnan(rho_syn) else rho_syn  # a constant round column has no linear association
        per_pair[(cols[i], cols[j])] = 0.5 * abs(float(rho_ref) - float(rho_syn))
    score = float(np.mean(list(per_pair.values()))) if per_pair else math.nan
    return PairScore(score, per_pair)


def pearson_score(reference, round_df: pd.DataFrame, *, schema: TableSchema | None = None) -> PairScore:
    r"""PearsonScore, the mean correlation gap over numeric column pairs (survey §4.2; TabSyn App. E.3).

    .. math::
        \text{PearsonScore} = \frac12 \cdot \frac1K \sum_{(i,j)}
            \lvert \rho_{\text{real}}^{(i,j)} - \rho_{\text{syn}}^{(i,j)} \rvert ,

    over the :math:`K` pairs :math:`i<j` of numeric columns, with
    :math:`\rho` the Pearson correlation over the rows where both values are
    non-null. A pair whose reference correlation is undefined (a constant
    column) is left out; an undefined round correlation (constant round
    column, fewer than 2 complete rows) counts as :math:`\rho_{\text{syn}} = 0`.
    Each pair's term is :math:`1 -` SDMetrics' CorrelationSimilarity. Range
    [0, 1]; lower is better. NaN when no pair qualifies.

    Args:
        reference: the reference DataFrame or its :class:`TabularReference`.
        round_df: the round's table.
        schema: column kinds when ``reference`` is a DataFrame (inferred if None).

    Example:
        >>> x = np.arange(30.0)
        >>> ref = pd.DataFrame({"a": x, "b": x})  # rho = 1
        >>> pearson_score(ref, pd.DataFrame({"a": x, "b": -x})).score  # rho = -1
        1.0
    """
    fit = _as_reference(reference, schema)
    return _pearson_from_round(fit, _prepare_round(fit, round_df))


def _contingency_from_round(fit: TabularReference, rnd: _Round) -> PairScore:
    columns = fit.schema.columns
    per_pair = {}
    for i, j in combinations(range(len(columns)), 2):
        a, b = columns[i], columns[j]
        if fit.schema.kind(a) == NUMERIC and fit.schema.kind(b) == NUMERIC:
            continue  # numeric pairs are PearsonScore's
        la, lb = fit.n_levels[a], fit.n_levels[b]
        r = _level_shares(fit.level_codes[:, i] * lb + fit.level_codes[:, j], la * lb)
        s = _level_shares(rnd.level_codes[:, i] * lb + rnd.level_codes[:, j], la * lb)
        per_pair[(a, b)] = float(0.5 * np.abs(r - s).sum())
    score = float(np.mean(list(per_pair.values()))) if per_pair else math.nan
    return PairScore(score, per_pair)


def contingency_score(
    reference, round_df: pd.DataFrame, *, schema: TableSchema | None = None, n_bins: int | None = None
) -> PairScore:
    r"""ContingencyScore, the mean contingency-table TVD over column pairs (survey §4.2; TabSyn App. E.3).

    .. math::
        \text{ContingencyScore}(A, B) = \frac12 \sum_{\alpha\in A}\sum_{\beta\in B}
            \lvert R_{\alpha,\beta} - S_{\alpha,\beta} \rvert ,

    with :math:`R, S` the joint shares of the reference and the round, over the
    union of cells, averaged over every pair with at least one categorical
    column (numeric-numeric pairs belong to :func:`pearson_score`, as in
    TabSyn). Numeric columns are bucketed into the reference's quantile bins
    (:func:`fit_tabular_reference`; SDMetrics uses equal-width bins instead),
    nulls are one more category or bin. Each pair's term is :math:`1 -`
    SDMetrics' ContingencySimilarity on the bucketed columns. Range [0, 1];
    lower is better. NaN when no pair qualifies.

    Args:
        reference: the reference DataFrame or its :class:`TabularReference`.
        round_df: the round's table.
        schema: column kinds when ``reference`` is a DataFrame (inferred if None).
        n_bins: quantile bins when ``reference`` is a DataFrame (default 10);
            a fitted reference keeps its own (a different value is refused).

    Example:
        >>> ref = pd.DataFrame({"a": ["x", "x", "y", "y"], "b": ["u", "v", "u", "v"]})
        >>> contingency_score(ref, pd.DataFrame({"a": ["x", "y"], "b": ["u", "v"]})).score  # 1/2 (4 * 1/4)
        0.5
    """
    if isinstance(reference, TabularReference):
        if n_bins is not None and n_bins != reference.n_bins:
            raise ValueError(f"n_bins: the reference was fitted with n_bins={reference.n_bins}, got {n_bins}")
        fit = _as_reference(reference, schema)
    else:
        fit = _as_reference(reference, schema, n_bins=DEFAULT_N_BINS if n_bins is None else n_bins)
    return _contingency_from_round(fit, _prepare_round(fit, round_df))


# --------------------------------------------------------------------------
# Chi-squared goodness of fit per categorical column
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Chi2Result:
    """Pearson's chi-squared goodness of fit of one column."""

    statistic: float
    pvalue: float
    dof: int


def _chi2_column(fit: TabularReference, rnd: _Round, column: str, min_expected: float) -> Chi2Result:
    j = fit.schema.columns.index(column)
    k = len(fit.categories[column])
    n, m = fit.n_rows, rnd.level_codes.shape[0]
    round_counts = np.bincount(rnd.level_codes[:, j], minlength=k + 2).astype(np.float64)
    ref_counts = fit.category_counts[column].astype(np.float64)
    observed = round_counts[:k]
    outside = round_counts[k + 1]  # unseen
    if fit.null_counts[column] > 0:  # null is a reference category
        ref_counts = np.append(ref_counts, fit.null_counts[column])
        observed = np.append(observed, round_counts[k])
    else:
        outside += round_counts[k]
    expected = m * ref_counts / n
    rare = expected < min_expected
    other_expected = float(expected[rare].sum())
    other_observed = float(outside + observed[rare].sum())
    observed, expected = observed[~rare], expected[~rare]
    if other_expected > 0:
        observed = np.append(observed, other_observed)
        expected = np.append(expected, other_expected)
    elif other_observed > 0:  # round mass where the reference has none
        return Chi2Result(math.inf, 0.0, observed.size)
    if observed.size < 2:
        return Chi2Result(0.0, 1.0, 0)
    statistic = float(((observed - expected) ** 2 / expected).sum())
    dof = observed.size - 1
    return Chi2Result(statistic, float(scipy.stats.chi2.sf(statistic, dof)), dof)


def chi2_tests(
    reference,
    round_df: pd.DataFrame,
    *,
    schema: TableSchema | None = None,
    min_expected: float = DEFAULT_MIN_EXPECTED,
) -> dict[str, Chi2Result]:
    r"""Column-wise chi-squared goodness of fit of the round to the reference (survey §4.2; TabSyn).

    .. math::
        \chi^2 = \sum_{c\in\Omega} \frac{(O_c - E_c)^2}{E_c}, \qquad
        p = \Pr(\chi^2_{|\Omega|-1} \ge \chi^2),

    with :math:`O_c` the round's count of category :math:`c` and
    :math:`E_c = m\, n_c / n` its expected count under the reference shares
    (:math:`m` round rows, :math:`n` reference rows, :math:`n_c` reference
    count; Pearson 1900). :math:`\Omega` holds the reference categories (null
    included when the reference has nulls); those with :math:`E_c <`
    ``min_expected`` (Cochran's rule, default 5) are pooled into one "other"
    cell, together with every round value the reference does not hold (for
    which :math:`E = 0`). Without rare categories to pool into, such round
    values make :math:`\chi^2 = \infty`, :math:`p = 0`: the round puts mass
    where the reference has none. Fewer than 2 cells give :math:`p = 1`. No
    smoothing. Higher :math:`p` is better (closer marginals).

    The reference shares are treated as exact; when both tables are samples
    of one distribution the statistic is inflated by about :math:`1 + m/n`,
    so p-values are small for large rounds even without drift: read them as a
    monitored trend, not as calibrated tests. (SDMetrics' CSTest passes shares
    instead of counts, which removes the dependence on :math:`m`.)

    Args:
        reference: the reference DataFrame or its :class:`TabularReference`.
        round_df: the round's table.
        schema: column kinds when ``reference`` is a DataFrame (inferred if None).
        min_expected: pooling threshold for expected counts (0: no pooling).

    Returns:
        categorical column -> :class:`Chi2Result`.

    Example:
        >>> ref = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 50})
        >>> r = chi2_tests(ref, pd.DataFrame({"c": ["a"] * 60 + ["b"] * 40}))["c"]  # (10^2 + 10^2) / 50
        >>> r.statistic, r.dof, round(r.pvalue, 6)
        (4.0, 1, 0.0455)
    """
    if isinstance(min_expected, bool) or not isinstance(min_expected, (int, float)) or min_expected < 0:
        raise ValueError(f"min_expected: expected a non-negative number, got {min_expected!r}")
    fit = _as_reference(reference, schema)
    rnd = _prepare_round(fit, round_df)
    return {c: _chi2_column(fit, rnd, c, float(min_expected)) for c in fit.schema.categorical}


# --------------------------------------------------------------------------
# DetScore: logistic-regression detection
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectionResult:
    """DetScore with the mean cross-validated AUC it comes from and the per-fold AUCs."""

    det_score: float
    auc: float
    fold_aucs: tuple[float, ...]


def _detection_from_round(
    fit: TabularReference, rnd: _Round, *, seed: int, n_splits: int, max_iter: int
) -> DetectionResult:
    _check_positive_int(n_splits, "n_splits", minimum=2)
    _check_positive_int(max_iter, "max_iter")
    m = len(rnd.df)
    x_ref = fit.detection_rows
    x_rnd = _encode(rnd.df.iloc[subsample_indices(m, fit.det_max_rows, seed + 1)], fit)
    for name, rows in (("reference", x_ref.shape[0]), ("round", x_rnd.shape[0])):
        if rows < n_splits:
            raise ValueError(f"{name}: DetScore needs at least n_splits={n_splits} rows, got {rows}")
    x = np.vstack([x_ref, x_rnd]).astype(np.float64)
    y = np.concatenate([np.zeros(x_ref.shape[0], dtype=np.int64), np.ones(x_rnd.shape[0], dtype=np.int64)])
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    aucs = []
    for train, test in folds.split(x, y):
        clf = LogisticRegression(solver="lbfgs", max_iter=max_iter)
        clf.fit(x[train], y[train])
        aucs.append(float(roc_auc_score(y[test], clf.decision_function(x[test]))))
    auc = float(np.mean(aucs))
    return DetectionResult(1.0 - (2.0 * max(auc, 0.5) - 1.0), auc, tuple(aucs))


def detection_score(
    reference,
    round_df: pd.DataFrame,
    *,
    schema: TableSchema | None = None,
    seed: int = 0,
    n_splits: int = DEFAULT_N_SPLITS,
    max_iter: int = DEFAULT_MAX_ITER,
) -> DetectionResult:
    r"""DetScore, a logistic-regression classifier two-sample test (survey §4.2; SDMetrics LogisticDetection).

    .. math:: \text{DetScore} = 1 - \big(2 \max(\overline{\text{AUC}}, 0.5) - 1\big),

    where :math:`\overline{\text{AUC}}` is the mean ROC AUC over the folds of
    ``StratifiedKFold(n_splits, shuffle=True, random_state=seed)`` of
    ``LogisticRegression(solver="lbfgs", max_iter=max_iter)`` (C = 1) telling
    reference rows (label 0) from round rows (label 1), on the float64 features
    of :func:`encode_rows` (reference-standardised numeric columns, one-hot
    categorical columns; Lopez-Paz & Oquab 2017). Each side uses at most the
    reference's ``det_max_rows`` rows (seeded subsample). As the survey
    defines it, the AUC is averaged before clipping at 0.5 (SDMetrics clips
    each fold, which biases the score below 1 for identical tables). Range
    [0, 1]; higher is better: 1 when the classifier does no better than chance,
    0 when it separates the tables perfectly.

    Args:
        reference: the reference DataFrame or its :class:`TabularReference`.
        round_df: the round's table, at least ``n_splits`` rows.
        schema: column kinds when ``reference`` is a DataFrame (inferred if None).
        seed: seed of the folds (and of the round's subsample).
        n_splits: cross-validation folds.
        max_iter: L-BFGS iterations.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ref = pd.DataFrame({"x": rng.normal(size=60)})
        >>> detection_score(ref, pd.DataFrame({"x": rng.normal(size=60) + 100.0})).det_score
        0.0
    """
    fit = _as_reference(reference, schema)
    return _detection_from_round(fit, _prepare_round(fit, round_df), seed=seed, n_splits=n_splits, max_iter=max_iter)


# --------------------------------------------------------------------------
# Category coverage and CovGap
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CoverageResult:
    """Pooled category coverage, its rare-category restriction and the per-column coverage."""

    category_coverage: float
    rare_category_coverage: float
    n_categories: int
    n_rare_categories: int
    per_column: dict[str, float]


def _coverage_from_round(fit: TabularReference, rnd: _Round, rare_share: float) -> CoverageResult:
    covered = total = rare_covered = rare_total = 0
    per_column = {}
    for column in fit.schema.categorical:
        j = fit.schema.columns.index(column)
        k = len(fit.categories[column])
        hit = np.bincount(rnd.level_codes[:, j], minlength=k + 2)[:k] > 0
        rare = fit.category_counts[column] / fit.n_rows < rare_share
        per_column[column] = float(hit.mean())
        covered += int(hit.sum())
        total += k
        rare_covered += int(hit[rare].sum())
        rare_total += int(rare.sum())
    return CoverageResult(
        covered / total if total else math.nan,
        rare_covered / rare_total if rare_total else math.nan,
        total,
        rare_total,
        per_column,
    )


def category_coverage(
    reference,
    round_df: pd.DataFrame,
    *,
    schema: TableSchema | None = None,
    rare_share: float = DEFAULT_RARE_SHARE,
) -> CoverageResult:
    r"""Share of the reference's categories the round still produces, overall and for rare ones.

    .. math::
        \text{Cov} = \frac{\sum_{j} \lvert\{c \in \Omega_j : O_{j,c} \ge 1\}\rvert}{\sum_j \lvert\Omega_j\rvert},
        \qquad
        \text{Cov}_{\text{rare}} = \frac{\sum_{j} \lvert\{c \in \Omega^{\text{rare}}_j : O_{j,c} \ge 1\}\rvert}
                                        {\sum_j \lvert\Omega^{\text{rare}}_j\rvert},

    pooled over categorical columns :math:`j`, with :math:`\Omega_j` the
    non-null reference categories, :math:`O_{j,c}` the round's count and
    :math:`\Omega^{\text{rare}}_j = \{c : n_{j,c}/n <` ``rare_share`` :math:`\}`
    (share of all reference rows, nulls included in :math:`n`). The survey's
    warning that LLM generators lose long-tail values (§4.4) and collapse's
    disappearing tails (§8.1) are what it tracks. Range [0, 1]; higher is
    better. NaN when there are no categories (no rare categories for the
    second).

    Args:
        reference: the reference DataFrame or its :class:`TabularReference`.
        round_df: the round's table.
        schema: column kinds when ``reference`` is a DataFrame (inferred if None).
        rare_share: a category is rare below this reference share.

    Example:
        >>> ref = pd.DataFrame({"c": ["a"] * 97 + ["b", "c", "d"]})
        >>> r = category_coverage(ref, pd.DataFrame({"c": ["a", "b"]}))
        >>> r.category_coverage, r.rare_category_coverage
        (0.5, 0.3333333333333333)
    """
    _check_share(rare_share, "rare_share")
    fit = _as_reference(reference, schema)
    return _coverage_from_round(fit, _prepare_round(fit, round_df), float(rare_share))


def _check_protected(fit: TabularReference, protected_attribute) -> None:
    if protected_attribute not in fit.schema.kinds_dict:
        raise ValueError(
            f"protected_attribute: expected one of the schema columns {list(fit.schema.columns)}, "
            f"got {protected_attribute!r}"
        )
    if fit.schema.kind(protected_attribute) != CATEGORICAL:
        raise ValueError(f"protected_attribute: column {protected_attribute!r}: expected categorical, got numeric")


def cov_gap(
    reference, round_df: pd.DataFrame, protected_attribute: str, *, schema: TableSchema | None = None
) -> float:
    r"""CovGap, the subgroup coverage gap of a protected attribute (survey §4.3).

    .. math::
        \text{CovGap} = \frac12 \sum_{g\in\mathcal{A}}
            \lvert p_{\text{syn}}(A=g) - p_{\text{real}}(A=g) \rvert,

    over the union :math:`\mathcal{A}` of both tables' groups (null is a
    group), i.e. the TVD of the protected column. Range [0, 1]; lower is better.

    Args:
        reference: the reference DataFrame or its :class:`TabularReference`.
        round_df: the round's table.
        protected_attribute: a categorical schema column.
        schema: column kinds when ``reference`` is a DataFrame (inferred if None).

    Example:
        >>> ref = pd.DataFrame({"sex": ["F", "M"] * 10})
        >>> cov_gap(ref, pd.DataFrame({"sex": ["F", "F", "F", "M"]}), "sex")  # 1/2 (.25 + .25)
        0.25
    """
    fit = _as_reference(reference, schema)
    _check_protected(fit, protected_attribute)
    return _tvd_column(fit, _prepare_round(fit, round_df), protected_attribute)


# --------------------------------------------------------------------------
# Declared constraints and the violation rate
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# The suite
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TabularResult:
    """The suite's metrics (name -> Estimate; a name is absent when it does not apply) and breakdowns.

    ``per_column``: ``"ks"`` (numeric columns), ``"tvd"``, ``"chi2_statistic"``,
    ``"chi2_pvalue"`` and ``"category_coverage"`` (categorical columns).
    ``per_pair``: ``"pearson"`` and ``"contingency"`` terms per column pair.
    ``per_constraint``: each constraint's violation rate. ``det_auc``: the mean
    cross-validated AUC behind ``det_score``.
    """

    metrics: dict[str, Estimate]
    per_column: dict[str, dict[str, float]]
    per_pair: dict[str, dict[tuple[str, str], float]]
    per_constraint: dict[str, float]
    extra_columns: tuple[str, ...]
    n_rows: int
    det_auc: float


def tabular_suite(
    reference_profile: TabularReference,
    round_df: pd.DataFrame,
    *,
    protected_attribute: str | None = None,
    constraints=None,
    seed: int = 0,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
    rare_share: float = DEFAULT_RARE_SHARE,
    chi2_alpha: float = DEFAULT_CHI2_ALPHA,
    min_expected: float = DEFAULT_MIN_EXPECTED,
    n_splits: int = DEFAULT_N_SPLITS,
    max_iter: int = DEFAULT_MAX_ITER,
    violation_reference: ViolationBaseline | None = None,
) -> TabularResult:
    r"""Every tabular metric of one round, against a fitted reference.

    Metrics (:data:`TABULAR_METRICS` order; all point estimates without an
    interval except ``violation_rate``, which has a row bootstrap):

    * ``ks_mean``, ``tvd_mean``: means of :func:`ks_statistics` and
      :func:`tvd_distances` over numeric / categorical columns (lower better);
    * ``column_shape_error``: the mean of KS and TVD over all columns,
      :math:`1 -` SDMetrics' Column Shapes score, TabSyn's column-wise density
      error (lower better);
    * ``pearson_score``, ``contingency_score``: :func:`pearson_score`,
      :func:`contingency_score` (lower better);
    * ``det_score``: :func:`detection_score` (higher better);
    * ``chi2_min_pvalue``: the smallest :func:`chi2_tests` p-value over
      categorical columns (higher better); ``chi2_reject_share``: the share of
      categorical columns with :math:`p <` ``chi2_alpha`` (lower better);
    * ``category_coverage``, ``rare_category_coverage``: :func:`category_coverage`
      (higher better);
    * ``cov_gap``: :func:`cov_gap` of ``protected_attribute`` (lower better);
    * ``violation_rate``: :func:`violation_rate` of ``constraints`` (lower better),
      relative to the reference's with ``violation_reference`` (absent when the
      reference violates every constraint too often).

    A metric is absent when it does not apply: no numeric (categorical)
    columns, no numeric pair with a defined reference correlation, no pair with
    a categorical column, no rare category, no protected attribute, no
    constraints.

    Args:
        reference_profile: from :func:`fit_tabular_reference`.
        round_df: the round's table; columns outside the schema are ignored
            and listed in ``extra_columns``.
        protected_attribute: a categorical column for ``cov_gap``.
        constraints: see :func:`load_constraints`, for ``violation_rate``.
        violation_reference: :func:`fit_violation_baseline` of the reference
            at the round's size (None: the absolute violation rate).
        seed: seed of the DetScore folds (``seed``) and of the violation-rate
            bootstrap (``seed + 1``).
        n_boot: violation-rate bootstrap replicates (0: none).
        level: confidence level.
        rare_share: rare-category threshold.
        chi2_alpha: significance level of ``chi2_reject_share``.
        min_expected: chi-squared pooling threshold.
        n_splits: DetScore folds.
        max_iter: DetScore L-BFGS iterations.

    Example:
        >>> ref = pd.DataFrame({"x": np.arange(60.0), "c": ["a", "b", "c"] * 20})
        >>> res = tabular_suite(fit_tabular_reference(ref), ref, n_boot=0)
        >>> res.metrics["ks_mean"].value, res.metrics["tvd_mean"].value, res.metrics["category_coverage"].value
        (0.0, 0.0, 1.0)
    """
    if not isinstance(reference_profile, TabularReference):
        raise ValueError(
            f"reference_profile: expected a TabularReference from fit_tabular_reference, "
            f"got {type(reference_profile).__name__}"
        )
    fit = reference_profile
    _check_share(rare_share, "rare_share")
    _check_share(chi2_alpha, "chi2_alpha")
    if protected_attribute is not None:
        _check_protected(fit, protected_attribute)
    rnd = _prepare_round(fit, round_df)
    metrics: dict[str, Estimate] = {}
    per_column: dict[str, dict[str, float]] = {}
    per_pair: dict[str, dict[tuple[str, str], float]] = {}

    ks = _ks_from_round(fit, rnd)
    tvd = _tvd_from_round(fit, rnd)
    per_column["ks"], per_column["tvd"] = ks, tvd
    if ks:
        metrics["ks_mean"] = Estimate(float(np.mean(list(ks.values()))))
    if tvd:
        metrics["tvd_mean"] = Estimate(float(np.mean(list(tvd.values()))))
    metrics["column_shape_error"] = Estimate(float(np.mean([*ks.values(), *tvd.values()])))

    pearson = _pearson_from_round(fit, rnd)
    contingency = _contingency_from_round(fit, rnd)
    per_pair["pearson"], per_pair["contingency"] = pearson.per_pair, contingency.per_pair
    if pearson.per_pair:
        metrics["pearson_score"] = Estimate(pearson.score)
    if contingency.per_pair:
        metrics["contingency_score"] = Estimate(contingency.score)

    detection = _detection_from_round(fit, rnd, seed=seed, n_splits=n_splits, max_iter=max_iter)
    metrics["det_score"] = Estimate(detection.det_score)

    chi2 = {c: _chi2_column(fit, rnd, c, float(min_expected)) for c in fit.schema.categorical}
    per_column["chi2_statistic"] = {c: r.statistic for c, r in chi2.items()}
    per_column["chi2_pvalue"] = {c: r.pvalue for c, r in chi2.items()}
    coverage = _coverage_from_round(fit, rnd, float(rare_share))
    per_column["category_coverage"] = coverage.per_column
    if chi2:
        pvalues = np.array([r.pvalue for r in chi2.values()])
        metrics["chi2_min_pvalue"] = Estimate(float(pvalues.min()))
        metrics["chi2_reject_share"] = Estimate(float(np.mean(pvalues < chi2_alpha)))
        metrics["category_coverage"] = Estimate(coverage.category_coverage)
    if coverage.n_rare_categories:
        metrics["rare_category_coverage"] = Estimate(coverage.rare_category_coverage)

    if protected_attribute is not None:
        metrics["cov_gap"] = Estimate(_tvd_column(fit, rnd, protected_attribute))
    per_constraint: dict[str, float] = {}
    every_one_off = violation_reference is not None and all(
        r > DEFAULT_FAILURE_LIMIT for r in violation_reference.rates.values())
    if constraints is not None and load_constraints(constraints) and not every_one_off:
        violations = violation_rate(rnd.df, constraints, reference=violation_reference, n_boot=n_boot, level=level,
                                    seed=seed + 1)
        metrics["violation_rate"] = violations.rate
        per_constraint = violations.per_constraint

    return TabularResult(
        metrics={name: metrics[name] for name in TABULAR_METRICS if name in metrics},
        per_column=per_column,
        per_pair=per_pair,
        per_constraint=per_constraint,
        extra_columns=rnd.extra_columns,
        n_rows=len(rnd.df),
        det_auc=detection.auc,
    )
