"""The assembled embedding suite: identities, degenerate rounds, caching, comparability."""

import math

import numpy as np
import pytest

from metrics_core import Estimate, SuiteConfig, embedding_suite, fit_suite_reference, subsample, subsample_indices
from metrics_core.registry import metric_names
from monitor.modalities import profile_cache
from monitor.inputs.comparability import check_comparable
from monitor.errors import InputError

import pandas as pd

FAST = {"n_boot": 0, "n_clusters": 8, "mmd_max_samples": 400}


def _finite(out):
    return {name: est.value for name, est in out.items() if not math.isfinite(est.value)}


def test_expected_coverage_for_identical_distributions():
    # Naeem et al. 2020, eq. 6: for identical distributions
    # E[coverage] = 1 - prod_{i=1..k} (N - i) / (M + N - i).
    n, m, k, d = 300, 300, 5, 4
    expected = 1 - np.prod([(n - i) / (m + n - i) for i in range(1, k + 1)])
    values = []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        ref, rnd = rng.normal(size=(n, d)), rng.normal(size=(m, d))
        values.append(embedding_suite(ref, rnd, k=k, **FAST)["coverage"].value)
    # 12 rounds of 300 reference balls: the mean is within a few standard errors.
    assert abs(np.mean(values) - expected) < 4 * np.std(values, ddof=1) / math.sqrt(len(values)) + 1e-3
    # by hand: 299/599 * 298/598 * 297/597 * 296/596 * 295/595 = 0.030471...
    assert expected == pytest.approx(0.96953, abs=1e-5)


def test_set_against_itself_identities():
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(250, 6))
    out = embedding_suite(ref, ref, k=5, **FAST)
    assert out["frechet_distance"].value == pytest.approx(0.0, abs=1e-9)
    assert out["precision"].value == 1.0 and out["recall"].value == 1.0 and out["coverage"].value == 1.0
    assert out["eds"].value == pytest.approx(1.0)
    assert out["cluster_jsd"].value == pytest.approx(0.0, abs=1e-12) and out["tail_mass_ratio"].value == 1.0
    assert out["log_volume_ratio"].value == pytest.approx(0.0, abs=1e-9)
    assert out["authenticity"].value == 0.0  # every sample is a copy of a reference record
    # copies of the 80% train part always count; copies of holdout rows only below the baseline quantile
    assert 0.8 <= out["copy_rate"].value < 0.85


def test_swapping_sides_swaps_precision_and_recall():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(200, 5)), rng.normal(size=(180, 5)) * 0.7 + 0.2
    ab, ba = embedding_suite(a, b, **FAST), embedding_suite(b, a, **FAST)
    assert ab["precision"].value == ba["recall"].value
    assert ab["recall"].value == ba["precision"].value
    assert ab["precision"].value != ab["recall"].value


def test_fully_collapsed_round_is_finite_everywhere():
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(200, 6))
    collapsed = np.repeat(ref[:1] + 0.01, 150, axis=0)
    out = embedding_suite(ref, collapsed, n_boot=30, **{k: v for k, v in FAST.items() if k != "n_boot"})
    assert _finite(out) == {}
    for name, est in out.items():
        assert math.isfinite(est.ci_low) and math.isfinite(est.ci_high), name
    assert out["self_cosine_similarity"].value == pytest.approx(1.0)
    assert out["vendi_score"].value == pytest.approx(1.0)
    assert out["recall"].value <= 1 / 200 and out["mode_coverage"].value == 1 / 8
    assert out["effective_rank"].value == 0.0  # documented convention: identical rows


def test_more_dimensions_than_samples_and_constant_features_are_finite():
    rng = np.random.default_rng(6)
    ref = rng.normal(size=(60, 100))
    rnd = rng.normal(size=(50, 100))
    ref[:, 7] = 3.0  # a constant feature
    rnd[:, 7] = 3.0
    out = embedding_suite(ref, rnd, **FAST)
    assert _finite(out) == {}
    assert 0 < out["precision"].value <= 1


def test_too_few_rows_and_bad_values_are_refused():
    rng = np.random.default_rng(7)
    ref = rng.normal(size=(40, 3))
    with pytest.raises(ValueError, match=r"round: expected at least k\+1=6 rows for k=5, got 4"):
        embedding_suite(ref, ref[:4], **FAST)
    bad = ref.copy()
    bad[1, 1] = np.inf
    with pytest.raises(ValueError, match=r"round: 1 NaN or inf values \(first in row 1\)"):
        embedding_suite(ref, bad, **FAST)


