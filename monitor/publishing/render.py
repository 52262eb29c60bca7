"""Human-readable output (rich); every verb's ``--json`` bypasses it."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from metrics_core.registry import REGISTRY

SEVERITY_STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red"}


def console() -> Console:
    return Console()


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.4g}"


def render_audit(con: Console, result: dict) -> None:
    table = Table(title=f"loop {result['loop']} round {result['round']}")
    for col in ("metric", "value", "95% CI", "delta", "slope", "z", "CUSUM", "better"):
        table.add_column(col)
    for name, m in result["metrics"].items():
        d = result["derivatives"].get(name, {})
        ci = "-" if m["ci_low"] is None else f"[{m['ci_low']:.4g}, {m['ci_high']:.4g}]"
        better = "higher" if REGISTRY[name].higher_is_better else "lower"
        table.add_row(name, _fmt(m["value"]), ci, _fmt(d.get("delta")), _fmt(d.get("slope")), _fmt(d.get("zscore")),
                      _fmt(d.get("cusum")), better)
    con.print(table)
    _render_verdict(con, result["status"], result.get("risk"), result["alerts"])
    _render_signals(con, result.get("signals", {}), result.get("guarantee"))


def _render_signals(con: Console, signals: dict, guarantee: dict | None) -> None:
    """The collapse and drift signals, and the false-alarm guarantee behind them (or its absence)."""
    for name, sig in signals.items():
        named = f" ({', '.join(sig['metrics'])})" if sig["metrics"] else ""
        con.print(f"{name} signal: [{SEVERITY_STYLE[sig['severity']]}]{sig['severity']}[/]{named}")
    con.print("false-alarm guarantee: " + (guarantee["message"] if guarantee else
              "none (no null: audit with --pool POOL to build one; see docs/alerts.md)"), soft_wrap=True)


def _render_verdict(con: Console, status: str, risk: dict | None, alerts: list[dict]) -> None:
    style = SEVERITY_STYLE[status]
    line = f"status: [{style}]{status}[/]"
    if risk is not None:
        driver = f", driven by {risk['driver_family']} ({risk['driver_metric']})" if risk["driver_family"] else ""
        line += f"   collapse risk {risk['risk']:.2f}{driver}"
    con.print(line)
    for alert in alerts:
        if alert["severity"] == "ok":
            continue
        con.print(f"  [{SEVERITY_STYLE[alert['severity']]}]{alert['severity']}[/] {alert['message']}")
        if alert.get("explanation"):
            con.print(f"    what to do: {alert['explanation']['intervention']}")


_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None], width: int = 16) -> str:
    """The last ``width`` values as block characters scaled to their own range (blank where missing).

    >>> sparkline([0.9, 0.8, None, 0.5])
    '█▆ ▁'
    """
    values = values[-width:]
    present = [v for v in values if v is not None]
    if not present:
        return ""
    lo, hi = min(present), max(present)
    span = hi - lo
    return "".join(" " if v is None else _BLOCKS[int(round((v - lo) / span * 7)) if span > 0 else 3] for v in values)


def render_status(con: Console, report: dict, last_rounds: int | None = None) -> None:
    """Metrics as rows, the loop's last rounds as columns (as many as the terminal fits, at most 8)."""
    if last_rounds is None:
        # 24 (metric) + 6 (better) + 16 (trend) + borders, then 10 columns per round.
        last_rounds = max(1, min(8, (con.width - 56) // 10))
    rounds = report["rounds"][-last_rounds:]
    table = Table(title=f"loop {report['loop']}" + (f" (last {len(rounds)} rounds)" if len(report["rounds"]) > len(rounds) else ""))
    table.add_column("metric", no_wrap=True, min_width=24)
    table.add_column("better", no_wrap=True)
    table.add_column("trend", no_wrap=True)
    for entry in rounds:
        table.add_column(f"r{entry['round']}", justify="right", no_wrap=True, min_width=7)
    for name, spec in REGISTRY.items():
        values = [entry["metrics"].get(name, {}).get("value") for entry in rounds]
        if all(v is None for v in values):
            continue
        history = [entry["metrics"].get(name, {}).get("value") for entry in report["rounds"]]
        severity = next((a["severity"] for a in report["alerts"] if a["metric"] == name), "ok")
        trend = f"[{SEVERITY_STYLE[severity]}]{sparkline(history)}[/]"
        table.add_row(name, "higher" if spec.higher_is_better else "lower", trend, *(_fmt(v) for v in values))
    con.print(table)
    latest = report["rounds"][-1]
    z = {name: d.get("zscore") for name, d in latest["derivatives"].items() if d.get("zscore") is not None}
    if z:
        worst = sorted(z, key=z.get)[:3]
        con.print("steepest declines (slope z, negative is bad): " + ", ".join(f"{m} {z[m]:.2f}" for m in worst))
    _render_verdict(con, report["status"], report.get("risk"), report["alerts"])
    _render_signals(con, report.get("signals", {}), report.get("guarantee"))
    if report.get("history"):
        con.print("recent alert transitions:")
        for h in report["history"][-5:]:
            con.print(f"  round {h['round']}: {h['metric']} {h['from']} -> {h['to']}: {h['reason']}")
