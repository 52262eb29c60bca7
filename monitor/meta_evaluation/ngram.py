"""The word n-gram model of the L4 text loop: the shipped corpus, counts, the MLE fit and tempered sampling.

Part of the L4 text loop (:mod:`monitor.meta_evaluation.textloop`, whose docstring states the model,
its sizes and why); the ground truth from the model's parameters is in
:mod:`monitor.meta_evaluation.ngram_truth`.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Sequence

import numpy as np

from metrics_core._checks import _check_positive_int

from metrics_core.text import tokenize

BOS, EOS = "<s>", "</s>"
BOS_ID, EOS_ID = 0, 1
CORPUS_FILE = "wordnet_glosses.txt.gz"

DEFAULT_ORDER = 2
DEFAULT_TAU = 1.0
DEFAULT_MAX_TOKENS = 60
MAX_ORDER = 5
# Rejection rounds for over-long sentences; a model needing more is degenerate.
_MAX_REJECTION_ROUNDS = 1000


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
