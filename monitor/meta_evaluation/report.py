r"""The meta-evaluation's report: ``docs/meta-evaluation.md``, one PNG per loop and the raw results as JSON.

Every sentence about a target is assembled from computed numbers
(:func:`monitor.meta_evaluation.runner.targets`); nothing here states a conclusion of
its own. Numbers are printed with :func:`~monitor.meta_evaluation.report_tables.fmt`, the same
function the tests use to find the JSON's numbers in the Markdown; the tables are built in
:mod:`monitor.meta_evaluation.report_tables`, the document is assembled here.

Files, for ``out = docs/meta-evaluation.md``:

* ``docs/meta-evaluation.md``: settings, headline table, targets, a section per loop
  (baselines at equal false-alarm rate, per-metric table, plot), timings;
* ``docs/meta-evaluation/<loop id>.png``: key metrics of one seed's collapse run
  with their 95% interval, the onset (vertical dashed line) and the engine's
  alarm (vertical solid line), plus the loop risk and the two raw-data baselines;
* ``docs/meta-evaluation/results.json``: :meth:`BenchResult.summary` plus one
  record per run (alarm generations, risk, drift share and MMD p-value per
  round), enough to recompute every table.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from monitor.meta_evaluation.report_tables import (
    _baseline_rows, _fa, _metric_rows, _table, _target_lines, fmt, headline_table, jsonable,
)
from monitor.meta_evaluation.runner import BenchResult, RunResult
from monitor.meta_evaluation.settings import AGENT_MAX_AUDIT, STRUCTURED_MAX_AUDIT


def _reasoning_sizes(result: BenchResult) -> str:
    """L11's sizes as its runs used them (settings.REASONING_MAX_QUESTIONS, REASONING_BANK), for the settings
    table; "" without L11 runs."""
    params = next((r.params for r in result.runs if r.family == "L11-reasoning"), None)
    if params is None:
        return ""
    return (f"; L11: {params['n_questions_audit']} questions x {params['samples_per_question']} samples, a "
            f"reference of the {params['n_reference']} gold records of its question bank, and a pool of at most "
            f"its {params['n_reference']} questions")


def render_markdown(result: BenchResult, plots: dict[str, str], results_json: str, out_dir_name: str,
                    command: str | None = None) -> str:
    """The whole report as Markdown text.

    Args:
        result: the meta-evaluation's result.
        plots: loop id -> PNG path relative to the Markdown file.
        results_json: the results JSON's path relative to the Markdown file.
        out_dir_name: the folder of plots and results, for the text.
    """
    s = result.settings
    timings = result.timings
    check = result.summary()["evidently_check"]
    lines = ["# Meta-evaluation: collapse detection on seeded loops with known onsets", ""]
    lines.append(
        "Written by `collapse-monitor meta-evaluate` (`monitor/meta_evaluation/runner.py`, `monitor/meta_evaluation/report.py`); survey §8.1 "
        "meta-evaluation. Every number below is computed by that run; regenerate with the command in the "
        f"settings table. Raw per-run results: [`{results_json}`]({results_json}).")
    lines.append("")
    lines += ["## Settings", ""]
    rows = [
        ["mode", "quick (CI)" if s.quick else "full"],
        ["command", f"`{command}`" if command else
         "`collapse-monitor meta-evaluate" + (" --quick" if s.quick else "") + f" --seeds {len(s.seeds)}`"],
        ["date", result.date if not result.rescored else
         f"{result.date} (audits); engine and rules re-applied to the archived runs {result.rescored}"],
        ["seeds", ", ".join(str(x) for x in s.seeds) + ("" if s.text_seeds is None else
                  "; text loops (L3, L4): " + ", ".join(str(x) for x in s.text_seeds))],
        ["samples per audit round (and reference)", f"{s.n_audit} (L5: the real table's 178 rows as reference"
         + (f"; L6: {min(s.n_audit, AGENT_MAX_AUDIT)} episodes" if "L6-agent" in result.families else "")
         + "".join(f"; {family.split('-', 1)[0]}: {min(s.n_audit, cap)}" for family, cap in STRUCTURED_MAX_AUDIT.items()
                   if family in result.families and cap < s.n_audit)
         + _reasoning_sizes(result) + ")"],
        ["bootstrap replicates per metric", str(s.n_boot)],
        ["MMD permutations per round", str(s.n_permutations)],
        ["k-NN k", str(s.k)],
        ["schedules (generations, audit every)", ", ".join(f"`{k}` {v[0]}/{v[1]}" for k, v in s.schedules.items()
                                                           if k in result.families)],
        ["runs", f"{len(result.runs)} ({sum(r.kind == 'collapse' for r in result.runs)} collapse, "
                 f"{sum(r.kind == 'control' for r in result.runs)} control), "
                 f"{int(sum(r.seconds['rounds'] for r in result.runs))} audited rounds"],
        ["duration", f"{fmt(timings['wall_seconds'])} s wall with {timings['workers']} worker(s) "
                     f"({fmt(timings['job_seconds'])} s summed over jobs)"],
        ["machine", f"{result.machine['platform']}, {result.machine['cpus']} CPUs, Python "
                    f"{result.machine['python']}, torch {result.machine['torch']}"],
        ["alert rules", ", ".join(f"`{x}`" for x in result.rules_sources) or "shipped defaults"],
        ["Evidently check", "none" if not check["rounds"] else
         f"fast drift share vs the full Evidently report on {len(check['rounds'])} rounds: largest difference "
         f"{fmt(check['max_abs_difference'])}"],
    ]
    lines += _table(["setting", "value"], rows)
    lines.append("")
    lines += ["## Definitions", ""]
    lines += [
        "- Rounds are audited generations; the daemon's round number is the generation, so **lead time** = onset "
        "generation minus the generation of the first alarm (positive = early). The onset is the first generation "
        "past the ground-truth collapse threshold, from the generator's true parameters (`monitor/meta_evaluation/loops.py`, "
        "`monitor/meta_evaluation/ngram_truth.py`, `monitor/meta_evaluation/loop_agent.py`, and the L7-L10 loop "
        "modules `loop_json_records.py`, `loop_graphs.py`, `loop_logs.py`, `loop_image_text.py`, and L11's "
        "`loop_reasoning.py`). Runs whose onset lies "
        "beyond their last generation have no lead time.",
        "- **Engine alarm**: the first audited round at which the **collapse signal** is raised, by "
        "`monitor.engine.alerts.evaluate_loop` with the run's null (e-CUSUM charts on level deviations from the null, "
        "guaranteed ARL0 >= 1,000; docs/alerts.md), as the daemon reports it. Each (loop, seed) has its own null: "
        "a pool of real data (generation 0, `monitor/meta_evaluation/pools.py`) of `pool_ratio` round sizes, and "
        "`null_rounds` pseudo-rounds audited against the run's reference by the daemon's pipeline "
        "(`monitor.modalities.pipeline.AuditPipeline`, as every round is). Per-metric alarm: that metric's own chart over "
        "its threshold. **First alert**: the first round at which either signal (collapse or drift) is raised, "
        "what a pager receives first; the one mixture guarantee covers both signals.",
        "- **Oracle**: a likelihood-ratio e-CUSUM that knows every generation's true model "
        "(`monitor/meta_evaluation/oracle.py`) at the same ARL0: the physically achievable P(alarm before onset) at this "
        "audit schedule and round size, for a detector of any change. On the Gaussian loops (L1) the **collapse "
        "oracle** (`spread_log_evalues`) is the ceiling for a detector that must ignore drift, as the collapse "
        "signal does: it knows the true covariances, sees only the round's scatter matrix (blind to the mean) and "
        "bets only on a loss of spread.",
        "- **P(alarm before onset)**: share of the runs that reached onset with an alarm strictly before the onset "
        "generation (a miss counts as a failure). Lead-time median and IQR are over the detected runs.",
        "- **False alarms per 1,000 C0 rounds** and **ARL0**: on the no-feedback controls only (every round a "
        "fresh draw of generation 0), each run counts its first raise only, with the rounds up to it at risk "
        "(`monitor.meta_evaluation.scoring.false_alarm_summary`); in brackets: false alarms / rounds at risk, and the exact "
        "Poisson 95% upper bound per 1,000. C1 (accumulate) and C2 (fresh real data) drift in truth: their "
        "alarms are scored against their own true parameters (the loop's onset rule applied to them) and "
        "reported as small-drift alarms. D0 is a pure drift at constant spread (`monitor/meta_evaluation/drift.py`): "
        "it must raise no collapse alarm, and the drift signal should fire.",
        "- **ROC-AUC**: the per-round risk (engine: the loop's collapse risk; metric: its risk) against \"past "
        "onset\", pooled over the collapse and control rounds of all seeds.",
        "- **Baselines at an equal false-alarm rate**: each baseline's threshold is the most sensitive one whose "
        "false-alarm rate on the same C0 controls is at most the engine's (1 per 1,000 rounds where the engine has "
        "none), with the engine's raise rule (the condition held for `sustain_rounds` audited rounds in a row). "
        "Per-metric baselines (fixed threshold on the raw value, one-round delta) watch the metrics the engine "
        "watches; the metric-level comparison uses each metric's own engine rate, the loop-level one the best "
        "single metric chosen **out of sample**: seeds are split in two folds by position and each fold is scored "
        "with the metric that ranked best on the other fold's collapse runs. Evidently's drift share and the MMD "
        "permutation test (`-log10 p`) are computed on the raw rounds in the same pass.",
        "- **Ranking lead**: the median lead time over the runs that reached onset with a miss counted as -inf; "
        "the engine *beats* a baseline when its ranking lead is larger (on a tie: a larger P(alarm before onset)).",
        "- **Evidently's drift share** runs Evidently's own default per-column test (`get_stattest`, as its "
        "`ValueDrift` does) on the columns `monitor/publishing/evidently_report.py` builds (text, and the text "
        "views of the agent loop's action sequences, the JSON loop's lines, the log loop's lines and the reasoning "
        "loop's rationales: descriptors "
        "and pooled principal components of the embeddings; tabular: the columns; embedding loops, and the graph "
        "and image-text loops, which the daemon sends to no report: the pooled principal components of their "
        "embeddings, i.e. descriptor histograms and joint image-caption vectors), without rendering the report; "
        "the settings table gives its check against full reports.",
        "",
    ]
    lines += ["## Headline", ""]
    lines += headline_table(result.headline)
    lines.append("")
    lines += ["## Targets", ""]
    lines += _target_lines(result)
    lines.append("")
    for fam_id, fam in result.families.items():
        e = fam["engine"]
        lines += [f"## `{fam_id}`", ""]
        params = ", ".join(f"{k}={v}" for k, v in fam["params"].items())
        lines.append(f"{fam['modality']} loop ({params}). Onset generation per seed: "
                     + ", ".join(f"{seed}: {fmt(o)}" if o is not None else f"{seed}: beyond the run"
                                 for seed, o in zip(fam["seeds"], fam["onsets"])) + ".")
        lines.append("")
        first = {}
        for ms in e["first_metrics"]:
            for m in ms:
                first[m] = first.get(m, 0) + 1
        if first:
            lines.append("Metrics raised at the engine's first alarm on the collapse runs (runs): "
                         + ", ".join(f"`{m}` ({n})" for m, n in sorted(first.items(), key=lambda kv: (-kv[1], kv[0])))
                         + ".")
        by = e["false_alarms_by_control"]
        lines.append("Engine collapse alarms per control (per 1,000 rounds at risk, alarms/rounds): "
                     + ", ".join(f"{c} {_fa(v)}" for c, v in by.items())
                     + ". C0 audits fresh draws of generation 0 (every alarm false); C1 and C2 refit on real plus "
                       "synthetic data and drift in truth; D0 drifts by design (collapse alarms there are wrong, "
                       "drift alarms right).")
        fa_metrics = result.targets["per_family"][fam_id]["blind_spots"]["false_alarm_metrics"]
        if fa_metrics:
            lines.append("False alarms on the controls, first raised by (runs): "
                         + ", ".join(f"`{m}` ({n})" for m, n in fa_metrics.items()) + ".")
        lines.append("")
        lines.append(f"Detectors at an equal false-alarm rate (target {fmt(fam['equal_rate_per_1000'])} per 1,000 "
                     "control rounds):")
        lines.append("")
        lines += _table(["detector", "setting", "FA per 1000 (F/T)", "lead time, median [IQR]",
                         "P(alarm before onset)", "ranking lead", "ROC-AUC", "engine vs it"], _baseline_rows(fam))
        lines.append("")
        if fam_id in plots:
            lines += [f"![{fam_id}]({plots[fam_id]})", ""]
        lines.append("Per metric (engine: the metric's own alarm; baselines at the metric's engine false-alarm rate):")
        lines.append("")
        lines += _table(["metric", "family", "alerting", "engine lead, median [IQR]", "P(before onset)",
                         "FA per 1000 (F/T)", "risk ROC-AUC", "fixed threshold: lead; P; FA",
                         "one-round delta: lead; P; FA"], _metric_rows(fam))
        lines.append("")
    lines += ["## Timing", ""]
    rows = []
    for modality, d in timings["per_modality"].items():
        rows.append([modality, fmt(d["rounds"]), fmt(d["seconds_per_round"]),
                     fmt(d["metrics"] / d["rounds"]), fmt(d["evidently"] / d["rounds"]), fmt(d["mmd"] / d["rounds"]),
                     fmt(d["engine"]), fmt(d["generate"])])
    lines += _table(["modality", "rounds", "s per round (all)", "metrics", "Evidently", "MMD test",
                     "engine (s, total)", "generation (s, total)"], rows)
    lines.append("")
    lines.append("Median generation time of one collapse run at these sizes (s): "
                 + ", ".join(f"`{k}` {fmt(v)}" for k, v in timings["generate_seconds_median"].items()) + ".")
    failures = [f for r in result.runs for f in r.failures]
    if failures:
        lines.append("")
        lines.append(f"{len(failures)} suite group(s) could not be computed on a round and were dropped from it "
                     f"(the daemon would not store them either), e.g. {failures[0]}")
    lines.append("")
    return "\n".join(lines)


def _key_metrics(run: RunResult, fam: dict, count: int = 4) -> list[str]:
    """The metrics raised at the run's first alarm, then the enabled metrics with the best risk ROC-AUC."""
    chosen = [m for m in run.engine.first_metrics][:2]
    ranked = sorted((m for m, d in fam["metrics"].items() if d["engine"]["enabled"]),
                    key=lambda m: (-(fam["metrics"][m]["engine"]["roc_auc"] or 0.0), m))
    for m in ranked:
        if len(chosen) >= count:
            break
        if m not in chosen:
            chosen.append(m)
    return chosen


