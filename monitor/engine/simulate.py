"""A Gaussian-mixture self-training loop: the demo's (and tests') collapsing generator.

Round 0 samples a model fitted to real data; every later model is refitted by
EM only on the previous model's samples (no real data is kept), and samples
are drawn at a temperature ``tau <= 1`` (covariances scaled by ``tau**2``),
as LLM loops sample below temperature 1. Finite-sample refits lose the tails
and drift the mixture weights, so components fade (Shumailov et al. 2024).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp


@dataclass(frozen=True)
class GaussianMixture:
    weights: np.ndarray  # [K]
    means: np.ndarray  # [K, D]
    covs: np.ndarray  # [K, D, D]

    def sample(self, n: int, rng: np.random.Generator, tau: float = 1.0) -> np.ndarray:
        counts = rng.multinomial(n, self.weights)
        parts = [
            rng.multivariate_normal(self.means[c], (tau * tau) * self.covs[c], size=m, method="cholesky")
            for c, m in enumerate(counts)
            if m > 0
        ]
        x = np.concatenate(parts)
        return x[rng.permutation(n)]


def _log_gauss(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    chol = np.linalg.cholesky(cov)
    z = np.linalg.solve(chol, (x - mean).T)
    return -0.5 * (z * z).sum(axis=0) - np.log(np.diag(chol)).sum() - 0.5 * x.shape[1] * np.log(2 * np.pi)


def fit_em(x: np.ndarray, init: GaussianMixture, iters: int = 25, reg: float = 1e-4) -> GaussianMixture:
    """EM for a full-covariance mixture, warm-started from ``init``.

    Components whose responsibility mass falls below one sample are dropped,
    which is how a refit loop loses modes for good.
    """
    w, mu, cov = init.weights.copy(), init.means.copy(), init.covs.copy()
    n, d = x.shape
    for _ in range(iters):
        log_r = np.stack([np.log(w[c]) + _log_gauss(x, mu[c], cov[c]) for c in range(len(w))], axis=1)
        log_r -= logsumexp(log_r, axis=1, keepdims=True)
        r = np.exp(log_r)
        mass = r.sum(axis=0)
        keep = mass >= 1.0
        r, mass = r[:, keep], mass[keep]
        w = mass / n
        mu = (r.T @ x) / mass[:, None]
        cov = np.empty((len(w), d, d))
        for c in range(len(w)):
            diff = x - mu[c]
            cov[c] = (r[:, c, None] * diff).T @ diff / mass[c] + reg * np.eye(d)
    return GaussianMixture(w, mu, cov)


def true_mixture(rng: np.random.Generator, k: int = 6, d: int = 16, spread: float = 6.0) -> GaussianMixture:
    """A well-separated mixture with unequal weights (rare modes are the tails)."""
    weights = rng.dirichlet(np.full(k, 2.0))
    means = rng.normal(scale=spread, size=(k, d))
    covs = np.stack([np.eye(d) * rng.uniform(0.5, 1.5) for _ in range(k)])
    return GaussianMixture(weights, means, covs)


def self_training_rounds(rounds: int, *, seed: int = 0, n_reference: int = 2000, n_round: int = 2000,
                         n_fit: int = 400, tau: float = 0.97, k: int = 6, d: int = 16):
    """Yield ``(round, samples)``; the first item is ``(None, reference)``.

    Round ``t`` holds ``n_round`` samples of model ``t``; model ``t+1`` is fitted
    on ``n_fit`` of them.
    """
    rng = np.random.default_rng(seed)
    truth = true_mixture(rng, k, d)
    reference = truth.sample(n_reference, rng)
    yield None, reference.astype(np.float32)
    model = fit_em(reference, truth)
    for t in range(rounds):
        samples = model.sample(n_round, rng, tau=tau)
        yield t, samples.astype(np.float32)
        model = fit_em(samples[:n_fit], model)


def control_rounds(rounds: int, *, seed: int = 0, stream: int = 0, n_reference: int = 2000, n_round: int = 2000,
                   k: int = 6, d: int = 16):
    """The demo's no-feedback control: yield ``(None, reference)``, then fresh draws from the true mixture.

    Same truth and reference as :func:`self_training_rounds` for the same
    ``seed``; the rounds come from an independent generator per ``stream``.
    Every round is an independent sample of the reference distribution, so
    any alert on it is a false alarm (used to calibrate the thresholds).
    """
    rng = np.random.default_rng(seed)
    truth = true_mixture(rng, k, d)
    reference = truth.sample(n_reference, rng)
    yield None, reference.astype(np.float32)
    draws = np.random.default_rng([seed, stream])
    for t in range(rounds):
        yield t, truth.sample(n_round, draws).astype(np.float32)
