"""Re-evaluate a loop from its stored values and store the verdict (one transaction)."""

from __future__ import annotations

from monitor.alerts import LoopEvaluation, evaluate_loop
from monitor.rules import RuleSet
from monitor.store import TrajectoryStore


def evaluate_and_store(store: TrajectoryStore, loop: str, rules: RuleSet) -> LoopEvaluation:
    """Recompute derivatives, alert states, history and risk of ``loop`` from the store."""
    evaluation = evaluate_loop(store.trajectory(loop), rules)
    store.save_evaluation(loop, evaluation)
    return evaluation


def round_verdict(evaluation: LoopEvaluation, round_number: int) -> dict:
    """The JSON-ready verdict at one round: its derivatives, active alerts, risk and status."""
    d = evaluation.derivatives
    at_round = d[d["round"] == round_number]
    derivatives = {
        r["metric"]: {k: _none_if_nan(v) for k, v in r.items() if k not in ("round", "metric")}
        for r in at_round.to_dict("records")
    }
    risk = evaluation.risk[evaluation.risk["round"] == round_number]
    return {
        "derivatives": derivatives,
        "alerts": [s.as_dict() for s in evaluation.states if s.severity != "ok"],
        "risk": _risk_dict(risk.iloc[0]) if len(risk) else None,
        "transitions": [t.as_dict() for t in evaluation.transitions if t.round == round_number],
        "status": evaluation.status,
    }


def _risk_dict(row) -> dict:
    from metrics_core.registry import FAMILIES

    return {"risk": float(row["risk"]), "driver_family": row["driver_family"], "driver_metric": row["driver_metric"],
            "families": {f: float(row[f]) for f in FAMILIES}}


def _none_if_nan(v):
    return None if v is None or v != v else float(v)
