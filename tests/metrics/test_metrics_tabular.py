"""Tests of the tabular metrics (metrics_core.tabular).

Evidence: hand-built tables with the arithmetic in the comments; scipy
(``ks_2samp``, ``pearsonr``, ``chisquare``) and scikit-learn
(``cross_val_score``, ``StandardScaler``) on random mixed tables with nulls;
independent naive loops (Counter-based TVD, contingency tables, coverage,
functional-dependency g3) and SDMetrics' published ContingencySimilarity and
CorrelationSimilarity formulas written out here; the violation-rate bootstrap
replicates recomputed naively; and bad input.
"""

from __future__ import annotations

import math
import tomllib
from collections import Counter
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.preprocessing import StandardScaler

from metrics_core.bootstrap import Estimate, bootstrap_counts
from metrics_core.tabular import (
    TABULAR_METRICS,
    AllowedValuesConstraint,
    FunctionalDependency,
    RangeConstraint,
    TableSchema,
    TabularReference,
    UniqueConstraint,
    category_coverage,
    chi2_tests,
    constraint_from_dict,
    contingency_score,
    cov_gap,
    detection_score,
    encode_rows,
    encoded_feature_names,
    fit_tabular_reference,
    fit_violation_baseline,
    infer_schema,
    ks_statistics,
    load_constraints,
    pearson_score,
    tabular_suite,
    tvd_distances,
    violation_rate,
)

NULL = "<null>"  # the naive implementations' null category

MIXED_SCHEMA = TableSchema.from_dict(
    {"x": "numeric", "y": "numeric", "z": "numeric", "c": "categorical", "d": "categorical", "k": "categorical"}
)


def mixed_table(rng: np.random.Generator, n: int, *, shift: float = 0.0, tail: bool = True) -> pd.DataFrame:
    """Numeric columns with nulls and ties, categorical columns with nulls and rare categories."""
    x = rng.normal(size=n) + shift
    y = 0.6 * x + rng.normal(size=n)
    z = np.round(rng.exponential(size=n), 1)  # many ties
    x[rng.random(n) < 0.05] = np.nan
    y[rng.random(n) < 0.05] = np.nan
    probs = [0.4, 0.3, 0.2, 0.07, 0.03] if tail else [0.5, 0.3, 0.2, 0.0, 0.0]
    c = rng.choice(list("abcde"), size=n, p=probs).astype(object)
    d = rng.choice(["u", "v", "w"], size=n).astype(object)
    d[rng.random(n) < 0.1] = None
    k = rng.integers(0, 4, size=n)
    return pd.DataFrame({"x": x, "y": y, "z": z, "c": c, "d": d, "k": k})


def _key(value):
    return NULL if pd.isna(value) else value


def naive_tvd(ref: pd.Series, rnd: pd.Series) -> float:
    """1/2 sum over the union of categories (every unseen value kept apart, null a category)."""
    r, s = Counter(map(_key, ref)), Counter(map(_key, rnd))
    return 0.5 * sum(abs(r[c] / len(ref) - s[c] / len(rnd)) for c in set(r) | set(s))


def naive_bins(ref_values: np.ndarray, values, n_bins: int) -> list:
    """Bin index = number of reference quantile edges <= value; None for a null."""
    v = ref_values[~np.isnan(ref_values)]
    edges = sorted(set(np.quantile(v, np.linspace(0, 1, n_bins + 1))[1:-1].tolist()))
    return [None if pd.isna(x) else sum(e <= x for e in edges) for x in values]


def naive_contingency(ref_a, ref_b, rnd_a, rnd_b) -> float:
    r = Counter(zip(map(_key, ref_a), map(_key, ref_b)))
    s = Counter(zip(map(_key, rnd_a), map(_key, rnd_b)))
    n, m = len(ref_a), len(rnd_a)
    return 0.5 * sum(abs(r[c] / n - s[c] / m) for c in set(r) | set(s))


