"""Chi-squared goodness of fit of each categorical column against the reference.

Part of :mod:`metrics_core.tabular` (its docstring states the conventions: schema, level codes, nulls).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats

from metrics_core.tabular.schema import DEFAULT_MIN_EXPECTED, TableSchema
from metrics_core.tabular.reference import TabularReference, _Round, _as_reference, _prepare_round


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
