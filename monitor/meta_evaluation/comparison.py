r"""Scoring a family: the engine against the baselines at an equal false-alarm rate and against the oracle.

Part of the meta-evaluation runner (:mod:`monitor.meta_evaluation.runner`, whose docstring defines the
terms).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from monitor.meta_evaluation import baselines, scoring
from monitor.meta_evaluation.settings import BASELINES, CONTROL_PREFIXES, TARGET_FALSE_ALARMS_PER_1000
from monitor.meta_evaluation.jobs import RunResult


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
