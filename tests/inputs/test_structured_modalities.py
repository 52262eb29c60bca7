"""JSON records, graphs, log lines and image-text pairs as round modalities: the shipped examples through the
pipeline (their metrics move the documented way from round 0 to round 6), detection, the modality's own
one-line refusals, the CLI end to end, and the Evidently reports of graph, image-text (and embedding) rounds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from metrics_core.registry import REGISTRY, metric_names, round_modality
from monitor.errors import InputError
from monitor.inputs import detect_modality
from monitor.modalities import MODALITY
from monitor.modalities.pipeline import AuditPipeline
from monitor.options import AuditOptions

DATA = Path(__file__).resolve().parents[2] / "monitor" / "data"
LOG_PATTERN = r"^(?P<severity>[A-Z]+) (?P<component>\w+):"
# modality -> (reference, round file pattern, options, metric that must fall from round 0 to round 6)
EXAMPLES = {
    "json": ("json_reference.jsonl", "json_rounds/round_{}.jsonl",
             {"schema_path": str(DATA / "json_schema.json")}, "categorical_value_coverage"),
    "graph": ("graph_reference.jsonl", "graph_rounds/round_{}.jsonl",
              {"constraints_path": str(DATA / "graph_constraints.toml")}, "uniqueness"),
    "log": ("log_reference.log", "log_rounds/round_{}.log", {"log_pattern": LOG_PATTERN}, "template_coverage"),
    "image_text": ("image_text_reference.npz", "image_text_rounds/round_{}.npz", {}, "ita"),
}


def _audit(modality: str, generation: int, **overrides):
    reference_name, round_name, extra, _ = EXAMPLES[modality]
    options = AuditOptions(modality=modality, n_boot=0, **{**extra, **overrides})
    kind = MODALITY[modality]
    reference = kind.load(DATA / reference_name, "reference", None, options)
    round_ = kind.load(DATA / round_name.format(generation), "round", generation, options, reference)
    kind.check_pair(reference, round_, options, generation)
    pipe = AuditPipeline(modality, reference.data, **options.pipeline_options())
    return pipe.audit(round_.data, n_boot=0).metrics


@pytest.mark.parametrize("modality", sorted(EXAMPLES))
def test_the_shipped_collapsing_example_moves_its_metric_the_bad_way(modality):
    falling = EXAMPLES[modality][3]
    first, last = _audit(modality, 0), _audit(modality, 6)
    assert REGISTRY[falling].higher_is_better and last[falling].value < first[falling].value
    own = [name for name in first if REGISTRY[name].modality == modality]
    assert own and round_modality(first) == modality  # the store tells the round's modality from its metrics
    assert "vendi_score" in first  # the embedding suite on the modality's view


def test_each_modality_reports_the_metrics_it_documents_on_its_example():
    metrics = _audit("json", 6)
    assert metrics["valid_json_rate"].value == pytest.approx(46 / 60)  # 14 of the 60 lines do not parse
    assert 0.0 <= metrics["schema_correctness_rate"].value <= metrics["valid_json_rate"].value
    assert "ks_mean" in metrics and REGISTRY["ks_mean"].modality == "tabular"  # the flattened fields' suite
    logs = _audit("log", 6)
    assert set(metric_names("log")) <= set(logs)  # the pattern gives severity and component
    assert "severity_jsd" not in _audit("log", 6, log_pattern=None)
    graphs = _audit("graph", 0)
    assert set(metric_names("graph")) <= set(graphs)
    assert "valid_rule_rate" not in _audit("graph", 0, constraints_path=None)
    pairs = _audit("image_text", 0)
    assert {"image_vendi_score", "text_vendi_score", "retrieval_recall_at_1_t2i"} <= set(pairs)
    assert "caption_distinct_2" in pairs  # the example's captions are strings too: the text suite on them


def test_json_records_align_by_key_with_the_reference(tmp_path):
    reference = tmp_path / "ref.jsonl"
    reference.write_text("".join(json.dumps({"id": i, "kind": "ab"[i % 2], "n": i}) + "\n" for i in range(8)))
    round_ = tmp_path / "round.jsonl"
    round_.write_text("".join(json.dumps({"id": i, "kind": "a", "n": i}) + "\n" for i in range(8)) + "{oops\n")
    options = AuditOptions(modality="json", n_boot=0, k=3, match_key="id")
    kind = MODALITY["json"]
    ref = kind.load(reference, "reference", None, options)
    pipe = AuditPipeline("json", ref.data, **options.pipeline_options())
    got = pipe.modality_metrics(kind.load(round_, "round", 1, options, ref).data)
    # Aligned by id, the key itself not scored: ids 1, 3, 5, 7 have kind "b" in the reference, so each reproduces
    # 1 of its 2 other fields.
    assert got["mean_match_percentage"].value == pytest.approx((4 * 1 + 4 * 1 / 2) / 8)
    assert got["valid_json_rate"].value == pytest.approx(8 / 9)
    assert got["categorical_value_coverage"].value == pytest.approx(1 / 2)  # kind "b" never produced


def test_rounds_are_detected_by_extension_and_first_record(tmp_path):
    graph = tmp_path / "g.jsonl"
    graph.write_text('{"edges": [[1, 2]]}\n')
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"image": "a.png", "caption": "a cat"}\n')
    records = tmp_path / "r.jsonl"
    records.write_text('{"category": "x"}\n')
    assert detect_modality(DATA / "log_reference.log") == "log"
    assert detect_modality(DATA / "image_text_reference.npz") == "image_text"
    assert (detect_modality(graph), detect_modality(manifest)) == ("graph", "image_text")
    assert detect_modality(records) == "text" and detect_modality(records, "json") == "json"  # named only
    with pytest.raises(InputError, match=r"modality log cannot read a \.jsonl file \(log reads \.log\)"):
        detect_modality(records, "log")


def test_a_manifest_without_an_encoder_is_refused_in_one_line(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"image": "a.png", "caption": "a cat"}\n')
    with pytest.raises(InputError) as info:
        MODALITY["image_text"].load(manifest, "round", 2, AuditOptions(modality="image_text"))
    assert str(info.value) == (f"{manifest} (round, round 2): a .jsonl image-text manifest needs --encoder "
                               "MODULE:FUNCTION to embed its images and captions (or give an .npz of embeddings)")


def test_image_text_rounds_from_another_encoder_dimension_are_refused(tmp_path):
    options = AuditOptions(modality="image_text", n_boot=0)
    kind = MODALITY["image_text"]
    reference = kind.load(DATA / "image_text_reference.npz", "reference", None, options)
    other = tmp_path / "round_1.npz"
    rng = np.random.default_rng(0)
    np.savez(other, image=rng.normal(size=(20, 8)), text=rng.normal(size=(20, 8)))
    round_ = kind.load(other, "round", 1, options, reference)
    with pytest.raises(InputError, match=r"round 1\): embeddings of dimension 8 \(image\) and 8 \(text\), but the "
                                         r"reference .* has 32 and 32; embed both with one encoder"):
        kind.check_pair(reference, round_, options, 1)


def _env(home, tmp_path) -> dict:
    env = dict(os.environ)
    env.update(COLLAPSE_MONITOR_HOME=str(home), PREFECT_HOME=str(tmp_path / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONUNBUFFERED="1")
    return env


@pytest.fixture
def prefect_api(tmp_path):
    """One real ``prefect server start`` for a test's several audits (a temporary API per command costs ~10 s)."""
    from processes import start_prefect_server, stop_server

    state = tmp_path / "prefect-server"
    state.mkdir()
    server, url = start_prefect_server(state)
    yield url
    stop_server(server)


