r"""The reference profile of real texts and the reference-relative metrics (coverage, tails, JSD, length KS).

Part of :mod:`metrics_core.text` (its docstring states the tokenisation and the uncertainty rules).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from metrics_core._checks import _check_tail_mass
from metrics_core.clusters import jensen_shannon_divergence, tail_clusters
from metrics_core.text_validity import (
    ValidityBaseline,
    fit_validity_baseline,
)
from metrics_core.univariate import ks_statistic
from metrics_core.text.stats import DEFAULT_TAIL_MASS, TextStats, _as_stats, _readonly


@dataclass(frozen=True, eq=False)
class TextReference:
    """The reference texts' vocabulary and lengths, fitted once (:func:`fit_text_reference`).

    Attributes:
        types: the reference's distinct tokens, sorted by string.
        counts: ``[V]`` int64 frequency of each type (read-only).
        type_index: type -> position in ``types``.
        rare_types: the rare types (see :func:`fit_text_reference`).
        tail_mass: the token-mass share that defined them.
        lengths: ``[N]`` int64 token lengths of the reference samples, sorted (read-only).
        validity: the reference's validity checks (validity is reported relative to them).
    """

    types: tuple[str, ...]
    counts: np.ndarray
    type_index: dict[str, int]
    rare_types: frozenset[str]
    tail_mass: float
    lengths: np.ndarray
    validity: ValidityBaseline

    @property
    def n_samples(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.counts.sum())

    @property
    def rare_mass(self) -> float:
        """Share of reference tokens that are rare types (at most ``tail_mass`` unless one type exceeds it)."""
        return sum(int(self.counts[self.type_index[t]]) for t in self.rare_types) / self.n_tokens


def fit_text_reference(texts, *, tail_mass: float = DEFAULT_TAIL_MASS) -> TextReference:
    r"""Fit the reference profile once: type frequencies, rare types, token lengths, validity checks.

    Rare types: types are sorted by frequency ascending, ties by the type
    string (code-point order); the rare set is the longest prefix whose
    cumulative share of reference tokens is :math:`\le` ``tail_mass``, so the
    type that would cross the boundary is excluded, but at least the first
    type is always included (:func:`metrics_core.clusters.tail_clusters`, the
    rule the embedding tail uses).

    Args:
        texts: non-empty list of ``str`` with at least one token, or its :class:`TextStats`.
        tail_mass: share in (0, 1) of reference tokens held by the rare types.

    Example:
        >>> ref = fit_text_reference(["a a a a a a b b c d"], tail_mass=0.2)
        >>> sorted(ref.rare_types), ref.rare_mass  # c, d hold 2/10; b would cross 0.2
        (['c', 'd'], 0.2)
    """
    tail_mass = _check_tail_mass(tail_mass)
    stats = _as_stats(texts, name="reference")
    if stats.n_tokens == 0:
        raise ValueError("reference: expected at least one token, got none (every sample is empty or punctuation)")
    order = sorted(range(len(stats.vocabulary)), key=stats.vocabulary.__getitem__)
    types = tuple(stats.vocabulary[i] for i in order)
    counts = stats.type_counts[np.asarray(order, dtype=np.int64)].astype(np.int64)
    rare = tail_clusters(counts, tail_mass)  # positions in string order: ties go to the smaller string
    return TextReference(
        types=types,
        counts=_readonly(counts),
        type_index={t: i for i, t in enumerate(types)},
        rare_types=frozenset(types[i] for i in rare),
        tail_mass=tail_mass,
        lengths=_readonly(np.sort(stats.lengths)),
        validity=fit_validity_baseline(list(stats.texts)),
    )


def _as_reference(reference) -> TextReference:
    return reference if isinstance(reference, TextReference) else fit_text_reference(reference)


def vocab_tail_coverage(reference, texts) -> float:
    r"""Share of the reference's rare types that occur at least once in the round.

    .. math:: \text{vocab\_tail\_coverage} = \frac{|\mathcal{R} \cap \mathrm{Types}(\text{round})|}{|\mathcal{R}|},

    :math:`\mathcal{R}` the rare types of :func:`fit_text_reference` (the
    lowest-frequency types holding ``tail_mass`` of the reference tokens).
    Range [0, 1], higher is better; collapse loses the tail first
    (Shumailov et al. 2024). Like every hit count it grows with the round
    size: compare rounds of equal size.

    Args:
        reference: :class:`TextReference` (or reference texts, fitted with defaults).
        texts: the round, list of ``str`` or :class:`TextStats`.

    Example:
        >>> ref = fit_text_reference(["a a a a a a b b c d"], tail_mass=0.2)
        >>> vocab_tail_coverage(ref, ["a c e"])
        0.5
    """
    ref = _as_reference(reference)
    round_types = set(_as_stats(texts, name="round").vocabulary)
    return len(ref.rare_types & round_types) / len(ref.rare_types)


def vocab_coverage(reference, texts) -> float:
    r"""Share of the reference's types that occur at least once in the round.

    .. math:: \text{vocab\_coverage} = \frac{|\mathrm{Types}(\text{ref}) \cap \mathrm{Types}(\text{round})|}{|\mathrm{Types}(\text{ref})|}

    Range [0, 1], higher is better; grows with the round size.

    Example:
        >>> vocab_coverage(["a b c d"], ["a b x"])
        0.5
    """
    ref = _as_reference(reference)
    round_types = _as_stats(texts, name="round").vocabulary
    return sum(1 for t in round_types if t in ref.type_index) / len(ref.types)


def _aligned_unigrams(ref: TextReference, stats: TextStats) -> tuple[np.ndarray, np.ndarray]:
    """Round and reference unigram counts on the union vocabulary (reference types first)."""
    pos = np.fromiter((ref.type_index.get(t, -1) for t in stats.vocabulary), dtype=np.int64, count=len(stats.vocabulary))
    known = pos >= 0
    round_counts = stats.type_counts.astype(np.float64)
    p = np.zeros(len(ref.types), dtype=np.float64)
    p[pos[known]] = round_counts[known]
    p = np.concatenate([p, round_counts[~known]])
    q = np.concatenate([ref.counts.astype(np.float64), np.zeros(int((~known).sum()))])
    return p, q


def unigram_jsd(reference, texts) -> float:
    r"""Jensen–Shannon divergence in bits (Lin 1991) of round vs reference unigram distributions.

    .. math:: \mathrm{JSD}(p, q) = \tfrac12 \mathrm{KL}(p \Vert m) + \tfrac12 \mathrm{KL}(q \Vert m), \quad m = \tfrac12(p+q),

    :math:`p, q` the token frequencies of round and reference on the union
    of their vocabularies, :math:`\log_2`
    (:func:`metrics_core.clusters.jensen_shannon_divergence`). Range [0, 1],
    lower is better; NaN when the round has no tokens. Point estimate.

    Example:
        >>> unigram_jsd(["a b"], ["a b a b"]), unigram_jsd(["a"], ["b"])
        (0.0, 1.0)
    """
    ref = _as_reference(reference)
    stats = _as_stats(texts, name="round")
    if stats.n_tokens == 0:
        return math.nan
    return jensen_shannon_divergence(*_aligned_unigrams(ref, stats))


def length_ks(reference, texts) -> float:
    r"""KS statistic between round and reference sample lengths in tokens (Smirnov 1939).

    .. math:: D = \sup_\ell \big| F_{\text{round}}(\ell) - F_{\text{ref}}(\ell) \big|,

    :math:`F` the empirical CDFs of :func:`tokenize` lengths; equals
    ``scipy.stats.ks_2samp(round, ref).statistic``. Range [0, 1], lower is
    better (collapse often shortens or homogenises lengths). Point estimate.

    Example:
        >>> length_ks(["a b", "a b c"], ["x y", "x y z"]), length_ks(["a"], ["x y"])
        (0.0, 1.0)
    """
    ref = _as_reference(reference)
    return ks_statistic(_as_stats(texts, name="round").lengths, ref.lengths)
