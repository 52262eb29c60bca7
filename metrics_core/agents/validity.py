r"""Validity of an agent round: step execution rate, task success rate, sub-goal progress.

Part of :mod:`metrics_core.agents` (its docstring states the round's layout and the uncertainty rules).
"""

from __future__ import annotations

import numpy as np

from metrics_core._checks import _check_goals, _check_per_episode, _check_step_flags, _is_flag
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, bootstrap_estimate, mean_estimate


def _undefined(name: str, what: str, n: int) -> ValueError:
    return ValueError(f"{name}: no episode {what} (all {n} items are None)")


def exec_rate(errors, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0) -> Estimate:
    r"""Execution rate (survey §7.2): share of the round's steps that ran without an error, pooled over episodes.

    With :math:`T_e` the steps of episode :math:`e` and :math:`\epsilon_{e,t}` whether step :math:`t` raised
    an error,

    .. math:: \text{ExecRate} = \frac{\sum_{e=1}^E \sum_{t=1}^{T_e} 1[\lnot \epsilon_{e,t}]}{\sum_{e=1}^E T_e},

    every step weighing the same (a long episode counts more than a short one). Range [0, 1], higher is
    better. The interval resamples episodes (a trajectory's steps are not independent): the ratio
    :math:`\sum_e w_e c_e / \sum_e w_e T_e` with :math:`c_e` the error-free steps of episode :math:`e`.

    Args:
        errors: ``[E]`` lists of ``bool``, one per step (True: the step raised an error); at least one step each.
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> exec_rate([[False, True, False], [True]]).value  # 2 of 4 steps ran
        0.5
    """
    errors = _check_step_flags(errors)
    ok = np.array([len(e) - sum(e) for e in errors], dtype=np.float64)
    steps = np.array([len(e) for e in errors], dtype=np.float64)
    return bootstrap_estimate(lambda w: float(w @ ok) / float(w @ steps), len(errors),
                              n_boot=n_boot, level=level, seed=seed)


def success_rate(success, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0) -> Estimate:
    r"""Task success rate (survey §7.2): share of the episodes reporting success that succeeded.

    .. math:: \text{SuccessRate} = \frac{1}{|S|} \sum_{e \in S} 1[\text{success}_e],

    :math:`S` the episodes whose ``success`` is not ``None`` (the others are skipped; ValueError when none
    reports). Range [0, 1], higher is better. The interval bootstraps the mean over :math:`S`.

    Args:
        success: ``[E]`` ``bool`` or ``None`` (not reported).
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> success_rate([True, None, False, True]).value  # 2 of the 3 reporting
        0.6666666666666666
    """
    success = _check_per_episode(success, "success", "bool", _is_flag)
    reported = [bool(s) for s in success if s is not None]
    if not reported:
        raise _undefined("success", "reports success", len(success))
    return mean_estimate(np.array(reported, dtype=np.float64), n_boot=n_boot, level=level, seed=seed)


def percent_complete(
    goals_achieved, goals_total, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0
) -> Estimate:
    r"""Progress rate (Ma et al. 2024, "AgentBoard: An Analytical Evaluation Board of Multi-turn LLM Agents"):
    mean share of its sub-goals an episode achieved.

    .. math:: \text{PercentComplete} = \frac{1}{|G|} \sum_{e \in G} \frac{a_e}{m_e},

    :math:`a_e` the sub-goals episode :math:`e` achieved of the :math:`m_e \ge 1` it declares, :math:`G` the
    episodes declaring goals (the others are skipped; ValueError when none does). Unlike the success rate it
    credits partial progress: a round whose agents get ever less far before failing scores lower even while
    neither succeeds. Every declaring episode weighs the same, whatever its number of goals. Range [0, 1],
    higher is better. The interval bootstraps the mean over :math:`G`.

    Args:
        goals_achieved: ``[E]`` ``int`` >= 0 or ``None`` (no goals declared).
        goals_total: ``[E]`` ``int`` >= 1, at least ``goals_achieved``, or ``None`` exactly where
            ``goals_achieved`` is.
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> percent_complete([1, None, 3], [4, None, 3]).value  # (1/4 + 3/3) / 2
        0.625
    """
    goals = _check_goals(goals_achieved, goals_total)
    shares = [a / m for a, m in (g for g in goals if g is not None)]
    if not shares:
        raise _undefined("goals_total", "declares goals", len(goals))
    return mean_estimate(np.array(shares, dtype=np.float64), n_boot=n_boot, level=level, seed=seed)
