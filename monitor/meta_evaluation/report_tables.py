"""Number formatting and the Markdown tables of the meta-evaluation report (:mod:`monitor.meta_evaluation.report`).

:func:`fmt` prints every number of the report; the tests use it to find the JSON's numbers in the Markdown.
"""

from __future__ import annotations

import math

import numpy as np

from monitor.meta_evaluation.runner import (
    BASELINE_TITLES,
    BASELINES,
    TARGET_FALSE_ALARMS_PER_1000,
    TARGET_P_BEFORE_ONSET,
    BenchResult,
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