def sdmetrics_contingency_similarity(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    """SDMetrics ContingencySimilarity.compute_breakdown on already discretised columns."""
    columns = list(real.columns[:2])
    cr = real.groupby(columns, dropna=False).size() / len(real)
    cs = synthetic.groupby(columns, dropna=False).size() / len(synthetic)
    index = cr.index.union(cs.index, sort=False)
    cs = cs.reindex(index, fill_value=0)
    cr = cr.reindex(index, fill_value=0)
    return float(1 - (abs(cr - cs).fillna(0) / 2).sum())


def sdmetrics_correlation_similarity(rho_real: float, rho_synthetic: float) -> float:
    return 1 - abs(rho_real - rho_synthetic) / 2


def naive_fd_violations(det_rows: list[tuple], dep: list) -> int:
    """g3: per determinant group, rows not holding its most frequent dependent value."""
    groups: dict[tuple, Counter] = {}
    for key, value in zip(det_rows, dep):
        groups.setdefault(key, Counter())[value] += 1
    return sum(sum(c.values()) - max(c.values()) for c in groups.values())


@pytest.fixture(scope="module")
def mixed_pair():
    rng = np.random.default_rng(11)
    ref = mixed_table(rng, 600)
    rnd = mixed_table(rng, 450, shift=0.4, tail=False)
    rnd.loc[:4, "c"] = "zz"  # unseen category
    rnd.loc[5:7, "k"] = 9  # unseen integer code
    return ref, rnd, fit_tabular_reference(ref, MIXED_SCHEMA)


# --------------------------------------------------------------------------
# Schema and input checks
# --------------------------------------------------------------------------


def test_infer_schema_rules():
    n = 30
    df = pd.DataFrame({
        "f": np.linspace(0, 1, n),  # 30 levels > 20: numeric
        "i": np.arange(n) % 5,  # 5 levels: categorical
        "ni": pd.array(list(range(25)) + [None] * 5, dtype="Int64"),  # nullable, 25 levels: numeric
        "b": [True, False] * 15,
        "o": ["p", "q", "r"] * 10,
        "s": pd.array(["p", None, "q"] * 10, dtype="string"),
        "cat": pd.Categorical(["m", "n"] * 15),
    })
    schema = infer_schema(df)
    assert schema.kinds == (
        ("f", "numeric"), ("i", "categorical"), ("ni", "numeric"), ("b", "categorical"),
        ("o", "categorical"), ("s", "categorical"), ("cat", "categorical"),
    )
    # The threshold: 5 levels > 4 makes "i" numeric; 30 levels <= 30 makes "f" categorical.
    assert infer_schema(df, max_categorical_levels=4).kind("i") == "numeric"
    assert infer_schema(df, max_categorical_levels=30).kind("f") == "categorical"
    forced = infer_schema(df, {"i": "numeric", "f": "categorical"})
    assert forced.kind("i") == "numeric" and forced.kind("f") == "categorical"


def test_infer_schema_refusals():
    df = pd.DataFrame({"o": ["a", "b"], "t": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    with pytest.raises(ValueError, match=r"reference: column 't': expected an integer, float.*datetime64"):
        infer_schema(df)
    assert infer_schema(df, {"t": "categorical"}).kind("t") == "categorical"
    with pytest.raises(ValueError, match=r"overrides: column 'o': 'numeric' needs an integer or float dtype, got object"):
        infer_schema(df, {"o": "numeric", "t": "categorical"})
    with pytest.raises(ValueError, match=r"overrides: column 'nope' is not in the reference columns"):
        infer_schema(df, {"nope": "numeric"})
    with pytest.raises(ValueError, match=r"overrides: column 'o': expected kind 'numeric' or 'categorical', got 'text'"):
        infer_schema(df, {"o": "text"})
    with pytest.raises(ValueError, match=r"reference: expected a pandas DataFrame, got ndarray"):
        infer_schema(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"reference: expected a non-empty table, got shape \(0, 1\)"):
        infer_schema(pd.DataFrame({"a": []}))
    with pytest.raises(ValueError, match=r"reference: expected string column names, got \[0\]"):
        infer_schema(pd.DataFrame({0: [1.0]}))
    with pytest.raises(ValueError, match=r"expected unique column names, got duplicates \['a'\]"):
        infer_schema(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(ValueError, match=r"schema: column 'a': expected kind 'numeric' or 'categorical', got 'x'"):
        TableSchema((("a", "x"),))
    with pytest.raises(ValueError, match=r"schema: expected unique column names"):
        TableSchema((("a", "numeric"), ("a", "categorical")))


def test_round_checks_name_the_column_and_list_extra_columns():
    schema = TableSchema.from_dict({"x": "numeric", "c": "categorical"})
    ref = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    fit = fit_tabular_reference(ref, schema)
    with pytest.raises(ValueError, match=r"round: missing reference column\(s\) \['x'\]; expected all of \['x', 'c'\]"):
        ks_statistics(fit, pd.DataFrame({"c": ["a"]}))
    with pytest.raises(
        ValueError, match=r"round: column 'x': expected a numeric dtype like the reference \(float64\), got object"
    ):
        ks_statistics(fit, pd.DataFrame({"x": ["1", "2"], "c": ["a", "b"]}))
    with pytest.raises(ValueError, match=r"round: column 'c' is entirely null \(2 rows\)"):
        tvd_distances(fit, pd.DataFrame({"x": [1.0, 2.0], "c": [None, None]}))
    with pytest.raises(ValueError, match=r"round: column 'x': expected finite values or nulls, got 1 infinite values"):
        ks_statistics(fit, pd.DataFrame({"x": [1.0, np.inf], "c": ["a", "b"]}))
    with pytest.raises(ValueError, match=r"reference: column 'x' is entirely null \(2 rows\)"):
        fit_tabular_reference(pd.DataFrame({"x": [np.nan, np.nan], "c": ["a", "b"]}), schema)
    with pytest.raises(ValueError, match=r"reference: expected a DataFrame or a TabularReference, got dict"):
        ks_statistics({"x": [1.0]}, ref)
    res = tabular_suite(fit, pd.DataFrame({"extra": [0, 1, 2], "x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"], "z": 1}),
                        n_boot=0)
    assert res.extra_columns == ("extra", "z")
    assert res.metrics["ks_mean"].value == 0.0 and res.metrics["tvd_mean"].value == 0.0


def test_fit_reference_bins_and_levels():
    # 0..99, 4 bins: interior edges Q(.25), Q(.5), Q(.75) = 24.75, 49.5, 74.25.
    ref = pd.DataFrame({"x": np.arange(100.0), "c": ["b", "a"] * 50})
    fit = fit_tabular_reference(ref, n_bins=4)
    assert fit.bin_edges["x"].tolist() == [24.75, 49.5, 74.25]
    assert fit.categories["c"].tolist() == ["a", "b"]
    assert fit.category_counts["c"].tolist() == [50, 50]
    assert fit.means["x"] == 49.5 and fit.stds["x"] == pytest.approx(np.std(np.arange(100.0)), abs=1e-12)
    # Level codes: x in [0, 24.75) -> 0, ..., [74.25, inf) -> 3; c: a -> 0, b -> 1.
    assert fit.level_codes[[0, 24, 25, 74, 75, 99], 0].tolist() == [0, 0, 1, 2, 3, 3]
    assert fit.level_codes[:2, 1].tolist() == [1, 0]
    # A heavily tied column: deciles of 80 zeros and 20 ones are 0 (x8) and 1, edges collapse to {0, 1}.
    tied = fit_tabular_reference(pd.DataFrame({"t": np.r_[np.zeros(80), np.ones(20), np.arange(2.0, 22.0)]}),
                                 TableSchema.from_dict({"t": "numeric"}))
    q = np.quantile(np.r_[np.zeros(80), np.ones(20), np.arange(2.0, 22.0)], np.linspace(0, 1, 11))[1:-1]
    assert tied.bin_edges["t"].tolist() == sorted(set(q.tolist()))
    assert tied.bin_edges["t"].size < 9
    with pytest.raises(ValueError, match=r"n_bins: expected a positive integer, got 0"):
        fit_tabular_reference(ref, n_bins=0)


# --------------------------------------------------------------------------
# KS and TVD
# --------------------------------------------------------------------------


def test_ks_hand_cases():
    schema = TableSchema.from_dict({"a": "numeric", "b": "numeric"})
    ref = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 5.0], "b": [1.0, 1.0, 2.0, 3.0, np.nan]})
    rnd = pd.DataFrame({"a": [2.5, 6.0, np.nan, np.nan], "b": [1.0, 2.0, 2.0, 2.0]})
    ks = ks_statistics(ref, rnd, schema=schema)
    # a: at 2, F_ref = 2/5, F_rnd = 0 -> 0.4; at 5, F_ref = 1, F_rnd = 1/2 -> 0.5 (nulls dropped).
    # b (ties, reference null dropped): at 1, 2/4 vs 1/4 -> .25; at 2, 3/4 vs 1 -> .25.
    assert ks == {"a": 0.5, "b": 0.25}
    assert ks["a"] == scipy.stats.ks_2samp([1, 2, 3, 4, 5], [2.5, 6.0]).statistic


