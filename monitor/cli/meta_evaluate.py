"""``collapse-monitor meta-evaluate`` (alias ``bench``): seeded collapse loops and controls with known onsets.

Runs every selected loop and its controls at every seed in worker processes,
audits each round in-process with the daemon's metric functions and alert
engine, scores the engine and the baselines at an equal false-alarm rate, and
writes the Markdown report (``--out``), one PNG per loop and ``results.json``
beside it. Every run archives what it audited in the state directory
(``meta-evaluation-archive/<stem of --out>/``, :mod:`monitor.meta_evaluation.archive`); ``--rescore``
re-applies the current engine and rules to that archive and writes the report again, auditing nothing.
See ``monitor/meta_evaluation/runner.py`` for the definitions.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from monitor.config import load_settings
from monitor.errors import CollapseMonitorError


def _command_line(args) -> str:
    """The command that regenerates this report, for its settings table.

    >>> from argparse import Namespace
    >>> _command_line(Namespace(quick=False, seeds=4, text_seeds=None, loops="L[34]-*", out="docs/x.md"))
    "collapse-monitor meta-evaluate --seeds 4 --loops 'L[34]-*' --out docs/x.md"
    """
    import shlex

    words = ["collapse-monitor", "meta-evaluate", *(["--quick"] if args.quick else [])]
    words += ["--seeds", str(args.seeds)] if args.seeds else []
    words += ["--text-seeds", str(args.text_seeds)] if getattr(args, "text_seeds", None) else []
    words += ["--loops", args.loops] if args.loops else []
    words += ["--out", args.out] if args.out != "docs/meta-evaluation.md" else []
    return " ".join(shlex.quote(w) for w in words)


def archive_folder(home, out) -> Path:
    """Where a run with report ``out`` archives its audits: ``<home>/meta-evaluation-archive/<stem of out>``.

    >>> archive_folder(Path("/h"), "docs/meta-evaluation-L9-log.md").as_posix()
    '/h/meta-evaluation-archive/meta-evaluation-L9-log'
    """
    return Path(home) / "meta-evaluation-archive" / Path(out).stem


def run(args) -> int:
    from monitor.meta_evaluation import archive, report, runner

    settings = load_settings(args.home, args.rules)
    rules = settings.rules()
    families = runner.select_families(args.loops)
    sources = [str(settings.rules_path)] if settings.rules_path else ["monitor/engine/default_rules.toml (shipped defaults)"]
    folder = archive_folder(settings.home, args.out)
    started = time.perf_counter()
    if getattr(args, "rescore", False):
        if args.quick or args.seeds or getattr(args, "text_seeds", None):
            raise CollapseMonitorError("--rescore: the sizes and seeds are the archived run's; drop --quick, --seeds "
                                       "and --text-seeds")
        stored = archive.load_archive(folder, families if args.loops else None)  # only the chosen loops
        result = runner.rescore(stored, rules, rules_sources=sources)
        bench_settings = result.settings
    else:
        bench_settings = runner.default_settings(args.quick, args.seeds, getattr(args, "text_seeds", None))
        result = _run(args, runner, bench_settings, rules, families, sources)
    try:
        paths = report.write_report(result, args.out, command=_command_line(_as_run(args, result.settings, runner)))
    except OSError as exc:
        raise CollapseMonitorError(f"{args.out}: cannot write the report: {exc.strerror or exc}") from exc
    if not result.rescored:
        try:
            archive.save_archive(result, folder)
        except OSError as exc:
            raise CollapseMonitorError(f"{folder}: cannot archive the run (the report is written): "
                                       f"{exc.strerror or exc}") from exc
    return _summarise(args, result, paths, bench_settings, started)


def _as_run(args, bench_settings, runner):
    """``args`` as the run that audited ``bench_settings`` was called (a rescore's report names that command)."""
    import argparse

    default = runner.default_settings(bench_settings.quick)
    text = bench_settings.text_seeds
    return argparse.Namespace(**{
        **vars(args), "quick": bench_settings.quick,
        "seeds": len(bench_settings.seeds) if bench_settings.seeds != default.seeds else None,
        "text_seeds": None if text is None or text == default.text_seeds else len(text)})


def _run(args, runner, bench_settings, rules, families, sources):
    workers = int(args.workers)
    if not args.json:
        members = sum(len(runner.family_members(f)) for f in families)
        n_runs = sum(len(runner.family_members(f)) * len(bench_settings.seeds_of(f)) for f in families)
        n_nulls = sum(len(bench_settings.seeds_of(f)) for f in families)
        seeds = f"{len(bench_settings.seeds)} seeds" + (
            f" ({len(bench_settings.text_seeds)} for text loops)" if bench_settings.text_seeds is not None else "")
        print(f"meta-evaluation ({'quick' if args.quick else 'full'}): {len(families)} loops, {members} loops and controls x "
              f"{seeds} = {n_runs} runs and {n_nulls} "
              f"nulls of {bench_settings.null_rounds} pseudo-rounds on {workers} worker(s); "
              f"n_audit {bench_settings.n_audit}", file=sys.stderr)
    return runner.run_benchmark(bench_settings, rules, families=families, workers=workers,
                                progress=not args.json, rules_sources=sources)


def _summarise(args, result, paths, bench_settings, started) -> int:
    from monitor.meta_evaluation import report

    elapsed = time.perf_counter() - started
    t = result.targets
    summary = {
        "report": str(paths["markdown"]),
        "results": str(paths["results"]),
        "mode": "quick" if bench_settings.quick else "full",
        "seeds": list(bench_settings.seeds),
        "seconds": elapsed,
        "headline": result.headline,
        "targets": {
            "all_detected_before_onset_90": t["all_detected_before_onset_90"],
            "pooled_false_alarms_per_1000": t["pooled_false_alarms"]["rate_per_1000"],
            "pooled_false_alarms_at_most_1_per_1000": t["pooled_false_alarms_at_most_1_per_1000"],
            "beats_every_baseline_everywhere": t["beats_every_baseline_everywhere"],
            "false_alarms_at_most_1_per_1000_everywhere": t["false_alarms_at_most_1_per_1000_everywhere"],
            "drift_controls_quiet": t["drift_controls_quiet"],
        },
    }
    if args.json:
        print(json.dumps(report.jsonable(summary), allow_nan=False))
        return 0
    from monitor.publishing.render import console

    con = console()
    for line in report.headline_table(result.headline):
        con.print(line, markup=False, highlight=False)
    per_round = ", ".join(f"{m} {report.fmt(d['seconds_per_round'])} s" for m, d in
                          result.timings["per_modality"].items())
    con.print(f"measured cost per audited round: {per_round}; {report.fmt(result.timings['job_seconds'])} s of "
              f"job time in {report.fmt(elapsed)} s", highlight=False)
    con.print(f"wrote {paths['markdown']}, {paths['results']} and the plots in {paths['plots']}/", highlight=False)
    return 0
