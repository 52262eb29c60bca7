r"""L5: a Gaussian copula refitted on its own rows of a real table, and its controls.

Part of the numeric loops (:mod:`monitor.meta_evaluation.loops`, whose docstring states the common
rules: streams, workflows, controls, onsets).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

from monitor.meta_evaluation.trace import LoopTrace

from monitor.meta_evaluation.loop_common import (
    _STREAM_DYNAMICS, _STREAM_REAL, _audit_stream, _check_int, _check_run, _check_workflow, _fresh_count,
    _stream, _trace, audited_generations, first_generation,
)
from monitor.meta_evaluation.loop_gaussian import _symmetric_sqrt


_DATASETS = ("wine", "breast_cancer")


def load_real_table(dataset: str = "wine") -> pd.DataFrame:
    r"""The feature table of a dataset bundled with scikit-learn (no download): ``wine`` or ``breast_cancer``.

    Only the numeric features are kept (the class label is not part of the copula).

    Args:
        dataset: ``"wine"`` (178 x 13) or ``"breast_cancer"`` (569 x 30).

    >>> load_real_table("wine").shape
    (178, 13)
    """
    from sklearn import datasets

    if dataset not in _DATASETS:
        raise ValueError(f"dataset: expected one of {_DATASETS}, got {dataset!r}")
    loader = datasets.load_wine if dataset == "wine" else datasets.load_breast_cancer
    return loader(as_frame=True).data.astype(np.float64).reset_index(drop=True)


@dataclass(frozen=True)
class GaussianCopula:
    r"""A Gaussian copula with empirical-quantile marginals.

    ``sorted_columns[:, j]`` are the training values of column ``j`` in increasing order
    :math:`x_{(0)} \le \dots \le x_{(m-1)}`; the marginal quantile function is their
    linear interpolation :math:`Q_j(u) = x_{(k)} + (u(m-1) - k)(x_{(k+1)} - x_{(k)})`,
    :math:`k = \lfloor u(m-1) \rfloor` (Hyndman & Fan 1996 type 7, numpy's default), so the
    marginal is an equal-weight mixture of :math:`U[x_{(k)}, x_{(k+1)}]` and never leaves
    the training range. ``correlation`` is the correlation of the normal scores.
    """

    sorted_columns: np.ndarray  # [m, p]
    correlation: np.ndarray  # [p, p]

    def sample(self, size: int, rng: np.random.Generator) -> np.ndarray:
        m, n_columns = self.sorted_columns.shape
        z = rng.standard_normal((size, n_columns)) @ _symmetric_sqrt(self.correlation)
        position = special.ndtr(z) * (m - 1)
        lower = np.clip(np.floor(position).astype(np.int64), 0, m - 1)
        upper = np.minimum(lower + 1, m - 1)
        frac = position - lower
        lo_values = np.take_along_axis(self.sorted_columns, lower, axis=0)
        hi_values = np.take_along_axis(self.sorted_columns, upper, axis=0)
        return lo_values + frac * (hi_values - lo_values)

    def marginal_sd(self) -> np.ndarray:
        r"""Exact marginal standard deviations: for the uniform mixture,
        :math:`EX = \overline{(a+b)/2}`, :math:`EX^2 = \overline{(a^2+ab+b^2)/3}` over intervals ``[a, b]``."""
        a, b = self.sorted_columns[:-1], self.sorted_columns[1:]
        mean = ((a + b) / 2).mean(axis=0)
        second = ((a * a + a * b + b * b) / 3).mean(axis=0)
        return np.sqrt(np.clip(second - mean * mean, 0.0, None))

    def marginal_range(self) -> np.ndarray:
        return self.sorted_columns[-1] - self.sorted_columns[0]


def fit_gaussian_copula(x: np.ndarray) -> GaussianCopula:
    r"""Fit :class:`GaussianCopula` to rows ``x``: sorted columns, and the correlation of the
    normal scores :math:`\Phi^{-1}(\operatorname{rank}/(m+1))` (average ranks for ties).

    A constant column has no defined correlation; it gets correlation 0 with the others.

    Args:
        x: ``[m, p]`` training rows, ``m >= 2``.

    >>> copula = fit_gaussian_copula(np.array([[0.0, 1.0], [1.0, 3.0], [2.0, 2.0]]))
    >>> copula.sorted_columns[:, 1].tolist(), round(float(copula.correlation[0, 1]), 6)
    ([1.0, 2.0, 3.0], 0.5)
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"x: expected [m >= 2, p] rows, got shape {x.shape}")
    scores = special.ndtri(stats.rankdata(x, axis=0) / (x.shape[0] + 1))
    scores = scores - scores.mean(axis=0)
    norms = np.sqrt((scores * scores).sum(axis=0))
    constant = norms == 0
    scores[:, ~constant] /= norms[~constant]
    correlation = scores.T @ scores
    np.fill_diagonal(correlation, 1.0)
    return GaussianCopula(np.sort(x, axis=0), correlation)


