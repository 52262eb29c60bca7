r"""Action diversity of an agent round: distinct-n and entropy of actions, duplicate episodes.

Part of :mod:`metrics_core.agents` (its docstring states the round's layout and the uncertainty rules).
Actions play the part words play in :mod:`metrics_core.text.lexical`: each step's action is one token, an
episode one sample, and the definitions (n-grams within a sample, pooled; entropy in bits; a duplicate repeats
an earlier sample) are that module's.
"""

from __future__ import annotations

import math

import numpy as np

from metrics_core._checks import _check_actions, _check_order
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, mean_estimate


def _ngram_counts(actions: list[tuple[str, ...]], n: int) -> np.ndarray:
    """Occurrences of every distinct action n-gram, n-grams taken within each episode and pooled."""
    counts: dict[tuple[str, ...], int] = {}
    for episode in actions:
        for i in range(len(episode) - n + 1):
            gram = episode[i:i + n]
            counts[gram] = counts.get(gram, 0) + 1
    return np.fromiter(counts.values(), dtype=np.int64, count=len(counts))


def action_distinct_n(actions, n: int) -> float:
    r"""Distinct-n of the round's actions (Li et al., NAACL 2016; survey §7.3): unique over total action n-grams.

    .. math:: \text{ActionDistinct-}n = \frac{|\{\text{distinct } n\text{-grams}\}|}{\#\,n\text{-grams}},

    each step's action one token, n-grams taken within each episode (never across two) and pooled over the
    round. Range (0, 1], higher is better: a round whose episodes converge on one action sequence repeats its
    n-grams and falls towards 0. NaN when no episode has :math:`n` steps. Point estimate (see the package
    docstring).

    Args:
        actions: ``[E]`` non-empty lists of ``str``, one action per step.
        n: the n-gram order (``int`` >= 1).

    Example:
        >>> round_ = [["ls", "cd", "ls", "cd"], ["ls", "cd"]]  # unigrams: 2 of 6; bigrams: 2 of 4
        >>> action_distinct_n(round_, 1), action_distinct_n(round_, 2)
        (0.3333333333333333, 0.5)
        >>> action_distinct_n([["ls"]], 2)
        nan
    """
    n = _check_order(n)
    counts = _ngram_counts(_check_actions(actions), n)
    total = int(counts.sum())
    return float(counts.shape[0]) / total if total else math.nan


def action_entropy(actions) -> float:
    r"""Shannon entropy in bits of the round's action distribution (Zhang et al., NeurIPS 2018; survey §7.3).

    .. math:: \text{ActionEntropy} = -\sum_{a \in \mathcal{A}} p(a) \log_2 p(a),

    :math:`p` the empirical distribution of the actions of all the round's steps (unigrams, pooled), base 2
    as :func:`metrics_core.text.ngram_entropy`. Range :math:`[0, \log_2 |\mathcal{A}|]`, higher is better
    (more even use of the actions); 0 when every step takes one action. Point estimate.

    Args:
        actions: ``[E]`` non-empty lists of ``str``, one action per step.

    Example:
        >>> action_entropy([["ls", "cd"], ["cat", "rm"]]), action_entropy([["ls", "ls"], ["ls"]])
        (2.0, 0.0)
    """
    counts = _ngram_counts(_check_actions(actions), 1)
    p = counts / float(counts.sum())
    return float(max(0.0, -(p * np.log2(p)).sum()))


def duplicate_episode_indicator(actions) -> np.ndarray:
    """``[E]`` bool: episode ``i``'s whole action sequence equals an earlier episode's (actions compared exactly).

    Example:
        >>> duplicate_episode_indicator([["ls", "cd"], ["ls"], ["ls", "cd"], ["ls", "cd"]]).tolist()
        [False, False, True, True]
    """
    actions = _check_actions(actions)
    seen: set[tuple[str, ...]] = set()
    out = np.zeros(len(actions), dtype=bool)
    for i, episode in enumerate(actions):
        out[i] = episode in seen
        seen.add(episode)
    return out


def duplicate_episode_rate(actions, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0) -> Estimate:
    r"""Share of episodes whose whole action sequence repeats an earlier episode's (survey §7.3).

    .. math:: \text{DuplicateEpisodeRate} = \frac1E \sum_{e=1}^E 1[\exists f < e: \mathbf a_f = \mathbf a_e],

    :math:`\mathbf a_e` the action sequence of episode :math:`e` (same length, equal actions step by step; no
    normalisation). As for :func:`metrics_core.text.exact_duplicate_rate`, :math:`k` copies of one sequence
    add :math:`k-1`. Range [0, 1 - 1/E], lower is better: a collapsed policy replays one trajectory. The
    interval bootstraps the mean of the fixed per-episode indicators.

    Args:
        actions: ``[E]`` non-empty lists of ``str``, one action per step.
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> duplicate_episode_rate([["ls", "cd"], ["ls"], ["ls", "cd"], ["ls", "cd"]]).value
        0.5
    """
    return mean_estimate(duplicate_episode_indicator(actions), n_boot=n_boot, level=level, seed=seed)