def test_ks_matches_scipy_on_random_data(mixed_pair):
    ref, rnd, fit = mixed_pair
    ks = ks_statistics(fit, rnd)
    assert list(ks) == ["x", "y", "z"]
    for column in ks:
        expected = scipy.stats.ks_2samp(ref[column].dropna(), rnd[column].dropna()).statistic
        assert ks[column] == pytest.approx(expected, abs=1e-12)
    assert ks["x"] > 0.1  # the shift of 0.4 shows


def test_tvd_hand_case():
    # ref: a .5, b .25, null .25; round (5 rows): a .2, c .4 (unseen), null .4.
    # TVD = 1/2 (|.5-.2| + |.25-0| + |.25-.4| + |0-.4|) = 1/2 (.3 + .25 + .15 + .4) = 0.55.
    ref = pd.DataFrame({"c": ["a", "a", "b", None]})
    rnd = pd.DataFrame({"c": ["a", "c", "c", None, None]})
    assert tvd_distances(ref, rnd)["c"] == pytest.approx(0.55, abs=1e-15)
    assert tvd_distances(ref, ref) == {"c": 0.0}


def test_tvd_matches_naive_union(mixed_pair):
    ref, rnd, fit = mixed_pair
    tvd = tvd_distances(fit, rnd)
    assert list(tvd) == ["c", "d", "k"]
    for column in tvd:
        assert tvd[column] == pytest.approx(naive_tvd(ref[column], rnd[column]), abs=1e-12)
    # The round moved the tail mass of d and e (.07 + .03) to a: population TVD 0.1.
    assert tvd["c"] > 0.08


# --------------------------------------------------------------------------
# Pearson and contingency scores
# --------------------------------------------------------------------------


def test_pearson_hand_case():
    schema = TableSchema.from_dict({"a": "numeric", "b": "numeric", "c": "numeric"})
    ref = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [2.0, 4, 6, 8], "c": [4.0, 3, 2, 1]})
    # Reference: rho(a,b) = 1, rho(a,c) = rho(b,c) = -1.
    # Round: b = (1,-1,-1,1) is uncorrelated with a and with c = (4,3,2,1); rho(a,c) = -1.
    rnd = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [1.0, -1, -1, 1], "c": [4.0, 3, 2, 1]})
    res = pearson_score(ref, rnd, schema=schema)
    assert res.per_pair == {("a", "b"): 0.5, ("a", "c"): 0.0, ("b", "c"): 0.5}
    assert res.score == pytest.approx(1 / 3, abs=1e-15)


def test_pearson_undefined_correlations():
    schema = TableSchema.from_dict({"a": "numeric", "b": "numeric", "k": "numeric"})
    ref = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [1.0, 3, 2, 4], "k": [5.0, 5, 5, 5]})
    # rho_ref(a,b): centred (-1.5,-.5,.5,1.5).(-1.5,.5,-.5,1.5) / 5 = 4/5 = 0.8; pairs with the constant k
    # are left out.
    rnd = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [7.0, 7, 7, 7], "k": [1.0, 2, 3, 4]})
    res = pearson_score(ref, rnd, schema=schema)
    # A constant round column counts as rho = 0: 1/2 |0.8 - 0| = 0.4.
    assert list(res.per_pair) == [("a", "b")]
    assert res.score == pytest.approx(0.4, abs=1e-12)
    only_one = pearson_score(ref[["a"]], rnd[["a"]], schema=TableSchema.from_dict({"a": "numeric"}))
    assert math.isnan(only_one.score) and only_one.per_pair == {}


def test_pearson_matches_scipy_and_sdmetrics_formula(mixed_pair):
    ref, rnd, fit = mixed_pair
    res = pearson_score(fit, rnd)
    naive = {}
    for a, b in combinations(["x", "y", "z"], 2):
        r_ok = ref[[a, b]].dropna()
        s_ok = rnd[[a, b]].dropna()
        rho_r = scipy.stats.pearsonr(r_ok[a], r_ok[b]).statistic
        rho_s = scipy.stats.pearsonr(s_ok[a], s_ok[b]).statistic
        naive[(a, b)] = 1 - sdmetrics_correlation_similarity(rho_r, rho_s)
    assert res.per_pair.keys() == naive.keys()
    for pair in naive:
        assert res.per_pair[pair] == pytest.approx(naive[pair], abs=1e-12)
    assert res.score == pytest.approx(np.mean(list(naive.values())), abs=1e-12)


