r"""The collapse alert engine: rule conditions, states with hysteresis, risk and explanations.

Conditions at each audited round, from the metric's derivatives
(:mod:`monitor.engine.derivatives`) and its resolved rule (:mod:`monitor.engine.rules`):

* **warning**: a sustained decline significant against the noise, i.e. the
  CUSUM above ``cusum_h`` or the slope z below ``-z_h``;
* **critical**: a cumulative loss beyond ``critical_loss`` that is itself
  significant (cumulative z below ``-critical_z``), or a forecast crossing of
  the threshold within ``forecast_horizon`` rounds while the slope z is below
  ``-z_h``.

States (ok, warning, critical) are replayed over the whole trajectory, so a
late or re-audited round rewrites the replay. A state is **raised** when its
condition has held for ``sustain_rounds`` consecutive audited rounds (a single
dip does not raise one) and **lowered** only after the relaxed condition
(every threshold times ``hysteresis``) has been clear for ``cooldown_rounds``
consecutive rounds (a transient improvement does not clear one).

Risk. Each metric's evidence is
:math:`e=\max(0, S/h, -z/z_h, \min(L/\ell, -z_c/z_{crit}))`, the largest of its
normalised signals (1 = at a threshold), and its risk
:math:`r = w\,(1-2^{-e^2})` with the family's ``risk_weight`` :math:`w`
(0.5 at a threshold, 0.94 at twice it). A family's risk is its largest metric
risk, and the loop's collapse risk combines the families as independent
signals, :math:`1-\prodfinite_or_none(1-r_f)`; the family (and metric) with the largest
risk drives it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metrics_core.registry import FAMILIES, get_spec, round_modality
from monitor.engine.derivatives import COLUMNS, compute_derivatives, finite_or_none
from monitor.engine.rules import MetricRule, RuleSet

OK, WARNING, CRITICAL = "ok", "warning", "critical"
SEVERITY_LEVEL = {OK: 0, WARNING: 1, CRITICAL: 2}
_BY_LEVEL = {level: name for name, level in SEVERITY_LEVEL.items()}
RECENT_VALUES = 6  # rounds of history carried by an explanation


@dataclass(frozen=True)
class AlertState:
    metric: str
    severity: str
    since_round: int | None
    message: str = ""
    explanation: dict | None = field(default=None, compare=False)

    def as_dict(self) -> dict:
        return {"metric": self.metric, "severity": self.severity, "since_round": self.since_round,
                "message": self.message, "explanation": self.explanation}


@dataclass(frozen=True)
class Transition:
    """A state change of one metric at one round, with why."""

    metric: str
    round: int
    from_severity: str
    to_severity: str
    reason: str

    def as_dict(self) -> dict:
        return {"metric": self.metric, "round": self.round, "from": self.from_severity, "to": self.to_severity,
                "reason": self.reason}


def conditions(d: dict[str, np.ndarray], rule: MetricRule, relax: float = 1.0) -> dict[str, np.ndarray]:
    """Boolean arrays per trigger; ``relax`` < 1 lowers every threshold (the clear test)."""
    with np.errstate(invalid="ignore"):
        slope_bad = d["zscore"] < -rule.z_h * relax
        return {
            "cusum": d["cusum"] > rule.cusum_h * relax,
            "z": slope_bad,
            "cumulative_loss": (d["loss"] > rule.critical_loss * relax) & (d["cum_z"] < -rule.critical_z * relax),
            "forecast": (d["rounds_to_threshold"] <= rule.forecast_horizon / relax) & slope_bad,
        }


def _levels(conds: dict[str, np.ndarray]) -> np.ndarray:
    warn = conds["cusum"] | conds["z"]
    crit = conds["cumulative_loss"] | conds["forecast"]
    return np.where(crit, 2, np.where(warn, 1, 0))


def first_raise_index(warn: np.ndarray, sustain: int) -> np.ndarray:
    """Index of the first round where ``warn`` has held ``sustain`` rounds in a row (-1: never).

    >>> first_raise_index(np.array([[0, 1, 0, 1, 1, 1], [1, 0, 1, 0, 1, 0]], bool), 2)
    array([ 4, -1])
    """
    held = np.cumsum(warn, axis=-1, dtype=np.int64)
    held[..., sustain:] -= held[..., :-sustain].copy()  # rounds held in the trailing window
    hit = held >= sustain
    return np.where(hit.any(axis=-1), hit.argmax(axis=-1), -1)


def first_alarm_index(d: dict[str, np.ndarray], rule: MetricRule) -> np.ndarray:
    """Per trajectory, the index at which the first state (warning or critical) is raised (-1: never)."""
    cond = conditions(d, rule)
    first = None
    for trigger in (cond["cusum"] | cond["z"], cond["cumulative_loss"] | cond["forecast"]):
        idx = first_raise_index(trigger, rule.sustain_rounds)
        first = idx if first is None else np.where((idx >= 0) & ((first < 0) | (idx < first)), idx, first)
    return first


def metric_risk(d: dict[str, np.ndarray], rule: MetricRule) -> np.ndarray:
    """Per round, the metric's weighted risk in [0, 1] (0 for disabled metrics)."""
    with np.errstate(invalid="ignore"):
        terms = np.stack([
            d["cusum"] / rule.cusum_h,
            -d["zscore"] / rule.z_h,
            np.minimum(d["loss"] / rule.critical_loss, -d["cum_z"] / rule.critical_z),
        ])
    evidence = np.nanmax(np.where(np.isnan(terms), -np.inf, terms), axis=0).clip(min=0.0)
    weight = rule.risk_weight if rule.enabled else 0.0
    return weight * (1.0 - np.exp2(-(evidence**2)))