def plot_family(fam: dict, runs: list[RunResult], path: Path) -> Path:
    """One PNG for a loop: key metrics of one seed's collapse run, its loop risk, and the raw-data baselines.

    The seed is the first whose run reached onset (else the first). Each panel
    marks the onset generation (red dashed) and the engine's first alarm
    (orange solid); metric panels show the 95% interval as a band and the
    metric's own first raise as a triangle.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metrics_core.registry import get_spec

    collapse = sorted((r for r in runs if r.kind == "collapse"), key=lambda r: r.seed)
    run = next((r for r in collapse if r.onset is not None), collapse[0])
    alarm_idx = np.flatnonzero(run.engine.alarms)
    alarm_gen = int(run.generations[alarm_idx[0]]) if alarm_idx.size else None
    metrics = _key_metrics(run, fam)
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), squeeze=False)
    gens = run.generations

    def marks(ax):
        if run.onset is not None:
            ax.axvline(run.onset, color="tab:red", ls="--", lw=1.2, label="onset")
        if alarm_gen is not None:
            ax.axvline(alarm_gen, color="tab:orange", lw=1.5, label="engine alarm")

    for ax, m in zip(axes.flat, metrics):
        t = run.trajectory[run.trajectory["metric"] == m].sort_values("round")
        ax.plot(t["round"], t["value"], marker=".", color="tab:blue", lw=1.2)
        band = t.dropna(subset=["ci_low", "ci_high"])
        if not band.empty:
            ax.fill_between(band["round"], band["ci_low"], band["ci_high"], color="tab:blue", alpha=0.2, lw=0)
        raised = np.flatnonzero(run.engine.metric_alarms.get(m, np.zeros(len(gens), bool)))
        if raised.size:
            g = int(gens[raised[0]])
            v = t.set_index("round")["value"].get(g)
            if v is not None:
                ax.plot([g], [v], marker="^", color="tab:orange", ms=9, ls="none", label=f"{m} raised")
        marks(ax)
        better = "higher" if get_spec(m).higher_is_better else "lower"
        ax.set_title(f"{m} ({better} is better)", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(metrics):4]:
        ax.set_visible(False)
    ax = axes.flat[4]
    ax.plot(gens, run.engine.risk, color="tab:purple", marker=".", lw=1.2)
    ax.set_ylim(-0.02, 1.02)
    marks(ax)
    ax.set_title("engine: loop collapse risk", fontsize=9)
    ax.tick_params(labelsize=7)
    ax = axes.flat[5]
    ax.plot(gens, run.drift_share, color="tab:green", marker=".", lw=1.2, label="Evidently drift share")
    ax.plot(gens, -np.log10(run.mmd_pvalue) / max(1e-12, float(np.max(-np.log10(run.mmd_pvalue)) or 1.0)),
            color="tab:gray", marker=".", lw=1.0, label="MMD test -log10 p (scaled to max 1)")
    marks(ax)
    ax.set_title("raw-data baselines", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.tick_params(labelsize=7)
    from matplotlib.ticker import MaxNLocator

    for ax in axes.flat:
        ax.set_xlabel("generation", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes.flat[4].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=len(handles), fontsize=8)
    fig.suptitle(f"{fam['family']}: seed {run.seed}" + (f", onset at generation {run.onset}" if run.onset is not None
                                                        else ", onset beyond the run")
                 + (f", engine alarm at generation {alarm_gen}" if alarm_gen is not None else ", no engine alarm"))
    fig.tight_layout(rect=(0, 0.04, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def run_records(runs: list[RunResult]) -> list[dict]:
    """Per run: what the tables are computed from (alarm generations, risk, drift share, MMD p-values)."""
    from monitor.meta_evaluation import scoring

    records = []
    for r in runs:
        records.append({
            "run": r.run_id, "family": r.family, "kind": r.kind, "seed": r.seed,
            "generations": r.generations, "onset": r.onset,
            "engine_alarm_generation": scoring.alarm_generation(r.engine.alarms, r.generations),
            "engine_first_metrics": r.engine.first_metrics,
            "metric_alarm_generations": {m: scoring.alarm_generation(a, r.generations)
                                         for m, a in sorted(r.engine.metric_alarms.items())},
            "engine_risk": np.round(r.engine.risk, 6),
            "evidently_drift_share": np.round(r.drift_share, 6),
            "mmd_pvalue": np.round(r.mmd_pvalue, 6),
            "suite_failures": r.failures,
            "seconds": {k: round(v, 3) for k, v in r.seconds.items()},
        })
    return records


def write_report(result: BenchResult, out: str | Path, command: str | None = None) -> dict[str, Path]:
    """Write the Markdown report, one PNG per loop and ``results.json`` (plots and JSON in ``<stem>/``).

    Args:
        result: the meta-evaluation's result.
        out: the Markdown path, e.g. ``docs/meta-evaluation.md``.
        command: the command line that regenerates it (default: one built from the settings).

    Returns:
        ``{"markdown": path, "results": path, "plots": folder}``.
    """
    out = Path(out)
    folder = out.with_suffix("") if out.suffix else out.parent / (out.name + "_files")
    folder.mkdir(parents=True, exist_ok=True)
    plots = {}
    for fam_id, fam in result.families.items():
        png = plot_family(fam, [r for r in result.runs if r.family == fam_id], folder / f"{fam_id}.png")
        plots[fam_id] = f"{folder.name}/{png.name}"
    results_path = folder / "results.json"
    payload = {**result.summary(), "date": result.date, "runs": run_records(result.runs)}
    results_path.write_text(json.dumps(jsonable(payload), separators=(",", ":"), allow_nan=False))
    out.write_text(render_markdown(result, plots, f"{folder.name}/results.json", folder.name, command))
    return {"markdown": out, "results": results_path, "plots": folder}

