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
    value_range: tuple[float, float | None]  # None: unbounded above
    citation: str
    description: str

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: unknown family {self.family!r}, expected one of {FAMILIES}")
        if self.modality not in MODALITIES:
            raise ValueError(f"{self.name}: unknown modality {self.modality!r}, expected one of {MODALITIES}")


_SPECS = (
    MetricSpec("precision", "fidelity", "embedding", True, (0.0, 1.0),
               "Kynkäänniemi et al. 2019", "share of round points inside the reference k-NN manifold"),
    MetricSpec("recall", "coverage", "embedding", True, (0.0, 1.0),
               "Kynkäänniemi et al. 2019", "share of reference points inside the round k-NN manifold"),
    MetricSpec("density", "fidelity", "embedding", True, (0.0, None),
               "Naeem et al. 2020", "mean number of reference balls holding a round point, over k"),
    MetricSpec("coverage", "coverage", "embedding", True, (0.0, 1.0),
               "Naeem et al. 2020", "share of reference balls holding at least one round point"),
    MetricSpec("vendi_score", "diversity", "embedding", True, (1.0, None),
               "Friedman & Dieng 2023", "effective number of distinct directions (cosine kernel)"),
    MetricSpec("self_cosine_similarity", "diversity", "embedding", False, (-1.0, 1.0),
               "LLM Data Auditor survey §2.2", "mean pairwise cosine similarity of the round"),
)

REGISTRY: dict[str, MetricSpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> MetricSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known metrics: {', '.join(REGISTRY)}") from None


def metric_names(modality: str | None = None) -> list[str]:
    return [s.name for s in _SPECS if modality is None or s.modality == modality]