def _trigger_text(trigger: str, d: dict[str, np.ndarray], i: int, rule: MetricRule) -> str:
    if trigger == "cusum":
        return f"CUSUM {d['cusum'][i]:.2f} > {rule.cusum_h:.2f}"
    if trigger == "z":
        return f"slope z {d['zscore'][i]:.2f} < -{rule.z_h:.2f}"
    if trigger == "cumulative_loss":
        unit = " (relative)" if rule.loss_scale == "relative" else ""
        return f"loss since baseline {d['loss'][i]:.3f}{unit} > {rule.critical_loss:g}, z {d['cum_z'][i]:.2f}"
    return f"threshold {d['threshold'][i]:.4g} forecast in {d['rounds_to_threshold'][i]:.1f} rounds <= {rule.forecast_horizon}"


@dataclass
class MetricEvaluation:
    """One metric's replayed alert history over its trajectory."""

    metric: str
    rounds: np.ndarray
    values: np.ndarray
    std_errors: np.ndarray
    derivatives: dict[str, np.ndarray]
    rule: MetricRule
    severities: list[str]
    transitions: list[Transition]
    since_index: int | None

    @property
    def severity(self) -> str:
        return self.severities[-1] if self.severities else OK


def replay(metric: str, rounds: np.ndarray, values: np.ndarray, std_errors: np.ndarray,
           derivatives: dict[str, np.ndarray], rule: MetricRule) -> MetricEvaluation:
    """Replay the state machine of one metric over its trajectory (rounds sorted)."""
    severities: list[str] = []
    transitions: list[Transition] = []
    if not rule.enabled:
        return MetricEvaluation(metric, rounds, values, std_errors, derivatives, rule, [OK] * len(rounds), [], None)
    raw = conditions(derivatives, rule)
    relaxed = _levels(conditions(derivatives, rule, relax=rule.hysteresis))
    warn_now = raw["cusum"] | raw["z"]
    crit_now = raw["cumulative_loss"] | raw["forecast"]
    state, since, warn_run, crit_run, clear_run = 0, None, 0, 0, 0
    for i, rnd in enumerate(rounds):
        warn_run = warn_run + 1 if warn_now[i] else 0
        crit_run = crit_run + 1 if crit_now[i] else 0
        raised = 2 if crit_run >= rule.sustain_rounds else 1 if warn_run >= rule.sustain_rounds else 0
        new_state = state
        if raised > state:
            new_state, clear_run = raised, 0
            fired = [k for k in (("cumulative_loss", "forecast") if raised == 2 else ("cusum", "z")) if raw[k][i]]
            reason = "; ".join(_trigger_text(k, derivatives, i, rule) for k in fired)
            reason += f" for {rule.sustain_rounds} rounds"
        elif relaxed[i] < state:
            clear_run += 1
            if clear_run >= rule.cooldown_rounds:
                new_state, clear_run = max(int(relaxed[i]), raised), 0
                reason = (f"clear below {rule.hysteresis:g} x the thresholds for {rule.cooldown_rounds} rounds "
                          f"(CUSUM {derivatives['cusum'][i]:.2f}, slope z {derivatives['zscore'][i]:.2f})")
        else:
            clear_run = 0
        if new_state != state:
            transitions.append(Transition(metric, int(rnd), _BY_LEVEL[state], _BY_LEVEL[new_state], reason))
            state, since = new_state, i
        severities.append(_BY_LEVEL[state])
    return MetricEvaluation(metric, rounds, values, std_errors, derivatives, rule, severities, transitions,
                            since if state else None)