def test_contingency_hand_case():
    schema = TableSchema.from_dict({"x": "numeric", "c": "categorical", "y": "numeric"})
    ref = pd.DataFrame({"x": np.arange(10.0), "c": ["a"] * 5 + ["b"] * 5, "y": np.arange(10.0)})
    # 2 bins: edge Q(.5) = 4.5. Reference joint (bin, c): (0,a) .5, (1,b) .5.
    # Round (0,a), (0,b), (1,a), (1,b) .25 each, x = 100 beyond the range sits in the top bin:
    # TVD = 1/2 (.25 + .25 + .25 + .25) = 0.5. Pairs: (x,c) and (c,y); (x,y) is Pearson's.
    rnd = pd.DataFrame({"x": [0.0, 1.0, 7.0, 100.0], "c": ["a", "b", "a", "b"], "y": [0.0, 0.0, 9.0, 9.0]})
    res = contingency_score(ref, rnd, schema=schema, n_bins=2)
    assert list(res.per_pair) == [("x", "c"), ("c", "y")]
    assert res.per_pair[("x", "c")] == 0.5
    # (c, y): round (a,0) .25, (b,0) .25, (a,1) .25, (b,1) .25 against (a,0) .5, (b,1) .5: also 0.5.
    assert res.per_pair[("c", "y")] == 0.5
    assert res.score == 0.5
    fit = fit_tabular_reference(ref, schema, n_bins=2)
    with pytest.raises(ValueError, match=r"n_bins: the reference was fitted with n_bins=2, got 10"):
        contingency_score(fit, rnd, n_bins=10)


def test_contingency_matches_naive_and_sdmetrics(mixed_pair):
    ref, rnd, fit = mixed_pair
    res = contingency_score(fit, rnd)
    ref_b, rnd_b = ref.copy(), rnd.copy()
    for column in MIXED_SCHEMA.numeric:  # discretise with the reference's quantile bins
        ref_b[column] = naive_bins(ref[column].to_numpy(), ref[column], 10)
        rnd_b[column] = naive_bins(ref[column].to_numpy(), rnd[column], 10)
    expected_pairs = [p for p in combinations(MIXED_SCHEMA.columns, 2)
                      if "categorical" in (MIXED_SCHEMA.kind(p[0]), MIXED_SCHEMA.kind(p[1]))]
    assert list(res.per_pair) == expected_pairs
    for a, b in expected_pairs:
        naive = naive_contingency(ref_b[a], ref_b[b], rnd_b[a], rnd_b[b])
        assert res.per_pair[(a, b)] == pytest.approx(naive, abs=1e-12)
        sdm = sdmetrics_contingency_similarity(ref_b[[a, b]], rnd_b[[a, b]])
        assert res.per_pair[(a, b)] == pytest.approx(1 - sdm, abs=1e-12)
    assert res.score == pytest.approx(np.mean(list(res.per_pair.values())), abs=1e-15)


# --------------------------------------------------------------------------
# Chi-squared
# --------------------------------------------------------------------------


def test_chi2_hand_case_against_scipy():
    # Reference a 50, b 30, c 20 (n = 100); round a 20, b 20, c 10 (m = 50): E = 25, 15, 10.
    # chi2 = 25/25 + 25/15 + 0 = 8/3, df 2, p = exp(-4/3) = 0.263597...
    ref = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 30 + ["c"] * 20})
    rnd = pd.DataFrame({"c": ["a"] * 20 + ["b"] * 20 + ["c"] * 10})
    r = chi2_tests(ref, rnd)["c"]
    assert r.statistic == pytest.approx(8 / 3, abs=1e-12)
    assert r.dof == 2
    assert r.pvalue == pytest.approx(math.exp(-4 / 3), abs=1e-12)
    scipy_res = scipy.stats.chisquare([20, 20, 10], [25, 15, 10])
    assert r.statistic == pytest.approx(scipy_res.statistic, abs=1e-12)
    assert r.pvalue == pytest.approx(scipy_res.pvalue, abs=1e-12)


def test_chi2_pooling_unseen_and_nulls():
    # Reference a 90, b 6, c 4; round m = 50: E = 45, 3, 2; b and c (E < 5) pool into "other" (E = 5)
    # with the unseen "zz": round a 44, b 4, c 0, zz 2 -> cells [44, 6] vs [45, 5].
    ref = pd.DataFrame({"c": ["a"] * 90 + ["b"] * 6 + ["c"] * 4})
    rnd = pd.DataFrame({"c": ["a"] * 44 + ["b"] * 4 + ["zz"] * 2})
    r = chi2_tests(ref, rnd)["c"]
    scipy_res = scipy.stats.chisquare([44, 6], [45, 5])
    assert r.statistic == pytest.approx(1 / 45 + 1 / 5, abs=1e-12)
    assert (r.statistic, r.dof) == (pytest.approx(scipy_res.statistic, abs=1e-12), 1)
    assert r.pvalue == pytest.approx(scipy_res.pvalue, abs=1e-12)
    # No pooling (min_expected=0): the unseen value has E = 0 -> chi2 = inf, p = 0.
    r0 = chi2_tests(ref, rnd, min_expected=0)["c"]
    assert (r0.statistic, r0.pvalue) == (math.inf, 0.0)
    # Null as a reference category: a 50, null 50; round a 30, null 20 (m = 50): (25, 25) -> 1 + 1 = 2.
    ref_n = pd.DataFrame({"c": ["a"] * 50 + [None] * 50})
    rn = chi2_tests(ref_n, pd.DataFrame({"c": ["a"] * 30 + [None] * 20}))["c"]
    assert (rn.statistic, rn.dof) == (2.0, 1)
    assert rn.pvalue == pytest.approx(scipy.stats.chisquare([30, 20], [25, 25]).pvalue, abs=1e-12)
    # Round nulls when the reference has none are unseen: p = 0.
    assert chi2_tests(ref[:90], pd.DataFrame({"c": ["a", None]}), min_expected=0)["c"].pvalue == 0.0
    # A single cell: nothing to test, p = 1.
    single = chi2_tests(pd.DataFrame({"c": ["a"] * 5}), pd.DataFrame({"c": ["a"] * 3}))["c"]
    assert (single.statistic, single.pvalue, single.dof) == (0.0, 1.0, 0)
    with pytest.raises(ValueError, match=r"min_expected: expected a non-negative number, got -1"):
        chi2_tests(ref, rnd, min_expected=-1)


