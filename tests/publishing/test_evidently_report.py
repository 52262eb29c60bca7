"""Tests of the Evidently drift reports (monitor.publishing.evidently_report, evidently_snapshot)."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from sklearn.decomposition import PCA

from monitor.publishing.evidently_report import (
    DRIFT_SHARE_METRIC,
    GRAPH_DESCRIPTOR_COLUMNS,
    TEXT_DESCRIPTOR_COLUMNS,
    DriftReport,
    embedding_drift_report,
    graph_descriptors,
    graph_drift_report,
    image_text_drift_report,
    pooled_components,
    _subsample,
    tabular_drift_report,
    text_descriptors,
    text_drift_report,
)
from monitor.publishing.evidently_snapshot import drift_share_from_dict, per_column_drift_from_dict

WORDS = "the model writes short answers about data and every round copies its own output again".split()


def _frame(rng, n, shift=None, columns=("x1", "x2", "x3", "x4")):
    shift = shift or {}
    df = pd.DataFrame({c: rng.normal(size=n) + shift.get(c, 0.0) for c in columns})
    df["kind"] = rng.choice(list("abc"), size=n)
    return df


def _texts(rng, n, low, high):
    return [" ".join(rng.choice(WORDS, size=rng.integers(low, high))) + "." for _ in range(n)]


def _evidently_chi_square_p(ref: pd.Series, cur: pd.Series) -> float:
    """Evidently's chi-square: round counts against reference counts scaled to the round size."""
    keys = sorted(set(ref) | set(cur))
    expected = np.array([(ref == k).sum() for k in keys]) * len(cur) / len(ref)
    observed = np.array([(cur == k).sum() for k in keys])
    return float(scipy.stats.chisquare(observed, expected).pvalue)


