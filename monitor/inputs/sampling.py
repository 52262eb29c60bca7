r"""Seeded single-pass subsampling of a file's samples (:mod:`monitor.inputs`).

**Subsampling.** With ``max_samples`` set, a seeded uniform sample of
``min(n, max_samples)`` samples without replacement is drawn in the same
single pass with reservoir sampling, Algorithm L (Li 1994, "Reservoir-sampling
algorithms of time complexity O(n(1 + log(N/n)))", ACM TOMS 20(4)), using
``numpy.random.default_rng(seed)``, and returned in file order. Like
:func:`metrics_core.sampling.subsample_indices` it is deterministic for a
seed, every k-subset is equally likely, and a file with at most
``max_samples`` samples is used whole; unlike it, the rows chosen for a seed
differ, because the number of samples is not known until the pass ends.
Every sample is still validated, so a bad line anywhere refuses the file.
``n_total`` (samples in the file) and ``n_used`` (samples kept) record the
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd



# --------------------------------------------------------------------------
# Reservoir sampling
# --------------------------------------------------------------------------


def _log1mexp(x: float) -> float:
    """log(1 - exp(x)) for x < 0, accurate at both ends."""
    return math.log(-math.expm1(x)) if x > -math.log(2.0) else math.log1p(-math.exp(x))


class _Reservoir:
    """Algorithm L: which stream positions enter which of ``size`` slots.

    The choice depends on the positions and the seed only, so it is the same
    however the stream is chunked.
    """

    def __init__(self, size: int, seed: int):
        self.size = int(size)
        self._rng = np.random.default_rng(seed)
        self._next = 0  # next position that enters the reservoir
        self._log_w = 0.0

    def _uniform(self) -> float:
        u = self._rng.random()
        while u == 0.0:  # log(0) is undefined; the draw is over [0, 1)
            u = self._rng.random()
        return u

    def _advance(self, position: int) -> None:
        self._log_w += math.log(self._uniform()) / self.size
        denominator = _log1mexp(self._log_w)
        if denominator == 0.0:  # W underflowed: no later position can enter
            self._next = math.inf
            return
        self._next = position + math.floor(math.log(self._uniform()) / denominator) + 1

    def picks(self, start: int, stop: int) -> list[tuple[int, int]]:
        """``(position, slot)`` for each position in ``[start, stop)`` that enters, in order.

        Positions must be offered consecutively from 0.
        """
        out = []
        while self._next < stop:
            position = self._next
            if position < self.size:
                slot = position
                if position == self.size - 1:
                    self._advance(position)
                else:
                    self._next = position + 1
            else:
                slot = int(self._rng.integers(self.size))
                self._advance(position)
            out.append((position, slot))
        return out


class _TextCollector:
    def __init__(self, size: int | None, seed: int):
        self._reservoir = _Reservoir(size, seed) if size is not None else None
        self._all: list[str] = []
        self._slots: dict[int, tuple[int, str]] = {}
        self.n = 0

    def add(self, texts: list[str]) -> None:
        if self._reservoir is None:
            self._all.extend(texts)
        else:
            for position, slot in self._reservoir.picks(self.n, self.n + len(texts)):
                self._slots[slot] = (position, texts[position - self.n])
        self.n += len(texts)

    def result(self) -> list[str]:
        if self._reservoir is None:
            return self._all
        return [text for _, text in sorted(self._slots.values(), key=lambda item: item[0])]


class _RowCollector:
    """Keeps the reservoir's rows of each chunk; pieces are compacted to the live rows now and then."""

    def __init__(self, size: int | None, seed: int):
        self._reservoir = _Reservoir(size, seed) if size is not None else None
        self._owner = np.full(size if size is not None else 0, -1, dtype=np.int64)
        self._pieces: list[pd.DataFrame] = []
        self._piece_rows = 0
        self.n = 0

    def add(self, chunk: pd.DataFrame) -> None:
        m = len(chunk)
        if self._reservoir is None:
            positions = np.arange(self.n, self.n + m, dtype=np.int64)
            piece = chunk
        else:
            picks = self._reservoir.picks(self.n, self.n + m)
            for position, slot in picks:
                self._owner[slot] = position
            positions = np.array([p for p, _ in picks], dtype=np.int64)
            piece = chunk.iloc[positions - self.n]
        self.n += m
        if not len(positions):
            return
        piece.index = pd.Index(positions)  # global row numbers, to restore file order
        self._pieces.append(piece)
        self._piece_rows += len(piece)
        if self._reservoir is not None and self._piece_rows > 2 * self._reservoir.size:
            self._pieces = [self._live()]
            self._piece_rows = len(self._pieces[0])

    def _live(self) -> pd.DataFrame:
        frame = pd.concat(self._pieces) if len(self._pieces) > 1 else self._pieces[0]
        if self._reservoir is not None:
            frame = frame[frame.index.isin(self._owner[self._owner >= 0])]
        return frame

    def result(self) -> pd.DataFrame:
        return self._live().sort_index().reset_index(drop=True)


