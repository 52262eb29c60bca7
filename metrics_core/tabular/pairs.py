"""Column pair trends: Pearson correlation similarity and contingency similarity.

Part of :mod:`metrics_core.tabular` (its docstring states the conventions: schema, level codes, nulls).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from metrics_core.tabular.schema import DEFAULT_N_BINS, NUMERIC, TableSchema
from metrics_core.tabular.reference import (
    TabularReference, _Round, _as_reference, _correlations, _level_shares, _prepare_round,
)


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
