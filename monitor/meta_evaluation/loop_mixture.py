r"""L2: a Gaussian mixture refitted by EM on its own samples, dropping modes, and its controls.

Part of the numeric loops (:mod:`monitor.meta_evaluation.loops`, whose docstring states the common
rules: streams, workflows, controls, onsets).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from monitor.meta_evaluation.trace import LoopTrace
from monitor.engine.simulate import GaussianMixture, fit_em

from monitor.meta_evaluation.loop_common import (
    _STREAM_DYNAMICS, _STREAM_MODEL0, _STREAM_REAL, _STREAM_REFERENCE, _audit_stream, _check_int, _check_run,
    _check_workflow, _fresh_count, _stream, _trace, audited_generations, first_generation,
)


def equal_weight_mixture(seed: int, K: int = 10, d: int = 8, spread: float = 6.0) -> GaussianMixture:
    r"""The generation-0 mixture of L2: ``K`` equal weights ``1/K``, means
    :math:`\mu_k \sim N(0, \text{spread}^2 I_d)`, covariances :math:`s_k I_d`, :math:`s_k \sim U(0.5, 1.5)`.

    With ``spread = 6`` and ``d = 8`` two means are :math:`6\sqrt{2}\,\chi_8 \approx 23` apart
    on average against component standard deviations :math:`\le 1.23`, so the modes are
    well separated and EM's responsibilities are nearly hard.

    Args:
        seed: run seed (its generation-0 sub-stream is used).
        K: number of modes.
        d: dimension.
        spread: standard deviation of the mean coordinates.

    >>> mixture = equal_weight_mixture(0, K=3, d=2)
    >>> mixture.weights.tolist(), mixture.means.shape
    ([0.3333333333333333, 0.3333333333333333, 0.3333333333333333], (3, 2))
    """
    seed = _check_int(seed, "seed", 0)
    K, d = _check_int(K, "K", 1), _check_int(d, "d", 1)
    if not spread > 0:
        raise ValueError(f"spread: expected > 0, got {spread!r}")
    rng = _stream(seed, _STREAM_MODEL0)
    means = rng.normal(scale=spread, size=(K, d))
    covs = np.eye(d)[None] * rng.uniform(0.5, 1.5, size=K)[:, None, None]
    return GaussianMixture(np.full(K, 1.0 / K), means, covs)


def _log_gaussian(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    chol = np.linalg.cholesky(cov)
    z = np.linalg.solve(chol, (x - mean).T)
    return -0.5 * (z * z).sum(axis=0) - np.log(np.diag(chol)).sum() - 0.5 * x.shape[1] * np.log(2 * np.pi)


@dataclass
class _PooledStats:
    r"""Responsibility-weighted sufficient statistics of the frozen (older) batches, per component."""

    size: int
    mass: np.ndarray  # [K]
    first: np.ndarray  # [K, d]   sum_j r_jk x_j
    second: np.ndarray  # [K, d, d] sum_j r_jk x_j x_j^T


def _batch_stats(x: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return r.sum(axis=0), r.T @ x, np.einsum("nk,ni,nj->kij", r, x, x)


def _incremental_em(pooled: _PooledStats, batch: np.ndarray, init: GaussianMixture, iters: int,
                    reg: float = 1e-4) -> tuple[GaussianMixture, _PooledStats]:
    r"""EM on (frozen older batches + a new batch), revisiting only the new batch (Neal & Hinton 1998).

    The M-step is :func:`monitor.engine.simulate.fit_em`'s (weights = mass / n, weighted means,
    weighted covariances + ``reg`` I, drop components with pooled mass < 1); with no older
    batches it is exactly ``fit_em``.
    """
    w, mu, cov = init.weights.copy(), init.means.copy(), init.covs.copy()
    old_mass, old_first, old_second = pooled.mass, pooled.first, pooled.second
    total, d = pooled.size + batch.shape[0], batch.shape[1]
    for _ in range(iters):
        log_r = np.stack([np.log(w[c]) + _log_gaussian(batch, mu[c], cov[c]) for c in range(len(w))], axis=1)
        r = np.exp(log_r - special.logsumexp(log_r, axis=1, keepdims=True))
        mass, first, second = _batch_stats(batch, r)
        mass, first, second = mass + old_mass, first + old_first, second + old_second
        keep = mass >= 1.0
        mass, first, second = mass[keep], first[keep], second[keep]
        old_mass, old_first, old_second = old_mass[keep], old_first[keep], old_second[keep]
        w = mass / total
        mu = first / mass[:, None]
        cov = second / mass[:, None, None] - np.einsum("ki,kj->kij", mu, mu) + reg * np.eye(d)
        cov = 0.5 * (cov + cov.transpose(0, 2, 1))  # the moment form can lose symmetry by rounding
    return GaussianMixture(w, mu, cov), _PooledStats(total, mass, first, second)


def gmm_refit_models(seed: int, n_generations: int, *, K: int = 10, d: int = 8, M: int = 1000,
                     spread: float = 6.0, workflow: str = "replace", fresh_fraction: float = 0.1,
                     em_iters: int = 25) -> list[GaussianMixture]:
    r"""True mixtures of every generation of L2 (no audit samples).

    Generation 0: :func:`equal_weight_mixture`. Generation ``n + 1`` = EM warm-started
    at generation ``n`` (:func:`monitor.engine.simulate.fit_em`, ``em_iters`` iterations, which
    drops a component whose responsibility mass falls below one sample) on:

    * ``"replace"``: ``M`` samples of generation ``n`` (L2).
    * ``"no_feedback"`` (C0): no refit, every generation is generation 0.
    * ``"accumulate"`` (C1): the ``M`` real samples of generation 0 plus the ``M`` samples of
      each generation ``1..n``. Refitting full EM on a pool of ``(n+1) M`` points every
      generation costs :math:`O(n^2 M)`, so C1 uses incremental EM (Neal & Hinton 1998):
      older batches keep the responsibilities of their last E-step as frozen sufficient
      statistics and only the new batch is revisited; generation 1 (one batch) is exactly
      ``fit_em``, and with well-separated modes the frozen responsibilities are ~0/1.
    * ``"fresh_real"`` (C2): ``M - r`` samples of generation ``n`` plus ``r = round(fresh_fraction * M)``
      fresh samples of generation 0.

    Args:
        seed: run seed.
        n_generations: last generation ``N``; the list has ``N + 1`` mixtures.
        K: modes of generation 0.
        d: dimension.
        M: training-set size per generation (``>= K`` so every mode can be seen).
        spread: mean spread of generation 0.
        workflow: ``"replace"``, ``"no_feedback"``, ``"accumulate"`` or ``"fresh_real"``.
        fresh_fraction: real share of the C2 training set.
        em_iters: EM iterations per refit.

    >>> models = gmm_refit_models(0, 2, K=3, d=2, M=60)
    >>> len(models), [len(m.weights) for m in models]
    (3, [3, 3, 3])
    """
    seed, n_generations, _ = _check_run(seed, n_generations, 1)
    M = _check_int(M, "M", _check_int(K, "K", 1))
    workflow = _check_workflow(workflow)
    em_iters = _check_int(em_iters, "em_iters", 1)
    n_fresh = _fresh_count(fresh_fraction, M, "M") if workflow == "fresh_real" else 0
    model0 = equal_weight_mixture(seed, K, d, spread)
    if workflow == "no_feedback":
        return [model0] * (n_generations + 1)
    rng, real_rng = _stream(seed, _STREAM_DYNAMICS), _stream(seed, _STREAM_REAL)
    models = [model0]
    pooled = _PooledStats(0, np.zeros(K), np.zeros((K, d)), np.zeros((K, d, d)))
    for _ in range(n_generations):
        current = models[-1]
        if workflow == "fresh_real":
            x = np.concatenate([current.sample(M - n_fresh, rng), model0.sample(n_fresh, real_rng)])
        else:
            x = current.sample(M, rng)
        if workflow == "accumulate":
            refit, pooled = _incremental_em(pooled, x, current, em_iters)
        else:
            refit = fit_em(x, current, iters=em_iters)
        models.append(refit)
    return models


def gmm_truth(models: list[GaussianMixture], K: int) -> dict[str, np.ndarray]:
    r"""Per-generation truth of L2: ``min_weight`` (0 once a component is dropped, since the
    true weight of a dropped mode is 0), ``max_weight`` and ``n_components``.

    Args:
        models: one mixture per generation.
        K: modes of generation 0.

    >>> m = GaussianMixture(np.array([0.7, 0.3]), np.zeros((2, 1)), np.ones((2, 1, 1)))
    >>> gmm_truth([m], K=3)["min_weight"].tolist(), gmm_truth([m], K=2)["min_weight"].tolist()
    ([0.0], [0.3])
    """
    K = _check_int(K, "K", 1)
    n_components = np.array([len(m.weights) for m in models])
    min_weight = np.array([m.weights.min() if len(m.weights) == K else 0.0 for m in models])
    return {"min_weight": min_weight, "max_weight": np.array([m.weights.max() for m in models]),
            "n_components": n_components}


def gmm_mode_dropping_loop(seed: int, n_generations: int, audit_every: int = 1, *, K: int = 10, d: int = 8,
                           M: int = 1000, spread: float = 6.0, n_audit: int = 1000, n_reference: int = 1000,
                           workflow: str = "replace", fresh_fraction: float = 0.1,
                           em_iters: int = 25) -> LoopTrace:
    r"""L2: GMM mode dropping under EM refits on its own samples, or one of its controls.

    Dynamics: :func:`gmm_refit_models`. Onset (``replace`` only): the first generation
    where some true component weight is below :math:`1/(10K)` (a dropped component counts
    as weight 0). With near-hard responsibilities the weights follow a neutral
    Wright-Fisher drift, :math:`\operatorname{Var}(w_{n+1}\mid w_n) \approx w_n(1-w_n)/M`.
    Rounds are ``[n_audit, d]`` float64 samples of generation ``g``'s mixture; the
    reference is ``n_reference`` samples of generation 0 from its own stream.

    Args:
        seed: run seed.
        n_generations: last simulated generation.
        audit_every: audit stride.
        K: modes of generation 0.
        d: dimension.
        M: training-set size per generation.
        spread: mean spread of generation 0 (:func:`equal_weight_mixture`).
        n_audit: audit samples per audited generation.
        n_reference: reference samples.
        workflow: ``"replace"`` (L2) or a control workflow.
        fresh_fraction: real share of the C2 training set.
        em_iters: EM iterations per refit.

    >>> trace = gmm_mode_dropping_loop(0, 2, K=3, d=2, M=60, n_audit=4, n_reference=5)
    >>> trace.name, trace.rounds[2].shape, trace.truth["n_components"].tolist()
    ('L2-K3-d2', (4, 2), [3, 3, 3])
    """
    seed, n_generations, audit_every = _check_run(seed, n_generations, audit_every)
    n_audit, n_reference = _check_int(n_audit, "n_audit", 1), _check_int(n_reference, "n_reference", 1)
    models = gmm_refit_models(seed, n_generations, K=K, d=d, M=M, spread=spread, workflow=workflow,
                              fresh_fraction=fresh_fraction, em_iters=em_iters)
    truth = gmm_truth(models, K)
    generations = audited_generations(n_generations, audit_every)
    rounds = [models[g].sample(n_audit, _audit_stream(seed, g)) for g in generations]
    reference = models[0].sample(n_reference, _stream(seed, _STREAM_REFERENCE))
    onset = first_generation(truth["min_weight"] < 1.0 / (10 * K))
    params = dict(K=K, d=d, M=M, spread=spread, n_audit=n_audit, n_reference=n_reference, workflow=workflow,
                  fresh_fraction=fresh_fraction, em_iters=em_iters, n_generations=n_generations,
                  audit_every=audit_every)
    return _trace(f"L2-K{K}-d{d}", workflow, "embedding", seed, reference, rounds, generations, onset, truth, params)
