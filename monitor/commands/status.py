"""``collapse-monitor status``: a loop's trajectory, derivatives, risk and alerts from the store."""

from __future__ import annotations

import json

import pandas as pd

from monitor.alerts import AlertState, loop_status, risk_summary
from monitor.config import check_loop_name, load_settings
from monitor.derivatives import COLUMNS, finite_or_none
from monitor.errors import CollapseMonitorError
from monitor.render import console, render_status
from monitor.store import TrajectoryStore


def loop_report(store: TrajectoryStore, loop: str) -> dict:
    trajectory = store.trajectory(loop)
    if trajectory.empty:
        known = ", ".join(store.loops()) or "none"
        raise CollapseMonitorError(f"loop {loop!r}: no audited rounds in {store.url} (known loops: {known})")
    derivs = {(int(r["round"]), r["metric"]): r for r in store.derivatives(loop).to_dict("records")}
    risk = {int(r["round"]): r for r in store.risk(loop).to_dict("records")}
    rounds: dict[int, dict] = {}
    for r in trajectory.itertuples(index=False):
        entry = rounds.setdefault(
            int(r.round), {"round": int(r.round), "audited_at": float(r.audited_at), "metrics": {}, "derivatives": {},
                           "risk": None if int(r.round) not in risk else risk_summary(risk[int(r.round)])}
        )
        entry["metrics"][r.metric] = {
            "value": float(r.value), "ci_low": finite_or_none(r.ci_low), "ci_high": finite_or_none(r.ci_high),
            "std_error": finite_or_none(r.std_error),
        }
        d = derivs.get((int(r.round), r.metric))
        if d is not None:
            entry["derivatives"][r.metric] = {k: finite_or_none(d[k]) for k in COLUMNS}
    states = [
        AlertState(s["metric"], s["severity"], None if pd.isna(s["since_round"]) else int(s["since_round"]),
                   s["message"], None if s["explanation"] is None else json.loads(s["explanation"]))
        for s in store.alert_states(loop).to_dict("records")
    ]
    history = store.alert_history(loop)
    ordered = [rounds[k] for k in sorted(rounds)]
    return {
        "loop": loop,
        "rounds": ordered,
        "risk": ordered[-1]["risk"],
        "alerts": [s.as_dict() for s in states],
        "history": [
            {"metric": h["metric"], "round": int(h["round"]), "from": h["from_severity"], "to": h["to_severity"],
             "reason": h["reason"], "recorded_at": float(h["recorded_at"])}
            for h in history.to_dict("records")
        ],
        "signals": {
            row["signal"]: {"severity": row["severity"],
                            "since_round": None if pd.isna(row["since_round"]) else int(row["since_round"]),
                            "log_evidence": finite_or_none(row["log_evidence"]),
                            "log_threshold": finite_or_none(row["log_threshold"]),
                            "metrics": json.loads(row["metrics"]), "message": row["message"]}
            for row in store.signals(loop).to_dict("records")
        },
        "guarantee": _guarantee(store, loop),
        "status": loop_status(states),
    }


def _guarantee(store: TrajectoryStore, loop: str) -> dict | None:
    rows = store.signals(loop)
    texts = [g for g in rows["guarantee"] if isinstance(g, str)] if len(rows) else []
    return json.loads(texts[0]) if texts else None


def run(args) -> int:
    check_loop_name(args.loop)
    store = TrajectoryStore(load_settings(args.home).store_url)
    try:
        report = loop_report(store, args.loop)
    finally:
        store.close()
    if args.json:
        print(json.dumps(report))
    else:
        render_status(console(), report)
    return 0
