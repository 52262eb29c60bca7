r"""The benchmark runner: audit every seeded loop and control in-process, run the engine, score every detector.

Survey §8.1 (meta-evaluation). A *family* is one collapse loop (``L1-d1-M20``,
..., ``L4-text``) with its three controls ``C0-``, ``C1-``, ``C2-<loop id>``
(:mod:`monitor.meta_evaluation.loops`, :mod:`monitor.meta_evaluation.textloop`). A *run* is one
family member at one seed, generated as a :class:`~monitor.meta_evaluation.trace.LoopTrace`.

**Audit, as the daemon does it** (``flows/audit.py``), but in-process: no
Prefect, MLflow or store. Per run the reference is prepared once (the
embedding suite's :func:`metrics_core.fit_reference_profile`; text: the
hashing featurizer fitted on the reference and :func:`metrics_core.text.fit_text_reference`;
tabular: the schema and encoding fitted by :class:`monitor.pipeline.AuditPipeline`),
then every audited generation ``g`` gets

* the modality's own metrics (text: :func:`metrics_core.text.text_suite`;
  tabular: :func:`metrics_core.tabular.tabular_suite`), through :class:`monitor.pipeline.AuditPipeline`,
  the daemon's own audit steps;
* :func:`metrics_core.embedding_suite` on the embeddings (embedding rounds as
  they are, text through the hashing featurizer, tabular rows encoded);
* Evidently's drift share (below), recorded as ``evidently_drift_share`` for
  text and tabular rounds, as the daemon does, and for every modality as a baseline;
* the MMD permutation p-value of the round against the reference
  (:func:`monitor.meta_evaluation.baselines.mmd_permutation_pvalue`), a baseline only.

Metric values that are not finite are dropped from that round, as the daemon
drops them. The trajectory rows (``loop, round, metric, value, ci_low,
ci_high, std_error``, the columns of ``TrajectoryStore.trajectory``) use the
**generation as the round number** (what a user passes to ``collapse-monitor
audit``), so slopes are per generation and lead times are in generations.

**The engine**: :func:`monitor.alerts.evaluate_loop` on the run's whole
trajectory with the given rules (the calibrated operating point: the shipped
defaults unless ``--rules`` overlays them). The replay of a trajectory's states
at round ``r`` only uses rounds up to ``r``, so the replay of the finished run
says what the daemon reported at every round. Per round:

* loop alarm state :math:`A_r` = some metric's state is raised (warning or
  critical) at round ``r``; the loop's alarm is the first such round;
* metric ``m``'s alarm state = ``m``'s own state is raised;
* loop risk = the engine's ``risk`` column; metric risk =
  :func:`monitor.alerts.metric_risk` (0 on a round where the metric is missing).

**Evidently's drift share, fast.** :mod:`monitor.evidently_report` builds a
full Evidently report, about 0.12 s per column, almost all of it plotly
widget rendering. :func:`evidently_drift_share` runs the same per-column test
Evidently's ``ValueDrift`` runs (``get_one_column_drift``: drop infinite and
NaN values, ``get_stattest(reference, current, type, None)``, its default
threshold), on the columns :mod:`monitor.evidently_report` builds (text: the
five descriptors and the pooled principal components of the embeddings;
tabular: the typed columns; embedding rounds, which the daemon does not send
to Evidently: the pooled principal components alone,
:math:`K = \min(16, D, N + M - 1)`), and returns the share of drifted
columns. The runner checks it against the full report on chosen rounds
(``BenchSettings.evidently_check``) and reports the largest difference.

Scoring is :mod:`monitor.meta_evaluation.scoring`; see :func:`score_family`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import os
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from monitor.meta_evaluation import baselines, scoring
from monitor.meta_evaluation import drift as drift_controls
from monitor.meta_evaluation import loops as numeric_loops
from monitor.meta_evaluation import textloop
from monitor.meta_evaluation.trace import LoopTrace
from monitor.errors import CollapseMonitorError
from monitor.pipeline import AuditPipeline

TARGET_FALSE_ALARMS_PER_1000 = 1.0  # the target; the equal-rate fallback when the engine has none
TARGET_P_BEFORE_ONSET = 0.9
DRIFT_SHARE = "evidently_drift_share"
EVIDENTLY_EMBEDDING_DIMS = 16  # monitor.evidently_report.DEFAULT_EMBEDDING_DIMS
CONTROL_PREFIXES = ("C0", "C1", "C2", "D0")  # D0: pure drift (monitor.meta_evaluation.drift), where the family has one
BASELINES = ("fixed_threshold", "one_round_delta", "evidently_drift_share", "mmd_permutation")
BASELINE_TITLES = {
    "fixed_threshold": "fixed threshold on a raw metric",
    "one_round_delta": "one-round delta of a metric",
    "evidently_drift_share": "Evidently drift share",
    "mmd_permutation": "MMD permutation test",
}

# --------------------------------------------------------------------------------------------------------------
# Loops, families, schedules, settings
# --------------------------------------------------------------------------------------------------------------

COLLAPSE_LOOPS: dict[str, Callable[..., LoopTrace]] = {**numeric_loops.LOOPS, **textloop.LOOPS}
CONTROL_LOOPS: dict[str, Callable[..., LoopTrace]] = {**numeric_loops.CONTROLS, **textloop.CONTROLS,
                                                      **drift_controls.DRIFT_CONTROLS}

# Full-run schedules (n_generations, audit_every). The suggested ones
# (loops.suggested_schedule) except the text loops, whose rounds cost ~10x an
# embedding round (the bootstrap of the diversity metrics on 256-d hashing
# embeddings): L3's onset is at generation 3-5 (tau 0.9: 3, deterministic), so
# 12 and 10 generations keep 2-3x the onset; L4's onset is at 13-15 of 20
# generations (textloop.QUICK_SCHEDULE, the suggested 30 less the tail).
FULL_SCHEDULES: dict[str, tuple[int, int]] = {
    **{loop_id: tuple(numeric_loops.suggested_schedule(loop_id).values()) for loop_id in numeric_loops.LOOPS},
    "L3-tau1.0": (12, 1),
    "L3-tau0.9": (10, 1),
    "L4-text": textloop.QUICK_SCHEDULE,
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
            (L3: documents per round and in the reference; L5's reference is the whole real table).
        n_boot: bootstrap replicates of every metric (the daemon's default is 200).
        n_permutations: permutations of the MMD test per round.
        k: k-NN neighbourhood size of the embedding suite.
        schedules: loop id -> (n_generations, audit_every); controls use their loop's.
        evidently_check: compare the fast drift share with a full Evidently report on the last
            round of the first seed's runs: ``"all"`` of them, the ``"collapse"`` runs only, or ``"none"``.
        null_rounds: pseudo-rounds of each (loop, seed)'s null (:mod:`monitor.null`).
        pool_ratio: the pool a user gives for the null, in round sizes (drawn from generation 0).
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

    Full: 301 samples per round and in the reference; no bootstrap (the alarm
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
    return {"n_audit": n_audit, "n_reference": n_audit}


def generate_trace(run_id: str, seed: int, settings: BenchSettings) -> LoopTrace:
    """One run of a loop or control at ``seed`` with the settings' schedule and sizes."""
    n_generations, audit_every = settings.schedule(run_id)
    fn = COLLAPSE_LOOPS.get(run_id) or CONTROL_LOOPS[run_id]
    return fn(seed, n_generations, audit_every, **loop_overrides(run_id, settings.n_audit))


# --------------------------------------------------------------------------------------------------------------
# Evidently's drift share
# --------------------------------------------------------------------------------------------------------------


