r"""The issue's targets and the headline, from the scored families.

Part of the meta-evaluation runner (:mod:`monitor.meta_evaluation.runner`, whose docstring defines the
terms).
"""

from __future__ import annotations

import math


from monitor.meta_evaluation.settings import BASELINE_TITLES, TARGET_FALSE_ALARMS_PER_1000, TARGET_P_BEFORE_ONSET


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
