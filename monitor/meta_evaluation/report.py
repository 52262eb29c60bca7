r"""The meta-evaluation's report: ``docs/meta-evaluation.md``, one PNG per loop and the raw results as JSON.

Every sentence about a target is assembled from computed numbers
(:func:`monitor.meta_evaluation.runner.targets`); nothing here states a conclusion of
its own. Numbers are printed with :func:`fmt`, the same function the tests
use to find the JSON's numbers in the Markdown.

Files, for ``out = docs/meta-evaluation.md``:

* ``docs/meta-evaluation.md``: settings, headline table, targets, a section per loop
  (baselines at equal false-alarm rate, per-metric table, plot), timings;
* ``docs/meta-evaluation/<loop id>.png``: key metrics of one seed's collapse run
  with their 95% interval, the onset (vertical dashed line) and the engine's
  alarm (vertical solid line), plus the loop risk and the two raw-data baselines;
* ``docs/meta-evaluation/results.json``: :meth:`BenchResult.summary` plus one
  record per run (alarm generations, risk, drift share and MMD p-value per
  round), enough to recompute every table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from monitor.meta_evaluation.runner import (
    BASELINE_TITLES,
    BASELINES,
    TARGET_FALSE_ALARMS_PER_1000,
    TARGET_P_BEFORE_ONSET,
    BenchResult,
    RunResult,
)


def fmt(x, digits: int = 3) -> str:
    """A number as the report prints it: ``digits`` significant digits, ``n/a`` for None/NaN, ``inf`` for infinity.

    Args:
        x: int, float or None.
        digits: significant digits of non-integers.

    >>> fmt(0.123456), fmt(12.0), fmt(None), fmt(float("inf")), fmt(-3), fmt(float("-inf"))
    ('0.123', '12', 'n/a', 'inf', '-3', '-inf')
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if float(x) == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{float(x):.{digits}g}"