def test_chi2_matches_scipy_on_random_data():
    rng = np.random.default_rng(5)
    cats = list("abcdef")
    ref = pd.DataFrame({"c": rng.choice(cats, size=2000, p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05])})
    rnd = pd.DataFrame({"c": rng.choice(cats, size=700, p=[0.35, 0.25, 0.2, 0.1, 0.05, 0.05])})
    r = chi2_tests(ref, rnd)["c"]
    ref_counts = ref["c"].value_counts().reindex(cats).to_numpy()
    obs = rnd["c"].value_counts().reindex(cats, fill_value=0).to_numpy()
    expected = ref_counts / ref_counts.sum() * len(rnd)
    scipy_res = scipy.stats.chisquare(obs, expected)
    assert r.statistic == pytest.approx(scipy_res.statistic, rel=1e-12)
    assert r.pvalue == pytest.approx(scipy_res.pvalue, rel=1e-9)
    assert r.dof == 5


# --------------------------------------------------------------------------
# DetScore
# --------------------------------------------------------------------------


def test_detection_auc_matches_cross_val_score(mixed_pair):
    ref, rnd, fit = mixed_pair
    res = detection_score(fit, rnd, seed=3)
    x = np.vstack([encode_rows(ref, fit.schema, fit), encode_rows(rnd, fit.schema, fit)]).astype(np.float64)
    y = np.r_[np.zeros(len(ref)), np.ones(len(rnd))]
    aucs = cross_val_score(
        LogisticRegression(solver="lbfgs", max_iter=1000), x, y,
        cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=3), scoring="roc_auc",
    )
    assert res.fold_aucs == pytest.approx(tuple(aucs), abs=1e-12)
    assert res.auc == pytest.approx(aucs.mean(), abs=1e-12)
    assert res.det_score == pytest.approx(1 - (2 * max(aucs.mean(), 0.5) - 1), abs=1e-12)
    assert 0.0 < res.det_score < 0.9  # shifted x, lost categories: detectable


def test_detection_identical_and_separable():
    rng = np.random.default_rng(2)
    ref = mixed_table(rng, 1500)
    same = detection_score(ref, mixed_table(rng, 1500), schema=MIXED_SCHEMA, seed=0)
    assert same.det_score > 0.9
    far = ref.copy()
    far["x"] = rng.normal(size=len(far)) + 100.0
    sep = detection_score(ref, far, schema=MIXED_SCHEMA)
    assert sep.fold_aucs == (1.0, 1.0, 1.0) and sep.det_score == 0.0
    # Only unseen categories (all-zero one-hot block) are separable too.
    c_ref = pd.DataFrame({"c": ["a", "b"] * 30})
    assert detection_score(c_ref, pd.DataFrame({"c": ["zz"] * 30})).det_score == 0.0
    with pytest.raises(ValueError, match=r"round: DetScore needs at least n_splits=3 rows, got 2"):
        detection_score(c_ref, pd.DataFrame({"c": ["a", "b"]}))


# --------------------------------------------------------------------------
# Category coverage and CovGap
# --------------------------------------------------------------------------


def test_category_coverage_hand_case():
    # c1: a 90, b 6, c 4 (rare below 5%: c); c2: x 50, y 49, null 1 (nulls are no category).
    ref = pd.DataFrame({"c1": ["a"] * 90 + ["b"] * 6 + ["c"] * 4, "c2": ["x"] * 50 + ["y"] * 49 + [None]})
    rnd = pd.DataFrame({"c1": ["a", "b", "zz"], "c2": ["x", None, "x"]})
    r = category_coverage(ref, rnd)
    # Covered: c1 {a, b} of 3, c2 {x} of 2 -> (2 + 1) / (3 + 2) = 0.6; rare {c} not covered -> 0/1.
    assert r.category_coverage == 0.6
    assert r.rare_category_coverage == 0.0
    assert (r.n_categories, r.n_rare_categories) == (5, 1)
    assert r.per_column == {"c1": 2 / 3, "c2": 0.5}
    # With rare_share 0.07, b (6%) is rare too and covered: 1/2.
    assert category_coverage(ref, rnd, rare_share=0.07).rare_category_coverage == 0.5
    assert math.isnan(category_coverage(ref, rnd, rare_share=0.01).rare_category_coverage)
    with pytest.raises(ValueError, match=r"rare_share: expected a share in \(0, 1\], got 0"):
        category_coverage(ref, rnd, rare_share=0)


def test_category_coverage_matches_naive(mixed_pair):
    ref, rnd, fit = mixed_pair
    r = category_coverage(fit, rnd, rare_share=0.05)
    covered = total = rare_cov = rare_total = 0
    for column in MIXED_SCHEMA.categorical:
        counts = Counter(v for v in ref[column] if not pd.isna(v))
        seen = {v for v in rnd[column] if not pd.isna(v)}
        for cat, cnt in counts.items():
            total += 1
            covered += cat in seen
            if cnt / len(ref) < 0.05:
                rare_total += 1
                rare_cov += cat in seen
    assert r.category_coverage == pytest.approx(covered / total, abs=1e-15)
    assert r.rare_category_coverage == pytest.approx(rare_cov / rare_total, abs=1e-15)
    assert r.rare_category_coverage == 0.0  # the round lost both tail categories d, e


