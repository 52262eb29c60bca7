"""Column shapes: Kolmogorov-Smirnov per numeric column and total variation distance per categorical one.

Part of :mod:`metrics_core.tabular` (its docstring states the conventions: schema, level codes, nulls).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metrics_core.univariate import ks_statistic
from metrics_core.tabular.schema import TableSchema
from metrics_core.tabular.reference import TabularReference, _Round, _as_reference, _level_shares, _prepare_round


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
