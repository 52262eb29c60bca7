"""``collapse-monitor calibrate``: build or refresh a loop's null, or calibrate the derivative rules.

``calibrate LOOP [--pool POOL]`` gives the loop its null (:mod:`monitor.engine.null`)
and so its alarm a false-alarm guarantee: the latest recorded round is
re-audited through the flow with the pool, which builds (or, when the
reference, pool, options or metrics changed, rebuilds) the null, and every
stored round is re-evaluated under the sequential alarm. Without ``--pool``
the loop's recorded pool is used; a loop that has none gets its reference
split in two, seeded and recorded (a reference part and a pool part, written
content-addressed under ``inputs/<loop>/``), and every recorded round is
re-audited against the reference part so that all rounds compare with the
same reference.

For loops without a null, ``calibrate --reference`` / ``--from-loop`` sets
the derivative rules' thresholds to a target ARL0 on control trajectories.
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

from monitor import inputs
from monitor.engine.calibrate import calibrate
from monitor.config import check_loop_name, load_settings
from monitor.errors import CollapseMonitorError, InputError
from monitor.publishing.render import console
from monitor.engine.rules import _read
from monitor.store import TrajectoryStore


def control_trajectories_from_reference(path: str, rounds: int, *, max_samples: int, k: int, n_boot: int,
                                        seed: int, progress: bool = True) -> tuple[pd.DataFrame, float]:
    """Audit ``rounds`` no-feedback control rounds drawn from a reference file.

    Returns the trajectories and the finite-population factor
    :math:`\\sqrt{1-n/N_{pool}}` by which subsamples of a finite pool scatter
    less than fresh draws (the noise factors are divided by it).
    """
    import metrics_core

    loaded = inputs.load_embeddings(path, "reference")
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
    profile = metrics_core.fit_suite_reference(reference, config)
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


def _null_bar(store_url: str, loop: str, since: float, total: int, stop, show: bool) -> None:
    """Advance a bar as the loop's null is checkpointed (read from the store while the flow builds it)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with TrajectoryStore(store_url) as store:
        with Progress(TextColumn(f"null of {loop}"), BarColumn(), MofNCompleteColumn(), TextColumn("pseudo-rounds"),
                      TimeElapsedColumn(), console=console(), disable=not show, transient=True) as bar:
            task = bar.add_task("pseudo-rounds", total=total)
            while not stop.wait(0.5):
                row = store.null_record(loop)
                done = row["n_rounds"] if row is not None and row["updated_at"] >= since else 0
                bar.update(task, completed=min(done, total))