def test_cov_gap_hand_case_and_checks():
    # Groups F .5, M .3, null .2 vs F .25, M .25, X .5 (unseen):
    # 1/2 (.25 + .05 + .2 + .5) = 0.5.
    ref = pd.DataFrame({"sex": ["F"] * 5 + ["M"] * 3 + [None] * 2, "age": np.arange(10.0)})
    rnd = pd.DataFrame({"sex": ["F", "M", "X", "X"], "age": [1.0, 2.0, 3.0, 4.0]})
    schema = TableSchema.from_dict({"sex": "categorical", "age": "numeric"})
    assert cov_gap(ref, rnd, "sex", schema=schema) == pytest.approx(0.5, abs=1e-15)
    assert cov_gap(ref, rnd, "sex", schema=schema) == pytest.approx(naive_tvd(ref["sex"], rnd["sex"]), abs=1e-15)
    with pytest.raises(ValueError, match=r"protected_attribute: column 'age': expected categorical, got numeric"):
        cov_gap(ref, rnd, "age", schema=schema)
    with pytest.raises(ValueError, match=r"protected_attribute: expected one of the schema columns"):
        cov_gap(ref, rnd, "race", schema=schema)


# --------------------------------------------------------------------------
# Constraints and the violation rate
# --------------------------------------------------------------------------


def test_violation_rate_range_allowed_unique_hand_cases():
    df = pd.DataFrame({
        "age": [-1.0, 0.0, 120.0, 121.0, np.nan],
        "sex": ["F", "M", "X", None, "F"],
        "id": [1, 2, 2, 3, 2],
    })
    # range: 4 non-null checks, bounds inclusive: -1 and 121 fail -> 2/4.
    r = violation_rate(df, [RangeConstraint("age", 0, 120)])
    assert (r.n_violations, r.n_checks, r.rate.value) == (2, 4, 0.5)
    # Only a lower bound: -1 fails -> 1/4.
    assert violation_rate(df, [{"type": "range", "column": "age", "min": 0}]).rate.value == 0.25
    # allowed: 4 non-null checks, X fails -> 1/4.
    r = violation_rate(df, [AllowedValuesConstraint("sex", ["F", "M"])])
    assert (r.n_violations, r.n_checks) == (1, 4)
    # unique: 2 seen three times -> 2 failures of 5 checks.
    r = violation_rate(df, [UniqueConstraint("id")])
    assert (r.n_violations, r.n_checks, r.rate.value) == (2, 5, 0.4)
    # Pooled over four constraints: (2 + 1 + 2 + 2) / (4 + 4 + 5 + 5) = 7/18; each one's own rate reported.
    r = violation_rate(df, [RangeConstraint("age", 0, 120), AllowedValuesConstraint("sex", ("F", "M")),
                            UniqueConstraint("id"), UniqueConstraint("id")])
    assert r.rate.value == pytest.approx(7 / 18, abs=1e-15)
    assert r.per_constraint == {"range:age": 0.5, "allowed:sex": 0.25, "unique:id": 0.4, "unique:id#2": 0.4}
    assert r.rate.ci_low is None


def test_violation_rate_relative_to_the_reference_hand_case():
    """A constraint the reference itself breaks is off; the rest is reported above the reference's rate."""
    reference = pd.DataFrame({"age": [10.0, 20, 30, 40, 50, 60, 70, 80, 90, 130], "sex": ["F", "M"] * 4 + ["X", "X"]})
    constraints = [RangeConstraint("age", 0, 120), AllowedValuesConstraint("sex", ("F", "M"))]
    base = fit_violation_baseline(reference, constraints, 10)
    assert base.rates == {"range:age": 0.1, "allowed:sex": 0.2}  # 1/10 and 2/10: both stay on (limit 0.2)
    round_df = pd.DataFrame({"age": [10.0, 150, 160, 30, 40], "sex": ["F", "M", "F", "M", "F"]})
    r = violation_rate(round_df, constraints, reference=base)
    # Round: 2 of 10 checks fail; reference at size 10: 3 of 20 -> 0.2 - 0.15.
    assert r.switched_off == {} and r.rate.value == pytest.approx(0.2 - 0.15)
    strict = violation_rate(round_df, constraints, reference=base, failure_limit=0.15)
    # allowed:sex is off (the reference has X twice); range alone: 2/5 - 1/10.
    assert strict.switched_off == {"allowed:sex": 0.2} and strict.rate.value == pytest.approx(0.4 - 0.1)
    assert strict.per_constraint == {"range:age": 0.4}
    with pytest.raises(ValueError, match="every constraint is switched off"):
        violation_rate(round_df, constraints, reference=base, failure_limit=0.05)


def test_violation_baseline_compares_the_reference_at_the_round_size():
    """Uniqueness fails more often in a bigger table: the reference's rate is taken at the round's size."""
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"id": rng.integers(0, 2000, size=4000)})
    unique = [UniqueConstraint("id")]
    base = fit_violation_baseline(reference, unique, 200, repeats=8, seed=3)
    whole = violation_rate(reference, unique).rate.value
    assert base.rates["unique:id"] == pytest.approx(whole) and whole > 0.5  # 4,000 draws of 2,000 ids
    # Independent: the same seeded subsamples, absolute rates, averaged.
    draw = np.random.default_rng(3)
    subsamples = [reference.iloc[np.sort(draw.choice(4000, size=200, replace=False))] for _ in range(8)]
    counts = [violation_rate(sub, unique) for sub in subsamples]
    assert base.checks["unique:id"] == pytest.approx(np.mean([c.n_checks for c in counts]))
    assert base.violations["unique:id"] == pytest.approx(np.mean([c.n_violations for c in counts]))
    assert base.violations["unique:id"] / base.checks["unique:id"] < 0.1  # about 200/2000/2 at the round's size
    fresh = pd.DataFrame({"id": rng.integers(0, 2000, size=200)})  # a round like the reference: about 0
    assert abs(violation_rate(fresh, unique, reference=fit_violation_baseline(
        reference, unique, 200, seed=3, repeats=8), failure_limit=1.0).rate.value) < 0.05


