"""Ground truth of the L4 text loop from an n-gram model's parameters: bigram support, entropy rate, onset.

Part of the L4 text loop (:mod:`monitor.meta_evaluation.textloop`, whose docstring defines
:math:`D_g` and the onset); the model is :class:`monitor.meta_evaluation.ngram.NgramModel`.
"""

from __future__ import annotations

import math  # noqa: F401 - the examples use it

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from monitor.meta_evaluation.ngram import DEFAULT_TAU, NgramModel, transition_probabilities
from monitor.meta_evaluation.ngram import fit_ngram  # noqa: F401 - the examples use it

ONSET_FRACTION = 0.5
# Terms of the expected-visits series before entropy_rate falls back to a sparse solve.
_MAX_NEUMANN_TERMS = 20_000


# --------------------------------------------------------------------------
# Ground truth from the parameters
# --------------------------------------------------------------------------


def bigram_keys(model: NgramModel) -> np.ndarray:
    r"""Sorted distinct codes :math:`u \cdot V + v` of the model's bigram support (see the textloop docstring).

    The last two tokens of every nonzero n-gram; for ``order == 2`` these are
    the n-grams themselves.

    Example:
        >>> bigram_keys(fit_ngram([np.array([2, 3]), np.array([2, 4])], n_types=5)).tolist()
        [2, 13, 14, 16, 21]
    """
    return np.unique(model.grams[:, -2] * model.n_types + model.grams[:, -1])


def entropy_rate(model: NgramModel, tau: float = DEFAULT_TAU) -> tuple[float, float]:
    r"""Per-token entropy (nats) and expected tokens per sentence of :math:`P_\tau`, without the length cap.

    With :math:`Q` the context-to-context transition matrix (``</s>`` absorbs),
    the expected visits to each history are
    :math:`v = \sum_{k \ge 0} (Q^\top)^k e_{\text{start}}`, i.e. the solution of
    :math:`(I - Q^\top) v = e_{\text{start}}`; then
    :math:`H_{\text{sentence}} = \sum_h v_h H(P_\tau(\cdot \mid h))`,
    :math:`E[T] = \sum_h v_h` (tokens including ``</s>``), and the rate is
    :math:`H_{\text{sentence}} / E[T]` (Cover & Thomas, ch. 4). The series is
    summed until the mass still running, :math:`P(T > k)`, is below 1e-13
    (a sparse LU solve takes over after :data:`_MAX_NEUMANN_TERMS` terms).

    Example:
        >>> m = fit_ngram([np.array([2, 3]), np.array([2, 4])], n_types=5)
        >>> rate, length = entropy_rate(m)
        >>> round(rate, 6) == round(math.log(2) / 3, 6), length
        (True, 3.0)
    """
    probabilities = transition_probabilities(model, tau)
    n_rows = len(model.row_ptr) - 1
    row_of = np.repeat(np.arange(n_rows), np.diff(model.row_ptr))
    moves = model.next_context >= 0
    q_transposed = scipy.sparse.csr_matrix(
        (probabilities[moves], (model.next_context[moves], row_of[moves])), shape=(n_rows, n_rows))
    running = np.zeros(n_rows)
    running[model.start_context] = 1.0
    visits = np.zeros(n_rows)
    for _ in range(_MAX_NEUMANN_TERMS):
        visits += running
        running = q_transposed @ running
        if running.sum() < 1e-13:
            break
    else:  # a very slowly ending chain: solve exactly instead
        start = np.zeros(n_rows)
        start[model.start_context] = 1.0
        system = (scipy.sparse.identity(n_rows, format="csc") - q_transposed).tocsc()
        visits = scipy.sparse.linalg.spsolve(system, start, permc_spec="MMD_AT_PLUS_A")
    row_entropy = np.bincount(row_of, weights=-probabilities * np.log(probabilities), minlength=n_rows)
    expected_tokens = float(visits.sum())
    return float(visits @ row_entropy) / expected_tokens, expected_tokens


def model_truth(model: NgramModel, reference_bigrams: np.ndarray, reference_counts: np.ndarray,
                tau: float = DEFAULT_TAU) -> dict[str, float]:
    r"""The true quantities of one generation's model.

    Returns ``distinct_bigrams`` (:math:`D_g`), ``distinct_ngrams`` (nonzero
    n-grams), ``vocabulary_size`` (words with nonzero probability, ``<s>`` and
    ``</s>`` excluded), ``bigram_mass_retained``
    (:math:`\sum_{b \in S_g} c_0(b) / \sum_b c_0(b)` with generation-0 bigram
    codes ``reference_bigrams`` and counts ``reference_counts``),
    ``entropy_rate`` and ``expected_tokens`` (:func:`entropy_rate`).

    Example:
        >>> m = fit_ngram([np.array([2, 3]), np.array([2, 4])], n_types=5)
        >>> t = model_truth(m, bigram_keys(m), np.ones(5))
        >>> t["distinct_bigrams"], t["vocabulary_size"], t["bigram_mass_retained"]
        (5.0, 3.0, 1.0)
    """
    keys = bigram_keys(model)
    words = np.unique(model.grams[:, -1])
    rate, expected_tokens = entropy_rate(model, tau)
    kept = np.isin(reference_bigrams, keys)
    return {
        "distinct_bigrams": float(keys.size),
        "distinct_ngrams": float(len(model.grams)),
        "vocabulary_size": float(np.count_nonzero(words >= 2)),
        "bigram_mass_retained": float(reference_counts[kept].sum() / reference_counts.sum()),
        "entropy_rate": rate,
        "expected_tokens": expected_tokens,
    }


def bigram_counts(model: NgramModel) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, counts)`` of the bigrams (last two tokens of each n-gram) in the model's training data.

    Example:
        >>> bigram_counts(fit_ngram([np.array([2, 3]), np.array([2, 4])], n_types=5))[1].tolist()
        [2, 1, 1, 1, 1]
    """
    codes, inverse = np.unique(model.grams[:, -2] * model.n_types + model.grams[:, -1], return_inverse=True)
    counts = np.zeros(len(codes), dtype=np.int64)
    np.add.at(counts, inverse.ravel(), model.counts)
    return codes, counts


def collapse_onset(distinct_bigrams: np.ndarray, fraction: float = ONSET_FRACTION) -> int | None:
    r"""First generation :math:`g` with :math:`D_g < \text{fraction} \cdot D_0`, or None.

    Example:
        >>> collapse_onset(np.array([10, 8, 5, 4])), collapse_onset(np.array([10, 8, 5]))
        (3, None)
    """
    d = np.asarray(distinct_bigrams, dtype=float)
    if d.ndim != 1 or d.size == 0 or not d[0] > 0:
        raise ValueError(f"distinct_bigrams: expected a non-empty 1-d series with D_0 > 0, got shape {d.shape}")
    if not 0 < fraction < 1:
        raise ValueError(f"fraction: expected a float in (0, 1), got {fraction!r}")
    below = np.flatnonzero(d < fraction * d[0])
    return int(below[0]) if below.size else None
