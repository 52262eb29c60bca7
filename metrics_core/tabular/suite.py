"""The tabular suite: every tabular metric of a round in one call.

Part of :mod:`metrics_core.tabular` (its docstring states the conventions: schema, level codes, nulls).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from metrics_core._checks import DEFAULT_FAILURE_LIMIT, _check_share
from metrics_core.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, Estimate
from metrics_core.tabular.schema import (
    DEFAULT_CHI2_ALPHA, DEFAULT_MAX_ITER, DEFAULT_MIN_EXPECTED, DEFAULT_N_SPLITS, DEFAULT_RARE_SHARE,
)
from metrics_core.tabular.reference import TabularReference, _prepare_round
from metrics_core.tabular.marginals import _ks_from_round, _tvd_column, _tvd_from_round
from metrics_core.tabular.pairs import _contingency_from_round, _pearson_from_round
from metrics_core.tabular.chi2 import _chi2_column
from metrics_core.tabular.detection import _detection_from_round
from metrics_core.tabular.coverage import _check_protected, _coverage_from_round
from metrics_core.tabular.constraints import ViolationBaseline, load_constraints, violation_rate


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
        >>> from metrics_core.tabular import fit_tabular_reference
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