def test_profile_must_match_config_and_cache_round_trips(tmp_path):
    rng = np.random.default_rng(8)
    ref, rnd = rng.normal(size=(150, 4)), rng.normal(size=(120, 4))
    config = SuiteConfig(**FAST)
    profile = fit_suite_reference(ref, config)
    with pytest.raises(ValueError, match="profile: fitted for config"):
        embedding_suite(ref, rnd, config=config, profile=profile, k=3)
    profile_cache.save_profile(profile, tmp_path, "p")
    profile_cache._MEMORY.clear()
    loaded = profile_cache.load_profile(tmp_path, "p")
    assert embedding_suite(ref, rnd, config=config, profile=loaded) == embedding_suite(ref, rnd, config=config, profile=profile)
    # a profile cached under the former class names (ReferenceProfile, ...) is still read
    tree = (tmp_path / "p.json").read_text()
    for new, old in (("SuiteReference", "ReferenceProfile"), ("ClusterReference", "ReferenceClusters"),
                     ("SpectrumReference", "ReferenceSpectrum")):
        assert f'"{new}"' in tree
        tree = tree.replace(f'"{new}"', f'"{old}"')
    (tmp_path / "p.json").write_text(tree)
    profile_cache._MEMORY.clear()
    former = profile_cache.load_profile(tmp_path, "p")
    assert embedding_suite(ref, rnd, config=config, profile=former) == embedding_suite(ref, rnd, config=config, profile=profile)
    (tmp_path / "p.json").write_text('{"__dataclass__": "Popen", "fields": {}}')
    profile_cache._MEMORY.clear()
    # a tampered entry names a class outside the allow-list: refused, so it is refitted
    assert profile_cache.load_profile(tmp_path, "p") is None


def test_subsampling_is_seeded_and_sized():
    x = np.arange(100.0)[:, None]
    a, b = subsample(x, 10, seed=1), subsample(x, 10, seed=1)
    assert np.array_equal(a, b) and a.shape == (10, 1)
    assert not np.array_equal(subsample(x, 10, seed=2), a)
    assert subsample(x, 500, seed=1) is x
    assert np.array_equal(subsample_indices(100, 10, 1), np.sort(subsample_indices(100, 10, 1)))


def test_comparability_refuses_other_sizes_and_references():
    existing = pd.DataFrame({"round": [0, 1], "n_reference": [100, 100], "n_round": [80, 80], "reference_fingerprint": ["r" * 64] * 2})
    check_comparable(existing, "L", 2, n_reference=100, n_round=80, reference_fingerprint="r" * 64)
    check_comparable(existing, "L", 1, n_reference=100, n_round=80, reference_fingerprint="r" * 64)
    with pytest.raises(InputError, match=r"loop L round 2: audited at N=100 M=60 .* other rounds used N=100 M=80"):
        check_comparable(existing, "L", 2, n_reference=100, n_round=60, reference_fingerprint="r" * 64)
    check_comparable(existing, "L", 2, n_reference=100, n_round=60, reference_fingerprint="r" * 64, allow_size_change=True)
    with pytest.raises(InputError, match="the reference differs"):
        check_comparable(existing, "L", 2, n_reference=100, n_round=80, reference_fingerprint="x" * 64, allow_size_change=True)
    # re-auditing the only round is always allowed
    check_comparable(existing[existing["round"] == 0], "L", 0, n_reference=5, n_round=5, reference_fingerprint="z" * 64)


def test_every_metric_has_an_interval_with_bootstrap():
    rng = np.random.default_rng(9)
    ref, rnd = rng.normal(size=(200, 5)), rng.normal(size=(160, 5)) * 0.9
    out = embedding_suite(ref, rnd, n_boot=40, n_clusters=8, mmd_max_samples=400)
    assert list(out) == metric_names("embedding")
    for name, est in out.items():
        assert est.ci_low <= est.value <= est.ci_high, name
        assert est.std_error >= 0, name


def test_fused_dcr_equals_the_direct_query():
    from metrics_core.privacy import distance_to_closest_record

    rng = np.random.default_rng(10)
    ref = rng.normal(size=(600, 12))
    rnd = np.concatenate([rng.normal(size=(300, 12)), ref[:40]])  # 40 exact copies
    config = SuiteConfig(n_boot=30, n_clusters=8)
    profile = fit_suite_reference(ref, config)
    out = embedding_suite(ref, rnd, config=config, profile=profile)
    direct = distance_to_closest_record(profile.dcr, rnd, seed=config.seed + 14, n_boot=30)
    for name in ("dcr_median", "dcr_p05", "dcr_real_to_round_median", "copy_rate"):
        fused, alone = out[name], getattr(direct, name)
        # both exact in float64; they centre on different means, so the last digit may differ
        for a, b in zip((fused.value, fused.ci_low, fused.ci_high), (alone.value, alone.ci_low, alone.ci_high)):
            assert a == pytest.approx(b, rel=1e-12, abs=1e-12), name
    copies_in_train = np.isin(np.arange(40), profile.dcr.train_index).sum()
    assert out["copy_rate"].value >= copies_in_train / rnd.shape[0]


