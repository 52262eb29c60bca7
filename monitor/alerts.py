"""The collapse alert rule (walking-skeleton version) and its evaluation.

Rule ``sustained_decline`` for each watched metric (default ``coverage`` and
``recall``; the bad direction comes from the metric registry):

* **warning** when the metric moved in its bad direction by more than
  ``warn_per_round`` (default 0.02) at each of the last ``sustain_rounds``
  (default 3) round-over-round changes;
* **critical** when the cumulative move in the bad direction since the first
  audited round exceeds ``critical_total`` (default 0.20).

Critical wins over warning. The state is evaluated on the whole trajectory
(so late or re-audited rounds are handled) and stored per loop and metric,
with the round at which the current severity began.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metrics_core.registry import get_spec

OK, WARNING, CRITICAL = "ok", "warning", "critical"
SEVERITY_LEVEL = {OK: 0, WARNING: 1, CRITICAL: 2}


@dataclass(frozen=True)
class DeclineRule:
    metrics: tuple[str, ...] = ("coverage", "recall")
    warn_per_round: float = 0.02
    sustain_rounds: int = 3
    critical_total: float = 0.20

    def __post_init__(self) -> None:
        for name in self.metrics:
            get_spec(name)
        if self.warn_per_round < 0 or self.critical_total < 0:
            raise ValueError("warn_per_round and critical_total must be non-negative")
        if self.sustain_rounds < 1:
            raise ValueError(f"sustain_rounds: expected at least 1, got {self.sustain_rounds}")


@dataclass(frozen=True)
class AlertState:
    metric: str
    severity: str
    since_round: int | None
    message: str = field(default="")

    def as_dict(self) -> dict:
        return {"metric": self.metric, "severity": self.severity, "since_round": self.since_round, "message": self.message}


def _evaluate_prefix(metric: str, rounds: np.ndarray, values: np.ndarray, rule: DeclineRule) -> tuple[str, str]:
    """Severity and message at the last round of ``values`` (bad direction = decline)."""
    sign = 1.0 if get_spec(metric).higher_is_better else -1.0
    loss_total = sign * (values[0] - values[-1])
    if loss_total > rule.critical_total:
        return CRITICAL, (
            f"{metric} lost {loss_total:.3f} since round {rounds[0]} "
            f"({values[0]:.3f} -> {values[-1]:.3f}; critical above {rule.critical_total:g})"
        )
    losses = sign * -np.diff(values)
    recent = losses[-rule.sustain_rounds :]
    if len(recent) == rule.sustain_rounds and bool((recent > rule.warn_per_round).all()):
        return WARNING, (
            f"{metric} declined at each of the last {rule.sustain_rounds} rounds "
            f"(mean {recent.mean():.3f}/round; warning above {rule.warn_per_round:g}/round)"
        )
    return OK, ""


def evaluate_alerts(trajectory: pd.DataFrame, rule: DeclineRule | None = None) -> list[AlertState]:
    """Alert state of every watched metric present in a loop's trajectory."""
    rule = rule or DeclineRule()
    states = []
    for metric in rule.metrics:
        g = trajectory[trajectory["metric"] == metric].sort_values("round")
        if g.empty:
            continue
        rounds = g["round"].to_numpy()
        values = g["value"].to_numpy(dtype=np.float64)
        severity, message = _evaluate_prefix(metric, rounds, values, rule)
        since = int(rounds[-1])
        for i in range(len(values) - 2, -1, -1):
            if _evaluate_prefix(metric, rounds[: i + 1], values[: i + 1], rule)[0] != severity:
                break
            since = int(rounds[i])
        states.append(AlertState(metric, severity, since if severity != OK else None, message))
    return states


def loop_status(states: list[AlertState]) -> str:
    """The worst severity of a loop's states."""
    return max((s.severity for s in states), key=SEVERITY_LEVEL.__getitem__, default=OK)