def _decline_began(ev: MetricEvaluation) -> int:
    """Index where the current decline began.

    The earlier of the CUSUM's last zero (the last round before the current
    run of bad changes) and the start of the current run of negative slope z.
    """
    d = ev.derivatives
    last = len(ev.rounds) - 1
    zeros = np.flatnonzero(d["cusum"][: last + 1] == 0.0)
    began = int(zeros[-1]) if len(zeros) else 0
    i = last
    while i >= 0 and d["zscore"][i] < 0:
        i -= 1
    if i < last:
        began = min(began, i + 1)
    return began


def explain(ev: MetricEvaluation, last_ok_round: int | None) -> dict:
    """What a non-ok state carries: values, derivatives, thresholds, onset and what to do."""
    i = len(ev.rounds) - 1
    d, rule = ev.derivatives, ev.rule
    began = _decline_began(ev)
    triggers = [k for k, v in conditions(d, rule).items() if v[i]]
    spec = get_spec(ev.metric)
    intervention = rule.intervention or "inspect the loop's recent generations"
    if ev.severity == CRITICAL:
        where = f"round {last_ok_round}" if last_ok_round is not None else "the last healthy round"
        intervention = f"stop the loop and roll back to {where} (the last round without an alert); then {intervention}"
    recent = slice(max(0, i + 1 - RECENT_VALUES), i + 1)
    direction = "higher" if rule.higher_is_better else "lower"
    message = (
        f"{ev.metric} ({spec.family}, {direction} is better) {ev.severity} since round {int(ev.rounds[ev.since_index])}: "
        f"{ev.values[i]:.4g} at round {int(ev.rounds[i])}, declining since round {int(ev.rounds[began])} "
        f"({ev.values[began]:.4g}); " + ("; ".join(_trigger_text(k, d, i, rule) for k in triggers) or "holding (hysteresis)")
    )
    return {
        "metric": ev.metric,
        "family": spec.family,
        "severity": ev.severity,
        "since_round": int(ev.rounds[ev.since_index]),
        "decline_began_round": int(ev.rounds[began]),
        "rounds_since_decline_began": int(ev.rounds[i] - ev.rounds[began]),
        "recent_values": [
            {"round": int(r), "value": float(v), "std_error": finite_or_none(s)}
            for r, v, s in zip(ev.rounds[recent], ev.values[recent], ev.std_errors[recent])
        ],
        "derivatives": {k: finite_or_none(d[k][i]) for k in ("slope", "slope_se", "zscore", "ewma_slope", "cusum", "loss",
                                                 "cum_z", "rounds_to_threshold")},
        "thresholds": {"cusum_h": rule.cusum_h, "z_h": rule.z_h, "critical_loss": rule.critical_loss,
                       "critical_z": rule.critical_z, "loss_scale": rule.loss_scale,
                       "threshold": finite_or_none(d["threshold"][i]), "forecast_horizon": rule.forecast_horizon},
        "triggered_by": triggers,
        "intervention": intervention,
        "message": message,
    }


@dataclass(frozen=True)
class SignalState:
    """The loop's state on one alarm signal (``collapse`` or ``drift``) at its latest round."""

    signal: str
    severity: str
    since_round: int | None
    log_evidence: float | None  # the strongest chart's log e-detector statistic (sequential mode)
    log_threshold: float | None  # and its warning threshold
    metrics: tuple[str, ...] = ()
    message: str = ""

    def as_dict(self) -> dict:
        return {"signal": self.signal, "severity": self.severity, "since_round": self.since_round,
                "log_evidence": finite_or_none(self.log_evidence), "log_threshold": finite_or_none(self.log_threshold),
                "metrics": list(self.metrics), "message": self.message}


