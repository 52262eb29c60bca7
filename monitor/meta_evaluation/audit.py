r"""One run audited as the daemon audits a round (:class:`monitor.modalities.pipeline.AuditPipeline`), and the engine on it.

Part of the meta-evaluation runner (:mod:`monitor.meta_evaluation.runner`, whose docstring defines the
terms).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.meta_evaluation import baselines, loop_agent, scoring
from monitor.meta_evaluation import loop_graphs, loop_image_text, loop_json_records, loop_logs, loop_reasoning
from monitor.meta_evaluation import loops as numeric_loops
from monitor.meta_evaluation import ngram_truth
from monitor.meta_evaluation.trace import LoopTrace
from monitor.modalities import MODALITY
from monitor.modalities.pipeline import AuditPipeline
from monitor.meta_evaluation.settings import BenchSettings, DRIFT_SHARE, family_of
from monitor.meta_evaluation.evidently_share import (
    evidently_columns, evidently_drift_share, evidently_full_report_share,
)


@dataclass
class RunAudit:
    """Everything measured on one run before the engine looks at it."""

    trace: LoopTrace
    trajectory: pd.DataFrame  # loop, round (= generation), metric, value, ci_low, ci_high, std_error
    drift_share: np.ndarray  # [R] Evidently drift share (fast path)
    mmd_pvalue: np.ndarray  # [R] MMD permutation p-value
    evidently_check: list[dict]  # [{"generation", "fast", "full"}]
    seconds: dict[str, float]
    failures: list[str] = field(default_factory=list)  # suite groups that could not be computed on a round


def _finite(x) -> float | None:
    return None if x is None or not np.isfinite(float(x)) else float(x)


DATA = Path(__file__).resolve().parents[1] / "data"
JSON_SCHEMA = DATA / "json_schema.json"  # L7-json's SCHEMA as shipped (scripts/make_json_example.py writes it)
GRAPH_CONSTRAINTS = DATA / "graph_constraints.toml"  # the shipped graph rules (size, degree, connectedness)


def pipeline_input(modality: str, data, where: str, *, role: str = "round"):
    """A reference, round or pool as :class:`~monitor.modalities.pipeline.AuditPipeline` takes it.

    What :meth:`monitor.modalities.MODALITY[modality].load <monitor.modalities.Modality.load>` would give for a
    file of the same items, checked as the daemon's loader checks a file's lines (``where`` names them in
    errors):

    * agent (lists of episode dicts, :mod:`monitor.meta_evaluation.loop_agent`):
      :class:`monitor.inputs.LoadedEpisodes` by :func:`monitor.inputs.episodes.episodes_from_objects`;
    * json (lists of ``.jsonl`` line strings, :mod:`monitor.meta_evaluation.loop_json_records`):
      :func:`monitor.inputs.json_records.json_records_from_strings`, strict (every line a JSON object) for
      ``role="reference"`` only, as the loader is; a round keeps its malformed lines;
    * graph (lists of edge-list objects, :mod:`monitor.meta_evaluation.loop_graphs`):
      :func:`monitor.inputs.graphs.graphs_from_objects`;
    * log (lists of line strings, :mod:`monitor.meta_evaluation.loop_logs`):
      :func:`monitor.inputs.logs.log_lines_from_strings` with the loop's line format,
      :data:`monitor.inputs.logs.EXAMPLE_PATTERN` (what ``--log-pattern`` gives the daemon: severity and
      component per line);
    * image_text: the loop's rounds are :class:`monitor.inputs.pairs.LoadedPairs` already, as they are;
    * reasoning (lists of record dicts, :mod:`monitor.meta_evaluation.loop_reasoning`):
      :class:`monitor.inputs.LoadedRecords` by :func:`records_from_objects`, ``gold`` for ``role="reference"``
      only, as :meth:`monitor.modalities.MODALITY["reasoning"].load <monitor.modalities.Modality.load>` reads a
      reference (and a pool: a pool's questions take their gold answers from the reference);
    * every other modality's data are the pipeline's input as they are.

    Args:
        modality: a round modality.
        data: the items.
        where: names them in errors.
        role: ``"reference"``, ``"round"`` or ``"pool"`` (JSON: a strict reference; reasoning: a reference holds
            the gold answers).

    >>> pipeline_input("embedding", [[0.0]], "x"), len(pipeline_input("agent", [{"steps": [{"action": "wait"}]}], "x"))
    ([[0.0]], 1)
    >>> pipeline_input("json", ['{"a": 1}', '{"a":'], "x").records, pipeline_input("log", ["INFO db: up"], "x").severity
    (({'a': 1}, None), ('INFO',))
    """
    if modality == "agent":
        from monitor.inputs.episodes import episodes_from_objects

        return episodes_from_objects(list(data), where)
    if modality == "json":
        from monitor.inputs.json_records import json_records_from_strings

        return json_records_from_strings(list(data), where, strict=role == "reference")
    if modality == "graph":
        from monitor.inputs.graphs import graphs_from_objects

        return graphs_from_objects(list(data), where)
    if modality == "log":
        from monitor.inputs.logs import EXAMPLE_PATTERN, log_lines_from_strings

        return log_lines_from_strings(list(data), where, pattern=EXAMPLE_PATTERN)
    if modality == "reasoning":
        return records_from_objects(list(data), where, gold=role == "reference")
    if modality == "image_text":
        from monitor.inputs.pairs import LoadedPairs

        if not isinstance(data, LoadedPairs):
            raise ValueError(f"{where}: expected LoadedPairs (an image-text round), got {type(data).__name__}")
    return data


def records_from_objects(objects: list, where: str, *, gold: bool = False, path: str | Path = "<memory>"):
    r"""Reasoning records (dicts) as :func:`monitor.inputs.load_records` reads them from their ``.jsonl`` file.

    The file is :func:`~monitor.meta_evaluation.loop_reasoning.records_jsonl` of ``objects``; each of its lines is
    parsed and checked by the loader's own line reader with the default field names and no passed field (what
    the daemon's reasoning options give), ``where`` standing for the file and role in errors, an object's position
    (1-based) for its line. The fingerprint is the sha256 of that text, as the loader's is of the file's bytes.
    ``gold``: read as a reference (each question's answer; two different normalised answers for one question are
    refused, naming both lines). Nothing is written to disk.

    >>> r = records_from_objects([{"question_id": "q1", "answer": "4", "rationale": "2+2"}], "x", gold=True)
    >>> r.question_ids, r.answers, r.gold, r.n_units
    (('q1',), ('4',), {'q1': '4'}, 1)
    """
    import hashlib

    from metrics_core.reasoning import normalize_answer
    from monitor.errors import InputError
    from monitor.inputs.records import (
        DEFAULT_ANSWER_FIELD, DEFAULT_QUESTION_FIELD, DEFAULT_RATIONALE_FIELD, LoadedRecords, _record,
    )

    fields = (DEFAULT_QUESTION_FIELD, DEFAULT_ANSWER_FIELD, DEFAULT_RATIONALE_FIELD, None)
    try:
        text = loop_reasoning.records_jsonl(objects)
    except (TypeError, ValueError) as exc:  # not JSON-serialisable (a set, NaN): no file could hold it
        raise InputError(f"{where}: not valid JSON: {exc}") from None
    records, golds = [], {}  # golds: question -> (answer, its normalised form, line), as the loader keeps them
    for number, line in enumerate(text.split(b"\n")[:-1], start=1):  # split on \n only, as the file's lines
        record = _record(line.decode("utf-8"), number, where, fields)
        records.append(record)
        if gold:
            qid, answer = record[0], record[1]
            normalized = normalize_answer(answer)
            if qid not in golds:
                golds[qid] = (answer, normalized, number)
            elif golds[qid][1] != normalized:
                first, _, first_number = golds[qid]
                raise InputError(f"{where}: line {number}: question {qid!r}: gold answer {answer!r} differs from "
                                 f"{first!r} on line {first_number}; a reference holds one answer per question")
    if not records:
        raise InputError(f"{where}: empty: no records")
    return LoadedRecords(
        path=Path(path), question_ids=tuple(r[0] for r in records), answers=tuple(r[1] for r in records),
        rationales=tuple(r[2] for r in records), passed=None, n_total=len(records),
        fingerprint=hashlib.sha256(text).hexdigest(),
        gold={q: a for q, (a, _, _) in golds.items()} if gold else None)


def pipeline_options(modality: str) -> dict:
    """The option files a user of the family's modality gives the daemon, as :class:`AuditPipeline` keywords.

    JSON rounds are checked against the loop's schema (``--schema``: ``schema_correctness_rate``), graph rounds
    against the shipped rules (``--constraints``: ``valid_rule_rate``); the other modalities take none.

    >>> sorted(pipeline_options("json")), pipeline_options("text")
    (['schema_path'], {})
    """
    if modality == "json":
        return {"schema_path": str(JSON_SCHEMA)}
    if modality == "graph":
        return {"constraints_path": str(GRAPH_CONSTRAINTS)}
    return {}


def audit_round(pipeline: AuditPipeline, round_data, where: str):
    """:meth:`AuditPipeline.audit` of one round, with failed suite groups skipped and listed."""
    return pipeline.audit(round_data, round_where=where, skip_failed_groups=True)


def audit_trace(trace: LoopTrace, settings: BenchSettings, *, check_evidently: Sequence[int] = ()) -> RunAudit:
    """Audit every round of a trace as the daemon would, plus the two raw-data baselines.

    Args:
        trace: the run.
        settings: sizes (``n_boot``, ``k``, ``n_permutations``).
        check_evidently: round indices whose fast drift share is compared with a full Evidently report.
    """
    seconds = {"metrics": 0.0, "evidently": 0.0, "mmd": 0.0, "evidently_check": 0.0}
    reference = pipeline_input(trace.modality, trace.reference, f"{trace.name} reference", role="reference")
    pipeline = AuditPipeline(trace.modality, reference, k=settings.k, n_boot=settings.n_boot, seed=trace.seed,
                             **pipeline_options(trace.modality))
    rows, shares, pvalues, checks, failures = [], [], [], [], []
    mmd_seeds = np.random.SeedSequence(trace.seed).spawn(len(trace.rounds))  # one permutation stream per round
    for i, (generation, round_data) in enumerate(zip(trace.generations, trace.rounds)):
        t0 = time.perf_counter()
        where = f"{trace.name} generation {generation}"
        round_data = pipeline_input(trace.modality, round_data, where)
        audit = audit_round(pipeline, round_data, where)
        metrics, round_embeddings = audit.metrics, audit.embeddings
        failures.extend(audit.failures)
        ref_frame, cur_frame, numeric, categorical = evidently_columns(
            trace.modality, reference, round_data, pipeline.reference_embeddings, round_embeddings,
            pipeline.tabular_columns)
        t1 = time.perf_counter()
        share = evidently_drift_share(ref_frame, cur_frame, numeric, categorical)
        t2 = time.perf_counter()
        p = baselines.mmd_permutation_pvalue(pipeline.reference_embeddings, round_embeddings,
                                             n_permutations=settings.n_permutations,
                                             seed=int(mmd_seeds[i].generate_state(1)[0]))
        t3 = time.perf_counter()
        if i in check_evidently:
            checks.append({"run": trace.name, "seed": trace.seed, "generation": int(generation), "fast": share,
                           "full": evidently_full_report_share(ref_frame, cur_frame, numeric, categorical)})
        seconds["metrics"] += t1 - t0
        seconds["evidently"] += t2 - t1
        seconds["mmd"] += t3 - t2
        seconds["evidently_check"] += time.perf_counter() - t3
        if MODALITY[trace.modality].drift_view in ("text", "table"):  # as published: text and table reports only
            from metrics_core.bootstrap import Estimate

            metrics[DRIFT_SHARE] = Estimate(share)
        for name, est in metrics.items():
            value = _finite(est.value)
            if value is None:
                continue  # the daemon does not store a metric undefined this round
            rows.append((trace.name, int(generation), name, value, _finite(est.ci_low), _finite(est.ci_high),
                         _finite(est.std_error)))
        shares.append(share)
        pvalues.append(p)
    trajectory = pd.DataFrame(rows, columns=["loop", "round", "metric", "value", "ci_low", "ci_high", "std_error"])
    return RunAudit(trace, trajectory, np.asarray(shares, dtype=np.float64), np.asarray(pvalues, dtype=np.float64),
                    checks, seconds, failures)

@dataclass
class EngineRun:
    """The engine's verdicts on one run, aligned with the run's generations.

    Attributes:
        alarms: ``[R]`` the collapse signal raised (with a null), else some metric raised.
        metric_alarms: metric -> ``[R]`` its own chart over its threshold (with a null), else its state raised.
        risk: ``[R]`` the collapse chart's evidence over its threshold (with a null), else the loop's risk.
        metric_risk: metric -> ``[R]`` the same per metric (0 where it was not audited).
        first_metrics: the metrics named at the loop's first alarm.
        drift_alarms: ``[R]`` the drift signal raised (with a null; else the derivative rules' drift metrics).
    """

    alarms: np.ndarray
    metric_alarms: dict[str, np.ndarray]
    risk: np.ndarray
    metric_risk: dict[str, np.ndarray]
    first_metrics: list[str]
    drift_alarms: np.ndarray | None = None


def evaluate_run(trajectory: pd.DataFrame, generations: np.ndarray, rules, null=None) -> EngineRun:
    """Run :func:`monitor.engine.alerts.evaluate_loop` on a run's trajectory and align its verdicts by generation.

    Args:
        trajectory: the run's rows (round = generation).
        generations: ``[R]`` the run's audited generations.
        rules: the resolved :class:`~monitor.engine.rules.RuleSet`.
        null: the run's :class:`~monitor.engine.null.LoopNull`: the sequential alarm; None: the derivative rules.
    """
    from metrics_core.registry import round_modality
    from monitor.engine.alerts import OK, evaluate_loop, metric_risk

    gens = np.asarray(generations, dtype=np.int64)
    position = {int(g): i for i, g in enumerate(gens)}
    rules = rules.for_round(round_modality(trajectory["metric"].unique()))
    ev = evaluate_loop(trajectory, rules, null=null)

    def aligned(rounds, values, fill):
        out = np.full(len(gens), fill, dtype=np.asarray(values).dtype if len(values) else float)
        out[[position[int(r)] for r in rounds]] = values
        return out

    metric_alarms, metric_risks = {}, {}
    if ev.sequential is not None:
        seq = ev.sequential
        for m in (m for ms in seq.signal_metrics.values() for m in ms):
            chart = f"metric:{m}"
            metric_alarms[m] = aligned(seq.rounds, seq.charts[chart] >= seq.thresholds[chart], False)
            metric_risks[m] = aligned(seq.rounds, seq.evidence(chart), 0.0)
        alarms = aligned(seq.rounds, seq.alarms("collapse"), False)
        drift = aligned(seq.rounds, seq.alarms("drift"), False)
        risk = aligned(seq.rounds, seq.evidence("signal:collapse"), 0.0) if "signal:collapse" in seq.charts \
            else np.zeros(len(gens))
        first = scoring.first_alarm(alarms)
        first_metrics = [] if first is None else seq.named_metrics("collapse", int(np.flatnonzero(
            seq.rounds == gens[first])[0]))
        return EngineRun(alarms, metric_alarms, risk, metric_risks, first_metrics, drift)
    for name, m in ev.metrics.items():
        metric_alarms[name] = aligned(m.rounds, np.array([s != OK for s in m.severities], dtype=bool), False)
        metric_risks[name] = aligned(m.rounds, metric_risk(m.derivatives, m.rule), 0.0)
    collapse = [a for m, a in metric_alarms.items() if rules.signal_of(m) == "collapse"]
    drift_metrics = [a for m, a in metric_alarms.items() if rules.signal_of(m) == "drift"]
    alarms = np.any(np.stack(collapse), axis=0) if collapse else np.zeros(len(gens), bool)
    drift = np.any(np.stack(drift_metrics), axis=0) if drift_metrics else np.zeros(len(gens), bool)
    risk = np.zeros(len(gens))
    if not ev.risk.empty:
        risk[[position[int(r)] for r in ev.risk["round"]]] = ev.risk["risk"].to_numpy(dtype=np.float64)
    first = scoring.first_alarm(alarms)
    first_metrics = [] if first is None else sorted(m for m, a in metric_alarms.items() if a[first]
                                                    and rules.signal_of(m) == "collapse")
    return EngineRun(alarms, metric_alarms, risk, metric_risks, first_metrics, drift)


def truth_crossing(trace: LoopTrace) -> int | None:
    """First generation whose true parameters cross the family's onset rule (a collapse loop: its onset).

    The controls C1 (accumulate) and C2 (fresh real data) feed data back and
    their true parameters drift; an alarm before their real crossing is a
    small-drift alarm, not a false one. None where the rule's quantities are
    not in the trace (C0, D0) or never cross.
    """
    if trace.kind == "collapse":
        return trace.onset
    truth, family = trace.truth, family_of(trace.name)
    if family.startswith("L1-") and "trace_cov" in truth:
        hit = truth["trace_cov"] < 0.5 * truth["trace_cov"][0]
    elif family.startswith("L2-") and "min_weight" in truth:
        hit = truth["min_weight"] < 1.0 / (10 * int(trace.params.get("K", 10)))
    elif family == "L3-tau1.0" and "observed_support" in truth:
        hit = truth["observed_support"] < 0.5 * truth["observed_support"][0]
    elif family.startswith("L3-") and "effective_exponent" in truth:
        hit = truth["effective_exponent"] >= float(trace.params["beta"]) + 0.5
    elif family.startswith("L5-") and "sd_ratio" in truth:
        hit = truth["sd_ratio"] < 0.5
    elif family == "L4-text" and "distinct_bigrams" in truth:
        return ngram_truth.collapse_onset(truth["distinct_bigrams"])
    elif family == "L6-agent" and "action_entropy" in truth:
        hit = truth["action_entropy"] < loop_agent.ONSET_FRACTION * truth["action_entropy"][0]
    elif family == "L7-json" and "mean_field_entropy" in truth:
        hit = truth["mean_field_entropy"] < loop_json_records.ONSET_FRACTION * truth["mean_field_entropy"][0]
    elif family == "L8-graph" and "families" in truth:
        hit = truth["families"] <= loop_graphs.ONSET_FRACTION * truth["families"][0]
    elif family == "L9-log" and "template_entropy" in truth:
        hit = truth["template_entropy"] < loop_logs.ONSET_FRACTION * truth["template_entropy"][0]
    elif family == "L10-image-text" and "named_correctly" in truth:
        hit = truth["named_correctly"] < loop_image_text.ONSET_FRACTION * truth["named_correctly"][0]
    elif family == "L11-reasoning" and "strategy_entropy" in truth:
        hit = truth["strategy_entropy"] < loop_reasoning.ONSET_FRACTION * truth["strategy_entropy"][0]
    else:
        return None
    return numeric_loops.first_generation(np.asarray(hit))


def oracle_alarms_of(trace: LoopTrace, settings: BenchSettings) -> np.ndarray:
    """``[R]`` the oracle's alarm states (:mod:`monitor.meta_evaluation.oracle`) at the benchmark's ARL0."""
    from monitor.meta_evaluation import oracle

    return oracle.oracle_alarms(oracle.oracle_log_evalues(trace), arl0=settings.arl0)


def collapse_oracle_alarms_of(trace: LoopTrace, settings: BenchSettings) -> np.ndarray | None:
    """``[R]`` the collapse oracle's alarm states (spread loss only, Gaussian loops), or None elsewhere."""
    from monitor.meta_evaluation import oracle

    log_e = oracle.spread_log_evalues(trace)
    return None if log_e is None else oracle.oracle_alarms(log_e, arl0=settings.arl0)
