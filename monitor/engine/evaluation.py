"""Re-evaluate a loop from its stored values and store the verdict (one transaction)."""

from __future__ import annotations

from monitor.engine.alerts import LoopEvaluation, evaluate_loop, risk_summary
from monitor.engine.derivatives import finite_or_none
from monitor.engine.rules import RuleSet
from monitor.store import TrajectoryStore


def evaluate_and_store(store: TrajectoryStore, loop: str, rules: RuleSet) -> LoopEvaluation:
    """Recompute derivatives, alert states, history and risk of ``loop`` from the store."""
    evaluation = evaluate_loop(store.trajectory(loop), rules, null=store.null(loop))
    store.save_evaluation(loop, evaluation)
    return evaluation


def round_verdict(evaluation: LoopEvaluation, round_number: int) -> dict:
    """The JSON-ready verdict at one round: its derivatives, active alerts, risk and status."""
    d = evaluation.derivatives
    at_round = d[d["round"] == round_number]
    derivatives = {
        r["metric"]: {k: finite_or_none(v) for k, v in r.items() if k not in ("round", "metric")}
        for r in at_round.to_dict("records")
    }
    risk = evaluation.risk[evaluation.risk["round"] == round_number]
    return {
        "derivatives": derivatives,
        "alerts": [s.as_dict() for s in evaluation.states if s.severity != "ok"],
        "risk": risk_summary(risk.iloc[0]) if len(risk) else None,
        "transitions": [t.as_dict() for t in evaluation.transitions if t.round == round_number],
        "signals": {s.signal: s.as_dict() for s in evaluation.signals},
        "guarantee": evaluation.guarantee,
        "status": evaluation.status,
    }

