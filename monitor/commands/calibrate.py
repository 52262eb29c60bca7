"""``collapse-monitor calibrate``: set the alert thresholds to a target false-alarm rate (ARL0).

Control trajectories come either from loops already audited in the store
(``--from-loop``, e.g. your generator run without feedback) or are made here
from a reference file: it is split (seeded) into a reference part and a pool,
and each control round is a fresh subsample of the pool, audited against the
reference part. See docs/alerts.md#calibration.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from monitor import io
from monitor.calibrate import calibrate
from monitor.config import check_loop_name, load_settings
from monitor.errors import CollapseMonitorError, InputError
from monitor.render import console
from monitor.rules import _read
from monitor.store import TrajectoryStore


def control_trajectories_from_reference(path: str, rounds: int, *, max_samples: int, k: int, n_boot: int,
                                        seed: int, progress: bool = True) -> tuple[pd.DataFrame, float]:
    """Audit ``rounds`` no-feedback control rounds drawn from a reference file.

    Returns the trajectories and the finite-population factor
    :math:`\\sqrt{1-n/N_{pool}}` by which subsamples of a finite pool scatter
    less than fresh draws (the noise factors are divided by it).
    """
    import metrics_core

    loaded = io.load_embeddings(path, "reference")
    data = loaded.data
    rng = np.random.default_rng(seed)
    order = rng.permutation(data.shape[0])
    n_reference = min(max_samples, data.shape[0] // 2)
    reference, pool = data[order[:n_reference]], data[order[n_reference:]]
    n_round = min(max_samples, pool.shape[0] // 4)
    if n_round < k + 1 or n_reference < k + 1:
        raise InputError(
            f"{loaded.path} (reference): {data.shape[0]} rows are too few for control rounds "
            f"(half for the reference, rounds of a quarter of the rest; k={k} needs at least {k + 1} each)"
        )
    config = metrics_core.SuiteConfig(k=k, n_boot=n_boot, seed=seed)
    profile = metrics_core.fit_reference_profile(reference, config)
    rows = []
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("auditing control rounds", total=rounds)
        for r in range(rounds):
            idx = rng.choice(pool.shape[0], size=n_round, replace=False)
            suite = metrics_core.embedding_suite(reference, pool[idx], config=config, profile=profile)
            rows += [("control", r, name, est.value, est.std_error) for name, est in suite.items()]
            bar.advance(task)
    fpc = float(np.sqrt(1.0 - n_round / pool.shape[0]))
    return pd.DataFrame(rows, columns=["loop", "round", "metric", "value", "std_error"]), fpc


def run(args) -> int:
    settings = load_settings(args.home, args.rules)
    rules = settings.rules()
    if bool(args.reference) == bool(args.from_loop):
        raise CollapseMonitorError("calibrate: give either --reference FILE or --from-loop LOOP (one or more)")
    fpc = 1.0
    if args.from_loop:
        store = TrajectoryStore(settings.store_url)
        try:
            parts = []
            for loop in args.from_loop:
                check_loop_name(loop)
                t = store.trajectory(loop)
                if t.empty:
                    raise CollapseMonitorError(f"loop {loop!r}: no audited rounds in {store.url}")
                parts.append(t[["loop", "round", "metric", "value", "std_error"]])
        finally:
            store.close()
        control = pd.concat(parts, ignore_index=True)
        source = "control loops " + ", ".join(args.from_loop)
    else:
        control, fpc = control_trajectories_from_reference(
            args.reference, args.control_rounds, max_samples=args.max_samples, k=args.k, n_boot=args.bootstrap,
            seed=args.seed, progress=not args.json,
        )
        control["std_error"] = control["std_error"] * fpc  # scatter of fresh draws, see the docstring above
        source = f"{args.control_rounds} control rounds of {Path(args.reference).name}"
    result = calibrate(control, rules, target_arl0=args.target_arl0, seed=args.seed)
    out = Path(args.out) if args.out else settings.home / "rules.toml"
    user_doc = _read(settings.rules_path) if settings.rules_path and settings.rules_path.is_file() else {}
    text = result.toml(user_doc, source)
    try:
        out.write_text(text)
    except OSError as exc:
        raise CollapseMonitorError(f"{out}: cannot write the calibrated rules: {exc.strerror}") from exc
    summary = {
        "rules_file": str(out), "threshold_scale": result.threshold_scale, "noise_factors": result.noise_factors,
        "target_arl0": result.target_arl0, "arl0": result.arl0, "arl0_se": result.arl0_se,
        "control_rounds": result.control_rounds, "finite_population_factor": fpc,
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    con = console()
    con.print(f"calibrated on {source}: threshold scale {result.threshold_scale:.3f}, "
              f"simulated ARL0 {result.arl0:.0f} +- {result.arl0_se:.0f} rounds (target {result.target_arl0:g})")
    for metric, factor in sorted(result.noise_factors.items()):
        con.print(f"  noise factor {metric}: {factor:.3f}")
    con.print(f"wrote {out}; run `collapse-monitor evaluate` to re-evaluate stored loops with it")
    return 0
