"""DetScore: how well a logistic regression tells round rows from reference rows.

Part of :mod:`metrics_core.tabular` (its docstring states the conventions: schema, level codes, nulls).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from metrics_core._checks import _check_positive_int
from metrics_core.sampling import subsample_indices
from metrics_core.tabular.schema import DEFAULT_MAX_ITER, DEFAULT_N_SPLITS, TableSchema
from metrics_core.tabular.reference import TabularReference, _Round, _as_reference, _encode, _prepare_round


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
