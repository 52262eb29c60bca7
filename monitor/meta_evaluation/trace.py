"""The data a benchmark loop hands to the runner: what was audited, and when collapse truly began."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metrics_core.registry import ROUND_MODALITIES


@dataclass(frozen=True)
class LoopTrace:
    """One seeded run of a collapse loop or a control.

    ``rounds[i]`` is the audit sample of generation ``generations[i]``: a fixed
    number of fresh samples drawn from that generation's model (the monitor
    audits generated data; the model's own training-set size ``M`` is what
    drives collapse). ``reference`` is fixed across rounds. ``onset`` is the
    first *generation* past the ground-truth collapse onset, computed from the
    generator's true parameters (``truth``), never from audited metrics; None
    when onset is not reached within the run and always None for controls.

    Attributes:
        name: loop id, e.g. ``"L1-d16-M100"`` or ``"C0-L1-d16-M100"``.
        kind: ``"collapse"`` or ``"control"``.
        modality: ``"embedding"`` ([n, d] float arrays), ``"text"`` (lists of
            str) or ``"tabular"`` (pandas DataFrames).
        seed: the run's seed; equal seeds give identical traces.
        reference: the reference set, same modality and size every run.
        rounds: audit samples, one per audited generation, all the same size.
        generations: ``[len(rounds)]`` int, increasing generation numbers.
        onset: first generation past onset, or None.
        truth: per-generation true quantities behind the onset
            (name -> ``[n_generations + 1]`` array, index = generation).
        params: the loop's parameters (d, M, tau, ...), for tables.
    """

    name: str
    kind: str
    modality: str
    seed: int
    reference: Any
    rounds: list
    generations: np.ndarray
    onset: int | None
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("collapse", "control"):
            raise ValueError(f"kind: expected 'collapse' or 'control', got {self.kind!r}")
        if self.modality not in ROUND_MODALITIES:
            raise ValueError(f"modality: expected one of {', '.join(ROUND_MODALITIES)}, got {self.modality!r}")
        if len(self.rounds) != len(self.generations):
            raise ValueError(f"rounds: {len(self.rounds)} audit samples for {len(self.generations)} generations")
        if self.kind == "control" and self.onset is not None:
            raise ValueError(f"{self.name}: a control has no onset, got {self.onset}")