class NullProgress:
    """A progress bar for a null being built by the flow in this process (checkpoints every 50 pseudo-rounds)."""

    def __init__(self, store_url: str, loop: str, total: int, show: bool) -> None:
        import threading
        import time

        self._stop = threading.Event()
        self._thread = threading.Thread(target=_null_bar, daemon=True,
                                        args=(store_url, loop, time.time(), total, self._stop, show))

    def __enter__(self) -> "NullProgress":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def build_null(args, settings) -> int:
    """``calibrate LOOP``: build or refresh the loop's null from its pool, its recorded pool, or a recorded split."""
    from monitor.api import materialise
    from monitor.engine.null import load_pool, split_reference
    from monitor.options import AuditOptions

    loop = check_loop_name(args.loop)
    with TrajectoryStore(settings.store_url) as store:
        sources = store.sources(loop)
    if not sources:
        raise CollapseMonitorError(f"loop {loop!r}: no recorded rounds; audit a round first (with --pool to build "
                                   "its null at once)")
    latest = sources[-1]
    latest_options, latest_extras = AuditOptions.from_record(latest["options"])
    reference_path = latest["reference_path"]
    modality = latest_options.modality or "embedding"
    text_field = latest_options.text_field
    split = None
    if args.pool is not None:
        pool_path = str(Path(args.pool).resolve())
    elif latest_extras.get("pool_path"):
        pool_path = latest_extras["pool_path"]
    else:
        # No pool: split the reference, record the split, and re-audit every round against the reference part.
        from monitor.modalities import MODALITY

        if not MODALITY[modality].splits_reference:
            raise CollapseMonitorError(f"loop {loop!r}: a {modality} reference cannot be split into a null pool "
                                       "(it holds gold answers, not generated samples); pass --pool with "
                                       "generation-0 samples")
        reference, _ = load_pool(reference_path, modality, text_field=text_field, seed=latest_options.seed)
        part, pool = split_reference(reference, seed=latest_options.seed)
        directory = settings.home / "inputs" / loop
        reference_path = materialise(part, directory, "reference-part", None, text_field)
        pool_path = materialise(pool, directory, "pool-part", None, text_field)
        split = {"reference": latest["reference_path"], "reference_part": reference_path, "pool_part": pool_path}
    pool_source = "split" if split is not None else ("pool" if args.pool is not None
                                                     else latest_extras.get("pool_source", "pool"))
    from monitor.cli.flow_runs import audit_flow

    audit_round = audit_flow(settings.home)

    # Every round not yet audited against this reference (all of them after a split; those left over by an
    # interrupted split on a later run), then the latest round, which builds or refreshes the null.
    todo = [s for s in sources if s["reference_path"] != reference_path and s is not latest] + [latest]
    rules_path = None if settings.rules_path is None else str(settings.rules_path)
    result = None
    with NullProgress(settings.store_url, loop, args.null_rounds, show=not args.json):
        for src in todo:
            recorded, _ = AuditOptions.from_record(src["options"])
            moved = src["reference_path"] != reference_path
            # A moved round: the reference part is smaller than the reference it came from.
            opts = recorded.model_copy(update={"null_rounds": args.null_rounds,
                                               "allow_size_change": recorded.allow_size_change or moved})
            result = audit_round(loop, src["round"], src["data_path"], reference_path, opts, home=str(settings.home),
                                 rules_path=rules_path, allow_reference_change=moved, pool_path=pool_path,
                                 pool_source=pool_source)
    guarantee = result["guarantee"]
    summary = {"loop": loop, "pool": pool_path, "split": split, "rounds_reaudited": sorted(s["round"] for s in todo),
               "guarantee": guarantee, "signals": result["signals"], "status": result["status"]}
    if args.json:
        print(json.dumps(summary))
        return 0
    con = console()
    if split is not None:
        con.print(f"loop {loop} had no pool: its reference was split in two (recorded): reference part "
                  f"{split['reference_part']}, pool {split['pool_part']}; {len(todo)} rounds re-audited", soft_wrap=True)
    con.print(f"loop {loop}: null ready; {guarantee['message']}", soft_wrap=True)
    con.print(f"collapse signal {result['signals']['collapse']['severity']}, drift signal "
              f"{result['signals']['drift']['severity']}", soft_wrap=True)
    return 0


def run(args) -> int:
    settings = load_settings(args.home, args.rules)
    rules = settings.rules()
    if args.loop is not None:
        if args.reference or args.from_loop:
            raise CollapseMonitorError("calibrate: give a LOOP (build its null) or --reference / --from-loop "
                                       "(calibrate the derivative rules), not both")
        return build_null(args, settings)
    if args.pool is not None:
        raise CollapseMonitorError("calibrate: --pool needs the LOOP whose null it builds")
    if bool(args.reference) == bool(args.from_loop):
        raise CollapseMonitorError("calibrate: give either --reference FILE or --from-loop LOOP (one or more)")
    fpc = 1.0
    if args.from_loop:
        with TrajectoryStore(settings.store_url) as store:
            parts = []
            for loop in args.from_loop:
                check_loop_name(loop)
                t = store.trajectory(loop)
                if t.empty:
                    raise CollapseMonitorError(f"loop {loop!r}: no audited rounds in {store.url}")
                parts.append(t[["loop", "round", "metric", "value", "std_error"]])
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
