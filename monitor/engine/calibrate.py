r"""Calibrate the alert thresholds to a target false-alarm rate on no-feedback control loops.

A control loop has no feedback: every round is a fresh draw from the
reference distribution, so any alert on it is a false alarm. The average run
length before the first false alarm (warning or critical, on any enabled
metric of the loop) is :math:`\mathrm{ARL}_0`. Calibration has two steps:

1. **Noise factors.** For each metric, the round-to-round scatter of the
   control values is compared with their bootstrap standard errors:
   :math:`c_m=\big(\tfrac{1}{N}\sum e_{li}^2\big)^{1/2}` with
   :math:`e_{li}=(v_{li}-\bar v_l)\,/\,\mathrm{se}_{li}\cdot\sqrt{n_l/(n_l-1)}`
   pooled over control loops :math:`l` and rounds :math:`i`. The engine's
   noise is then :math:`c_m\,\mathrm{se}`, so slope z, cumulative z and CUSUM
   are standard normal-scaled under no feedback even where a bootstrap over-
   or under-states the noise.
2. **Threshold scale.** Every significance threshold (``cusum_h``, ``z_h``,
   ``critical_z``) is multiplied by one scale :math:`\lambda`, found by
   bisection so the simulated :math:`\mathrm{ARL}_0` equals the target.
   Simulated control loops resample whole control rounds (the vector of
   standardised residuals of all metrics together, so correlated metrics stay
   correlated) i.i.d. over rounds; each simulated loop runs the engine's own
   derivative and raise logic, with common random numbers across
   :math:`\lambda`. Run lengths are censored at the simulation length, and
   :math:`\widehat{\mathrm{ARL}}_0=\sum_r \min(RL_r, L)/\#\text{alarms}`
   (the exponential MLE), with standard error
   :math:`\widehat{\mathrm{ARL}}_0/\sqrt{\#\text{alarms}}`.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.engine.alerts import first_alarm_index
from monitor.engine.derivatives import metric_derivatives
from monitor.errors import CollapseMonitorError
from monitor.engine.rules import RuleSet, dump_rules_toml

MIN_CONTROL_ROUNDS = 10


@dataclass(frozen=True)
class ControlResiduals:
    metrics: tuple[str, ...]
    residuals: np.ndarray  # [rows, metrics] standardised by the bootstrap standard error
    levels: np.ndarray  # [metrics] mean control value
    std_errors: np.ndarray  # [metrics] median bootstrap standard error
    noise_factors: dict[str, float]
    n_rounds: int
    n_loops: int


def control_residuals(control: pd.DataFrame, rules: RuleSet) -> ControlResiduals:
    """Standardised residuals of every enabled metric of the control loops (columns loop, round, metric, value, std_error)."""
    missing = {"loop", "round", "metric", "value", "std_error"} - set(control.columns)
    if missing:
        raise CollapseMonitorError(f"control trajectories: missing columns {', '.join(sorted(missing))}")
    metrics = tuple(m for m in sorted(control["metric"].unique()) if rules.for_metric(m).enabled)
    if not metrics:
        raise CollapseMonitorError("control trajectories: no metric with an enabled alert rule")
    wide_v = control.pivot_table(index=["loop", "round"], columns="metric", values="value", dropna=False)
    wide_v = wide_v.reindex(columns=list(metrics))
    wide_se = control.pivot_table(index=["loop", "round"], columns="metric", values="std_error", dropna=False)
    wide_se = wide_se.reindex(index=wide_v.index, columns=list(metrics))
    if len(wide_v) < MIN_CONTROL_ROUNDS:
        raise CollapseMonitorError(
            f"control trajectories: {len(wide_v)} control rounds; calibration needs at least {MIN_CONTROL_ROUNDS}"
        )
    se = wide_se.to_numpy(dtype=np.float64)
    if not (np.isfinite(se) & (se > 0)).all(axis=0).all():
        bad = [m for m, ok in zip(metrics, (np.isfinite(se) & (se > 0)).all(axis=0)) if not ok]
        raise CollapseMonitorError(
            f"control trajectories: no bootstrap standard error for {', '.join(bad)} (audit the controls with --bootstrap > 0)"
        )
    v = wide_v.to_numpy(dtype=np.float64)
    loops = wide_v.index.get_level_values("loop").to_numpy()
    residuals = np.empty_like(v)
    for loop in np.unique(loops):
        rows = loops == loop
        n = int(rows.sum())
        if n < 3:
            raise CollapseMonitorError(f"control loop {loop!r}: {n} rounds; each control loop needs at least 3")
        residuals[rows] = (v[rows] - v[rows].mean(axis=0)) / se[rows] * np.sqrt(n / (n - 1))
    factors = np.sqrt((residuals**2).mean(axis=0))
    return ControlResiduals(
        metrics=metrics, residuals=residuals, levels=v.mean(axis=0), std_errors=np.median(se, axis=0),
        noise_factors={m: float(f) for m, f in zip(metrics, factors)}, n_rounds=len(v), n_loops=len(np.unique(loops)),
    )


@dataclass(frozen=True)
class SimulatedControls:
    """Derivatives of resampled control loops, computed once for every threshold scale."""

    metrics: tuple[str, ...]
    derivatives: list[dict[str, np.ndarray]]  # per metric, [runs, length] arrays
    length: int


def simulate_controls(res: ControlResiduals, rules: RuleSet, runs: int, length: int, seed: int) -> SimulatedControls:
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, res.residuals.shape[0], size=(runs, length))
    rounds = np.arange(length)
    derivs = []
    for j, metric in enumerate(res.metrics):
        rule = rules.for_metric(metric)
        values = res.levels[j] + res.residuals[draws, j] * res.std_errors[j]
        std_errors = np.full(values.shape, res.std_errors[j])
        derivs.append(metric_derivatives(rounds, values, std_errors, rule))
    return SimulatedControls(res.metrics, derivs, length)


def run_lengths(sim: SimulatedControls, rules: RuleSet) -> np.ndarray:
    """Per simulated loop, rounds until its first alarm on any metric (``length + 1`` when none)."""
    first = np.full(sim.derivatives[0]["cusum"].shape[0], sim.length, dtype=np.int64)
    for metric, d in zip(sim.metrics, sim.derivatives):
        idx = first_alarm_index(d, rules.for_metric(metric))
        first = np.where((idx >= 0) & (idx < first), idx, first)
    return first + 1


def arl_estimate(lengths: np.ndarray, horizon: int) -> tuple[float, float, int]:
    """``(ARL, standard error, alarms)`` from run lengths censored at ``horizon`` (exponential MLE)."""
    alarms = int((lengths <= horizon).sum())
    exposure = float(np.minimum(lengths, horizon).sum())
    if alarms == 0:
        return float("inf"), float("inf"), 0
    arl = exposure / alarms
    return arl, arl / np.sqrt(alarms), alarms


@dataclass(frozen=True)
class Calibration:
    rules: RuleSet
    threshold_scale: float
    noise_factors: dict[str, float]
    target_arl0: float
    arl0: float
    arl0_se: float
    alarms: int
    runs: int
    length: int
    control_rounds: int
    control_loops: int

    def toml(self, user_document: dict | None = None, source: str = "") -> str:
        """The calibrated rules as a TOML overlay (the user's own overlay kept, calibration replaced)."""
        doc = {k: v for k, v in (user_document or {}).items()}
        doc["version"] = 1
        doc["calibration"] = {"threshold_scale": round(self.threshold_scale, 4), "target_arl0": self.target_arl0}
        metric_tables = {k: dict(v) for k, v in doc.get("metric", {}).items()}
        for metric, factor in self.noise_factors.items():
            metric_tables.setdefault(metric, {})["noise_factor"] = round(factor, 4)
        doc["metric"] = metric_tables
        header = (
            f"collapse-monitor alert rules, calibrated {_dt.date.today().isoformat()}{' from ' + source if source else ''}.\n"
            f"Target ARL0 {self.target_arl0:g} rounds; simulated ARL0 {self.arl0:.1f} +- {self.arl0_se:.1f} "
            f"({self.alarms} false alarms in {self.runs} resampled control loops of {self.length} rounds),\n"
            f"from {self.control_rounds} control rounds in {self.control_loops} loop(s). Method: docs/alerts.md#calibration.\n"
            "threshold_scale multiplies cusum_h, z_h and critical_z; noise_factor multiplies each metric's bootstrap standard error."
        )
        return dump_rules_toml(doc, header)


def calibrate(
    control: pd.DataFrame,
    rules: RuleSet,
    *,
    target_arl0: float = 200.0,
    runs: int = 300,
    length: int | None = None,
    seed: int = 0,
    tolerance: float = 0.02,
) -> Calibration:
    """Noise factors and the threshold scale that give ``target_arl0`` on the control loops.

    Args:
        control: control trajectories, columns ``loop, round, metric, value, std_error``.
        rules: the rules to calibrate (their thresholds are the ones scaled).
        target_arl0: rounds until the first false alarm, on average.
        runs: resampled control loops per evaluation.
        length: rounds per resampled loop (default ``4 * target_arl0``, at least 100).
        seed: resampling seed.
        tolerance: relative width at which the bisection on the scale stops.
    """
    if not target_arl0 > 1:
        raise CollapseMonitorError(f"target ARL0 {target_arl0!r}: expected more than 1 round")
    res = control_residuals(control, rules)
    # Scales are relative to the rules as given, so calibrating twice composes.
    base_scale = rules.threshold_scale
    factors = dict(res.noise_factors)  # relative to the raw bootstrap standard error
    with_noise = rules.with_calibration(base_scale, factors, target_arl0)
    length = int(length or max(100, 4 * target_arl0))
    sim = simulate_controls(res, with_noise, runs, length, seed)

    def arl(scale: float) -> tuple[float, float, int]:
        return arl_estimate(run_lengths(sim, with_noise.with_calibration(base_scale * scale, factors, target_arl0)), length)

    lo, hi = 0.25, 1.0
    while arl(hi)[0] < target_arl0:
        lo, hi = hi, hi * 2
        if hi > 64:
            raise CollapseMonitorError("calibration: no threshold scale up to 64 reaches the target ARL0")
    while arl(lo)[0] >= target_arl0 and lo > 1e-3:
        lo, hi = lo / 2, lo
    while hi / lo > 1 + tolerance:
        mid = np.sqrt(lo * hi)
        lo, hi = (mid, hi) if arl(mid)[0] < target_arl0 else (lo, mid)
    scale = hi
    arl0, arl0_se, alarms = arl(scale)
    calibrated = rules.with_calibration(base_scale * scale, factors, target_arl0)
    return Calibration(calibrated, base_scale * scale, factors, float(target_arl0), arl0, arl0_se, alarms, runs, length,
                       res.n_rounds, res.n_loops)


def empirical_run_lengths(control: pd.DataFrame, rules: RuleSet) -> np.ndarray:
    """Run lengths of real control loops by the engine's raise logic (``rounds + 1`` for a loop without alarm).

    Loops audited on the same rounds are evaluated together as one batch.
    """
    wide_v = control.pivot_table(index="loop", columns=["metric", "round"], values="value")
    wide_se = control.pivot_table(index="loop", columns=["metric", "round"], values="std_error")
    out = np.empty(len(wide_v), dtype=np.int64)
    for _, idx in wide_v.groupby(wide_v.notna().apply(lambda r: hash(tuple(r)), axis=1)).groups.items():
        rows = wide_v.index.get_indexer(idx)
        block_v, block_se = wide_v.iloc[rows].dropna(axis=1, how="all"), wide_se.iloc[rows]
        first = None
        for metric in block_v.columns.get_level_values("metric").unique():
            rule = rules.for_metric(metric)
            v = block_v[metric]
            rounds = v.columns.to_numpy()
            if first is None:
                first = np.full(len(rows), len(rounds), dtype=np.int64)
            if not rule.enabled:
                continue
            d = metric_derivatives(rounds, v.to_numpy(np.float64), block_se[metric][rounds].to_numpy(np.float64), rule)
            hit = first_alarm_index(d, rule)
            first = np.where((hit >= 0) & (hit < first), hit, first)
        out[rows] = first + 1
    return out
