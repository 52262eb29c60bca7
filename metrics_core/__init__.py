"""Pure metric functions for synthetic-data audits: arrays in, numbers out.

The names below are imported on first use (PEP 562), so that ``metrics_core.registry``
and the other torch-free modules load without torch: commands that only read the store
(``status``, ``--help``) must not pay for it.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Estimate": "bootstrap", "bootstrap_estimate": "bootstrap", "mean_estimate": "bootstrap",
    "self_cosine_similarity": "diversity", "vendi_score": "diversity",
    "BallStatistics": "knn", "ball_statistics": "knn", "default_device": "knn", "knn_radii": "knn",
    "nearest_neighbours": "knn",
    "density_coverage": "prdc", "prdc_from_statistics": "prdc", "precision_recall": "prdc",
    "REGISTRY": "registry", "MetricSpec": "registry", "get_spec": "registry", "metric_names": "registry",
    "DEFAULT_MAX_SAMPLES": "sampling", "subsample": "sampling", "subsample_indices": "sampling",
    "METRICS_VERSION": "suite", "SUITE_GROUPS": "suite", "SuiteReference": "suite", "SuiteConfig": "suite",
    "embedding_suite": "suite", "embedding_suite_group": "suite", "fit_suite_reference": "suite",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'metrics_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"metrics_core.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
