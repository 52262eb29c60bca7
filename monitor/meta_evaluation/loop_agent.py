r"""L6-agent: a gridworld policy retrained on its own successful episodes, losing its action diversity.

The collapse loop (benchmark loop L6, modality ``"agent"``) is self-imitation, also called rejection-sampling
fine-tuning: sample episodes from the current policy, keep the successful ones, fit the next policy to imitate
them, repeat. It is the core of self-imitation learning (Oh et al., ICML 2018, "Self-Imitation Learning"), of
STaR (Zelikman et al., NeurIPS 2022, "STaR: Bootstrapping Reasoning With Reasoning") and of ReST (Gulcehre et
al. 2023, "Reinforced Self-Training (ReST) for Language Modeling"). Filtering on success improves the policy;
refitting by maximum likelihood on a finite sample, with no smoothing, also makes every action the sample
happens to miss vanish for good, so action diversity collapses while the success rate may even rise. A monitor
that watches only success would call this progress; the benchmark asks it to see the narrowing.

Environment (deterministic, :data:`GRID`): a 6 x 6 gridworld, row 0 at the top, with five wall cells::

    . . . . . .
    . . # . . .
    . . # . # .
    . . . . # .
    . # . . . .
    . . . . . .

An episode's start and goal are a uniform ordered pair of distinct free cells (31 free cells, 930 pairs), drawn
from the episode's stream. Actions (:data:`ACTIONS`): ``"north"`` (row - 1), ``"south"`` (row + 1), ``"east"``
(column + 1), ``"west"`` (column - 1) and ``"wait"``. A move into a wall or off the grid is a failed step: the
agent stays put and the step's ``error`` is ``"bumped into a wall"`` or ``"bumped into the border"``; any other
step has ``"error": null``. Every step earns ``-0.01``, except the step that reaches the goal, which earns
``+1`` and ends the episode. An episode also ends after ``max_steps`` steps (default 20). ``success`` is
"reached the goal"; ``goals`` is two sub-goals, ``[halfway, goal]``: ``halfway`` is true once the agent has
stood at Manhattan distance at most ``d0 // 2`` from the goal, ``d0`` the start's distance (so the goal step
counts), ``goal`` equals ``success``. A step's ``observation`` is the position after it, ``"r<row>c<col>"``.
See :func:`play_episode` for one episode move by move.

Policy: a table :math:`\pi(a \mid c)` over the 5 actions for each of 16 contexts (:data:`CONTEXTS`): the
direction of the goal (the signs of its row and column offsets: 8 directions) and whether the previous step
failed (so a policy can learn to try something else after a bump). Generation 0 (:func:`initial_policy`) is
fixed and the same for every seed: in each context an action that brings the agent closer to the goal has
weight 1, a sideways move (along an axis where the goal is level with the agent) 0.6, a move away 0.4 and
``wait`` 0.3 (after a bump: 1, 0.8, 0.6, 0.3), normalised. It reaches the goal in 47% of episodes
(``truth["success_rate"][0]`` = 0.474 at ``max_steps=20``, exact), with mean conditional action entropy
1.509 nats of a possible :math:`\ln 5 = 1.609`; its episodes take 15.5 steps on average.

Self-training (``workflow="replace"``, the loop): generation ``g`` samples ``n_samples`` (``M``) episodes;
generation ``g + 1`` is the maximum-likelihood table fitted to the (context, action) pairs of the *successful*
ones,

.. math:: \pi_{g+1}(a \mid c) = \frac{n_g(c, a)}{\sum_{a'} n_g(c, a')},

with no smoothing, so :math:`\pi_{g+1}(a \mid c) = 0` whenever no successful episode took ``a`` in ``c``, and
then in every later generation. A context that no successful episode visited keeps generation ``g``'s row (an
unseen context gives the likelihood nothing to fit). Two forces lower the entropy: the success filter (policy
improvement: it favours goal-directed actions, and would sharpen the policy even with infinitely many samples,
though it weakens as success nears 1) and the finite-sample drift of the refit (neutral, and absorbing at
zero), which is the collapse part and is what ``M`` controls.

Ground truth (from the true policy tables :math:`\pi_g`, never from sampled episodes; :func:`agent_truth`):

* ``action_entropy``: :math:`H_g = \sum_c w(c)\, H(\pi_g(\cdot \mid c))` in nats, the mean conditional action
  entropy, with the weights :math:`w` fixed for the whole run: generation 0's expected step count in each
  context, normalised, computed *exactly* by propagating the start-goal distribution through the
  deterministic environment (:func:`context_visits`). Fixed weights make :math:`H_g` a function of the
  policy alone (a policy that stops visiting a context cannot lower ``H`` by it).
* ``success_rate``: the exact probability that :math:`\pi_g` reaches the goal within ``max_steps``, by the
  same propagation.
* ``action_support``: the number of (context, action) pairs with :math:`\pi_g(a \mid c) > 0`, of 80.

Under ``replace`` ``action_support`` never rises (a vanished action cannot come back). ``action_entropy`` falls
but not monotonically: one context's refit can come out flatter than its parent, and late in a run, when
few actions are left, the weighted mean rises now and then by at most 0.05 nats (seeds 0-29, measured);
for those seeds it never returned above :math:`H_0 / 2` once below it.

Onset (``replace`` only): the first generation with :math:`H_g < H_0 / 2`, half of generation 0's action
diversity gone ("more than half of the entropy lost", the same halving rule as L3 and L4). Entropy is the
diversity measure of a categorical policy (it is what entropy-regularised RL keeps up, e.g. Haarnoja et al.
2018); the success filter alone stays above the halving threshold for 40 generations (see Sizes), so
crossing it within the run takes the finite-sample collapse.

Sizes: ``M = n_samples = 120`` episodes per generation (about 57 successful at generation 0). The onset
falls at generation 8, 14, 14, 18, 12, 10, 10, 10, 11, 11 for seeds 0-9 (8-18, median 12, for seeds 0-29;
measured), mid-way through the default 30 generations, while ``success_rate`` rises from 0.47 to about 0.85
and ``action_support`` falls from 80 to 26-32. The finite-sample drift is what brings the onset inside the
run: the *expected* refit (infinitely many samples, the success filter alone, computed exactly by the same
propagation) keeps :math:`H_{30} = 0.56\,H_0` and :math:`H_{40} = 0.51\,H_0`, while with ``M = 20`` the onset
comes at generation 1-3 and with ``M = 400`` at 19-26 (seeds 0-9). Time (one CPU core, measured): the
training sample and refit take under 1 ms a generation, the exact truth about 2 ms, the ``n_audit = 300``
audit episodes about 6 ms as JSON objects: a generation takes about 9 ms, a default 31-round run about 0.25 s.

Controls (any alarm on C0 is a false alarm; ``onset`` is always None):

* C0 ``workflow="no_feedback"``: every round is a fresh draw of generation 0's policy; the truth is constant.
* C1 ``workflow="accumulate"`` (Gerstgrasser et al. 2024, "Is model collapse inevitable?"): generation
  ``g + 1`` is fitted on the successful episodes of *all* samples so far, generation 0's (the "real"
  demonstrations of the initial policy) included, so no action generation 0 used successfully ever vanishes.
* C2 ``workflow="fresh_real"``: generation ``g + 1`` is fitted on the successful episodes among ``M - r`` own
  episodes plus ``r = round(fresh_fraction * M)`` fresh episodes of generation 0's policy.

The success filter is applied to every training set alike, so C1 and C2 sharpen too (policy improvement is
not collapse): at the default sizes, by generation 30 (seeds 0-9, measured) C1 keeps :math:`H_{30}/H_0` of
0.73-0.82 and 68-78 of the 80 actions, C2 0.59-0.67 and 52-64 actions, against 0.21-0.35 and 26-32 for the
loop. Neither control crosses the onset threshold in 30 generations.

Rounds and reference are lists of episode dicts (JSON-serialisable; :func:`episodes_jsonl` writes them as
``.jsonl``), parsed by :func:`monitor.inputs.episodes.episodes_from_objects`. Every audited round is
``n_audit`` fresh episodes of generation ``g``'s policy; the reference is ``n_reference`` episodes of
generation 0's policy from its own stream.

Meta-evaluation (:mod:`monitor.meta_evaluation.runner`): :data:`LOOPS` and :data:`CONTROLS` register the loop
and C0-C2 (at :data:`SUGGESTED_SCHEDULE` in the full run, :data:`QUICK_SCHEDULE` in quick mode); the pure-drift
control ``D0-L6-agent`` (generation 0's policy on a moving task distribution) is
:func:`monitor.meta_evaluation.drift.drift_agent_loop`, the null's pool is generation 0's episodes
(:func:`monitor.meta_evaluation.pools.draw_pool`) and the oracle the policies' likelihood ratio
(:func:`monitor.meta_evaluation.oracle.agent_log_ratios`).

Randomness: one :class:`numpy.random.SeedSequence` per purpose and generation (the streams of
:mod:`monitor.meta_evaluation.loop_common`: the training sample of generation ``g``, the fresh real episodes
of C2, the reference, the audit sample of generation ``g``), so the policy trajectory and ``truth`` do not
depend on ``audit_every`` and a loop and its controls share generation 0, its training sample (C1) and the
reference for equal seeds.

>>> trace = agent_loop(0, 3, n_samples=20, n_audit=5, n_reference=4)
>>> trace.name, trace.modality, trace.kind, len(trace.reference), [len(r) for r in trace.rounds]
('L6-agent', 'agent', 'collapse', 4, [5, 5, 5, 5])
>>> sorted(trace.rounds[0][0]), sorted(trace.rounds[0][0]["steps"][0])
(['goals', 'steps', 'success'], ['action', 'error', 'observation', 'reward'])
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable

import numpy as np

from monitor.meta_evaluation.loop_common import (
    CONTROL_WORKFLOWS, _STREAM_DYNAMICS, _STREAM_REAL, _STREAM_REFERENCE, _audit_stream, _check_int, _check_run,
    _check_workflow, _fresh_count, _stream, _trace, audited_generations, first_generation,
)
from monitor.meta_evaluation.trace import LoopTrace

# --- the environment ---------------------------------------------------------------------------------------------

GRID = (
    "......",
    "..#...",
    "..#.#.",
    "....#.",
    ".#....",
    "......",
)
"""The gridworld, row 0 first: ``"#"`` a wall, ``"."`` a free cell."""

ACTIONS = ("north", "south", "east", "west", "wait")
"""The action names, in policy-column order."""

_MOVES = ((-1, 0), (1, 0), (0, 1), (0, -1), (0, 0))  # (row, column) offset of each action
_N_ROWS, _N_COLS = len(GRID), len(GRID[0])
_FREE = tuple((r, c) for r in range(_N_ROWS) for c in range(_N_COLS) if GRID[r][c] == ".")
_INDEX = {cell: i for i, cell in enumerate(_FREE)}
_N_FREE = len(_FREE)

WALL_ERROR = "bumped into a wall"
BORDER_ERROR = "bumped into the border"
STEP_REWARD = -0.01
GOAL_REWARD = 1.0

# Contexts: 8 goal directions (sign of the row offset, sign of the column offset; never both 0) x bumped.
_DIRECTIONS = tuple((dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0))
_DIRECTION_NAMES = {(-1, -1): "north-west", (-1, 0): "north", (-1, 1): "north-east", (0, -1): "west",
                    (0, 1): "east", (1, -1): "south-west", (1, 0): "south", (1, 1): "south-east"}
CONTEXTS = tuple(f"goal {_DIRECTION_NAMES[d]}, {'after a bump' if bumped else 'last step ok'}"
                 for bumped in (0, 1) for d in _DIRECTIONS)
"""The 16 policy contexts, in policy-row order: index ``8 * bumped + direction``."""

DEFAULT_N_SAMPLES = 120
DEFAULT_N_AUDIT = 300
DEFAULT_N_REFERENCE = 300
DEFAULT_MAX_STEPS = 20
DEFAULT_FRESH_FRACTION = 0.1
ONSET_FRACTION = 0.5

# Generation-0 weights: (toward the goal, sideways, away, wait), for the last step ok / after a bump.
_WEIGHTS = {0: (1.0, 0.6, 0.4, 0.3), 1: (1.0, 0.8, 0.6, 0.3)}


def _move(cell: tuple[int, int], action: int) -> tuple[tuple[int, int], str | None]:
    r, c = cell[0] + _MOVES[action][0], cell[1] + _MOVES[action][1]
    if not (0 <= r < _N_ROWS and 0 <= c < _N_COLS):
        return cell, BORDER_ERROR
    if GRID[r][c] == "#":
        return cell, WALL_ERROR
    return (r, c), None


def _context(cell: tuple[int, int], goal: tuple[int, int], bumped: bool) -> int:
    direction = (int(np.sign(goal[0] - cell[0])), int(np.sign(goal[1] - cell[1])))
    return 8 * int(bumped) + _DIRECTIONS.index(direction)


def _distance(a: tuple[int, int], b: tuple[int, int]) -> int:
    return abs(a[0] - b[0]) + abs(a[1] - b[1])


def _check_cell(cell, name: str) -> tuple[int, int]:
    if not (isinstance(cell, (tuple, list)) and len(cell) == 2 and tuple(cell) in _INDEX):
        raise ValueError(f"{name}: expected a free cell (row, column) of GRID, got {cell!r}")
    return int(cell[0]), int(cell[1])


def play_episode(start, goal, actions: Iterable, *, max_steps: int = DEFAULT_MAX_STEPS) -> dict:
    r"""One episode from ``start`` to ``goal`` taking ``actions`` (names or column indices), as an episode dict.

    The episode ends at the goal or after ``max_steps`` steps; acting after that is an error, so every
    episode of the loop can be replayed exactly from its start, goal and actions.

    Args:
        start: free cell ``(row, column)``.
        goal: another free cell.
        actions: the actions taken, in order (at least one).
        max_steps: the step limit.

    >>> e = play_episode((0, 0), (0, 2), ["north", "east", "east"])
    >>> [(s["action"], s["observation"], s["error"], s["reward"]) for s in e["steps"]]
    [('north', 'r0c0', 'bumped into the border', -0.01), ('east', 'r0c1', None, -0.01), ('east', 'r0c2', None, 1.0)]
    >>> e["success"], e["goals"]
    (True, [True, True])
    >>> play_episode((1, 1), (0, 0), ["east"])["steps"][0]["error"]
    'bumped into a wall'
    """
    start, goal = _check_cell(start, "start"), _check_cell(goal, "goal")
    if start == goal:
        raise ValueError(f"goal: expected a cell other than the start, got {goal!r}")
    max_steps = _check_int(max_steps, "max_steps", 1)
    names = [ACTIONS[a] if isinstance(a, (int, np.integer)) and not isinstance(a, bool) and 0 <= a < len(ACTIONS)
             else a for a in actions]
    if not names or any(a not in ACTIONS for a in names):
        raise ValueError(f"actions: expected a non-empty sequence of {ACTIONS} or their indices, got {actions!r}")
    halfway_distance = _distance(start, goal) // 2
    cell, steps, halfway, success = start, [], False, False
    for t, name in enumerate(names):
        if success or t >= max_steps:
            raise ValueError(f"actions: the episode ended after {t} steps, got {len(names)} actions")
        cell, error = _move(cell, ACTIONS.index(name))
        success = cell == goal
        halfway = halfway or _distance(cell, goal) <= halfway_distance
        steps.append({"action": name, "observation": f"r{cell[0]}c{cell[1]}", "error": error,
                      "reward": GOAL_REWARD if success else STEP_REWARD})
    return {"steps": steps, "success": success, "goals": [halfway, success]}


# --- precomputed tables over states (cell, goal, bumped) -------------------------------------------------------


def _tables() -> dict[str, np.ndarray]:
    nxt = np.empty((_N_FREE, 5), dtype=np.int64)
    bump = np.empty((_N_FREE, 5), dtype=bool)
    for i, cell in enumerate(_FREE):
        for a in range(5):
            moved, error = _move(cell, a)
            nxt[i, a], bump[i, a] = _INDEX[moved], error is not None
    rows = np.array([r for r, _ in _FREE])
    cols = np.array([c for _, c in _FREE])
    direction = np.full((3, 3), -1, dtype=np.int64)
    for k, (dr, dc) in enumerate(_DIRECTIONS):
        direction[dr + 1, dc + 1] = k
    # context[cell, goal, bumped]; -1 where cell == goal (never acted in)
    d = direction[np.sign(rows[None, :] - rows[:, None]) + 1, np.sign(cols[None, :] - cols[:, None]) + 1]
    context = np.stack([np.where(d >= 0, d, -1), np.where(d >= 0, d + 8, -1)], axis=2)
    pairs = np.array([(s, g) for s in range(_N_FREE) for g in range(_N_FREE) if s != g], dtype=np.int64)
    return dict(next=nxt, bump=bump, context=context, pairs=pairs)


_T = _tables()


def initial_policy() -> np.ndarray:
    r"""Generation 0's policy, ``[16, 5]``: row = context (:data:`CONTEXTS`), column = action (:data:`ACTIONS`).

    A move is *toward* the goal when it lowers the row or column offset, *away* when it raises it, *sideways*
    when it moves along an axis on which the goal is level; weights (toward, sideways, away, wait) are
    (1, 0.6, 0.4, 0.3), or (1, 0.8, 0.6, 0.3) after a bump, normalised per context.

    >>> p = initial_policy()
    >>> p.shape, bool(np.allclose(p.sum(axis=1), 1.0))
    ((16, 5), True)
    >>> dict(zip(ACTIONS, p[CONTEXTS.index("goal north, last step ok")].round(3).tolist()))
    {'north': 0.345, 'south': 0.138, 'east': 0.207, 'west': 0.207, 'wait': 0.103}
    """
    policy = np.empty((16, 5))
    for bumped in (0, 1):
        toward, sideways, away, wait = _WEIGHTS[bumped]
        for k, (dr, dc) in enumerate(_DIRECTIONS):
            row = []
            for mr, mc in _MOVES[:4]:
                sign, move = (dr, mr) if mr else (dc, mc)
                row.append(sideways if sign == 0 else toward if sign == move else away)
            policy[8 * bumped + k] = np.array(row + [wait]) / (sum(row) + wait)
    return policy


def _check_policy(policy) -> np.ndarray:
    p = np.asarray(policy, dtype=float)
    if p.shape != (16, 5) or not np.all(np.isfinite(p)) or np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0):
        raise ValueError(f"policy: expected a [16, 5] table of probabilities with rows summing to 1, got shape "
                         f"{p.shape}")
    return p


# --- sampling ----------------------------------------------------------------------------------------------------


def _simulate(policy: np.ndarray, n: int, rng: np.random.Generator, max_steps: int,
              pair_probabilities: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``n`` episodes of ``policy``, vectorised: starts, goals, padded actions and contexts (-1 past the end).

    ``pair_probabilities``: ``[930]`` probabilities of the start-goal pairs (``_T["pairs"]``), None: uniform
    (the loop's; the pure-drift control D0-L6 moves them, :mod:`monitor.meta_evaluation.drift`). ``pair`` in
    the result is each episode's index into ``_T["pairs"]``.
    """
    if pair_probabilities is None:
        index = rng.integers(len(_T["pairs"]), size=n)
    else:
        index = rng.choice(len(_T["pairs"]), size=n, p=pair_probabilities)
    pair = _T["pairs"][index]
    u = rng.random((max_steps, n))
    cdf = np.cumsum(policy, axis=1)
    last = 4 - np.argmax(policy[:, ::-1] > 0, axis=1)  # the last action of positive probability, per context
    cdf[np.arange(5)[None, :] >= last[:, None]] = np.inf  # never pick a zero-probability action by rounding
    cell, goal = pair[:, 0].copy(), pair[:, 1]
    bumped = np.zeros(n, dtype=np.int64)
    actions = np.full((n, max_steps), -1, dtype=np.int64)
    contexts = np.full((n, max_steps), -1, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    for t in range(max_steps):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        ctx = _T["context"][cell[idx], goal[idx], bumped[idx]]
        a = (u[t, idx, None] >= cdf[ctx]).sum(axis=1)
        actions[idx, t], contexts[idx, t] = a, ctx
        bumped[idx] = _T["bump"][cell[idx], a]
        cell[idx] = _T["next"][cell[idx], a]
        active[idx] = cell[idx] != goal[idx]
    return dict(start=pair[:, 0], goal=goal, actions=actions, contexts=contexts, success=~active, pair=index)


def _render(sim: dict[str, np.ndarray], max_steps: int) -> list[dict]:
    episodes = []
    for start, goal, row in zip(sim["start"].tolist(), sim["goal"].tolist(), sim["actions"].tolist()):
        taken = [a for a in row if a >= 0]
        episodes.append(play_episode(_FREE[start], _FREE[goal], taken, max_steps=max_steps))
    return episodes


def sample_episodes(policy, n: int, rng: np.random.Generator, *, max_steps: int = DEFAULT_MAX_STEPS) -> list[dict]:
    r"""``n`` episodes of ``policy`` as episode dicts, start-goal pairs and actions drawn from ``rng``.

    Args:
        policy: ``[16, 5]`` table (:func:`initial_policy`).
        n: number of episodes.
        rng: the stream.
        max_steps: the step limit.

    >>> e = sample_episodes(initial_policy(), 2, np.random.default_rng(0))
    >>> len(e), all(1 <= len(x["steps"]) <= 20 for x in e)
    (2, True)
    """
    policy = _check_policy(policy)
    n, max_steps = _check_int(n, "n", 1), _check_int(max_steps, "max_steps", 1)
    return _render(_simulate(policy, n, rng, max_steps), max_steps)


def _success_counts(sim: dict[str, np.ndarray]) -> np.ndarray:
    """``[16, 5]`` (context, action) counts of the successful episodes of a simulation."""
    ctx, act = sim["contexts"][sim["success"]], sim["actions"][sim["success"]]
    taken = act >= 0
    return np.bincount(ctx[taken] * 5 + act[taken], minlength=80).reshape(16, 5).astype(float)


def _refit(counts: np.ndarray, previous: np.ndarray) -> np.ndarray:
    totals = counts.sum(axis=1, keepdims=True)
    return np.where(totals > 0, counts / np.where(totals > 0, totals, 1.0), previous)


# --- dynamics and truth ------------------------------------------------------------------------------------------


def agent_policies(seed: int, n_generations: int, *, workflow: str = "replace", n_samples: int = DEFAULT_N_SAMPLES,
                   max_steps: int = DEFAULT_MAX_STEPS, fresh_fraction: float = DEFAULT_FRESH_FRACTION) -> np.ndarray:
    r"""True policies of every generation of L6-agent or a control (no audit episodes); see the module docstring.

    Args:
        seed: run seed.
        n_generations: last generation ``N``.
        workflow: ``"replace"``, ``"no_feedback"``, ``"accumulate"`` or ``"fresh_real"``.
        n_samples: ``M``, episodes sampled per generation for training.
        max_steps: the episode step limit.
        fresh_fraction: share of generation-0 episodes in the C2 training sample.

    Returns:
        ``[N + 1, 16, 5]`` tables, index = generation.

    >>> p = agent_policies(0, 5, n_samples=30)
    >>> p.shape, bool((p[5] > 0).sum() <= (p[0] > 0).sum()), bool(np.allclose(p.sum(axis=2), 1.0))
    ((6, 16, 5), True, True)
    """
    seed, n_generations, _ = _check_run(seed, n_generations, 1)
    workflow = _check_workflow(workflow)
    n_samples = _check_int(n_samples, "n_samples", 1)
    max_steps = _check_int(max_steps, "max_steps", 1)
    n_fresh = _fresh_count(fresh_fraction, n_samples, "n_samples") if workflow == "fresh_real" else 0
    policies = np.empty((n_generations + 1, 16, 5))
    policies[:] = initial_policy()
    if workflow == "no_feedback":
        return policies
    pooled = np.zeros((16, 5))
    for g in range(n_generations):
        own = _simulate(policies[g], n_samples - n_fresh, _stream(seed, _STREAM_DYNAMICS, g), max_steps)
        counts = _success_counts(own)
        if n_fresh:
            counts += _success_counts(_simulate(policies[0], n_fresh, _stream(seed, _STREAM_REAL, g), max_steps))
        if workflow == "accumulate":
            pooled += counts
            counts = pooled
        policies[g + 1] = _refit(counts, policies[g])
    return policies


def context_visits(policy, *, max_steps: int = DEFAULT_MAX_STEPS,
                   pair_probabilities: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    r"""Expected steps taken in each context per episode, and the success probability, computed exactly.

    Propagates the uniform start-goal distribution (or ``pair_probabilities``, ``[930]`` over ``_T["pairs"]``)
    through the deterministic environment: the state is (cell, goal, last step failed), the mass that reaches
    the goal leaves, ``max_steps`` steps.

    Returns:
        ``([16] expected step counts, P(reach the goal within max_steps))``.

    >>> waiting = np.zeros((16, 5)); waiting[:, 4] = 1.0  # "wait" forever
    >>> visits, success = context_visits(waiting, max_steps=3)
    >>> round(float(visits.sum()), 6), success
    (3.0, 0.0)
    """
    policy = _check_policy(policy)
    max_steps = _check_int(max_steps, "max_steps", 1)
    n_states = _N_FREE * _N_FREE * 2  # index (cell * N + goal) * 2 + bumped
    cell, goal, bumped = np.unravel_index(np.arange(n_states), (_N_FREE, _N_FREE, 2))
    context = _T["context"][cell, goal, bumped]
    live = context >= 0  # cell != goal
    next_cell = _T["next"][cell]  # [S, 5]
    next_state = (next_cell * _N_FREE + goal[:, None]) * 2 + _T["bump"][cell]
    done = next_cell == goal[:, None]
    mass = np.zeros(n_states)
    pairs = _T["pairs"]
    mass[(pairs[:, 0] * _N_FREE + pairs[:, 1]) * 2] = (1.0 / len(pairs) if pair_probabilities is None
                                                       else np.asarray(pair_probabilities, dtype=float))
    visits, success = np.zeros(16), 0.0
    for _ in range(max_steps):
        visits += np.bincount(context[live], weights=mass[live], minlength=16)
        flow = mass[:, None] * np.where(live[:, None], policy[np.maximum(context, 0)], 0.0)
        success += float(flow[done].sum())
        mass = np.bincount(next_state[~done], weights=flow[~done], minlength=n_states)
    return visits, success


def _entropies(policies: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(policies > 0, -policies * np.log(policies), 0.0)
    return terms.sum(axis=-1)


def agent_truth(policies, *, max_steps: int = DEFAULT_MAX_STEPS) -> dict[str, np.ndarray]:
    r"""Per-generation truth of L6-agent: ``action_entropy``, ``success_rate`` and ``action_support``.

    ``action_entropy`` weights each context's entropy (nats) by generation 0's exact expected visits
    (:func:`context_visits` of ``policies[0]``), the same weights for every generation.

    Args:
        policies: ``[G, 16, 5]`` true policies (:func:`agent_policies`).
        max_steps: the episode step limit.

    >>> t = agent_truth(np.stack([initial_policy(), np.full((16, 5), 0.2)]))
    >>> round(float(t["action_entropy"][1]), 4) == round(float(np.log(5)), 4), t["action_support"].tolist()
    (True, [80, 80])
    """
    policies = np.asarray(policies, dtype=float)
    visits, _ = context_visits(policies[0], max_steps=max_steps)
    weights = visits / visits.sum()
    return {  # one dot product per generation: equal policies give bit-equal entropies
        "action_entropy": np.array([float(np.dot(h, weights)) for h in _entropies(policies)]),
        "success_rate": np.array([context_visits(p, max_steps=max_steps)[1] for p in policies]),
        "action_support": (policies > 0).sum(axis=(1, 2)),
    }


# --- the loop ----------------------------------------------------------------------------------------------------


def agent_loop(seed: int = 0, n_generations: int = 30, audit_every: int = 1, *, workflow: str = "replace",
               n_samples: int = DEFAULT_N_SAMPLES, n_audit: int = DEFAULT_N_AUDIT,
               n_reference: int = DEFAULT_N_REFERENCE, max_steps: int = DEFAULT_MAX_STEPS,
               fresh_fraction: float = DEFAULT_FRESH_FRACTION) -> LoopTrace:
    r"""L6-agent: a gridworld policy refitted on its own successful episodes, or a control (module docstring).

    Onset (``replace`` only): the first generation with ``truth["action_entropy"] < 0.5 * truth[...][0]``.

    Args:
        seed: run seed.
        n_generations: last simulated generation.
        audit_every: audit stride.
        workflow: ``"replace"`` (L6-agent), ``"no_feedback"`` (C0), ``"accumulate"`` (C1) or ``"fresh_real"``
            (C2).
        n_samples: ``M``, training episodes sampled per generation.
        n_audit: episodes per audit round.
        n_reference: episodes in the reference (generation 0's policy).
        max_steps: the episode step limit.
        fresh_fraction: share of generation-0 episodes in the C2 training sample.

    >>> c0 = agent_loop(0, 2, workflow="no_feedback", n_audit=3, n_reference=3)
    >>> c0.name, c0.kind, c0.onset, len(set(c0.truth["action_entropy"].tolist()))
    ('C0-L6-agent', 'control', None, 1)
    """
    seed, n_generations, audit_every = _check_run(seed, n_generations, audit_every)
    n_audit = _check_int(n_audit, "n_audit", 1)
    n_reference = _check_int(n_reference, "n_reference", 1)
    max_steps = _check_int(max_steps, "max_steps", 1)
    policies = agent_policies(seed, n_generations, workflow=workflow, n_samples=n_samples, max_steps=max_steps,
                              fresh_fraction=fresh_fraction)
    truth = agent_truth(policies, max_steps=max_steps)
    generations = audited_generations(n_generations, audit_every)
    rounds = [_render(_simulate(policies[g], n_audit, _audit_stream(seed, g), max_steps), max_steps)
              for g in generations]
    reference = _render(_simulate(policies[0], n_reference, _stream(seed, _STREAM_REFERENCE), max_steps), max_steps)
    onset = first_generation(truth["action_entropy"] < ONSET_FRACTION * truth["action_entropy"][0])
    params = dict(n_samples=n_samples, n_audit=n_audit, n_reference=n_reference, max_steps=max_steps,
                  workflow=workflow, fresh_fraction=fresh_fraction, n_generations=n_generations,
                  audit_every=audit_every)
    return _trace("L6-agent", workflow, "agent", seed, reference, rounds, generations, onset, truth, params)


def episodes_jsonl(episodes: Iterable[dict]) -> bytes:
    r"""Episodes as ``.jsonl`` bytes: one compact JSON object per line (keys in their order), UTF-8.

    >>> episodes_jsonl([{"steps": [{"action": "wait", "error": None}], "success": False}])
    b'{"steps":[{"action":"wait","error":null}],"success":false}\n'
    """
    return b"".join(json.dumps(e, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"
                    for e in episodes)


# --- registry (the meta-evaluation's loop L6 and its controls) ---------------------------------------------------

SUGGESTED_SCHEDULE = (30, 1)
"""Suggested ``(n_generations, audit_every)`` at the default sizes: 31 audited rounds, onset at generation 8-18
(seeds 0-29), mid-run."""

QUICK_SCHEDULE = (12, 2)
"""The meta-evaluation's quick mode (:data:`monitor.meta_evaluation.settings.QUICK_SCHEDULES`): 7 audited rounds."""

LOOPS: dict[str, Callable[..., LoopTrace]] = {"L6-agent": agent_loop}
"""The collapse loop by id, called as ``fn(seed, n_generations, audit_every=1, **overrides)``."""

CONTROLS: dict[str, Callable[..., LoopTrace]] = {
    f"{control}-L6-agent": functools.partial(agent_loop, workflow=workflow)
    for control, workflow in CONTROL_WORKFLOWS.items()
}
"""Controls by id (``C0-L6-agent``, ``C1-...``, ``C2-...``), called like :data:`LOOPS`."""