def jsonable(obj):
    """``obj`` with numpy scalars and arrays as Python values, NaN as None and infinities as ``"inf"``/``"-inf"``.

    >>> jsonable({"a": np.float64("nan"), "b": [np.inf, np.int64(2)], "c": np.array([True])})
    {'a': None, 'b': ['inf', 2], 'c': [True]}
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        x = float(obj)
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    return obj


def threshold_text(t: float) -> str:
    """A threshold from :func:`~monitor.meta_evaluation.scoring.threshold_for_false_alarm_rate` as a condition.

    Its finite thresholds are the next float above a control score, so they read ``> score``.

    >>> threshold_text(float(np.nextafter(0.25, np.inf))), threshold_text(float("inf")), threshold_text(-np.inf)
    ('> 0.25', 'never (no threshold meets the rate)', '>= -inf (every round)')
    """
    if t == np.inf:
        return "never (no threshold meets the rate)"
    if t == -np.inf:
        return ">= -inf (every round)"
    return f"> {fmt(float(np.nextafter(t, -np.inf)), 4)}"


def _lead(d: dict) -> str:
    """``median [q25, q75]`` of a detector summary, or ``none detected``."""
    if d["n_runs"] == 0:
        return "no onset"
    if d["n_detected"] == 0:
        return "none detected"
    return f"{fmt(d['median'])} [{fmt(d['q25'])}, {fmt(d['q75'])}]"


def _p_before(d: dict) -> str:
    if d["n_runs"] == 0:
        return "n/a"
    return f"{fmt(d['p_alarm_before_onset'])} ({d['n_before_onset']}/{d['n_runs']})"


def _fa(fa: dict | None) -> str:
    if fa is None:
        return "n/a"
    return f"{fmt(fa['rate_per_1000'])} ({fa['n_false_alarms']}/{fa['rounds_at_risk']})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def headline_table(headline: list[dict]) -> list[str]:
    """The headline table (one row per collapse loop), as Markdown lines; README-ready."""
    header = ["loop", "onset (median gen.)", "engine lead time, median [IQR]", "P(alarm before onset)",
              "oracle P(before onset): likelihood ratio / spread loss only", "false alarms per 1000 C0 rounds (upper 95%)", "ARL0 (C0)",
              "pure drift: collapse / drift alarms", "first alert, either signal: lead median (P before onset)",
              "best baseline at equal FA: lead median (P before onset)"]
    rows = []
    for h in headline:
        d0 = "n/a" if h.get("d0_runs") is None else \
            f"{h['d0_collapse_alarm_runs']}/{h['d0_runs']} / {h['d0_drift_alarm_runs']}/{h['d0_runs']}"
        rows.append([
            f"`{h['loop']}`",
            f"{fmt(h['onset_median'])} ({h['n_onset_reached']}/{h['n_seeds']} reached)",
            "no onset" if h["n_runs"] == 0 else
            ("none detected" if h["n_detected"] == 0 else
             f"{fmt(h['lead_median'])} [{fmt(h['lead_q25'])}, {fmt(h['lead_q75'])}]"),
            "n/a" if h["n_runs"] == 0 else f"{fmt(h['p_alarm_before_onset'])} ({h['n_before_onset']}/{h['n_runs']})",
            fmt(h.get("oracle_p_alarm_before_onset", float("nan")))
            + ("" if math.isnan(h.get("collapse_oracle_p_alarm_before_onset", float("nan")))
               else f" / {fmt(h['collapse_oracle_p_alarm_before_onset'])}"),
            f"{fmt(h['c0_false_alarms_per_1000'])} ({h['c0_n_false_alarms']}/{h['c0_rounds_at_risk']}; "
            f"{fmt(h.get('c0_false_alarms_upper_per_1000', float('nan')))})",
            fmt(h["arl0"]),
            d0,
            f"{fmt(h.get('first_alert_lead_median', float('nan')))} "
            f"({fmt(h.get('first_alert_p_alarm_before_onset', float('nan')))})",
            f"{fmt(h['best_baseline_lead_median'])} ({fmt(h['best_baseline_p_alarm_before_onset'])}), "
            f"{BASELINE_TITLES[h['best_baseline']]}",
        ])
    return _table(header, rows)


def _baseline_rows(fam: dict) -> list[list[str]]:
    e = fam["engine"]
    rows = [["**our engine**", "collapse signal", _fa(e["false_alarms"]), _lead(e), _p_before(e),
             fmt(e["ranking_lead"]), fmt(e["roc_auc"]), "-"]]
    if fam.get("first_alert"):
        f = fam["first_alert"]
        rows.append(["our engine, first alert", "collapse or drift signal", _fa(f["false_alarms"]), _lead(f),
                     _p_before(f), fmt(f["ranking_lead"]), "-", "-"])
    if fam.get("oracle"):
        o = fam["oracle"]
        rows.append(["oracle (true parameters)", "likelihood-ratio e-CUSUM", _fa(o["false_alarms"]), _lead(o),
                     _p_before(o), fmt(o["ranking_lead"]), "-", "-"])
    if fam.get("collapse_oracle"):
        o = fam["collapse_oracle"]
        rows.append(["collapse oracle (true covariances)", "Wishart e-CUSUM on spread loss only",
                     _fa(o["false_alarms"]), _lead(o), _p_before(o), fmt(o["ranking_lead"]), "-", "-"])
    for name in BASELINES:
        b = fam["baselines"][name]
        if name in ("fixed_threshold", "one_round_delta"):
            chosen = sorted(set(b["chosen_metric_by_fold"].values()))
            how = "best single metric " + ("in sample (one fold without onsets)" if b.get("in_sample")
                                           else "out of sample") + ": " + (", ".join(f"`{m}`" for m in chosen)
                                                                           or "none")
        else:
            how = f"alarm on score {threshold_text(b['threshold'])}"
        rows.append([BASELINE_TITLES[name], how, _fa(b["false_alarms"]), _lead(b), _p_before(b),
                     fmt(b["ranking_lead"]), fmt(b["roc_auc"]), fam["engine_versus"][name]])
    return rows


def _metric_rows(fam: dict) -> list[list[str]]:
    from metrics_core.registry import get_spec

    rows = []
    # enabled metrics first, best engine ROC-AUC first
    order = sorted(fam["metrics"].items(), key=lambda kv: (not kv[1]["engine"]["enabled"],
                                                           -(kv[1]["engine"]["roc_auc"] or 0.0), kv[0]))
    for m, d in order:
        e = d["engine"]
        row = [f"`{m}`", get_spec(m).family, "yes" if e["enabled"] else "no (disabled)", _lead(e), _p_before(e),
               _fa(e["false_alarms"]), fmt(e["roc_auc"])]
        for kind in ("fixed_threshold", "one_round_delta"):
            b = d.get(kind)
            row.append("-" if b is None else f"{_lead(b)}; {_p_before(b)}; FA {_fa(b['false_alarms'])}")
        rows.append(row)
    return rows


def _target_lines(result: BenchResult) -> list[str]:
    t = result.targets
    fams = result.families
    lines = []
    detect = [(f, v) for f, v in t["per_family"].items()]
    met = [f for f, v in detect if v["detected_before_onset_90"]]
    missed = [f for f, v in detect if v["detected_before_onset_90"] is False]
    undecided = [f for f, v in detect if v["detected_before_onset_90"] is None]
    lines.append(f"**Detected before onset in at least {fmt(100 * TARGET_P_BEFORE_ONSET)}% of the runs that reached "
                 f"onset**: met on {len(met)} of {len(detect)} loops"
                 + (f" ({', '.join(f'`{f}`' for f in met)})" if met else "")
                 + (f"; missed on {', '.join(f'`{f}`' for f in missed)}" if missed else "")
                 + (f"; no run reached onset on {', '.join(f'`{f}`' for f in undecided)}" if undecided else "") + ".")
    pooled = t["pooled_false_alarms"]
    fa_met = [f for f, v in t["per_family"].items() if v["false_alarms_at_most_1_per_1000"]]
    lines.append(f"**At most {fmt(TARGET_FALSE_ALARMS_PER_1000)} false alarm per 1,000 no-feedback (C0) rounds, "
                 f"Poisson upper bound under 2, on every loop**: met on {len(fa_met)} of {len(t['per_family'])} "
                 f"loops; pooled {fmt(pooled['rate_per_1000'])} ({pooled['n_false_alarms']} false alarms in "
                 f"{pooled['rounds_at_risk']} rounds at risk, ARL0 {fmt(pooled['arl0'])}). C1 and C2 are scored "
                 "against their own true parameters (small-drift alarms, per loop below), not counted as false.")
    beat = [f for f, v in t["per_family"].items() if v["beats_every_baseline"]]
    lost = [f for f, v in t["per_family"].items() if v["no_baseline_ahead"] is False]
    tally = {o: sum(v == o for fam in fams.values() for v in fam["engine_versus"].values())
             for o in ("beats", "ties", "loses")}
    lines.append(f"**Ranking lead >= every baseline at an equal false-alarm rate on every loop, and strictly "
                 f"ahead of all of them on at least half**: {'met' if t['beats_every_baseline_everywhere'] else 'missed'}"
                 f"; strictly ahead on {len(beat)} of {len(t['per_family'])} loops"
                 + (f" ({', '.join(f'`{f}`' for f in beat)})" if beat else "")
                 + (f"; behind a baseline on {', '.join(f'`{f}`' for f in lost)}" if lost else "")
                 + f". Over all loop x baseline pairs the engine beats {tally['beats']}, ties {tally['ties']} and "
                   f"loses {tally['loses']}.")
    if t.get("first_alert_beats_every_baseline_everywhere") is not None:
        ahead = [f for f, v in t["per_family"].items() if v["first_alert_beats_every_baseline"]]
        behind = [f for f, v in t["per_family"].items() if v["first_alert_no_baseline_ahead"] is False]
        pairs = {o: sum(v == o for fam in fams.values() for v in (fam.get("first_alert_versus") or {}).values())
                 for o in ("beats", "ties", "loses")}
        lines.append("The same with the engine's **first alert of either signal** (what a pager receives first: "
                     "the baselines are change detectors and fire on drift too): "
                     f"{'met' if t['first_alert_beats_every_baseline_everywhere'] else 'missed'}; strictly ahead on "
                     f"{len(ahead)} of {len(t['per_family'])} loops"
                     + (f"; behind a baseline on {', '.join(f'`{f}`' for f in behind)}" if behind else "")
                     + f"; over all pairs it beats {pairs['beats']}, ties {pairs['ties']} and loses {pairs['loses']}.")
    quiet = [f for f, v in t["per_family"].items() if v["drift_control_quiet"]]
    loud = [f for f, v in t["per_family"].items() if v["drift_control_quiet"] is False]
    if quiet or loud:
        lines.append(f"**The pure-drift control raises no collapse alarm**: {'missed' if loud else 'met'}; quiet on "
                     f"{len(quiet)} of the {len(quiet) + len(loud)} loop(s) with one"
                     + (f" ({', '.join(f'`{f}`' for f in quiet)})" if quiet else "")
                     + (f"; collapse alarms on {', '.join(f'`{f}`' for f in loud)}" if loud else "") + ".")
    out = [f"- {line}" for line in lines]
    out.append("")
    out.append("Reasons, per loop (from the runs):")
    out.append("")
    for f, v in t["per_family"].items():
        spots = v["blind_spots"]
        parts = list(v["reasons"])
        if spots["before_onset_90"]:
            parts.append("metrics that alarmed before onset in at least 90% of runs: "
                         + ", ".join(f"`{m}`" for m in spots["before_onset_90"]))
        if spots["never_raised"] and not any("never raised" in p for p in parts):
            parts.append("blind (never raised on a collapse run): " + ", ".join(f"`{m}`" for m in spots["never_raised"]))
        e = fams[f]["engine"]
        if e.get("small_drift") and e["small_drift"]["n_runs"]:
            sd = e["small_drift"]
            parts.append(f"C1/C2: {sd['crossed']} of {sd['n_runs']} runs crossed the onset line in truth; collapse "
                         f"alarms before the crossing (small drift) {sd['alarm_before_crossing']}, after it "
                         f"{sd['alarm_after_crossing']}, without a crossing {sd['alarm_without_crossing']}, "
                         f"quiet {sd['quiet']}")
        if not parts:
            parts.append("all targets met")
        out.append(f"- `{f}` ({fams[f]['modality']}): " + "; ".join(parts) + ".")
    return out


def render_markdown(result: BenchResult, plots: dict[str, str], results_json: str, out_dir_name: str,
                    command: str | None = None) -> str:
    """The whole report as Markdown text.

    Args:
        result: the meta-evaluation's result.
        plots: loop id -> PNG path relative to the Markdown file.
        results_json: the results JSON's path relative to the Markdown file.
        out_dir_name: the folder of plots and results, for the text.
    """
    s = result.settings
    timings = result.timings
    check = result.summary()["evidently_check"]
    lines = ["# Meta-evaluation: collapse detection on seeded loops with known onsets", ""]
    lines.append(
        "Written by `collapse-monitor bench` (`monitor/meta_evaluation/runner.py`, `monitor/meta_evaluation/report.py`); survey §8.1 "
        "meta-evaluation. Every number below is computed by that run; regenerate with the command in the "
        f"settings table. Raw per-run results: [`{results_json}`]({results_json}).")
    lines.append("")
    lines += ["## Settings", ""]
    rows = [
        ["mode", "quick (CI)" if s.quick else "full"],
        ["command", f"`{command}`" if command else
         "`collapse-monitor bench" + (" --quick" if s.quick else "") + f" --seeds {len(s.seeds)}`"],
        ["date", result.date],
        ["seeds", ", ".join(str(x) for x in s.seeds) + ("" if s.text_seeds is None else
                  "; text loops (L3, L4): " + ", ".join(str(x) for x in s.text_seeds))],
        ["samples per audit round (and reference)", f"{s.n_audit} (L5: the real table's 178 rows as reference)"],
        ["bootstrap replicates per metric", str(s.n_boot)],
        ["MMD permutations per round", str(s.n_permutations)],
        ["k-NN k", str(s.k)],
        ["schedules (generations, audit every)", ", ".join(f"`{k}` {v[0]}/{v[1]}" for k, v in s.schedules.items()
                                                           if k in result.families)],
        ["runs", f"{len(result.runs)} ({sum(r.kind == 'collapse' for r in result.runs)} collapse, "
                 f"{sum(r.kind == 'control' for r in result.runs)} control), "
                 f"{int(sum(r.seconds['rounds'] for r in result.runs))} audited rounds"],
        ["duration", f"{fmt(timings['wall_seconds'])} s wall with {timings['workers']} worker(s) "
                     f"({fmt(timings['job_seconds'])} s summed over jobs)"],
        ["machine", f"{result.machine['platform']}, {result.machine['cpus']} CPUs, Python "
                    f"{result.machine['python']}, torch {result.machine['torch']}"],
        ["alert rules", ", ".join(f"`{x}`" for x in result.rules_sources) or "shipped defaults"],
        ["Evidently check", "none" if not check["rounds"] else
         f"fast drift share vs the full Evidently report on {len(check['rounds'])} rounds: largest difference "
         f"{fmt(check['max_abs_difference'])}"],
    ]
    lines += _table(["setting", "value"], rows)
    lines.append("")
    lines += ["## Definitions", ""]
    lines += [
        "- Rounds are audited generations; the daemon's round number is the generation, so **lead time** = onset "
        "generation minus the generation of the first alarm (positive = early). The onset is the first generation "
        "past the ground-truth collapse threshold, from the generator's true parameters (`monitor/meta_evaluation/loops.py`, "
        "`monitor/meta_evaluation/textloop.py`). Runs whose onset lies beyond their last generation have no lead time.",
        "- **Engine alarm**: the first audited round at which the **collapse signal** is raised, by "
        "`monitor.engine.alerts.evaluate_loop` with the run's null (e-CUSUM charts on level deviations from the null, "
        "guaranteed ARL0 >= 1,000; docs/alerts.md), as the daemon reports it. Each (loop, seed) has its own null: "
        "a pool of real data (generation 0, `monitor/meta_evaluation/pools.py`) of `pool_ratio` round sizes, and "
        "`null_rounds` pseudo-rounds audited against the run's reference by the daemon's pipeline "
        "(`monitor.modalities.pipeline.AuditPipeline`, as every round is). Per-metric alarm: that metric's own chart over "
        "its threshold. **First alert**: the first round at which either signal (collapse or drift) is raised, "
        "what a pager receives first; the one mixture guarantee covers both signals.",
        "- **Oracle**: a likelihood-ratio e-CUSUM that knows every generation's true model "
        "(`monitor/meta_evaluation/oracle.py`) at the same ARL0: the physically achievable P(alarm before onset) at this "
        "audit schedule and round size, for a detector of any change. On the Gaussian loops (L1) the **collapse "
        "oracle** (`spread_log_evalues`) is the ceiling for a detector that must ignore drift, as the collapse "
        "signal does: it knows the true covariances, sees only the round's scatter matrix (blind to the mean) and "
        "bets only on a loss of spread.",
        "- **P(alarm before onset)**: share of the runs that reached onset with an alarm strictly before the onset "
        "generation (a miss counts as a failure). Lead-time median and IQR are over the detected runs.",
        "- **False alarms per 1,000 C0 rounds** and **ARL0**: on the no-feedback controls only (every round a "
        "fresh draw of generation 0), each run counts its first raise only, with the rounds up to it at risk "
        "(`monitor.meta_evaluation.scoring.false_alarm_summary`); in brackets: false alarms / rounds at risk, and the exact "
        "Poisson 95% upper bound per 1,000. C1 (accumulate) and C2 (fresh real data) drift in truth: their "
        "alarms are scored against their own true parameters (the loop's onset rule applied to them) and "
        "reported as small-drift alarms. D0 is a pure drift at constant spread (`monitor/meta_evaluation/drift.py`): "
        "it must raise no collapse alarm, and the drift signal should fire.",
        "- **ROC-AUC**: the per-round risk (engine: the loop's collapse risk; metric: its risk) against \"past "
        "onset\", pooled over the collapse and control rounds of all seeds.",
        "- **Baselines at an equal false-alarm rate**: each baseline's threshold is the most sensitive one whose "
        "false-alarm rate on the same C0 controls is at most the engine's (1 per 1,000 rounds where the engine has "
        "none), with the engine's raise rule (the condition held for `sustain_rounds` audited rounds in a row). "
        "Per-metric baselines (fixed threshold on the raw value, one-round delta) watch the metrics the engine "
        "watches; the metric-level comparison uses each metric's own engine rate, the loop-level one the best "
        "single metric chosen **out of sample**: seeds are split in two folds by position and each fold is scored "
        "with the metric that ranked best on the other fold's collapse runs. Evidently's drift share and the MMD "
        "permutation test (`-log10 p`) are computed on the raw rounds in the same pass.",
        "- **Ranking lead**: the median lead time over the runs that reached onset with a miss counted as -inf; "
        "the engine *beats* a baseline when its ranking lead is larger (on a tie: a larger P(alarm before onset)).",
        "- **Evidently's drift share** runs Evidently's own default per-column test (`get_stattest`, as its "
        "`ValueDrift` does) on the columns `monitor/publishing/evidently_report.py` builds (text: descriptors and pooled "
        "principal components of the embeddings; tabular: the columns; embedding loops: the pooled principal "
        "components), without rendering the report; the settings table gives its check against full reports.",
        "",
    ]
    lines += ["## Headline", ""]
    lines += headline_table(result.headline)
    lines.append("")
    lines += ["## Targets", ""]
    lines += _target_lines(result)
    lines.append("")
    for fam_id, fam in result.families.items():
        e = fam["engine"]
        lines += [f"## `{fam_id}`", ""]
        params = ", ".join(f"{k}={v}" for k, v in fam["params"].items())
        lines.append(f"{fam['modality']} loop ({params}). Onset generation per seed: "
                     + ", ".join(f"{seed}: {fmt(o)}" if o is not None else f"{seed}: beyond the run"
                                 for seed, o in zip(fam["seeds"], fam["onsets"])) + ".")
        lines.append("")
        first = {}
        for ms in e["first_metrics"]:
            for m in ms:
                first[m] = first.get(m, 0) + 1
        if first:
            lines.append("Metrics raised at the engine's first alarm on the collapse runs (runs): "
                         + ", ".join(f"`{m}` ({n})" for m, n in sorted(first.items(), key=lambda kv: (-kv[1], kv[0])))
                         + ".")
        by = e["false_alarms_by_control"]
        lines.append("Engine collapse alarms per control (per 1,000 rounds at risk, alarms/rounds): "
                     + ", ".join(f"{c} {_fa(v)}" for c, v in by.items())
                     + ". C0 audits fresh draws of generation 0 (every alarm false); C1 and C2 refit on real plus "
                       "synthetic data and drift in truth; D0 drifts by design (collapse alarms there are wrong, "
                       "drift alarms right).")
        fa_metrics = result.targets["per_family"][fam_id]["blind_spots"]["false_alarm_metrics"]
        if fa_metrics:
            lines.append("False alarms on the controls, first raised by (runs): "
                         + ", ".join(f"`{m}` ({n})" for m, n in fa_metrics.items()) + ".")
        lines.append("")
        lines.append(f"Detectors at an equal false-alarm rate (target {fmt(fam['equal_rate_per_1000'])} per 1,000 "
                     "control rounds):")
        lines.append("")
        lines += _table(["detector", "setting", "FA per 1000 (F/T)", "lead time, median [IQR]",
                         "P(alarm before onset)", "ranking lead", "ROC-AUC", "engine vs it"], _baseline_rows(fam))
        lines.append("")
        if fam_id in plots:
            lines += [f"![{fam_id}]({plots[fam_id]})", ""]
        lines.append("Per metric (engine: the metric's own alarm; baselines at the metric's engine false-alarm rate):")
        lines.append("")
        lines += _table(["metric", "family", "alerting", "engine lead, median [IQR]", "P(before onset)",
                         "FA per 1000 (F/T)", "risk ROC-AUC", "fixed threshold: lead; P; FA",
                         "one-round delta: lead; P; FA"], _metric_rows(fam))
        lines.append("")
    lines += ["## Timing", ""]
    rows = []
    for modality, d in timings["per_modality"].items():
        rows.append([modality, fmt(d["rounds"]), fmt(d["seconds_per_round"]),
                     fmt(d["metrics"] / d["rounds"]), fmt(d["evidently"] / d["rounds"]), fmt(d["mmd"] / d["rounds"]),
                     fmt(d["engine"]), fmt(d["generate"])])
    lines += _table(["modality", "rounds", "s per round (all)", "metrics", "Evidently", "MMD test",
                     "engine (s, total)", "generation (s, total)"], rows)
    lines.append("")
    lines.append("Median generation time of one collapse run at these sizes (s): "
                 + ", ".join(f"`{k}` {fmt(v)}" for k, v in timings["generate_seconds_median"].items()) + ".")
    failures = [f for r in result.runs for f in r.failures]
    if failures:
        lines.append("")
        lines.append(f"{len(failures)} suite group(s) could not be computed on a round and were dropped from it "
                     f"(the daemon would not store them either), e.g. {failures[0]}")
    lines.append("")
    return "\n".join(lines)


def _key_metrics(run: RunResult, fam: dict, count: int = 4) -> list[str]:
    """The metrics raised at the run's first alarm, then the enabled metrics with the best risk ROC-AUC."""
    chosen = [m for m in run.engine.first_metrics][:2]
    ranked = sorted((m for m, d in fam["metrics"].items() if d["engine"]["enabled"]),
                    key=lambda m: (-(fam["metrics"][m]["engine"]["roc_auc"] or 0.0), m))
    for m in ranked:
        if len(chosen) >= count:
            break
        if m not in chosen:
            chosen.append(m)
    return chosen