def test_block_moments_reproduce_the_full_covariance():
    import torch

    from metrics_core._moments import BlockMoments

    rng = np.random.default_rng(11)
    x = torch.from_numpy(rng.normal(size=(3000, 7)) * 3 + 5)
    blocks = BlockMoments(x, seed=0)
    mean, cov = blocks.moments(np.ones(blocks.n_blocks))
    assert torch.allclose(mean, x.mean(dim=0), atol=1e-12)
    assert torch.allclose(cov, torch.cov(x.T), atol=1e-10)
    # taking block 0 twice and block 1 not at all is the covariance of that multiset
    c = np.ones(blocks.n_blocks)
    c[0], c[1] = 2, 0
    perm = np.random.default_rng(0).permutation(3000)
    parts = np.array_split(perm, blocks.n_blocks)
    rows = np.concatenate([parts[0], parts[0], *parts[2:]])
    assert torch.allclose(blocks.moments(c)[1], torch.cov(x[rows].T), atol=1e-10)


def test_block_bootstrap_matches_the_row_bootstrap_spread(monkeypatch):
    from metrics_core import _moments
    from metrics_core.distribution import fit_gaussian, frechet_distance
    from metrics_core.spectral import effective_rank

    rng = np.random.default_rng(12)
    ref = rng.normal(size=(3000, 24))
    rnd = rng.normal(size=(3000, 24)) * np.linspace(0.6, 1.4, 24)
    stats = fit_gaussian(ref)
    from metrics_core.diversity import vendi_score

    def estimates():
        return (effective_rank(rnd, n_boot=300, seed=2), frechet_distance(stats, rnd, n_boot=300, seed=2),
                vendi_score(rnd, n_boot=300, seed=2))

    blocked = estimates()
    monkeypatch.setattr(_moments, "BLOCK_BOOTSTRAP_MIN_ROWS", 10**9)
    rows = estimates()
    for b, r in zip(blocked, rows):
        assert b.value == r.value  # the point estimate never changes
        # 64 blocks estimate the standard error to about 9%; allow four times that
        assert abs(b.std_error / r.std_error - 1) < 0.36
    identical = np.repeat(rng.normal(size=(1, 24)), 3000, axis=0)
    assert effective_rank(identical, n_boot=50) == Estimate(0.0, 0.0, 0.0, 0.0)


def test_groups_partition_the_suite_and_reproduce_it_exactly():
    from metrics_core import SUITE_GROUPS, embedding_suite_group, metric_names

    grouped = [name for names in SUITE_GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(metric_names("embedding")) and len(grouped) == len(set(grouped))
    rng = np.random.default_rng(3)
    ref, rnd = rng.normal(size=(120, 6)), rng.normal(size=(90, 6)) * 0.7
    config = SuiteConfig(k=4, n_boot=20, seed=5)
    profile = fit_suite_reference(ref, config)
    whole = embedding_suite(ref, rnd, config=config, profile=profile)
    parts = {}
    for group in reversed(list(SUITE_GROUPS)):  # order does not matter: every group seeds its own bootstrap
        parts.update(embedding_suite_group(group, ref, rnd, config=config, profile=profile))
    assert parts == whole
    with pytest.raises(ValueError, match="group: expected one of neighbourhood, alpha"):
        embedding_suite_group("fidelity", ref, rnd, config=config, profile=profile)


def test_a_reference_of_few_distinct_rows_gets_one_cluster_per_row():
    rng = np.random.default_rng(12)
    distinct = rng.normal(size=(10, 6))
    reference = np.repeat(distinct, 6, axis=0)  # 10 short answers, each repeated: k-means++ finds 10 points
    profile = fit_suite_reference(reference, SuiteConfig(k=3, n_boot=0, n_clusters=50))
    assert profile.clusters.centres.shape[0] == 10
    assert sorted(profile.clusters.counts.tolist()) == [6] * 10
    out = embedding_suite(reference, rng.normal(size=(40, 6)), k=3, n_boot=0, n_clusters=50)
    assert 0.0 <= out["mode_coverage"].value <= 1.0 and math.isfinite(out["cluster_jsd"].value)
