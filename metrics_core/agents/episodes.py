r"""The episodes of one agent round (or of the reference), validated once: :class:`Episodes`.

Part of :mod:`metrics_core.agents` (its docstring states the round's layout and the uncertainty rules).
"""

from __future__ import annotations

from dataclasses import dataclass

from metrics_core._checks import (
    _check_actions,
    _check_goals,
    _check_per_episode,
    _check_step_flags,
    _check_step_rewards,
    _is_flag,
)


@dataclass(frozen=True)
class Episodes:
    r"""The parallel per-episode fields of an agent round, validated and stored as tuples.

    Each field has one item per episode (:math:`E \ge 1` episodes). ``rewards``, ``success`` and the goals may
    be left ``None`` as a whole: no episode reports them (stored as :math:`E` ``None``). Bad input raises
    ValueError naming the field and the episode (and step), e.g.
    ``actions[3]: expected a non-empty list of str (an episode needs at least one step), got an empty list``.

    Args:
        actions: ``[E]`` non-empty lists of ``str``, one action per step.
        errors: ``[E]`` lists of ``bool``, one per step of the episode's actions (True: the step raised an error).
        rewards: ``[E]`` lists of finite numbers, one per step, or ``None`` for an episode without rewards;
            ``None``: no episode has rewards.
        success: ``[E]`` ``bool`` or ``None`` (not reported); ``None``: no episode reports success.
        goals_achieved: ``[E]`` ``int`` (sub-goals achieved) or ``None``; ``None``: no episode declares goals.
        goals_total: ``[E]`` ``int`` >= 1 (sub-goals declared, at least ``goals_achieved``) or ``None``, ``None``
            exactly where ``goals_achieved`` is.

    Example:
        >>> ep = Episodes(actions=[["ls", "cd a"], ["ls"]], errors=[[False, True], [False]],
        ...               rewards=[[0, 1.5], None], success=[True, None], goals_achieved=[1, None],
        ...               goals_total=[2, None])
        >>> len(ep), ep.actions, ep.rewards, ep.goals_total
        (2, (('ls', 'cd a'), ('ls',)), ((0.0, 1.5), None), (2, None))
        >>> Episodes(actions=[["ls"]], errors=[[False]]).success
        (None,)
        >>> Episodes(actions=[["ls"]], errors=[[0]])
        Traceback (most recent call last):
        ...
        ValueError: errors[0][0]: expected bool, got int
    """

    actions: tuple[tuple[str, ...], ...]
    errors: tuple[tuple[bool, ...], ...]
    rewards: tuple[tuple[float, ...] | None, ...] | None = None
    success: tuple[bool | None, ...] | None = None
    goals_achieved: tuple[int | None, ...] | None = None
    goals_total: tuple[int | None, ...] | None = None

    def __post_init__(self) -> None:
        actions = _check_actions(self.actions)
        n = len(actions)
        lengths = [len(a) for a in actions]
        errors = _check_step_flags(self.errors, "errors", lengths)
        rewards = [None] * n if self.rewards is None else _check_step_rewards(self.rewards, "rewards", lengths)
        success = [None] * n if self.success is None else \
            [None if s is None else bool(s) for s in _check_per_episode(self.success, "success", "bool", _is_flag, n)]
        if self.goals_achieved is None and self.goals_total is None:
            goals = [None] * n
        else:
            goals = _check_goals([None] * n if self.goals_achieved is None else self.goals_achieved,
                                 [None] * n if self.goals_total is None else self.goals_total, n)
        fields = {"actions": actions, "errors": errors, "rewards": rewards, "success": success,
                  "goals_achieved": [None if g is None else g[0] for g in goals],
                  "goals_total": [None if g is None else g[1] for g in goals]}
        for field, value in fields.items():
            object.__setattr__(self, field, tuple(value))

    def __len__(self) -> int:
        return len(self.actions)