def copula_refit_models(seed: int, n_generations: int, *, dataset: str = "wine", M: int | None = None,
                        workflow: str = "replace", fresh_fraction: float = 0.1) -> list[GaussianCopula]:
    r"""True copulas of every generation of L5 (no audit rows).

    Generation 0 is :func:`fit_gaussian_copula` of the whole real table. Generation
    ``n + 1`` is the copula fitted on:

    * ``"replace"``: ``M`` rows sampled from generation ``n`` (L5).
    * ``"no_feedback"`` (C0): no refit.
    * ``"accumulate"`` (C1): all real rows plus the ``M`` rows of each generation ``1..n``.
    * ``"fresh_real"`` (C2): ``M - r`` rows of generation ``n`` plus ``r = round(fresh_fraction * M)``
      real rows drawn without replacement from the table (the table is the real population).

    Args:
        seed: run seed.
        n_generations: last generation ``N``.
        dataset: ``"wine"`` or ``"breast_cancer"``.
        M: rows per generation; default the table's size.
        workflow: ``"replace"``, ``"no_feedback"``, ``"accumulate"`` or ``"fresh_real"``.
        fresh_fraction: real share of the C2 training rows.

    >>> models = copula_refit_models(0, 2)
    >>> len(models), models[1].sorted_columns.shape
    (3, (178, 13))
    """
    seed, n_generations, _ = _check_run(seed, n_generations, 1)
    workflow = _check_workflow(workflow)
    real = load_real_table(dataset).to_numpy()
    M = real.shape[0] if M is None else _check_int(M, "M", 2)
    n_fresh = _fresh_count(fresh_fraction, M, "M") if workflow == "fresh_real" else 0
    if n_fresh > real.shape[0]:
        raise ValueError(f"fresh_fraction: expected at most {real.shape[0]} fresh real rows, got {n_fresh}")
    model0 = fit_gaussian_copula(real)
    if workflow == "no_feedback":
        return [model0] * (n_generations + 1)
    rng, real_rng = _stream(seed, _STREAM_DYNAMICS), _stream(seed, _STREAM_REAL)
    models, pool = [model0], [real]
    for _ in range(n_generations):
        current = models[-1]
        if workflow == "fresh_real":
            fresh = real[real_rng.choice(real.shape[0], size=n_fresh, replace=False)]
            x = np.concatenate([current.sample(M - n_fresh, rng), fresh])
        elif workflow == "accumulate":
            if len(models) > 1:  # generation 1 is fitted on the real rows alone
                pool.append(current.sample(M, rng))
            x = np.concatenate(pool)
        else:
            x = current.sample(M, rng)
        models.append(fit_gaussian_copula(x))
    return models


