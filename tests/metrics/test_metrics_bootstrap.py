"""Tests of the bootstrap helpers, the embedding suite and the metric registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from metrics_core import (
    REGISTRY,
    MetricSpec,
    bootstrap_estimate,
    density_coverage,
    embedding_suite,
    get_spec,
    mean_estimate,
    metric_names,
    precision_recall,
    prdc_from_statistics,
    ball_statistics,
    self_cosine_similarity,
    vendi_score,
)
from metrics_core.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, Estimate
from metrics_core.registry import FAMILIES, MODALITIES

EXPECTED_NAMES = [
    "precision", "recall", "density", "coverage", "vendi_score", "self_cosine_similarity",
    "alpha_precision", "beta_recall", "authenticity", "mmd2", "frechet_distance", "eds",
    "effective_rank", "log_volume_ratio", "dcr_median", "dcr_p05", "dcr_real_to_round_median", "copy_rate",
    "tail_coverage", "tail_mass_ratio", "mode_coverage", "modes_hit", "cluster_jsd",
]

# --------------------------------------------------------------------------
# mean_estimate / bootstrap_estimate
# --------------------------------------------------------------------------


def test_mean_estimate_without_bootstrap():
    est = mean_estimate(np.array([1.0, 2.0, 6.0]), n_boot=0)
    assert est == Estimate(3.0, None, None, None)
    assert est.as_dict() == {"value": 3.0, "ci_low": None, "ci_high": None, "std_error": None}


def test_mean_estimate_accepts_booleans():
    est = mean_estimate(np.array([True, False, True, True]), n_boot=0)
    assert est.value == 0.75


def test_mean_estimate_interval_contains_mean_and_is_seeded():
    v = np.random.default_rng(0).exponential(size=300)
    a = mean_estimate(v, n_boot=400, seed=5)
    b = mean_estimate(v, n_boot=400, seed=5)
    c = mean_estimate(v, n_boot=400, seed=6)
    assert a == b
    assert a.value == pytest.approx(v.mean(), abs=1e-15)
    assert a.ci_low < a.value < a.ci_high
    assert a.std_error > 0
    assert (a.ci_low, a.ci_high, a.std_error) != (c.ci_low, c.ci_high, c.std_error)
    assert c.value == a.value


def test_default_n_boot_and_level():
    assert DEFAULT_N_BOOT == 200 and DEFAULT_LEVEL == 0.95
    v = np.random.default_rng(1).standard_normal(50)
    assert mean_estimate(v) == mean_estimate(v, n_boot=200, level=0.95, seed=0)


def test_bootstrap_standard_error_of_mean_matches_theory():
    # se(mean) = sigma / sqrt(n) = 2 / sqrt(2000) = 0.04472
    rng = np.random.default_rng(123)
    n = 2000
    v = rng.normal(3.0, 2.0, size=n)
    est = mean_estimate(v, n_boot=1000, seed=0)
    theory = v.std(ddof=1) / math.sqrt(n)
    assert est.std_error == pytest.approx(theory, rel=0.15)
    # and the percentile interval is about value +- 1.96 se
    assert (est.ci_high - est.ci_low) == pytest.approx(2 * 1.959964 * theory, rel=0.15)


def test_percentile_interval_equals_quantiles_of_replicates():
    v = np.random.default_rng(2).uniform(size=40)
    reps = []

    def stat(w):
        out = float(w @ v) / 40
        reps.append(out)
        return out

    est = bootstrap_estimate(stat, 40, n_boot=250, level=0.8, seed=11)
    r = np.array(reps[:250])
    assert reps[-1] == pytest.approx(v.mean(), abs=1e-15)  # the point estimate uses all-ones counts
    lo, hi = np.quantile(r, [0.1, 0.9])
    assert (est.ci_low, est.ci_high) == (pytest.approx(lo, abs=1e-15), pytest.approx(hi, abs=1e-15))
    assert est.std_error == pytest.approx(r.std(ddof=1), rel=1e-12)
    # mean_estimate is this bootstrap of the mean
    assert mean_estimate(v, n_boot=250, level=0.8, seed=11) == est


def test_bootstrap_counts_are_multinomial_resamples():
    n = 17
    seen = []

    def stat(w):
        seen.append(np.array(w))
        return 0.0 if len(seen) % 2 else 1.0

    bootstrap_estimate(stat, n, n_boot=30, seed=0)
    assert len(seen) == 31
    for w in seen[:30]:
        assert w.shape == (n,) and w.dtype.kind == "i" and w.sum() == n and (w >= 0).all()
    assert (seen[-1] == 1).all()
    assert any((w != 1).any() for w in seen[:30])


def test_normal_interval():
    v = np.random.default_rng(3).standard_normal(100)
    est = bootstrap_estimate(lambda w: float(w @ v) / 100, 100, n_boot=300, seed=1, method="normal")
    z = float(scipy.stats.norm.ppf(0.975))
    assert est.value == pytest.approx(v.mean(), abs=1e-15)
    assert est.ci_low == pytest.approx(est.value - z * est.std_error, abs=1e-15)
    assert est.ci_high == pytest.approx(est.value + z * est.std_error, abs=1e-15)


def test_constant_data_has_zero_width_interval():
    est = mean_estimate(np.full(50, 2.5), n_boot=100, seed=0)
    assert (est.value, est.ci_low, est.ci_high, est.std_error) == (2.5, 2.5, 2.5, 0.0)


def test_nonfinite_replicates_are_dropped():
    v = np.arange(10.0)
    # NaN whenever sample 0 was drawn: replicates without it still give an interval
    est = bootstrap_estimate(lambda w: float("nan") if w[0] > 0 else float(w @ v) / 10, 10, n_boot=200, seed=0)
    assert all(math.isfinite(t) for t in (est.ci_low, est.ci_high, est.std_error))
    assert math.isnan(est.value)  # the point estimate draws every sample once
    with pytest.raises(ValueError, match="fewer than 2 finite replicates"):
        bootstrap_estimate(lambda w: float("inf"), 10, n_boot=20, seed=0)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.1, float("nan")])
def test_invalid_level_raises(level):
    v = np.ones(5)
    with pytest.raises(ValueError, match=r"level: expected a confidence level in \(0, 1\)"):
        mean_estimate(v, n_boot=10, level=level)
    with pytest.raises(ValueError, match="level"):
        mean_estimate(v, n_boot=0, level=level)
    with pytest.raises(ValueError, match="level"):
        bootstrap_estimate(lambda w: 0.0, 5, n_boot=10, level=level)


@pytest.mark.parametrize("n_boot", [-1, -100, 1.5, "10"])
def test_invalid_n_boot_raises(n_boot):
    with pytest.raises(ValueError, match=r"n_boot: expected a non-negative integer"):
        mean_estimate(np.ones(5), n_boot=n_boot)


def test_bootstrap_estimate_argument_errors():
    # n_boot=0: the statistic at unit weights, no interval
    v = np.arange(5.0)
    assert bootstrap_estimate(lambda w: float(w @ v) / 5, 5, n_boot=0) == Estimate(2.0, None, None, None)
    with pytest.raises(ValueError, match=r"method: expected 'percentile' or 'normal', got 'bca'"):
        bootstrap_estimate(lambda w: 0.0, 5, n_boot=10, method="bca")


def test_numpy_integer_n_boot_accepted():
    v = np.random.default_rng(4).standard_normal(30)
    assert mean_estimate(v, n_boot=np.int64(50), seed=2) == mean_estimate(v, n_boot=50, seed=2)


# --------------------------------------------------------------------------
# embedding_suite and prdc_from_statistics
# --------------------------------------------------------------------------

REF = np.random.default_rng(10).standard_normal((120, 6))
RND = np.random.default_rng(11).standard_normal((90, 6)) * 0.8 + 0.3


def test_embedding_suite_names_in_registry_order():
    out = embedding_suite(REF, RND, k=3, n_boot=0)
    assert list(out) == EXPECTED_NAMES
    assert list(out) == metric_names("embedding") == metric_names()[: len(EXPECTED_NAMES)]
    assert all(isinstance(e, Estimate) for e in out.values())
    assert all(e.ci_low is None and e.ci_high is None and e.std_error is None for e in out.values())


def test_embedding_suite_values_equal_individual_metrics():
    out = embedding_suite(REF, RND, k=3, n_boot=0)
    p, r = precision_recall(REF, RND, 3)
    d, c = density_coverage(REF, RND, 3)
    assert (out["precision"].value, out["recall"].value) == (p, r)
    assert (out["density"].value, out["coverage"].value) == (d, c)
    assert out["vendi_score"].value == vendi_score(RND).value
    assert out["self_cosine_similarity"].value == self_cosine_similarity(RND).value
    # non-degenerate values, so the equalities above are informative
    assert 0 < p < 1 and 0 < r < 1 and 0 < c < 1 and d > 0


def test_embedding_suite_with_bootstrap():
    a = embedding_suite(REF, RND, k=3, n_boot=60, seed=7)
    b = embedding_suite(REF, RND, k=3, n_boot=60, seed=7)
    assert a == b
    for name, est in a.items():
        assert est.ci_low <= est.value <= est.ci_high, name
        assert est.std_error > 0, name
    # the diversity intervals use seeds seed+4 and seed+5
    assert a["vendi_score"] == vendi_score(RND, n_boot=60, seed=11)
    assert a["self_cosine_similarity"] == self_cosine_similarity(RND, n_boot=60, seed=12)


def test_embedding_suite_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match=r"round: expected D=6 features to match reference, got D=5"):
        embedding_suite(REF, RND[:, :5], n_boot=0)
    bad = RND.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"round: 1 NaN or inf values \(first in row 3\)"):
        embedding_suite(REF, bad, n_boot=0)


def test_prdc_from_statistics_matches_functions():
    stats = ball_statistics(REF, RND, 4)
    out = prdc_from_statistics(stats)
    assert list(out) == ["precision", "recall", "density", "coverage"]
    assert (out["precision"].value, out["recall"].value) == precision_recall(REF, RND, 4)
    assert out["density"].value == pytest.approx(density_coverage(REF, RND, 4)[0], abs=1e-12)
    assert out["coverage"].value == density_coverage(REF, RND, 4)[1]
    boot = prdc_from_statistics(stats, n_boot=80, seed=3)
    assert boot["precision"] == mean_estimate(stats.round_in_reference_balls.numpy() > 0, n_boot=80, seed=3)
    assert boot["coverage"] == mean_estimate(stats.reference_ball_counts.numpy() > 0, n_boot=80, seed=6)


# --------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------


def test_registry_entries_are_valid():
    assert metric_names("embedding") == EXPECTED_NAMES
    from metrics_core.tabular import TABULAR_METRICS
    from metrics_core.text import TEXT_METRIC_NAMES

    # Each suite's names, in the suite's order, and the drift share of any modality.
    assert metric_names("text") == list(TEXT_METRIC_NAMES)
    assert metric_names("tabular") == list(TABULAR_METRICS)
    assert metric_names("any") == ["evidently_drift_share"]
    reasoning = ["acc_verify", "pass_at_1", "pass_at_k", "pass_rate", "syntax_valid_rate", "self_consistency_accuracy",
                 "distinct_answers_per_question", "answer_agreement", "template_collapse_rate"]
    rationale = [f"rationale_{name}" for name in TEXT_METRIC_NAMES]  # the text suite on the rationales
    # the order monitor.modalities.ReasoningModality returns them in
    assert metric_names("reasoning") == reasoning + rationale
    assert [REGISTRY[m].higher_is_better for m in reasoning] == [True] * 7 + [False] * 2
    for name in TEXT_METRIC_NAMES:
        text, on_rationales = REGISTRY[name], REGISTRY[f"rationale_{name}"]
        assert (on_rationales.family, on_rationales.higher_is_better, on_rationales.value_range) == \
            (text.family, text.higher_is_better, text.value_range)
        assert on_rationales.modality == "reasoning"
    from metrics_core.agents import AGENT_METRIC_NAMES

    assert metric_names("agent") == list(AGENT_METRIC_NAMES)  # the order metrics_core.agents.agent_suite returns
    from metrics_core.graphs import GRAPH_METRIC_NAMES
    from metrics_core.image_text import IMAGE_TEXT_METRIC_NAMES
    from metrics_core.json_records import JSON_METRIC_NAMES
    from metrics_core.logs import LOG_METRIC_NAMES

    # The suites' orders, which the modalities return their metrics in.
    assert metric_names("json") == list(JSON_METRIC_NAMES) and metric_names("log") == list(LOG_METRIC_NAMES)
    assert metric_names("graph") == list(GRAPH_METRIC_NAMES)
    # image-text: its own, well_formed_rate, then the embedding suite per side and the text suite on captions
    sides = [f"{side}_{name}" for side in ("image", "text") for name in EXPECTED_NAMES]
    captions = [f"caption_{name}" for name in TEXT_METRIC_NAMES]
    assert metric_names("image_text") == list(IMAGE_TEXT_METRIC_NAMES) + ["well_formed_rate"] + sides + captions
    for name in EXPECTED_NAMES:
        assert REGISTRY[f"image_{name}"].higher_is_better == REGISTRY[name].higher_is_better
    image_text = len(IMAGE_TEXT_METRIC_NAMES) + 1 + len(sides) + len(captions)
    assert len(REGISTRY) == (len(EXPECTED_NAMES) + len(TEXT_METRIC_NAMES) + len(TABULAR_METRICS) + len(reasoning)
                             + len(rationale) + len(AGENT_METRIC_NAMES) + len(JSON_METRIC_NAMES)
                             + len(GRAPH_METRIC_NAMES) + len(LOG_METRIC_NAMES) + image_text + 1)
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.family in FAMILIES
        assert spec.modality in MODALITIES
        assert isinstance(spec.higher_is_better, bool)
        lo, hi = spec.value_range
        assert lo is None or hi is None or lo < hi
        assert spec.citation and spec.description
        assert get_spec(name) is spec


def test_registry_semantics():
    assert {n: REGISTRY[n].higher_is_better for n in EXPECTED_NAMES} == {
        "precision": True, "recall": True, "density": True, "coverage": True,
        "vendi_score": True, "self_cosine_similarity": False,
        "alpha_precision": True, "beta_recall": True, "authenticity": True,
        "mmd2": False, "frechet_distance": False, "eds": True,
        "effective_rank": True, "log_volume_ratio": True,
        "dcr_median": True, "dcr_p05": True, "dcr_real_to_round_median": False, "copy_rate": False,
        "tail_coverage": True, "tail_mass_ratio": True, "mode_coverage": True, "modes_hit": True,
        "cluster_jsd": False,
    }
    assert REGISTRY["precision"].family == "fidelity"
    assert REGISTRY["recall"].family == "coverage"
    assert REGISTRY["vendi_score"].family == "diversity"
    assert REGISTRY["density"].value_range == (0.0, None)
    assert REGISTRY["vendi_score"].value_range == (1.0, None)


def test_registry_lookups():
    with pytest.raises(KeyError, match="unknown metric 'fid'"):
        get_spec("fid")
    assert metric_names("audio") == []


def test_metric_spec_validates_family_and_modality():
    with pytest.raises(ValueError, match="unknown family 'style'"):
        MetricSpec("x", "style", "embedding", True, (0.0, 1.0), "c", "d")
    with pytest.raises(ValueError, match="unknown modality 'audio'"):
        MetricSpec("x", "fidelity", "audio", True, (0.0, 1.0), "c", "d")