def evidently_columns(modality: str, reference, current, reference_embeddings: np.ndarray,
                      current_embeddings: np.ndarray, tabular_columns: dict | None = None
                      ) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    r"""The reference and current frames Evidently tests, with their numerical and categorical columns.

    As :mod:`monitor.evidently_report` builds them: text, the five
    :func:`~monitor.evidently_report.text_descriptors` plus
    ``embedding_pc_01..K`` (the embeddings on the top :math:`K=\min(16, D, N+M-1)`
    principal axes of reference and round pooled); tabular, the typed columns
    of the tables; embedding rounds, the ``K`` pooled principal components alone.

    Args:
        modality: ``"embedding"``, ``"text"`` or ``"tabular"``.
        reference: the reference (texts, DataFrame, or the embeddings again).
        current: the round, same modality.
        reference_embeddings: ``[N, D]`` embeddings of the reference.
        current_embeddings: ``[M, D]`` embeddings of the round.
        tabular_columns: tabular only, ``{"numeric": [...], "categorical": [...]}``.

    >>> ref, cur = np.eye(3), np.eye(3)[::-1]
    >>> r, c, num, cat = evidently_columns("embedding", ref, cur, ref, cur)
    >>> num, cat, r.shape
    (['embedding_pc_01', 'embedding_pc_02', 'embedding_pc_03'], [], (3, 3))
    """
    from monitor import evidently_report

    if modality == "tabular":
        if tabular_columns is None:
            raise ValueError("tabular_columns: expected the {'numeric', 'categorical'} columns of a tabular round")
        numeric, categorical = list(tabular_columns["numeric"]), list(tabular_columns["categorical"])
        cols = numeric + categorical
        return reference[cols].reset_index(drop=True), current[cols].reset_index(drop=True), numeric, categorical
    if modality not in ("embedding", "text"):
        raise ValueError(f"modality: expected embedding, text or tabular, got {modality!r}")
    ref_emb = np.asarray(reference_embeddings, dtype=np.float64)
    cur_emb = np.asarray(current_embeddings, dtype=np.float64)
    k = min(EVIDENTLY_EMBEDDING_DIMS, ref_emb.shape[1], len(ref_emb) + len(cur_emb) - 1)
    ref_pc, cur_pc = evidently_report.pooled_components(ref_emb, cur_emb, k)
    names = [f"embedding_pc_{j + 1:02d}" for j in range(k)]
    ref_frame, cur_frame = pd.DataFrame(ref_pc, columns=names), pd.DataFrame(cur_pc, columns=names)
    if modality == "text":
        ref_frame = pd.concat([evidently_report.text_descriptors(reference), ref_frame], axis=1)
        cur_frame = pd.concat([evidently_report.text_descriptors(current), cur_frame], axis=1)
    return ref_frame, cur_frame, list(ref_frame.columns), []


def evidently_drift_share(reference: pd.DataFrame, current: pd.DataFrame, numeric: Sequence[str],
                          categorical: Sequence[str] = ()) -> float:
    r"""Evidently's drift share by its own per-column tests, without building a report.

    .. math:: \mathrm{share} = \frac{1}{|C|}\sum_{c\in C}\mathbb 1[\text{Evidently's default test drifts on } c]

    Per column, what ``evidently.legacy.calculations.data_drift.get_one_column_drift``
    does inside every ``ValueDrift`` of a ``DataDriftPreset``: infinite values
    become NaN and are dropped, the test is
    ``get_stattest(reference, current, column_type, None)`` (Evidently's default
    for the type, reference size and number of distinct values) at its default
    threshold. Categorical columns go through the full report
    (:func:`monitor.evidently_report.tabular_drift_report`), whose dataset
    conversion this does not reproduce; none of the benchmark's loops has one.

    Args:
        reference: the reference frame.
        current: the round's frame, same columns.
        numeric: numerical column names.
        categorical: categorical column names.

    >>> ref = pd.DataFrame({"x": np.linspace(0, 1, 50)})
    >>> evidently_drift_share(ref, ref + 0.0, ["x"]), evidently_drift_share(ref, ref + 5.0, ["x"])
    (0.0, 1.0)
    """
    numeric, categorical = list(numeric), list(categorical)
    if not numeric and not categorical:
        raise ValueError("numeric, categorical: expected at least one column, got none")
    if categorical:
        from monitor import evidently_report

        return evidently_report.tabular_drift_report(
            reference, current, numeric_columns=numeric, categorical_columns=categorical).drift_share
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.core import ColumnType

    drifted = 0
    for column in numeric:
        # replace([-inf, inf], nan).dropna(), as Evidently does, with one mask
        ref, cur = reference[column], current[column]
        ref, cur = ref[np.isfinite(ref.to_numpy(dtype=np.float64))], cur[np.isfinite(cur.to_numpy(dtype=np.float64))]
        if ref.empty or cur.empty:
            raise ValueError(f"column {column!r}: no finite value in the {'reference' if ref.empty else 'round'}")
        test = get_stattest(ref, cur, ColumnType.Numerical, None)
        drifted += bool(test(ref, cur, ColumnType.Numerical, None).drifted)
    return drifted / len(numeric)


def evidently_full_report_share(reference: pd.DataFrame, current: pd.DataFrame, numeric: Sequence[str],
                                categorical: Sequence[str] = ()) -> float:
    """The same drift share from a full Evidently report (:mod:`monitor.evidently_report`), for the check."""
    from monitor import evidently_report

    return evidently_report.tabular_drift_report(
        reference, current, numeric_columns=list(numeric), categorical_columns=list(categorical)).drift_share


# --------------------------------------------------------------------------------------------------------------
# Auditing one run
# --------------------------------------------------------------------------------------------------------------


@dataclass
class RunAudit:
    """Everything measured on one run before the engine looks at it."""

    trace: LoopTrace
    trajectory: pd.DataFrame  # loop, round (= generation), metric, value, ci_low, ci_high, std_error
    drift_share: np.ndarray  # [R] Evidently drift share (fast path)
    mmd_pvalue: np.ndarray  # [R] MMD permutation p-value
    evidently_check: list[dict]  # [{"generation", "fast", "full"}]
    seconds: dict[str, float]
    failures: list[str] = field(default_factory=list)  # suite groups that could not be computed on a round


def _finite(x) -> float | None:
    return None if x is None or not np.isfinite(float(x)) else float(x)


def audit_trace(trace: LoopTrace, settings: BenchSettings, *, check_evidently: Sequence[int] = ()) -> RunAudit:
    """Audit every round of a trace as the daemon would, plus the two raw-data baselines.

    Args:
        trace: the run.
        settings: sizes (``n_boot``, ``k``, ``n_permutations``).
        check_evidently: round indices whose fast drift share is compared with a full Evidently report.
    """
    seconds = {"metrics": 0.0, "evidently": 0.0, "mmd": 0.0, "evidently_check": 0.0}
    pipeline = AuditPipeline(trace.modality, trace.reference, k=settings.k, n_boot=settings.n_boot, seed=trace.seed)
    rows, shares, pvalues, checks, failures = [], [], [], [], []
    mmd_seeds = np.random.SeedSequence(trace.seed).spawn(len(trace.rounds))  # one permutation stream per round
    for i, (generation, round_data) in enumerate(zip(trace.generations, trace.rounds)):
        t0 = time.perf_counter()
        where = f"{trace.name} generation {generation}"
        audit = pipeline.audit(round_data, round_where=where, skip_failed_groups=True)
        metrics, round_embeddings = audit.metrics, audit.embeddings
        failures.extend(audit.failures)
        ref_frame, cur_frame, numeric, categorical = evidently_columns(
            trace.modality, trace.reference, round_data, pipeline.reference_embeddings, round_embeddings,
            pipeline.tabular_columns)
        t1 = time.perf_counter()
        share = evidently_drift_share(ref_frame, cur_frame, numeric, categorical)
        t2 = time.perf_counter()
        p = baselines.mmd_permutation_pvalue(pipeline.reference_embeddings, round_embeddings,
                                             n_permutations=settings.n_permutations,
                                             seed=int(mmd_seeds[i].generate_state(1)[0]))
        t3 = time.perf_counter()
        if i in check_evidently:
            checks.append({"run": trace.name, "seed": trace.seed, "generation": int(generation), "fast": share,
                           "full": evidently_full_report_share(ref_frame, cur_frame, numeric, categorical)})
        seconds["metrics"] += t1 - t0
        seconds["evidently"] += t2 - t1
        seconds["mmd"] += t3 - t2
        seconds["evidently_check"] += time.perf_counter() - t3
        if trace.modality != "embedding":  # the daemon records it for text and tabular rounds
            from metrics_core.bootstrap import Estimate

            metrics[DRIFT_SHARE] = Estimate(share)
        for name, est in metrics.items():
            value = _finite(est.value)
            if value is None:
                continue  # the daemon does not store a metric undefined this round
            rows.append((trace.name, int(generation), name, value, _finite(est.ci_low), _finite(est.ci_high),
                         _finite(est.std_error)))
        shares.append(share)
        pvalues.append(p)
    trajectory = pd.DataFrame(rows, columns=["loop", "round", "metric", "value", "ci_low", "ci_high", "std_error"])
    return RunAudit(trace, trajectory, np.asarray(shares, dtype=np.float64), np.asarray(pvalues, dtype=np.float64),
                    checks, seconds, failures)


