r"""``collapse-monitor demo``: the L4 real-text collapse loop, audited through the daemon's flow.

The loop (:func:`monitor.meta_evaluation.textloop.l4_text`, benchmark loop L4 of the
survey's §8.1 meta-evaluation) starts from a word bigram model fitted on 1000
real WordNet glosses shipped with the package; each generation refits it, by
maximum likelihood and without smoothing, only on ``M`` sentences sampled
from the previous generation (Shumailov et al., Nature 2024), so rare bigrams
vanish for good and the text's tails erode.

The demo writes the reference and every generation's audit sample as JSONL
(``{"text": ...}`` per line) under ``$COLLAPSE_MONITOR_HOME/demo/<loop>/``,
the layout ``serve --watch`` reads (with a ``loop.toml`` holding the
bootstrap setting), and audits each round in order with the ``audit_round``
flow, round number = generation, exactly as the daemon does: the store,
MLflow, the Evidently reports, the alerts and the exporter are all real.

At the end it compares the engine with the ground truth:

* onset :math:`g^*`: the first generation whose true model keeps fewer than
  half of generation 0's distinct bigrams, :math:`D_g < D_0/2`
  (``LoopTrace.onset``, from the generator's parameters, never from audits);
* alarm :math:`a`: the first audited round at which the loop's **collapse
  signal** is raised (the e-CUSUM charts on the loop's null; docs/alerts.md),
  printed with the ARL0 guarantee it carries; the drift signal is reported
  beside it. The null is the loop *without feedback*: ``--null-rounds``
  pseudo-rounds drawn from a pool of 64 rounds' worth of generation 0's own
  sentences (``pool.jsonl``), audited against the real reference. A bigram
  model's text is never exactly real text, so a pool of real glosses would
  make the null "real text" and page the generator's initial gap at round 0;
  the no-feedback pool makes the alarm about what self-training changes;
* lead time :math:`g^* - a` generations, positive when the alarm came first.

Defaults (flags ``--rounds 9 --n-samples 3000 --n-audit 500 --n-reference
500 --bootstrap 50``). The benchmark's ``M = 5000`` puts the onset at
generation 13-15, which needs some 20 audited rounds; ``M = 3000`` puts it at
generation 8 (28 of seeds 0-29) or 9 (2 of them), so 9 generations (10
audits) contain it. An audit costs 10-20 s on 2 shared cores almost whatever
the sizes (the trajectory plots and the Evidently report dominate), so the
default run takes about 2-4 minutes; 500 sentences per round (vs 1000 in the
benchmark) and 50 bootstrap replicates trim the size-dependent part.

Re-runs. The loop is named ``demo-l4-text-s<seed>-<tag>``, ``tag`` the first
6 hex digits of the sha256 of the reference file and of the audit settings
(``M``, the round size, the bootstrap replicates). A re-run with the same
arguments regenerates byte-identical files and re-audits them into the same
loop, which is idempotent (rows are replaced, the alert history replays to
the same transitions, MLflow logs unchanged data once, metric tasks hit the
Prefect cache). Any other seed, size or generator version gets its own loop,
so rounds audited against different references or at different sizes never
mix. A run with fewer ``--rounds`` re-audits a prefix of the same loop;
derivatives and alert replays are causal (round ``r`` uses rounds ``<= r``
only), so the rows printed, which follow the alert transitions up to each
round, do not depend on later rounds already in the store.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Group
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table

from monitor.cli import prepare_flows, quiet_prefect
from monitor.config import load_settings
from monitor.errors import CollapseMonitorError
from monitor.publishing.render import SEVERITY_STYLE, console
from monitor.store import TrajectoryStore

LOOP_PREFIX = "demo-l4-text"
AGENT_LOOP_PREFIX = "demo-l6-agent"
TEXT_SIZES = (3000, 500, 500)  # --n-samples, --n-audit, --n-reference defaults of the text loop
AGENT_SIZES = (120, 300, 300)  # ... and of the agent loop (monitor.meta_evaluation.loop_agent)
# (metric in the store, column header): the text metrics that track the tails.
COLUMNS = {"distinct_2": "distinct-2", "vocab_tail_coverage": "tail cov", "unigram_jsd": "unigram JSD",
           "validity_rate": "valid"}
AGENT_COLUMNS = {"action_entropy": "action H", "duplicate_episode_rate": "dup eps", "success_rate": "success",
                 "exec_rate": "exec"}
TRUTH_KEY = "distinct_bigram_ratio"
_LEVEL = {"ok": 0, "warning": 1, "critical": 2}


def demo_loop_name(seed: int, reference_bytes: bytes, settings: dict, *, prefix: str = LOOP_PREFIX) -> str:
    r"""The demo's loop name: ``<prefix>-s<seed>-<tag>``, ``demo-l4-text`` or ``demo-l6-agent`` then.

    ``tag`` is the first 6 hex digits of
    :math:`\mathrm{sha256}(\text{reference bytes} \,\|\, \text{JSON(settings, sorted keys)})`,
    so equal inputs re-audit into the same loop and anything that would make
    rounds incomparable (another reference, other sizes) gets a new one.

    Args:
        seed: the loop's seed, >= 0 (kept readable in the name).
        reference_bytes: the reference file's content.
        settings: the audit settings that are not in the reference (JSON-serialisable).

    Example:
        >>> demo_loop_name(0, b'{"text": "a b"}\n', {"n_audit": 500})
        'demo-l4-text-s0-a70d33'
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
    if not isinstance(reference_bytes, bytes):
        raise ValueError(f"reference_bytes: expected bytes, got {type(reference_bytes).__name__}")
    digest = hashlib.sha256(reference_bytes + json.dumps(settings, sort_keys=True).encode()).hexdigest()
    return f"{prefix}-s{seed}-{digest[:6]}"


