r"""The meta-evaluation's loops, families, schedules and sizes (:class:`BenchSettings`).

Part of the meta-evaluation runner (:mod:`monitor.meta_evaluation.runner`, whose docstring defines the
terms).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field


from monitor.meta_evaluation import drift as drift_controls
from monitor.meta_evaluation import loop_agent, loop_graphs, loop_image_text, loop_json_records, loop_logs
from monitor.meta_evaluation import loop_reasoning
from monitor.meta_evaluation import loops as numeric_loops
from monitor.meta_evaluation import textloop
from monitor.meta_evaluation.trace import LoopTrace
from monitor.errors import CollapseMonitorError


AGENT_MAX_AUDIT = 201  # L6's episodes per round and in its reference, at most (loop_overrides)
# L7-L10: items per round and in the reference, at most (loop_overrides). Measured on one core (per round, with
# Evidently and MMD): a JSON round costs 0.7-0.9 s whatever its size (the tabular suite's classifier on the
# flattened fields dominates), a graph round 0.5 s at 101 graphs and 1.3-1.8 s at 151-201 (descriptor
# histograms), a log or image-text round 0.1-0.2 s at 101-301. JSON, logs and image-text pairs keep their
# generators' default sizes (odd, as every benchmark size), graphs 101.
STRUCTURED_MAX_AUDIT = {"L7-json": 151, "L8-graph": 101, "L9-log": 201, "L10-image-text": 151}
# L11-reasoning: n_audit counts questions (each answered loop_reasoning.DEFAULT_SAMPLES_PER_QUESTION = 4 times),
# at most REASONING_MAX_QUESTIONS, and its reference is the gold record of every question of a fixed bank of
# REASONING_BANK questions (the loop's default), whatever n_audit. The bank bounds the null's pool (its questions
# must have gold answers, drawn without replacement: jobs.build_null), so the full run's pool is 20 round sizes,
# not pool_ratio = 256 (still >= monitor.engine.null.POOL_RATIO_MIN = 16; quick: 16, as every family). Measured
# on one core, per round of 50 x 4 records: 0.15 s of metrics, 0.08 s of Evidently and 0.17 s of MMD (49
# permutations) with a bank of 1,000; 0.2 + 0.05 + 0.3-0.4 s with 2,000; 1.4 + 0.3 + 5-7 s with 12,800 (256 x
# 50: the embedding suite and MMD against the whole reference), unaffordable for C0's 3,000 rounds.
REASONING_MAX_QUESTIONS = 50
REASONING_BANK = 1000
TARGET_FALSE_ALARMS_PER_1000 = 1.0  # the target; the equal-rate fallback when the engine has none
TARGET_P_BEFORE_ONSET = 0.9
DRIFT_SHARE = "evidently_drift_share"
EVIDENTLY_EMBEDDING_DIMS = 16  # monitor.publishing.evidently_report.DEFAULT_EMBEDDING_DIMS
CONTROL_PREFIXES = ("C0", "C1", "C2", "D0")  # D0: pure drift (monitor.meta_evaluation.drift), where the family has one
BASELINES = ("fixed_threshold", "one_round_delta", "evidently_drift_share", "mmd_permutation")
BASELINE_TITLES = {
    "fixed_threshold": "fixed threshold on a raw metric",
    "one_round_delta": "one-round delta of a metric",
    "evidently_drift_share": "Evidently drift share",
    "mmd_permutation": "MMD permutation test",
}

# The structured-output loops L7-L10 (one module each; rounds of the json, graph, log and image_text modalities).
STRUCTURED_LOOPS = (loop_json_records, loop_graphs, loop_logs, loop_image_text)
# ... and L11, the reasoning loop (rounds of the reasoning modality), registered the same way after them.
_FAMILY_MODULES = (*STRUCTURED_LOOPS, loop_reasoning)
COLLAPSE_LOOPS: dict[str, Callable[..., LoopTrace]] = {
    **numeric_loops.LOOPS, **textloop.LOOPS, **loop_agent.LOOPS,
    **{k: v for m in _FAMILY_MODULES for k, v in m.LOOPS.items()}}
CONTROL_LOOPS: dict[str, Callable[..., LoopTrace]] = {
    **numeric_loops.CONTROLS, **textloop.CONTROLS, **loop_agent.CONTROLS,
    **{k: v for m in _FAMILY_MODULES for k, v in m.CONTROLS.items()}, **drift_controls.DRIFT_CONTROLS}

# Full-run schedules (n_generations, audit_every). The suggested ones
# (loops.suggested_schedule) except the text loops, whose rounds cost ~10x an
# embedding round (the bootstrap of the diversity metrics on 256-d hashing
# embeddings): L3's onset is at generation 3-5 (tau 0.9: 3, deterministic), so
# 12 and 10 generations keep 2-3x the onset; L4's onset is at 13-15 of 20
# generations (textloop.QUICK_SCHEDULE, the suggested 30 less the tail). L6's is its suggested one
# (loop_agent.SUGGESTED_SCHEDULE, 30 generations audited every one: onset at 8-18), and so are L7-L10's
# (30 generations audited every one; onsets at seeds 0-29: L7 8-23, L8 3-18, L9 5-25, L10 7-22), and L11's
# (loop_reasoning.SUGGESTED_SCHEDULE: 30 generations audited every one, onset at 9-22 for seeds 0-29).
FULL_SCHEDULES: dict[str, tuple[int, int]] = {
    **{loop_id: tuple(numeric_loops.suggested_schedule(loop_id).values()) for loop_id in numeric_loops.LOOPS},
    "L3-tau1.0": (12, 1),
    "L3-tau0.9": (10, 1),
    "L4-text": textloop.QUICK_SCHEDULE,
    "L6-agent": loop_agent.SUGGESTED_SCHEDULE,
    **{loop_id: m.SUGGESTED_SCHEDULE for m in _FAMILY_MODULES for loop_id in m.LOOPS},
}
# Quick mode: short runs that still audit every loop and control (most onsets fall outside them).
QUICK_SCHEDULES: dict[str, tuple[int, int]] = {
    "L1-d1-M20": (6, 1),
    "L1-d1-M100": (30, 5),
    "L1-d1-M1000": (300, 50),
    "L1-d16-M20": (12, 2),
    "L1-d16-M100": (36, 6),
    "L1-d16-M1000": (300, 50),
    "L2-K10-d8": (8, 2),
    "L3-tau1.0": (5, 1),
    "L3-tau0.9": (4, 1),
    "L5-wine": (24, 4),
    "L4-text": (5, 1),
    "L6-agent": loop_agent.QUICK_SCHEDULE,
    **{loop_id: m.QUICK_SCHEDULE for m in _FAMILY_MODULES for loop_id in m.LOOPS},  # 12 generations, every 2nd
}


def family_of(run_id: str) -> str:
    """The collapse loop id of a loop or control id (``"C1-L3-tau0.9"`` -> ``"L3-tau0.9"``).

    Args:
        run_id: a key of :data:`COLLAPSE_LOOPS` or :data:`CONTROL_LOOPS`.

    >>> family_of("C1-L3-tau0.9"), family_of("L4-text")
    ('L3-tau0.9', 'L4-text')
    """
    if run_id in COLLAPSE_LOOPS:
        return run_id
    if run_id in CONTROL_LOOPS:
        return run_id.split("-", 1)[1]
    raise ValueError(f"run_id: expected a loop or control id ({', '.join(sorted(COLLAPSE_LOOPS))} or C0/C1/C2-...), "
                     f"got {run_id!r}")


def family_members(loop_id: str) -> list[str]:
    """The collapse loop and its controls, in that order.

    >>> family_members("L4-text")
    ['L4-text', 'C0-L4-text', 'C1-L4-text', 'C2-L4-text']
    """
    if loop_id not in COLLAPSE_LOOPS:
        raise ValueError(f"loop_id: expected one of {', '.join(sorted(COLLAPSE_LOOPS))}, got {loop_id!r}")
    return [loop_id, *(f"{c}-{loop_id}" for c in CONTROL_PREFIXES if f"{c}-{loop_id}" in CONTROL_LOOPS)]


def select_families(pattern: str | None) -> list[str]:
    r"""Collapse loop ids whose family matches the glob ``pattern`` (all when None), in registry order.

    A family is selected when its loop id or one of its control ids matches
    (:func:`fnmatch.fnmatchcase`); its controls always come along, since every
    score needs them.

    Args:
        pattern: a glob such as ``"L1-*"`` or ``"C0-L4-text"``, or None.

    Raises:
        CollapseMonitorError: the pattern matches no id; the message lists the loop ids.

    >>> select_families("L3-*")
    ['L3-tau1.0', 'L3-tau0.9']
    """
    if pattern is None:
        return list(COLLAPSE_LOOPS)
    chosen = [loop_id for loop_id in COLLAPSE_LOOPS
              if any(fnmatch.fnmatchcase(member, pattern) for member in family_members(loop_id))]
    if not chosen:
        raise CollapseMonitorError(
            f"--loops {pattern!r} matches no loop; known loop ids: {', '.join(COLLAPSE_LOOPS)} "
            f"(each with controls C0-, C1-, C2-<loop id>)"
        )
    return chosen


@dataclass(frozen=True)
class BenchSettings:
    """Sizes and schedules of one benchmark run.

    Attributes:
        quick: quick (CI) or full mode, for the report.
        seeds: run seeds; every loop and control runs at each (text loops: ``text_seeds``).
        text_seeds: run seeds of the text loops (L3, L4), whose rounds cost about 20 times a numeric
            round's; None: ``seeds``. Their no-feedback controls run longer, so that every loop's false
            alarms are still counted on ``c0_generations * len(seeds)`` rounds.
        n_audit: samples per audit round, and reference size where the loop has one
            (L3: documents per round and in the reference; L5's reference is the whole real table;
            L6: at most :data:`AGENT_MAX_AUDIT` episodes; L7-L10: at most :data:`STRUCTURED_MAX_AUDIT`
            items; L11: questions per round, at most :data:`REASONING_MAX_QUESTIONS`, each answered 4 times,
            and a reference of :data:`REASONING_BANK` gold records).
        n_boot: bootstrap replicates of every metric (the daemon's default is 200).
        n_permutations: permutations of the MMD test per round.
        k: k-NN neighbourhood size of the embedding suite.
        schedules: loop id -> (n_generations, audit_every); controls use their loop's.
        evidently_check: compare the fast drift share with a full Evidently report on the last
            round of the first seed's runs: ``"all"`` of them, the ``"collapse"`` runs only, or ``"none"``.
        null_rounds: pseudo-rounds of each (loop, seed)'s null (:mod:`monitor.engine.null`).
        pool_ratio: the pool a user gives for the null, in round sizes (drawn from generation 0; L11: in
            questions, at most its bank of :data:`REASONING_BANK`).
        c0_generations: generations of every no-feedback control run (audited every one), so
            that false alarms are counted on ``c0_generations * len(seeds)`` rounds per loop.
        arl0: the alarm's false-alarm guarantee, in rounds.
    """

    quick: bool
    seeds: tuple[int, ...]
    n_audit: int
    n_boot: int
    n_permutations: int
    k: int = 5
    schedules: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(FULL_SCHEDULES))
    evidently_check: str = "all"
    null_rounds: int = 1000
    pool_ratio: int = 256
    c0_generations: int = 375
    arl0: float = 1000.0
    text_seeds: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("seeds", "text_seeds"):
            seeds = getattr(self, name)
            if name == "text_seeds" and seeds is None:
                continue
            if not seeds or any(not isinstance(s, int) or s < 0 for s in seeds):
                raise ValueError(f"{name}: expected a non-empty tuple of ints >= 0, got {seeds!r}")
        for name in ("n_audit", "n_boot", "n_permutations", "k"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "n_boot" else 1):
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if self.n_audit < self.k + 1:
            raise ValueError(f"n_audit: expected at least k + 1 = {self.k + 1} samples, got {self.n_audit}")
        if self.evidently_check not in ("all", "collapse", "none"):
            raise ValueError(f"evidently_check: expected 'all', 'collapse' or 'none', got {self.evidently_check!r}")

    def seeds_of(self, family: str) -> tuple[int, ...]:
        """The seeds a loop family runs at.

        >>> s = BenchSettings(False, (0, 1, 2, 3), 301, 0, 99, text_seeds=(0, 1))
        >>> s.seeds_of("L1-d1-M20"), s.seeds_of("L4-text"), s.schedule("C0-L4-text")[0] // s.c0_generations
        ((0, 1, 2, 3), (0, 1), 2)
        """
        return self.text_seeds if self.text_seeds is not None and is_text_family(family) else self.seeds

    def schedule(self, run_id: str) -> tuple[int, int]:
        if run_id.startswith("C0-"):
            # every loop's false alarms counted on as many rounds, whatever its number of seeds
            rounds = self.c0_generations * len(self.seeds)
            return -(-rounds // len(self.seeds_of(family_of(run_id)))), 1
        return self.schedules[family_of(run_id)]

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "seeds": list(self.seeds),
                "text_seeds": None if self.text_seeds is None else list(self.text_seeds),
                "schedules": {k: list(v) for k, v in self.schedules.items()}}


def is_text_family(family: str) -> bool:
    """Whether a loop family's rounds are text (L3, L4).

    >>> is_text_family("L3-tau0.9"), is_text_family("L5-wine")
    (True, False)
    """
    return family.startswith(("L3-", "L4-"))


def default_settings(quick: bool, seeds: int | None = None, text_seeds: int | None = None) -> BenchSettings:
    """The benchmark's sizes: full (8 seeds, 4 for the text loops) or quick (2 seeds, small samples, short runs).

    Full: 301 samples per round and in the reference (L6: :data:`AGENT_MAX_AUDIT` episodes; L7-L10:
    :data:`STRUCTURED_MAX_AUDIT` items; L11: :data:`REASONING_MAX_QUESTIONS` questions of 4 samples, a
    reference of :data:`REASONING_BANK` gold records); no bootstrap (the alarm
    scores every metric against the loop's null, not its bootstrap error); 99
    MMD permutations (so :math:`p \ge 1/100`); per (loop, seed) a null of 1,000
    pseudo-rounds from a pool of 256 round sizes; no-feedback controls of
    :math:`\lceil 3000 / \text{seeds} \rceil` generations, so false alarms
    are counted on at least 3,000 rounds per loop; the text loops, whose rounds cost about 20 times more,
    at half the seeds (their C0 runs twice as long), so that the whole run fits 90 minutes on 2 cores. Quick: 101 samples, 49
    permutations, :data:`QUICK_SCHEDULES`, nulls of 40 pseudo-rounds (a smoke test of the path, not a
    measurement) from a pool of 16 round sizes, 10-generation no-feedback controls and no Evidently check.
    Sizes are odd: EDS is undefined on 1-d rounds with as many negative as
    positive values, which an even size allows.

    Args:
        quick: quick mode.
        seeds: number of seeds (``0 .. seeds - 1``); default 2 quick, 8 full.
        text_seeds: number of seeds of the text loops; default: all of them quick, half of them full.

    >>> s = default_settings(True)
    >>> s.seeds, s.n_audit, s.schedules["L4-text"], s.seeds_of("L4-text")
    ((0, 1), 101, (5, 1), (0, 1))
    >>> default_settings(False).seeds_of("L3-tau1.0")
    (0, 1, 2, 3)
    """
    n = (2 if quick else 8) if seeds is None else seeds
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"seeds: expected a positive int, got {seeds!r}")
    n_text = (n if quick else max(1, n // 2)) if text_seeds is None else text_seeds
    if not isinstance(n_text, int) or n_text < 1:
        raise ValueError(f"text_seeds: expected a positive int, got {text_seeds!r}")
    text = None if n_text == n else tuple(range(n_text))
    if quick:
        return BenchSettings(quick=True, seeds=tuple(range(n)), n_audit=101, n_boot=0, n_permutations=49,
                             schedules=dict(QUICK_SCHEDULES), evidently_check="none", null_rounds=40,
                             pool_ratio=16, c0_generations=10, text_seeds=text)
    return BenchSettings(quick=False, seeds=tuple(range(n)), n_audit=301, n_boot=0, n_permutations=99,
                         schedules=dict(FULL_SCHEDULES), c0_generations=-(-3000 // n), text_seeds=text)


def loop_overrides(run_id: str, n_audit: int) -> dict:
    """Size overrides of a loop or control: the audit and reference sizes its generator takes.

    >>> loop_overrides("C2-L3-tau1.0", 300), loop_overrides("L5-wine", 300)
    ({'n_documents': 300}, {'n_audit': 300})
    >>> loop_overrides("C0-L6-agent", 301), loop_overrides("L6-agent", 101)
    ({'n_audit': 201, 'n_reference': 201}, {'n_audit': 101, 'n_reference': 101})
    >>> loop_overrides("C2-L8-graph", 301), loop_overrides("L7-json", 101)
    ({'n_audit': 101, 'n_reference': 101}, {'n_audit': 101, 'n_reference': 101})
    >>> loop_overrides("C0-L11-reasoning", 301), loop_overrides("L11-reasoning", 21)
    ({'n_questions_audit': 50, 'n_reference': 1000}, {'n_questions_audit': 21, 'n_reference': 1000})
    """
    family = family_of(run_id)
    if run_id == "C0-L4-text":
        # The loop without feedback is generation 0's model, whose text is not real text: C0 and the
        # null's pool draw its sentences (docs/alerts.md, "Which pool").
        return {"n_audit": n_audit, "n_reference": n_audit, "source": "model0"}
    if family.startswith("L3-"):
        return {"n_documents": n_audit}
    if family.startswith("L5-"):
        return {"n_audit": n_audit}  # the reference is the whole real table
    if family.startswith("L6-"):
        # An agent round costs about twice an embedding round of the same size (the agent suite's per-step
        # input checks, the embedding suite on the featurized action sequences). Capped at 201 episodes, the
        # full run's L6 (8 seeds, its C0 on 3,000 rounds, nulls of 1,000 pseudo-rounds) took 7.2 minutes on
        # 2 cores; at 301 it took 18 (measured).
        n = min(n_audit, AGENT_MAX_AUDIT)
        return {"n_audit": n, "n_reference": n}
    if family == "L11-reasoning":  # questions per round (REASONING_MAX_QUESTIONS), the fixed bank as reference
        return {"n_questions_audit": min(n_audit, REASONING_MAX_QUESTIONS), "n_reference": REASONING_BANK}
    if family in STRUCTURED_MAX_AUDIT:  # capped where a round costs more (STRUCTURED_MAX_AUDIT)
        n = min(n_audit, STRUCTURED_MAX_AUDIT[family])
        return {"n_audit": n, "n_reference": n}
    return {"n_audit": n_audit, "n_reference": n_audit}


def generate_trace(run_id: str, seed: int, settings: BenchSettings) -> LoopTrace:
    """One run of a loop or control at ``seed`` with the settings' schedule and sizes."""
    n_generations, audit_every = settings.schedule(run_id)
    fn = COLLAPSE_LOOPS.get(run_id) or CONTROL_LOOPS[run_id]
    return fn(seed, n_generations, audit_every, **loop_overrides(run_id, settings.n_audit))