# --------------------------------------------------------------------------------------------------------------
# The engine on one run
# --------------------------------------------------------------------------------------------------------------


@dataclass
class EngineRun:
    """The engine's verdicts on one run, aligned with the run's generations.

    Attributes:
        alarms: ``[R]`` the collapse signal raised (with a null), else some metric raised.
        metric_alarms: metric -> ``[R]`` its own chart over its threshold (with a null), else its state raised.
        risk: ``[R]`` the collapse chart's evidence over its threshold (with a null), else the loop's risk.
        metric_risk: metric -> ``[R]`` the same per metric (0 where it was not audited).
        first_metrics: the metrics named at the loop's first alarm.
        drift_alarms: ``[R]`` the drift signal raised (with a null; else the derivative rules' drift metrics).
    """

    alarms: np.ndarray
    metric_alarms: dict[str, np.ndarray]
    risk: np.ndarray
    metric_risk: dict[str, np.ndarray]
    first_metrics: list[str]
    drift_alarms: np.ndarray | None = None


def evaluate_run(trajectory: pd.DataFrame, generations: np.ndarray, rules, null=None) -> EngineRun:
    """Run :func:`monitor.alerts.evaluate_loop` on a run's trajectory and align its verdicts by generation.

    Args:
        trajectory: the run's rows (round = generation).
        generations: ``[R]`` the run's audited generations.
        rules: the resolved :class:`~monitor.rules.RuleSet`.
        null: the run's :class:`~monitor.null.LoopNull`: the sequential alarm; None: the derivative rules.
    """
    from metrics_core.registry import round_modality
    from monitor.alerts import OK, evaluate_loop, metric_risk

    gens = np.asarray(generations, dtype=np.int64)
    position = {int(g): i for i, g in enumerate(gens)}
    rules = rules.for_round(round_modality(trajectory["metric"].unique()))
    ev = evaluate_loop(trajectory, rules, null=null)

    def aligned(rounds, values, fill):
        out = np.full(len(gens), fill, dtype=np.asarray(values).dtype if len(values) else float)
        out[[position[int(r)] for r in rounds]] = values
        return out

    metric_alarms, metric_risks = {}, {}
    if ev.sequential is not None:
        seq = ev.sequential
        for m in (m for ms in seq.signal_metrics.values() for m in ms):
            chart = f"metric:{m}"
            metric_alarms[m] = aligned(seq.rounds, seq.charts[chart] >= seq.thresholds[chart], False)
            metric_risks[m] = aligned(seq.rounds, seq.evidence(chart), 0.0)
        alarms = aligned(seq.rounds, seq.alarms("collapse"), False)
        drift = aligned(seq.rounds, seq.alarms("drift"), False)
        risk = aligned(seq.rounds, seq.evidence("signal:collapse"), 0.0) if "signal:collapse" in seq.charts \
            else np.zeros(len(gens))
        first = scoring.first_alarm(alarms)
        first_metrics = [] if first is None else seq.named_metrics("collapse", int(np.flatnonzero(
            seq.rounds == gens[first])[0]))
        return EngineRun(alarms, metric_alarms, risk, metric_risks, first_metrics, drift)
    for name, m in ev.metrics.items():
        metric_alarms[name] = aligned(m.rounds, np.array([s != OK for s in m.severities], dtype=bool), False)
        metric_risks[name] = aligned(m.rounds, metric_risk(m.derivatives, m.rule), 0.0)
    collapse = [a for m, a in metric_alarms.items() if rules.signal_of(m) == "collapse"]
    drift_metrics = [a for m, a in metric_alarms.items() if rules.signal_of(m) == "drift"]
    alarms = np.any(np.stack(collapse), axis=0) if collapse else np.zeros(len(gens), bool)
    drift = np.any(np.stack(drift_metrics), axis=0) if drift_metrics else np.zeros(len(gens), bool)
    risk = np.zeros(len(gens))
    if not ev.risk.empty:
        risk[[position[int(r)] for r in ev.risk["round"]]] = ev.risk["risk"].to_numpy(dtype=np.float64)
    first = scoring.first_alarm(alarms)
    first_metrics = [] if first is None else sorted(m for m, a in metric_alarms.items() if a[first]
                                                    and rules.signal_of(m) == "collapse")
    return EngineRun(alarms, metric_alarms, risk, metric_risks, first_metrics, drift)


def truth_crossing(trace: LoopTrace) -> int | None:
    """First generation whose true parameters cross the family's onset rule (a collapse loop: its onset).

    The controls C1 (accumulate) and C2 (fresh real data) feed data back and
    their true parameters drift; an alarm before their real crossing is a
    small-drift alarm, not a false one. None where the rule's quantities are
    not in the trace (C0, D0) or never cross.
    """
    if trace.kind == "collapse":
        return trace.onset
    truth, family = trace.truth, family_of(trace.name)
    if family.startswith("L1-") and "trace_cov" in truth:
        hit = truth["trace_cov"] < 0.5 * truth["trace_cov"][0]
    elif family.startswith("L2-") and "min_weight" in truth:
        hit = truth["min_weight"] < 1.0 / (10 * int(trace.params.get("K", 10)))
    elif family == "L3-tau1.0" and "observed_support" in truth:
        hit = truth["observed_support"] < 0.5 * truth["observed_support"][0]
    elif family.startswith("L3-") and "effective_exponent" in truth:
        hit = truth["effective_exponent"] >= float(trace.params["beta"]) + 0.5
    elif family.startswith("L5-") and "sd_ratio" in truth:
        hit = truth["sd_ratio"] < 0.5
    elif family == "L4-text" and "distinct_bigrams" in truth:
        return textloop.collapse_onset(truth["distinct_bigrams"])
    else:
        return None
    return numeric_loops.first_generation(np.asarray(hit))


def oracle_alarms_of(trace: LoopTrace, settings: BenchSettings) -> np.ndarray:
    """``[R]`` the oracle's alarm states (:mod:`monitor.meta_evaluation.oracle`) at the benchmark's ARL0."""
    from monitor.meta_evaluation import oracle

    return oracle.oracle_alarms(oracle.oracle_log_evalues(trace), arl0=settings.arl0)


def collapse_oracle_alarms_of(trace: LoopTrace, settings: BenchSettings) -> np.ndarray | None:
    """``[R]`` the collapse oracle's alarm states (spread loss only, Gaussian loops), or None elsewhere."""
    from monitor.meta_evaluation import oracle

    log_e = oracle.spread_log_evalues(trace)
    return None if log_e is None else oracle.oracle_alarms(log_e, arl0=settings.arl0)


# --------------------------------------------------------------------------------------------------------------
# One job: generate, audit, evaluate
# --------------------------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One run, audited and evaluated (what a worker returns)."""

    run_id: str
    family: str
    kind: str
    modality: str
    seed: int
    generations: np.ndarray
    onset: int | None
    params: dict
    trajectory: pd.DataFrame
    drift_share: np.ndarray
    mmd_pvalue: np.ndarray
    engine: EngineRun
    evidently_check: list[dict]
    seconds: dict[str, float]
    failures: list[str] = field(default_factory=list)
    oracle_alarms: np.ndarray | None = None  # the oracle's alarm states (monitor.meta_evaluation.oracle)
    truth_crossing: int | None = None  # controls: first generation whose true parameters cross the loop's onset rule
    collapse_oracle_alarms: np.ndarray | None = None  # the spread-loss oracle's (Gaussian loops only)

    def metric_values(self, metric: str) -> np.ndarray:
        """``[R]`` values of one metric by audited generation (NaN where it was not stored)."""
        t = self.trajectory[self.trajectory["metric"] == metric]
        out = np.full(len(self.generations), np.nan)
        position = {int(g): i for i, g in enumerate(self.generations)}
        for r, v in zip(t["round"], t["value"]):
            out[position[int(r)]] = v
        return out