def _run_preset_dict(reference: pd.DataFrame, current: pd.DataFrame, numeric, categorical) -> dict:
    """A DataDriftPreset report's Snapshot.dict(), built here straight from Evidently."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=numeric, categorical_columns=categorical,
        text_columns=[], datetime_columns=[], unknown_columns=[], list_columns=[],
    )
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    return json.loads(snapshot.json())  # what a stored report holds: plain JSON types


# ---------------------------------------------------------------- tabular


def test_reference_against_itself_has_no_drift():
    ref = _frame(np.random.default_rng(1), 200)
    report = tabular_drift_report(ref, ref.copy())
    assert (report.drift_share, report.drifted_columns, report.n_columns) == (0.0, 0, 5)
    assert list(report.per_column) == ["x1", "x2", "x3", "x4", "kind"]
    assert all(v["score"] == 1.0 and not v["drifted"] for v in report.per_column.values())
    assert report.html_path is None
    assert report.as_metrics() == {DRIFT_SHARE_METRIC: 0.0}
    assert DRIFT_SHARE_METRIC == "evidently_drift_share"


def test_same_distribution_constructed_case_matches_scipy():
    rng = np.random.default_rng(0)
    ref, cur = _frame(rng, 300), _frame(rng, 300)
    report = tabular_drift_report(ref, cur)
    # Independent: K-S (drift at p <= 0.05) and Evidently's chi-square (p < 0.05) with scipy.
    expected_p = {c: scipy.stats.ks_2samp(ref[c], cur[c]).pvalue for c in ["x1", "x2", "x3", "x4"]}
    expected_p["kind"] = _evidently_chi_square_p(ref["kind"], cur["kind"])
    for column, p in expected_p.items():
        assert report.per_column[column]["score"] == pytest.approx(p, rel=1e-9)
    assert report.per_column["x1"]["score"] == pytest.approx(0.21005749381264038, rel=1e-9)
    assert report.per_column["kind"]["stat_test"] == "chi-square p_value"
    assert {v["stat_test"] for c, v in report.per_column.items() if c != "kind"} == {"K-S p_value"}
    assert report.drift_share == 0.0 and report.drifted_columns == 0 and report.n_columns == 5


def test_shifted_columns_drift_and_share_is_shifted_over_total():
    rng = np.random.default_rng(2)
    ref = _frame(rng, 300)
    cur = _frame(rng, 300, shift={"x2": 1.5, "x4": -1.5})
    report = tabular_drift_report(ref, cur)
    drifted = {c for c, v in report.per_column.items() if v["drifted"]}
    assert drifted == {"x2", "x4"}
    assert (report.drift_share, report.drifted_columns, report.n_columns) == (2 / 5, 2, 5)
    p_values = {c: scipy.stats.ks_2samp(ref[c], cur[c]).pvalue for c in ["x1", "x2", "x3", "x4"]}
    p_values["kind"] = _evidently_chi_square_p(ref["kind"], cur["kind"])
    assert {c for c, p in p_values.items() if p <= 0.05} == drifted


def test_above_1000_rows_evidently_switches_to_normed_wasserstein():
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(size=1200), "y": rng.normal(size=1200)})
    cur = pd.DataFrame({"x": rng.normal(size=1100) + 0.5, "y": rng.normal(size=1100)})
    report = tabular_drift_report(ref, cur)
    for c in ["x", "y"]:
        expected = scipy.stats.wasserstein_distance(ref[c], cur[c]) / np.std(ref[c])
        assert report.per_column[c]["stat_test"] == "Wasserstein distance (normed)"
        assert report.per_column[c]["score"] == pytest.approx(expected, rel=1e-9)
        assert report.per_column[c]["drifted"] == (expected >= 0.1)
    assert (report.drift_share, report.drifted_columns) == (0.5, 1)


def test_column_types_are_explicit_not_guessed():
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"code": rng.integers(0, 10, 200), "v": rng.normal(size=200)})
    cur = pd.DataFrame({"code": rng.integers(0, 10, 200), "v": rng.normal(size=200)})
    as_categorical = tabular_drift_report(ref, cur, categorical_columns=["code"])
    assert as_categorical.per_column["code"]["stat_test"] == "chi-square p_value"
    assert as_categorical.per_column["v"]["stat_test"] == "K-S p_value"
    by_dtype = tabular_drift_report(ref, cur)
    assert by_dtype.per_column["code"]["stat_test"] == "K-S p_value"
    only = tabular_drift_report(ref, cur, columns=["v"])
    assert list(only.per_column) == ["v"] and only.n_columns == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"columns": ["missing"]}, "round_df: missing columns"),
        ({"numeric_columns": ["label"]}, "numeric column 'label': expected a numeric dtype"),
        ({"numeric_columns": ["v"], "categorical_columns": ["v", "label"]}, "in both numeric_columns"),
        ({"numeric_columns": ["v"], "categorical_columns": []}, "have no type"),
        ({"categorical_columns": ["nope"]}, "not among the report columns"),
        ({"max_rows": 1}, "max_rows: expected None or an integer >= 2"),
    ],
)
def test_tabular_input_errors(kwargs, message):
    ref = pd.DataFrame({"v": [1.0, 2.0, 3.0], "label": ["a", "b", "a"]})
    cur = ref.copy() if "columns" not in kwargs else ref.drop(columns=["v"]).assign(other=1)
    if "columns" in kwargs:
        ref = ref.assign(missing=0.0)
    with pytest.raises(ValueError, match=re.escape(message)):
        tabular_drift_report(ref, cur, **kwargs)


def test_tabular_frame_errors():
    good = pd.DataFrame({"v": [1.0, 2.0]})
    with pytest.raises(ValueError, match="reference_df: expected a pandas DataFrame, got ndarray"):
        tabular_drift_report(np.zeros((2, 1)), good)
    with pytest.raises(ValueError, match=re.escape("round_df: expected a non-empty DataFrame, got shape (0, 1)")):
        tabular_drift_report(good, good.iloc[:0])
    with pytest.raises(ValueError, match=re.escape("round_df: expected unique column names, got duplicates ['v']")):
        tabular_drift_report(good, pd.concat([good, good], axis=1))


def test_max_rows_subsample_is_seeded():
    df = pd.DataFrame({"v": np.arange(100.0)}, index=np.arange(100) * 7)
    a = _subsample(df, 30, np.random.default_rng(5))
    b = _subsample(df, 30, np.random.default_rng(5))
    assert len(a) == 30 and a.equals(b) and list(a.index) == list(range(30))
    assert a["v"].is_monotonic_increasing and a["v"].is_unique and set(a["v"]) <= set(df["v"])
    assert _subsample(df, 200, np.random.default_rng(5))["v"].tolist() == df["v"].tolist()
    rng = np.random.default_rng(6)
    ref, cur = _frame(rng, 400), _frame(rng, 400, shift={"x1": 2.0})
    first = tabular_drift_report(ref, cur, max_rows=100, seed=9)
    assert first == tabular_drift_report(ref, cur, max_rows=100, seed=9)
    assert first.per_column["x1"]["drifted"] and first.per_column["x1"]["stat_test"] == "K-S p_value"


# ---------------------------------------------------------------- HTML


def test_html_is_saved_with_parent_dirs_and_column_names(tmp_path):
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"feature_alpha": rng.normal(size=100), "segment_kind": rng.choice(list("ab"), 100)})
    cur = pd.DataFrame({"feature_alpha": rng.normal(size=100), "segment_kind": rng.choice(list("ab"), 100)})
    path = tmp_path / "round_003" / "evidently" / "drift.html"
    report = tabular_drift_report(ref, cur, html_path=path)
    assert report.html_path == path and path.is_file()
    html = path.read_text(encoding="utf-8")
    assert len(html) > 100_000 and html.lstrip().lower().startswith("<!doctype html>")
    assert "feature_alpha" in html and "segment_kind" in html
    as_string = tmp_path / "str" / "drift.html"
    assert tabular_drift_report(ref, cur, html_path=str(as_string)).html_path == as_string and as_string.is_file()


# ---------------------------------------------------------------- dict parsing


def test_drift_share_from_dict_matches_per_column_and_raw_dict():
    rng = np.random.default_rng(8)
    ref = _frame(rng, 250)
    cur = _frame(rng, 250, shift={"x1": 1.0, "x3": 1.0})
    d = _run_preset_dict(ref, cur, ["x1", "x2", "x3", "x4"], ["kind"])
    share, drifted, n_columns = drift_share_from_dict(d)
    raw = next(m["value"] for m in d["metrics"] if m["metric_name"].startswith("DriftedColumnsCount"))
    assert (share, drifted) == (raw["share"], raw["count"])
    per_column = per_column_drift_from_dict(d)
    flags = [v["drifted"] for v in per_column.values()]
    assert n_columns == len(per_column) == 5
    assert share == sum(flags) / len(flags) and drifted == sum(flags)
    # The verdicts also follow the scores: every test here is a p-value test.
    assert flags == [v["score"] <= v["threshold"] for v in per_column.values()]
    assert (share, drifted) == (2 / 5, 2)
    report = tabular_drift_report(ref, cur)
    assert (report.drift_share, report.drifted_columns, report.n_columns) == (share, drifted, n_columns)
    assert report.per_column == per_column


def _count(count, share):
    return {"id": "c", "config": {"type": "evidently:metric_v2:DriftedColumnsCount"},
            "value": {"count": count, "share": share}}


def _value_drift(column, metric_id):
    return {"id": metric_id, "value": 0.5,
            "config": {"type": "evidently:metric_v2:ValueDrift", "column": column, "method": "K-S p_value",
                       "threshold": 0.05}}


@pytest.mark.parametrize(
    ("d", "message"),
    [
        ([1, 2], "expected a mapping (Snapshot.dict()), got list"),
        ({"results": []}, "expected a 'metrics' list, got keys ['results']"),
        ({"metrics": ["x"]}, "metrics[0]: expected a mapping, got str"),
        ({"metrics": [{"value": 1}]}, "metrics[0]: expected 'config' with a 'type' string, got keys ['value']"),
        ({"metrics": [_value_drift("a", "m")]}, "found 0 among metric types ['ValueDrift']"),
        ({"metrics": [_count(0, 0.0), _count(0, 0.0)]}, "expected exactly one DriftedColumnsCount metric, found 2"),
        ({"metrics": [{**_count(0, 0.0), "value": 0.3}]}, "expected keys 'count' and 'share', got float"),
        ({"metrics": [{**_count(0, 0.0), "value": {"share": 0.3}}]},
         "expected keys 'count' and 'share', got ['share']"),
        ({"metrics": [_count(1, float("nan")), _value_drift("a", "m")]}, "expected finite numbers"),
        ({"metrics": [_count(0, 0.0)]}, "no ValueDrift metrics"),
        ({"metrics": [_count(1, 0.25), _value_drift("a", "m"), _value_drift("b", "n")]}, "inconsistent with 2"),
    ],
)
def test_drift_share_from_dict_rejects_malformed_dicts(d, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        drift_share_from_dict(d)


def test_per_column_drift_from_dict_needs_the_drift_tests():
    d = {"metrics": [_count(0, 0.0), _value_drift("a", "m")], "tests": []}
    assert drift_share_from_dict(d) == (0.0, 0, 1)
    with pytest.raises(ValueError, match=re.escape("column 'a': expected a 'drift' test with status FAIL or SUCCESS")):
        per_column_drift_from_dict(d)
    with pytest.raises(ValueError, match=re.escape("expected a 'tests' list, got keys ['metrics']")):
        per_column_drift_from_dict({"metrics": []})
    broken = copy.deepcopy(d)
    del broken["metrics"][1]["config"]["method"]
    with pytest.raises(ValueError, match=re.escape("missing ['method']")):
        per_column_drift_from_dict(broken)
    d["tests"] = [{"id": "drift", "status": "FAIL", "metric_config": {"metric_id": "m"}}]
    assert per_column_drift_from_dict(d)["a"]["drifted"] is True


# ---------------------------------------------------------------- text descriptors


def test_text_descriptors_hand_computed():
    got = text_descriptors(["Café déjà vu!", "Wait... what?! Yes.", "", "   ", "no end punctuation here"])
    assert list(got.columns) == list(TEXT_DESCRIPTOR_COLUMNS)
    expected = [
        [13, 3, 11 / 3, 1, 1 / 11],
        [19, 3, 17 / 3, 3, 6 / 17],
        [0, 0, 0, 0, 0],
        [3, 0, 0, 0, 0],
        [23, 4, 5, 1, 0],
    ]
    np.testing.assert_allclose(got.to_numpy(), np.array(expected, dtype=float), rtol=0, atol=1e-12)


def _naive_descriptors(text: str) -> list[float]:
    """Character-by-character scan, written independently of the regex/split version."""
    words, current = [], ""
    for ch in text + " ":
        if ch.isspace():
            if current:
                words.append(current)
            current = ""
        else:
            current += ch
    sentences, piece, i = 0, "", 0
    while i < len(text):
        piece += text[i]
        if text[i] in ".!?" and i + 1 < len(text) and text[i + 1].isspace():
            sentences += bool(piece.strip())
            piece = ""
            while i + 1 < len(text) and text[i + 1].isspace():
                i += 1
        i += 1
    sentences += bool(piece.strip())
    visible = [ch for ch in text if not ch.isspace()]
    non_letters = [ch for ch in visible if not ch.isalpha()]
    return [
        len(text),
        len(words),
        sum(len(w) for w in words) / len(words) if words else 0.0,
        sentences,
        len(non_letters) / len(visible) if visible else 0.0,
    ]


def test_text_descriptors_match_naive_scan_on_random_text():
    rng = np.random.default_rng(10)
    alphabet = list("abcXYZ éß12,.!? \t\n") + ["...", "?! ", ". "]
    texts = ["".join(rng.choice(alphabet, size=rng.integers(0, 60))) for _ in range(300)]
    got = text_descriptors(texts).to_numpy()
    expected = np.array([_naive_descriptors(t) for t in texts], dtype=float)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- text drift


def test_much_shorter_texts_drift_on_length_descriptors():
    rng = np.random.default_rng(11)
    ref, same, short = _texts(rng, 200, 30, 60), _texts(rng, 200, 30, 60), _texts(rng, 200, 3, 8)
    steady = text_drift_report(ref, same)
    assert list(steady.per_column) == list(TEXT_DESCRIPTOR_COLUMNS)
    assert not steady.per_column["text_length_chars"]["drifted"]
    assert not steady.per_column["word_count"]["drifted"]
    report = text_drift_report(ref, short)
    assert report.per_column["text_length_chars"]["drifted"] and report.per_column["word_count"]["drifted"]
    ref_len = text_descriptors(ref)["text_length_chars"]
    short_len = text_descriptors(short)["text_length_chars"]
    assert report.per_column["text_length_chars"]["score"] == pytest.approx(
        scipy.stats.ks_2samp(ref_len, short_len).pvalue, rel=1e-9, abs=1e-300
    )
    flags = [v["drifted"] for v in report.per_column.values()]
    assert report.n_columns == 5 and report.drift_share == sum(flags) / 5 and report.drifted_columns == sum(flags)


def test_embedding_columns_are_pooled_principal_components():
    rng = np.random.default_rng(12)
    ref, cur = rng.normal(size=(80, 6)), rng.normal(size=(50, 6)) + 0.3
    got_ref, got_cur = pooled_components(ref, cur, 3)
    expected = PCA(n_components=3).fit_transform(np.concatenate([ref, cur]))
    got = np.concatenate([got_ref, got_cur])
    signs = np.sign((got * expected).sum(axis=0))  # PCA axes are defined up to sign
    np.testing.assert_allclose(got, expected * signs, rtol=0, atol=1e-10)


def test_shifted_embeddings_drift_and_same_distribution_does_not():
    rng = np.random.default_rng(15)
    texts_ref, texts_cur = _texts(rng, 300, 10, 20), _texts(rng, 300, 10, 20)
    emb_ref = rng.normal(size=(300, 48)).astype(np.float32)
    emb_same = rng.normal(size=(300, 48)).astype(np.float32)
    emb_shifted = emb_same + np.r_[np.full(8, 1.0), np.zeros(40)].astype(np.float32)

    steady = text_drift_report(texts_ref, texts_cur, reference_embeddings=emb_ref, round_embeddings=emb_same,
                               max_embedding_dims=8)
    pcs = [f"embedding_pc_{j:02d}" for j in range(1, 9)]
    assert list(steady.per_column) == list(TEXT_DESCRIPTOR_COLUMNS) + pcs
    assert steady.n_columns == 13 and steady.drifted_columns == 0 and steady.drift_share == 0.0
    # Axes fitted on the reference alone are its own widest directions (variance ratio ~1.6 here);
    # pooled axes keep reference and round spreads alike.
    ref64, same64 = emb_ref.astype(np.float64), emb_same.astype(np.float64)
    axes = PCA(n_components=8).fit(ref64).components_.T
    mean = ref64.mean(axis=0)
    reference_fit_ratio = np.var((ref64 - mean) @ axes, axis=0) / np.var((same64 - mean) @ axes, axis=0)
    pooled_ref, pooled_same = pooled_components(ref64, same64, 8)
    pooled_ratio = np.var(pooled_ref, axis=0) / np.var(pooled_same, axis=0)
    assert reference_fit_ratio.mean() > 1.5 and 0.9 < pooled_ratio.mean() < 1.1

    shifted = text_drift_report(texts_ref, texts_cur, reference_embeddings=emb_ref, round_embeddings=emb_shifted,
                                max_embedding_dims=8)
    assert shifted.per_column["embedding_pc_01"]["drifted"]
    assert not any(shifted.per_column[c]["drifted"] for c in TEXT_DESCRIPTOR_COLUMNS)
    flags = [v["drifted"] for v in shifted.per_column.values()]
    assert shifted.drift_share == sum(flags) / 13 > 0


def test_raw_embedding_dimensions_when_not_reduced():
    rng = np.random.default_rng(14)
    texts = _texts(rng, 60, 5, 10)
    emb = rng.normal(size=(60, 3))
    report = text_drift_report(texts, texts, reference_embeddings=emb, round_embeddings=emb.copy(),
                               max_embedding_dims=None)
    assert list(report.per_column)[5:] == ["embedding_dim_000", "embedding_dim_001", "embedding_dim_002"]
    assert report.drift_share == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reference_texts": "one string"}, "reference_texts: expected a list of str, got a single str"),
        ({"round_texts": []}, "round_texts: expected a non-empty list of str, got an empty list"),
        ({"round_texts": ["a", 3]}, "round_texts[1]: expected str, got int"),
        ({"reference_embeddings": np.ones((3, 2))}, "expected both or neither, got reference_embeddings only"),
        ({"reference_embeddings": np.ones((3, 2)), "round_embeddings": np.ones((3, 4))},
         "round_embeddings: expected D=2 features to match reference_embeddings, got D=4"),
        ({"reference_embeddings": np.ones((3, 2)), "round_embeddings": np.ones((2, 2))},
         "round_embeddings: expected one row per text (3 rows), got 2"),
        ({"reference_embeddings": np.ones((3, 2), dtype=int), "round_embeddings": np.ones((3, 2))},
         "reference_embeddings: expected a float array, got dtype int64"),
        ({"max_embedding_dims": 0}, "max_embedding_dims: expected None or a positive integer, got 0"),
    ],
)
def test_text_input_errors(kwargs, message):
    args = {"reference_texts": ["a b.", "c d.", "e"], "round_texts": ["a.", "b c", "d"], **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        text_drift_report(**args)


# ---------------------------------------------------------------- embedding, graph and image-text reports


def _pc_names(prefix, k):
    return [f"{prefix}_pc_{j:02d}" for j in range(1, k + 1)]


def test_embedding_report_tests_the_pooled_components_and_a_mean_shift_moves_the_first():
    rng = np.random.default_rng(20)
    ref, same = rng.normal(size=(300, 48)), rng.normal(size=(300, 48))
    steady = embedding_drift_report(ref, same.astype(np.float32))
    assert list(steady.per_column) == _pc_names("embedding", 16)  # DEFAULT_EMBEDDING_DIMS, as the text report
    # Each column is a K-S test at 5%: a round of the reference's distribution drifts about 0.8 of 16 columns on
    # average; this one, 2.
    assert (steady.drift_share, steady.drifted_columns, steady.n_columns) == (2 / 16, 2, 16)
    # Several SDs along every coordinate: one direction, the first pooled axis; the other axes are orthogonal to
    # it, so the round's projections on them keep the reference's distribution.
    shifted_round = same + 4.0
    shifted = embedding_drift_report(ref, shifted_round)
    assert [c for c, v in shifted.per_column.items() if v["drifted"]] == ["embedding_pc_01"]
    assert shifted.drift_share == 1 / 16
    ref_pc, cur_pc = pooled_components(ref, shifted_round, 16)
    for j in (0, 5):  # independent: K-S on the pooled projections, as Evidently tests them at 300 rows
        column = f"embedding_pc_{j + 1:02d}"
        assert shifted.per_column[column]["stat_test"] == "K-S p_value"
        assert shifted.per_column[column]["score"] == pytest.approx(
            scipy.stats.ks_2samp(ref_pc[:, j], cur_pc[:, j]).pvalue, rel=1e-9, abs=1e-300)
    # A round collapsing onto a tighter cloud (a third of the spread) away from the reference: every axis moves.
    collapsed = embedding_drift_report(ref, 0.3 * same + 4.0, max_embedding_dims=8)
    assert list(collapsed.per_column) == _pc_names("embedding", 8)
    assert (collapsed.drift_share, collapsed.drifted_columns) == (1.0, 8)
    raw = embedding_drift_report(ref[:, :3], same[:, :3], max_embedding_dims=None)
    assert list(raw.per_column) == ["embedding_dim_000", "embedding_dim_001", "embedding_dim_002"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"round_embeddings": np.ones((3, 4))},
         "round_embeddings: expected D=2 features to match reference_embeddings, got D=4"),
        ({"reference_embeddings": np.ones((3, 2), dtype=int)},
         "reference_embeddings: expected a float array, got dtype int64"),
        ({"max_embedding_dims": 0}, "max_embedding_dims: expected None or a positive integer, got 0"),
        ({"max_rows": 1}, "max_rows: expected None or an integer >= 2, got 1"),
    ],
)
def test_embedding_input_errors(kwargs, message):
    args = {"reference_embeddings": np.ones((3, 2)), "round_embeddings": np.ones((3, 2)), **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        embedding_drift_report(**args)


def test_graph_descriptors_hand_computed():
    import networkx as nx

    triangle_and_isolated = nx.cycle_graph(3)
    triangle_and_isolated.add_node(3)
    directed = nx.DiGraph([(0, 1), (1, 0), (1, 1), (1, 2)])  # simple undirected view: the path 0-1-2
    single = nx.Graph()
    single.add_node("x")
    got = graph_descriptors([nx.cycle_graph(3), nx.path_graph(4), triangle_and_isolated, directed, single])
    assert list(got.columns) == list(GRAPH_DESCRIPTOR_COLUMNS) and got.dtypes.eq(np.float64).all()
    expected = [
        # nodes, edges, density 2m/(n(n-1)), mean degree 2m/n, mean clustering, components
        [3, 3, 1.0, 2.0, 1.0, 1],  # triangle: every pair linked, every node's two neighbours linked
        [4, 3, 0.5, 1.5, 0.0, 1],  # path: 3 of 6 pairs, no triangle
        [4, 3, 0.5, 1.5, 0.75, 2],  # the triangle's nodes count 1, the isolated node 0
        [3, 2, 2 / 3, 4 / 3, 0.0, 1],  # reciprocal edges are one edge, the self-loop is dropped
        [1, 0, 0.0, 0.0, 0.0, 1],
    ]
    np.testing.assert_allclose(got.to_numpy(), np.array(expected, dtype=float), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=re.escape("graphs[1]: expected a graph with at least one node")):
        graph_descriptors([nx.path_graph(2), nx.Graph()])
    with pytest.raises(ValueError, match=re.escape("graphs[0]: expected a networkx Graph or DiGraph, got MultiGraph")):
        graph_descriptors([nx.MultiGraph([(0, 1)])])


def _random_graphs(seed, n, n_nodes, p):
    import networkx as nx

    rng = np.random.default_rng(seed)
    return [nx.gnp_random_graph(int(rng.integers(*n_nodes)), p, seed=int(rng.integers(2**31))) for _ in range(n)]


def test_graph_report_tests_each_descriptor_and_much_denser_or_larger_graphs_drift():
    reference = _random_graphs(1, 150, (15, 26), 0.15)
    steady = graph_drift_report(reference, _random_graphs(2, 150, (15, 26), 0.15))
    assert list(steady.per_column) == list(GRAPH_DESCRIPTOR_COLUMNS)
    assert (steady.drift_share, steady.drifted_columns, steady.n_columns) == (0.0, 0, 6)
    denser_round = _random_graphs(3, 150, (15, 26), 0.5)
    denser = graph_drift_report(reference, denser_round)
    # The same sizes, many more edges: everything drifts but the node count.
    assert [c for c, v in denser.per_column.items() if not v["drifted"]] == ["node_count"]
    assert denser.drift_share == 5 / 6
    ref_d, cur_d = graph_descriptors(reference), graph_descriptors(denser_round)
    for column in ("node_count", "mean_clustering"):  # independent: K-S on the descriptors
        assert denser.per_column[column]["stat_test"] == "K-S p_value"
        assert denser.per_column[column]["score"] == pytest.approx(
            scipy.stats.ks_2samp(ref_d[column], cur_d[column]).pvalue, rel=1e-9, abs=1e-300)
    larger = graph_drift_report(reference, _random_graphs(4, 150, (60, 81), 0.15))
    assert (larger.drift_share, larger.drifted_columns) == (1.0, 6)


def _captions(rng, n, low, high):
    return [" ".join(rng.choice(WORDS, size=rng.integers(low, high))) for _ in range(n)]


def test_image_text_report_tests_both_sides_and_the_captions():
    rng = np.random.default_rng(21)
    image, text = rng.normal(size=(200, 24)), rng.normal(size=(200, 24))
    same_image, same_text = rng.normal(size=(200, 24)), rng.normal(size=(200, 24))
    captions, same_captions = _captions(rng, 200, 4, 12), _captions(rng, 200, 4, 12)
    columns = _pc_names("image", 16) + _pc_names("text", 16) + [f"caption_{c}" for c in TEXT_DESCRIPTOR_COLUMNS]
    steady = image_text_drift_report(image, same_image, text, same_text, reference_captions=captions,
                                     round_captions=same_captions)
    assert list(steady.per_column) == columns
    assert (steady.drift_share, steady.drifted_columns, steady.n_columns) == (0.0, 0, 37)
    shifted = image_text_drift_report(image, same_image + 4.0, text, same_text, reference_captions=captions,
                                      round_captions=same_captions)
    assert [c for c, v in shifted.per_column.items() if v["drifted"]] == ["image_pc_01"]  # one direction moved
    # Both sides collapsing onto tight clouds and the captions shrinking to two or three words: every column but
    # the two caption descriptors that are constant on both sides (one sentence, no punctuation).
    collapsed = image_text_drift_report(image, 0.3 * same_image + 4.0, text, 0.3 * same_text - 4.0,
                                        reference_captions=captions, round_captions=_captions(rng, 200, 2, 4))
    assert [c for c, v in collapsed.per_column.items() if not v["drifted"]] == [
        "caption_sentence_count", "caption_non_letter_share"]
    assert (collapsed.drift_share, collapsed.drifted_columns) == (35 / 37, 35)
    no_captions = image_text_drift_report(image, same_image, text, same_text, max_embedding_dims=4)
    assert list(no_captions.per_column) == _pc_names("image", 4) + _pc_names("text", 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reference_captions": ["a", "b", "c"]}, "expected both or neither, got reference_captions only"),
        ({"round_text": np.ones((2, 2))}, "round_text: expected one row per pair (3 rows, as round_image), got 2"),
        ({"round_image": np.ones((3, 5))}, "round_image: expected D=2 features to match reference_image, got D=5"),
        ({"reference_captions": ["a", "b"], "round_captions": ["a", "b", "c"]},
         "reference_captions: expected one caption per pair (3), got 2"),
    ],
)
def test_image_text_input_errors(kwargs, message):
    ones = np.ones((3, 2))
    args = {"reference_image": ones, "round_image": ones, "reference_text": ones, "round_text": ones, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        image_text_drift_report(**args)


def test_drift_report_is_a_plain_dataclass():
    report = DriftReport(0.5, 1, 2)
    assert report.per_column == {} and report.html_path is None


def test_preload_imports_evidently_once_in_a_background_thread():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from monitor.publishing import evidently_report as er\n"
        "assert 'evidently' not in sys.modules\n"
        "started, again = er.preload(), er.preload()\n"
        "er._preload_thread.join(120)\n"
        "print(started, again, er._preload_thread.name, 'evidently.presets' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, check=True)
    assert out.stdout.split() == ["True", "False", "evidently-preload", "True"]
