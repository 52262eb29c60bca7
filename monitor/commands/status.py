"""``collapse-monitor status``: a loop's trajectory and alert state from the store."""

from __future__ import annotations

import json

from monitor.alerts import AlertState, loop_status
from monitor.config import check_loop_name, load_settings
from monitor.errors import CollapseMonitorError
from monitor.render import console, render_status
from monitor.store import TrajectoryStore


def _none_if_nan(v):
    return None if v is None or v != v else float(v)


def loop_report(store: TrajectoryStore, loop: str) -> dict:
    trajectory = store.trajectory(loop)
    if trajectory.empty:
        known = ", ".join(store.loops()) or "none"
        raise CollapseMonitorError(f"loop {loop!r}: no audited rounds in {store.url} (known loops: {known})")
    derivs = store.derivatives(loop).set_index(["round", "metric"])
    rounds: dict[int, dict] = {}
    for r in trajectory.itertuples(index=False):
        entry = rounds.setdefault(
            int(r.round), {"round": int(r.round), "audited_at": float(r.audited_at), "metrics": {}, "derivatives": {}}
        )
        entry["metrics"][r.metric] = {
            "value": float(r.value), "ci_low": _none_if_nan(r.ci_low), "ci_high": _none_if_nan(r.ci_high),
            "std_error": _none_if_nan(r.std_error),
        }
        if (r.round, r.metric) in derivs.index:
            d = derivs.loc[(r.round, r.metric)]
            entry["derivatives"][r.metric] = {"delta": _none_if_nan(d["delta"]), "slope": _none_if_nan(d["slope"])}
    states = [
        AlertState(s.metric, s.severity, None if s.since_round != s.since_round else s.since_round, s.message)
        for s in store.alert_states(loop).itertuples(index=False)
    ]
    return {
        "loop": loop,
        "rounds": [rounds[k] for k in sorted(rounds)],
        "alerts": [s.as_dict() for s in states],
        "status": loop_status(states),
    }


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
