"""``collapse-monitor status [LOOP]``: one loop's trajectory, derivatives, risk and alerts, or every loop at a glance."""

from __future__ import annotations

import json
import math
import time

import pandas as pd

from monitor.engine.alerts import AlertState, loop_status, risk_summary
from monitor.config import check_loop_name, load_settings
from monitor.engine.derivatives import COLUMNS, finite_or_none
from monitor.errors import CollapseMonitorError
from monitor.publishing.render import console, render_status
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


# As the CollapseAuditStale rule (dashboards/prometheus/collapse.rules.yml): older than 6 h is stale, and a
# loop not audited for 7 days is taken as finished.
STALE_AFTER_SECONDS = 6 * 3600
FINISHED_AFTER_SECONDS = 7 * 86400
_SEVERITY_ORDER = {"critical": 2, "warning": 1, "ok": 0}


def loops_overview(store: TrajectoryStore, now: float | None = None,
                   stale_after: float = STALE_AFTER_SECONDS) -> list[dict]:
    """One row per loop, riskiest first: last round and audit, state, risk and its family, alerts, staleness.

    Four queries whatever the number of loops (no per-loop trajectory is read).
    """
    now = time.time() if now is None else now
    summaries = store.loop_summaries()
    risks = {r["loop"]: r for r in store.risk(latest_only=True).to_dict("records")}
    states = store.alert_states()
    signals = store.signals()
    rows = []
    for s in summaries.to_dict("records"):
        loop = s["loop"]
        active = states[(states["loop"] == loop) & (states["severity"] != "ok")] if len(states) else states
        loop_signals = signals[signals["loop"] == loop] if len(signals) else signals
        raised = {r["signal"]: r["severity"] for r in loop_signals.to_dict("records") if r["severity"] != "ok"}
        worst = max(active["severity"], key=_SEVERITY_ORDER.get, default="ok") if len(active) else "ok"
        risk = risks.get(loop)
        age = max(0.0, now - float(s["audited_at"]))
        rows.append({
            "loop": loop,
            "last_round": int(s["round"]),
            "audited_at": float(s["audited_at"]),
            "age_seconds": age,
            "state": worst,
            "signals": raised,
            "risk": None if risk is None else float(risk["risk"]),
            "driver_family": None if risk is None else risk["driver_family"],
            "driver_metric": None if risk is None else risk["driver_metric"],
            "active_alerts": int(len(active)),
            "stale": stale_after < age < FINISHED_AFTER_SECONDS,
            "finished": age >= FINISHED_AFTER_SECONDS,
            "guarantee": bool(len(loop_signals)) and any(isinstance(g, str) for g in loop_signals["guarantee"]),
        })
    rows.sort(key=lambda r: (-(r["risk"] if r["risk"] is not None else -1.0), -_SEVERITY_ORDER[r["state"]],
                             r["loop"]))
    return rows


def run(args) -> int:
    settings = load_settings(args.home)
    if args.loop is None:
        with TrajectoryStore(settings.store_url) as store:
            rows = loops_overview(store, stale_after=args.stale_after * 3600.0)
        if args.json:
            print(json.dumps({"loops": rows}))
        else:
            render_overview(console(), rows, store.url)
        return 0
    check_loop_name(args.loop)
    with TrajectoryStore(settings.store_url) as store:
        report = loop_report(store, args.loop)
    if args.json:
        print(json.dumps(report))
    else:
        render_status(console(), report)
    return 0


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{math.floor(seconds / size)}{unit}"
    return "now"


def render_overview(con, rows: list[dict], where: str) -> None:
    """The loops overview as a table (riskiest first); 80 columns fit it."""
    from rich.table import Table

    if not rows:
        con.print(f"no audited loops in {where}; audit a round with `collapse-monitor audit LOOP ROUND FILE`")
        return
    table = Table(title=f"{len(rows)} loops, riskiest first",
                  caption="signals raised: C collapse, D drift; fresh: audited within --stale-after, done: 7 days idle")
    table.add_column("loop", no_wrap=True, min_width=8, ratio=1, overflow="fold")
    for name in ("round", "audited", "state", "risk", "driver", "alerts", "fresh"):
        table.add_column(name, no_wrap=True)
    style = {"critical": "bold red", "warning": "yellow", "ok": "green"}
    for r in rows:
        fresh = "done" if r["finished"] else ("[yellow]stale[/]" if r["stale"] else "yes")
        raised = "".join(s[0].upper() for s in sorted(r["signals"]))
        table.add_row(r["loop"], str(r["last_round"]), _age(r["age_seconds"]),
                      f"[{style[r['state']]}]{r['state']}[/]" + (f" {raised}" if raised else ""),
                      "-" if r["risk"] is None else f"{r['risk']:.2f}", r["driver_family"] or "-",
                      str(r["active_alerts"]), fresh)
    con.print(table)
