"""Trajectory plots of a loop (matplotlib PNG): one figure per metric family, plus the collapse risk.

Every metric panel shows its values by round with the 95% interval as a band,
the threshold level the forecast aims at, and the rounds where its alert state
rose (warning: orange triangle, critical: red cross) or cleared (green dot).
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from metrics_core.registry import FAMILIES, REGISTRY  # noqa: E402

_MARKERS = {"warning": ("^", "tab:orange"), "critical": ("X", "tab:red"), "ok": ("o", "tab:green")}
_COLUMNS = 3


def _family_of(metric: str) -> str:
    spec = REGISTRY.get(metric)
    return spec.family if spec else "unknown"


def plot_family(family: str, trajectory: pd.DataFrame, derivatives: pd.DataFrame, history: pd.DataFrame,
                path: Path, loop: str) -> Path:
    """One PNG: a panel per metric of ``family`` with values, CI band, threshold and alert markers."""
    metrics = [m for m in REGISTRY if REGISTRY[m].family == family and m in set(trajectory["metric"])]
    rows = math.ceil(len(metrics) / _COLUMNS)
    fig, axes = plt.subplots(rows, min(_COLUMNS, len(metrics)), figsize=(4.2 * min(_COLUMNS, len(metrics)), 2.8 * rows),
                             squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        t = trajectory[trajectory["metric"] == metric].sort_values("round")
        ax.plot(t["round"], t["value"], marker=".", color="tab:blue", lw=1.2)
        band = t.dropna(subset=["ci_low", "ci_high"])
        if not band.empty:
            ax.fill_between(band["round"], band["ci_low"], band["ci_high"], color="tab:blue", alpha=0.2, lw=0)
        d = derivatives[derivatives["metric"] == metric].sort_values("round")
        if not d.empty and pd.notna(d["threshold"].iloc[-1]):
            ax.axhline(d["threshold"].iloc[-1], color="tab:red", ls="--", lw=0.8)
        h = history[history["metric"] == metric] if not history.empty else history
        values = t.set_index("round")["value"]
        for row in h.itertuples(index=False):
            if row.round in values.index:
                marker, colour = _MARKERS[row.to_severity]
                ax.plot([row.round], [values[row.round]], marker=marker, color=colour, ms=9, ls="none")
        better = "higher" if REGISTRY[metric].higher_is_better else "lower"
        ax.set_title(f"{metric} ({better} is better)", fontsize=9)
        ax.set_xlabel("round", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    # Fixed margins in inches: tight_layout measured every tick label, half the cost of a plot.
    width, height = fig.get_size_inches()
    fig.suptitle(f"loop {loop}: {family}", y=1 - 0.12 / height, va="top")
    fig.subplots_adjust(left=0.55 / width, right=1 - 0.15 / width, bottom=0.45 / height, top=1 - 0.75 / height,
                        wspace=0.35, hspace=0.65)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_risk(risk: pd.DataFrame, path: Path, loop: str) -> Path:
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(risk["round"], risk["risk"], color="black", lw=2, label="collapse risk")
    for family in FAMILIES:
        column = f"{family}_risk"
        if column in risk and (risk[column] > 0).any():
            ax.plot(risk["round"], risk[column], lw=1, label=family)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("round")
    ax.set_title(f"loop {loop}: collapse risk")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def loop_plots(store, loop: str, out_dir: Path) -> list[Path]:
    """Write the loop's family plots and its risk plot as PNGs in ``out_dir``; returns their paths."""
    trajectory = store.trajectory(loop)
    derivatives = store.derivatives(loop)
    history = store.alert_history(loop)
    out_dir.mkdir(parents=True, exist_ok=True)
    families = [f for f in FAMILIES if f in {_family_of(m) for m in trajectory["metric"].unique()}]
    paths = [plot_family(f, trajectory, derivatives, history, out_dir / f"{loop}-{f}.png", loop) for f in families]
    risk = store.risk(loop)
    if not risk.empty:
        paths.append(plot_risk(risk, out_dir / f"{loop}-risk.png", loop))
    return paths


def html_report(report: dict, pngs: list[Path], path: Path) -> Path:
    """One self-contained HTML page: status, risk, active alerts with explanations, and the plots inline."""
    e = html.escape
    risk = report.get("risk") or {}
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>collapse-monitor: {e(report['loop'])}</title>",
        "<style>body{font-family:sans-serif;margin:2em} td,th{padding:2px 8px} .critical{color:#c00}"
        " .warning{color:#c70}</style></head><body>",
        f"<h1>loop {e(report['loop'])}</h1>",
        f"<p>status <b class='{e(report['status'])}'>{e(report['status'])}</b>; rounds {len(report['rounds'])};"
        f" collapse risk {risk.get('risk', 0.0):.2f}"
        + (f", driven by {e(str(risk['driver_family']))} ({e(str(risk['driver_metric']))})" if risk.get("driver_family") else "")
        + "</p>",
    ]
    active = [a for a in report["alerts"] if a["severity"] != "ok"]
    if active:
        parts.append("<h2>Active alerts</h2><table><tr><th>metric</th><th>severity</th><th>what happened</th>"
                     "<th>what to do</th></tr>")
        for a in active:
            why = a.get("explanation") or {}
            parts.append(f"<tr><td>{e(a['metric'])}</td><td class='{e(a['severity'])}'>{e(a['severity'])}</td>"
                         f"<td>{e(a['message'])}</td><td>{e(why.get('intervention', ''))}</td></tr>")
        parts.append("</table>")
    for png in pngs:
        data = base64.b64encode(png.read_bytes()).decode()
        parts.append(f"<h2>{e(png.stem)}</h2><img alt='{e(png.stem)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
