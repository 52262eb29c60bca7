"""The detector interface (as river's ``drift`` detectors): ``update`` with one observation, then read the state."""

from __future__ import annotations

import abc


class Detector(abc.ABC):
    """A sequential detector over one stream of per-round scores."""

    @abc.abstractmethod
    def update(self, score: float) -> float:
        """Add one round's score and return the detector's statistic after it."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget every round seen."""
