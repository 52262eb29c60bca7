"""``collapse-monitor`` command line: parsing only; each verb lives in monitor/cli/."""

from __future__ import annotations

from flows.prefect_api import (  # noqa: F401
    API_FILE,
    advertise_api,
    prepare_flows,
    quiet_prefect,
    running_api,
    tie_temporary_api,
    withdraw_api,
)
import argparse
import sys

from monitor import __version__
from monitor.audit_defaults import AUDIT_DEFAULTS as AUDIT
from monitor.audit_defaults import MIN_NULL_ROUNDS
from monitor.config import DEFAULT_PORT
from monitor.errors import CollapseMonitorError, disk_full_message


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a positive integer, got 0")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


HOME_HELP = "state directory (default: $COLLAPSE_MONITOR_HOME or ./.collapse-monitor)"
RULES_HELP = ("alert rules TOML overlaid on the defaults "
              "(default: $COLLAPSE_MONITOR_RULES, else rules.toml in the state directory if present)")


def _flag_parents() -> dict[str, argparse.ArgumentParser]:
    """Parent parsers for the flags several verbs share, declared once."""
    def parent() -> argparse.ArgumentParser:
        return argparse.ArgumentParser(add_help=False)

    state = parent()  # also accepted after the verb; SUPPRESS keeps a value given before it
    state.add_argument("--home", default=argparse.SUPPRESS, help=HOME_HELP)
    state.add_argument("--rules", default=argparse.SUPPRESS, help=RULES_HELP)
    as_json = parent()
    as_json.add_argument("--json", action="store_true", help="print exactly one JSON object")
    sampling = parent()
    sampling.add_argument("--k", type=_positive_int, default=AUDIT["k"], help=f"k-NN neighbourhood size (default {AUDIT['k']})")
    sampling.add_argument("--seed", type=_non_negative_int, default=AUDIT["seed"],
                          help=f"bootstrap and subsampling seed (default {AUDIT['seed']})")
    sampling.add_argument("--max-samples", type=_positive_int, default=AUDIT["max_samples"],
                          help=f"subsample each set to at most this many rows (default {AUDIT['max_samples']})")
    null = parent()
    null.add_argument("--null-rounds", type=_positive_int, default=AUDIT["null_rounds"],
                      help=f"pseudo-rounds in the loop's null (default {AUDIT['null_rounds']}, at least {MIN_NULL_ROUNDS})")
    runner = parent()
    runner.add_argument("--task-runner", choices=("threads", "dask"), default="threads",
                        help="where each audit's tasks run (default threads)")
    runner.add_argument("--dask-address", metavar="URL",
                        help="Dask scheduler for --task-runner dask, e.g. tcp://10.0.0.5:8786 (default: a local cluster)")
    runner.add_argument("--push-gateway", metavar="URL",
                        help="push each audited loop's series to this Prometheus Pushgateway "
                             "(default: $COLLAPSE_MONITOR_PUSHGATEWAY)")
    return {"state": state, "json": as_json, "sampling": sampling, "null": null, "runner": runner}


# Static dispatch, as pipx's set_defaults(func=...): each verb's module is imported only when it runs, so
# --help and the verbs that do not compute never import torch, Prefect or MLflow.


def _run_audit(args) -> int:
    from monitor.cli import audit

    return audit.run(args)


def _run_status(args) -> int:
    from monitor.cli import status

    return status.run(args)


def _run_evaluate(args) -> int:
    from monitor.cli import evaluate

    return evaluate.run(args)


def _run_calibrate(args) -> int:
    from monitor.cli import calibrate

    return calibrate.run(args)


def _run_backfill(args) -> int:
    from monitor.cli import backfill

    return backfill.run(args)


def _run_report(args) -> int:
    from monitor.cli import report

    return report.run(args)


def _run_serve(args) -> int:
    from monitor.cli import serve

    return serve.run(args)


def _run_meta_evaluate(args) -> int:
    from monitor.cli import meta_evaluate

    return meta_evaluate.run(args)


def _run_demo(args) -> int:
    from monitor.cli import demo

    return demo.run(args)