@dataclass(frozen=True)
class Job:
    run_id: str
    seed: int
    settings: BenchSettings
    rules: object
    check_evidently: bool = False
    null: object = None  # the (loop, seed)'s monitor.null.LoopNull; None: the derivative rules


@dataclass(frozen=True)
class NullJob:
    """Build one (loop, seed)'s null, as a user registering the loop with a pool would."""

    family: str
    seed: int
    settings: BenchSettings

    @property
    def run_id(self) -> str:
        return f"null-{self.family}"


def build_null(job: NullJob):
    """The loop's null: a pool of ``pool_ratio`` round sizes of real data (generation 0, never the reference),
    ``null_rounds`` pseudo-rounds of it audited against the run's reference by the daemon's pipeline.

    Returns ``(family, seed, LoopNull, seconds)``.
    """
    from monitor.meta_evaluation.pools import draw_pool
    from monitor.null import audit_pseudo_rounds, null_from_rows

    settings = job.settings
    started = time.perf_counter()
    control = f"C0-{job.family}"  # the loop without feedback: its reference, and the law of its rounds
    overrides = loop_overrides(control, settings.n_audit)
    probe = CONTROL_LOOPS[control](job.seed, 1, 1, **overrides)
    n = len(probe.rounds[0])
    pool = draw_pool(control, job.seed, settings.pool_ratio * n, **overrides)
    pipeline = AuditPipeline(probe.modality, probe.reference, k=settings.k, n_boot=0, seed=job.seed)
    rows = audit_pseudo_rounds(pipeline, pool, n, range(settings.null_rounds), job.seed)
    null = null_from_rows(rows, n, len(pool), source="pool", info={"family": job.family, "seed": job.seed})
    return job.family, job.seed, null, time.perf_counter() - started


def run_job(job: Job) -> RunResult:
    """Generate, audit and evaluate one run (the worker's entry point; one torch thread)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # jobs are the parallelism; extra threads only compete on shared cores
    try:
        t0 = time.perf_counter()
        trace = generate_trace(job.run_id, job.seed, job.settings)
        t1 = time.perf_counter()
        check = [len(trace.rounds) - 1] if job.check_evidently else []
        audit = audit_trace(trace, job.settings, check_evidently=check)
        t2 = time.perf_counter()
        engine = evaluate_run(audit.trajectory, trace.generations, job.rules, job.null)
        t3 = time.perf_counter()
        oracle = oracle_alarms_of(trace, job.settings)
        collapse_oracle = collapse_oracle_alarms_of(trace, job.settings)
    finally:  # run in-process (workers=1) it must not leave the caller on one thread
        torch.set_num_threads(threads)
    seconds = {"generate": t1 - t0, **audit.seconds, "engine": t3 - t2, "total": t3 - t0,
               "rounds": float(len(trace.rounds))}
    return RunResult(trace.name, family_of(trace.name), trace.kind, trace.modality, trace.seed,
                     np.asarray(trace.generations, dtype=np.int64), trace.onset, dict(trace.params),
                     audit.trajectory, audit.drift_share, audit.mmd_pvalue, engine, audit.evidently_check, seconds,
                     audit.failures, oracle, truth_crossing(trace), collapse_oracle)


def _job_cost(run_id: str, settings: BenchSettings) -> float:
    """Relative cost of a job (audited rounds, text rounds ~8x), to order jobs longest first and weight progress."""
    if run_id.startswith("null-"):
        family = run_id[len("null-"):]
        return settings.null_rounds * 0.5 * (8.0 if family.startswith(("L3-", "L4-")) else 1.0)
    n_generations, audit_every = settings.schedule(run_id)
    rounds = n_generations // audit_every + 1
    family = family_of(run_id)
    weight = 8.0 if family.startswith(("L3-", "L4-")) else 1.0
    if family.startswith("L2-"):
        weight += 0.06 * audit_every * (3 if run_id.startswith("C1") else 1)  # EM refits per generation
    return rounds * weight


def make_null_jobs(families: Sequence[str], settings: BenchSettings) -> list[NullJob]:
    """One null per (loop, seed), most expensive first."""
    jobs = [NullJob(f, seed, settings) for f in families for seed in settings.seeds_of(f)]
    return sorted(jobs, key=lambda j: -_job_cost(j.run_id, settings))


def make_jobs(families: Sequence[str], settings: BenchSettings, rules, nulls: dict | None = None) -> list[Job]:
    """Every (run, seed) of the families, most expensive first; the first seed's runs check Evidently.

    ``nulls`` maps (family, seed) to the run's null.
    """
    def check(run_id: str, seed: int) -> bool:
        wanted = settings.evidently_check == "all" or (settings.evidently_check == "collapse"
                                                        and run_id in COLLAPSE_LOOPS)
        return wanted and seed == settings.seeds_of(family_of(run_id))[0]

    nulls = nulls or {}
    jobs = [Job(run_id, seed, settings, rules, check(run_id, seed), nulls.get((family, seed)))
            for family in families for run_id in family_members(family) for seed in settings.seeds_of(family)]
    return sorted(jobs, key=lambda j: -_job_cost(j.run_id, settings))


def _init_worker() -> None:
    """Quiet warnings, one torch thread, and the heavy imports done once (not billed to the first job)."""
    import warnings

    warnings.filterwarnings("ignore")  # Evidently and scipy warn per column; results are unaffected
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    # numpy's BLAS (OpenBLAS) was loaded with a thread per core before this ran; two workers each spinning two
    # BLAS threads on two cores made every eigendecomposition ~10x slower (the text rounds' Vendi score).
    threadpool_limits(limits=1)
    import evidently.legacy.calculations.stattests  # noqa: F401  (about 6 s of imports)
    import metrics_core  # noqa: F401


def _run_any(job):
    return build_null(job) if isinstance(job, NullJob) else run_job(job)


def run_jobs(jobs: Sequence, workers: int = 1, progress: bool = True, label: str = "benchmark") -> list:
    """Run the jobs in ``workers`` processes (in this process when 1), with a rich progress bar on stderr.

    The bar advances by each job's estimated cost, so its time-remaining column
    is the projected total from the per-round cost measured so far.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers: expected an int >= 1, got {workers!r}")
    costs = {id(j): _job_cost(j.run_id, j.settings) for j in jobs}
    results: list = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("cost units"),
               TimeElapsedColumn(), TextColumn("remaining"), TimeRemainingColumn())
    total = sum(costs.values())
    started = time.perf_counter()
    done = 0.0

    def advance(bar, task, job) -> None:
        nonlocal done
        done += costs[id(job)]
        projected = (time.perf_counter() - started) * total / done  # from the measured cost per unit so far
        bar.update(task, advance=costs[id(job)],
                   description=f"{label}: {len(jobs)} jobs, projected total {projected / 60:.1f} min")

    with Progress(*columns, console=Console(stderr=True), disable=not progress, transient=False) as bar:
        task = bar.add_task(f"{label}: {len(jobs)} jobs", total=total)
        if workers == 1:
            # In this process: no _init_worker, whose environment, thread and warning settings would outlive the run.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Evidently and scipy warn per column; results are unaffected
                for job in jobs:
                    results.append(_run_any(job))
                    advance(bar, task, job)
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            # spawn: a fresh interpreter per worker, safe after torch/OpenMP initialised in this one
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker) as pool:
                futures = {pool.submit(_run_any, job): job for job in jobs}
                for future in as_completed(futures):
                    results.append(future.result())
                    advance(bar, task, futures[future])
    if not all(isinstance(r, RunResult) for r in results):
        return results
    return sorted(results, key=lambda r: (r.family, r.kind != "collapse", r.run_id, r.seed))


