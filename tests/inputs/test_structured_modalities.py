"""JSON records, graphs, log lines and image-text pairs as round modalities: the shipped examples through the
pipeline (their metrics move the documented way from round 0 to round 6), detection, the modality's own
one-line refusals, and the CLI end to end."""

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


def test_cli_audits_each_new_modality_and_refuses_a_bad_schema_in_one_line(home, tmp_path):
    flags = {"json": ["--modality", "json", "--schema", str(DATA / "json_schema.json"), "--match-key", "id"],
             "graph": ["--constraints", str(DATA / "graph_constraints.toml")],
             "log": ["--log-pattern", LOG_PATTERN], "image_text": []}
    for modality, extra in flags.items():
        reference_name, round_name, _, falling = EXAMPLES[modality]
        done = subprocess.run(
            [sys.executable, "-m", "monitor.cli", "--home", str(home), "audit", f"{modality}-loop", "6",
             str(DATA / round_name.format(6)), "--reference", str(DATA / reference_name), "--bootstrap", "0",
             "--json", *extra],
            capture_output=True, text=True, env=_env(home, tmp_path), timeout=300)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert 0.0 <= result["metrics"][falling]["value"] <= 1.0, modality
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
        capture_output=True, text=True, env=_env(home, tmp_path), timeout=300)
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