_VERBS = {
    "audit": _run_audit,
    "status": _run_status,
    "evaluate": _run_evaluate,
    "calibrate": _run_calibrate,
    "backfill": _run_backfill,
    "report": _run_report,
    "serve": _run_serve,
    "meta-evaluate": _run_meta_evaluate,
    "demo": _run_demo,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="collapse-monitor",
        description="Longitudinal model-collapse monitoring for self-training loops.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--home", help=HOME_HELP)
    parser.add_argument("--rules", help=RULES_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    flags = _flag_parents()

    def verb(name: str, help: str, *shared: str, aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help, parents=[flags["state"], *(flags[s] for s in shared)],
                                aliases=list(aliases))
        parser.set_defaults(func=_VERBS[name])  # an alias runs the verb's own function
        return parser

    audit = verb("audit", "audit one generation round against the reference", "json", "sampling", "null", "runner")
    audit.add_argument("loop", help="name of the self-training loop")
    audit.add_argument("round", type=int, help="round (generation) number, >= 0")
    audit.add_argument("data", help="the round's file: .npy embeddings [M, D], text (.jsonl, .txt, .csv, .parquet), "
                       "a table (.csv, .parquet), records, episodes or graphs (.jsonl), log lines (.log) or "
                       "image-text pairs (.npz)")
    audit.add_argument("--reference", required=True, help="the reference file, same modality as the round")
    audit.add_argument("--modality", choices=("embedding", "text", "tabular", "reasoning", "agent", "json", "graph",
                                              "log", "image_text"),
                       help="input modality (default: detected from the round file: .log -> log, .npz -> image_text, "
                            "a .jsonl file by its first record: text field -> text, steps -> agent, question id and "
                            "answer -> reasoning, edges or links -> graph, image and caption -> image_text; json "
                            "records only when named)")
    audit.add_argument("--text-field", default=AUDIT["text_field"],
                       help=f"JSONL field or CSV/Parquet column holding the text (default {AUDIT['text_field']!r})")
    audit.add_argument("--featurizer", default=AUDIT["featurizer"],
                       help="text embeddings: 'hashing' (default, model-free) or "
                            "'sentence-transformers:<local model path or installed package>'")
    audit.add_argument("--protected-attribute", help="tabular: the column whose group shares CovGap compares")
    audit.add_argument("--constraints", help="tabular: TOML file of [[constraints]] for the violation rate; graph: "
                                             "TOML file with a [graph] table of rules (connected, acyclic, "
                                             "max_degree, min/max_nodes, min/max_edges)")
    audit.add_argument("--schema", help="tabular: TOML file with a [columns] table overriding inferred kinds "
                       "(column = \"numeric\" or \"categorical\"); json: a JSON Schema file")
    audit.add_argument("--question-field", default=AUDIT["question_field"],
                       help=f"reasoning: JSONL field holding the question id (default {AUDIT['question_field']!r})")
    audit.add_argument("--answer-field", default=AUDIT["answer_field"],
                       help=f"reasoning: JSONL field holding the final answer (default {AUDIT['answer_field']!r})")
    audit.add_argument("--rationale-field", default=AUDIT["rationale_field"],
                       help=f"reasoning: JSONL field holding the rationale, optional per record "
                            f"(default {AUDIT['rationale_field']!r})")
    audit.add_argument("--passed-field", default=AUDIT["passed_field"],
                       help="reasoning: JSONL field holding your own test harness's verdict (true/false) per "
                            "record; pass rates then use it (default: none, answers are checked against the reference)")
    audit.add_argument("--code-language", choices=("python", "javascript"), default=AUDIT["code_language"],
                       help="reasoning: the answers are programs in this language; their syntax is parsed (never "
                            "run) for syntax_valid_rate (default: none)")
    audit.add_argument("--verifier", metavar="MODULE:FUNCTION", default=AUDIT["verifier"],
                       help="reasoning: your function verify(answer, gold, question_id) -> bool, run on every record "
                            "in a separate process with resource limits and a timeout; it usually executes generated "
                            "code, so it is off unless named (README: Reasoning and code rounds)")
    audit.add_argument("--verifier-timeout", type=_positive_float, default=AUDIT["verifier_timeout"],
                       metavar="SECONDS", help=f"reasoning: wall-clock limit per record for --verifier "
                                           f"(default {AUDIT['verifier_timeout']:g}); a record over it fails")
    audit.add_argument("--match-key", metavar="PATH", default=AUDIT["match_key"],
                       help="json: the key field (dotted path) aligning each round record with the reference record "
                            "of the same key, for mean_match_percentage (default: none)")
    audit.add_argument("--log-pattern", metavar="REGEX", default=AUDIT["log_pattern"],
                       help="log: a regular expression with named groups severity and/or component, e.g. "
                            "'^(?P<severity>[A-Z]+) (?P<component>\\w+):' (default: none)")
    audit.add_argument("--encoder", metavar="MODULE:FUNCTION", default=AUDIT["encoder"],
                       help="image_text: your encoder f(image_paths, captions) -> (image [N, D], text [N, D]) for a "
                            ".jsonl manifest of image files and captions (default: none; .npz rounds need none)")
    audit.add_argument("--pool", help="real data held out from the reference (same format): the loop's null is built "
                                      "from it once, and alarms get a false-alarm guarantee (see docs/alerts.md)")
    audit.add_argument("--bootstrap", type=_non_negative_int, default=AUDIT["n_boot"],
                       help=f"bootstrap replicates, 0 for none (default {AUDIT['n_boot']})")
    audit.add_argument("--allow-size-change", action="store_true",
                       help="audit even if the sizes differ from the loop's other rounds")

    status = verb("status", "trajectory and alert state of a loop; without LOOP, every loop at a glance", "json")
    status.add_argument("loop", nargs="?", help="the loop (default: an overview of all loops, riskiest first)")
    status.add_argument("--stale-after", type=_positive_float, default=6.0, metavar="HOURS",
                        help="overview: a loop not audited for this long is stale (default 6, as CollapseAuditStale)")

    evaluate = verb("evaluate", "recompute derivatives, alerts and risk from stored values (after a rules change)",
                    "json")
    evaluate.add_argument("loops", nargs="*", metavar="LOOP", help="loops to re-evaluate (default: all)")

    calibrate = verb("calibrate", "build or refresh a loop's null (LOOP [--pool POOL]); or, for loops without one, "
                                  "set the derivative rules' thresholds on control loops (--reference / --from-loop)",
                     "json", "sampling", "null")
    calibrate.add_argument("loop", nargs="?", help="the loop whose null to build or refresh (its alarm's guarantee)")
    calibrate.add_argument("--pool", help="real data held out from the loop's reference, same format; default: the "
                                          "loop's recorded pool, else the reference is split in two (recorded)")
    source = calibrate.add_mutually_exclusive_group()
    source.add_argument("--reference", help="make control rounds from this reference (.npy): fresh subsamples, no feedback")
    source.add_argument("--from-loop", action="append", metavar="LOOP",
                        help="use this stored loop, audited without feedback, as a control (repeatable)")
    calibrate.add_argument("--target-arl0", type=float, default=200.0,
                           help="average rounds before a false alarm (default 200)")
    calibrate.add_argument("--control-rounds", type=_positive_int, default=40,
                           help="control rounds made from --reference (default 40)")
    calibrate.add_argument("--bootstrap", type=_positive_int, default=200, help="bootstrap replicates (default 200)")
    calibrate.add_argument("--out", help="where to write the calibrated rules (default: rules.toml in the state directory)")

    backfill = verb("backfill", "re-audit a loop's rounds from their recorded files (resumable)", "json")
    backfill.add_argument("loop")
    backfill.add_argument("--force", action="store_true",
                          help="re-audit every round, not only those audited with another metrics version")

    report = verb("report", "trajectory plots of a loop (PNG per family, or one HTML page)", "json")
    report.add_argument("loop")
    report.add_argument("--format", choices=("png", "html"), default="png", help="output format (default png)")
    report.add_argument("--out", help="output directory (default: reports/LOOP in the state directory)")

    serve = verb("serve", "serve the Prometheus exporter and, with --watch/--manifest, audit new round files as they "
                          "appear (until SIGTERM)", "runner")
    serve.add_argument("--host", default="127.0.0.1", help="exporter bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=_non_negative_int, default=DEFAULT_PORT, help=f"exporter port (default {DEFAULT_PORT})")
    serve.add_argument("--watch", action="append", metavar="DIR_OR_URL",
                       help="directory or fsspec URL holding <loop>/round_<N>.<ext> files (repeatable)")
    serve.add_argument("--manifest", action="append", metavar="FILE_OR_URL",
                       help="TOML/JSON manifest listing round files (repeatable)")
    serve.add_argument("--reference", help="reference for loops without reference.<ext> or a configured one")
    serve.add_argument("--interval", type=_positive_float, default=60.0,
                       help="seconds between scans of the sources (default 60)")
    serve.add_argument("--once", action="store_true", help="scan and audit once, then exit (no exporter)")
    serve.add_argument("--follow-links", action="store_true",
                       help="audit round files and loop folders that are links out of the watched directory "
                            "(refused by default)")

    meta = verb("meta-evaluate", "the meta-evaluation (survey 8.1): seeded collapse loops and controls with known "
                                  "onsets, the alarm scored against baselines and an oracle; writes "
                                  "docs/meta-evaluation.md", "json", aliases=("bench",))
    meta.add_argument("--quick", action="store_true", help="few seeds and small samples (CI: under 2 minutes)")
    meta.add_argument("--seeds", type=_positive_int, help="seeds per loop (default: 2 quick, 8 full)")
    meta.add_argument("--text-seeds", type=_positive_int,
                       help="seeds per text loop (L3, L4; default: all quick, half of --seeds full)")
    meta.add_argument("--loops", metavar="PATTERN", help="only loop ids matching this glob, e.g. 'L1-*'")
    meta.add_argument("--workers", type=_positive_int, default=2, help="worker processes (default 2)")
    meta.add_argument("--out", default="docs/meta-evaluation.md",
                       help="the Markdown report; plots go beside it in <stem>/ (default docs/meta-evaluation.md)")
    meta.add_argument("--rescore", action="store_true",
                      help="audit nothing: re-apply the current engine and rules to the runs the last run with this "
                           "--out archived in the state directory (meta-evaluation-archive/<stem>/), and write the "
                           "report again (seconds, not an hour)")

    demo = verb("demo", "a collapse loop audited round by round (default: the L4 real-text loop, a bigram model "
                        "refitted on its own samples), with its alarm and lead time over the true onset")
    demo.add_argument("--modality", choices=("text", "agent", "reasoning", "json", "graph", "log", "image_text"),
                      default="text",
                      help="text: the L4 bigram loop on WordNet glosses; agent: the L6 gridworld policy refitted on "
                           "its own successful episodes; reasoning: the L11 solver retrained on its own correct "
                           "solutions (STaR); json, graph, log, image_text: the L7-L10 generators refitted on their "
                           "own records, graphs, log lines or captions (default text)")
    demo.add_argument("--rounds", type=_positive_int, default=9,
                      help="generations after generation 0; rounds 0..ROUNDS are audited (default 9)")
    demo.add_argument("--seed", type=_non_negative_int, default=0, help="simulation seed (default 0)")
    demo.add_argument("--n-samples", type=_positive_int, default=None,
                      help="samples each generation is refitted on: fewer collapse faster (default: text 3000 "
                           "sentences, onset near generation 8; agent 120 episodes, onset near generation 8-18)")
    demo.add_argument("--n-audit", type=_positive_int, default=None,
                      help="samples audited per round (default: text 500, agent 300)")
    demo.add_argument("--n-reference", type=_positive_int, default=None,
                      help="samples in the reference: held-out real glosses, or generation 0's episodes "
                           "(default: text 500, agent 300)")
    demo.add_argument("--bootstrap", type=_positive_int, default=50, help="bootstrap replicates (default 50)")
    demo.add_argument("--null-rounds", type=_positive_int, default=200,
                      help="pseudo-rounds of the loop's null, built at round 0 (default 200, the minimum)")
    demo.add_argument("--host", default="127.0.0.1", help="exporter bind address (default 127.0.0.1)")
    demo.add_argument("--port", type=_non_negative_int, default=DEFAULT_PORT, help=f"exporter port, 0 for any (default {DEFAULT_PORT})")
    demo.add_argument("--no-serve", action="store_true", help="do not serve the exporter during the demo")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CollapseMonitorError as exc:
        print(f"collapse-monitor: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a full disk is the user's to fix: one line, not a traceback
        message = disk_full_message(exc)
        if message is None:
            raise
        print(f"collapse-monitor: error: {message}: free some space and run it again",
              file=sys.stderr)
        return 1

