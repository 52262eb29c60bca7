"""CLI start-up and read-only commands, against a bare ``python -c pass`` measured in the same run.

Run: ``bash scripts/setup.sh && .venv/bin/python benchmarks/bench_cli.py``

Each command runs as a fresh process (as a user's shell or script runs it), ``--repeats``
times; the median wall time is printed with its ratio to ``python -c pass`` of the same
run, and whether torch, Prefect, MLflow or Evidently were imported (they must not be by
commands that do not compute). The store holds one loop of ``--rounds`` rounds of 20
metrics, evaluated, and three small loops for the overview.

Targets (issue "A tool people enjoy running"): ``--help`` <= 0.5 s, ``status LOOP`` of a
50-round loop <= 1.5 s, and the overview (``status``) as fast.

``audit`` of a 500 x 16 round with ``--bootstrap 20`` <= 3 s end to end: measured alone (a fresh
process that runs the flow itself) and with a ``serve`` running on the home, which audits the round in
its warm process (:mod:`flows.audit_service`). Each audit is a new round of one loop; the breakdown
splits the time into the flow's run in the daemon (the store's audit log) and the command's own part
(start-up, imports, loading and checking both files, the hand-over); the round's plots and MLflow run
follow in the daemon after the answer (``publish`` column: until MLflow confirmed the round).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "prefect", "mlflow", "evidently")
TARGETS = {"--help": 0.5, "status LOOP": 1.5, "status (overview)": 1.5, "audit, serve running": 3.0}


def fill_store(home: Path, rounds: int) -> None:
    """One loop of ``rounds`` rounds of 20 metrics (and three small ones), evaluated as the daemon would."""
    import numpy as np

    from metrics_core.bootstrap import Estimate
    from metrics_core.registry import REGISTRY
    from monitor.config import load_settings
    from monitor.engine.evaluation import evaluate_and_store
    from monitor.engine.rules import load_rules
    from monitor.store import RoundRecord, TrajectoryStore

    rng = np.random.default_rng(0)
    names = sorted(n for n, spec in REGISTRY.items() if spec.modality == "embedding")[:20]
    with TrajectoryStore(load_settings(home).store_url) as store:
        for loop, n in (("main", rounds), ("a", 5), ("b", 5), ("c", 5)):
            for r in range(n):
                metrics = {m: Estimate(float(0.5 + 0.01 * rng.standard_normal()), None, None, 0.01) for m in names}
                store.record_round(RoundRecord(loop=loop, round=r, metrics=metrics, n_reference=500, n_round=500,
                                               fingerprint=f"{loop}{r:060d}"[:64], reference_fingerprint="r" * 64,
                                               metrics_version="bench", audited_at=time.time() - 60 * (n - r)))
            evaluate_and_store(store, loop, load_rules())


def timed_command(argv: list[str], env: dict, repeats: int) -> tuple[float, list[str]]:
    probe = ("import runpy, sys, json; sys.argv = {argv!r}; "
             "code = 0\ntry:\n    runpy.run_module('monitor.cli', run_name='__main__')\n"
             "except SystemExit as e:\n    code = e.code or 0\n"
             "sys.stderr.write('\\nHEAVY ' + json.dumps([m for m in {heavy!r} if m in sys.modules]) + '\\n')\n"
             "sys.exit(code)").format(argv=["collapse-monitor", *argv], heavy=HEAVY)
    seconds, heavy = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
        seconds.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()[-400:]}")
        heavy = json.loads(done.stderr.rsplit("HEAVY ", 1)[1])
    return statistics.median(seconds), heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="rounds of the loop shown by `status LOOP`")
    parser.add_argument("--repeats", type=int, default=5, help="runs per command (median)")
    parser.add_argument("--no-audit", action="store_true", help="skip the audit timings (alone and via serve)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "COLLAPSE_MONITOR_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        os.environ["COLLAPSE_MONITOR_HOME"] = str(home)
        fill_store(home, args.rounds)
        bare = statistics.median(
            [(lambda t0: (subprocess.run([sys.executable, "-c", "pass"], check=True), time.perf_counter() - t0)[1])(
                time.perf_counter()) for _ in range(args.repeats)])
        print(f"python -c pass: {bare:.3f} s (median of {args.repeats})")
        print(f"{'command':<20} {'seconds':>8} {'x pass':>7} {'target':>7}  heavy imports")
        for name, argv in (("--help", ["--help"]), ("status LOOP", ["status", "main"]),
                           ("status (overview)", ["status"])):
            seconds, heavy = timed_command(argv, env, args.repeats)
            target = TARGETS[name]
            verdict = "met" if seconds <= target else "MISSED"
            print(f"{name:<20} {seconds:8.3f} {seconds / bare:7.1f} {target:6.1f}s  {', '.join(heavy) or 'none'}"
                  f"  ({verdict})")
        if not args.no_audit:
            print(f"audits of a 500 x 16 round, --bootstrap 20 (median of {args.repeats}):")
            bench_audit(Path(tmp), bare, args.repeats)


def _audit_rounds(home: Path, data: Path, env: dict, loop: str, rounds: range) -> list[dict]:
    """Audit ``rounds`` of ``loop`` as fresh ``collapse-monitor audit`` processes: wall time, flow time, publish."""
    from monitor.config import load_settings
    from monitor.store import TrajectoryStore

    url = load_settings(home).store_url
    out = []
    for r in rounds:
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "monitor.cli", "--home", str(home), "audit", loop, str(r),
                               str(data / f"round_{r}.npy"), "--reference", str(data / "reference.npy"),
                               "--bootstrap", "20", "--json"], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"audit {loop} {r} failed: {done.stderr.strip()[-600:]}")
        with TrajectoryStore(url) as store:
            seconds = _audit_seconds(store, loop, r)
            published = None
            deadline = time.time() + 120
            while published is None and time.time() < deadline:
                write = store.mlflow_writes(loop).get(r)
                if write and write["confirmed_at"] is not None:
                    published = time.perf_counter() - t0
                else:
                    time.sleep(0.05)
        out.append({"wall": wall, "flow": seconds, "publish": published})
    return out


def _submitted_rounds(home: Path, data: Path, loop: str, rounds: range) -> list[float]:
    """Seconds from handing a round to the daemon (as `audit` does, from this warm process) to its answer."""
    from flows.audit_service import submit_audit
    from monitor.options import AuditOptions

    out = []
    for r in rounds:
        parameters = {"loop": loop, "round_number": r, "data_path": str(data / f"round_{r}.npy"),
                      "reference_path": str(data / "reference.npy"), "home": str(home),
                      "options": AuditOptions(n_boot=20, modality="embedding").model_dump()}
        t0 = time.perf_counter()
        if submit_audit(home, parameters) is None:
            raise SystemExit("the daemon did not answer")
        out.append(time.perf_counter() - t0)
    return out


def _audit_seconds(store, loop: str, round_number: int) -> float:
    import sqlalchemy as sa

    from monitor.store import audit_log

    q = sa.select(audit_log.c.seconds).where(audit_log.c.loop == loop, audit_log.c.round == round_number,
                                             audit_log.c.outcome == "audited").order_by(audit_log.c.id.desc())
    with store.engine.connect() as conn:
        return float(conn.execute(q).scalars().first())


def bench_audit(tmp: Path, bare: float, repeats: int) -> None:
    """A 500 x 16 round with --bootstrap 20: alone, then with `serve` running on the home."""
    import numpy as np

    data = tmp / "rounds"
    data.mkdir()
    rng = np.random.default_rng(0)
    np.save(data / "reference.npy", rng.normal(size=(500, 16)))
    for r in range(2 * repeats + 3):
        np.save(data / f"round_{r}.npy", rng.normal(size=(500, 16)))
    home = tmp / "audit-home"
    env = {**os.environ, "COLLAPSE_MONITOR_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    # Round 0 of each loop fits the reference's profile (cached for the rounds after it): not timed.
    alone = _audit_rounds(home, data, env, "alone", range(0, repeats + 1))[1:]
    serve = subprocess.Popen([sys.executable, "-m", "monitor.cli", "--home", str(home), "serve", "--port", "0"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 180
        while not (home / "audit-service.json").exists():
            if serve.poll() is not None or time.time() > deadline:
                raise SystemExit("serve did not start its audit service")
            time.sleep(0.2)
        time.sleep(5)  # the daemon imports the flow's modules in the background once it is up
        warm = _audit_rounds(home, data, env, "served", range(0, repeats + 1))[1:]
        handed = _submitted_rounds(home, data, "served", range(repeats + 1, 2 * repeats + 1))
    finally:
        serve.terminate()
        serve.wait(60)
    hand_over = statistics.median(handed)
    for name, runs in (("audit, alone", alone), ("audit, serve running", warm)):
        wall = statistics.median(r["wall"] for r in runs)
        flow = statistics.median(r["flow"] for r in runs)
        published = [r["publish"] for r in runs if r["publish"] is not None]
        target = TARGETS.get(name)
        verdict = "" if target is None else f"  target {target:.1f} s: {'met' if wall <= target else 'MISSED'}"
        served = name != "audit, alone"
        split = (f"the command's start-up, imports and checks {wall - hand_over:.2f} s, the daemon's Prefect run "
                 f"{hand_over - flow:.2f} s, the flow's body (metrics, store, evaluation) {flow:.2f} s" if served else
                 f"start-up, imports, Prefect API and run {wall - flow:.2f} s, the flow's body {flow:.2f} s")
        print(f"{name:<22} {wall:7.2f} s ({wall / bare:6.0f}x pass){verdict}\n    {split}; MLflow confirmed "
              f"{statistics.median(published) if published else float('nan'):.2f} s after the start")


if __name__ == "__main__":
    main()
