"""CLI start-up and read-only commands, against a bare ``python -c pass`` measured in the same run.

Run: ``bash scripts/setup.sh && .venv/bin/python benchmarks/bench_cli.py``

Each command runs as a fresh process (as a user's shell or script runs it), ``--repeats``
times; the median wall time is printed with its ratio to ``python -c pass`` of the same
run, and whether torch, Prefect, MLflow or Evidently were imported (they must not be by
commands that do not compute). The store holds one loop of ``--rounds`` rounds of 20
metrics, evaluated, and three small loops for the overview.

Targets (issue "A tool people enjoy running"): ``--help`` <= 0.5 s, ``status LOOP`` of a
50-round loop <= 1.5 s, and the overview (``status``) as fast.
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
TARGETS = {"--help": 0.5, "status LOOP": 1.5, "status (overview)": 1.5}


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


if __name__ == "__main__":
    main()