def test_violation_rate_functional_dependency_hand_case():
    df = pd.DataFrame({
        "zip": [1, 1, 1, 2, 2, 3, None, 4],
        "city": ["A", "A", "B", "C", "D", "E", "F", None],
    })
    # Checked rows: the 6 without nulls. zip 1: A x2, B x1 -> 1 failure; zip 2: C, D tie -> 1; zip 3: 0.
    r = violation_rate(df, [FunctionalDependency("zip", "city")])
    assert (r.n_violations, r.n_checks) == (2, 6)
    assert r.per_constraint == {"fd:zip->city": pytest.approx(1 / 3, abs=1e-15)}
    # A composite determinant: (zip, state) -> city; (1, s) A, A; (1, t) B; (2, s) C, D -> 1 failure.
    df["state"] = ["s", "s", "t", "s", "s", "s", "s", "s"]
    r = violation_rate(df, [{"type": "functional_dependency", "determinant": ["zip", "state"], "dependent": "city"}])
    assert (r.n_violations, r.n_checks) == (1, 6)


def test_functional_dependency_matches_naive_g3():
    rng = np.random.default_rng(9)
    n = 3000
    df = pd.DataFrame({
        "a": rng.integers(0, 30, size=n),
        "b": rng.choice(["p", "q"], size=n),
        "dep": rng.choice(["x", "y", "z"], size=n, p=[0.8, 0.15, 0.05]).astype(object),
    })
    df.loc[rng.random(n) < 0.05, "dep"] = None
    r = violation_rate(df, [FunctionalDependency(("a", "b"), "dep")])
    ok = df.dropna()
    expected = naive_fd_violations(list(zip(ok["a"], ok["b"])), list(ok["dep"]))
    assert (r.n_violations, r.n_checks) == (expected, len(ok))


def test_violation_rate_bootstrap_replicates():
    rng = np.random.default_rng(4)
    n = 300
    df = pd.DataFrame({"v": rng.normal(size=n), "id": rng.integers(0, 250, size=n)})
    df.loc[rng.random(n) < 0.1, "v"] = np.nan
    constraints = [RangeConstraint("v", -1.5, 1.5), UniqueConstraint("id")]
    res = violation_rate(df, constraints, n_boot=300, seed=7)
    # Per-row checks and failures, fixed on the round; replicate b = sum w v / sum w c.
    c = df["v"].notna().to_numpy().astype(float) + 1.0
    v = ((df["v"] < -1.5) | (df["v"] > 1.5)).to_numpy().astype(float) + df["id"].duplicated().to_numpy()
    assert res.rate.value == pytest.approx(v.sum() / c.sum(), abs=1e-15)
    w = bootstrap_counts(n, 300, seed=7)
    reps = (w @ v) / (w @ c)
    assert res.rate.std_error == pytest.approx(reps.std(ddof=1), rel=1e-12)
    assert (res.rate.ci_low, res.rate.ci_high) == pytest.approx(tuple(np.quantile(reps, [0.025, 0.975])), rel=1e-12)


def test_constraints_from_toml_and_errors():
    doc = tomllib.loads(
        """
        [[constraints]]
        type = "range"
        column = "age"
        min = 0
        max = 120

        [[constraints]]
        type = "allowed"
        column = "sex"
        values = ["F", "M"]

        [[constraints]]
        type = "functional_dependency"
        determinant = ["zip"]
        dependent = "city"
        """
    )
    loaded = load_constraints(doc)
    assert loaded == (
        RangeConstraint("age", 0, 120), AllowedValuesConstraint("sex", ("F", "M")),
        FunctionalDependency(("zip",), "city"),
    )
    assert constraint_from_dict({"type": "unique", "column": "id"}) == UniqueConstraint("id")
    with pytest.raises(ValueError, match=r"constraint: expected type one of \['range', 'allowed', 'unique', "):
        constraint_from_dict({"type": "regex", "column": "a"})
    with pytest.raises(ValueError, match=r"constraint 'allowed': missing field\(s\) \['values'\]"):
        constraint_from_dict({"type": "allowed", "column": "a"})
    with pytest.raises(ValueError, match=r"constraint 'unique': unknown field\(s\) \['min'\]"):
        constraint_from_dict({"type": "unique", "column": "a", "min": 1})
    with pytest.raises(ValueError, match=r"range 'a': expected min <= max, got min=3, max=1"):
        RangeConstraint("a", 3, 1)
    with pytest.raises(ValueError, match=r"range 'a': expected at least one of min, max"):
        RangeConstraint("a")
    with pytest.raises(ValueError, match=r"functional_dependency: the dependent 'a' is also a determinant"):
        FunctionalDependency(("a", "b"), "a")
    df = pd.DataFrame({"s": ["a", "b"], "n": [None, None]})
    with pytest.raises(ValueError, match=r"constraint 'range:s': expected a numeric column, got dtype object"):
        violation_rate(df, [RangeConstraint("s", 0, 1)])
    with pytest.raises(ValueError, match=r"constraint 'unique:q': round is missing column\(s\) \['q'\]"):
        violation_rate(df, [UniqueConstraint("q")])
    with pytest.raises(ValueError, match=r"constraints: no check applies to the round"):
        violation_rate(df, [UniqueConstraint("n")])
    with pytest.raises(ValueError, match=r"constraints: expected at least one constraint, got none"):
        violation_rate(df, [])


# --------------------------------------------------------------------------
# Row encoding
# --------------------------------------------------------------------------


def test_encode_rows_hand_case():
    schema = TableSchema.from_dict({"x": "numeric", "k": "numeric", "c": "categorical"})
    ref = pd.DataFrame({"x": [1.0, 3.0, np.nan, 5.0], "k": [2.0, 2.0, 2.0, 2.0], "c": ["b", "a", None, "b"]})
    fit = fit_tabular_reference(ref, schema)
    # x: mean 3, population std sqrt(8/3); k: std 0 -> 1; c: categories a, b.
    rnd = pd.DataFrame({"x": [3.0 + math.sqrt(8 / 3), np.nan, 1.0], "k": [4.0, 2.0, 2.0],
                        "c": ["a", "zz", None], "extra": 0})
    out = encode_rows(rnd, schema, fit)
    assert out.dtype == np.float32 and out.shape == (3, 4)
    expected = np.array([
        [1.0, 2.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],  # null x -> reference mean; unseen c -> zeros
        [-math.sqrt(1.5), 0.0, 0.0, 0.0],  # (1 - 3) / sqrt(8/3); null c -> zeros
    ], dtype=np.float32)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert encoded_feature_names(fit) == ["x", "k", "c=a", "c=b"]
    with pytest.raises(ValueError, match=r"schema: differs from the schema the reference was fitted with"):
        encode_rows(rnd, TableSchema.from_dict({"x": "numeric"}), fit)


