"""``collapse-monitor demo``: a collapsing Gaussian-mixture loop, audited round by round.

Each round's samples are written to ``$COLLAPSE_MONITOR_HOME/demo/`` and
audited through the ``audit_round`` flow while the exporter serves the store.
"""

from __future__ import annotations

import numpy as np
from rich.table import Table

from monitor.commands import quiet_prefect
from monitor.config import load_settings
from monitor.errors import CollapseMonitorError
from monitor.render import SEVERITY_STYLE, console
from monitor.simulate import self_training_rounds
from monitor.store import TrajectoryStore

LOOP = "demo-gmm"
COLUMNS = {"precision": "P", "recall": "R", "density": "D", "coverage": "C", "vendi_score": "Vendi",
           "self_cosine_similarity": "SelfCos"}


def run(args) -> int:
    settings = load_settings(args.home, args.rules)
    settings.rules()
    quiet_prefect()
    from flows.audit import audit_round

    con = console()
    workdir = settings.home / "demo"
    workdir.mkdir(exist_ok=True)
    exporter = None
    store = TrajectoryStore(settings.store_url)
    if not args.no_serve:
        from monitor.exporter import Exporter

        try:
            exporter = Exporter(store, args.host, args.port)
        except OSError as exc:
            raise CollapseMonitorError(
                f"cannot serve the exporter on {args.host}:{args.port}: {exc.strerror} (use --port 0 or --no-serve)"
            ) from exc
        con.print(f"exporter: {exporter.url}")
    con.print(f"state: {settings.home}  (MLflow: {settings.mlflow_uri})")
    table = Table(title=f"{LOOP}: Gaussian mixture refit on its own samples (tau 0.97)")
    table.add_column("round", justify="right")
    for short in COLUMNS.values():
        table.add_column(short, justify="right")
    table.add_column("risk", justify="right")
    table.add_column("status")
    first_alert: int | None = None
    reference_path = workdir / "reference.npy"
    try:
        with con.status("auditing rounds...") as spinner:
            for round_number, samples in self_training_rounds(args.rounds, seed=args.seed):
                if round_number is None:
                    np.save(reference_path, samples)
                    continue
                spinner.update(f"auditing round {round_number + 1}/{args.rounds}...")
                path = workdir / f"round_{round_number}.npy"
                np.save(path, samples)
                result = audit_round(LOOP, round_number, str(path), str(reference_path), home=str(settings.home),
                                     rules_path=None if settings.rules_path is None else str(settings.rules_path))
                status = result["status"]
                table.add_row(
                    str(round_number),
                    *(f"{result['metrics'][name]['value']:.3f}" for name in COLUMNS),
                    f"{result['risk']['risk']:.2f}" if result["risk"] else "-",
                    f"[{SEVERITY_STYLE[status]}]{status}[/]",
                )
                # An alert is news when its severity changes.
                for t in result["transitions"]:
                    style = SEVERITY_STYLE[t["to"]]
                    con.print(f"[{style}]round {t['round']}: {t['metric']} {t['from']} -> {t['to']}: {t['reason']}[/]")
                    if t["to"] != "ok" and first_alert is None:
                        first_alert = t["round"]
        con.print(table)
        con.print("legend: P precision, R recall, D density, C coverage, SelfCos self cosine similarity")
        con.print(f"first alert at round {first_alert}" if first_alert is not None else "no alert fired")
    finally:
        if exporter is not None:
            exporter.stop()
        store.close()
    return 0