def jsonl_bytes(texts: list[str]) -> bytes:
    r"""Texts as JSONL, one ``{"text": ...}`` object per line.

    Example:
        >>> jsonl_bytes(["a b", 'say "c"'])
        b'{"text": "a b"}\n{"text": "say \\"c\\""}\n'
    """
    return "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()


def write_if_changed(path: Path, content: bytes) -> bool:
    """Write ``content`` to ``path`` unless it already holds exactly that; True when written.

    Unchanged files keep their mtime, so a re-run looks like nothing new to
    ``serve --watch``. The write goes through a temporary file and a rename,
    so a reader never sees half a round.
    """
    try:
        if path.read_bytes() == content:
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(content)
    tmp.replace(path)
    return True


def worst_severity(severities: dict[str, str]) -> str:
    """The loop status: the worst of its metrics' severities (``ok`` when none).

    Example:
        >>> worst_severity({"distinct_2": "warning", "recall": "ok"}), worst_severity({})
        ('warning', 'ok')
    """
    return max(severities.values(), key=_LEVEL.__getitem__, default="ok")


def alarm_summary(severities: dict[str, str], shown: int = 3) -> str:
    """The alerting metrics, worst first then by name, at most ``shown`` of them named.

    Example:
        >>> alarm_summary({"recall": "critical", "mmd2": "warning", "eds": "warning", "ttr": "warning", "x": "ok"})
        'recall critical, eds warning, mmd2 warning, +1 more'
    """
    alerting = sorted(((m, s) for m, s in severities.items() if s != "ok"), key=lambda ms: (-_LEVEL[ms[1]], ms[0]))
    named = ", ".join(f"{m} {s}" for m, s in alerting[:shown])
    return named + (f", +{len(alerting) - shown} more" if len(alerting) > shown else "")


