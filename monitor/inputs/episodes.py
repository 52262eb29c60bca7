r"""Agent-trajectory rounds from ``.jsonl`` files: one episode per line, streamed, subsampled by episode, checked.

An episode is a JSON object with a ``steps`` array (at least one step) and, optionally, ``success`` (a
boolean) and ``goals`` (an array of booleans, or an object of goal name -> boolean: which sub-goals the episode
achieved). A step is an object with an ``action`` (a string, or any JSON value other than null, kept as its
canonical JSON text: keys sorted, no spaces) and, optionally, ``state`` and ``observation`` (not read),
``error`` (``true``, or a non-empty message string: the step failed; ``false``, ``null``, ``""`` or absent:
it did not) and ``reward`` (a finite number). An episode has rewards when any of its steps has one; its steps
without one count 0. Blank lines are skipped; the shared line rules are :mod:`monitor.inputs.files`'.

Each failure is one line naming the file, role, line and field, for example
``r.jsonl (round, round 3): line 7: steps[2]: no field 'action' (fields: error)``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.errors import InputError
from monitor.inputs.files import (
    DEFAULT_MAX_LINE_BYTES,
    _check_max_line_bytes,
    _check_max_samples,
    _check_readable_as,
    _existing_file,
    _extension,
    _iter_lines,
    _listing,
    _where,
    remembered,
    kept_items,
)
from monitor.inputs.records import _decode, _Number, _plain, _shown

STEPS_FIELD = "steps"
_STEP_SEPARATOR = "\n"  # between a text view's actions: never inside a token


@dataclass(frozen=True)
class LoadedEpisodes:
    """The kept episodes of one file, in file order; ``n_total`` is all of them.

    Per episode: ``actions`` (its steps' actions, canonical strings), ``errors`` (per step), ``rewards`` (per
    step, or None without any), ``success`` (None when not reported), ``goals_achieved`` / ``goals_total``
    (None without goals).
    """

    path: Path
    actions: tuple[tuple[str, ...], ...]
    errors: tuple[tuple[bool, ...], ...]
    rewards: tuple[tuple[float, ...] | None, ...]
    success: tuple[bool | None, ...]
    goals_achieved: tuple[int | None, ...]
    goals_total: tuple[int | None, ...]
    n_total: int
    fingerprint: str
    modality: str = "agent"

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def n_used(self) -> int:
        return len(self.actions)

    @property
    def texts(self) -> list[str]:
        """What an episode is embedded as: its actions, one per line."""
        return [_STEP_SEPARATOR.join(a) for a in self.actions]

    def take_rows(self, indices) -> "LoadedEpisodes":
        """The episodes at ``indices``, in that order (a pool's pseudo-round)."""
        idx = [int(i) for i in np.asarray(indices).ravel()]
        pick = lambda values: tuple(values[i] for i in idx)  # noqa: E731
        return LoadedEpisodes(self.path, pick(self.actions), pick(self.errors), pick(self.rewards),
                              pick(self.success), pick(self.goals_achieved), pick(self.goals_total),
                              len(idx), self.fingerprint)

    def to_jsonl(self) -> bytes:
        """The episodes as ``.jsonl`` that :func:`load_episodes` reads back to equal episodes (a split
        reference's parts are written so): an action as its canonical string, a failed step's ``error`` as
        ``true``, rewards per step, ``success``, and goals as that many booleans, the achieved ones first.

        >>> e = episodes_from_objects([{"steps": [{"action": "go", "error": "wall", "reward": 1}], "goals": {"a": False, "b": True}}], "g")
        >>> e.to_jsonl()
        b'{"steps":[{"action":"go","error":true,"reward":1.0}],"goals":[true,false]}\\n'
        """
        lines = []
        for i in range(len(self.actions)):
            steps = []
            for t, action in enumerate(self.actions[i]):
                step = {"action": action, "error": True if self.errors[i][t] else None}
                if self.rewards[i] is not None:
                    step["reward"] = self.rewards[i][t]
                steps.append(step)
            episode: dict = {"steps": steps}
            if self.success[i] is not None:
                episode["success"] = self.success[i]
            if self.goals_total[i] is not None:
                episode["goals"] = [g < self.goals_achieved[i] for g in range(self.goals_total[i])]
            lines.append(json.dumps(episode, separators=(",", ":"), ensure_ascii=False, allow_nan=False))
        return "".join(line + "\n" for line in lines).encode("utf-8")

    def episodes(self):
        """The :class:`metrics_core.agents.Episodes` the metrics take."""
        from metrics_core.agents import Episodes

        return Episodes(actions=[list(a) for a in self.actions], errors=[list(e) for e in self.errors],
                        rewards=[None if r is None else list(r) for r in self.rewards], success=list(self.success),
                        goals_achieved=list(self.goals_achieved), goals_total=list(self.goals_total))


def _canonical_action(value) -> str | None:
    if isinstance(value, str):
        return value
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _step(step, index: int, number: int, where: str) -> tuple[str, bool, float | None]:
    at = f"{where}: line {number}: {STEPS_FIELD}[{index}]"
    if not isinstance(step, dict):
        raise InputError(f"{at}: expected a JSON object, got {_shown(step)}")
    if "action" not in step:
        fields = f"fields: {_listing(step)}" if step else "the object is empty"
        raise InputError(f"{at}: no field 'action' ({fields})")
    action = _canonical_action(_plain(step["action"]))
    if action is None:
        raise InputError(f"{at}: field 'action': expected a string or a JSON value, got null")
    error = step.get("error")
    if error is None or error is False or error == "":
        failed = False
    elif error is True or (isinstance(error, str) and not _is_number(error)):
        failed = True
    else:
        raise InputError(f"{at}: field 'error': expected true, false, null or a message string, got {_shown(error)}")
    reward = step.get("reward")
    if reward is not None:
        numeric = _is_number(reward) or (isinstance(reward, (int, float)) and not isinstance(reward, bool))
        value = float(reward) if numeric else None
        if value is None or not math.isfinite(value):
            raise InputError(f"{at}: field 'reward': expected a finite number, got {_shown(reward)}")
        reward = value
    return action, failed, reward


def _is_number(value) -> bool:
    return isinstance(value, _Number)


def _goals(goals, number: int, where: str) -> tuple[int | None, int | None]:
    if goals is None:
        return None, None
    flags = list(goals.values()) if isinstance(goals, dict) else goals
    if not isinstance(flags, list) or not flags or not all(isinstance(f, bool) for f in flags):
        raise InputError(f"{where}: line {number}: field 'goals': expected a non-empty array of booleans or an "
                         f"object of goal name -> boolean, got {_shown(goals)}")
    return sum(flags), len(flags)


def _episode(line: str, number: int, where: str) -> tuple:
    return _episode_object(_decode(line, number, where), number, where)


def _episode_object(obj: dict, number: int, where: str) -> tuple:
    if STEPS_FIELD not in obj:
        fields = f"fields: {_listing(obj)}" if obj else "the object is empty"
        raise InputError(f"{where}: line {number}: no field {STEPS_FIELD!r} ({fields})")
    steps = obj[STEPS_FIELD]
    if not isinstance(steps, list):
        raise InputError(f"{where}: line {number}: field {STEPS_FIELD!r}: expected an array of steps, got "
                         f"{_shown(steps)}")
    if not steps:
        raise InputError(f"{where}: line {number}: field {STEPS_FIELD!r}: an episode needs at least one step, "
                         "got an empty array")
    parsed = [_step(s, i, number, where) for i, s in enumerate(steps)]
    success = obj.get("success")
    if success is not None and not isinstance(success, bool):
        raise InputError(f"{where}: line {number}: field 'success': expected true, false or null, got "
                         f"{_shown(success)}")
    rewards = [r for _, _, r in parsed]
    has_rewards = any(r is not None for r in rewards)
    achieved, total = _goals(obj.get("goals"), number, where)
    return (tuple(a for a, _, _ in parsed), tuple(e for _, e, _ in parsed),
            tuple(0.0 if r is None else r for r in rewards) if has_rewards else None, success, achieved, total)


def load_episodes(
    path: str | Path,
    role: str,
    round_number: int | None = None,
    *,
    max_samples: int | None = None,
    seed: int = 0,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> LoadedEpisodes:
    """Stream the agent episodes of a ``.jsonl`` file.

    Args:
        path: the file (``.jsonl``).
        role: ``"reference"``, ``"round"`` or ``"pool"``, for messages.
        round_number: the round, for messages.
        max_samples: keep a seeded uniform choice of this many episodes, in file order. ``None`` keeps all.
        seed: the choice's seed.
        max_line_bytes: refuse any line longer than this.

    Raises:
        InputError: one line naming the file, role, line and field: a missing or non-``.jsonl`` file, a line over
            the limit, bad UTF-8, bad JSON, an episode without steps, a step without an action, a field of the
            wrong type, no episodes.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "r.jsonl")
        >>> _ = open(p, "w").write('{"steps": [{"action": "ls"}, {"action": {"cd": 1}, "error": "no such dir", '
        ...                        '"reward": -1}], "success": false}\\n\\n{"steps": [{"action": "ls"}], "goals": '
        ...                        '[true, false]}\\n')
        >>> e = load_episodes(p, "round", 1)
        >>> e.actions, e.errors, e.rewards, e.success, e.goals_achieved, e.goals_total
        ((('ls', '{"cd":1}'), ('ls',)), ((False, True), (False,)), ((0.0, -1.0), None), (False, None), (None, 1), \
(None, 2))
        >>> load_episodes(p.replace("r.jsonl", "x.jsonl"), "round", 1)
        Traceback (most recent call last):
        ...
        monitor.errors.InputError: ...x.jsonl (round, round 1): file not found
    """
    _check_max_samples(max_samples)
    _check_max_line_bytes(max_line_bytes)
    p = Path(path)
    where = _where(p, role, round_number)
    _existing_file(p, where)
    _check_readable_as("agent", _extension(p, where), where)
    return remembered("agent", p, (max_samples, seed, max_line_bytes),
                      lambda: _read_episodes(p, where, max_samples, seed, max_line_bytes))


def _read_episodes(p: Path, where: str, max_samples, seed: int, max_line_bytes: int) -> LoadedEpisodes:
    h = hashlib.sha256()
    episodes: list[tuple] = []
    for first_line, lines in _iter_lines(p, where, max_line_bytes, h):
        for i, line in enumerate(lines):
            if line.strip():
                episodes.append(_episode(line, first_line + i, where))
    if not episodes:
        raise InputError(f"{where}: empty: no episodes")
    n_total = len(episodes)
    keep = kept_items(n_total, max_samples, seed)
    if keep is not None:
        episodes = [episodes[int(i)] for i in keep]
    columns = list(zip(*episodes))
    return LoadedEpisodes(p, *map(tuple, columns), n_total=n_total, fingerprint=h.hexdigest())


def episodes_from_objects(objects: list, where: str, *, path: str | Path = "<memory>") -> LoadedEpisodes:
    """Episodes from already-parsed JSON objects (a generator's output), checked like a file's lines.

    ``where`` names them in errors, and the object's position (1-based) stands for its line. The fingerprint is
    the sha256 of their JSONL text (one compact, key-sorted object per line).

    >>> e = episodes_from_objects([{"steps": [{"action": "go"}], "success": True}], "generated")
    >>> e.actions, e.success, len(e.fingerprint)
    ((('go',),), (True,), 64)
    >>> episodes_from_objects([{"steps": []}], "generated")
    Traceback (most recent call last):
    ...
    monitor.errors.InputError: generated: line 1: field 'steps': an episode needs at least one step, got an empty array
    """
    h = hashlib.sha256()
    parsed = []
    for number, obj in enumerate(objects, start=1):
        if not isinstance(obj, dict):
            raise InputError(f"{where}: line {number}: expected a JSON object, got {_shown(obj)}")
        parsed.append(_episode_object(obj, number, where))
        h.update(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    if not parsed:
        raise InputError(f"{where}: empty: no episodes")
    return LoadedEpisodes(Path(path), *map(tuple, zip(*parsed)), n_total=len(parsed), fingerprint=h.hexdigest())
