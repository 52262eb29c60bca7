r"""The benchmark runner: audit every seeded loop and control in-process, run the engine, score every detector.

Survey §8.1 (meta-evaluation). A *family* is one collapse loop (``L1-d1-M20``,
..., ``L4-text``, ``L6-agent``, ``L7-json``, ``L8-graph``, ``L9-log``, ``L10-image-text``,
``L11-reasoning``) with its controls ``C0-``, ``C1-``, ``C2-<loop id>`` (L7 and L10: C0 only)
(:mod:`monitor.meta_evaluation.loops`, :mod:`monitor.meta_evaluation.textloop`,
:mod:`monitor.meta_evaluation.loop_agent`, :mod:`~monitor.meta_evaluation.loop_json_records`,
:mod:`~monitor.meta_evaluation.loop_graphs`, :mod:`~monitor.meta_evaluation.loop_logs`,
:mod:`~monitor.meta_evaluation.loop_image_text`, :mod:`~monitor.meta_evaluation.loop_reasoning`) and, where it has one, its pure-drift control ``D0-<loop id>``
(:mod:`monitor.meta_evaluation.drift`). A *run* is one family member at one seed, generated as a
:class:`~monitor.meta_evaluation.trace.LoopTrace`.

**Audit, as the daemon does it** (``flows/audit.py``), but in-process: no
Prefect, MLflow or store. Per run the reference is prepared once (the
embedding suite's :func:`metrics_core.fit_suite_reference`; text: the
hashing featurizer fitted on the reference and :func:`metrics_core.text.fit_text_reference`;
tabular: the schema and encoding fitted by :class:`monitor.modalities.pipeline.AuditPipeline`;
agent: the reference's episodes, and the hashing featurizer fitted on their action sequences),
then every audited generation ``g`` gets

* the modality's own metrics (text: :func:`metrics_core.text.text_suite`;
  tabular: :func:`metrics_core.tabular.tabular_suite`; agent: :func:`metrics_core.agents.agent_suite`),
  through :class:`monitor.modalities.pipeline.AuditPipeline`, the daemon's own audit steps (agent
  rounds, lists of episode dicts, are parsed once per round into :class:`monitor.inputs.LoadedEpisodes`
  by :func:`monitor.inputs.episodes.episodes_from_objects`, as the daemon's loader parses a file, and JSON,
  graph, log and reasoning rounds likewise (reasoning: :class:`monitor.inputs.LoadedRecords`, the reference
  with its gold answers): :func:`monitor.meta_evaluation.audit.pipeline_input`; JSON rounds are checked
  against the loop's schema and graph rounds against the shipped rules, as ``--schema`` and ``--constraints``
  would: :func:`monitor.meta_evaluation.audit.pipeline_options`);
* :func:`metrics_core.embedding_suite` on the embeddings (embedding rounds as
  they are, text and agent action sequences through the hashing featurizer, tabular rows encoded);
* Evidently's drift share (below), recorded as ``evidently_drift_share`` for
  rounds whose daemon report the benchmark reproduces (``Modality.drift_view`` text or table), and for every
  modality as a baseline;
* the MMD permutation p-value of the round against the reference
  (:func:`monitor.meta_evaluation.baselines.mmd_permutation_pvalue`), a baseline only.

Metric values that are not finite are dropped from that round, as the daemon
drops them. The trajectory rows (``loop, round, metric, value, ci_low,
ci_high, std_error``, the columns of ``TrajectoryStore.trajectory``) use the
**generation as the round number** (what a user passes to ``collapse-monitor
audit``), so slopes are per generation and lead times are in generations.

**The engine**: :func:`monitor.engine.alerts.evaluate_loop` on the run's whole
trajectory with the given rules (the calibrated operating point: the shipped
defaults unless ``--rules`` overlays them). The replay of a trajectory's states
at round ``r`` only uses rounds up to ``r``, so the replay of the finished run
says what the daemon reported at every round. Per round:

* loop alarm state :math:`A_r` = some metric's state is raised (warning or
  critical) at round ``r``; the loop's alarm is the first such round;
* metric ``m``'s alarm state = ``m``'s own state is raised;
* loop risk = the engine's ``risk`` column; metric risk =
  :func:`monitor.engine.alerts.metric_risk` (0 on a round where the metric is missing).

**Evidently's drift share, fast.** :mod:`monitor.publishing.evidently_report` builds a
full Evidently report, about 0.12 s per column, almost all of it plotly
widget rendering. :func:`evidently_drift_share` runs the same per-column test
Evidently's ``ValueDrift`` runs (``get_one_column_drift``: drop infinite and
NaN values, ``get_stattest(reference, current, type, None)``, its default
threshold), on the columns :mod:`monitor.publishing.evidently_report` builds (text, and agent
rounds' action sequences: the five descriptors and the pooled principal components of the embeddings;
tabular: the typed columns; embedding rounds, which the daemon does not send
to Evidently: the pooled principal components alone,
:math:`K = \min(16, D, N + M - 1)`), and returns the share of drifted
columns. The runner checks it against the full report on chosen rounds
(``BenchSettings.evidently_check``) and reports the largest difference.

Scoring is :mod:`monitor.meta_evaluation.scoring`; see :func:`score_family`.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from monitor.meta_evaluation.settings import BenchSettings, COLLAPSE_LOOPS
from monitor.meta_evaluation.jobs import RunResult, make_jobs, make_null_jobs, run_jobs
from monitor.meta_evaluation.comparison import score_family
from monitor.meta_evaluation.targets import headline, targets
from monitor.meta_evaluation.settings import (  # noqa: F401 - the runner's names, as before the split
    AGENT_MAX_AUDIT, BASELINES, BASELINE_TITLES, CONTROL_LOOPS, CONTROL_PREFIXES, DRIFT_SHARE, EVIDENTLY_EMBEDDING_DIMS,
    FULL_SCHEDULES, QUICK_SCHEDULES, TARGET_FALSE_ALARMS_PER_1000, TARGET_P_BEFORE_ONSET, default_settings,
    family_members, family_of, generate_trace, is_text_family, loop_overrides, select_families,
)
from monitor.meta_evaluation.evidently_share import (  # noqa: F401 - the runner's names, as before the split
    evidently_columns, evidently_drift_share, evidently_full_report_share,
)
from monitor.meta_evaluation.audit import (  # noqa: F401 - the runner's names, as before the split
    EngineRun, RunAudit, _finite, audit_trace, collapse_oracle_alarms_of, evaluate_run, oracle_alarms_of,
    truth_crossing,
)
from monitor.meta_evaluation.jobs import (  # noqa: F401 - the runner's names, as before the split
    Job, NullJob, _init_worker, _job_cost, _run_any, build_null, run_job,
)
from monitor.meta_evaluation.comparison import (  # noqa: F401 - the runner's names, as before the split
    _baseline_at_rate, _better, _cross_fitted_best, _engine_rate, _metric_scores, _pooled_auc,
    compare_detectors, detector_summary, drift_control_summary, ranking_lead, small_drift_alarms,
)
from monitor.meta_evaluation.targets import (  # noqa: F401 - the runner's names, as before the split
    _beats_everywhere, _fmt_gen, blind_spots,
)


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
    nulls: dict = field(default_factory=dict, repr=False)  # (family, seed) -> monitor.engine.null.LoopNull
    rescored: str = ""  # when the engine was re-applied to an archive of this run (rescore), else ""

    def summary(self) -> dict:
        """JSON-ready: settings, headline, targets, per-family scores and timings (not the per-round data)."""
        checks = self.evidently_check
        return {
            "settings": self.settings.as_dict(),
            "date": self.date,
            "rescored": self.rescored,
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


def rescore(archive, rules, *, families: Sequence[str] | None = None, rules_sources: Sequence[str] = ()) -> BenchResult:
    """Re-apply the engine (and ``rules``) to an archived meta-evaluation's runs and score them again.

    Nothing is audited: the runs' trajectories, baselines' inputs, oracles and nulls are the archive's
    (:mod:`monitor.meta_evaluation.archive`), so this takes seconds where the run took an hour.

    Args:
        archive: a :class:`monitor.meta_evaluation.archive.Archive`.
        rules: the engine's resolved rules.
        families: loop ids to score (default: every loop in the archive).
        rules_sources: where the rules came from, for the report.
    """
    import dataclasses
    import warnings

    chosen = list(families) if families is not None else list(archive.families)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # as in the run's workers (jobs._init_worker)
        runs = [dataclasses.replace(r, engine=evaluate_run(r.trajectory, r.generations, rules,
                                                            archive.nulls.get((r.family, r.seed))))
                for r in archive.runs if r.family in chosen]
    runs.sort(key=lambda r: (r.family, r.kind != "collapse", r.run_id, r.seed))
    scored = {f: score_family([r for r in runs if r.family == f], rules) for f in chosen}
    checks = [c for r in runs for c in r.evidently_check]
    return BenchResult(archive.settings, scored, targets(scored), headline(scored), runs, archive.timings, checks,
                       list(rules_sources), archive.machine, date=archive.date, rules_target_arl0=rules.target_arl0,
                       nulls={k: v for k, v in archive.nulls.items() if k[0] in chosen},
                       rescored=time.strftime("%Y-%m-%d %H:%M"))
