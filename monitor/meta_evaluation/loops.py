r"""Numeric collapse loops L1, L2, L3, L5 and their controls C0, C1, C2 (survey §8.1 meta-evaluation).

Every loop is a seeded Markov chain over a generator's *true parameters*:
generation 0 is the true (or real-data-fitted) distribution and generation
``n + 1`` is refitted on ``M`` samples of generation ``n`` (the training-set
size ``M`` is what drives collapse). The monitor never sees those samples: at
every audited generation ``g`` (``0, audit_every, 2 * audit_every, ...``) it
gets ``n_audit`` *fresh* samples of generation ``g``'s model, and one fixed
reference drawn from generation 0's distribution. The ground-truth onset is a
function of the true parameters only (``LoopTrace.truth``), never of audited
metrics.

Loops (``workflow="replace"``: each generation's data replace the previous):

* L1 Gaussian refit (Shumailov et al. 2024): :func:`gaussian_refit_loop`.
* L2 GMM mode dropping: :func:`gmm_mode_dropping_loop`.
* L3 Zipf tail under temperature sampling (Dohmatob et al. 2024): :func:`zipf_tail_loop`.
* L5 tabular Gaussian copula on a bundled scikit-learn dataset: :func:`copula_tabular_loop`.

Controls (any alarm is a false alarm; ``onset`` is always None):

* C0 ``workflow="no_feedback"``: every round is a fresh draw of generation 0.
* C1 ``workflow="accumulate"``: generation ``n + 1`` trains on the real data plus all
  synthetic data so far (Gerstgrasser et al. 2024, "Is model collapse inevitable?").
* C2 ``workflow="fresh_real"``: ``1 - fresh_fraction`` own samples plus ``fresh_fraction``
  fresh real samples each generation.

Seed streams: every run derives independent sub-streams from
``np.random.SeedSequence(seed, spawn_key=(k, ...))``: the generation-0 model,
the training dynamics, fresh real data, the reference, and one audit stream *per
generation*, so the audit sample of generation ``g`` and all of ``truth`` do not
depend on ``audit_every``, and a loop and its controls share the reference and
the generation-0 model for equal seeds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from monitor.meta_evaluation.trace import LoopTrace
from monitor.simulate import GaussianMixture, fit_em

# --- seed streams -----------------------------------------------------------------------------------------------

_STREAM_MODEL0 = 0  # generation-0 model drawn from the seed (L2 mixture)
_STREAM_DYNAMICS = 1  # training samples of every generation
_STREAM_REAL = 2  # real data of the controls (C1 batch 0, C2 fresh real)
_STREAM_REFERENCE = 3
_STREAM_AUDIT = 4  # spawn_key (4, g): one stream per audited generation

WORKFLOWS = ("replace", "no_feedback", "accumulate", "fresh_real")
CONTROL_WORKFLOWS = {"C0": "no_feedback", "C1": "accumulate", "C2": "fresh_real"}
_CONTROL_IDS = {workflow: control for control, workflow in CONTROL_WORKFLOWS.items()}


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=tuple(key)))


def _audit_stream(seed: int, generation: int) -> np.random.Generator:
    return _stream(seed, _STREAM_AUDIT, int(generation))


# --- input checks ------------------------------------------------------------------------------------------------


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def _check_run(seed, n_generations, audit_every) -> tuple[int, int, int]:
    return (_check_int(seed, "seed", 0), _check_int(n_generations, "n_generations", 1),
            _check_int(audit_every, "audit_every", 1))


def _check_workflow(workflow: str) -> str:
    if workflow not in WORKFLOWS:
        raise ValueError(f"workflow: expected one of {WORKFLOWS}, got {workflow!r}")
    return workflow


def _fresh_count(fresh_fraction: float, size: int, name: str) -> int:
    r"""Number of fresh real samples among ``size`` (C2), at least 1 and at most ``size - 1``."""
    if not (isinstance(fresh_fraction, (float, int)) and 0.0 < fresh_fraction < 1.0):
        raise ValueError(f"fresh_fraction: expected a number in (0, 1), got {fresh_fraction!r}")
    n_fresh = int(round(fresh_fraction * size))
    if not 1 <= n_fresh <= size - 1:
        raise ValueError(f"fresh_fraction: expected 1 <= round(fresh_fraction * {name}) <= {name} - 1, "
                         f"got {n_fresh} of {size}")
    return n_fresh


# --- shared trace helpers ----------------------------------------------------------------------------------------


def audited_generations(n_generations: int, audit_every: int = 1) -> np.ndarray:
    r"""Generations that get an audit sample: :math:`\{0, a, 2a, \dots\} \cap [0, N]`.

    Args:
        n_generations: ``N``, the last simulated generation.
        audit_every: ``a``, the audit stride.

    >>> audited_generations(10, 4).tolist()
    [0, 4, 8]
    """
    _check_run(0, n_generations, audit_every)
    return np.arange(0, n_generations + 1, audit_every, dtype=np.int64)


def first_generation(condition: np.ndarray) -> int | None:
    r"""Index of the first True in a per-generation boolean array, or None.

    Args:
        condition: ``[n_generations + 1]`` booleans, index = generation.

    >>> first_generation(np.array([False, False, True, True])), first_generation(np.zeros(3, bool))
    (2, None)
    """
    hits = np.flatnonzero(np.asarray(condition, dtype=bool))
    return int(hits[0]) if hits.size else None


def _loop_name(base: str, workflow: str) -> str:
    return base if workflow == "replace" else f"{_CONTROL_IDS[workflow]}-{base}"


def _trace(base: str, workflow: str, modality: str, seed: int, reference, rounds: list, generations: np.ndarray,
           onset: int | None, truth: dict, params: dict) -> LoopTrace:
    collapse = workflow == "replace"
    return LoopTrace(name=_loop_name(base, workflow), kind="collapse" if collapse else "control",
                     modality=modality, seed=seed, reference=reference, rounds=rounds, generations=generations,
                     onset=onset if collapse else None, truth=truth, params=params)


# =================================================================================================================
# L1: Gaussian refit
# =================================================================================================================


def _symmetric_sqrt(cov: np.ndarray) -> np.ndarray:
    # eigh, not Cholesky: late generations are numerically singular and must still sample and give W2
    eigenvalues, vectors = np.linalg.eigh(cov)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


def _sample_gaussian(mean: np.ndarray, cov: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    return mean + rng.standard_normal((size, mean.shape[0])) @ _symmetric_sqrt(cov)


def gaussian_w2_squared_to_standard(mean: np.ndarray, cov: np.ndarray) -> float:
    r"""Exact squared Wasserstein-2 distance from :math:`N(\mu, S)` to :math:`N(0, I_d)`.

    .. math:: W_2^2 = \lVert\mu\rVert^2 + \operatorname{tr}\bigl(S + I - 2 S^{1/2}\bigr)
              = \lVert\mu\rVert^2 + \sum_i \bigl(\sqrt{\lambda_i(S)} - 1\bigr)^2,

    the Gaussian closed form (Dowson & Landau 1982; Olkin & Pukelsheim 1982) with
    the identity's square root equal to itself.

    Args:
        mean: ``[d]`` mean.
        cov: ``[d, d]`` symmetric positive semi-definite covariance.

    >>> round(gaussian_w2_squared_to_standard(np.array([1.0]), np.array([[4.0]])), 6)  # 1 + (2 - 1)^2
    2.0
    """
    mean, cov = np.asarray(mean, dtype=float), np.asarray(cov, dtype=float)
    if mean.ndim != 1 or cov.shape != (mean.shape[0], mean.shape[0]):
        raise ValueError(f"cov: expected shape ({mean.shape[0]}, {mean.shape[0]}) for a mean of shape "
                         f"{mean.shape} (1-d), got {cov.shape}")
    root_eigenvalues = np.sqrt(np.clip(np.linalg.eigvalsh(cov), 0.0, None))
    return float(mean @ mean + np.sum((root_eigenvalues - 1.0) ** 2))


def gaussian_refit_theory(n: np.ndarray | int, M: int) -> dict[str, np.ndarray]:
    r"""Theory of the 1-d replace loop after ``n`` refits of :math:`N(0, 1)` on ``M`` samples.

    With the unbiased estimators, :math:`\sigma_n^2 = \prod_{i=1}^{n} S_i` with
    :math:`S_i \sim \chi^2_{M-1}/(M-1)` i.i.d. and
    :math:`\mu_n = \sum_{i=1}^{n} \sigma_{i-1} Z_i/\sqrt{M}`, :math:`Z_i \sim N(0,1)`
    (Shumailov et al. 2024, Nature 631:755, Methods and Supplementary "Gaussian";
    arXiv:2305.17493 §4.2). Hence

    * ``median_variance`` :math:`= e^{-n/(M-1)}`: :math:`\log\sigma_n^2` is a sum of
      ``n`` i.i.d. terms of mean :math:`\psi(\tfrac{M-1}{2}) - \log\tfrac{M-1}{2} = -\tfrac{1}{M-1} + O(M^{-2})`,
      so its median is its mean up to :math:`O(n/M^2)` and a skewness term of order
      :math:`1/\sqrt{nM}`.
    * ``mean_log_variance`` :math:`= n\,[\psi(\tfrac{M-1}{2}) - \log\tfrac{M-1}{2}]` (exact).
    * ``expected_w2_squared`` (exact): :math:`E[W_2^2] = E\mu_n^2 + E(\sigma_n - 1)^2
      = n/M + 2(1 - c_M^n)` with :math:`c_M = E\sqrt{S_i} = \sqrt{2/(M-1)}\,\Gamma(\tfrac M2)/\Gamma(\tfrac{M-1}2)`,
      because :math:`E\sigma_i^2 = 1` (unbiased, a martingale) and :math:`E\sigma_n = c_M^n`.
    * ``expected_w2_squared_first_order`` :math:`= \tfrac32\, n/M`: the paper's
      :math:`\tfrac32\sigma^2(1/M_0 + \dots)` to first order in ``n/M``, since
      :math:`1 - c_M = \tfrac{1}{4(M-1)} + O(M^{-2})`; accurate for ``n << M``.

    Args:
        n: number of refits (generation index), scalar or array.
        M: training-set size per generation, >= 2.

    >>> theory = gaussian_refit_theory(np.array([0, 10]), 100)
    >>> theory["expected_w2_squared_first_order"].tolist()
    [0.0, 0.15]
    >>> bool(abs(theory["expected_w2_squared"][1] - 0.15) < 0.003)
    True
    """
    M = _check_int(M, "M", 2)
    n = np.asarray(n, dtype=float)
    if np.any(n < 0):
        raise ValueError(f"n: expected generations >= 0, got min {n.min()}")
    log_c = 0.5 * np.log(2.0 / (M - 1)) + special.gammaln(M / 2) - special.gammaln((M - 1) / 2)
    mean_log_step = special.digamma((M - 1) / 2) - np.log((M - 1) / 2)
    return {
        "median_variance": np.exp(-n / (M - 1)),
        "mean_log_variance": n * mean_log_step,
        "expected_w2_squared": n / M - 2.0 * np.expm1(n * log_c),
        "expected_w2_squared_first_order": 1.5 * n / M,
    }


def gaussian_refit_parameters(seed: int, n_generations: int, *, d: int = 1, M: int = 20, workflow: str = "replace",
                              fresh_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    r"""True means and covariances of every generation of the Gaussian refit loop (no audit samples).

    Generation 0 is :math:`N(0, I_d)`. Generation ``n + 1`` is fitted to a training
    set ``X`` by the sample mean and the *unbiased* sample covariance
    :math:`\hat\Sigma = \tfrac{1}{|X|-1}\sum_j (x_j - \bar x)(x_j - \bar x)^\top`, the
    estimators of Shumailov et al.'s Theorem 3.1 ("Assume :math:`X^n` are fit recursively
    using the unbiased sample mean and variance estimators from the previous generation,
    with a fixed sample size. Then :math:`E[W_2^2(N(\mu_n,\Sigma_n), D_0)] \to \infty` and
    :math:`\Sigma_n \to 0` a.s."; Nature 631:755, 2024). Unbiasedness makes
    :math:`E\operatorname{tr}\Sigma_n = d` for every ``n`` while the median collapses,
    so the collapse is the paper's multiplicative-noise collapse, not an estimator bias.
    Training sets (``workflow``):

    * ``"replace"``: ``M`` samples of generation ``n`` (the L1 loop).
    * ``"no_feedback"`` (C0): every generation is :math:`N(0, I_d)`.
    * ``"accumulate"`` (C1): the ``M`` real samples of generation 0 plus the ``M``
      samples of every generation ``1..n`` (pooled exactly, Chan et al.'s update).
    * ``"fresh_real"`` (C2): ``M - r`` samples of generation ``n`` plus
      ``r = round(fresh_fraction * M)`` fresh samples of :math:`N(0, I_d)`.

    Args:
        seed: run seed (the dynamics use their own sub-stream).
        n_generations: last generation ``N``; arrays have ``N + 1`` rows.
        d: dimension.
        M: training-set size per generation, ``>= d + 1`` so the fit is non-singular.
        workflow: ``"replace"``, ``"no_feedback"``, ``"accumulate"`` or ``"fresh_real"``.
        fresh_fraction: real share of the C2 training set.

    Returns:
        ``(means [N + 1, d], covs [N + 1, d, d])``.

    >>> means, covs = gaussian_refit_parameters(0, 3, d=2, M=10)
    >>> means.shape, covs.shape, covs[0].tolist()
    ((4, 2), (4, 2, 2), [[1.0, 0.0], [0.0, 1.0]])
    """
    seed, n_generations, _ = _check_run(seed, n_generations, 1)
    d = _check_int(d, "d", 1)
    M = _check_int(M, "M", d + 1)
    workflow = _check_workflow(workflow)
    n_fresh = _fresh_count(fresh_fraction, M, "M") if workflow == "fresh_real" else 0
    means = np.zeros((n_generations + 1, d))
    covs = np.broadcast_to(np.eye(d), (n_generations + 1, d, d)).copy()
    if workflow == "no_feedback":
        return means, covs
    rng, real_rng = _stream(seed, _STREAM_DYNAMICS), _stream(seed, _STREAM_REAL)
    pool_size, pool_mean, pool_scatter = 0, np.zeros(d), np.zeros((d, d))
    for g in range(n_generations):
        if workflow == "fresh_real":
            x = np.concatenate([_sample_gaussian(means[g], covs[g], M - n_fresh, rng),
                                real_rng.standard_normal((n_fresh, d))])
        else:
            x = _sample_gaussian(means[g], covs[g], M, rng)
        if workflow == "accumulate":
            pool_size, pool_mean, pool_scatter = _pool_moments(pool_size, pool_mean, pool_scatter, x)
            means[g + 1], covs[g + 1] = pool_mean, pool_scatter / (pool_size - 1)
        else:
            means[g + 1], covs[g + 1] = x.mean(axis=0), np.cov(x, rowvar=False, ddof=1).reshape(d, d)
    return means, covs


def _pool_moments(size: int, mean: np.ndarray, scatter: np.ndarray,
                  batch: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    r"""Add ``batch`` to pooled (size, mean, scatter matrix) without keeping the pool.

    Chan, Golub & LeVeque (1983) pairwise update:
    :math:`S = S_a + S_b + \delta\delta^\top n_a n_b / (n_a + n_b)`, :math:`\delta = \bar x_b - \bar x_a`.
    """
    batch_size = batch.shape[0]
    batch_mean = batch.mean(axis=0)
    centred = batch - batch_mean
    total = size + batch_size
    delta = batch_mean - mean
    scatter = scatter + centred.T @ centred + np.outer(delta, delta) * (size * batch_size / total)
    return total, mean + delta * (batch_size / total), scatter


def gaussian_truth(means: np.ndarray, covs: np.ndarray) -> dict[str, np.ndarray]:
    r"""Per-generation truth of L1: ``trace_cov`` :math:`\operatorname{tr}\Sigma_n`, ``mean_norm``
    :math:`\lVert\mu_n\rVert` and ``w2_squared`` :math:`W_2^2(N(\mu_n,\Sigma_n), N(0,I))`.

    Args:
        means: ``[G, d]`` true means.
        covs: ``[G, d, d]`` true covariances.

    >>> t = gaussian_truth(np.zeros((1, 2)), np.eye(2)[None] * 0.25)
    >>> t["trace_cov"].tolist(), t["w2_squared"].tolist()  # tr = 0.5, W2^2 = 2 * (0.5 - 1)^2
    ([0.5], [0.5])
    """
    means, covs = np.asarray(means, dtype=float), np.asarray(covs, dtype=float)
    if means.ndim != 2 or covs.shape != means.shape + (means.shape[1],):
        raise ValueError(f"covs: expected shape {means.shape + (means.shape[-1],)} for means of shape "
                         f"{means.shape}, got {covs.shape}")
    return {
        "trace_cov": np.trace(covs, axis1=1, axis2=2),
        "mean_norm": np.linalg.norm(means, axis=1),
        "w2_squared": np.array([gaussian_w2_squared_to_standard(m, c) for m, c in zip(means, covs)]),
    }


def gaussian_refit_loop(seed: int, n_generations: int, audit_every: int = 1, *, d: int = 1, M: int = 20,
                        n_audit: int = 1000, n_reference: int = 1000, workflow: str = "replace",
                        fresh_fraction: float = 0.1) -> LoopTrace:
    r"""L1: recursive Gaussian refit (Shumailov et al. 2024), or one of its controls.

    Dynamics and estimators: :func:`gaussian_refit_parameters`. Onset (``replace`` only):
    the first generation with :math:`\operatorname{tr}\Sigma_n < \tfrac12\operatorname{tr}\Sigma_0 = d/2`.
    Expected behaviour at ``d = 1``: :math:`\operatorname{median}\sigma_n^2 \approx e^{-n/(M-1)}`
    (so the onset is near :math:`(M-1)\ln 2`, with a wide spread since
    :math:`\operatorname{sd}\log\sigma_n^2 \approx \sqrt{2n/(M-1)}`) and
    :math:`E[W_2^2] \approx \tfrac32 n/M` for ``n << M`` (:func:`gaussian_refit_theory`).

    Rounds are ``[n_audit, d]`` float64 samples of generation ``g``'s :math:`N(\mu_g, \Sigma_g)`;
    the reference is ``n_reference`` samples of :math:`N(0, I_d)` from its own stream.

    Controls, measured over 200 seeds at ``d = 1, M = 20``, 100 generations: the trace is
    below half at generation 100 in 94% of loop runs, 10% of C1 runs and 17% of C2 runs.
    C2's fit is mean-reverting but noisy (a 20-sample variance has relative sd 0.32 and
    only 2 real samples pull it back), so it dips below half transiently in almost every
    run (18% of generations 50-100, against 89% for the loop); at ``d = 16`` or ``M >= 100``
    such dips are rare (<= 1.3% of generations).

    Args:
        seed: run seed.
        n_generations: last simulated generation.
        audit_every: audit stride (generations ``0, audit_every, ...``).
        d: dimension (the issue's 1 or 16).
        M: training-set size per generation (the issue's 20, 100 or 1000), ``>= d + 1``.
        n_audit: audit samples per audited generation.
        n_reference: reference samples.
        workflow: ``"replace"`` (L1) or a control workflow (:data:`CONTROL_WORKFLOWS`).
        fresh_fraction: real share of the C2 training set.

    >>> trace = gaussian_refit_loop(0, 4, 2, d=1, M=20, n_audit=5, n_reference=7)
    >>> trace.name, trace.generations.tolist(), trace.rounds[0].shape, trace.reference.shape
    ('L1-d1-M20', [0, 2, 4], (5, 1), (7, 1))
    """
    seed, n_generations, audit_every = _check_run(seed, n_generations, audit_every)
    n_audit, n_reference = _check_int(n_audit, "n_audit", 1), _check_int(n_reference, "n_reference", 1)
    means, covs = gaussian_refit_parameters(seed, n_generations, d=d, M=M, workflow=workflow,
                                            fresh_fraction=fresh_fraction)
    truth = gaussian_truth(means, covs)
    generations = audited_generations(n_generations, audit_every)
    rounds = [_sample_gaussian(means[g], covs[g], n_audit, _audit_stream(seed, g)) for g in generations]
    reference = _stream(seed, _STREAM_REFERENCE).standard_normal((n_reference, d))
    onset = first_generation(truth["trace_cov"] < 0.5 * truth["trace_cov"][0])
    params = dict(d=d, M=M, n_audit=n_audit, n_reference=n_reference, workflow=workflow,
                  fresh_fraction=fresh_fraction, n_generations=n_generations, audit_every=audit_every)
    return _trace(f"L1-d{d}-M{M}", workflow, "embedding", seed, reference, rounds, generations, onset, truth, params)


# =================================================================================================================
# L2: GMM mode dropping
# =================================================================================================================


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

    The M-step is :func:`monitor.simulate.fit_em`'s (weights = mass / n, weighted means,
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
    at generation ``n`` (:func:`monitor.simulate.fit_em`, ``em_iters`` iterations, which
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


# =================================================================================================================
# L3: Zipf tail under temperature sampling
# =================================================================================================================


def zipf_law(V: int, beta: float) -> np.ndarray:
    r"""The Zipf law :math:`p_i = i^{-\beta} / \sum_{j=1}^{V} j^{-\beta}`, ``i = 1..V`` (index 0 is rank 1).

    Args:
        V: vocabulary size.
        beta: exponent, > 0.

    >>> zipf_law(3, 1.0).round(4).tolist()  # (1, 1/2, 1/3) / (11/6)
    [0.5455, 0.2727, 0.1818]
    """
    V = _check_int(V, "V", 2)
    if not beta > 0:
        raise ValueError(f"beta: expected > 0, got {beta!r}")
    weights = np.arange(1, V + 1, dtype=float) ** -float(beta)
    return weights / weights.sum()


def temperature(p: np.ndarray, tau: float) -> np.ndarray:
    r"""Sampling distribution at temperature :math:`\tau`: :math:`q_i = p_i^{1/\tau} / \sum_j p_j^{1/\tau}`.

    Computed in log space so tiny probabilities do not underflow before renormalising;
    zero stays zero.

    Args:
        p: ``[V]`` probabilities.
        tau: temperature in (0, 1].

    >>> temperature(np.array([0.5, 0.25, 0.25, 0.0]), 0.5).round(6).tolist()  # squares renormalised
    [0.666667, 0.166667, 0.166667, 0.0]
    """
    if not 0.0 < tau <= 1.0:
        raise ValueError(f"tau: expected a temperature in (0, 1], got {tau!r}")
    p = np.asarray(p, dtype=float)
    if tau == 1.0:
        return p / p.sum()
    with np.errstate(divide="ignore"):
        log_q = np.log(p) / tau
    return np.exp(log_q - special.logsumexp(log_q))


def expected_observed_support(q: np.ndarray, T: int) -> float:
    r"""Expected number of distinct types in ``T`` i.i.d. tokens from ``q``: :math:`\sum_i 1 - (1 - q_i)^T`.

    Args:
        q: ``[V]`` sampling distribution.
        T: number of tokens.

    >>> expected_observed_support(np.array([0.5, 0.5]), 2)  # 2 * (1 - 1/4)
    1.5
    """
    q = np.asarray(q, dtype=float)
    with np.errstate(divide="ignore"):
        return float(-np.expm1(T * np.log1p(-q)).sum())


def zipf_exponent_mle(p: np.ndarray) -> float:
    r"""Zipf exponent fitted to a distribution over ranks ``1..V`` by maximum likelihood.

    Solves :math:`\sum_i p_i \log i = E_{b}[\log i]` for the Zipf law of exponent ``b`` on
    the same ``V`` ranks (the score equation of :math:`\max_b \sum_i p_i \log \mathrm{Zipf}_b(i)`);
    exact for ``p`` a Zipf law, defined when tail types have probability 0, and
    ``inf`` when all mass is on rank 1. The left side decreases in ``b``, so the root is unique.

    Args:
        p: ``[V]`` probabilities, index 0 = rank 1.

    >>> round(zipf_exponent_mle(zipf_law(1000, 1.7)), 6)
    1.7
    """
    p = np.asarray(p, dtype=float)
    log_rank = np.log(np.arange(1, p.size + 1, dtype=float))
    target = float(p @ log_rank) / p.sum()

    def mean_log_rank(b: float) -> float:
        weights = np.exp(-b * log_rank - special.logsumexp(-b * log_rank))
        return float(weights @ log_rank)

    upper = 200.0
    if target <= mean_log_rank(upper):
        return float(np.inf)
    return float(optimize.brentq(lambda b: mean_log_rank(b) - target, -20.0, upper, xtol=1e-10))


def zipf_refit_distributions(seed: int, n_generations: int, *, V: int = 10_000, beta: float = 1.5,
                             T: int = 100_000, tau: float = 1.0, workflow: str = "replace",
                             fresh_fraction: float = 0.1) -> np.ndarray:
    r"""True unigram distributions :math:`p_n` of every generation of L3 (no audit text).

    Generation 0 is :func:`zipf_law`. Generation ``n`` produces its data by sampling
    tokens at temperature :math:`\tau` (:func:`temperature`), and generation ``n + 1`` is
    the maximum-likelihood unigram model of its training tokens (empirical
    frequencies; an unseen type gets probability 0 forever under ``replace``):

    * ``"replace"``: ``T`` tokens of generation ``n`` at :math:`\tau`. At :math:`\tau < 1`,
      :math:`E p_{n+1} = p_n^{1/\tau}/Z`, so a Zipf law of exponent :math:`\beta` becomes
      one of exponent :math:`\beta_n = \beta/\tau^n` (Dohmatob et al. 2024, "A tale of tails").
    * ``"no_feedback"`` (C0): every generation is the Zipf law.
    * ``"accumulate"`` (C1): ``T`` real tokens (the Zipf law itself, no temperature) plus
      the ``T`` tokens of each generation ``1..n``.
    * ``"fresh_real"`` (C2): ``T - r`` tokens of generation ``n`` at :math:`\tau` plus
      ``r = round(fresh_fraction * T)`` fresh tokens of the Zipf law.

    Args:
        seed: run seed.
        n_generations: last generation ``N``.
        V: vocabulary size.
        beta: Zipf exponent of generation 0.
        T: tokens per generation.
        tau: sampling temperature in (0, 1].
        workflow: ``"replace"``, ``"no_feedback"``, ``"accumulate"`` or ``"fresh_real"``.
        fresh_fraction: real share of the C2 training tokens.

    Returns:
        ``[N + 1, V]`` probabilities, row = generation, column 0 = rank 1.

    >>> p = zipf_refit_distributions(0, 2, V=50, T=200)
    >>> p.shape, bool(np.allclose(p.sum(axis=1), 1.0)), bool((p[2] > 0).sum() <= (p[1] > 0).sum())
    ((3, 50), True, True)
    """
    seed, n_generations, _ = _check_run(seed, n_generations, 1)
    T = _check_int(T, "T", 1)
    workflow = _check_workflow(workflow)
    p0 = zipf_law(V, beta)
    temperature(p0, tau)  # validates tau before any work
    n_fresh = _fresh_count(fresh_fraction, T, "T") if workflow == "fresh_real" else 0
    p = np.empty((n_generations + 1, p0.size))
    p[:] = p0
    if workflow == "no_feedback":
        return p
    rng, real_rng = _stream(seed, _STREAM_DYNAMICS), _stream(seed, _STREAM_REAL)
    pooled_counts = real_rng.multinomial(T, p0).astype(float) if workflow == "accumulate" else None
    for g in range(n_generations):
        if workflow == "accumulate":
            if g > 0:
                pooled_counts += rng.multinomial(T, temperature(p[g], tau))
            p[g + 1] = pooled_counts / pooled_counts.sum()
            continue
        if workflow == "fresh_real":
            counts = rng.multinomial(T - n_fresh, temperature(p[g], tau)) + real_rng.multinomial(n_fresh, p0)
        else:
            counts = rng.multinomial(T, temperature(p[g], tau))
        p[g + 1] = counts / T
    return p


def zipf_truth(p: np.ndarray, *, beta: float, tau: float, T: int, closed_form: bool) -> dict[str, np.ndarray]:
    r"""Per-generation truth of L3.

    * ``support``: :math:`|\{i : p_n(i) > 0\}|`.
    * ``observed_support``: expected number of distinct types in the ``T`` tokens
      generation ``n`` samples, :math:`\sum_i 1 - (1 - q_n(i))^T` with :math:`q_n` the
      temperature-:math:`\tau` distribution (:func:`expected_observed_support`).
    * ``fitted_exponent``: :func:`zipf_exponent_mle` of :math:`p_n`.
    * ``effective_exponent``: the closed form :math:`\beta/\tau^n` when ``closed_form``
      (the replace loop, where the issue defines it), else ``fitted_exponent`` (the
      controls mix real tokens in, so the closed form does not hold).

    Args:
        p: ``[G, V]`` true distributions.
        beta: generation-0 exponent.
        tau: sampling temperature.
        T: tokens per generation.
        closed_form: use :math:`\beta/\tau^n` for ``effective_exponent``.

    >>> t = zipf_truth(np.array([[0.5, 0.5], [1.0, 0.0]]), beta=1.0, tau=0.5, T=2, closed_form=True)
    >>> t["support"].tolist(), t["observed_support"].tolist(), t["effective_exponent"].tolist()
    ([2, 1], [1.5, 1.0], [1.0, 2.0])
    """
    p = np.asarray(p, dtype=float)
    fitted = np.array([zipf_exponent_mle(row) for row in p])
    generations = np.arange(p.shape[0], dtype=float)
    return {
        "support": (p > 0).sum(axis=1),
        "observed_support": np.array([expected_observed_support(temperature(row, tau), T) for row in p]),
        "fitted_exponent": fitted,
        "effective_exponent": beta / tau ** generations if closed_form else fitted,
    }


def _render_documents(tokens: np.ndarray, vocabulary: np.ndarray) -> list[str]:
    return [" ".join(row) for row in vocabulary[tokens].tolist()]


def zipf_tail_loop(seed: int, n_generations: int, audit_every: int = 1, *, V: int = 10_000, beta: float = 1.5,
                   T: int = 100_000, tau: float = 1.0, n_documents: int = 1000, tokens_per_document: int = 50,
                   workflow: str = "replace", fresh_fraction: float = 0.1) -> LoopTrace:
    r"""L3: a Zipf unigram model refitted on its own temperature-:math:`\tau` samples, or a control.

    Dynamics: :func:`zipf_refit_distributions`; truth: :func:`zipf_truth`. Onset
    (``replace`` only), per the issue:

    * :math:`\tau = 1`: the first ``n`` with ``observed_support[n] < 0.5 * observed_support[0]``.
      "Observed support" of generation ``n`` is the expected number of distinct types
      in the ``T`` tokens it samples; at ``n = 0`` it is the expected observed support
      of the first sample of the Zipf law (about 3,000 of ``V = 10^4`` at
      ``beta = 1.5, T = 10^5``). The true support :math:`|\{p_0 > 0\}| = V` is not the
      baseline: any ``T``-token refit shrinks it below ``V/2`` at generation 1. Using the
      expectation rather than one realised count keeps the onset a function of the true
      parameters :math:`p_n` and compares every generation on the same ``T``-token scale.
    * :math:`\tau < 1`: the first ``n`` with :math:`\beta_n = \beta/\tau^n \ge \beta + 0.5`
      (``n = 3`` at :math:`\beta = 1.5, \tau = 0.9`, deterministic).

    Controls at the default sizes (seed 0, measured): at :math:`\tau = 1`, C1 keeps 71% of
    the generation-0 observed support after 30 generations and C2 about 49% (its
    ``0.1 T`` fresh tokens alone cannot hold the tail of a ``T``-token sample), against
    18% for the loop, whose support halves by generation 4-5. At :math:`\tau < 1` the
    temperature is a systematic sharpening that real data only slows: the fitted exponent
    reaches about 2.0 (C1) and 2.55 (C2) by generation 30, so these two controls cross
    the loop's exponent threshold; alarms on them are not all false in truth.

    Audit rounds are ``n_documents`` documents of ``tokens_per_document`` tokens drawn from
    generation ``g``'s model :math:`p_g` (the distribution whose exponent is
    :math:`\beta_g`; at :math:`\tau = 1` the same as its temperature samples), token of
    rank ``i`` written ``"w<i>"``. The reference is ``n_documents`` documents of the Zipf
    law, so generation 0 and every C0 round match the reference's distribution.

    Args:
        seed: run seed.
        n_generations: last simulated generation.
        audit_every: audit stride.
        V: vocabulary size.
        beta: Zipf exponent of generation 0.
        T: training tokens per generation.
        tau: sampling temperature in (0, 1].
        n_documents: documents per audit round and in the reference.
        tokens_per_document: tokens per document.
        workflow: ``"replace"`` (L3) or a control workflow.
        fresh_fraction: real share of the C2 training tokens.

    >>> trace = zipf_tail_loop(0, 2, V=100, T=500, tau=0.9, n_documents=3, tokens_per_document=4)
    >>> trace.name, trace.modality, len(trace.rounds[1]), len(trace.rounds[1][0].split())
    ('L3-tau0.9', 'text', 3, 4)
    """
    seed, n_generations, audit_every = _check_run(seed, n_generations, audit_every)
    n_documents = _check_int(n_documents, "n_documents", 1)
    tokens_per_document = _check_int(tokens_per_document, "tokens_per_document", 1)
    p = zipf_refit_distributions(seed, n_generations, V=V, beta=beta, T=T, tau=tau, workflow=workflow,
                                 fresh_fraction=fresh_fraction)
    tau = float(tau)  # validated above; the name reads "tau1.0" even for tau=1
    truth = zipf_truth(p, beta=beta, tau=tau, T=T, closed_form=workflow == "replace")
    vocabulary = np.array([f"w{rank}" for rank in range(1, V + 1)])
    shape = (n_documents, tokens_per_document)
    generations = audited_generations(n_generations, audit_every)
    rounds = [_render_documents(_audit_stream(seed, g).choice(V, size=shape, p=p[g]), vocabulary)
              for g in generations]
    reference = _render_documents(_stream(seed, _STREAM_REFERENCE).choice(V, size=shape, p=p[0]), vocabulary)
    if tau == 1.0:
        onset = first_generation(truth["observed_support"] < 0.5 * truth["observed_support"][0])
    else:
        onset = first_generation(truth["effective_exponent"] >= beta + 0.5)
    params = dict(V=V, beta=beta, T=T, tau=tau, n_documents=n_documents, tokens_per_document=tokens_per_document,
                  workflow=workflow, fresh_fraction=fresh_fraction, n_generations=n_generations,
                  audit_every=audit_every)
    return _trace(f"L3-tau{tau}", workflow, "text", seed, reference, rounds, generations, onset, truth, params)


# =================================================================================================================
# L5: tabular Gaussian copula
# =================================================================================================================

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


# =================================================================================================================
# registry
# =================================================================================================================

LOOPS: dict[str, Callable[..., LoopTrace]] = {
    **{f"L1-d{d}-M{M}": functools.partial(gaussian_refit_loop, d=d, M=M) for d in (1, 16) for M in (20, 100, 1000)},
    "L2-K10-d8": functools.partial(gmm_mode_dropping_loop, K=10, d=8),
    "L3-tau1.0": functools.partial(zipf_tail_loop, tau=1.0),
    "L3-tau0.9": functools.partial(zipf_tail_loop, tau=0.9),
    "L5-wine": functools.partial(copula_tabular_loop, dataset="wine"),
}
"""Collapse loops by id; each is called as ``fn(seed, n_generations, audit_every=1, **overrides)``."""

CONTROLS: dict[str, Callable[..., LoopTrace]] = {
    f"{control}-{loop_id}": functools.partial(loop, workflow=workflow)
    for loop_id, loop in LOOPS.items()
    for control, workflow in CONTROL_WORKFLOWS.items()
}
"""Controls by id (``C0-<loop id>``, ``C1-...``, ``C2-...``), called like :data:`LOOPS`."""

_SCHEDULES: dict[str, tuple[int, int]] = {
    "L1-d1-M20": (40, 1),
    "L1-d1-M100": (200, 5),
    "L1-d1-M1000": (2000, 50),
    "L1-d16-M20": (60, 2),
    "L1-d16-M100": (240, 6),
    "L1-d16-M1000": (2000, 50),
    "L2-K10-d8": (100, 4),
    "L3-tau1.0": (30, 1),
    "L3-tau0.9": (24, 1),
    "L5-wine": (120, 4),
}


def suggested_schedule(loop_id: str) -> dict[str, int]:
    r"""Suggested ``n_generations`` and ``audit_every`` for a loop or control id (a control gets its loop's).

    Chosen so that the onset lies inside the run for most seeds with 25-41 audited rounds.
    Measured onset quantiles (10 / 50 / 80 / 90 %, seeds 0.., default sizes) and the share of
    seeds whose onset falls inside the suggested run:

    ======================  ==============================  ==========  ==========
    loop                    onset q10 / q50 / q80 / q90       schedule    inside
    ======================  ==============================  ==========  ==========
    L1-d1-M20 (300 seeds)   2 / 9 / 21 / 34                  40, 1       93%
    L1-d1-M100 (300)        10 / 35 / 88 / 186               200, 5      92%
    L1-d1-M1000 (60)        59 / 308 / 1110 / 1639           2000, 50    ~90%
    L1-d16-M20 (300)        8 / 18 / 36 / 56                 60, 2       91%
    L1-d16-M100 (300)       37 / 82 / 169 / 197              240, 6      93%
    L1-d16-M1000 (40)       454 / 838 / 1617 / >2500         2000, 50    ~85%
    L2-K10-d8 (24)          33 / 50 / 64 / 74 (max 114)      100, 4      96%
    L3-tau1.0 (10)          4 / 5 / 5 / 5                    30, 1       100%
    L3-tau0.9               3 (deterministic)                24, 1       100%
    L5-wine (40)            47 / 62 / 83 / 89 (max 119)      120, 4      100%
    ======================  ==============================  ==========  ==========

    L1's onset is a first passage of a random walk in :math:`\log\operatorname{tr}\Sigma_n`
    (drift :math:`\approx -1/(M-1)`, step sd :math:`\approx\sqrt{2/(M-1)}` at ``d = 1``), hence
    the heavy right tail and a median below :math:`(M-1)\ln 2`.

    Args:
        loop_id: a key of :data:`LOOPS` or :data:`CONTROLS`.

    >>> suggested_schedule("C1-L3-tau0.9")
    {'n_generations': 24, 'audit_every': 1}
    """
    base = loop_id.split("-", 1)[1] if loop_id[:2] in CONTROL_WORKFLOWS and loop_id[2:3] == "-" else loop_id
    if base not in _SCHEDULES:
        raise ValueError(f"loop_id: expected one of {sorted(LOOPS) + sorted(CONTROLS)}, got {loop_id!r}")
    n_generations, audit_every = _SCHEDULES[base]
    return {"n_generations": n_generations, "audit_every": audit_every}