def test_cli_audits_each_new_modality_and_refuses_a_bad_schema_in_one_line(home, tmp_path, prefect_api):
    env = {**_env(home, tmp_path), "PREFECT_API_URL": prefect_api}
    flags = {"json": ["--modality", "json", "--schema", str(DATA / "json_schema.json"), "--match-key", "id"],
             "graph": ["--constraints", str(DATA / "graph_constraints.toml")],
             "log": ["--log-pattern", LOG_PATTERN], "image_text": []}
    for modality, extra in flags.items():
        reference_name, round_name, _, falling = EXAMPLES[modality]
        done = subprocess.run(
            [sys.executable, "-m", "monitor.cli", "--home", str(home), "audit", f"{modality}-loop", "6",
             str(DATA / round_name.format(6)), "--reference", str(DATA / reference_name), "--bootstrap", "0",
             "--json", *extra],
            capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert 0.0 <= result["metrics"][falling]["value"] <= 1.0, modality
        assert 0.0 <= result["metrics"]["evidently_drift_share"]["value"] <= 1.0, modality  # every one has a report
    # Each round's Evidently HTML is logged to its MLflow run (the staged copy is then removed).
    reports = sorted(path.read_bytes()[:2000].lower().count(b"<html") for path in
                     (home / "mlartifacts").rglob("round_6.html"))
    assert reports == [1] * len(flags)
    # The JSON round's first schema violation per failing record, beside the round's plots (and in MLflow).
    violations = home / "reports" / "json-loop" / "round_6" / "schema_violations.jsonl"
    rows = [json.loads(line) for line in violations.read_text().splitlines()]
    from monitor.inputs.json_records import load_json_records
    from metrics_core.json_records import schema_violations

    expected = schema_violations(list(load_json_records(DATA / "json_rounds/round_6.jsonl", "round").records),
                                 json.loads((DATA / "json_schema.json").read_text()))
    assert rows == [{"record": i, "violation": v} for i, v in enumerate(expected, 1) if v is not None] and rows
    logged = list((home / "mlartifacts").rglob("schema_violations.jsonl"))  # the round's MLflow run's artifacts
    assert len(logged) == 1 and logged[0].read_bytes() == violations.read_bytes()
    bad = tmp_path / "schema.json"
    bad.write_text('{"type": 12}')
    refused = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "--home", str(home), "audit", "json-loop", "4",
         str(DATA / "json_rounds/round_4.jsonl"), "--reference", str(DATA / "json_reference.jsonl"), "--modality",
         "json", "--schema", str(bad), "--bootstrap", "0", "--json"],
        capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode == 1 and refused.stdout == ""
    assert len(refused.stderr.splitlines()) == 1 and str(bad) in refused.stderr