# --------------------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------------------


def ranking_lead(lead_times: Sequence[int | None]) -> float:
    r"""Median lead time over runs that reached onset, a miss counting as :math:`-\infty`.

    The one number that ranks detectors: it cannot be raised by missing the
    hard runs (a detector that misses half of them or more gets
    :math:`-\infty`). NaN when no run reached onset.

    Args:
        lead_times: per run that reached onset, the lead time or None (missed).

    >>> ranking_lead([3, 1, None]), ranking_lead([4, None, None]), ranking_lead([])
    (1.0, -inf, nan)
    """
    if len(lead_times) == 0:
        return float("nan")
    values = np.array([-np.inf if v is None else float(v) for v in lead_times])
    return float(np.median(values))


def compare_detectors(a: dict, b: dict) -> str:
    """``"beats"``, ``"ties"`` or ``"loses"``: detector ``a`` against ``b`` by ranking lead, then P(alarm before
    onset); ``"n/a"`` when no run reached onset.

    >>> compare_detectors({"ranking_lead": 3.0, "p_alarm_before_onset": 1.0},
    ...                   {"ranking_lead": 3.0, "p_alarm_before_onset": 1.0})
    'ties'
    """
    if _better(a, b):
        return "beats"
    if _better(b, a):
        return "loses"
    return "n/a" if math.isnan(a["ranking_lead"]) or math.isnan(b["ranking_lead"]) else "ties"


def _better(a: dict, b: dict) -> bool:
    """Detector summary ``a`` strictly better than ``b``: higher ranking lead, then higher P(before onset)."""
    ra, rb = a["ranking_lead"], b["ranking_lead"]
    if math.isnan(ra) or math.isnan(rb):
        return False
    if ra != rb:
        return ra > rb
    return a.get("p_alarm_before_onset", 0.0) > b.get("p_alarm_before_onset", 0.0)


def detector_summary(collapse: Sequence[RunResult], alarms: Sequence[np.ndarray],
                     control_alarms: Sequence[np.ndarray]) -> dict:
    """Lead times on the collapse runs and false alarms on the controls of one detector.

    Args:
        collapse: the collapse runs.
        alarms: per collapse run, ``[R]`` alarm states.
        control_alarms: per control run, ``[R]`` alarm states.

    Returns:
        ``lead_times`` (per collapse run: int, None = missed, or "no onset"), the
        :func:`~monitor.meta_evaluation.scoring.summarise_lead_times` fields (None when no
        run reached onset), ``ranking_lead``, ``alarm_generations`` and the
        :func:`~monitor.meta_evaluation.scoring.false_alarm_summary` fields under ``false_alarms``.
    """
    leads, reached, alarm_gens = [], [], []
    for run, a in zip(collapse, alarms):
        gen = scoring.alarm_generation(a, run.generations)
        alarm_gens.append(gen)
        if run.onset is None:
            leads.append("no onset")
            continue
        lt = scoring.lead_time(run.onset, gen)
        leads.append(lt)
        reached.append(lt)
    out: dict = {"lead_times": leads, "alarm_generations": alarm_gens, "ranking_lead": ranking_lead(reached)}
    out.update(scoring.summarise_lead_times(reached) if reached else
               {"median": float("nan"), "q25": float("nan"), "q75": float("nan"), "n_runs": 0, "n_detected": 0,
                "n_missed": 0, "n_before_onset": 0, "p_alarm_before_onset": float("nan"),
                "p_alarm_before_onset_lower": float("nan")})
    out["false_alarms"] = scoring.false_alarm_summary(list(control_alarms)) if control_alarms else None
    return out


def _pooled_auc(collapse: Sequence[RunResult], controls: Sequence[RunResult],
                scores: Callable[[RunResult], np.ndarray]) -> float | None:
    """Pooled ROC-AUC of per-round scores against "past onset" (collapse and control rounds), None with one class."""
    runs = [(scores(r), scoring.past_onset_labels(r.generations, r.onset)) for r in [*collapse, *controls]]
    labels = np.concatenate([y for _, y in runs])
    if labels.all() or not labels.any():
        return None
    return scoring.pooled_roc_auc(runs)


def _engine_rate(summary: dict | None) -> float:
    """The equal-rate target: the engine's false alarms per 1000 rounds, or the issue's target when it has none."""
    if summary is None or summary["n_false_alarms"] == 0:
        return TARGET_FALSE_ALARMS_PER_1000
    return summary["rate_per_1000"]


def _baseline_at_rate(collapse, controls, score_fn, rate: float, rule) -> dict:
    """Threshold a score at ``rate`` false alarms per 1000 control rounds, then score the collapse runs."""
    control_scores = [score_fn(r) for r in controls]
    threshold = scoring.threshold_for_false_alarm_rate(control_scores, rate, rule)
    alarms = [scoring.alarms_from_scores(score_fn(r), threshold, rule) for r in collapse]
    control_alarms = [scoring.alarms_from_scores(s, threshold, rule) for s in control_scores]
    out = detector_summary(collapse, alarms, control_alarms)
    out["threshold"] = threshold
    out["target_rate_per_1000"] = rate
    return out


def _metric_scores(kind: str, metric: str) -> Callable[[RunResult], np.ndarray]:
    from metrics_core.registry import get_spec

    hib = get_spec(metric).higher_is_better
    fn = baselines.fixed_threshold_scores if kind == "fixed_threshold" else baselines.one_round_delta_scores
    return lambda run: fn(run.metric_values(metric), hib)


def _cross_fitted_best(collapse: Sequence[RunResult], per_metric: dict[str, dict], seeds: Sequence[int]) -> dict:
    r"""The best single metric of a per-metric baseline, chosen out of sample (two folds of seeds).

    Seeds are split by position (even / odd). Each fold's runs are scored with
    the metric that ranks best (:func:`ranking_lead`, then P(alarm before
    onset), then name) on the *other* fold's collapse runs, every metric's
    threshold being set on the controls at the equal rate. With one seed, or
    when the other fold has no run that reached onset, the choice is made on
    the same runs (``in_sample`` True).
    """
    fold = {s: i % 2 for i, s in enumerate(sorted(seeds))}
    metrics = sorted(per_metric)  # max() keeps the first of equals: ties go to the first name
    chosen, leads, alarm_gens, in_sample = {}, [], [], False

    def rank(metric: str, runs_idx: list[int]) -> tuple:
        lt = [per_metric[metric]["lead_times"][i] for i in runs_idx if collapse[i].onset is not None]
        reached = [v for v in lt if v != "no onset"]
        if not reached:
            return (-np.inf, -1.0)
        p = sum(1 for v in reached if v is not None and v >= 1) / len(reached)
        return (ranking_lead(reached), p)

    for f in (0, 1):
        own = [i for i, run in enumerate(collapse) if fold[run.seed] == f]
        other = [i for i, run in enumerate(collapse) if fold[run.seed] != f and run.onset is not None]
        if not own:
            continue
        pick_on = other if other else own
        in_sample = in_sample or not other
        best = max(metrics, key=lambda m: rank(m, pick_on))
        chosen[f] = best
        for i in own:
            leads.append((i, per_metric[best]["lead_times"][i]))
            alarm_gens.append((i, per_metric[best]["alarm_generations"][i]))
    leads = [v for _, v in sorted(leads)]
    reached = [v for v in leads if v != "no onset"]
    out = {"lead_times": leads, "alarm_generations": [g for _, g in sorted(alarm_gens)],
           "ranking_lead": ranking_lead(reached), "chosen_metric_by_fold": {str(k): v for k, v in chosen.items()},
           "in_sample": in_sample}
    out.update(scoring.summarise_lead_times(reached) if reached else
               {"median": float("nan"), "q25": float("nan"), "q75": float("nan"), "n_runs": 0, "n_detected": 0,
                "n_missed": 0, "n_before_onset": 0, "p_alarm_before_onset": float("nan"),
                "p_alarm_before_onset_lower": float("nan")})
    # the combination's false alarms on the controls: each control run uses its fold's metric
    return out


