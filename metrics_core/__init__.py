"""Pure metric functions for synthetic-data audits: arrays in, numbers out."""

from metrics_core.bootstrap import Estimate, bootstrap_estimate, mean_estimate
from metrics_core.diversity import self_cosine_similarity, vendi_score
from metrics_core.knn import BallStatistics, ball_statistics, default_device, knn_radii, nearest_neighbours
from metrics_core.prdc import density_coverage, prdc_from_statistics, precision_recall
from metrics_core.registry import REGISTRY, MetricSpec, get_spec, metric_names
from metrics_core.sampling import DEFAULT_MAX_SAMPLES, subsample, subsample_indices
from metrics_core.suite import (
    METRICS_VERSION,
    SUITE_GROUPS,
    ReferenceProfile,
    SuiteConfig,
    embedding_suite,
    embedding_suite_group,
    fit_reference_profile,
)

__all__ = [
    "DEFAULT_MAX_SAMPLES",
    "ReferenceProfile",
    "SuiteConfig",
    "fit_reference_profile",
    "subsample",
    "subsample_indices",
    "METRICS_VERSION",
    "REGISTRY",
    "BallStatistics",
    "Estimate",
    "MetricSpec",
    "ball_statistics",
    "bootstrap_estimate",
    "default_device",
    "density_coverage",
    "embedding_suite",
    "embedding_suite_group",
    "SUITE_GROUPS",
    "get_spec",
    "knn_radii",
    "mean_estimate",
    "nearest_neighbours",
    "metric_names",
    "precision_recall",
    "prdc_from_statistics",
    "self_cosine_similarity",
    "vendi_score",
]