def test_structured_captions_get_their_well_formed_rate_against_a_schema(tmp_path):
    rng = np.random.default_rng(0)
    captions = np.array(['{"objects": ["cat"]}'] * 15 + ["a cat"] * 5)
    for name in ("ref.npz", "round_1.npz"):
        np.savez(tmp_path / name, image=rng.normal(size=(20, 8)), text=rng.normal(size=(20, 8)), caption=captions)
    schema = tmp_path / "caption.schema.json"
    schema.write_text('{"type": "object", "required": ["objects"]}')
    kind = MODALITY["image_text"]
    options = AuditOptions(modality="image_text", n_boot=0, k=3, schema_path=str(schema))
    kind.check_option_files(None, str(schema))
    with pytest.raises(InputError, match="--constraints is for tabular and graph rounds"):
        kind.check_option_files(str(schema), None)
    reference = kind.load(tmp_path / "ref.npz", "reference", None, options)
    pipe = AuditPipeline("image_text", reference.data, **options.pipeline_options())
    got = pipe.modality_metrics(kind.load(tmp_path / "round_1.npz", "round", 1, options, reference).data)
    assert got["well_formed_rate"].value == pytest.approx(15 / 20)


def test_a_json_round_with_no_number_left_in_a_numeric_field_leaves_the_tabular_suite_out(tmp_path, caplog):
    reference = tmp_path / "ref.jsonl"
    reference.write_text("".join(json.dumps({"kind": "ab"[i % 2], "score": i * 0.137 + i % 7})
                                 + "\n" for i in range(80)))
    round_ = tmp_path / "round.jsonl"
    round_.write_text("".join(json.dumps({"kind": "a", "score": "high"}) + "\n" for _ in range(12)))
    options = AuditOptions(modality="json", n_boot=0, k=3)
    kind = MODALITY["json"]
    ref = kind.load(reference, "reference", None, options)
    pipe = AuditPipeline("json", ref.data, **options.pipeline_options())
    with caplog.at_level("WARNING", logger="collapse_monitor.json"):
        got = pipe.modality_metrics(kind.load(round_, "round", 2, options, ref).data, round_where="round 2")
    assert "ks_mean" not in got and got["categorical_value_coverage"].value == pytest.approx(1 / 2)
    assert "round 2: flattened fields: numeric field 'score' has no number in this round" in caplog.text


# ---------------------------------------------------------------- Evidently reports of graph, image-text, embedding


def _drift(modality, reference, round_, html_path=None):
    """The modality's report as the flow's ``drift_report`` task asks for it (these ignore the embeddings)."""
    return MODALITY[modality].drift_report(reference, round_, reference_embeddings=None, round_embeddings=None,
                                           columns=None, html_path=html_path, seed=0)


def test_every_modality_builds_a_drift_report_and_says_what_it_tests():
    views = {name: kind.drift_view for name, kind in MODALITY.items()}
    assert all(kind.reports_drift for kind in MODALITY.values())
    assert views == {"embedding": "embedding", "text": "text", "tabular": "table", "reasoning": "text",
                     "agent": "text", "json": "text", "graph": "graph", "log": "text", "image_text": "image_text"}


def _graph_objects(seed, n, n_nodes, p):
    import networkx as nx

    rng = np.random.default_rng(seed)
    graphs = [nx.gnp_random_graph(int(rng.integers(*n_nodes)), p, seed=int(rng.integers(2**31))) for _ in range(n)]
    return [{"nodes": list(g.nodes), "edges": [list(e) for e in g.edges]} for g in graphs]