def small_drift_alarms(runs: Sequence[RunResult]) -> dict:
    """C1/C2 runs scored against their own truth: collapse alarms before, at/after, or without a real crossing.

    An alarm before the run's true parameters cross the loop's onset rule
    (:func:`truth_crossing`) is a *small-drift alarm*: the loop did drift
    toward collapse, just not past the line. Not a false alarm.
    """
    out = {"n_runs": len(runs), "crossed": 0, "alarm_before_crossing": 0, "alarm_after_crossing": 0,
           "alarm_without_crossing": 0, "quiet": 0}
    for r in runs:
        gen = scoring.alarm_generation(r.engine.alarms, r.generations)
        if r.truth_crossing is not None:
            out["crossed"] += 1
        if gen is None:
            out["quiet"] += 1
        elif r.truth_crossing is None:
            out["alarm_without_crossing"] += 1
        elif gen < r.truth_crossing:
            out["alarm_before_crossing"] += 1
        else:
            out["alarm_after_crossing"] += 1
    return out


def drift_control_summary(runs: Sequence[RunResult]) -> dict | None:
    """Pure-drift controls (D0): how many runs raised the collapse signal (should be none) and the drift signal."""
    if not runs:
        return None
    drift = [r.engine.drift_alarms for r in runs if r.engine.drift_alarms is not None]
    return {"n_runs": len(runs),
            "collapse_alarm_runs": int(sum(bool(r.engine.alarms.any()) for r in runs)),
            "drift_alarm_runs": int(sum(bool(a.any()) for a in drift)),
            "drift_alarm_generations": [scoring.alarm_generation(a, r.generations) for r, a in zip(runs, drift)]}


def score_family(runs: Sequence[RunResult], rules) -> dict:
    r"""Every number of one family: the engine's (loop and per metric) and the baselines' at equal false-alarm rate.

    * Engine, loop level: lead times of the first loop alarm
      (:func:`~monitor.meta_evaluation.scoring.summarise_lead_times`), false alarms on the
      family's control runs (:func:`~monitor.meta_evaluation.scoring.false_alarm_summary`),
      pooled ROC-AUC of the loop risk against "past onset" over the collapse
      and control rounds.
    * Engine, per metric: the same with the metric's own first raise and risk.
    * Baselines, thresholded with the engine's raise rule
      (:func:`~monitor.meta_evaluation.scoring.sustained_rule` of ``sustain_rounds``)
      at the engine's false-alarm rate on these controls (the issue's 1 per
      1000 rounds when the engine has none),
      :func:`~monitor.meta_evaluation.scoring.threshold_for_false_alarm_rate`:
      Evidently drift share and the MMD test at the loop's rate; the fixed
      threshold and the one-round delta per metric at that metric's engine
      rate (metric-level comparison) and at the loop's rate, where the loop
      level uses the best single metric chosen out of sample
      (:func:`_cross_fitted_best`).

    Args:
        runs: every run of the family (collapse and controls, all seeds).
        rules: the rules the engine ran with (for ``sustain_rounds``).
    """
    collapse = [r for r in runs if r.kind == "collapse"]
    every_control = [r for r in runs if r.kind == "control"]
    # False alarms are counted on no-feedback controls only: C1/C2 drift in truth, D0 drifts by design.
    controls = [r for r in every_control if r.run_id.startswith("C0-")]
    if not collapse or not controls:
        raise ValueError(f"runs: a family needs collapse and C0 control runs, got {len(collapse)} and {len(controls)}")
    family = collapse[0].family
    sustain = int(rules.document.get("defaults", {}).get("sustain_rounds", 1))
    rule = scoring.sustained_rule(sustain)
    seeds = sorted({r.seed for r in collapse})

    engine = detector_summary(collapse, [r.engine.alarms for r in collapse], [r.engine.alarms for r in controls])
    engine["roc_auc"] = _pooled_auc(collapse, controls, lambda r: r.engine.risk)
    engine["first_metrics"] = [r.engine.first_metrics for r in collapse]
    engine["control_first_metrics"] = {f"{r.run_id}@{r.seed}": r.engine.first_metrics for r in controls
                                       if r.engine.first_metrics}
    # C0 (no feedback) is the clean null; C1/C2 feed real data back and may drift in truth (loops' docstrings)
    engine["false_alarms_by_control"] = {
        prefix: scoring.false_alarm_summary([r.engine.alarms for r in every_control
                                             if r.run_id.startswith(prefix + "-")])
        for prefix in CONTROL_PREFIXES if any(r.run_id.startswith(prefix + "-") for r in every_control)}
    engine["drift_false_alarms"] = scoring.false_alarm_summary(
        [r.engine.drift_alarms for r in controls if r.engine.drift_alarms is not None])
    engine["small_drift"] = small_drift_alarms([r for r in every_control if r.run_id[:2] in ("C1", "C2")])
    engine["drift_control"] = drift_control_summary([r for r in every_control if r.run_id.startswith("D0-")])
    # What a user's pager sees first: either signal's alert (CollapseWarning or CollapseDriftDetected). Both
    # are covered by the one mixture guarantee; baselines are change detectors too (they fire on drift).
    first_alert = None
    if all(r.engine.drift_alarms is not None for r in [*collapse, *controls]):
        first_alert = detector_summary(collapse, [r.engine.alarms | r.engine.drift_alarms for r in collapse],
                                       [r.engine.alarms | r.engine.drift_alarms for r in controls])
    oracle = None
    if all(r.oracle_alarms is not None for r in [*collapse, *controls]):
        oracle = detector_summary(collapse, [r.oracle_alarms for r in collapse], [r.oracle_alarms for r in controls])
    collapse_oracle = None
    if all(r.collapse_oracle_alarms is not None for r in [*collapse, *controls]):
        collapse_oracle = detector_summary(collapse, [r.collapse_oracle_alarms for r in collapse],
                                           [r.collapse_oracle_alarms for r in controls])
    loop_rate = _engine_rate(engine["false_alarms"])

    metrics = sorted(set().union(*(r.engine.metric_alarms for r in runs)))
    per_metric: dict[str, dict] = {}
    for m in metrics:
        def alarms_of(r, m=m):
            return r.engine.metric_alarms.get(m, np.zeros(len(r.generations), bool))

        summary = detector_summary(collapse, [alarms_of(r) for r in collapse], [alarms_of(r) for r in controls])
        summary["roc_auc"] = _pooled_auc(
            collapse, controls, lambda r, m=m: r.engine.metric_risk.get(m, np.zeros(len(r.generations))))
        summary["enabled"] = bool(rules.for_metric(m).enabled)
        per_metric[m] = {"engine": summary}

    # Per-metric baselines watch the metrics the engine watches (its enabled ones).
    watched = [m for m in metrics if per_metric[m]["engine"]["enabled"]]
    loop_level: dict[str, dict] = {}
    fold = {s: i % 2 for i, s in enumerate(seeds)}
    for kind in ("fixed_threshold", "one_round_delta"):
        at_loop_rate = {}
        for m in watched:
            score_fn = _metric_scores(kind, m)
            rate_m = _engine_rate(per_metric[m]["engine"]["false_alarms"])
            per_metric[m][kind] = _baseline_at_rate(collapse, controls, score_fn, rate_m, rule)
            per_metric[m][kind]["roc_auc"] = _pooled_auc(collapse, controls, score_fn)
            at_loop_rate[m] = _baseline_at_rate(collapse, controls, score_fn, loop_rate, rule)
        best = _cross_fitted_best(collapse, at_loop_rate, seeds)
        # The combination's false alarms: each control run scored with the metric chosen for its seed's fold.
        chosen = best["chosen_metric_by_fold"]
        control_alarms = []
        for r in controls:
            m = chosen.get(str(fold[r.seed])) or next(iter(chosen.values()), None)
            if m is not None:
                control_alarms.append(scoring.alarms_from_scores(_metric_scores(kind, m)(r),
                                                                 at_loop_rate[m]["threshold"], rule))
        best["false_alarms"] = scoring.false_alarm_summary(control_alarms) if control_alarms else None
        best["target_rate_per_1000"] = loop_rate
        best["thresholds"] = {m: at_loop_rate[m]["threshold"] for m in set(chosen.values())}
        best["roc_auc"] = None  # a per-fold choice of metric has no single score to rank
        loop_level[kind] = best

    drift = _baseline_at_rate(collapse, controls, lambda r: baselines.drift_share_scores(r.drift_share), loop_rate,
                              rule)
    drift["roc_auc"] = _pooled_auc(collapse, controls, lambda r: baselines.drift_share_scores(r.drift_share))
    loop_level["evidently_drift_share"] = drift
    mmd_score = lambda r: -np.log10(r.mmd_pvalue)  # noqa: E731  (baselines.mmd_permutation_scores, per round)
    mmd = _baseline_at_rate(collapse, controls, mmd_score, loop_rate, rule)
    mmd["roc_auc"] = _pooled_auc(collapse, controls, mmd_score)
    loop_level["mmd_permutation"] = mmd

    best_name = None
    for name in BASELINES:
        if best_name is None or _better(loop_level[name], loop_level[best_name]):
            best_name = name
    onsets = [r.onset for r in collapse if r.onset is not None]
    versus = {name: compare_detectors(engine, loop_level[name]) for name in BASELINES}
    first_alert_versus = None if first_alert is None else \
        {name: compare_detectors(first_alert, loop_level[name]) for name in BASELINES}
    return {
        "family": family,
        "modality": collapse[0].modality,
        "params": {k: v for k, v in collapse[0].params.items() if k not in ("workflow", "fresh_fraction")},
        "n_seeds": len(seeds),
        "seeds": seeds,
        "onsets": [r.onset for r in collapse],
        "onset_median": float(np.median(onsets)) if onsets else float("nan"),
        "n_onset_reached": len(onsets),
        "engine": engine,
        "oracle": oracle,
        "collapse_oracle": collapse_oracle,
        "equal_rate_per_1000": loop_rate,
        "sustain_rounds": sustain,
        "metrics": per_metric,
        "baselines": loop_level,
        "best_baseline": best_name,
        "engine_beats": {name: v == "beats" for name, v in versus.items()},
        "engine_versus": versus,
        "first_alert": first_alert,
        "first_alert_versus": first_alert_versus,
    }