def plot_family(fam: dict, runs: list[RunResult], path: Path) -> Path:
    """One PNG for a loop: key metrics of one seed's collapse run, its loop risk, and the raw-data baselines.

    The seed is the first whose run reached onset (else the first). Each panel
    marks the onset generation (red dashed) and the engine's first alarm
    (orange solid); metric panels show the 95% interval as a band and the
    metric's own first raise as a triangle.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metrics_core.registry import get_spec

    collapse = sorted((r for r in runs if r.kind == "collapse"), key=lambda r: r.seed)
    run = next((r for r in collapse if r.onset is not None), collapse[0])
    alarm_idx = np.flatnonzero(run.engine.alarms)
    alarm_gen = int(run.generations[alarm_idx[0]]) if alarm_idx.size else None
    metrics = _key_metrics(run, fam)
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), squeeze=False)
    gens = run.generations

    def marks(ax):
        if run.onset is not None:
            ax.axvline(run.onset, color="tab:red", ls="--", lw=1.2, label="onset")
        if alarm_gen is not None:
            ax.axvline(alarm_gen, color="tab:orange", lw=1.5, label="engine alarm")

    for ax, m in zip(axes.flat, metrics):
        t = run.trajectory[run.trajectory["metric"] == m].sort_values("round")
        ax.plot(t["round"], t["value"], marker=".", color="tab:blue", lw=1.2)
        band = t.dropna(subset=["ci_low", "ci_high"])
        if not band.empty:
            ax.fill_between(band["round"], band["ci_low"], band["ci_high"], color="tab:blue", alpha=0.2, lw=0)
        raised = np.flatnonzero(run.engine.metric_alarms.get(m, np.zeros(len(gens), bool)))
        if raised.size:
            g = int(gens[raised[0]])
            v = t.set_index("round")["value"].get(g)
            if v is not None:
                ax.plot([g], [v], marker="^", color="tab:orange", ms=9, ls="none", label=f"{m} raised")
        marks(ax)
        better = "higher" if get_spec(m).higher_is_better else "lower"
        ax.set_title(f"{m} ({better} is better)", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(metrics):4]:
        ax.set_visible(False)
    ax = axes.flat[4]
    ax.plot(gens, run.engine.risk, color="tab:purple", marker=".", lw=1.2)
    ax.set_ylim(-0.02, 1.02)
    marks(ax)
    ax.set_title("engine: loop collapse risk", fontsize=9)
    ax.tick_params(labelsize=7)
    ax = axes.flat[5]
    ax.plot(gens, run.drift_share, color="tab:green", marker=".", lw=1.2, label="Evidently drift share")
    ax.plot(gens, -np.log10(run.mmd_pvalue) / max(1e-12, float(np.max(-np.log10(run.mmd_pvalue)) or 1.0)),
            color="tab:gray", marker=".", lw=1.0, label="MMD test -log10 p (scaled to max 1)")
    marks(ax)
    ax.set_title("raw-data baselines", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.tick_params(labelsize=7)
    from matplotlib.ticker import MaxNLocator

    for ax in axes.flat:
        ax.set_xlabel("generation", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes.flat[4].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=len(handles), fontsize=8)
    fig.suptitle(f"{fam['family']}: seed {run.seed}" + (f", onset at generation {run.onset}" if run.onset is not None
                                                        else ", onset beyond the run")
                 + (f", engine alarm at generation {alarm_gen}" if alarm_gen is not None else ", no engine alarm"))
    fig.tight_layout(rect=(0, 0.04, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def run_records(runs: list[RunResult]) -> list[dict]:
    """Per run: what the tables are computed from (alarm generations, risk, drift share, MMD p-values)."""
    from monitor.meta_evaluation import scoring

    records = []
    for r in runs:
        records.append({
            "run": r.run_id, "family": r.family, "kind": r.kind, "seed": r.seed,
            "generations": r.generations, "onset": r.onset,
            "engine_alarm_generation": scoring.alarm_generation(r.engine.alarms, r.generations),
            "engine_first_metrics": r.engine.first_metrics,
            "metric_alarm_generations": {m: scoring.alarm_generation(a, r.generations)
                                         for m, a in sorted(r.engine.metric_alarms.items())},
            "engine_risk": np.round(r.engine.risk, 6),
            "evidently_drift_share": np.round(r.drift_share, 6),
            "mmd_pvalue": np.round(r.mmd_pvalue, 6),
            "suite_failures": r.failures,
            "seconds": {k: round(v, 3) for k, v in r.seconds.items()},
        })
    return records


def write_report(result: BenchResult, out: str | Path, command: str | None = None) -> dict[str, Path]:
    """Write the Markdown report, one PNG per loop and ``results.json`` (plots and JSON in ``<stem>/``).

    Args:
        result: the meta-evaluation's result.
        out: the Markdown path, e.g. ``docs/meta-evaluation.md``.
        command: the command line that regenerates it (default: one built from the settings).

    Returns:
        ``{"markdown": path, "results": path, "plots": folder}``.
    """
    out = Path(out)
    folder = out.with_suffix("") if out.suffix else out.parent / (out.name + "_files")
    folder.mkdir(parents=True, exist_ok=True)
    plots = {}
    for fam_id, fam in result.families.items():
        png = plot_family(fam, [r for r in result.runs if r.family == fam_id], folder / f"{fam_id}.png")
        plots[fam_id] = f"{folder.name}/{png.name}"
    results_path = folder / "results.json"
    payload = {**result.summary(), "date": result.date, "runs": run_records(result.runs)}
    results_path.write_text(json.dumps(jsonable(payload), separators=(",", ":"), allow_nan=False))
    out.write_text(render_markdown(result, plots, f"{folder.name}/results.json", folder.name, command))
    return {"markdown": out, "results": results_path, "plots": folder}