@dataclass
class LoopEvaluation:
    """Everything the engine derives from a loop's trajectory.

    ``sequential`` holds the charts when the loop has a null (the alarm with a
    guarantee); without one the alert states come from the derivative rules.
    """

    derivatives: pd.DataFrame
    metrics: dict[str, MetricEvaluation]
    states: list[AlertState]
    transitions: list[Transition]
    risk: pd.DataFrame  # round, risk, driver_family, driver_metric, <family>_risk... (the store's loop_risk columns)
    signals: list[SignalState] = field(default_factory=list)
    sequential: object | None = None  # monitor.engine.sequential.SequentialEvaluation

    @property
    def guarantee(self) -> dict | None:
        return None if self.sequential is None else self.sequential.guarantee.as_dict()

    @property
    def status(self) -> str:
        return loop_status(self.states)

    def latest_risk(self) -> dict | None:
        if self.risk.empty:
            return None
        row = self.risk.iloc[-1]
        return {"round": int(row["round"]), **risk_summary(row)}


def risk_summary(row) -> dict:
    """One round's risk as reported (JSON, CLI): from an evaluation's or the store's risk row."""
    return {"risk": float(row["risk"]), "driver_family": row["driver_family"], "driver_metric": row["driver_metric"],
            "families": {f: float(row[f"{f}_risk"]) for f in FAMILIES}}