# --------------------------------------------------------------------------------------------------------------
# Targets, headline, the whole benchmark
# --------------------------------------------------------------------------------------------------------------


def _fmt_gen(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:g}"


def blind_spots(family: dict) -> dict:
    """Per metric, computed from the family's runs: never raised on any collapse run, raised late, false alarms.

    Returns ``{"never_raised": [...], "before_onset_90": [...], "late_only": [...],
    "false_alarm_metrics": {metric: count of control runs whose first alarm it raised}}``.
    """
    never, good, late = [], [], []
    for m, d in family["metrics"].items():
        e = d["engine"]
        if not e["enabled"]:
            continue
        if e["n_runs"] and e["n_detected"] == 0:
            never.append(m)
        elif e["n_runs"] and e["p_alarm_before_onset"] >= TARGET_P_BEFORE_ONSET:
            good.append(m)
        elif e["n_runs"] and e["n_before_onset"] == 0:
            late.append(m)
    fa: dict[str, int] = {}
    for metrics in family["engine"]["control_first_metrics"].values():
        for m in metrics:
            fa[m] = fa.get(m, 0) + 1
    return {"never_raised": sorted(never), "before_onset_90": sorted(good), "late_only": sorted(late),
            "false_alarm_metrics": dict(sorted(fa.items(), key=lambda kv: (-kv[1], kv[0])))}


def targets(families: dict[str, dict]) -> dict:
    """The detection issue's targets per family and overall, with reasons computed from the data.

    * false alarms: at most 1 per 1,000 no-feedback (C0) rounds, with the exact Poisson upper bound under 2;
    * early alarms: P(alarm before onset) >= 0.9, or within 0.05 of the oracle's where the oracle is below 0.95;
    * baselines: the engine's ranking lead >= every baseline's on every loop, and strictly greater than
      every baseline's on at least half of the loops;
    * drift: the pure-drift control (D0) raises no collapse alarm.
    """
    per_family = {}
    c0_summaries = []
    for name, fam in families.items():
        e = fam["engine"]
        spots = blind_spots(fam)
        oracle = fam.get("oracle")
        oracle_p = None if oracle is None or oracle["n_runs"] == 0 else oracle["p_alarm_before_onset"]
        if e["n_runs"] == 0:
            detect_ok = None
        else:
            p = e["p_alarm_before_onset"]
            detect_ok = p >= TARGET_P_BEFORE_ONSET or (oracle_p is not None and oracle_p < 0.95
                                                        and p >= oracle_p - 0.05)
        fa = e["false_alarms"]
        fa_ok = fa["rate_per_1000"] <= TARGET_FALSE_ALARMS_PER_1000 and fa["rate_per_1000_upper"] < 2.0
        versus = fam["engine_versus"]
        no_loss = None if e["n_runs"] == 0 else not any(v == "loses" for v in versus.values())
        beats_all = None if e["n_runs"] == 0 else all(v == "beats" for v in versus.values())
        d0 = e.get("drift_control")
        drift_ok = None if d0 is None else d0["collapse_alarm_runs"] == 0
        first = fam.get("first_alert_versus")
        first_no_loss = None if first is None or e["n_runs"] == 0 else not any(v == "loses" for v in first.values())
        first_beats_all = None if first is None or e["n_runs"] == 0 else all(v == "beats" for v in first.values())
        reasons = []

        def names(ms):
            return ", ".join(f"`{m}`" for m in ms) or "none"

        if detect_ok is False:
            reasons.append(
                f"alarm before onset in {e['n_before_onset']} of {e['n_runs']} runs that reached onset "
                f"({e['n_missed']} missed; the oracle: {'n/a' if oracle_p is None else f'{oracle_p:.2f}'}"
                + ("" if not fam.get("collapse_oracle") or fam["collapse_oracle"]["n_runs"] == 0 else
                   f", the collapse oracle (spread loss only): {fam['collapse_oracle']['p_alarm_before_onset']:.2f}")
                + "); "
                f"metrics that never raised on a collapse run: {names(spots['never_raised'])}; raised only at or "
                f"after onset: {names(spots['late_only'])}")
        if not fa_ok:
            reasons.append(
                f"{fa['n_false_alarms']} false alarm(s) in {fa['rounds_at_risk']} C0 rounds at risk (upper bound "
                f"{fa['rate_per_1000_upper']:.2f} per 1,000), first raised by "
                + (", ".join(f"`{m}` ({n})" for m, n in spots["false_alarm_metrics"].items()) or "the combined chart"))
        if no_loss is False:
            which = [n for n, v in versus.items() if v == "loses"]
            reasons.append("the engine's ranking lead time loses to " + ", ".join(
                f"{BASELINE_TITLES[n]} (baseline {_fmt_gen(fam['baselines'][n]['ranking_lead'])}, engine "
                f"{_fmt_gen(e['ranking_lead'])})" for n in which))
        if drift_ok is False:
            reasons.append(f"the pure-drift control raised the collapse signal in {d0['collapse_alarm_runs']} of "
                           f"{d0['n_runs']} runs")
        per_family[name] = {"detected_before_onset_90": detect_ok, "false_alarms_at_most_1_per_1000": fa_ok,
                            "no_baseline_ahead": no_loss, "beats_every_baseline": beats_all,
                            "drift_control_quiet": drift_ok, "first_alert_no_baseline_ahead": first_no_loss,
                            "first_alert_beats_every_baseline": first_beats_all, "reasons": reasons,
                            "blind_spots": spots}
        c0_summaries.append(fa)

    events = sum(f["n_false_alarms"] for f in c0_summaries)
    exposure = sum(f["rounds_at_risk"] for f in c0_summaries)
    pooled = {"n_false_alarms": events, "rounds_at_risk": exposure,
              "rate_per_1000": 1000.0 * events / exposure if exposure else float("nan"),
              "arl0": exposure / events if events else float("inf")}
    return {"per_family": per_family, "pooled_false_alarms": pooled, "pooled_c0_false_alarms": pooled,
            "all_detected_before_onset_90": all(v["detected_before_onset_90"] is not False for v in per_family.values()),
            "false_alarms_at_most_1_per_1000_everywhere": all(v["false_alarms_at_most_1_per_1000"]
                                                              for v in per_family.values()),
            "pooled_false_alarms_at_most_1_per_1000": pooled["rate_per_1000"] <= TARGET_FALSE_ALARMS_PER_1000,
            "beats_every_baseline_everywhere": _beats_everywhere(per_family, "no_baseline_ahead",
                                                                 "beats_every_baseline"),
            "drift_controls_quiet": all(v["drift_control_quiet"] is not False for v in per_family.values()),
            "first_alert_beats_every_baseline_everywhere":
                None if all(f.get("first_alert_versus") is None for f in families.values())
                else _beats_everywhere(per_family, "first_alert_no_baseline_ahead", "first_alert_beats_every_baseline")}


