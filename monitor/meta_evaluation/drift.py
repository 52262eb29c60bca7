r"""Pure-drift controls ``D0-<loop id>``: the distribution moves, its diversity does not collapse.

A collapse monitor should tell "the data changed" from "the data lost diversity".
Each drift control keeps generation 0 of its family exactly (same seed -> same
reference and same generation-0 audit round as the family's loop and its C0
control), then moves the generator linearly in the generation ``g`` while every
spread or diversity statistic stays what it was:

* L1 (all six ids) and L2: a mean shift at fixed covariance,
  :math:`\delta_g = s_g\,\sigma_u\,u`, with ``u`` a fixed random unit vector (seeded),
  :math:`\sigma_u = \sqrt{u^\top \Sigma_0 u}` the standard deviation of generation 0 along
  ``u`` (L1: 1; L2: the mixture's exact covariance
  :math:`\Sigma_0 = \sum_k w_k(\Sigma_k + \mu_k\mu_k^\top) - \bar\mu\bar\mu^\top`), and
  :math:`s_g = s_{\max}\, g / H`. So the shift is :math:`s_g` standard deviations along
  ``u`` (Mahalanobis length :math:`s_g` at L1), whatever ``d``: no :math:`\sqrt d` factor,
  which keeps the per-sample Kullback-Leibler divergence of L1 at :math:`s_g^2/2` in every
  dimension (about :math:`s_g/\sqrt d` per coordinate). L2 moves every component
  together, so weights and component covariances are unchanged.
* L5: a location shift of every column on the copula's quantile scale,
  :math:`x_j = Q_j(\Phi(z_j)) + \delta_{g,j}`, :math:`\delta_g = s_g\,D u/\sqrt{u^\top C u}` with
  ``D`` the generation-0 marginal standard deviations (exact, :meth:`GaussianCopula.marginal_sd`)
  and ``C`` the Pearson correlation of the real table: :math:`s_g` standard deviations along
  ``u`` in standardised coordinates. The copula (ranks, latent correlation) and every
  marginal's shape, standard deviation and range are exactly unchanged. This is the latent
  mean shift with quantile functions that move with it; a shift of the latent normal scores
  alone through the fixed, bounded empirical quantile functions would pile rows against the
  range ends and shrink the spread (measured on wine: mean sd ratio 0.69 at a latent shift
  of -1.5 in every column, 0.82 at -1.0), i.e. look like collapse, so it is not used.
* L3 (both ids): a topic shift at constant diversity. Generation ``g``'s word probabilities
  are a permutation of the Zipf law's, so the sorted probability vector, the entropy and every
  rank-frequency statistic are those of generation 0. Ranks 1 and 2 (52% of the mass at the
  default :math:`V = 10^4, \beta = 1.5`) never move. The movers are the ranks
  :math:`\lfloor V/2\rfloor, \dots, 3` in that order (increasing probability); mover ``k`` is
  paired with a distinct word drawn at random (seeded) from the bottom half of the ranks, and
  the two swap probabilities: a frequent word falls out of use and a rare one takes its
  place. Generation ``g`` has swapped the first :math:`k_g` pairs, :math:`k_g` the count whose
  reassigned mass :math:`C_k = \sum_{\text{pairs} \le k} (p_a + p_b)` is nearest to
  :math:`m_g = \min(m_{\max}, C_K)\, g/H`. At the defaults :math:`C_K = 0.478` ("about half"),
  reached at the horizon; the path is linear in ``g`` up to the atoms of the head ranks
  (ranks 3-5 hold 0.074, 0.048 and 0.034 against steps of 0.016), and constant after ``H``.
* L6 (``L6-agent``): a task shift at a fixed policy. Every episode is generation 0's policy
  (:func:`~monitor.meta_evaluation.loop_agent.initial_policy`, never refitted), but the start-goal pairs
  move from uniform to goals in one region, the grid's centre block (rows and columns 1-4, 11 of the 31
  free cells, all five walls in it): :math:`q_g = (1 - m_g)\,U + m_g\,U_R`, ``U`` uniform over the
  930 pairs, :math:`U_R` uniform over the 330 pairs whose goal is in the block, :math:`m_g = m_{\max}
  \min(g, H)/H` (:math:`m_{\max} = 1`: every goal in the block at the horizon, constant after it). The
  policy, hence its true action diversity (``truth["action_entropy"]``, the loop's onset quantity), is
  exactly generation 0's; the episodes change: nearer goals (mean start-goal distance 3.58 against 4.19
  at :math:`m = 1`), so shorter episodes (14.5 against 15.1 steps, measured), more often successful (0.509
  against 0.474, exact), different bumps and contexts. The centre, not a corner: from a
  uniform start the goal directions stay balanced, so the round's action mix stays put (pooled action
  entropy 2.262 against 2.263 bits at :math:`m = 1`, null sd 0.005; 301 episodes, 30 rounds each,
  measured), while goals in the south-east quadrant make "south" and "east" the common actions
  (2.237 bits, -5 null sd): a real loss of the data's action diversity, not a pure drift.

There is no L4 drift control: the bigram model of real glosses has no diversity-preserving
move as clean as these (a word relabelling changes which bigrams exist, and any reweighting
of transitions changes the entropy rate), so none is provided.

Nor have the structured-output loops L7-L10 (``L7-json``, ``L8-graph``, ``L9-log``, ``L10-image-text``) one
yet (the drift control is optional, "where the family has one"): each would need a move of its own that keeps
its diversity exactly (a relabelling of categorical values, template or concept names, a size shift of graph
families), none of them a one-liner, so their families are scored on C0-C2 alone. Nor has L11-reasoning
(``L11-reasoning``): generation 0's strategy weights are uniform, so any reweighting of the strategies lowers
their entropy (a collapse, not a drift), and a shift of the questions would need a bank of its own.

``H`` (``horizon``) is the last generation of the family's suggested schedule
(:func:`monitor.meta_evaluation.loops.suggested_schedule`, L6:
:data:`monitor.meta_evaluation.loop_agent.SUGGESTED_SCHEDULE`; ``n_generations`` for a family neither
knows), so :math:`s_H = s_{\max} = 1.5`, :math:`m_H \approx 0.5` (L3) and :math:`m_H = 1` (L6). L1, L2 and L5 keep
growing linearly after ``H``. ``truth["shift_sd"]`` (L1, L2, L5) holds :math:`s_g` and
``truth["reassigned_mass"]`` / ``truth["tv_distance"]`` (L3) the moved mass and the total
variation :math:`\tfrac12\lVert p_g - p_0\rVert_1`, next to the family's own truth quantities; L6:
``goal_region_mass``, ``tv_distance`` (of the pair distributions), ``mean_distance`` (expected Manhattan
start-goal distance) and ``task_success_rate`` (the policy's exact success under :math:`q_g`).

Seed streams: the loops' streams (:mod:`monitor.meta_evaluation.loops`) for the reference and the audit
rounds (``spawn_key=(3,)`` and ``(4, g)``), plus ``spawn_key=(6,)`` for the drift direction
or the L3 pairing, a purpose the loop modules do not use.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
import pandas as pd

from monitor.meta_evaluation import loop_agent as A
from monitor.meta_evaluation import loops as L
from monitor.meta_evaluation.trace import LoopTrace
from monitor.engine.simulate import GaussianMixture

STREAM_DRIFT = 6  # spawn_key of the drift direction / L3 pairing (loops use 0-4, pools 5)
FINAL_SHIFT = 1.5  # standard deviations at the horizon (L1, L2, L5)
FINAL_MASS = 0.5  # reassigned probability mass at the horizon (L3), capped by what the movers hold
FINAL_GOAL_MASS = 1.0  # share of start-goal pairs drawn with the goal in the centre block at the horizon (L6)
GOAL_REGION = ((1, 4), (1, 4))  # L6: the goal region, rows 1-4 and columns 1-4 (inclusive)


def drift_horizon(family_id: str, horizon: int | None, n_generations: int) -> int:
    r"""The generation ``H`` at which the drift reaches its full size.

    ``horizon`` when given, else the family's suggested ``n_generations``, else ``n_generations``.

    >>> drift_horizon("L1-d1-M20", None, 5), drift_horizon("L1-d2-M9", None, 5), drift_horizon("L5-wine", 7, 5)
    (40, 5, 7)
    >>> drift_horizon("L6-agent", None, 5)
    30
    """
    if horizon is not None:
        return L._check_int(horizon, "horizon", 1)
    if family_id in A.LOOPS:
        return A.SUGGESTED_SCHEDULE[0]
    try:
        return L.suggested_schedule(family_id)["n_generations"]
    except ValueError:
        return n_generations


def shift_schedule(n_generations: int, horizon: int, final: float) -> np.ndarray:
    r"""Linear drift size :math:`s_g = \text{final}\cdot g/H`, ``g = 0..N``.

    >>> shift_schedule(4, 2, 1.5).tolist()
    [0.0, 0.75, 1.5, 2.25, 3.0]
    """
    if not (isinstance(final, (int, float)) and np.isfinite(final) and final >= 0):
        raise ValueError(f"final_shift: expected a finite number >= 0, got {final!r}")
    return float(final) * np.arange(n_generations + 1, dtype=float) / horizon


def drift_direction(seed: int, dim: int) -> np.ndarray:
    r"""The run's fixed random unit direction :math:`u \in \mathbb{R}^{\text{dim}}` (its own seed stream).

    >>> u = drift_direction(0, 3)
    >>> u.shape, round(float(u @ u), 12)
    ((3,), 1.0)
    """
    u = L._stream(seed, STREAM_DRIFT).standard_normal(L._check_int(dim, "dim", 1))
    return u / np.linalg.norm(u)


def _params(n_generations: int, audit_every: int, horizon: int, **extra) -> dict:
    return dict(workflow="drift", horizon=horizon, n_generations=n_generations, audit_every=audit_every, **extra)


def _control(name: str, modality: str, seed: int, reference, rounds, generations, truth, params) -> LoopTrace:
    return LoopTrace(name=f"D0-{name}", kind="control", modality=modality, seed=seed, reference=reference,
                     rounds=rounds, generations=generations, onset=None, truth=truth, params=params)


# --- L1 ----------------------------------------------------------------------------------------------------------


def drift_gaussian_parameters(seed: int, n_generations: int, *, d: int = 1, M: int = 20, horizon: int | None = None,
                              final_shift: float = FINAL_SHIFT) -> tuple[np.ndarray, np.ndarray]:
    r"""True means and covariances of D0-L1: :math:`N(s_g u, I_d)`, :math:`s_g = \text{final\_shift}\cdot g/H`.

    ``M`` only names the family (``L1-d{d}-M{M}``) and so picks the default horizon.

    Returns:
        ``(means [N + 1, d], covs [N + 1, d, d])``.

    >>> means, covs = drift_gaussian_parameters(0, 80, d=1, M=20)  # horizon 40
    >>> float(abs(means[40, 0])), float(abs(means[80, 0])), covs[80].tolist()
    (1.5, 3.0, [[1.0]])
    """
    seed, n_generations, _ = L._check_run(seed, n_generations, 1)
    d, M = L._check_int(d, "d", 1), L._check_int(M, "M", 2)
    shift = shift_schedule(n_generations, drift_horizon(f"L1-d{d}-M{M}", horizon, n_generations), final_shift)
    means = shift[:, None] * drift_direction(seed, d)
    return means, np.broadcast_to(np.eye(d), (n_generations + 1, d, d)).copy()


def drift_gaussian_loop(seed: int, n_generations: int, audit_every: int = 1, *, d: int = 1, M: int = 20,
                        n_audit: int = 1000, n_reference: int = 1000, horizon: int | None = None,
                        final_shift: float = FINAL_SHIFT) -> LoopTrace:
    r"""D0-L1: a mean shift of :math:`N(0, I_d)` at fixed covariance (module docstring).

    Reference and audit streams are L1's, so the reference and round 0 equal
    ``gaussian_refit_loop(..., workflow="no_feedback")``'s and round ``g`` is C0's round ``g``
    plus :math:`s_g u`. ``truth``: :func:`monitor.meta_evaluation.loops.gaussian_truth` and ``shift_sd``.

    >>> t = drift_gaussian_loop(0, 40, 20, n_audit=3, n_reference=4)
    >>> t.name, t.kind, t.truth["shift_sd"][[0, 20, 40]].tolist(), float(t.truth["trace_cov"][40])
    ('D0-L1-d1-M20', 'control', [0.0, 0.75, 1.5], 1.0)
    """
    seed, n_generations, audit_every = L._check_run(seed, n_generations, audit_every)
    n_audit, n_reference = L._check_int(n_audit, "n_audit", 1), L._check_int(n_reference, "n_reference", 1)
    means, covs = drift_gaussian_parameters(seed, n_generations, d=d, M=M, horizon=horizon, final_shift=final_shift)
    H = drift_horizon(f"L1-d{d}-M{M}", horizon, n_generations)
    generations = L.audited_generations(n_generations, audit_every)
    rounds = [L._sample_gaussian(means[g], covs[g], n_audit, L._audit_stream(seed, g)) for g in generations]
    reference = L._stream(seed, L._STREAM_REFERENCE).standard_normal((n_reference, d))
    truth = {**L.gaussian_truth(means, covs), "shift_sd": np.linalg.norm(means, axis=1)}
    params = _params(n_generations, audit_every, H, d=d, M=M, n_audit=n_audit, n_reference=n_reference,
                     final_shift=float(final_shift))
    return _control(f"L1-d{d}-M{M}", "embedding", seed, reference, rounds, generations, truth, params)


# --- L2 ----------------------------------------------------------------------------------------------------------


def mixture_covariance(mixture: GaussianMixture) -> np.ndarray:
    r"""Exact covariance :math:`\sum_k w_k(\Sigma_k + \mu_k\mu_k^\top) - \bar\mu\bar\mu^\top` of a Gaussian mixture.

    >>> m = GaussianMixture(np.array([0.5, 0.5]), np.array([[-1.0], [1.0]]), np.ones((2, 1, 1)))
    >>> mixture_covariance(m).tolist()  # 1 + 1
    [[2.0]]
    """
    w, mu = mixture.weights, mixture.means
    mean = w @ mu
    return np.einsum("k,kij->ij", w, mixture.covs) + np.einsum("k,ki,kj->ij", w, mu, mu) - np.outer(mean, mean)


def drift_gmm_models(seed: int, n_generations: int, *, K: int = 10, d: int = 8, spread: float = 6.0,
                     horizon: int | None = None, final_shift: float = FINAL_SHIFT) -> list[GaussianMixture]:
    r"""True mixtures of D0-L2: generation 0 (:func:`~monitor.meta_evaluation.loops.equal_weight_mixture`) with every mean
    moved by :math:`s_g\sigma_u u` (weights and covariances fixed).

    >>> models = drift_gmm_models(0, 100, K=3, d=2)  # horizon 100
    >>> u = models[100].means[0] - models[0].means[0]
    >>> sd_u = float(np.sqrt(u @ mixture_covariance(models[0]) @ u) / np.linalg.norm(u))
    >>> round(float(np.linalg.norm(u)) / sd_u, 9), models[100].covs is models[0].covs
    (1.5, True)
    """
    seed, n_generations, _ = L._check_run(seed, n_generations, 1)
    model0 = L.equal_weight_mixture(seed, K, d, spread)
    shift = shift_schedule(n_generations, drift_horizon(f"L2-K{K}-d{d}", horizon, n_generations), final_shift)
    u = drift_direction(seed, d)
    step = np.sqrt(u @ mixture_covariance(model0) @ u) * u
    return [model0] + [GaussianMixture(model0.weights, model0.means + s * step, model0.covs) for s in shift[1:]]


def drift_gmm_loop(seed: int, n_generations: int, audit_every: int = 1, *, K: int = 10, d: int = 8,
                   spread: float = 6.0, n_audit: int = 1000, n_reference: int = 1000, horizon: int | None = None,
                   final_shift: float = FINAL_SHIFT) -> LoopTrace:
    r"""D0-L2: the generation-0 mixture translated as a whole (module docstring); L2's streams.

    ``truth``: :func:`monitor.meta_evaluation.loops.gmm_truth` (constant) and ``shift_sd``.

    >>> t = drift_gmm_loop(0, 4, K=3, d=2, n_audit=5, n_reference=6, horizon=4)
    >>> t.name, t.rounds[4].shape, t.truth["shift_sd"].tolist(), round(float(t.truth["min_weight"][4]), 6)
    ('D0-L2-K3-d2', (5, 2), [0.0, 0.375, 0.75, 1.125, 1.5], 0.333333)
    """
    seed, n_generations, audit_every = L._check_run(seed, n_generations, audit_every)
    n_audit, n_reference = L._check_int(n_audit, "n_audit", 1), L._check_int(n_reference, "n_reference", 1)
    models = drift_gmm_models(seed, n_generations, K=K, d=d, spread=spread, horizon=horizon,
                              final_shift=final_shift)
    H = drift_horizon(f"L2-K{K}-d{d}", horizon, n_generations)
    generations = L.audited_generations(n_generations, audit_every)
    rounds = [models[g].sample(n_audit, L._audit_stream(seed, g)) for g in generations]
    reference = models[0].sample(n_reference, L._stream(seed, L._STREAM_REFERENCE))
    truth = {**L.gmm_truth(models, K), "shift_sd": shift_schedule(n_generations, H, final_shift)}
    params = _params(n_generations, audit_every, H, K=K, d=d, spread=spread, n_audit=n_audit,
                     n_reference=n_reference, final_shift=float(final_shift))
    return _control(f"L2-K{K}-d{d}", "embedding", seed, reference, rounds, generations, truth, params)


# --- L3 ----------------------------------------------------------------------------------------------------------


def zipf_swap_pairs(seed: int, V: int) -> np.ndarray:
    r"""The run's ordered swap pairs of D0-L3: ``[K, 2]`` word indices (0 = rank 1), mover first.

    Movers are ranks :math:`\lfloor V/2\rfloor, \dots, 3` (indices ``V//2 - 1`` down to 2);
    partners a seeded random draw without replacement from ranks above :math:`\lfloor V/2\rfloor`.

    >>> pairs = zipf_swap_pairs(0, 10)
    >>> pairs[:, 0].tolist(), bool(np.all(pairs[:, 1] >= 5)), len(set(pairs.ravel().tolist()))
    ([4, 3, 2], True, 6)
    """
    V = L._check_int(V, "V", 6)
    movers = np.arange(V // 2 - 1, 1, -1)
    partners = V // 2 + L._stream(seed, STREAM_DRIFT).permutation(V - V // 2)[: movers.size]
    return np.stack([movers, partners], axis=1)


def drift_zipf_distributions(seed: int, n_generations: int, *, V: int = 10_000, beta: float = 1.5,
                             tau: float = 1.0, horizon: int | None = None,
                             final_mass: float = FINAL_MASS) -> np.ndarray:
    r"""True word distributions of D0-L3: the Zipf law with the first :math:`k_g` pairs of
    :func:`zipf_swap_pairs` swapped (module docstring). ``tau`` only names the family.

    Returns:
        ``[N + 1, V]`` probabilities; every row is a permutation of row 0.

    >>> p = drift_zipf_distributions(0, 4, V=10, beta=1.0, horizon=4)
    >>> same_values = np.array_equal(np.sort(p, axis=1), np.sort(p[:1], axis=1).repeat(5, axis=0))
    >>> bool(same_values), (p != p[0]).sum(axis=1).tolist()
    (True, [0, 2, 4, 4, 6])
    """
    seed, n_generations, _ = L._check_run(seed, n_generations, 1)
    if not (isinstance(final_mass, (int, float)) and 0 <= final_mass <= 1):
        raise ValueError(f"final_mass: expected a number in [0, 1], got {final_mass!r}")
    p0 = L.zipf_law(V, beta)
    L.temperature(p0, tau)  # validates tau
    H = drift_horizon(f"L3-tau{float(tau)}", horizon, n_generations)
    pairs = zipf_swap_pairs(seed, V)
    cumulative = np.concatenate([[0.0], np.cumsum(p0[pairs].sum(axis=1))])  # C_k, k = 0..K
    targets = np.minimum(final_mass, cumulative[-1]) * np.minimum(np.arange(n_generations + 1), H) / H
    upper = np.clip(np.searchsorted(cumulative, targets), 1, cumulative.size - 1)
    k = np.where(cumulative[upper] - targets < targets - cumulative[upper - 1], upper, upper - 1)
    p = np.empty((n_generations + 1, V))
    for g, count in enumerate(k):
        p[g] = p0
        a, b = pairs[:count, 0], pairs[:count, 1]
        p[g, a], p[g, b] = p0[b], p0[a]
    return p


def drift_zipf_loop(seed: int, n_generations: int, audit_every: int = 1, *, V: int = 10_000, beta: float = 1.5,
                    T: int = 100_000, tau: float = 1.0, n_documents: int = 1000, tokens_per_document: int = 50,
                    horizon: int | None = None, final_mass: float = FINAL_MASS) -> LoopTrace:
    r"""D0-L3: a topic shift at constant diversity (module docstring); L3's streams and rendering.

    ``truth``: :func:`monitor.meta_evaluation.loops.zipf_truth` of the *sorted* probabilities (constant, generation 0's),
    ``reassigned_mass`` :math:`\sum_{i: p_g(i) \ne p_0(i)} p_0(i)`, ``tv_distance``
    :math:`\tfrac12\lVert p_g - p_0\rVert_1` and ``swapped_pairs``.

    >>> t = drift_zipf_loop(0, 30, 10, V=100, T=500, n_documents=2, tokens_per_document=3)
    >>> t.name, float(t.truth["reassigned_mass"][0]), bool(t.truth["reassigned_mass"][30] > 0.3)
    ('D0-L3-tau1.0', 0.0, True)
    """
    seed, n_generations, audit_every = L._check_run(seed, n_generations, audit_every)
    n_documents = L._check_int(n_documents, "n_documents", 1)
    tokens_per_document = L._check_int(tokens_per_document, "tokens_per_document", 1)
    p = drift_zipf_distributions(seed, n_generations, V=V, beta=beta, tau=tau, horizon=horizon,
                                 final_mass=final_mass)
    tau = float(tau)
    H = drift_horizon(f"L3-tau{tau}", horizon, n_generations)
    moved = p != p[0]
    truth = L.zipf_truth(-np.sort(-p, axis=1), beta=beta, tau=tau, T=T, closed_form=False)
    truth.update(reassigned_mass=(moved * p[0]).sum(axis=1), tv_distance=0.5 * np.abs(p - p[0]).sum(axis=1),
                 swapped_pairs=moved.sum(axis=1) // 2)
    vocabulary = np.array([f"w{rank}" for rank in range(1, V + 1)])
    shape = (n_documents, tokens_per_document)
    generations = L.audited_generations(n_generations, audit_every)
    rounds = [L._render_documents(L._audit_stream(seed, g).choice(V, size=shape, p=p[g]), vocabulary)
              for g in generations]
    reference = L._render_documents(L._stream(seed, L._STREAM_REFERENCE).choice(V, size=shape, p=p[0]), vocabulary)
    params = _params(n_generations, audit_every, H, V=V, beta=beta, T=T, tau=tau, n_documents=n_documents,
                     tokens_per_document=tokens_per_document, final_mass=float(final_mass))
    return _control(f"L3-tau{tau}", "text", seed, reference, rounds, generations, truth, params)


# --- L5 ----------------------------------------------------------------------------------------------------------


def drift_copula_models(seed: int, n_generations: int, *, dataset: str = "wine", horizon: int | None = None,
                        final_shift: float = FINAL_SHIFT) -> list[L.GaussianCopula]:
    r"""True copulas of D0-L5: generation 0's, every column's sorted values moved by :math:`\delta_{g,j}`.

    Moving the sorted values moves the interpolated quantile function,
    :math:`Q_{g,j} = Q_{0,j} + \delta_{g,j}`; the latent correlation is generation 0's object.

    >>> models = drift_copula_models(0, 120)  # horizon 120
    >>> bool(np.allclose(models[120].marginal_sd(), models[0].marginal_sd(), rtol=1e-12))
    True
    """
    seed, n_generations, _ = L._check_run(seed, n_generations, 1)
    real = L.load_real_table(dataset).to_numpy()
    model0 = L.fit_gaussian_copula(real)
    shift = shift_schedule(n_generations, drift_horizon(f"L5-{dataset}", horizon, n_generations), final_shift)
    u = drift_direction(seed, real.shape[1])
    step = model0.marginal_sd() * u / np.sqrt(u @ np.corrcoef(real, rowvar=False) @ u)
    return [model0] + [L.GaussianCopula(model0.sorted_columns + s * step, model0.correlation) for s in shift[1:]]


def drift_copula_loop(seed: int, n_generations: int, audit_every: int = 1, *, dataset: str = "wine",
                      n_audit: int = 1000, horizon: int | None = None, final_shift: float = FINAL_SHIFT) -> LoopTrace:
    r"""D0-L5: the generation-0 copula with every marginal translated (module docstring); L5's streams.

    ``truth``: :func:`monitor.meta_evaluation.loops.copula_truth` (``sd_ratio`` and ``range_ratio`` 1 up to rounding)
    and ``shift_sd``. The reference is the whole real table, as for L5.

    >>> t = drift_copula_loop(0, 4, 2, n_audit=3, horizon=4)
    >>> t.name, t.rounds[2].shape, t.truth["shift_sd"].tolist(), bool(np.allclose(t.truth["sd_ratio"], 1))
    ('D0-L5-wine', (3, 13), [0.0, 0.375, 0.75, 1.125, 1.5], True)
    """
    seed, n_generations, audit_every = L._check_run(seed, n_generations, audit_every)
    n_audit = L._check_int(n_audit, "n_audit", 1)
    models = drift_copula_models(seed, n_generations, dataset=dataset, horizon=horizon, final_shift=final_shift)
    H = drift_horizon(f"L5-{dataset}", horizon, n_generations)
    reference = L.load_real_table(dataset)
    generations = L.audited_generations(n_generations, audit_every)
    rounds = [pd.DataFrame(models[g].sample(n_audit, L._audit_stream(seed, g)), columns=reference.columns)
              for g in generations]
    truth = {**L.copula_truth(models), "shift_sd": shift_schedule(n_generations, H, final_shift)}
    params = _params(n_generations, audit_every, H, dataset=dataset, n_audit=n_audit, final_shift=float(final_shift))
    return _control(f"L5-{dataset}", "tabular", seed, reference, rounds, generations, truth, params)


# --- L6 ----------------------------------------------------------------------------------------------------------


def goal_region_pairs() -> np.ndarray:
    r"""``[930]`` booleans: the start-goal pairs (``loop_agent._T["pairs"]``) whose goal is in :data:`GOAL_REGION`.

    >>> inside = goal_region_pairs()
    >>> int(inside.sum()), len(inside)  # 11 free goal cells in the block, 30 starts each
    (330, 930)
    """
    (r0, r1), (c0, c1) = GOAL_REGION
    goals = np.array(A._FREE)[A._T["pairs"][:, 1]]
    return (goals[:, 0] >= r0) & (goals[:, 0] <= r1) & (goals[:, 1] >= c0) & (goals[:, 1] <= c1)


def drift_agent_pair_probabilities(n_generations: int, *, horizon: int | None = None,
                                   final_mass: float = FINAL_GOAL_MASS) -> np.ndarray:
    r"""Start-goal pair distributions of D0-L6: :math:`q_g = (1 - m_g)\,U + m_g\,U_R`, ``g = 0..N``.

    :math:`m_g = \text{final\_mass}\cdot\min(g, H)/H` (module docstring); rows over ``loop_agent._T["pairs"]``.

    >>> q = drift_agent_pair_probabilities(4, horizon=2)
    >>> q.shape, bool(np.allclose(q.sum(axis=1), 1)), q[2:, goal_region_pairs()].sum(axis=1).round(6).tolist()
    ((5, 930), True, [1.0, 1.0, 1.0])
    >>> float(q[0, 0]) == 1 / 930
    True
    """
    n_generations = L._check_int(n_generations, "n_generations", 1)
    if not (isinstance(final_mass, (int, float)) and 0 <= final_mass <= 1):
        raise ValueError(f"final_mass: expected a number in [0, 1], got {final_mass!r}")
    H = drift_horizon("L6-agent", horizon, n_generations)
    inside = goal_region_pairs()
    uniform = np.full(inside.size, 1.0 / inside.size)
    region = inside / inside.sum()
    mass = float(final_mass) * np.minimum(np.arange(n_generations + 1), H) / H
    return (1.0 - mass)[:, None] * uniform + mass[:, None] * region


def agent_round_pairs(q: np.ndarray, generation: int) -> np.ndarray | None:
    r"""What :func:`~monitor.meta_evaluation.loop_agent._simulate` draws generation ``g``'s pairs from: None
    (uniform, the loop's own draw, so the round equals C0-L6's) where :math:`q_g` is generation 0's, else
    :math:`q_g`.

    >>> q = drift_agent_pair_probabilities(2, horizon=2)
    >>> agent_round_pairs(q, 0) is None, agent_round_pairs(q, 1).shape
    (True, (930,))
    """
    return None if np.array_equal(q[generation], q[0]) else q[generation]


def drift_agent_loop(seed: int, n_generations: int, audit_every: int = 1, *, n_audit: int = A.DEFAULT_N_AUDIT,
                     n_reference: int = A.DEFAULT_N_REFERENCE, max_steps: int = A.DEFAULT_MAX_STEPS,
                     horizon: int | None = None, final_mass: float = FINAL_GOAL_MASS) -> LoopTrace:
    r"""D0-L6: generation 0's policy on tasks whose goals move into the centre block (module docstring).

    L6's streams: the reference equals ``agent_loop``'s (any workflow), every round with :math:`m_g = 0`
    (generation 0) equals C0-L6's round; later rounds draw their start-goal pairs from :math:`q_g`.
    ``truth``: :func:`monitor.meta_evaluation.loop_agent.agent_truth` of the constant policy (so
    ``action_entropy`` never moves), ``goal_region_mass`` :math:`q_g(R)`, ``tv_distance``
    :math:`\tfrac12\lVert q_g - U\rVert_1`, ``mean_distance`` (expected Manhattan start-goal distance under
    :math:`q_g`) and ``task_success_rate`` (the exact success probability under :math:`q_g`).

    >>> t = drift_agent_loop(0, 4, 2, n_audit=3, n_reference=4, horizon=4)
    >>> t.name, t.modality, len(t.rounds[2]), t.truth["goal_region_mass"].round(3).tolist()
    ('D0-L6-agent', 'agent', 3, [0.355, 0.516, 0.677, 0.839, 1.0])
    >>> len(set(t.truth["action_entropy"].tolist())), t.rounds[0] == A.CONTROLS["C0-L6-agent"](0, 4, 2, n_audit=3,
    ...     n_reference=4).rounds[0]
    (1, True)
    """
    seed, n_generations, audit_every = L._check_run(seed, n_generations, audit_every)
    n_audit, n_reference = L._check_int(n_audit, "n_audit", 1), L._check_int(n_reference, "n_reference", 1)
    max_steps = L._check_int(max_steps, "max_steps", 1)
    H = drift_horizon("L6-agent", horizon, n_generations)
    q = drift_agent_pair_probabilities(n_generations, horizon=H, final_mass=final_mass)
    policy = A.initial_policy()
    generations = L.audited_generations(n_generations, audit_every)
    uniform = q[0]
    rounds = [A._render(A._simulate(policy, n_audit, L._audit_stream(seed, g), max_steps, agent_round_pairs(q, g)),
                        max_steps) for g in generations]
    reference = A._render(A._simulate(policy, n_reference, L._stream(seed, L._STREAM_REFERENCE), max_steps),
                          max_steps)
    free = np.array(A._FREE)
    pairs = A._T["pairs"]
    distance = np.abs(free[pairs[:, 0]] - free[pairs[:, 1]]).sum(axis=1)
    success = {}  # q_g is one of at most H + 1 distinct rows: each exact propagation once
    task_success = np.array([success.setdefault(float(m), A.context_visits(policy, max_steps=max_steps,
                                                                           pair_probabilities=row)[1])
                             for m, row in zip(q[:, goal_region_pairs()].sum(axis=1), q)])
    truth = {**A.agent_truth(np.broadcast_to(policy, (n_generations + 1, *policy.shape)), max_steps=max_steps),
             "goal_region_mass": q[:, goal_region_pairs()].sum(axis=1),
             "tv_distance": 0.5 * np.abs(q - uniform).sum(axis=1),
             "mean_distance": q @ distance,
             "task_success_rate": task_success}
    params = _params(n_generations, audit_every, H, n_audit=n_audit, n_reference=n_reference, max_steps=max_steps,
                     final_mass=float(final_mass))
    return _control("L6-agent", "agent", seed, reference, rounds, generations, truth, params)


# --- registry ----------------------------------------------------------------------------------------------------

_BY_FAMILY = {"L1": drift_gaussian_loop, "L2": drift_gmm_loop, "L3": drift_zipf_loop, "L5": drift_copula_loop}

DRIFT_CONTROLS: dict[str, Callable[..., LoopTrace]] = {
    **{f"D0-{loop_id}": functools.partial(_BY_FAMILY[loop_id[:2]], **loop.keywords)
       for loop_id, loop in L.LOOPS.items()},
    **{f"D0-{loop_id}": drift_agent_loop for loop_id in A.LOOPS},
}
"""Drift controls by id (``D0-<loop id>`` for every L1, L2, L3, L5 loop and L6-agent), called like
:data:`monitor.meta_evaluation.loops.LOOPS`: ``fn(seed, n_generations, audit_every=1, **overrides)``."""
