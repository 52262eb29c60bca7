"""The metric registry: one place that names every metric and its meaning.

Names are snake_case and stable: they become store keys, MLflow keys and
Prometheus label values. The CLI, the store, the alert rules and the exporter
read this registry instead of keeping lists of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES = ("fidelity", "diversity", "coverage", "privacy", "validity")
MODALITIES = ("embedding", "text", "tabular")


@dataclass(frozen=True)
class MetricSpec:
    name: str
    family: str
    modality: str
    higher_is_better: bool
    value_range: tuple[float | None, float | None]  # None: unbounded
    citation: str
    description: str
    # The value of the reference audited against itself, where it is exactly
    # defined (a possible alert baseline); None elsewhere.
    self_value: float | None = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: unknown family {self.family!r}, expected one of {FAMILIES}")
        if self.modality not in MODALITIES:
            raise ValueError(f"{self.name}: unknown modality {self.modality!r}, expected one of {MODALITIES}")


_SPECS = (
    MetricSpec("precision", "fidelity", "embedding", True, (0.0, 1.0),
               "Kynkäänniemi et al. 2019", "share of round points inside the reference k-NN manifold", self_value=1.0),
    MetricSpec("recall", "coverage", "embedding", True, (0.0, 1.0),
               "Kynkäänniemi et al. 2019", "share of reference points inside the round k-NN manifold", self_value=1.0),
    MetricSpec("density", "fidelity", "embedding", True, (0.0, None),
               "Naeem et al. 2020", "mean number of reference balls holding a round point, over k"),
    MetricSpec("coverage", "coverage", "embedding", True, (0.0, 1.0),
               "Naeem et al. 2020", "share of reference balls holding at least one round point", self_value=1.0),
    MetricSpec("vendi_score", "diversity", "embedding", True, (1.0, None),
               "Friedman & Dieng 2023", "effective number of distinct directions (cosine kernel)"),
    MetricSpec("self_cosine_similarity", "diversity", "embedding", False, (-1.0, 1.0),
               "LLM Data Auditor survey §2.2", "mean pairwise cosine similarity of the round"),
    MetricSpec("alpha_precision", "fidelity", "embedding", True, (0.0, 1.0),
               "Alaa et al. 2022", "integrated alpha-precision: round mass inside the reference alpha-supports"),
    MetricSpec("beta_recall", "coverage", "embedding", True, (0.0, 1.0),
               "Alaa et al. 2022", "integrated beta-recall: reference covered by the round beta-supports"),
    MetricSpec("authenticity", "privacy", "embedding", True, (0.0, 1.0),
               "Alaa et al. 2022", "share of round samples not closer to a reference sample than its own neighbour"),
    MetricSpec("mmd2", "fidelity", "embedding", False, (-2.0, 2.0),
               "Gretton et al. 2012", "unbiased squared MMD, RBF kernel, bandwidth fixed by the reference"),
    MetricSpec("frechet_distance", "fidelity", "embedding", False, (0.0, None),
               "Dowson & Landau 1982; Heusel et al. 2017", "Frechet distance between fitted Gaussians", self_value=0.0),
    MetricSpec("eds", "fidelity", "embedding", True, (-1.0, 1.0),
               "LLM Data Auditor survey §2.2", "cosine of the mean L2-normalised embeddings", self_value=1.0),
    MetricSpec("effective_rank", "diversity", "embedding", True, (0.0, None),
               "Roy & Vetterli 2007", "entropy-based effective rank of the round covariance"),
    MetricSpec("log_volume_ratio", "diversity", "embedding", True, (None, None),
               "Roy & Vetterli 2007 (spectrum); this project", "per-axis mean log variance ratio, round vs reference", self_value=0.0),
    MetricSpec("dcr_median", "privacy", "embedding", True, (0.0, None),
               "LLM Data Auditor survey §4.3", "median distance from a round sample to its closest reference record"),
    MetricSpec("dcr_p05", "privacy", "embedding", True, (0.0, None),
               "LLM Data Auditor survey §4.3", "5th percentile of round-to-reference closest-record distances"),
    MetricSpec("dcr_real_to_round_median", "coverage", "embedding", False, (0.0, None),
               "LLM Data Auditor survey §4.3", "median distance from a held-out reference sample to the round"),
    MetricSpec("copy_rate", "privacy", "embedding", False, (0.0, 1.0),
               "LLM Data Auditor survey §4.3", "share of round samples closer to the reference than its holdout baseline"),
    MetricSpec("tail_coverage", "coverage", "embedding", True, (0.0, 1.0),
               "LLM Data Auditor survey §8.1", "share of rare reference clusters the round still hits", self_value=1.0),
    MetricSpec("tail_mass_ratio", "coverage", "embedding", True, (0.0, None),
               "LLM Data Auditor survey §8.1", "round mass on the rare clusters over the reference's", self_value=1.0),
    MetricSpec("mode_coverage", "coverage", "embedding", True, (0.0, 1.0),
               "LLM Data Auditor survey §8.1", "share of reference clusters hit by the round", self_value=1.0),
    MetricSpec("modes_hit", "coverage", "embedding", True, (0.0, None),
               "LLM Data Auditor survey §8.1", "number of reference clusters hit by the round"),
    MetricSpec("cluster_jsd", "coverage", "embedding", False, (0.0, 1.0),
               "Lin 1991", "Jensen-Shannon divergence (base 2) of the cluster histograms", self_value=0.0),
)

REGISTRY: dict[str, MetricSpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> MetricSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known metrics: {', '.join(REGISTRY)}") from None


def metric_names(modality: str | None = None) -> list[str]:
    return [s.name for s in _SPECS if modality is None or s.modality == modality]