def copula_truth(models: list[GaussianCopula]) -> dict[str, np.ndarray]:
    r"""Per-generation truth of L5, relative to generation 0 and averaged over columns:
    ``sd_ratio`` :math:`\frac1p\sum_j \mathrm{sd}_{n,j}/\mathrm{sd}_{0,j}` (exact marginal sds) and
    ``range_ratio`` :math:`\frac1p\sum_j \mathrm{range}_{n,j}/\mathrm{range}_{0,j}`.

    Args:
        models: one copula per generation, generation 0 first.

    >>> c0 = fit_gaussian_copula(np.array([[0.0], [2.0]]))
    >>> c1 = fit_gaussian_copula(np.array([[0.5], [1.5]]))
    >>> truth = copula_truth([c0, c1])  # U[0, 2] against U[0.5, 1.5]: half the sd and the range
    >>> truth["sd_ratio"].round(6).tolist(), truth["range_ratio"].round(6).tolist()
    ([1.0, 0.5], [1.0, 0.5])
    """
    sd0, range0 = models[0].marginal_sd(), models[0].marginal_range()
    varying = sd0 > 0  # a constant real column has no spread to lose
    return {
        "sd_ratio": np.array([(m.marginal_sd()[varying] / sd0[varying]).mean() for m in models]),
        "range_ratio": np.array([(m.marginal_range()[varying] / range0[varying]).mean() for m in models]),
    }


def copula_tabular_loop(seed: int, n_generations: int, audit_every: int = 1, *, dataset: str = "wine",
                        M: int | None = None, n_audit: int = 1000, workflow: str = "replace",
                        fresh_fraction: float = 0.1) -> LoopTrace:
    r"""L5: a Gaussian copula refitted on its own samples, starting from a bundled real table, or a control.

    Dynamics: :func:`copula_refit_models`. Onset (``replace`` only): the first generation
    whose mean marginal standard-deviation ratio (``truth["sd_ratio"]``) is below 0.5.
    The interpolated empirical quantile never leaves the training range, so every refit
    loses the extremes: spread shrinks and tails vanish column by column, and the sd ratio
    is an exact function of the generator's parameters that tracks both (averaged over
    columns so one column cannot decide alone, scale-free per column). The number of
    distinct values is no use here (interpolation creates new values), and the range ratio
    (also in ``truth``) is driven by two order statistics, hence noisier.

    Rounds are pandas DataFrames of ``n_audit`` rows with the dataset's column names
    (float64); the reference is the whole real table.

    Args:
        seed: run seed.
        n_generations: last simulated generation.
        audit_every: audit stride.
        dataset: ``"wine"`` (default) or ``"breast_cancer"``.
        M: rows per generation; default the table's size.
        n_audit: rows per audit round.
        workflow: ``"replace"`` (L5) or a control workflow.
        fresh_fraction: real share of the C2 training rows.

    >>> trace = copula_tabular_loop(0, 2, n_audit=5)
    >>> trace.name, trace.rounds[1].shape, list(trace.rounds[1].columns) == list(trace.reference.columns)
    ('L5-wine', (5, 13), True)
    """
    seed, n_generations, audit_every = _check_run(seed, n_generations, audit_every)
    n_audit = _check_int(n_audit, "n_audit", 1)
    models = copula_refit_models(seed, n_generations, dataset=dataset, M=M, workflow=workflow,
                                 fresh_fraction=fresh_fraction)
    reference = load_real_table(dataset)
    truth = copula_truth(models)
    generations = audited_generations(n_generations, audit_every)
    rounds = [pd.DataFrame(models[g].sample(n_audit, _audit_stream(seed, g)), columns=reference.columns)
              for g in generations]
    onset = first_generation(truth["sd_ratio"] < 0.5)
    params = dict(dataset=dataset, M=len(reference) if M is None else M, n_audit=n_audit, workflow=workflow,
                  fresh_fraction=fresh_fraction, n_generations=n_generations, audit_every=audit_every)
    return _trace(f"L5-{dataset}", workflow, "tabular", seed, reference, rounds, generations, onset, truth, params)
