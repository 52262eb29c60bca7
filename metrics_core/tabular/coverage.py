"""Category coverage, rare-category coverage and CovGap.

Part of :mod:`metrics_core.tabular` (its docstring states the conventions: schema, level codes, nulls).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metrics_core._checks import _check_share
from metrics_core.tabular.schema import CATEGORICAL, DEFAULT_RARE_SHARE, TableSchema
from metrics_core.tabular.reference import TabularReference, _Round, _as_reference, _prepare_round
from metrics_core.tabular.marginals import _tvd_column


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
