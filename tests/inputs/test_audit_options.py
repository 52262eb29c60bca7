"""``AuditOptions``: the audit options written once, for the flow, the CLI, the API, watch and backfill."""

from __future__ import annotations

import pydantic
import pytest

from monitor.audit_defaults import AUDIT_DEFAULTS
from monitor.options import AuditOptions


def test_the_defaults_are_written_once_and_the_cli_parser_uses_them():
    from monitor import modalities
    from monitor.cli import build_parser

    assert AuditOptions().model_dump() == AUDIT_DEFAULTS
    assert AUDIT_DEFAULTS["featurizer"] == modalities.HASHING
    args = build_parser().parse_args(["audit", "lp", "0", "round.npy", "--reference", "ref.npy"])
    parsed = {"k": args.k, "n_boot": args.bootstrap, "seed": args.seed, "max_samples": args.max_samples,
              "allow_size_change": args.allow_size_change, "modality": args.modality, "text_field": args.text_field,
              "featurizer": args.featurizer, "protected_attribute": args.protected_attribute,
              "constraints_path": args.constraints, "schema_path": args.schema, "null_rounds": args.null_rounds,
              "question_field": args.question_field, "answer_field": args.answer_field,
              "rationale_field": args.rationale_field, "passed_field": args.passed_field,
              "code_language": args.code_language, "verifier": args.verifier,
              "verifier_timeout": args.verifier_timeout, "match_key": args.match_key,
              "log_pattern": args.log_pattern, "encoder": args.encoder}
    assert parsed == AUDIT_DEFAULTS


def test_the_null_and_the_pipeline_see_the_same_options_as_before():
    # The null's key hashes null_options(): these keys and values, or every stored null would be rebuilt.
    o = AuditOptions(k=7, n_boot=0, seed=3, featurizer="hashing", text_field="answer", max_samples=500)
    assert o.null_options() == {"k": 7, "seed": 3, "featurizer": "hashing", "text_field": "answer",
                                "max_samples": 500, "protected_attribute": None, "constraints_path": None,
                                "schema_path": None}
    assert o.pipeline_options() == {"k": 7, "n_boot": 0, "seed": 3, "featurizer": "hashing",
                                    "protected_attribute": None, "constraints_path": None, "schema_path": None,
                                    "code_language": None, "verifier": None, "verifier_timeout": 10.0,
                                    "match_key": None}
    # A modality's own options join the key only when set (a reasoning loop's field names, a log pattern).
    o = AuditOptions(question_field="qid", log_pattern="^(?P<severity>[A-Z]+)", verifier_timeout=3.0)
    assert {k: v for k, v in o.null_options().items() if k not in AuditOptions().null_options()} == {
        "question_field": "qid", "log_pattern": "^(?P<severity>[A-Z]+)"}


def test_a_recorded_round_is_re_audited_with_the_same_options():
    o = AuditOptions(k=4, n_boot=20, constraints_path="/data/c.toml", null_rounds=400)
    record = o.record("tabular", "/data/pool.csv", "pool")
    assert record["modality"] == "tabular" and record["pool_path"] == "/data/pool.csv"
    again, extras = AuditOptions.from_record(record)
    assert again == o.model_copy(update={"modality": "tabular"})
    assert extras == {"pool_path": "/data/pool.csv", "pool_source": "pool"}
    with pytest.raises(pydantic.ValidationError, match="typo"):
        AuditOptions.from_record({**record, "typo": 1})


def test_bad_options_are_refused_and_options_are_frozen():
    for bad in ({"k": 0}, {"n_boot": -1}, {"seed": -2}, {"max_samples": 0}, {"modality": "audio"},
                {"null_rounds": 0}, {"bootstrap": 10}, {"verifier": "checks.py"}, {"verifier": "a:b:c"},
                {"verifier_timeout": 0}, {"encoder": "enc.py"}, {"match_key": ""}, {"log_pattern": ""}):
        with pytest.raises(pydantic.ValidationError):
            AuditOptions(**bad)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        AuditOptions().k = 3
