"""Calibrate the shipped alert defaults on the demo's no-feedback control loop (docs/alerts.md).

Control rounds are fresh draws from the demo's true Gaussian mixture, audited
with the default suite against the demo's reference; calibration then sets the
noise factors and the threshold scale for the target ARL0. A second, held-out
set of control loops is audited the same way and its false alarms counted.

    .venv/bin/python benchmarks/calibrate_defaults.py [--rounds 60] [--held-out-loops 8] [--held-out-rounds 50]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from rich.progress import Progress

import metrics_core
from monitor.engine.calibrate import arl_estimate, calibrate, empirical_run_lengths
from monitor.engine.rules import load_rules
from monitor.engine.simulate import control_rounds


def audit_controls(loop: str, rounds: int, stream: int, progress: Progress) -> pd.DataFrame:
    config = metrics_core.SuiteConfig()
    stream = control_rounds(rounds, seed=0, stream=stream)
    _, reference = next(stream)
    profile = metrics_core.fit_suite_reference(reference, config)
    rows = []
    task = progress.add_task(f"{loop}", total=rounds)
    for r, samples in stream:
        suite = metrics_core.embedding_suite(reference, samples, config=config, profile=profile)
        rows += [(loop, r, name, est.value, est.std_error) for name, est in suite.items()]
        progress.advance(task)
    return pd.DataFrame(rows, columns=["loop", "round", "metric", "value", "std_error"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60, help="calibration control rounds (one loop)")
    parser.add_argument("--held-out-loops", type=int, default=8)
    parser.add_argument("--held-out-rounds", type=int, default=50)
    parser.add_argument("--target-arl0", type=float, default=200.0)
    parser.add_argument("--save", default="calibration-controls.csv",
                        help="where the audited control trajectories are written (and read back with --reuse)")
    parser.add_argument("--reuse", action="store_true", help="skip the audits and read --save")
    args = parser.parse_args()
    started = time.perf_counter()
    # The demo's seed 0 defines the truth and the reference; each control loop draws its
    # rounds from its own stream.
    if args.reuse:
        both = pd.read_csv(args.save)
    else:
        with Progress() as progress:
            both = pd.concat([audit_controls("calibration", args.rounds, 0, progress)]
                             + [audit_controls(f"held-{i}", args.held_out_rounds, 1 + i, progress)
                                for i in range(args.held_out_loops)], ignore_index=True)
        both.to_csv(args.save, index=False)
    control = both[both["loop"] == "calibration"]
    held_out = both[both["loop"] != "calibration"]
    rules = load_rules()
    cal = calibrate(control, rules, target_arl0=args.target_arl0, runs=500, seed=0)
    print(f"audited {args.rounds} calibration rounds + {args.held_out_loops}x{args.held_out_rounds} held-out rounds "
          f"in {time.perf_counter() - started:.0f} s")
    print(f"threshold_scale = {cal.threshold_scale:.4f}  (simulated ARL0 {cal.arl0:.1f} +- {cal.arl0_se:.1f}, "
          f"target {cal.target_arl0:g})")
    for metric, factor in sorted(cal.noise_factors.items()):
        print(f"noise_factor {metric:28s} {factor:.3f}")
    for name, r in (("defaults (scale 1, noise factors 1)", rules), ("calibrated", cal.rules)):
        lengths = empirical_run_lengths(held_out, r)
        arl, se, alarms = arl_estimate(lengths, args.held_out_rounds)
        print(f"held-out {name}: {alarms} of {len(lengths)} loops alarmed within {args.held_out_rounds} rounds; "
              f"ARL0 estimate {arl:.0f} +- {se:.0f}")
    print(cal.toml(source="benchmarks/calibrate_defaults.py (demo GMM control)"))


if __name__ == "__main__":
    main()