def lead_time_lines(onset: int | None, alarm: int | None, last_generation: int, *, alarm_by: str = "") -> list[str]:
    r"""The verdict lines: ground-truth onset, first alarm and lead time :math:`g^* - a`.

    Args:
        onset: the first generation past the true onset (``LoopTrace.onset``), None if not reached.
        alarm: the first round whose loop status was not ok, None if none.
        last_generation: the run's last generation (onset None means onset > it).
        alarm_by: what raised the alarm, appended in parentheses when given.

    Example:
        >>> for line in lead_time_lines(8, 5, 12): print(line)
        onset (ground truth): generation 8
        first alarm: round 5
        lead time: +3 generations (onset 8 - alarm 5; positive = alarm before onset)
        >>> lead_time_lines(None, None, 12)[2]
        'lead time: undefined: no alarm, and no onset by generation 12 (nothing to catch yet; try more --rounds)'
    """
    for name, value in (("onset", onset), ("alarm", alarm)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{name}: expected None or an int >= 0, got {value!r}")
    lines = [
        "onset (ground truth): " + (f"generation {onset}" if onset is not None
                                    else f"not reached by generation {last_generation}"),
        "first alarm: " + (f"round {alarm}" + (f" ({alarm_by})" if alarm_by else "") if alarm is not None
                           else f"none in rounds 0-{last_generation}"),
    ]
    if onset is not None and alarm is not None:
        lines.append(f"lead time: {onset - alarm:+d} generations (onset {onset} - alarm {alarm}; "
                     "positive = alarm before onset)")
    elif onset is not None:
        lines.append(f"lead time: undefined: collapse began at generation {onset} and no alarm fired (missed)")
    elif alarm is not None:
        lines.append(f"lead time: at least {last_generation + 1 - alarm:+d} generations (the onset is after "
                     f"generation {last_generation}; try more --rounds)")
    else:
        lines.append(f"lead time: undefined: no alarm, and no onset by generation {last_generation} "
                     "(nothing to catch yet; try more --rounds)")
    return lines


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


@dataclass(frozen=True)
class DemoLoop:
    """What the demo audits for one modality: the trace, the files' bytes, and how the table reads its truth."""

    modality: str
    trace: object  # monitor.meta_evaluation.trace.LoopTrace
    reference_bytes: bytes
    round_bytes: list[bytes]
    pool_bytes: bytes
    settings: dict  # what names the loop besides the reference (demo_loop_name)
    prefix: str
    intro: list[str]
    title: str
    columns: dict[str, str]
    truth: object  # [n_generations + 1] ratio to generation 0, onset when below ONSET_RATIO
    truth_header: str
    legend: str
    drift_phrase: str
    notes: Callable[[str], list[str]] = lambda reference_path: []  # lines printed once after the table
    extension: str = ".jsonl"  # of the reference, pool and round files
    option_files: tuple[tuple[str, str, bytes], ...] = ()  # (AuditOptions field, file name, content) beside them
    options: tuple[tuple[str, str], ...] = ()  # (AuditOptions field, value) of the loop, e.g. a log pattern


ONSET_RATIO = 0.5


def _text_loop(args, pool_rows: int) -> DemoLoop:
    import numpy as np

    from monitor.meta_evaluation.ngram import decode, sample_ngram, wordnet_vocabulary
    from monitor.meta_evaluation.textloop import run_with_models

    n_samples, n_audit, n_reference = (args.n_samples or TEXT_SIZES[0], args.n_audit or TEXT_SIZES[1],
                                       args.n_reference or TEXT_SIZES[2])
    trace, models = run_with_models("L4-text", args.seed, args.rounds, n_samples=n_samples, n_audit=n_audit,
                                    n_reference=n_reference)
    reference_bytes = jsonl_bytes(trace.reference)
    # The loop's null is the loop without feedback: generation 0's own sentences (the generator before any
    # self-training), audited against the real reference like every round.
    rng = np.random.default_rng(np.random.SeedSequence(args.seed, spawn_key=(0x706F6F6C,)))
    pool_texts = [decode(s, wordnet_vocabulary()) for s in sample_ngram(
        models[0], pool_rows, rng, tau=trace.params["tau"], max_tokens=trace.params["max_tokens"])]
    from metrics_core.text import fit_text_reference
    from monitor.modalities.pipeline import _validity_notes

    return DemoLoop(
        modality="text", trace=trace, reference_bytes=reference_bytes,
        round_bytes=[jsonl_bytes(texts) for texts in trace.rounds], pool_bytes=jsonl_bytes(pool_texts),
        settings={"n_boot": args.bootstrap, "generator": trace.params}, prefix=LOOP_PREFIX,
        intro=[f"L4 text loop: a word bigram model fitted on {trace.params['n_train']} real WordNet glosses, "
               f"then refitted {args.rounds} times on {n_samples} of its own sentences (seed {args.seed})",
               f"{n_audit} sentences per round vs {n_reference} held-out real glosses"],
        title="bigram model refitted on its own text", columns=COLUMNS, truth=trace.truth[TRUTH_KEY],
        truth_header="D_g/D_0 (truth)",
        legend="distinct-2: distinct over total bigrams; tail cov: share of the reference's rare word types "
               "(lowest 10% of its token mass) seen in the round; unigram JSD: Jensen-Shannon divergence of "
               "word frequencies from the reference; D_g/D_0 (truth): the true model's distinct bigrams over "
               "generation 0's (onset: first below 0.5); valid: the share of valid sentences relative to the "
               "reference's own rate (1: as valid as the real glosses)",
        drift_phrase="the text moving away from the reference",
        # Said here once, plainly (the audit logs it too).
        notes=lambda path: [f"validity: {note}" for note in _validity_notes(fit_text_reference(list(trace.reference)),
                                                                           path)])


def _agent_loop(args, pool_rows: int) -> DemoLoop:
    import numpy as np

    from monitor.meta_evaluation.loop_agent import agent_loop, episodes_jsonl, initial_policy, sample_episodes

    n_samples, n_audit, n_reference = (args.n_samples or AGENT_SIZES[0], args.n_audit or AGENT_SIZES[1],
                                       args.n_reference or AGENT_SIZES[2])
    trace = agent_loop(args.seed, args.rounds, n_samples=n_samples, n_audit=n_audit, n_reference=n_reference)
    # The null: generation 0's policy without feedback, as for the text loop.
    rng = np.random.default_rng(np.random.SeedSequence(args.seed, spawn_key=(0x706F6F6C,)))
    pool = sample_episodes(initial_policy(), pool_rows, rng, max_steps=trace.params["max_steps"])
    entropy = np.asarray(trace.truth["action_entropy"], dtype=np.float64)
    return DemoLoop(
        modality="agent", trace=trace, reference_bytes=episodes_jsonl(trace.reference),
        round_bytes=[episodes_jsonl(episodes) for episodes in trace.rounds], pool_bytes=episodes_jsonl(pool),
        settings={"n_boot": args.bootstrap, "generator": trace.params}, prefix=AGENT_LOOP_PREFIX,
        intro=[f"L6 agent loop: a gridworld policy refitted {args.rounds} times on the successful episodes among "
               f"{n_samples} of its own (self-imitation; seed {args.seed})",
               f"{n_audit} episodes per round vs {n_reference} episodes of generation 0's policy"],
        title="policy refitted on its own successful episodes", columns=AGENT_COLUMNS,
        truth=entropy / entropy[0], truth_header="H_g/H_0 (truth)",
        legend="action H: Shannon entropy of the round's actions (bits); dup eps: share of episodes repeating "
               "another's whole action sequence; success: share of episodes reaching the goal; exec: share of "
               "steps without an error; H_g/H_0 (truth): the true policy's mean conditional action entropy over "
               "generation 0's (onset: first below 0.5)",
        drift_phrase="the episodes moving away from the reference")


# The structured modalities' demos: their loop module (monitor.meta_evaluation.loop_*), its sizes
# (n_samples, n_audit, n_reference: n_samples small enough that the onset falls inside 9 rounds for most seeds),
# the truth it is read by, and the table's columns.
STRUCTURED_DEMOS = {
    "json": dict(prefix="demo-l7-json", sizes=(12, 150, 200), truth="mean_field_entropy",
                 truth_header="H_g/H_0 (truth)",
                 columns={"valid_json_rate": "valid JSON", "schema_correctness_rate": "schema ok",
                          "categorical_value_coverage": "value cov", "field_coverage": "field cov"},
                 title="structured-output generator refitted on its own JSON records",
                 legend="valid JSON: share of lines that parse as an object; schema ok: share valid under the JSON "
                        "Schema; value cov: share of the reference's categorical values produced; field cov: share of "
                        "its field paths present; H_g/H_0 (truth): the true generator's mean per-field entropy over "
                        "generation 0's (onset: first below 0.5)",
                 what="records"),
    "graph": dict(prefix="demo-l8-graph", sizes=(8, 150, 200), truth="families",
                  truth_header="families/4 (truth)",
                  columns={"uniqueness": "unique", "novelty": "novel", "degree_mmd2": "degree MMD2",
                           "valid_rule_rate": "valid"},
                  title="graph generator refitted on its own graphs",
                  legend="unique: distinct graphs (WL hash) over all; novel: share no reference graph repeats; degree "
                         "MMD2: squared MMD of degree histograms from the reference's; valid: share meeting the "
                         "constraints file; families/4 (truth): structural families the true generator still "
                         "draws (onset: 2 of 4 or fewer)",
                  what="graphs"),
    "log": dict(prefix="demo-l9-log", sizes=(15, 200, 400), truth="template_entropy",
                truth_header="H_g/H_0 (truth)",
                columns={"template_coverage": "tmpl cov", "template_jsd": "tmpl JSD", "template_parse_rate": "parsed",
                         "severity_jsd": "severity JSD"},
                title="log generator refitted on its own lines",
                legend="tmpl cov: share of the reference's Drain templates seen; tmpl JSD: Jensen-Shannon divergence "
                       "of template frequencies from the reference's; parsed: share of lines matching a reference "
                       "template; severity JSD: divergence of severity levels; H_g/H_0 (truth): the true template "
                       "distribution's entropy over generation 0's (onset: first below 0.5)",
                what="log lines"),
    "image_text": dict(prefix="demo-l10-image-text", sizes=(30, 150, 150), truth="named_correctly",
                       truth_header="correct/correct_0 (truth)",
                       columns={"ita": "ITA", "retrieval_recall_at_1_i2t": "i2t R@1",
                                "retrieval_recall_at_1_t2i": "t2i R@1", "caption_distinct_2": "caption d-2"},
                       title="captioner distilled on its own captions",
                       legend="ITA: mean cosine of each image with its caption; i2t / t2i R@1: share of images "
                              "(captions) whose own caption (image) is the round's nearest; caption d-2: distinct "
                              "caption bigrams; correct/correct_0 (truth): the true captioner's share of correctly "
                              "named images over generation 0's (onset: first below 0.5)",
                       what="image-caption pairs"),
}


def _structured_loop(args, pool_rows: int) -> DemoLoop:
    import numpy as np

    from monitor.meta_evaluation import loop_graphs, loop_image_text, loop_json_records, loop_logs

    spec = STRUCTURED_DEMOS[args.modality]
    n_samples, n_audit, n_reference = (args.n_samples or spec["sizes"][0], args.n_audit or spec["sizes"][1],
                                       args.n_reference or spec["sizes"][2])
    loop, render, extension = {
        "json": (loop_json_records.json_records_loop, loop_json_records.records_jsonl, ".jsonl"),
        "graph": (loop_graphs.graphs_loop, loop_graphs.graphs_jsonl, ".jsonl"),
        "log": (loop_logs.logs_loop, loop_logs.log_text, ".log"),
        "image_text": (loop_image_text.image_text_loop, loop_image_text.pairs_npz_bytes, ".npz"),
    }[args.modality]
    trace = loop(args.seed, args.rounds, n_samples=n_samples, n_audit=n_audit, n_reference=n_reference)
    # The null: generation 0 without feedback, the benchmark's pool of the family (its own stream; JSON records
    # numbered per round-sized block, as a round numbers its records).
    from monitor.meta_evaluation.pools import draw_pool

    pool = draw_pool(f"C0-{trace.name}", args.seed, pool_rows, n_audit=n_audit, n_reference=n_reference)
    truth = np.asarray(trace.truth[spec["truth"]], dtype=np.float64)
    option_files, options = (), ()
    if args.modality == "json":
        option_files = (("schema_path", "schema.json", loop_json_records.schema_json()),)
    elif args.modality == "graph":
        from importlib import resources

        option_files = (("constraints_path", "constraints.toml",
                         resources.files("monitor.data").joinpath("graph_constraints.toml").read_bytes()),)
    elif args.modality == "log":
        from monitor.inputs.logs import EXAMPLE_PATTERN

        options = (("log_pattern", EXAMPLE_PATTERN),)
    return DemoLoop(
        modality=args.modality, trace=trace, reference_bytes=render(trace.reference),
        round_bytes=[render(r) for r in trace.rounds], pool_bytes=render(pool),
        settings={"n_boot": args.bootstrap, "generator": trace.params}, prefix=spec["prefix"],
        intro=[f"{trace.name.split('-', 1)[0]} {args.modality} loop: a {spec['title']}, {args.rounds} times, on "
               f"{n_samples} samples each (seed {args.seed})",
               f"{n_audit} {spec['what']} per round vs {n_reference} of generation 0's"],
        title=spec["title"], columns=spec["columns"], truth=truth / truth[0], truth_header=spec["truth_header"],
        legend=spec["legend"], drift_phrase=f"the {spec['what']} moving away from the reference",
        extension=extension, option_files=option_files, options=options)


REASONING_SIZES = (8, 50, 1000)  # training questions per generation, questions per round, gold questions in the bank


def _reasoning_loop(args, pool_rows: int) -> DemoLoop:
    import numpy as np

    from monitor.meta_evaluation.loop_reasoning import reasoning_loop, records_jsonl, sample_pool

    n_samples, n_audit, n_reference = (args.n_samples or REASONING_SIZES[0], args.n_audit or REASONING_SIZES[1],
                                       args.n_reference or REASONING_SIZES[2])
    trace = reasoning_loop(args.seed, args.rounds, n_samples=n_samples, n_questions_audit=n_audit,
                           n_reference=n_reference)
    k = trace.params["samples_per_question"]
    # The null: generation 0's solutions (K per question) to questions of the bank, whose gold answers the
    # reference holds; a pseudo-round draws whole questions.
    pool = sample_pool(args.seed, min(pool_rows // k, n_reference), samples_per_question=k, n_reference=n_reference)
    entropy = np.asarray(trace.truth["strategy_entropy"], dtype=np.float64)
    return DemoLoop(
        modality="reasoning", trace=trace, reference_bytes=records_jsonl(trace.reference),
        round_bytes=[records_jsonl(r) for r in trace.rounds], pool_bytes=records_jsonl(pool),
        settings={"n_boot": args.bootstrap, "generator": trace.params}, prefix="demo-l11-reasoning",
        intro=[f"L11 reasoning loop: a solver retrained {args.rounds} times on its own correct solutions to "
               f"{n_samples} questions (STaR; seed {args.seed})",
               f"{n_audit} questions x {k} samples per round vs the gold answers of {n_reference} questions"],
        title="solver retrained on its own correct solutions",
        columns={"acc_verify": "accuracy", "template_collapse_rate": "tmpl collapse",
                 "answer_agreement": "agreement", "rationale_distinct_2": "rationale d-2"},
        truth=entropy / entropy[0], truth_header="H_g/H_0 (truth)",
        legend="accuracy: share of answers equal to gold; tmpl collapse: share of rationales whose skeleton "
               "(numbers and names masked) over 10% of the round share; agreement: share of a question's sample "
               "pairs with equal answers; rationale d-2: distinct bigrams of the rationales; H_g/H_0 (truth): the "
               "true solver's strategy entropy over generation 0's (onset: first below 0.5)",
        drift_phrase="the solutions moving away from the reference")


DEMO_SIZES = {"text": TEXT_SIZES, "agent": AGENT_SIZES, "reasoning": REASONING_SIZES,
              **{m: s["sizes"] for m, s in STRUCTURED_DEMOS.items()}}


def run(args) -> int:
    settings = load_settings(args.home, args.rules)
    settings.rules()  # a bad rules file fails before any work
    quiet_prefect()
    prepare_flows()

    con = console()
    started = time.perf_counter()
    n_audit = args.n_audit or DEMO_SIZES[args.modality][1]
    pool_rows = 64 * n_audit
    build = {"text": _text_loop, "agent": _agent_loop, "reasoning": _reasoning_loop}.get(args.modality,
                                                                                        _structured_loop)
    try:
        demo = build(args, pool_rows)
    except ValueError as exc:
        raise CollapseMonitorError(f"demo: {exc}") from exc
    trace = demo.trace
    loop = demo_loop_name(args.seed, demo.reference_bytes, demo.settings, prefix=demo.prefix)
    workdir = settings.home / "demo" / loop
    workdir.mkdir(parents=True, exist_ok=True)
    reference_path = workdir / f"reference{demo.extension}"
    write_if_changed(reference_path, demo.reference_bytes)
    pool_path = workdir / f"pool{demo.extension}"
    write_if_changed(pool_path, demo.pool_bytes)
    option_values = dict(demo.options)
    watch_lines = [f"{key} = {json.dumps(value)}" for key, value in demo.options]
    for field, name, content in demo.option_files:
        write_if_changed(workdir / name, content)
        option_values[field] = str(workdir / name)
        watch_lines.append(f"{field.removesuffix('_path')} = {json.dumps(name)}")
    # What serve --watch needs to audit these files exactly as the demo does.
    modality_line = "" if demo.modality == "text" else f'modality = "{demo.modality}"\n'
    write_if_changed(workdir / "loop.toml", (f"{modality_line}bootstrap = {args.bootstrap}\npool = \"{pool_path.name}\"\n"
                                             f"null_rounds = {args.null_rounds}\n"
                                             + "".join(line + "\n" for line in watch_lines)).encode())
    truth = demo.truth
    con.print(demo.intro[0], soft_wrap=True)
    con.print(f"loop {loop}: {demo.intro[1]}, {args.bootstrap} bootstrap replicates; files in {workdir}",
              soft_wrap=True)

    from flows.audit import audit_round
    from monitor.options import AuditOptions

    options = AuditOptions(modality=None if demo.modality == "text" else demo.modality, n_boot=args.bootstrap,
                           null_rounds=args.null_rounds, **option_values)
    store = TrajectoryStore(settings.store_url)
    exporter = None
    if not args.no_serve:
        from monitor.publishing.exporter import Exporter

        try:
            exporter = Exporter(store, args.host, args.port)
        except OSError as exc:
            store.close()
            raise CollapseMonitorError(
                f"cannot serve the exporter on {args.host}:{args.port}: {exc.strerror} (use --port 0 or --no-serve)"
            ) from exc
        con.print(f"exporter: {exporter.url}")
    table = Table(title=f"{loop}: {demo.title}")
    table.add_column("round", justify="right")
    for header in demo.columns.values():
        table.add_column(header, justify="right")
    table.add_column(demo.truth_header, justify="right")
    table.add_column("risk", justify="right")
    table.add_column("status")
    severities: dict[str, str] = {}
    rules = settings.rules().for_round(demo.modality)
    guarantee: dict | None = None
    drift_alarm: int | None = None
    alarm: int | None = None
    alarm_by = ""
    spinner = Spinner("dots", text="auditing round 0 (the first audit also starts Prefect and MLflow)...")
    try:
        # Transient: the growing table is redrawn in place on a terminal, then printed once in full.
        with Live(Group(table, spinner), console=con, refresh_per_second=4, transient=True) as live:
            for generation, content in zip(trace.generations.tolist(), demo.round_bytes):
                if generation:
                    spinner.update(text=f"auditing round {generation}/{args.rounds}...")
                path = workdir / f"round_{generation}{demo.extension}"
                write_if_changed(path, content)
                if generation == 0:
                    spinner.update(text=f"auditing round 0 and building the loop's null ({args.null_rounds} "
                                        f"pseudo-rounds of {pool_rows} generation-0 samples; the first audit "
                                        "also starts Prefect and MLflow)...")
                result = audit_round(loop, generation, str(path), str(reference_path), options,
                                     home=str(settings.home), pool_path=str(pool_path),
                                     rules_path=None if settings.rules_path is None else str(settings.rules_path))
                guarantee = result.get("guarantee") or guarantee
                # The status at this round from the transitions so far (result["status"] is the loop's
                # latest, which on a re-run already includes later rounds).
                for t in result["transitions"]:
                    severities[t["metric"]] = t["to"]
                    style = SEVERITY_STYLE[t["to"]]
                    verb = "cleared" if t["to"] == "ok" else "raised"
                    live.console.print(f"[{style}]round {t['round']}: {t['metric']} {verb} "
                                       f"{t['from']} -> {t['to']}: {t['reason']}[/]", soft_wrap=True)
                status = worst_severity(severities)
                collapse = {m: sev for m, sev in severities.items() if rules.signal_of(m) == "collapse"}
                if worst_severity(collapse) != "ok" and alarm is None:
                    alarm = generation
                    alarm_by = "collapse signal: " + alarm_summary(collapse)
                drift = {m: sev for m, sev in severities.items() if rules.signal_of(m) == "drift"}
                if worst_severity(drift) != "ok" and drift_alarm is None:
                    drift_alarm = generation
                ratio = float(truth[generation])
                onset_mark = " onset" if generation == trace.onset else ""
                table.add_row(
                    str(generation),
                    *(_fmt(result["metrics"].get(name, {}).get("value")) for name in demo.columns),
                    f"[bold red]{ratio:.3f}{onset_mark}[/]" if ratio < ONSET_RATIO else f"{ratio:.3f}",
                    _fmt(result["risk"]["risk"]) if result["risk"] else "-",
                    f"[{SEVERITY_STYLE[status]}]{status}[/]",
                )
        con.print(table)
        con.print(demo.legend, soft_wrap=True)
        for note in demo.notes(str(reference_path)):
            con.print(note, soft_wrap=True)
        for line in lead_time_lines(trace.onset, alarm, args.rounds, alarm_by=alarm_by):
            con.print(line, soft_wrap=True)
        con.print(f"drift signal ({demo.drift_phrase}): "
                  + ("quiet" if drift_alarm is None else f"raised at round {drift_alarm}"), soft_wrap=True)
        if guarantee is not None:
            con.print(f"false-alarm guarantee: {guarantee['message']}", soft_wrap=True)
        stored_rounds = store.round_sizes(loop)["round"]
        if len(stored_rounds) and int(stored_rounds.max()) > args.rounds:
            con.print(f"note: the store also holds rounds {args.rounds + 1}-{int(stored_rounds.max())} of this "
                      "loop from an earlier, longer run", soft_wrap=True)
    finally:
        if exporter is not None:
            exporter.stop()
        store.close()
    home_flag = f"--home {settings.home} " if args.home else ""
    con.print(f"done in {time.perf_counter() - started:.0f} s", soft_wrap=True)
    con.print(f"store: {settings.store_url}", soft_wrap=True)
    con.print(f"MLflow: {settings.mlflow_uri} (browse: mlflow ui --backend-store-uri {settings.mlflow_uri})",
              soft_wrap=True)
    from monitor.modalities import MODALITY

    evidently = "; each round's Evidently HTML is in its MLflow run" if MODALITY[demo.modality].reports_drift else ""
    con.print(f"reports: {settings.home / 'reports' / loop} (trajectory plots per round{evidently})", soft_wrap=True)
    con.print(f"look further: collapse-monitor {home_flag}status {loop}", soft_wrap=True)
    con.print(f"              collapse-monitor {home_flag}report {loop} --format html", soft_wrap=True)
    return 0
