r"""L4: a word n-gram language model retrained on its own samples, started from real English glosses.

The collapse loop (benchmark loop L4, survey §8.1: dynamic feedback-loop
evaluation) follows Shumailov et al. (Nature 2024, "AI models collapse when
trained on recursively generated data"), with the simplest language model that
shows the mechanism: a word-level n-gram model fitted by maximum likelihood,

.. math:: \hat P(w \mid h) = \frac{c(h, w)}{\sum_{w'} c(h, w')},

over sentences padded with ``n - 1`` start tokens ``<s>`` and one end token
``</s>`` (Jurafsky & Martin, *Speech and Language Processing*, ch. 3). There is
no smoothing, so an n-gram that one generation's samples miss has probability
zero in every later generation: the support can only shrink, rare words and
word pairs (the tails) go first.

Generation 0 is fitted on ``n_train`` real glosses drawn (seeded) from the
shipped WordNet 3.0 corpus (:func:`load_wordnet_glosses`); generation ``g + 1``
is fitted only on ``n_samples`` (``M``, the same every generation) sentences
sampled from generation ``g`` at temperature ``tau``,
:math:`P_\tau(w \mid h) \propto \hat P(w \mid h)^{1/\tau}`. Sentences longer
than ``max_tokens`` words are rejected and redrawn, so every training sentence
is complete (ends in ``</s>``) and every context of a refit model has a
continuation.

Sizes: ``n_train = 1000``, ``M = 5000``. With ``M = n_train``
(``n_samples=None``) a bigram seen once (about 9 in 10 bigram types of 1000
glosses: Zipf's tail) is missed by the first refit with probability about
:math:`e^{-1}`, and :math:`D_g` (below) halves by generation 2-3, which leaves a
monitor no rounds to warn in. Five samples per real gloss (synthetic text is
cheap) puts the onset at generation 13-15 for all of 20 seeds tried, mid-way
through the suggested 30 generations; a generation takes about 0.05 s.

Ground truth (from the model's parameters, never from audited text): the
bigram support of generation ``g``,

.. math:: D_g = \left|\{(u, v) : (u, v) \text{ occurs in an } n\text{-gram } (h, w),\
          c_g(h, w) > 0,\ \text{as its last two tokens}\}\right|,

which for a bigram model is the number of nonzero entries of the transition
table, ``<s>`` and ``</s>`` included. The onset is the first generation with
:math:`D_g < D_0 / 2` ("the true model's distinct-bigram mass below 50% of
round 0"). Why the support size: "distinct" names bigram *types*, as distinct-n
does for text (Li et al., NAACL 2016); the model's own probability mass on its
support is identically 1, so a mass reading only makes sense as the counting
measure of the support (this ``D_g``) or as the generation-0 mass of the
surviving support (``bigram_mass_retained`` in ``truth``). The latter is
dominated by frequent bigrams, which survive almost surely, and lags the tails
the benchmark is about (about 0.58 of it is left when :math:`D_g` crosses
one half); it is recorded, not used.

Controls (any alarm is a false alarm; same seed -> same split, reference and
generation-0 model as L4):

* C0 no feedback: every audited round is a fresh draw of real glosses (the
  reference distribution itself, as the issue words it and as
  ``monitor.engine.simulate.control_rounds`` does), disjoint from the reference, so
  audit and reference are exchangeable and any alarm is unambiguously false;
  the truth is the generation-0 model's, constant (nothing is refitted).
  ``source="model0"`` instead audits fresh samples of the fixed generation-0
  model: the matched-generator variant, which also shows the constant gap
  between n-gram text and real text.
* C1 accumulate (Gerstgrasser et al. 2024, "Is model collapse inevitable?"):
  generation ``g + 1`` is fitted on the ``n_train`` real glosses plus all
  ``g + 1`` synthetic sets of ``M`` so far; counts add up and the support
  stays :math:`D_0` (samples cannot add n-grams).
* C2 fresh real: generation ``g + 1`` is fitted on ``M - round(0.1 M)`` own
  samples plus ``round(0.1 M)`` real glosses drawn fresh each generation
  from outside the training and reference glosses.

All returned text (reference and rounds) is in one form, the lower-case
``metrics_core.text.tokenize`` tokens joined by single spaces, so formatting
never tells real from synthetic text.

Randomness: one :class:`numpy.random.SeedSequence` per purpose and generation
(``spawn_key=(purpose, generation)``), so the model trajectory does not depend
on ``audit_every`` and the audit sample of generation ``g`` is the same
whichever generations are audited.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Callable, Sequence

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from metrics_core.text import tokenize
from monitor.meta_evaluation.trace import LoopTrace

BOS, EOS = "<s>", "</s>"
BOS_ID, EOS_ID = 0, 1
CORPUS_FILE = "wordnet_glosses.txt.gz"

DEFAULT_ORDER = 2
DEFAULT_N_TRAIN = 1000
DEFAULT_N_SAMPLES = 5000
DEFAULT_N_AUDIT = 1000
DEFAULT_N_REFERENCE = 1000
DEFAULT_TAU = 1.0
DEFAULT_MAX_TOKENS = 60
DEFAULT_FRESH_FRACTION = 0.1
ONSET_FRACTION = 0.5
MAX_ORDER = 5
# Rejection rounds for over-long sentences; a model needing more is degenerate.
_MAX_REJECTION_ROUNDS = 1000
# Terms of the expected-visits series before entropy_rate falls back to a sparse solve.
_MAX_NEUMANN_TERMS = 20_000

# SeedSequence spawn keys, one per purpose.
_SPLIT, _TRAIN, _AUDIT, _FRESH = 0, 1, 2, 3

#: Suggested (n_generations, audit_every) at the defaults: 31 audited rounds,
#: onset at generation 13-15 for seeds 0-19 (about 1.5 s per L4 run).
SUGGESTED_SCHEDULE = (30, 1)
#: Quick mode: 21 audited rounds, the onset still inside the run.
QUICK_SCHEDULE = (20, 1)


# --------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------


@lru_cache(maxsize=1)
def load_wordnet_glosses() -> tuple[str, ...]:
    r"""The shipped corpus: 20,000 WordNet 3.0 gloss definitions, one per line.

    Read with :mod:`gzip` from ``monitor/data/wordnet_glosses.txt.gz`` (built
    by ``scripts/make_wordnet_corpus.py`` from the Debian package
    ``wordnet-base``; WordNet 3.0 license in ``monitor/data/WORDNET_LICENSE``).
    Lower-case, quotes stripped, sorted. Cached: the tuple is shared.

    Example:
        >>> glosses = load_wordnet_glosses()
        >>> len(glosses), glosses[0] == glosses[0].strip().lower()
        (20000, True)
    """
    data = resources.files("monitor").joinpath("data").joinpath(CORPUS_FILE).read_bytes()
    text = gzip.decompress(data).decode("ascii")
    return tuple(line for line in text.split("\n") if line)


@dataclass(frozen=True)
class EncodedCorpus:
    """A corpus tokenised once.

    Attributes:
        vocabulary: ``("<s>", "</s>", words...)``; a token's id is its index.
        sentences: one int64 id array per text (words only, no padding).
        texts: each text normalised: its tokens joined by single spaces.
    """

    vocabulary: tuple[str, ...]
    sentences: tuple[np.ndarray, ...]
    texts: tuple[str, ...]


def encode_corpus(texts: Sequence[str]) -> EncodedCorpus:
    r"""Tokenise ``texts`` with ``metrics_core.text.tokenize`` and map words to ids.

    Ids 0 and 1 are ``<s>`` and ``</s>``; words get ids 2, 3, ... in order of
    first occurrence. Texts without a word are rejected.

    Args:
        texts: the corpus, a sequence of str.

    Example:
        >>> enc = encode_corpus(["A b.", "a c"])
        >>> enc.vocabulary, [s.tolist() for s in enc.sentences], enc.texts
        (('<s>', '</s>', 'a', 'b', 'c'), [[2, 3], [2, 4]], ('a b', 'a c'))
    """
    if isinstance(texts, str) or len(texts) == 0:
        raise ValueError(f"texts: expected a non-empty sequence of str, got {type(texts).__name__} "
                         f"of length {len(texts)}")
    ids: dict[str, int] = {BOS: BOS_ID, EOS: EOS_ID}
    sentences, normalised = [], []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts[{i}]: expected str, got {type(text).__name__}")
        tokens = tokenize(text)
        if not tokens:
            raise ValueError(f"texts[{i}]: expected at least one word, got {text!r}")
        sentences.append(np.array([ids.setdefault(t, len(ids)) for t in tokens], dtype=np.int64))
        normalised.append(" ".join(tokens))
    return EncodedCorpus(tuple(ids), tuple(sentences), tuple(normalised))


@lru_cache(maxsize=1)
def _encoded_wordnet() -> EncodedCorpus:
    return encode_corpus(load_wordnet_glosses())


def wordnet_vocabulary() -> tuple[str, ...]:
    """The word types of the shipped WordNet gloss corpus, by word id (what :func:`decode` takes)."""
    return tuple(_encoded_wordnet().vocabulary)


def decode(sentence: np.ndarray, vocabulary: Sequence[str]) -> str:
    """Word ids back to normalised text (words joined by single spaces).

    Example:
        >>> decode(np.array([2, 3]), ("<s>", "</s>", "a", "b"))
        'a b'
    """
    return " ".join(vocabulary[i] for i in sentence)


# --------------------------------------------------------------------------
# The n-gram model
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class NgramModel:
    """A maximum-likelihood word n-gram model in sparse (CSR-like) form.

    Attributes:
        order: n.
        n_types: vocabulary size including ``<s>`` and ``</s>`` (ids < n_types).
        grams: ``[K, n]`` int64, the distinct n-grams with nonzero count,
            sorted lexicographically (so rows of one context are contiguous).
        counts: ``[K]`` int64 counts c(h, w).
        contexts: ``[C, n - 1]`` int64 distinct histories h, sorted.
        row_ptr: ``[C + 1]``; context ``i`` owns ``grams[row_ptr[i]:row_ptr[i+1]]``.
        next_context: ``[K]`` index of the context after emitting the gram's
            last token, -1 after ``</s>``.
        start_context: index of the all-``<s>`` history.
    """

    order: int
    n_types: int
    grams: np.ndarray
    counts: np.ndarray
    contexts: np.ndarray
    row_ptr: np.ndarray
    next_context: np.ndarray
    start_context: int


def _check_order(order) -> int:
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 2 <= order <= MAX_ORDER:
        raise ValueError(f"order: expected an int in [2, {MAX_ORDER}], got {order!r}")
    return int(order)


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def _check_tau(tau) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating, np.integer)) or not (
        math.isfinite(tau) and tau > 0
    ):
        raise ValueError(f"tau: expected a finite float > 0, got {tau!r}")
    return float(tau)


def _unique_rows(rows: np.ndarray, *, return_inverse: bool = False, return_counts: bool = False):
    """``np.unique(rows, axis=0, ...)`` via int64 mixed-radix codes when they fit (same row order, ~10x faster)."""
    radix = int(rows.max()) + 1 if rows.size else 1
    if rows.shape[1] == 0 or radix ** rows.shape[1] >= 2**63:
        out = np.unique(rows, axis=0, return_inverse=return_inverse, return_counts=return_counts)
        if return_inverse:  # numpy 2 may shape the inverse [N, 1] for axis=0
            out = (out[0], out[1].ravel(), *out[2:])
        return out
    # Digits are < radix, so comparing codes compares rows lexicographically.
    codes = rows[:, 0].astype(np.int64)
    for j in range(1, rows.shape[1]):
        codes = codes * radix + rows[:, j]
    out = np.unique(codes, return_inverse=return_inverse, return_counts=return_counts)
    unique_codes = out[0] if isinstance(out, tuple) else out
    unique = np.empty((unique_codes.size, rows.shape[1]), dtype=np.int64)
    rest = unique_codes.copy()
    for j in range(rows.shape[1] - 1, -1, -1):
        unique[:, j] = rest % radix
        rest //= radix
    return (unique, *out[1:]) if isinstance(out, tuple) else unique


def count_ngrams(sentences: Sequence[np.ndarray], order: int = DEFAULT_ORDER) -> tuple[np.ndarray, np.ndarray]:
    r"""Distinct n-grams and their counts over padded sentences.

    Sentence :math:`w_1 \dots w_L` is padded to
    :math:`\langle s\rangle^{n-1} w_1 \dots w_L \langle /s\rangle` and yields its
    :math:`L + 1` windows of length n; windows never cross sentences.

    Args:
        sentences: word-id arrays (ids >= 2), each non-empty.
        order: n >= 2.

    Returns:
        ``(grams [K, n] int64 sorted lexicographically, counts [K] int64)``.

    Example:
        >>> g, c = count_ngrams([np.array([2, 3]), np.array([2, 4])])
        >>> g.tolist(), c.tolist()
        ([[0, 2], [2, 3], [2, 4], [3, 1], [4, 1]], [2, 1, 1, 1, 1])
    """
    order = _check_order(order)
    if len(sentences) == 0:
        raise ValueError("sentences: expected at least one sentence, got 0")
    lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    if lengths.min() < 1:
        raise ValueError(f"sentences: expected non-empty sentences, got one of length {int(lengths.min())}")
    words = np.concatenate([np.asarray(s, dtype=np.int64) for s in sentences])
    if words.min() < 2:
        raise ValueError(f"sentences: expected word ids >= 2 (0 and 1 are <s> and </s>), got {int(words.min())}")
    padded_lengths = lengths + order  # n - 1 starts, L words, one end
    offsets = np.concatenate([[0], np.cumsum(padded_lengths)])
    stream = np.full(int(offsets[-1]), BOS_ID, dtype=np.int64)
    word_pos = np.repeat(offsets[:-1] + order - 1, lengths) + (
        np.arange(words.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    )
    stream[word_pos] = words
    stream[offsets[1:] - 1] = EOS_ID
    windows_per_sentence = lengths + 1
    n_windows = int(windows_per_sentence.sum())
    starts = np.repeat(offsets[:-1], windows_per_sentence) + (
        np.arange(n_windows) - np.repeat(np.cumsum(windows_per_sentence) - windows_per_sentence, windows_per_sentence)
    )
    grams = stream[starts[:, None] + np.arange(order)]
    unique, counts = _unique_rows(grams, return_counts=True)
    return unique, counts.astype(np.int64)


def merge_counts(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sum two ``(grams, counts)`` tables (the counts of the union of two training sets).

    Example:
        >>> g, c = merge_counts((np.array([[0, 2]]), np.array([2])), (np.array([[0, 2], [2, 1]]), np.array([1, 3])))
        >>> g.tolist(), c.tolist()
        ([[0, 2], [2, 1]], [3, 3])
    """
    if a[0].shape[1] != b[0].shape[1]:
        raise ValueError(f"merge_counts: expected equal orders, got {a[0].shape[1]} and {b[0].shape[1]}")
    grams, inverse = _unique_rows(np.concatenate([a[0], b[0]]), return_inverse=True)
    counts = np.zeros(len(grams), dtype=np.int64)
    np.add.at(counts, inverse, np.concatenate([a[1], b[1]]).astype(np.int64))  # exact integer sums
    return grams, counts


