r"""Tokenisation and the sufficient statistics of a set of texts (token ids, offsets, n-gram counts).

Part of :mod:`metrics_core.text` (its docstring states the tokenisation and the uncertainty rules).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from metrics_core._checks import _check_positive_int, _check_texts


TOKEN_PATTERN = r"\w+(?:'\w+)*"
TOKEN_RE = re.compile(TOKEN_PATTERN)
DEFAULT_MAX_N = 4
DEFAULT_MATTR_WINDOW = 50
DEFAULT_TAIL_MASS = 0.1

def tokenize(text: str) -> list[str]:
    r"""Lower-cased word tokens of ``text`` (see the module docstring for the rule).

    Example:
        >>> tokenize("Don’t STOP—the café's 2 e-mails!")
        ["don't", 'stop', 'the', "café's", '2', 'e', 'mails']
    """
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return TOKEN_RE.findall(text.replace("\u2019", "'").lower())

@dataclass(frozen=True, eq=False)
class TextStats:
    """One set of texts tokenised once (see :func:`text_stats`).

    Attributes:
        texts: the samples, as given.
        vocabulary: the distinct tokens, indexed by token id (first-occurrence order).
        token_ids: ``[T]`` int64 ids of all tokens, sample after sample.
        offsets: ``[n + 1]`` int64; sample ``i`` is ``token_ids[offsets[i]:offsets[i + 1]]``.
        ngram_counts: ``ngram_counts[n - 1]`` holds the count of every distinct
            n-gram (within samples), n = 1..max_n; the unigram counts are
            indexed by token id.
    """

    texts: tuple[str, ...]
    vocabulary: tuple[str, ...]
    token_ids: np.ndarray
    offsets: np.ndarray
    ngram_counts: tuple[np.ndarray, ...]

    @property
    def n_samples(self) -> int:
        return len(self.texts)

    @property
    def lengths(self) -> np.ndarray:
        """``[n]`` int64 tokens per sample."""
        return np.diff(self.offsets)

    @property
    def n_tokens(self) -> int:
        return int(self.token_ids.shape[0])

    @property
    def type_counts(self) -> np.ndarray:
        """``[V]`` int64 frequency of each vocabulary type."""
        return self.ngram_counts[0]

    @property
    def max_n(self) -> int:
        return len(self.ngram_counts)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _ngram_counts(ids: np.ndarray, offsets: np.ndarray, n_types: int, max_n: int) -> list[np.ndarray]:
    counts = [np.bincount(ids, minlength=n_types).astype(np.int64)]
    total = ids.shape[0]
    # Tokens from each position to the end of its sample, itself included.
    remaining = np.repeat(offsets[1:], np.diff(offsets)) - np.arange(total)
    gram = ids  # dense id of the (n-1)-gram starting at each position
    for n in range(2, max_n + 1):
        pos = np.flatnonzero(remaining >= n)
        # (n-1)-gram ids < T and token ids < V, so the code fits int64 for T < 3e9.
        code = gram[pos] * max(n_types, 1) + ids[pos + n - 1]
        _, inverse, cnt = np.unique(code, return_inverse=True, return_counts=True)
        counts.append(cnt.astype(np.int64))
        gram = np.full(total, -1, dtype=np.int64)
        gram[pos] = inverse.reshape(-1)
    return counts


def text_stats(texts, *, max_n: int = DEFAULT_MAX_N, name: str = "texts") -> TextStats:
    """Tokenise a set of texts once and count its n-grams (n = 1..max_n).

    Args:
        texts: non-empty list of ``str``.
        max_n: the largest n-gram order counted.
        name: the argument name used in error messages.

    Example:
        >>> s = text_stats(["the cat sat", "the cat"])
        >>> s.vocabulary, s.lengths.tolist(), [c.tolist() for c in s.ngram_counts[:2]]
        (('the', 'cat', 'sat'), [3, 2], [[2, 2, 1], [2, 1]])
    """
    texts = _check_texts(texts, name)
    max_n = _check_positive_int(max_n, "max_n")
    token_lists = [tokenize(t) for t in texts]
    lengths = np.fromiter((len(tl) for tl in token_lists), dtype=np.int64, count=len(token_lists))
    vocab: dict[str, int] = {}
    ids = np.array([vocab.setdefault(tok, len(vocab)) for tl in token_lists for tok in tl], dtype=np.int64)
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    counts = _ngram_counts(ids, offsets, len(vocab), max_n)
    return TextStats(
        texts=tuple(texts),
        vocabulary=tuple(vocab),
        token_ids=_readonly(ids),
        offsets=_readonly(offsets),
        ngram_counts=tuple(_readonly(c) for c in counts),
    )


def _as_stats(texts_or_stats, max_n: int = 1, name: str = "texts") -> TextStats:
    if isinstance(texts_or_stats, TextStats):
        if texts_or_stats.max_n < max_n:
            raise ValueError(f"{name}: expected TextStats with max_n >= {max_n}, got max_n={texts_or_stats.max_n}")
        return texts_or_stats
    return text_stats(texts_or_stats, max_n=max(max_n, DEFAULT_MAX_N), name=name)
