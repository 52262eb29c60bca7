"""The embedding-space suite: every registered embedding metric for one round.

The reference's statistics (k-NN radii, alpha-supports, Gaussian fit,
spectrum, DCR holdout split and baseline, clusters, MMD bandwidth) are fitted
once into a :class:`SuiteReference` and reused every round; callers cache it
keyed by the reference's fingerprint and :meth:`SuiteConfig.reference_key`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import numpy as np
import torch

from metrics_core._checks import _check_embeddings, _check_same_dim
from metrics_core.alpha import AlphaReference, alpha_precision_beta_recall_authenticity_from_reference, fit_alpha_reference
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate
from metrics_core.clusters import ClusterReference, fit_cluster_reference, tail_mode_coverage
from metrics_core.distribution import GaussianStats, embedding_distribution_similarity, fit_gaussian, frechet_distance
from metrics_core.diversity import self_cosine_similarity, vendi_score
from metrics_core.knn import DEFAULT_CHUNK_SIZE, ball_statistics, knn_radii
from metrics_core.mmd import median_heuristic_bandwidth, mmd2
from metrics_core.prdc import prdc_from_statistics
from metrics_core.privacy import DCRReference, distance_to_closest_record, fit_dcr_reference
from metrics_core.registry import metric_names
from metrics_core.sampling import subsample
from metrics_core.spectral import SpectrumReference, effective_rank, fit_spectrum_reference, log_volume_ratio

# Bumped whenever a metric's definition or defaults change; part of every cache key.
METRICS_VERSION = "3"


@dataclass(frozen=True)
class SuiteConfig:
    """Parameters of the embedding suite (defaults are the documented ones).

    ``n_clusters`` is capped at the number of reference rows; MMD, whose cost
    is quadratic, runs on seeded subsamples of at most ``mmd_max_samples``
    rows of each set, with the bandwidth fixed once from the reference so
    values are comparable across rounds.
    """

    k: int = 5
    n_boot: int = 200
    level: float = DEFAULT_LEVEL
    seed: int = 0
    n_alphas: int = 101
    n_clusters: int = 50
    tail_mass: float = 0.1
    holdout_fraction: float = 0.2
    dcr_quantile: float = 0.05
    mmd_max_samples: int = 5000
    chunk_size: int = DEFAULT_CHUNK_SIZE

    _REFERENCE_FIELDS = ("k", "seed", "n_alphas", "n_clusters", "tail_mass", "holdout_fraction", "mmd_max_samples")

    def reference_key(self) -> str:
        """Digest of the fields the reference profile depends on, with METRICS_VERSION."""
        fields = {name: getattr(self, name) for name in self._REFERENCE_FIELDS}
        blob = json.dumps({"version": METRICS_VERSION, **fields}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class SuiteReference:
    """Everything about the reference that the suite reuses every round."""

    config_key: str
    sq_radii: torch.Tensor
    alpha: AlphaReference
    gaussian: GaussianStats
    spectrum: SpectrumReference
    dcr: DCRReference
    clusters: ClusterReference
    mmd_reference: np.ndarray
    mmd_bandwidth: float


def _distinct_rows(ref: torch.Tensor) -> int:
    """Distinct rows in float32, as k-means++ sees them."""
    return int(np.unique(ref.to(torch.float32).cpu().numpy(), axis=0).shape[0])


def fit_suite_reference(reference, config: SuiteConfig | None = None, *, device=None) -> SuiteReference:
    """Fit every reference statistic of the suite once.

    Args:
        reference: ``[N, D]`` float array, ``N >= k + 1``.
        config: suite parameters.
        device: torch device, default CUDA when present else CPU.
    """
    config = config or SuiteConfig()
    ref = _check_embeddings(reference, "reference")
    n = ref.shape[0]
    mmd_ref = subsample(ref.numpy(), config.mmd_max_samples, config.seed)
    return SuiteReference(
        config_key=config.reference_key(),
        sq_radii=knn_radii(ref, config.k, chunk_size=config.chunk_size, device=device, squared=True),
        alpha=fit_alpha_reference(ref, n_alphas=config.n_alphas, chunk_size=config.chunk_size, device=device),
        gaussian=fit_gaussian(ref, device=device),
        spectrum=fit_spectrum_reference(ref, device=device),
        dcr=fit_dcr_reference(ref, config.holdout_fraction, config.seed, chunk_size=config.chunk_size, device=device),
        # k-means++ needs as many distinct rows as clusters: a reference of few distinct rows (10 answers
        # repeated) gets one cluster per distinct row (ClusterReference.k says how many were used).
        clusters=fit_cluster_reference(
            ref, min(config.n_clusters, n, _distinct_rows(ref)), config.tail_mass, config.seed, device=device
        ),
        mmd_reference=mmd_ref,
        mmd_bandwidth=median_heuristic_bandwidth(mmd_ref, seed=config.seed, device=device),
    )


# The suite split into groups that share no computation, so they can run as
# parallel tasks. Groups follow the registry's families where the computations
# allow: one k-NN pass feeds P/R/D/C and DCR, and one alpha fit feeds three
# families, so those stay together.
SUITE_GROUPS: dict[str, tuple[str, ...]] = {
    "neighbourhood": ("precision", "recall", "density", "coverage", "dcr_median", "dcr_p05",
                      "dcr_real_to_round_median", "copy_rate"),
    "alpha": ("alpha_precision", "beta_recall", "authenticity"),
    "distribution": ("mmd2", "frechet_distance", "eds"),
    "diversity": ("vendi_score", "self_cosine_similarity", "effective_rank", "log_volume_ratio"),
    "clusters": ("tail_coverage", "tail_mass_ratio", "mode_coverage", "modes_hit", "cluster_jsd"),
}


def _check_suite_inputs(reference, round_, config, profile, device):
    ref = _check_embeddings(reference, "reference")
    rnd = _check_embeddings(round_, "round")
    _check_same_dim(ref, rnd, "reference", "round")
    if profile is None:
        profile = fit_suite_reference(ref, config, device=device)
    elif profile.config_key != config.reference_key():
        raise ValueError(
            f"profile: fitted for config {profile.config_key}, but the suite runs with {config.reference_key()}"
        )
    return ref, rnd, profile


def embedding_suite_group(
    group: str,
    reference,
    round_,
    *,
    config: SuiteConfig | None = None,
    profile: SuiteReference | None = None,
    device=None,
    **overrides,
) -> dict[str, Estimate]:
    """The metrics of one of :data:`SUITE_GROUPS`, exactly as :func:`embedding_suite` computes them.

    Args:
        group: a key of :data:`SUITE_GROUPS`.
        reference, round_, config, profile, device, overrides: as for
            :func:`embedding_suite`.

    >>> rng = np.random.default_rng(0)
    >>> ref, rnd = rng.normal(size=(60, 4)), rng.normal(size=(50, 4))
    >>> sorted(embedding_suite_group("alpha", ref, rnd, k=3, n_boot=0))
    ['alpha_precision', 'authenticity', 'beta_recall']
    """
    if group not in SUITE_GROUPS:
        raise ValueError(f"group: expected one of {', '.join(SUITE_GROUPS)}, got {group!r}")
    config = dataclasses.replace(config or SuiteConfig(), **overrides)
    ref, rnd, profile = _check_suite_inputs(reference, round_, config, profile, device)
    boot = {"n_boot": config.n_boot, "level": config.level}
    seed = config.seed
    out: dict[str, Estimate] = {}
    if group == "neighbourhood":
        train_mask = np.zeros(ref.shape[0], dtype=bool)
        train_mask[profile.dcr.train_index] = True
        # One pass gives P/R/D/C and the round-to-train distances of DCR.
        stats = ball_statistics(
            ref, rnd, config.k, chunk_size=config.chunk_size, device=device,
            reference_sq_radii=profile.sq_radii, nn_columns=train_mask,
        )
        out.update(prdc_from_statistics(stats, seed=seed, **boot))
        dcr = distance_to_closest_record(
            profile.dcr, rnd, quantile=config.dcr_quantile, seed=seed + 14, chunk_size=config.chunk_size,
            device=device, round_to_train_sq=stats.round_nearest_sq, **boot
        )
        out["dcr_median"] = dcr.dcr_median
        out["dcr_p05"] = dcr.dcr_p05
        out["dcr_real_to_round_median"] = dcr.dcr_real_to_round_median
        out["copy_rate"] = dcr.copy_rate
    elif group == "alpha":
        alpha = alpha_precision_beta_recall_authenticity_from_reference(
            profile.alpha, rnd, seed=seed + 6, chunk_size=config.chunk_size, device=device, **boot
        )
        out["alpha_precision"] = alpha.alpha_precision
        out["beta_recall"] = alpha.beta_recall
        out["authenticity"] = alpha.authenticity
    elif group == "distribution":
        mmd_round = subsample(rnd.numpy(), config.mmd_max_samples, seed + 1)
        out["mmd2"] = mmd2(
            profile.mmd_reference, mmd_round, bandwidth=profile.mmd_bandwidth, seed=seed + 9, device=device, **boot
        ).mmd2
        out["frechet_distance"] = frechet_distance(profile.gaussian, rnd, seed=seed + 10, device=device, **boot)
        out["eds"] = embedding_distribution_similarity(ref, rnd, seed=seed + 11, device=device, **boot)
    elif group == "diversity":
        out["vendi_score"] = vendi_score(rnd, seed=seed + 4, **boot)
        out["self_cosine_similarity"] = self_cosine_similarity(rnd, seed=seed + 5, **boot)
        out["effective_rank"] = effective_rank(rnd, seed=seed + 12, device=device, **boot)
        out["log_volume_ratio"] = log_volume_ratio(
            profile.spectrum, rnd, seed=seed + 13, device=device, **boot).log_volume_ratio
    else:
        clusters = tail_mode_coverage(profile.clusters, rnd, seed=seed + 16, device=device, **boot)
        out["tail_coverage"] = clusters.tail_coverage
        out["tail_mass_ratio"] = clusters.tail_mass_ratio
        out["mode_coverage"] = clusters.mode_coverage
        out["modes_hit"] = clusters.modes_hit
        out["cluster_jsd"] = clusters.cluster_jsd
    return {name: out[name] for name in SUITE_GROUPS[group]}


def embedding_suite(
    reference,
    round_,
    *,
    config: SuiteConfig | None = None,
    profile: SuiteReference | None = None,
    device=None,
    **overrides,
) -> dict[str, Estimate]:
    """Every registered embedding metric of one round, in registry order.

    Args:
        reference: ``[N, D]`` float array (the real data's embeddings).
        round_: ``[M, D]`` float array (the round's embeddings).
        config: suite parameters; ``overrides`` replace single fields
            (``embedding_suite(ref, rnd, k=3, n_boot=0)``).
        profile: the reference's fitted profile for this config (fitted here
            when None).
        device: torch device, default CUDA when present else CPU.

    Returns:
        metric name -> :class:`Estimate`. Seeds: each metric's bootstrap uses
        ``seed`` plus a fixed offset, so equal seeds give equal intervals.
        The union of :func:`embedding_suite_group` over :data:`SUITE_GROUPS`.
    """
    config = dataclasses.replace(config or SuiteConfig(), **overrides)
    ref, rnd, profile = _check_suite_inputs(reference, round_, config, profile, device)
    out: dict[str, Estimate] = {}
    for group in SUITE_GROUPS:
        out.update(embedding_suite_group(group, ref, rnd, config=config, profile=profile, device=device))
    return {name: out[name] for name in metric_names("embedding")}