def model_from_counts(grams: np.ndarray, counts: np.ndarray, n_types: int) -> NgramModel:
    r"""The MLE model :math:`\hat P(w \mid h) = c(h, w) / \sum_{w'} c(h, w')` of a count table.

    Args:
        grams: ``[K, n]`` distinct n-grams sorted lexicographically (as
            :func:`count_ngrams` returns them), from complete padded sentences.
        counts: ``[K]`` positive counts.
        n_types: vocabulary size (every id < n_types).

    Example:
        >>> m = model_from_counts(*count_ngrams([np.array([2, 3]), np.array([2, 4])]), n_types=5)
        >>> m.contexts.ravel().tolist(), m.row_ptr.tolist(), m.next_context.tolist()
        ([0, 2, 3, 4], [0, 1, 3, 4, 5], [1, 2, 3, -1, -1])
    """
    grams = np.asarray(grams, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    if grams.ndim != 2 or grams.shape[0] != counts.shape[0] or grams.shape[0] == 0:
        raise ValueError(f"grams/counts: expected [K, n] and [K] with K > 0, got {grams.shape} and {counts.shape}")
    order = _check_order(grams.shape[1])
    if counts.min() < 1:
        raise ValueError(f"counts: expected positive counts, got minimum {int(counts.min())}")
    if grams.max() >= n_types:
        raise ValueError(f"grams: expected ids < n_types={n_types}, got {int(grams.max())}")
    contexts, context_of_gram = _unique_rows(grams[:, :-1], return_inverse=True)
    if np.any(np.diff(context_of_gram) < 0):
        raise ValueError("grams: expected rows sorted lexicographically (as count_ngrams returns them)")
    row_ptr = np.searchsorted(context_of_gram, np.arange(len(contexts) + 1))
    # Successor history (h[1:], w): look it up among the contexts through one joint unique.
    successors = grams[:, 1:]
    _, joint = _unique_rows(np.concatenate([contexts, successors]), return_inverse=True)
    position = np.full(len(contexts) + len(successors), -1, dtype=np.int64)
    position[joint[: len(contexts)]] = np.arange(len(contexts))
    next_context = position[joint[len(contexts):]]
    ends = grams[:, -1] == EOS_ID
    next_context[ends] = -1
    if np.any(next_context[~ends] < 0):
        raise ValueError("grams: a history has no continuation; expected counts of complete sentences (ending in </s>)")
    start = np.flatnonzero(np.all(contexts == BOS_ID, axis=1))
    if start.size != 1:
        raise ValueError("grams: expected n-grams starting with the all-<s> history")
    return NgramModel(order, int(n_types), grams, counts, contexts, row_ptr, next_context, int(start[0]))


def fit_ngram(sentences: Sequence[np.ndarray], n_types: int, order: int = DEFAULT_ORDER) -> NgramModel:
    r"""Maximum-likelihood (unsmoothed) n-gram model of word-id sentences.

    Args:
        sentences: word-id arrays (ids >= 2), e.g. ``encode_corpus(...).sentences``.
        n_types: vocabulary size, ``len(vocabulary)``.
        order: n >= 2 (2 = bigram).

    Example:
        >>> enc = encode_corpus(["a b", "a c"])
        >>> conditional_probabilities(fit_ngram(enc.sentences, len(enc.vocabulary)), ["a"], enc.vocabulary)
        {'b': 0.5, 'c': 0.5}
    """
    return model_from_counts(*count_ngrams(sentences, order), n_types=n_types)


def transition_probabilities(model: NgramModel, tau: float = DEFAULT_TAU) -> np.ndarray:
    r"""``[K]`` tempered :math:`P_\tau(w \mid h) = c(h,w)^{1/\tau} / \sum_{w'} c(h,w')^{1/\tau}` per gram row.

    Computed in log space (max-subtracted), so small ``tau`` cannot overflow.

    Example:
        >>> m = fit_ngram([np.array([2, 3]), np.array([2, 3]), np.array([2, 4])], n_types=5)
        >>> np.round(transition_probabilities(m, tau=0.5), 3).tolist()
        [1.0, 0.8, 0.2, 1.0, 1.0]
    """
    tau = _check_tau(tau)
    log_weight = np.log(model.counts) / tau
    starts = model.row_ptr[:-1]
    row_of = np.repeat(np.arange(len(starts)), np.diff(model.row_ptr))
    weight = np.exp(log_weight - np.maximum.reduceat(log_weight, starts)[row_of])
    return weight / np.add.reduceat(weight, starts)[row_of]


def conditional_probabilities(model: NgramModel, history: Sequence[str], vocabulary: Sequence[str],
                              tau: float = DEFAULT_TAU) -> dict[str, float]:
    r""":math:`P_\tau(\cdot \mid h)` as ``{word: probability}`` for one history of n - 1 tokens (``<s>`` allowed).

    An unseen history gives ``{}``.

    Example:
        >>> enc = encode_corpus(["a b", "a c", "a b"])
        >>> conditional_probabilities(fit_ngram(enc.sentences, len(enc.vocabulary)), ["<s>"], enc.vocabulary)
        {'a': 1.0}
    """
    if len(history) != model.order - 1:
        raise ValueError(f"history: expected {model.order - 1} tokens, got {len(history)}")
    index = {token: i for i, token in enumerate(vocabulary)}
    if any(token not in index for token in history):
        return {}
    key = np.array([index[token] for token in history], dtype=np.int64)
    row = np.flatnonzero(np.all(model.contexts == key, axis=1))
    if row.size == 0:
        return {}
    lo, hi = model.row_ptr[row[0]], model.row_ptr[row[0] + 1]
    probabilities = transition_probabilities(model, tau)
    return {vocabulary[w]: float(p) for w, p in zip(model.grams[lo:hi, -1], probabilities[lo:hi])}


def sample_ngram(model: NgramModel, n_sentences: int, rng: np.random.Generator, *, tau: float = DEFAULT_TAU,
                 max_tokens: int = DEFAULT_MAX_TOKENS) -> list[np.ndarray]:
    r"""Draw ``n_sentences`` complete sentences from :math:`P_\tau`, all in parallel.

    Each sentence starts from the all-``<s>`` history and draws
    :math:`w_t \sim P_\tau(\cdot \mid h_t)` until ``</s>``; one draw per
    active sentence and step uses one uniform and a ``searchsorted`` on the
    row-offset cumulative probabilities. A sentence with more than
    ``max_tokens`` words is rejected and redrawn (the law is :math:`P_\tau`
    conditioned on length ``<= max_tokens``), so samples always end properly.

    Args:
        model: the n-gram model.
        n_sentences: how many sentences.
        rng: the generator (consumed).
        tau: temperature > 0.
        max_tokens: the longest sentence kept, in words.

    Returns:
        ``n_sentences`` word-id arrays (without ``<s>``/``</s>``).

    Example:
        >>> m = fit_ngram([np.array([2, 3]), np.array([2, 4])], n_types=5)
        >>> [s.tolist() for s in sample_ngram(m, 3, np.random.default_rng(0))]
        [[2, 3], [2, 4], [2, 4]]
    """
    n_sentences = _check_positive_int(n_sentences, "n_sentences")
    max_tokens = _check_positive_int(max_tokens, "max_tokens")
    probabilities = transition_probabilities(model, tau)
    n_rows = len(model.row_ptr) - 1
    row_of = np.repeat(np.arange(n_rows), np.diff(model.row_ptr))
    # Row r's cumulative probabilities live in (r, r + 1]: one global searchsorted serves every row.
    cumulative = np.cumsum(probabilities)
    before_row = np.concatenate([[0.0], cumulative])[model.row_ptr[:-1]]
    keys = row_of + (cumulative - before_row[row_of])
    tokens = model.grams[:, -1]
    out: list[np.ndarray] = []
    for _ in range(_MAX_REJECTION_ROUNDS):
        need = n_sentences - len(out)
        if need == 0:
            return out
        drawn = np.zeros((need, max_tokens + 1), dtype=np.int64)
        context = np.full(need, model.start_context, dtype=np.int64)
        length = np.full(need, -1, dtype=np.int64)  # words before </s>; -1 while running
        active = np.arange(need)
        for step in range(max_tokens + 1):
            ctx = context[active]
            pick = np.searchsorted(keys, ctx + rng.random(active.size), side="right")
            # Rounding can push the pick one past the row's end or before its start.
            pick = np.clip(pick, model.row_ptr[ctx], model.row_ptr[ctx + 1] - 1)
            drawn[active, step] = tokens[pick]
            ended = tokens[pick] == EOS_ID
            length[active[ended]] = step
            context[active] = model.next_context[pick]
            active = active[~ended]
            if active.size == 0:
                break
        kept = np.flatnonzero(length >= 0)
        words = drawn[kept][np.arange(max_tokens + 1) < length[kept, None]]
        if kept.size:  # np.split of nothing would add one empty "sentence"
            out.extend(np.split(words, np.cumsum(length[kept])[:-1]))
    raise RuntimeError(f"sample_ngram: fewer than {n_sentences} sentences of <= {max_tokens} words after "
                       f"{_MAX_REJECTION_ROUNDS} rounds; the model rarely ends a sentence")


# --------------------------------------------------------------------------
# Ground truth from the parameters
# --------------------------------------------------------------------------


def bigram_keys(model: NgramModel) -> np.ndarray:
    r"""Sorted distinct codes :math:`u \cdot V + v` of the model's bigram support (see the module docstring).

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


# --------------------------------------------------------------------------
# Loops
# --------------------------------------------------------------------------


def _stream(seed: int, purpose: int, generation: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(purpose, generation)))


@dataclass(frozen=True)
class _Setup:
    train: np.ndarray  # corpus indices of the M real training glosses
    reference: np.ndarray
    fresh_pool: np.ndarray  # neither training nor reference (when the corpus allows)
    outside_reference: np.ndarray


def _split(seed: int, corpus: EncodedCorpus, n_train: int, n_reference: int) -> _Setup:
    n = len(corpus.sentences)
    if n_train > n:
        raise ValueError(f"n_train: expected at most {n} (corpus size), got {n_train}")
    if n_reference > n:
        raise ValueError(f"n_reference: expected at most {n} (corpus size), got {n_reference}")
    order = _stream(seed, _SPLIT).permutation(n)
    train = order[:n_train]
    # Disjoint from the training glosses when the corpus allows, else the last n_reference.
    reference = order[n_train:n_train + n_reference] if n_train + n_reference <= n else order[n - n_reference:]
    used = np.zeros(n, dtype=bool)
    used[reference] = True
    outside_reference = np.flatnonzero(~used)
    used[train] = True
    fresh_pool = np.flatnonzero(~used)
    return _Setup(train, reference, fresh_pool, outside_reference)


def _draw_real(pool: np.ndarray, k: int, rng: np.random.Generator, name: str) -> np.ndarray:
    if k > pool.size:
        raise ValueError(f"{name}: expected at most {pool.size} (real glosses available), got {k}")
    return pool[rng.choice(pool.size, k, replace=False)]


def _check_common(seed, n_generations, audit_every, order, n_train, n_audit, n_reference, tau, max_tokens):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
    return (
        int(seed),
        _check_positive_int(n_generations, "n_generations"),
        _check_positive_int(audit_every, "audit_every"),
        _check_order(order),
        _check_positive_int(n_train, "n_train"),
        _check_positive_int(n_audit, "n_audit"),
        _check_positive_int(n_reference, "n_reference"),
        _check_tau(tau),
        _check_positive_int(max_tokens, "max_tokens"),
    )


def _run(mode: str, seed, n_generations, audit_every, *, order, n_train, n_samples, n_audit, n_reference, tau,
         max_tokens, fresh_fraction=DEFAULT_FRESH_FRACTION, source="real", corpus=None,
         models_out: list | None = None) -> LoopTrace:
    """One trace of L4 (``mode="L4"``) or a control (``"C0"``, ``"C1"``, ``"C2"``); see the module docstring.

    ``models_out``, when a list, receives the true model of every generation ``0..n_generations`` (read only).
    """
    seed, n_generations, audit_every, order, n_train, n_audit, n_reference, tau, max_tokens = _check_common(
        seed, n_generations, audit_every, order, n_train, n_audit, n_reference, tau, max_tokens)
    n_samples = n_train if n_samples is None else _check_positive_int(n_samples, "n_samples")
    n_fresh = 0
    if mode == "C2":
        if isinstance(fresh_fraction, bool) or not isinstance(fresh_fraction, (int, float, np.floating)) or not (
            0 < fresh_fraction < 1
        ):
            raise ValueError(f"fresh_fraction: expected a float in (0, 1), got {fresh_fraction!r}")
        n_fresh = int(round(fresh_fraction * n_samples))
        if not 1 <= n_fresh < n_samples:
            raise ValueError(f"round(fresh_fraction * n_samples): expected in [1, {n_samples - 1}], got {n_fresh}")
    if mode == "C0" and source not in ("real", "model0"):
        raise ValueError(f"source: expected 'real' or 'model0', got {source!r}")
    encoded = _encoded_wordnet() if corpus is None else encode_corpus(corpus)
    setup = _split(seed, encoded, n_train, n_reference)
    n_types = len(encoded.vocabulary)
    sentences = encoded.sentences

    real_counts = count_ngrams([sentences[i] for i in setup.train], order)
    model = model_from_counts(*real_counts, n_types=n_types)
    generation0_bigrams, generation0_bigram_counts = bigram_counts(model)
    accumulated = real_counts
    frozen = mode == "C0"  # no feedback: the generator never changes
    truth_rows, rounds, generations = [], [], []
    for g in range(n_generations + 1):
        if models_out is not None:
            models_out.append(model)
        if g == 0 or not frozen:
            row = model_truth(model, generation0_bigrams, generation0_bigram_counts, tau)
        truth_rows.append(row)
        if g % audit_every == 0:
            if frozen and source == "real":
                picked = _draw_real(setup.outside_reference, n_audit, _stream(seed, _AUDIT, g), "n_audit")
                rounds.append([encoded.texts[i] for i in picked])
            else:
                audit = sample_ngram(model, n_audit, _stream(seed, _AUDIT, g), tau=tau, max_tokens=max_tokens)
                rounds.append([decode(sentence, encoded.vocabulary) for sentence in audit])
            generations.append(g)
        if g == n_generations or frozen:
            continue
        synthetic = sample_ngram(model, n_samples - n_fresh, _stream(seed, _TRAIN, g), tau=tau,
                                 max_tokens=max_tokens)
        if mode == "L4":
            counts = count_ngrams(synthetic, order)
        elif mode == "C1":
            accumulated = merge_counts(accumulated, count_ngrams(synthetic, order))
            counts = accumulated
        else:  # C2
            pool = setup.fresh_pool if setup.fresh_pool.size >= n_fresh else setup.outside_reference
            fresh = _draw_real(pool, n_fresh, _stream(seed, _FRESH, g), "round(fresh_fraction * n_samples)")
            counts = count_ngrams(synthetic + [sentences[i] for i in fresh], order)
        model = model_from_counts(*counts, n_types=n_types)

    truth = {key: np.array([row[key] for row in truth_rows]) for key in truth_rows[0]}
    truth["distinct_bigram_ratio"] = truth["distinct_bigrams"] / truth["distinct_bigrams"][0]
    params = {"order": order, "n_train": n_train, "n_samples": n_samples, "n_audit": n_audit,
              "n_reference": n_reference, "tau": tau, "max_tokens": max_tokens, "onset_fraction": ONSET_FRACTION,
              "corpus": "wordnet-3.0-glosses" if corpus is None else "custom"}
    if mode == "C2":
        params.update(fresh_fraction=float(fresh_fraction), n_fresh=n_fresh)
    if mode == "C0":
        params["source"] = source
    return LoopTrace(
        name="L4-text" if mode == "L4" else f"{mode}-L4-text",
        kind="collapse" if mode == "L4" else "control",
        modality="text",
        seed=seed,
        reference=[encoded.texts[i] for i in setup.reference],
        rounds=rounds,
        generations=np.array(generations, dtype=np.int64),
        onset=collapse_onset(truth["distinct_bigrams"]) if mode == "L4" else None,
        truth=truth,
        params=params,
    )


_COMMON_ARGS = """
        seed: int >= 0; equal seeds (and arguments) give identical traces.
        n_generations: generations after 0; ``truth`` arrays have ``n_generations + 1`` entries.
        audit_every: audit generations ``0, audit_every, 2 * audit_every, ...``.
        order: n of the n-gram model (2 = bigram).
        n_train: real glosses the generation-0 model is fitted on.
        n_samples: ``M``, sentences each refit is fitted on (None: ``n_train``).
        n_audit: sentences per audit round.
        n_reference: real glosses in the reference, disjoint from the
            training glosses when the corpus allows.
        tau: sampling temperature > 0.
        max_tokens: the longest sentence, in words (longer samples are redrawn).
        corpus: texts to use instead of the shipped WordNet glosses."""


def l4_text(seed: int, n_generations: int, audit_every: int = 1, *, order: int = DEFAULT_ORDER,
            n_train: int = DEFAULT_N_TRAIN, n_samples: int | None = DEFAULT_N_SAMPLES,
            n_audit: int = DEFAULT_N_AUDIT, n_reference: int = DEFAULT_N_REFERENCE, tau: float = DEFAULT_TAU,
            max_tokens: int = DEFAULT_MAX_TOKENS, corpus: Sequence[str] | None = None) -> LoopTrace:
    r"""L4 text: the n-gram model refitted each generation only on its own ``M`` samples.

    Onset: the first generation with :math:`D_g < D_0 / 2`, :math:`D_g` the
    model's distinct bigrams with nonzero probability (module docstring).

    Args:{args}

    Example:
        >>> t = l4_text(0, 2, n_train=50, n_samples=50, n_audit=5, n_reference=5)
        >>> t.name, t.kind, [len(r) for r in t.rounds], t.truth["distinct_bigrams"].shape
        ('L4-text', 'collapse', [5, 5, 5], (3,))
    """
    return _run("L4", seed, n_generations, audit_every, order=order, n_train=n_train, n_samples=n_samples,
                n_audit=n_audit, n_reference=n_reference, tau=tau, max_tokens=max_tokens, corpus=corpus)


def c0_l4_text(seed: int, n_generations: int, audit_every: int = 1, *, source: str = "real",
               order: int = DEFAULT_ORDER, n_train: int = DEFAULT_N_TRAIN, n_samples: int | None = DEFAULT_N_SAMPLES,
               n_audit: int = DEFAULT_N_AUDIT, n_reference: int = DEFAULT_N_REFERENCE, tau: float = DEFAULT_TAU,
               max_tokens: int = DEFAULT_MAX_TOKENS, corpus: Sequence[str] | None = None) -> LoopTrace:
    r"""C0 no feedback: every audited round is a fresh draw, nothing is ever refitted.

    ``source="real"``: ``n_audit`` real glosses drawn without replacement
    from the glosses outside the reference, independently per generation.
    ``source="model0"``: ``n_audit`` fresh samples of the generation-0 model.
    ``truth`` repeats generation 0's values; ``onset`` is None.

    Args:
        source: ``"real"`` or ``"model0"``.{args}

    Example:
        >>> t = c0_l4_text(0, 2, n_train=50, n_samples=50, n_audit=5, n_reference=5)
        >>> t.name, t.onset, t.truth["distinct_bigram_ratio"].tolist()
        ('C0-L4-text', None, [1.0, 1.0, 1.0])
    """
    return _run("C0", seed, n_generations, audit_every, order=order, n_train=n_train, n_samples=n_samples,
                n_audit=n_audit, n_reference=n_reference, tau=tau, max_tokens=max_tokens, source=source,
                corpus=corpus)


def c1_l4_text(seed: int, n_generations: int, audit_every: int = 1, *, order: int = DEFAULT_ORDER,
               n_train: int = DEFAULT_N_TRAIN, n_samples: int | None = DEFAULT_N_SAMPLES,
               n_audit: int = DEFAULT_N_AUDIT, n_reference: int = DEFAULT_N_REFERENCE, tau: float = DEFAULT_TAU,
               max_tokens: int = DEFAULT_MAX_TOKENS, corpus: Sequence[str] | None = None) -> LoopTrace:
    r"""C1 accumulate (Gerstgrasser et al. 2024): refit on all real glosses plus every synthetic set so far.

    Generation ``g`` is fitted on ``n_train + g * M`` sentences (the counts
    add), so its support stays :math:`D_0`; ``onset`` is None.

    Args:{args}

    Example:
        >>> t = c1_l4_text(0, 2, n_train=50, n_samples=50, n_audit=5, n_reference=5)
        >>> t.name, t.truth["distinct_bigram_ratio"].tolist()
        ('C1-L4-text', [1.0, 1.0, 1.0])
    """
    return _run("C1", seed, n_generations, audit_every, order=order, n_train=n_train, n_samples=n_samples,
                n_audit=n_audit, n_reference=n_reference, tau=tau, max_tokens=max_tokens, corpus=corpus)


def c2_l4_text(seed: int, n_generations: int, audit_every: int = 1, *,
               fresh_fraction: float = DEFAULT_FRESH_FRACTION, order: int = DEFAULT_ORDER,
               n_train: int = DEFAULT_N_TRAIN, n_samples: int | None = DEFAULT_N_SAMPLES,
               n_audit: int = DEFAULT_N_AUDIT, n_reference: int = DEFAULT_N_REFERENCE, tau: float = DEFAULT_TAU,
               max_tokens: int = DEFAULT_MAX_TOKENS, corpus: Sequence[str] | None = None) -> LoopTrace:
    r"""C2 fresh real: refit on ``M - k`` own samples plus ``k = round(fresh_fraction * M)`` fresh real glosses.

    The real glosses are drawn anew each generation (without replacement
    within a generation) from outside the training and reference glosses
    (outside the reference only, if that pool is smaller than ``k``);
    ``onset`` is None.

    Args:
        fresh_fraction: the real share of each refit, in (0, 1).{args}

    Example:
        >>> t = c2_l4_text(0, 2, n_train=50, n_samples=50, n_audit=5, n_reference=5)
        >>> t.name, t.params["n_fresh"]
        ('C2-L4-text', 5)
    """
    return _run("C2", seed, n_generations, audit_every, order=order, n_train=n_train, n_samples=n_samples,
                n_audit=n_audit, n_reference=n_reference, tau=tau, max_tokens=max_tokens,
                fresh_fraction=fresh_fraction, corpus=corpus)


for _loop in (l4_text, c0_l4_text, c1_l4_text, c2_l4_text):
    if _loop.__doc__:  # None under python -OO
        _loop.__doc__ = _loop.__doc__.replace("{args}", _COMMON_ARGS)

#: Collapse loops by name, each ``fn(seed, n_generations, audit_every=1, **overrides) -> LoopTrace``.
LOOPS: dict[str, Callable[..., LoopTrace]] = {"L4-text": l4_text}
#: Controls by name (kind "control", onset None), same call signature.
CONTROLS: dict[str, Callable[..., LoopTrace]] = {
    "C0-L4-text": c0_l4_text,
    "C1-L4-text": c1_l4_text,
    "C2-L4-text": c2_l4_text,
}


def run_with_models(run_id: str, seed: int, n_generations: int, audit_every: int = 1,
                    **overrides) -> tuple[LoopTrace, list[NgramModel]]:
    r"""A trace of :data:`LOOPS` or :data:`CONTROLS` together with the true model of every generation.

    The trace is exactly ``{**LOOPS, **CONTROLS}[run_id](seed, n_generations, audit_every, **overrides)``
    (same arguments, same streams); ``models[g]`` is the :class:`NgramModel` that generation ``g``
    samples its audit round from (C0: the generation-0 model every generation, whether the
    rounds are real glosses or model samples). Models are shared, not copied: do not mutate.

    Args:
        run_id: ``"L4-text"``, ``"C0-L4-text"``, ``"C1-L4-text"`` or ``"C2-L4-text"``.
        seed: run seed.
        n_generations: last generation; ``len(models) == n_generations + 1``.
        audit_every: audit stride.
        **overrides: keyword arguments of that function (``n_audit``, ``tau``, ...).

    Example:
        >>> t, models = run_with_models("L4-text", 0, 2, n_train=50, n_samples=50, n_audit=5, n_reference=5)
        >>> len(models), [float(len(m.grams)) for m in models] == t.truth["distinct_ngrams"].tolist()
        (3, True)
    """
    import inspect

    registry = {**LOOPS, **CONTROLS}
    if run_id not in registry:
        raise ValueError(f"run_id: expected one of {sorted(registry)}, got {run_id!r}")
    try:
        bound = inspect.signature(registry[run_id]).bind(seed, n_generations, audit_every, **overrides)
    except TypeError as error:
        raise ValueError(f"overrides: {error}") from None
    bound.apply_defaults()
    args = dict(bound.arguments)
    models: list[NgramModel] = []
    mode = "L4" if run_id == "L4-text" else run_id[:2]
    trace = _run(mode, args.pop("seed"), args.pop("n_generations"), args.pop("audit_every"), **args,
                 models_out=models)
    return trace, models