def test_encode_rows_matches_sklearn(mixed_pair):
    ref, rnd, fit = mixed_pair
    out = encode_rows(rnd, fit.schema, fit)
    scaler = StandardScaler().fit(ref[["x", "y", "z"]])  # ignores NaN when fitting
    z = np.nan_to_num(scaler.transform(rnd[["x", "y", "z"]]), nan=0.0)
    blocks = [z]
    for column in ["c", "d", "k"]:
        cats = sorted(v for v in set(ref[column]) if not pd.isna(v))
        blocks.append(np.array([[float(v == cat) for cat in cats] for v in rnd[column]]))
    np.testing.assert_allclose(out, np.hstack(blocks), rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------
# The suite
# --------------------------------------------------------------------------


def test_suite_equals_the_single_metrics(mixed_pair):
    ref, rnd, fit = mixed_pair
    constraints = [{"type": "range", "column": "z", "min": 0, "max": 3}, {"type": "allowed", "column": "c",
                                                                          "values": list("abcde")}]
    res = tabular_suite(fit, rnd, protected_attribute="c", constraints=constraints, seed=3, n_boot=50)
    assert tuple(res.metrics) == TABULAR_METRICS
    assert all(isinstance(v, Estimate) for v in res.metrics.values())
    m = {k: v.value for k, v in res.metrics.items()}
    ks, tvd = ks_statistics(fit, rnd), tvd_distances(fit, rnd)
    assert res.per_column["ks"] == ks and res.per_column["tvd"] == tvd
    assert m["ks_mean"] == pytest.approx(np.mean(list(ks.values())), abs=1e-15)
    assert m["tvd_mean"] == pytest.approx(np.mean(list(tvd.values())), abs=1e-15)
    assert m["column_shape_error"] == pytest.approx(np.mean([*ks.values(), *tvd.values()]), abs=1e-15)
    assert m["pearson_score"] == pearson_score(fit, rnd).score
    assert m["contingency_score"] == contingency_score(fit, rnd).score
    det = detection_score(fit, rnd, seed=3)
    assert (m["det_score"], res.det_auc) == (det.det_score, det.auc)
    chi2 = chi2_tests(fit, rnd)
    assert res.per_column["chi2_pvalue"] == {c: r.pvalue for c, r in chi2.items()}
    assert m["chi2_min_pvalue"] == min(r.pvalue for r in chi2.values())
    assert m["chi2_reject_share"] == np.mean([r.pvalue < 0.05 for r in chi2.values()])
    cov = category_coverage(fit, rnd)
    assert (m["category_coverage"], m["rare_category_coverage"]) == (cov.category_coverage, cov.rare_category_coverage)
    assert m["cov_gap"] == tvd["c"] == cov_gap(fit, rnd, "c")
    vr = violation_rate(rnd, constraints, n_boot=50, seed=4)
    assert res.metrics["violation_rate"] == vr.rate and res.per_constraint == vr.per_constraint
    assert res.metrics["violation_rate"].ci_low <= m["violation_rate"] <= res.metrics["violation_rate"].ci_high
    assert res.n_rows == len(rnd)


def test_suite_leaves_out_what_does_not_apply():
    rng = np.random.default_rng(1)
    numeric_only = pd.DataFrame({"a": rng.normal(size=90), "b": rng.normal(size=90)})
    res = tabular_suite(fit_tabular_reference(numeric_only), numeric_only.iloc[:45], n_boot=0)
    assert tuple(res.metrics) == ("ks_mean", "column_shape_error", "pearson_score", "det_score")
    cat_only = pd.DataFrame({"c": ["a", "b", "c"] * 30})
    res = tabular_suite(fit_tabular_reference(cat_only), cat_only, n_boot=0)
    # One column: no pair for contingency; 3 categories at 1/3 each: none is rare.
    assert tuple(res.metrics) == (
        "tvd_mean", "column_shape_error", "det_score", "chi2_min_pvalue", "chi2_reject_share", "category_coverage",
    )
    with pytest.raises(ValueError, match=r"reference_profile: expected a TabularReference"):
        tabular_suite(cat_only, cat_only)
    with pytest.raises(ValueError, match=r"protected_attribute: column 'a': expected categorical, got numeric"):
        tabular_suite(fit_tabular_reference(numeric_only), numeric_only, protected_attribute="a")


def test_suite_sees_a_collapsed_round():
    rng = np.random.default_rng(21)
    ref = mixed_table(rng, 2000)
    fit = fit_tabular_reference(ref, MIXED_SCHEMA)
    fresh = tabular_suite(fit, mixed_table(rng, 1000), n_boot=0).metrics
    collapsed_df = mixed_table(rng, 1000, tail=False)
    collapsed_df["x"] = collapsed_df["x"] * 0.3  # contracted towards the mode
    collapsed = tabular_suite(fit, collapsed_df, n_boot=0).metrics
    for name in ("ks_mean", "tvd_mean", "column_shape_error", "contingency_score"):
        assert collapsed[name].value > fresh[name].value, name
    for name in ("det_score", "category_coverage", "rare_category_coverage", "chi2_min_pvalue"):
        assert collapsed[name].value < fresh[name].value, name
    assert fresh["rare_category_coverage"].value == 1.0 and collapsed["rare_category_coverage"].value == 0.0
    assert isinstance(fit, TabularReference)
