"""L7-json, L8-graph, L9-log and L10-image-text in the meta-evaluation: registration, schedules and sizes, the
audit path (pipeline_input, option files, Evidently columns), pools, truth crossings and the oracle.

The oracle's exactness is checked by the importance-sampling identity :math:`E_{p_0}[p_g(x) / p_0(x)] = 1` on
single items of generation 0 (the ratio of every item is an e-value with expectation exactly 1 when
:math:`p_g \\ll p_0`), each with its tolerance in standard errors next to the assertion; the full-size numbers
are measured by ``collapse-monitor meta-evaluate --loops 'L7*'`` (and L8, L9, L10).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitor.errors import InputError
from monitor.inputs.graphs import LoadedGraphs
from monitor.inputs.json_records import LoadedJsonRecords
from monitor.inputs.logs import LoadedLogLines
from monitor.inputs.pairs import LoadedPairs
from monitor.meta_evaluation import jobs, report, runner
from monitor.meta_evaluation import loop_graphs as G
from monitor.meta_evaluation import loop_image_text as I
from monitor.meta_evaluation import loop_json_records as J
from monitor.meta_evaluation import loop_logs as LG
from monitor.meta_evaluation.audit import pipeline_input, pipeline_options, truth_crossing
from monitor.meta_evaluation.oracle import oracle_alarms, oracle_log_evalues, oracle_models, spread_log_evalues
from monitor.meta_evaluation.pools import draw_pool
from monitor.engine.rules import load_rules
from monitor.modalities.pipeline import AuditPipeline

pytestmark = pytest.mark.usefixtures("single_torch_thread")

# family -> (modality, loaded type, control ids, the size cap of settings.STRUCTURED_MAX_AUDIT)
FAMILIES = {
    "L7-json": ("json", LoadedJsonRecords, ["C0"], 151),
    "L8-graph": ("graph", LoadedGraphs, ["C0", "C1", "C2"], 101),
    "L9-log": ("log", LoadedLogLines, ["C0", "C1", "C2"], 201),
    "L10-image-text": ("image_text", LoadedPairs, ["C0"], 151),
}
MODULES = {"L7-json": J, "L8-graph": G, "L9-log": LG, "L10-image-text": I}
SMALL = dict(n_audit=12, n_reference=12)


# --------------------------------------------------------------------------------------------------------------
# registration, schedules, sizes
# --------------------------------------------------------------------------------------------------------------


def test_the_four_families_are_registered_after_l6_in_order():
    assert list(runner.COLLAPSE_LOOPS)[-6:] == ["L6-agent", *FAMILIES, "L11-reasoning"]  # L11: test_reasoning_family
    assert runner.select_families("L7*") == ["L7-json"]
    assert runner.select_families("C2-L9-*") == ["L9-log"]
    assert runner.select_families("L10*") == ["L10-image-text"]
    # a glob on "L1*" also takes L10 and L11: ids are matched as strings
    assert runner.select_families("L1*")[-2:] == ["L10-image-text", "L11-reasoning"]


@pytest.mark.parametrize("family", FAMILIES)
def test_members_schedules_and_sizes(family):
    modality, _, controls, cap = FAMILIES[family]
    module = MODULES[family]
    members = [family, *(f"{c}-{family}" for c in controls)]
    assert runner.COLLAPSE_LOOPS[family] is module.LOOPS[family] and runner.family_members(family) == members
    assert all(runner.family_of(m) == family for m in members)
    full, quick = runner.default_settings(False), runner.default_settings(True)
    assert full.schedule(family) == module.SUGGESTED_SCHEDULE == (30, 1)
    assert quick.schedule(family) == quick.schedule(members[-1] if len(members) > 2 else family) == \
        module.QUICK_SCHEDULE == (12, 2)
    assert quick.schedule(f"C0-{family}") == (quick.c0_generations, 1)
    assert not runner.is_text_family(family) and full.seeds_of(family) == tuple(range(8))
    assert full.schedule(f"C0-{family}")[0] * len(full.seeds_of(family)) == 3000
    assert runner.loop_overrides(f"C0-{family}", 301) == {"n_audit": cap, "n_reference": cap}
    assert runner.loop_overrides(family, 101) == {"n_audit": 101, "n_reference": 101}
    assert sorted((j.run_id, j.seed) for j in runner.make_jobs([family], quick, rules=None)) == \
        sorted((m, s) for m in members for s in quick.seeds)
    assert jobs._job_cost(family, quick) == 7 * jobs._round_weight(family)


@pytest.mark.parametrize("family", FAMILIES)
def test_controls_are_constant_and_share_generation0(family):
    modality, _, controls, _ = FAMILIES[family]
    loop = runner.COLLAPSE_LOOPS[family](0, 4, **SMALL)
    c0 = runner.CONTROL_LOOPS[f"C0-{family}"](0, 4, **SMALL)
    assert (loop.modality, c0.modality, c0.kind, c0.onset) == (modality, modality, "control", None)
    for name, values in c0.truth.items():
        assert np.all(values == values[0]), name
    assert truth_crossing(c0) is None
    assert all(np.array_equal(loop.truth[k][0], c0.truth[k][0]) for k in loop.truth)


@pytest.mark.parametrize("run_id, quantity, rule", [
    ("C1-L8-graph", "families", lambda x: x <= 0.5 * x[0]),
    ("C2-L8-graph", "families", lambda x: x <= 0.5 * x[0]),
    ("C1-L9-log", "template_entropy", lambda x: x < 0.5 * x[0]),
    ("C2-L9-log", "template_entropy", lambda x: x < 0.5 * x[0]),
])
def test_small_drift_controls_are_scored_with_the_loops_onset_rule(run_id, quantity, rule):
    # M = 4 training items a generation: the controls drift enough to cross within 30 generations at some seed
    crossings = []
    for seed in range(4):
        trace = runner.CONTROL_LOOPS[run_id](seed, 30, 5, n_samples=4, n_audit=3, n_reference=3)
        hits = np.flatnonzero(rule(trace.truth[quantity]))
        crossings.append(truth_crossing(trace))
        assert crossings[-1] == (int(hits[0]) if hits.size else None)
    assert any(c is not None for c in crossings)
    loop = runner.COLLAPSE_LOOPS[run_id[3:]](0, 30, 5, n_samples=4, n_audit=3, n_reference=3)
    assert truth_crossing(loop) == loop.onset is not None


# --------------------------------------------------------------------------------------------------------------
# the audit path
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_pipeline_input_gives_the_modalitys_loaded_type(family):
    modality, loaded_type, _, _ = FAMILIES[family]
    trace = runner.COLLAPSE_LOOPS[family](0, 1, **SMALL)
    loaded = pipeline_input(modality, trace.rounds[1], f"{family} generation 1")
    reference = pipeline_input(modality, trace.reference, f"{family} reference", role="reference")
    assert isinstance(loaded, loaded_type) and isinstance(reference, loaded_type)
    assert len(loaded) == len(reference) == 12 and loaded.take_rows([0, 2]).n_used == 2


def test_pipeline_input_reads_as_the_loaders_do():
    json_round = pipeline_input("json", ['{"a": 1}', '{"a":'], "L7-json generation 3")
    assert json_round.records == ({"a": 1}, None)  # a round keeps its malformed line, valid_json_rate counts it
    with pytest.raises(InputError, match=r"^L7-json reference: line 2: not valid JSON"):
        pipeline_input("json", ['{"a": 1}', '{"a":'], "L7-json reference", role="reference")
    log = pipeline_input("log", ["WARN disk: device sda usage above 90 percent"], "x")
    assert (log.severity, log.component) == (("WARN",), ("disk",))  # the loop's format: --log-pattern's fields
    with pytest.raises(InputError, match=r"^L8-graph generation 2: line 2: no field 'edges' or 'links'"):
        pipeline_input("graph", [{"edges": [[0, 1]]}, {"nodes": [0]}], "L8-graph generation 2")
    with pytest.raises(ValueError, match="x: expected LoadedPairs"):
        pipeline_input("image_text", [[0.0]], "x")
    assert pipeline_options("graph")["constraints_path"].endswith("monitor/data/graph_constraints.toml")
    assert pipeline_options("json")["schema_path"].endswith("monitor/data/json_schema.json")
    assert pipeline_options("log") == pipeline_options("image_text") == {}


def test_a_json_round_without_an_optional_field_keeps_its_flattened_fields_suite():
    """A collapsed generator that stops writing an optional field: the field's absence is a category of its own
    in the flattened table (the daemon's JsonModality), so the tabular suite still runs and sees the change."""
    trace = J.json_records_loop(0, 1, n_audit=30, n_reference=60)
    reference = pipeline_input("json", trace.reference, "reference", role="reference")
    pipe = AuditPipeline("json", reference, k=5, n_boot=0, seed=0, **pipeline_options("json"))
    lines = [line for line in trace.rounds[0] if '"resolution"' not in line]  # the optional field, gone
    full = pipe.audit(pipeline_input("json", trace.rounds[0], "g0"), round_where="g0")
    audit = pipe.audit(pipeline_input("json", lines, "L7-json generation 9"), round_where="L7-json generation 9")
    assert not audit.failures and set(full.metrics) == set(audit.metrics)
    assert audit.metrics["category_coverage"].value < full.metrics["category_coverage"].value  # values lost


def test_the_shipped_schema_is_the_loops():
    from monitor.meta_evaluation.audit import JSON_SCHEMA

    assert JSON_SCHEMA.read_bytes() == J.schema_json()


@pytest.mark.parametrize("family, text_columns", [("L7-json", True), ("L8-graph", False), ("L9-log", True),
                                                  ("L10-image-text", False)])
def test_evidently_columns_follow_the_daemons_reports(family, text_columns):
    from monitor.modalities import MODALITY
    from monitor.publishing import evidently_report

    modality = FAMILIES[family][0]
    trace = runner.COLLAPSE_LOOPS[family](0, 6, 6, n_samples=10, n_audit=40, n_reference=40)
    reference = pipeline_input(modality, trace.reference, "reference", role="reference")
    current = pipeline_input(modality, trace.rounds[1], "round")
    pipe = AuditPipeline(modality, reference, k=5, n_boot=0, seed=0, **pipeline_options(modality))
    audit = pipe.audit(current, round_where="round", skip_failed_groups=True)
    ref, cur, numeric, categorical = runner.evidently_columns(modality, reference, current, pipe.reference_embeddings,
                                                              audit.embeddings)
    assert (MODALITY[modality].drift_view == "text") == text_columns and categorical == []
    descriptors = list(evidently_report.TEXT_DESCRIPTOR_COLUMNS)
    assert (numeric[:len(descriptors)] == descriptors) == text_columns
    k = min(16, audit.embeddings.shape[1], 79)
    assert numeric[-k:] == [f"embedding_pc_{j + 1:02d}" for j in range(k)] and len(numeric) == k + 5 * text_columns
    assert 0.0 <= runner.evidently_drift_share(ref, cur, numeric) <= 1.0
    if text_columns:
        full = evidently_report.text_drift_report(reference.texts, current.texts,
                                                  reference_embeddings=pipe.reference_embeddings,
                                                  round_embeddings=audit.embeddings).drift_share
        assert runner.evidently_drift_share(ref, cur, numeric) == full


# --------------------------------------------------------------------------------------------------------------
# pools
# --------------------------------------------------------------------------------------------------------------


def test_pools_draw_generation0_items_of_the_modality():
    lines = draw_pool("C0-L7-json", 0, 4000)
    ids = [json.loads(line)["id"] for line in draw_pool("L7-json", 0, 25, n_audit=10) if line.endswith("}")]
    assert max(ids) == 9 and ids[:10] == list(range(10))  # numbered per round of n_audit, as a round's ids are
    records = pipeline_input("json", lines, "pool", role="pool").records
    # generation 0: v0 = 0.02 bad outputs, half of them malformed (binomial se sqrt(0.01 * 0.99 / 4000) = 0.0016; 4 se)
    assert abs(sum(r is None for r in records) / 4000 - J.V0 * J.MALFORMED_SHARE) < 4 * 0.0016
    parsed = [r for r in records if r is not None]
    share = np.mean([r["category"] == "billing" for r in parsed])
    assert abs(share - 0.30) < 4 * np.sqrt(0.3 * 0.7 / len(parsed))  # category "billing": 0.30 at generation 0

    graphs = draw_pool("L8-graph", 0, 2000)
    cycles = np.mean([G.structure_log_probabilities(g)[1][1] == 0 for g in graphs])
    assert abs(cycles - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 2000)  # a quarter of generation 0's graphs are cycles
    assert draw_pool("C2-L8-graph", 0, 5) == draw_pool("L8-graph", 0, 5) != draw_pool("L8-graph", 1, 5)

    log = draw_pool("C1-L9-log", 0, 4000)
    p0, _ = LG.initial_generator()
    share = np.mean([line.startswith("INFO sshd: Accepted password") for line in log])
    assert abs(share - p0[0]) < 4 * np.sqrt(p0[0] * (1 - p0[0]) / 4000)  # template 0: 0.376 at generation 0

    pairs = draw_pool("C0-L10-image-text", 0, 4000, dim=16)
    assert isinstance(pairs, LoadedPairs) and pairs.image.shape == (4000, 16)
    correct = I.naming_matrix(I.initial_prior(), 16).diagonal().mean()
    named = np.mean([c.endswith(I.CONCEPTS[int(np.argmax(I.concept_prototypes(16) @ x))])
                     for c, x in zip(pairs.captions, pairs.image)])  # the image's concept: its nearest prototype
    assert abs(named - correct) < 4 * np.sqrt(correct * (1 - correct) / 4000)
    with pytest.raises(ValueError, match="size"):
        draw_pool("L10-image-text", 0, 1)
    with pytest.raises(ValueError, match="overrides: C0-L9-log takes no 'dim'"):
        draw_pool("C0-L9-log", 0, 3, dim=5)


def test_the_pool_of_a_null_is_parsed_once_and_cut_into_pseudo_rounds():
    from monitor.engine.null import take_units

    pool = pipeline_input("log", draw_pool("L9-log", 0, 30), "L9-log pool", role="pool")
    rows = take_units(pool, np.array([3, 1, 4]))
    assert isinstance(rows, LoadedLogLines) and rows.lines == tuple(pool.lines[i] for i in (3, 1, 4))


# --------------------------------------------------------------------------------------------------------------
# the oracle
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_oracle_is_zero_on_c0_and_positive_late_in_the_loop(family):
    c0 = runner.CONTROL_LOOPS[f"C0-{family}"](0, 12, 4, n_audit=60, n_reference=12)
    assert oracle_log_evalues(c0).tolist() == [0.0] * 4
    assert MODULES[family].__dict__[_ORACLE[family]](c0).tolist() == [0.0] * 4  # the module's own code too
    loop = runner.COLLAPSE_LOOPS[family](0, 12, 4, n_audit=60, n_reference=12)
    log_e = oracle_log_evalues(loop)
    assert log_e[0] == 0.0 and np.all(log_e[1:] > 0)  # generation 0 is p_0; later rounds favour p_g
    assert oracle_alarms(log_e)[-1] and spread_log_evalues(loop) is None  # L10 is no Gaussian loop (not "L1")
    assert np.array_equal(oracle_log_evalues(family, 0, 12, 4, n_audit=60, n_reference=12), log_e)
    with pytest.raises(ValueError, match="loop module"):
        oracle_models(loop)


_ORACLE = {"L7-json": "json_log_evalues", "L8-graph": "graphs_log_evalues", "L9-log": "logs_log_evalues",
           "L10-image-text": "image_text_log_evalues"}


@pytest.mark.parametrize("run_id", ["C1-L8-graph", "C2-L8-graph", "C1-L9-log", "C2-L9-log"])
def test_oracle_of_drifting_controls_is_finite(run_id):
    log_e = oracle_log_evalues(runner.CONTROL_LOOPS[run_id](0, 6, 3, n_audit=30, n_reference=5))
    assert log_e[0] == 0.0 and np.isfinite(log_e).all()


def test_oracle_refuses_a_trace_that_is_not_its_regeneration():
    import dataclasses

    trace = J.json_records_loop(0, 2, n_audit=5, n_reference=5)
    swapped = dataclasses.replace(trace, rounds=[trace.rounds[0], trace.rounds[2], trace.rounds[1]])
    with pytest.raises(ValueError, match="L7-json seed 0 round 1 does not match"):
        oracle_log_evalues(swapped)
    logs = LG.logs_loop(0, 2, n_audit=5, n_reference=5)
    with pytest.raises(ValueError, match="L9-log seed 0 round 2 does not match"):
        oracle_log_evalues(dataclasses.replace(logs, rounds=[*logs.rounds[:2], logs.rounds[1]]))


def _mean_ratio_se(log_r: np.ndarray) -> tuple[float, float]:
    r = np.exp(log_r)
    return float(r.mean()), float(r.std(ddof=1) / np.sqrt(r.size))


def test_json_latent_ratio_has_expectation_one_under_generation0():
    p0 = J.initial_parameters()
    pg = J.json_parameters(3, 1, n_samples=60)[1]
    sim = J._sample(p0, 40_000, np.random.default_rng(0))
    mean, se = _mean_ratio_se(J.latent_log_ratios(sim, pg, p0))
    assert abs(mean - 1.0) < 4 * se and se < 0.1
    # the written scores' masses sum to 1 (0.0, 0.1, ..., 100.0), also when the spread is tiny
    grid = np.round(np.arange(1001) * 0.1, 1)
    for mean_, std in ((60.0, 15.0), (2.0, 30.0), (99.99, 0.01)):
        assert np.exp(J.score_log_probabilities(grid, mean_, std)).sum() == pytest.approx(1.0, abs=1e-9)


def test_graph_probabilities_are_exact():
    # Cayley: the Prüfer decoding draws each of the 4^2 = 16 labelled trees on 4 nodes with probability 1/16
    rng = np.random.default_rng(0)
    counts: dict = {}
    for _ in range(16_000):
        key = tuple(sorted(tuple(sorted(e)) for e in G._tree(4, rng)))
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == 16 and max(abs(c / 16_000 - 1 / 16) for c in counts.values()) < 4 * np.sqrt(15 / 256 / 16_000)
    tree = G.graph_object(4, next(iter(counts)))
    assert G.structure_log_probabilities(tree)[1][0] == pytest.approx(-2 * np.log(4))
    # sizes: the masses of 3..64 sum to 1
    means, sds = np.array(G.INITIAL_MEANS), np.array([4.0, 0.5, 30.0, 1e-3])
    total = sum(np.exp(G.size_log_probabilities(n, means, sds)) for n in range(3, 65))
    assert np.allclose(total, 1.0, atol=1e-12)
    # E_{p_0}[p_g / p_0] = 1 over single graphs
    params = G.graphs_params(5, 1, n_samples=16)
    graphs = G.sample_graphs(G.graphs_params(5, 1, workflow="no_feedback"), 0, 6000, np.random.default_rng(1))
    at = [tuple(params[k][g] for k in ("weights", "means", "sds")) for g in (0, 1)]
    log_r = G.graph_log_probabilities(graphs, *at[1]) - G.graph_log_probabilities(graphs, *at[0])
    mean, se = _mean_ratio_se(log_r)
    assert abs(mean - 1.0) < 4 * se and se < 0.1


def test_log_line_ratio_has_expectation_one_under_generation0():
    p0, q0 = LG.initial_generator()
    generator = LG.logs_generators(2, 1, n_samples=35)[1]
    rng = np.random.default_rng(0)
    log_r = np.array([LG.line_log_ratios(*LG._latent(p0, q0, 1, rng), generator, (p0, q0)) for _ in range(30_000)])
    mean, se = _mean_ratio_se(log_r)
    assert abs(mean - 1.0) < 4 * se and se < 0.1


def test_pair_density_ratio_is_exact():
    prior_g = I.image_text_priors(0, 1, n_samples=80)[1]
    pairs = I.sample_pairs(I.initial_prior(), 40_000, np.random.default_rng(0))
    log_r = I.pair_log_probabilities(pairs, prior_g) - I.pair_log_probabilities(pairs, I.initial_prior())
    mean, se = _mean_ratio_se(log_r)
    assert abs(mean - 1.0) < 4 * se and se < 0.1
    # brute force on one pair: the mixture over concepts written out, constants included
    one = pairs.take_rows([0])
    p, dim = I.concept_prototypes(I.DEFAULT_DIM), I.DEFAULT_DIM
    j = I.CONCEPTS.index(one.captions[0].rsplit(" ", 1)[1])
    var_u, var_v = I.DETAIL**2 / dim, I.CAPTION_NOISE**2 / dim

    def density(prior):
        c_matrix = I.naming_matrix(prior)
        return sum(np.exp(-((one.image[0] - p[c]) ** 2).sum() / (2 * var_u) - ((one.text[0] - one.image[0] - p[j] + p[c])
                                                                               ** 2).sum() / (2 * var_v))
                   * c_matrix[c, j] for c in range(12))

    assert log_r[0] == pytest.approx(np.log(density(prior_g) / density(I.initial_prior())), rel=1e-9, abs=1e-9)


# --------------------------------------------------------------------------------------------------------------
# one tiny family run, in-process (the cheapest modality; the CLI's quick runs cover all four)
# --------------------------------------------------------------------------------------------------------------


def test_a_tiny_l9_run_is_audited_scored_and_reported():
    tiny = runner.BenchSettings(quick=True, seeds=(0,), n_audit=41, n_boot=0, n_permutations=19,
                                schedules={"L9-log": (6, 3)}, evidently_check="collapse", null_rounds=20,
                                pool_ratio=4, c0_generations=6)
    bench = runner.run_benchmark(tiny, load_rules(None), families=["L9-log"], workers=1, progress=False)
    assert sorted(r.run_id for r in bench.runs) == ["C0-L9-log", "C1-L9-log", "C2-L9-log", "L9-log"]
    for r in bench.runs:
        assert r.modality == "log" and r.oracle_alarms is not None and not r.failures
        assert {"template_coverage", "template_jsd", "severity_jsd", runner.DRIFT_SHARE} <= set(r.trajectory["metric"])
    c0 = next(r for r in bench.runs if r.run_id == "C0-L9-log")
    assert c0.generations.tolist() == list(range(7)) and not c0.oracle_alarms.any()
    assert bench.nulls[("L9-log", 0)].round_size == 41 and bench.nulls[("L9-log", 0)].pool_size == 4 * 41
    assert bench.evidently_check and all(c["fast"] == c["full"] for c in bench.evidently_check)
    text = report.render_markdown(bench, {}, "results.json", "out")
    assert "## `L9-log`" in text and "`L9-log` 6/3" in text