def _beats_everywhere(per_family: dict, no_loss_key: str, beats_key: str) -> bool:
    """No baseline ahead on any loop, and ahead of every baseline on at least half of the decided loops."""
    decided = [v for v in per_family.values() if v[beats_key] is not None]
    return all(v[no_loss_key] is not False for v in per_family.values()) \
        and 2 * sum(bool(v[beats_key]) for v in decided) >= len(decided)


def headline(families: dict[str, dict]) -> list[dict]:
    """One row per collapse loop: the README's table."""
    rows = []
    for name, fam in families.items():
        e = fam["engine"]
        best = fam["best_baseline"]
        b = fam["baselines"][best]
        c0 = e["false_alarms_by_control"].get("C0")
        rows.append({
            "loop": name,
            "onset_median": fam["onset_median"],
            "n_onset_reached": fam["n_onset_reached"],
            "n_seeds": fam["n_seeds"],
            "lead_median": e["median"], "lead_q25": e["q25"], "lead_q75": e["q75"],
            "p_alarm_before_onset": e["p_alarm_before_onset"],
            "n_before_onset": e["n_before_onset"],
            "n_detected": e["n_detected"],
            "n_runs": e["n_runs"],
            "false_alarms_per_1000": e["false_alarms"]["rate_per_1000"],
            "c0_false_alarms_per_1000": c0["rate_per_1000"] if c0 else float("nan"),
            "c0_n_false_alarms": c0["n_false_alarms"] if c0 else 0,
            "c0_rounds_at_risk": c0["rounds_at_risk"] if c0 else 0,
            "n_false_alarms": e["false_alarms"]["n_false_alarms"],
            "control_rounds_at_risk": e["false_alarms"]["rounds_at_risk"],
            "arl0": e["false_alarms"]["arl0"],
            "roc_auc": e["roc_auc"],
            "engine_ranking_lead": e["ranking_lead"],
            "best_baseline": best,
            "best_baseline_lead_median": b["median"],
            "best_baseline_ranking_lead": b["ranking_lead"],
            "best_baseline_p_alarm_before_onset": b["p_alarm_before_onset"],
            "equal_rate_per_1000": fam["equal_rate_per_1000"],
            "c0_false_alarms_upper_per_1000": c0["rate_per_1000_upper"] if c0 else float("nan"),
            "oracle_p_alarm_before_onset": (fam["oracle"] or {}).get("p_alarm_before_onset", float("nan")),
            "oracle_lead_median": (fam["oracle"] or {}).get("median", float("nan")),
            "collapse_oracle_p_alarm_before_onset": (fam.get("collapse_oracle") or {}).get("p_alarm_before_onset",
                                                                                           float("nan")),
            "d0_collapse_alarm_runs": (e.get("drift_control") or {}).get("collapse_alarm_runs"),
            "d0_drift_alarm_runs": (e.get("drift_control") or {}).get("drift_alarm_runs"),
            "d0_runs": (e.get("drift_control") or {}).get("n_runs"),
            "first_alert_lead_median": (fam.get("first_alert") or {}).get("median", float("nan")),
            "first_alert_p_alarm_before_onset": (fam.get("first_alert") or {}).get("p_alarm_before_onset",
                                                                                   float("nan")),
        })
    return rows


def _timings(results: Sequence[RunResult], wall_seconds: float, workers: int) -> dict:
    per_modality: dict[str, dict] = {}
    for r in results:
        d = per_modality.setdefault(r.modality, {"rounds": 0.0, "metrics": 0.0, "evidently": 0.0, "mmd": 0.0,
                                                 "engine": 0.0, "generate": 0.0, "total": 0.0,
                                                 "evidently_check": 0.0})
        for k in d:
            d[k] += r.seconds.get(k, 0.0)
    per_loop: dict[str, float] = {}
    for r in results:
        if r.kind == "collapse":
            per_loop.setdefault(r.family, []).append(r.seconds["generate"])
    cpu = sum(r.seconds["total"] for r in results)
    return {
        "wall_seconds": wall_seconds,
        "job_seconds": cpu,
        "workers": workers,
        "per_modality": {m: {**d, "seconds_per_round": d["total"] / d["rounds"] if d["rounds"] else float("nan")}
                         for m, d in per_modality.items()},
        "generate_seconds_median": {k: float(np.median(v)) for k, v in per_loop.items()},
    }


def machine() -> dict:
    """The machine the benchmark ran on, for the report's header."""
    import torch

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__}


@dataclass
class BenchResult:
    settings: BenchSettings
    families: dict[str, dict]
    targets: dict
    headline: list[dict]
    runs: list[RunResult]
    timings: dict
    evidently_check: list[dict]
    rules_sources: list[str]
    machine: dict
    date: str = ""
    rules_target_arl0: float | None = None  # the rules' own calibration target (rounds)
    nulls: dict = field(default_factory=dict, repr=False)  # (family, seed) -> monitor.null.LoopNull

    def summary(self) -> dict:
        """JSON-ready: settings, headline, targets, per-family scores and timings (not the per-round data)."""
        checks = self.evidently_check
        return {
            "settings": self.settings.as_dict(),
            "date": self.date,
            "rules_target_arl0": self.rules_target_arl0,
            "rules": self.rules_sources,
            "machine": self.machine,
            "timings": self.timings,
            "headline": self.headline,
            "targets": self.targets,
            "families": self.families,
            "evidently_check": {"rounds": checks,
                                "max_abs_difference": max((abs(c["fast"] - c["full"]) for c in checks), default=None)},
        }


def run_benchmark(settings: BenchSettings, rules, *, families: Sequence[str] | None = None, workers: int = 1,
                  progress: bool = True, rules_sources: Sequence[str] = ()) -> BenchResult:
    """Run every (family member, seed), then score every family.

    Args:
        settings: sizes, seeds and schedules.
        rules: the engine's resolved rules.
        families: collapse loop ids (default: all).
        workers: worker processes.
        progress: show the progress bar (stderr).
        rules_sources: where the rules came from, for the report.
    """
    chosen = list(families) if families is not None else list(COLLAPSE_LOOPS)
    started = time.perf_counter()
    built = run_jobs(make_null_jobs(chosen, settings), workers=workers, progress=progress, label="nulls")
    nulls = {(family, seed): null for family, seed, null, _ in built}
    null_seconds = sum(seconds for *_, seconds in built)
    jobs = make_jobs(chosen, settings, rules, nulls)
    results = run_jobs(jobs, workers=workers, progress=progress)
    wall = time.perf_counter() - started
    scored = {f: score_family([r for r in results if r.family == f], rules) for f in chosen}
    checks = [c for r in results for c in r.evidently_check]
    return BenchResult(settings, scored, targets(scored), headline(scored), results,
                       {**_timings(results, wall, workers), "null_cpu_seconds": null_seconds}, checks, list(rules_sources), machine(),
                       date=time.strftime("%Y-%m-%d %H:%M"), rules_target_arl0=rules.target_arl0, nulls=nulls)
