r"""Fidelity of an agent round to the reference: KS distances of episode lengths and returns.

Part of :mod:`metrics_core.agents` (its docstring states the round's layout and the uncertainty rules).
Both use :func:`metrics_core.univariate.ks_statistic`, the project's one KS implementation.
"""

from __future__ import annotations

import math

import numpy as np

from metrics_core._checks import _check_actions, _check_step_rewards
from metrics_core.univariate import ks_statistic


def episode_lengths(actions, name: str = "actions") -> np.ndarray:
    """``[E]`` int: the number of steps of each episode.

    Example:
        >>> episode_lengths([["ls", "cd"], ["ls"]]).tolist()
        [2, 1]
    """
    return np.array([len(a) for a in _check_actions(actions, name)], dtype=np.int64)


def episode_returns(rewards, name: str = "rewards") -> np.ndarray:
    r"""``[E']`` float: the return :math:`\sum_t r_{e,t}` of each episode with rewards, skipping those without.

    Sums are exact up to one rounding (:func:`math.fsum`), so they do not depend on the order of the steps.

    Example:
        >>> episode_returns([[0, 1.5], None, [-1.0]]).tolist()
        [1.5, -1.0]
    """
    return np.array([math.fsum(r) for r in _check_step_rewards(rewards, name) if r is not None], dtype=np.float64)


def episode_length_ks(actions, reference_actions) -> float:
    r"""Two-sample Kolmogorov-Smirnov statistic of the round's and the reference's episode lengths (Smirnov 1939).

    .. math:: D = \sup_x \lvert F_\text{round}(x) - F_\text{ref}(x) \rvert,

    :math:`F` the empirical CDFs of the number of steps per episode. Collapse shows as episodes all of one
    length, or ever shorter (agents giving up) or longer (agents looping). Range [0, 1], lower is better
    (0: the same length distribution). Point estimate (see the package docstring).

    Args:
        actions: ``[E]`` the round's episodes, non-empty lists of ``str`` (one action per step).
        reference_actions: ``[E_ref]`` the reference's episodes, likewise.

    Example:
        >>> episode_length_ks([["a"], ["a", "b"]], [["x"], ["x", "y"], ["x", "y"]])  # lengths {1, 2} vs {1, 2, 2}
        0.16666666666666669
        >>> episode_length_ks([["a"]], [["x", "y"]])
        1.0
    """
    return ks_statistic(episode_lengths(actions), episode_lengths(reference_actions, "reference_actions"))


def episode_return_ks(rewards, reference_rewards) -> float:
    r"""Two-sample Kolmogorov-Smirnov statistic of the round's and the reference's episode returns (Smirnov 1939).

    .. math:: D = \sup_x \lvert G_\text{round}(x) - G_\text{ref}(x) \rvert,

    :math:`G` the empirical CDFs of the returns (sums of step rewards, :func:`episode_returns`) of the episodes
    with rewards; episodes without rewards are skipped, and ValueError is raised when one side has none.
    Range [0, 1], lower is better (0: the same return distribution). Point estimate.

    Args:
        rewards: ``[E]`` the round's per-step rewards (lists of finite numbers), ``None`` for an episode without.
        reference_rewards: ``[E_ref]`` the reference's, likewise.

    Example:
        >>> episode_return_ks([[1, 0], [0.5], None], [[1.0], [2.0]])  # returns {1, 0.5} vs {1, 2}
        0.5
    """
    returns = episode_returns(rewards)
    reference_returns = episode_returns(reference_rewards, "reference_rewards")
    for name, values, given in (("rewards", returns, rewards), ("reference_rewards", reference_returns,
                                                                 reference_rewards)):
        if values.size == 0:
            raise ValueError(f"{name}: no episode has rewards (all {len(given)} items are None)")
    return ks_statistic(returns, reference_returns)
