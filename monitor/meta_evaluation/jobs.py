r"""The meta-evaluation's jobs: one null or one run each, and the worker pool that runs them.

Part of the meta-evaluation runner (:mod:`monitor.meta_evaluation.runner`, whose docstring defines the
terms).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from monitor.modalities.pipeline import AuditPipeline
from monitor.meta_evaluation.settings import (
    BenchSettings, COLLAPSE_LOOPS, CONTROL_LOOPS, family_members, family_of, generate_trace, loop_overrides,
)
from monitor.meta_evaluation.audit import (
    EngineRun, audit_trace, collapse_oracle_alarms_of, evaluate_run, oracle_alarms_of, truth_crossing,
)


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
    null: object = None  # the (loop, seed)'s monitor.engine.null.LoopNull; None: the derivative rules


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

    Sizes are in the modality's units (:func:`monitor.engine.null.unit_count`), as the daemon's null counts them:
    rows, or for reasoning questions (a pseudo-round draws whole questions, each with its samples). A reasoning
    pool's questions come from the loop's bank (their gold answers are in the reference), without replacement,
    so it holds at most the bank's questions (:data:`~monitor.meta_evaluation.settings.REASONING_BANK`).

    Returns ``(family, seed, LoopNull, seconds)``.
    """
    from monitor.meta_evaluation.audit import pipeline_input, pipeline_options
    from monitor.meta_evaluation.pools import draw_pool, pool_capacity
    from monitor.engine.null import audit_pseudo_rounds, null_from_rows, unit_count

    settings = job.settings
    started = time.perf_counter()
    control = f"C0-{job.family}"  # the loop without feedback: its reference, and the law of its rounds
    overrides = loop_overrides(control, settings.n_audit)
    probe = CONTROL_LOOPS[control](job.seed, 1, 1, **overrides)
    n = unit_count(pipeline_input(probe.modality, probe.rounds[0], f"{control} generation 0"))
    size = settings.pool_ratio * n
    if probe.modality == "reasoning":  # bank questions only (L4's C0 pool, generation 0's sentences, has no cap)
        size = min(size, pool_capacity(control, **overrides))
    pool = pipeline_input(probe.modality, draw_pool(control, job.seed, size, **overrides),
                          f"{job.family} pool", role="pool")  # parsed once, pseudo-rounds are its take_units
    reference = pipeline_input(probe.modality, probe.reference, f"{control} reference", role="reference")
    pipeline = AuditPipeline(probe.modality, reference, k=settings.k, n_boot=0, seed=job.seed,
                             **pipeline_options(probe.modality))
    rows = audit_pseudo_rounds(pipeline, pool, n, range(settings.null_rounds), job.seed)
    null = null_from_rows(rows, n, unit_count(pool), source="pool", info={"family": job.family, "seed": job.seed})
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


# settings.STRUCTURED_MAX_AUDIT's costs, and L11's (settings.REASONING_MAX_QUESTIONS, REASONING_BANK)
_STRUCTURED_WEIGHTS = {"L7-": 6.0, "L8-": 4.0, "L9-": 1.0, "L10-": 1.0, "L11-": 3.0}


def _round_weight(family: str) -> float:
    """Relative cost of one audited round of a family: text ~8x an embedding round, agent ~2x, JSON ~6x (the
    tabular suite on the flattened fields), graph ~4x (descriptor histograms), log and image-text ~1x,
    reasoning ~3x (the text suite on the rationales, the MMD test against a reference of 1,000 records)."""
    if family.startswith(("L3-", "L4-")):
        return 8.0
    if family.startswith("L6-"):
        return 2.0
    return next((w for prefix, w in _STRUCTURED_WEIGHTS.items() if family.startswith(prefix)), 1.0)


def _job_cost(run_id: str, settings: BenchSettings) -> float:
    """Relative cost of a job (audited rounds times :func:`_round_weight`), to order jobs longest first and
    weight progress."""
    if run_id.startswith("null-"):
        return settings.null_rounds * 0.5 * _round_weight(run_id[len("null-"):])
    n_generations, audit_every = settings.schedule(run_id)
    rounds = n_generations // audit_every + 1
    family = family_of(run_id)
    weight = _round_weight(family)
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


def _die_with(parent_pid: int) -> None:
    """Make this worker die with the run that started it (Linux): a ``meta-evaluate`` stopped by SIGTERM or
    ``kill -9`` used to leave its workers computing their jobs as orphans."""
    import sys

    from monitor.lifetime import die_with_parent

    if not sys.platform.startswith("linux") or not die_with_parent():
        return
    if os.getppid() != parent_pid:  # the run died before the signal was armed
        os._exit(1)


def _init_worker(parent_pid: int | None = None) -> None:
    """Die with the run, quiet warnings, one torch thread, and the heavy imports done once (not billed to the
    first job)."""
    if parent_pid is not None:
        _die_with(parent_pid)
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
            with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                                     initargs=(os.getpid(),)) as pool:
                futures = {pool.submit(_run_any, job): job for job in jobs}
                for future in as_completed(futures):
                    results.append(future.result())
                    advance(bar, task, futures[future])
    if not all(isinstance(r, RunResult) for r in results):
        return results
    return sorted(results, key=lambda r: (r.family, r.kind != "collapse", r.run_id, r.seed))