def test_a_graph_round_gets_an_evidently_report_on_its_per_graph_descriptors(tmp_path):
    from monitor.inputs.graphs import graphs_from_objects
    from monitor.publishing.evidently_report import GRAPH_DESCRIPTOR_COLUMNS

    reference = graphs_from_objects(_graph_objects(1, 150, (15, 26), 0.15), "reference")
    steady = _drift("graph", reference, graphs_from_objects(_graph_objects(2, 150, (15, 26), 0.15), "round 1"))
    assert list(steady.per_column) == list(GRAPH_DESCRIPTOR_COLUMNS) and steady.drift_share == 0.0
    html = tmp_path / "reports" / "round_2.html"
    bigger = _drift("graph", reference, graphs_from_objects(_graph_objects(3, 150, (60, 81), 0.5), "round 2"), html)
    assert (bigger.drift_share, bigger.drifted_columns) == (1.0, 6)  # much larger and denser: every descriptor
    assert bigger.html_path == html and html.stat().st_size > 100_000
    assert "mean_clustering" in html.read_text(encoding="utf-8")


def test_an_image_text_round_gets_an_evidently_report_on_both_sides_and_its_captions(tmp_path):
    from monitor.inputs.pairs import pairs_from_arrays

    rng = np.random.default_rng(5)
    words = ["cat", "dog", "car", "tree", "boat", "chair", "red", "small", "old", "on", "a", "the", "grass"]

    def pairs(n, image_shift=0.0, spread=1.0, caption_words=(4, 12), captions=True, where="round"):
        texts = [" ".join(rng.choice(words, size=rng.integers(*caption_words))) + "." for _ in range(n)]
        return pairs_from_arrays(spread * rng.normal(size=(n, 24)) + image_shift, spread * rng.normal(size=(n, 24)),
                                 texts if captions else None, where=where)

    reference = pairs(200, where="reference")
    steady = _drift("image_text", reference, pairs(200))
    # 37 tests at 5%: a round of the reference's distribution drifts about 2 columns on average; this one, 1.
    assert steady.n_columns == 16 + 16 + 5 and steady.drift_share == 1 / 37
    shifted = _drift("image_text", reference, pairs(200, image_shift=4.0))  # 4 SDs on every image coordinate
    drifted = [c for c, v in shifted.per_column.items() if v["drifted"]]
    # Image side: the one direction that moved. Text side, same distribution: 2 columns by chance, as above.
    assert [c for c in drifted if c.startswith("image_")] == ["image_pc_01"]
    assert [c for c in drifted if not c.startswith("image_")] == ["text_pc_12", "text_pc_14"]
    html = tmp_path / "round_3.html"
    collapsed = _drift("image_text", reference, pairs(200, image_shift=4.0, spread=0.3, caption_words=(1, 3)), html)
    # Every column but the captions' sentence count, 1 on both sides (one sentence each).
    assert [c for c, v in collapsed.per_column.items() if not v["drifted"]] == ["caption_sentence_count"]
    assert (collapsed.drift_share, collapsed.drifted_columns) == (36 / 37, 36)
    assert html.stat().st_size > 100_000 and "caption_word_count" in html.read_text(encoding="utf-8")
    # A round without captions is compared on its embeddings alone.
    uncaptioned = _drift("image_text", reference, pairs(200, captions=False))
    assert uncaptioned.n_columns == 32 and not any(c.startswith("caption_") for c in uncaptioned.per_column)


def test_an_embedding_round_gets_an_evidently_report_on_its_pooled_components(tmp_path):
    from monitor.publishing.evidently_report import embedding_drift_report

    rng = np.random.default_rng(3)
    reference, same = rng.normal(size=(300, 32)), rng.normal(size=(300, 32))
    steady = _drift("embedding", reference, same)
    assert steady == embedding_drift_report(reference, same) and steady.drift_share <= 2 / 16
    html = tmp_path / "round_1.html"
    collapsed = _drift("embedding", reference, 0.3 * rng.normal(size=(300, 32)) + 4.0, html)
    assert (collapsed.drift_share, collapsed.drifted_columns, collapsed.n_columns) == (1.0, 16, 16)
    assert html.stat().st_size > 100_000 and "embedding_pc_16" in html.read_text(encoding="utf-8")


@pytest.mark.parametrize("modality, shares", [("graph", (1 / 6, 4 / 6)), ("image_text", (0.0, 12 / 37))])
def test_the_shipped_collapsing_example_drifts_more_by_round_6(modality, shares):
    reference_name, round_name, extra, _ = EXAMPLES[modality]
    options = AuditOptions(modality=modality, n_boot=0, **extra)
    kind = MODALITY[modality]
    reference = kind.load(DATA / reference_name, "reference", None, options)
    got = tuple(_drift(modality, reference.data, kind.load(DATA / round_name.format(g), "round", g, options,
                                                             reference).data).drift_share for g in (0, 6))
    # graph round 0: one of its 40 graphs has 2 components, a count no reference graph has, and Evidently's
    # chi-square (a column of at most 5 values) flags any value the reference lacks.
    assert got == pytest.approx(shares, abs=1e-12)
