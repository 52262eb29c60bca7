"""``collapse-monitor evaluate``: recompute derivatives, alerts and risk from stored values.

Run it after changing the rules (or calibrating): audits are not repeated.
"""

from __future__ import annotations

import json

from monitor.config import check_loop_name, load_settings
from monitor.errors import CollapseMonitorError
from monitor.engine.evaluation import evaluate_and_store
from monitor.publishing.render import SEVERITY_STYLE, console
from monitor.store import TrajectoryStore


def run(args) -> int:
    for loop in args.loops:
        check_loop_name(loop)
    settings = load_settings(args.home, args.rules)
    rules = settings.rules()
    results = []
    with TrajectoryStore(settings.store_url) as store:
        known = store.loops()
        loops = args.loops or known
        unknown = [loop for loop in loops if loop not in known]
        if unknown:
            raise CollapseMonitorError(
                f"loop {unknown[0]!r}: no audited rounds in {store.url} (known loops: {', '.join(known) or 'none'})"
            )
        for loop in loops:
            ev = evaluate_and_store(store, loop, rules)
            results.append({"loop": loop, "status": ev.status, "risk": ev.latest_risk(),
                            "alerts": [s.as_dict() for s in ev.states if s.severity != "ok"]})
    if args.json:
        print(json.dumps({"rules": list(rules.sources), "loops": results}))
        return 0
    con = console()
    for r in results:
        risk = r["risk"]["risk"] if r["risk"] else 0.0
        con.print(f"{r['loop']}: [{SEVERITY_STYLE[r['status']]}]{r['status']}[/] (collapse risk {risk:.2f})")
        for alert in r["alerts"]:
            con.print(f"  {alert['message']}")
    return 0