def _loop_risk(metric_evals: dict[str, MetricEvaluation], risks: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    columns = ["round", "risk", "driver_family", "driver_metric", *(f"{f}_risk" for f in FAMILIES)]
    rows: dict[int, dict[str, tuple[float, str]]] = {}
    for name, ev in metric_evals.items():
        risk = metric_risk(ev.derivatives, ev.rule) if risks is None else risks.get(name, np.zeros(len(ev.rounds)))
        for rnd, r in zip(ev.rounds, risk):
            best = rows.setdefault(int(rnd), {})
            if r > best.get(ev.rule.family, (-1.0, ""))[0]:
                best[ev.rule.family] = (float(r), name)
    out = []
    for rnd in sorted(rows):
        fam = rows[rnd]
        family_risk = {f: fam.get(f, (0.0, ""))[0] for f in FAMILIES}
        risk = 1.0 - float(np.prod([1.0 - family_risk[f] for f in FAMILIES]))
        driver = max(FAMILIES, key=lambda f: family_risk[f])
        has_driver = family_risk[driver] > 0
        out.append({"round": rnd, "risk": risk, "driver_family": driver if has_driver else None,
                    "driver_metric": fam[driver][1] if has_driver else None,
                    **{f"{f}_risk": r for f, r in family_risk.items()}})
    return pd.DataFrame(out, columns=columns)


def evaluate_loop(trajectory: pd.DataFrame, rules: RuleSet, null=None) -> LoopEvaluation:
    """Derivatives, alert states, transitions and risk of one loop's trajectory.

    With the loop's ``null`` (:class:`monitor.engine.null.LoopNull`) the alarm is the
    sequential one (:mod:`monitor.engine.sequential`); without it, the derivative rules.
    """
    rules = rules.for_round(round_modality(trajectory["metric"].unique()))
    derivs = compute_derivatives(trajectory, rules)
    metric_evals: dict[str, MetricEvaluation] = {}
    for metric, group in trajectory.groupby("metric", sort=True):
        g = group.sort_values("round")
        dg = derivs[derivs["metric"] == metric].sort_values("round")
        std_errors = pd.to_numeric(g["std_error"], errors="coerce").to_numpy(dtype=np.float64) \
            if "std_error" in g else np.full(len(g), np.nan)
        metric_evals[metric] = replay(
            metric, g["round"].to_numpy(), g["value"].to_numpy(dtype=np.float64), std_errors,
            {c: dg[c].to_numpy(dtype=np.float64) for c in COLUMNS}, rules.for_metric(metric),
        )
    if null is not None:
        return _evaluate_sequential(trajectory, rules, null, derivs, metric_evals)
    # The last round at which no metric was alerting: where a critical alert suggests rolling back to.
    alerting_rounds = {int(r) for ev in metric_evals.values() for r, s in zip(ev.rounds, ev.severities) if s != OK}
    all_rounds = sorted({int(r) for ev in metric_evals.values() for r in ev.rounds})
    healthy = [r for r in all_rounds if r not in alerting_rounds]
    last_ok = healthy[-1] if healthy else None
    states = []
    for metric, ev in metric_evals.items():
        if ev.severity == OK:
            states.append(AlertState(metric, OK, None))
        else:
            why = explain(ev, last_ok)
            states.append(AlertState(metric, ev.severity, why["since_round"], why["message"], why))
    transitions = sorted((t for ev in metric_evals.values() for t in ev.transitions), key=lambda t: (t.round, t.metric))
    signals = []
    for signal in ("collapse", "drift"):
        raised = [s for s in states if s.severity != OK and rules.signal_of(s.metric) == signal]
        worst = loop_status(raised)
        since = min((s.since_round for s in raised if s.severity == worst), default=None)
        signals.append(SignalState(signal, worst, since, None, None, tuple(sorted(s.metric for s in raised)),
                                   "derivative rules (no null: no false-alarm guarantee; "
                                   "build one with `collapse-monitor calibrate LOOP --pool POOL`)"))
    return LoopEvaluation(derivs, metric_evals, states, transitions, _loop_risk(metric_evals), signals)


def _evaluate_sequential(trajectory, rules: RuleSet, null, derivs, metric_evals) -> LoopEvaluation:
    """States, transitions and risk from the e-CUSUM charts on the loop's null (see :mod:`monitor.engine.sequential`)."""
    from monitor.engine.sequential import evaluate_sequential

    seq = evaluate_sequential(trajectory, null, {m: rules.signal_of(m) for m in null.metrics}, arl0=rules.arl0)
    position = {int(r): i for i, r in enumerate(seq.rounds)}
    signal_of = {m: s for s, ms in seq.signal_metrics.items() for m in ms}
    # Per round, each metric's severity: its signal's, when an alarm of that signal names it.
    severity_at: dict[str, np.ndarray] = {m: np.zeros(len(seq.rounds), dtype=np.int64) for m in metric_evals}
    for signal, level in seq.levels.items():
        for t in np.flatnonzero(level > 0):
            for m in seq.named_metrics(signal, int(t)):
                if m in severity_at:
                    severity_at[m][t] = max(severity_at[m][t], int(level[t]))
    states, transitions, risks = [], [], {}
    last = len(seq.rounds) - 1
    healthy = [int(r) for t, r in enumerate(seq.rounds) if not any(v[t] for v in severity_at.values())]
    last_ok = healthy[-1] if healthy else None
    for metric, ev in metric_evals.items():
        idx = np.array([position[int(r)] for r in ev.rounds], dtype=np.int64)
        levels = severity_at[metric][idx] if len(idx) else np.zeros(0, dtype=np.int64)
        ev.severities = [_BY_LEVEL[int(v)] for v in levels]
        ev.transitions = []
        previous = 0
        for i, v in enumerate(levels):
            if v != previous:
                reason = _sequential_reason(seq, metric, signal_of.get(metric), int(idx[i]))
                ev.transitions.append(Transition(metric, int(ev.rounds[i]), _BY_LEVEL[previous], _BY_LEVEL[int(v)], reason))
                previous = int(v)
        chart = f"metric:{metric}"
        weight = ev.rule.risk_weight if chart in seq.charts and ev.rule.enabled else 0.0
        evidence = seq.evidence(chart)[idx] if chart in seq.charts else np.zeros(len(idx))
        risks[metric] = weight * (1.0 - np.exp2(-(evidence**2)))
        transitions.extend(ev.transitions)
        current = int(levels[-1]) if len(levels) and idx[-1] == last else 0
        if current == 0:
            states.append(AlertState(metric, OK, None))
            continue
        run_start = len(levels) - 1
        while run_start > 0 and levels[run_start - 1] > 0:
            run_start -= 1
        ev.since_index = run_start
        why = _sequential_explanation(seq, ev, signal_of[metric], last_ok)
        states.append(AlertState(metric, _BY_LEVEL[current], int(ev.rounds[run_start]), why["message"], why))
    signals = []
    for signal in ("collapse", "drift"):
        charts = seq.charts_of(signal) if seq.signal_metrics.get(signal) else []
        level = seq.levels.get(signal, np.zeros(len(seq.rounds), dtype=np.int64))
        if not charts or not len(seq.rounds):
            signals.append(SignalState(signal, OK, None, None, None, (), "no metric of the null feeds this signal"))
            continue
        strongest = max(charts, key=lambda c: seq.charts[c][last] - seq.thresholds[c])
        since = None
        if level[last] > 0:
            t = last
            while t > 0 and level[t - 1] > 0:
                t -= 1
            since = int(seq.rounds[t])
        named = tuple(seq.named_metrics(signal, last)) if level[last] > 0 else ()
        signals.append(SignalState(
            signal, _BY_LEVEL[int(level[last])], since, float(seq.charts[strongest][last]),
            float(seq.thresholds[strongest]), named,
            f"{strongest} log e-value {seq.charts[strongest][last]:.2f} (threshold {seq.thresholds[strongest]:.2f}); "
            f"{seq.guarantee.message()}"))
    transitions.sort(key=lambda t: (t.round, t.metric))
    return LoopEvaluation(derivs, metric_evals, states, transitions, _loop_risk(metric_evals, risks), signals, seq)


def _sequential_reason(seq, metric: str, signal: str | None, t: int) -> str:
    chart = f"metric:{metric}"
    z = seq.scores.get(metric, np.full(len(seq.rounds), np.nan))[t]
    own = seq.charts.get(chart, np.full(len(seq.rounds), np.nan))[t]
    combined = seq.charts.get(f"signal:{signal}", np.full(len(seq.rounds), np.nan))[t]
    return (f"{signal} signal: {metric} {z:+.2f} null SD from the null level; its chart log e {own:.2f} "
            f"(threshold {seq.thresholds.get(chart, float('nan')):.2f}), the {signal} chart log e {combined:.2f} "
            f"(threshold {seq.thresholds.get(f'signal:{signal}', float('nan')):.2f})")


def _sequential_explanation(seq, ev: MetricEvaluation, signal: str, last_ok_round: int | None) -> dict:
    """What a raised metric carries: values against the null, since when, by how much, and what to do."""
    i = len(ev.rounds) - 1
    spec = get_spec(ev.metric)
    t = len(seq.rounds) - 1
    z = seq.scores[ev.metric]
    chart = seq.charts[f"metric:{ev.metric}"]
    began = t
    while began > 0 and chart[began - 1] > 0:  # the chart's current run of evidence
        began -= 1
    mean, sd = seq.null_level[ev.metric]
    intervention = ev.rule.intervention or "inspect the loop's recent generations"
    if ev.severity == CRITICAL:
        where = f"round {last_ok_round}" if last_ok_round is not None else "the last healthy round"
        intervention = f"stop the loop and roll back to {where} (the last round without an alert); then {intervention}"
    recent = slice(max(0, i + 1 - RECENT_VALUES), i + 1)
    d = ev.derivatives
    direction = "higher" if ev.rule.higher_is_better else "lower"
    message = (f"{ev.metric} ({spec.family}, {direction} is better) {ev.severity} on the {signal} signal since round "
               f"{int(ev.rounds[ev.since_index])}: {ev.values[i]:.4g} at round {int(ev.rounds[i])} against the null's "
               f"{mean:.4g} +- {sd:.3g}, {z[t]:+.2f} null SD; evidence building since round {int(seq.rounds[began])}; "
               f"{seq.guarantee.message()}")
    return {
        "metric": ev.metric, "family": spec.family, "signal": signal, "severity": ev.severity,
        "since_round": int(ev.rounds[ev.since_index]),
        "decline_began_round": int(seq.rounds[began]),
        "rounds_since_decline_began": int(seq.rounds[t] - seq.rounds[began]),
        "null": {"mean": mean, "sd": sd, "z": finite_or_none(z[t])},
        "chart": {"log_evidence": finite_or_none(chart[t]), "log_threshold": seq.thresholds[f"metric:{ev.metric}"],
                  "signal_log_evidence": finite_or_none(seq.charts[f"signal:{signal}"][t]),
                  "signal_log_threshold": seq.thresholds[f"signal:{signal}"]},
        "guarantee": seq.guarantee.as_dict(),
        "recent_values": [
            {"round": int(r), "value": float(v), "std_error": finite_or_none(s)}
            for r, v, s in zip(ev.rounds[recent], ev.values[recent], ev.std_errors[recent])
        ],
        "derivatives": {k: finite_or_none(d[k][i]) for k in ("slope", "slope_se", "zscore", "ewma_slope", "cusum",
                                                             "loss", "cum_z", "rounds_to_threshold")},
        "triggered_by": ["sequential"],
        "intervention": intervention,
        "message": message,
    }


def loop_status(states: list[AlertState]) -> str:
    """The worst severity of a loop's states."""
    return max((s.severity for s in states), key=SEVERITY_LEVEL.__getitem__, default=OK)
