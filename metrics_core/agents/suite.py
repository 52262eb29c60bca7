r"""The agent suite: every agent metric of a round in one call.

Part of :mod:`metrics_core.agents` (its docstring states the round's layout and the uncertainty rules).
"""

from __future__ import annotations

import math

from metrics_core._checks import _check_bootstrap, _check_seed
from metrics_core.agents.diversity import action_distinct_n, action_entropy, duplicate_episode_rate
from metrics_core.agents.episodes import Episodes
from metrics_core.agents.fidelity import episode_length_ks, episode_return_ks
from metrics_core.agents.validity import exec_rate, percent_complete, success_rate
from metrics_core.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, Estimate

#: The agent metrics, in the registry's order (:func:`metrics_core.registry.metric_names` of ``"agent"``).
AGENT_METRIC_NAMES = (
    "exec_rate", "success_rate", "percent_complete",
    "action_distinct_1", "action_distinct_2", "action_distinct_3", "action_entropy", "duplicate_episode_rate",
    "episode_length_ks", "episode_return_ks",
)
#: Action n-gram orders of the ``action_distinct_<n>`` metrics.
ACTION_DISTINCT_ORDERS = (1, 2, 3)


def _check_episodes(value, name: str) -> Episodes:
    if not isinstance(value, Episodes):
        raise ValueError(f"{name}: expected metrics_core.agents.Episodes, got {type(value).__name__}")
    return value


def agent_suite(
    round_episodes: Episodes,
    reference_episodes: Episodes,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Every defined agent metric of one round, keyed by :data:`AGENT_METRIC_NAMES`, in that order.

    Left out, as undefined: ``success_rate`` when no round episode reports success, ``percent_complete`` when
    none declares goals, ``action_distinct_<n>`` when no episode has :math:`n` steps, ``episode_return_ks``
    when the round or the reference has no episode with rewards. Values are :class:`Estimate`: ``exec_rate``,
    ``success_rate``, ``percent_complete`` and ``duplicate_episode_rate`` carry bootstrap intervals (episodes
    resampled, every one with ``seed``); the distinct-n, entropy and KS values are point estimates
    (``ci_low`` etc. None).

    Args:
        round_episodes: the round's :class:`Episodes`.
        reference_episodes: the reference's :class:`Episodes` (for the two KS distances).
        n_boot: bootstrap replicates (0: point estimates only).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> rnd = Episodes(actions=[["ls", "cd"], ["ls", "cd"]], errors=[[False, True], [False, False]],
        ...                success=[True, False])
        >>> ref = Episodes(actions=[["ls"], ["cd", "ls"]], errors=[[False], [False, False]])
        >>> out = agent_suite(rnd, ref, n_boot=0)
        >>> list(out)
        ['exec_rate', 'success_rate', 'action_distinct_1', 'action_distinct_2', 'action_entropy', \
'duplicate_episode_rate', 'episode_length_ks']
        >>> out["exec_rate"].value, out["duplicate_episode_rate"].value, out["episode_length_ks"].value
        (0.75, 0.5, 0.5)
    """
    _check_bootstrap(n_boot, level)
    seed = _check_seed(seed)
    rnd = _check_episodes(round_episodes, "round_episodes")
    ref = _check_episodes(reference_episodes, "reference_episodes")
    boot = {"n_boot": n_boot, "level": level, "seed": seed}

    out: dict[str, Estimate] = {"exec_rate": exec_rate(rnd.errors, **boot)}
    if any(s is not None for s in rnd.success):
        out["success_rate"] = success_rate(rnd.success, **boot)
    if any(g is not None for g in rnd.goals_total):
        out["percent_complete"] = percent_complete(rnd.goals_achieved, rnd.goals_total, **boot)
    for n in ACTION_DISTINCT_ORDERS:
        value = action_distinct_n(rnd.actions, n)
        if not math.isnan(value):
            out[f"action_distinct_{n}"] = Estimate(value)
    out["action_entropy"] = Estimate(action_entropy(rnd.actions))
    out["duplicate_episode_rate"] = duplicate_episode_rate(rnd.actions, **boot)
    out["episode_length_ks"] = Estimate(episode_length_ks(rnd.actions, ref.actions))
    if any(r is not None for r in rnd.rewards) and any(r is not None for r in ref.rewards):
        out["episode_return_ks"] = Estimate(episode_return_ks(rnd.rewards, ref.rewards))
    return {name: out[name] for name in AGENT_METRIC_NAMES if name in out}
