r"""Text metrics over lists of strings: lexical diversity, duplicates, tails, validity.

Model collapse in text shows as a shrinking vocabulary, repeated n-grams and
near-copies, a steeper rank-frequency curve and lost rare words (Shumailov et
al., Nature 2024). Every metric here is a pure function of the round's texts
(and, for the reference-relative ones, of a :class:`TextReference` fitted once
from the real texts); :func:`text_suite` computes all of them.

Tokenisation (:func:`tokenize`): NFC normalisation, ``’`` mapped to ``'``,
``str.lower()``, then the words matched by :data:`TOKEN_PATTERN`
``\w+(?:'\w+)*`` (Unicode letters, digits and underscore, with inner
apostrophes: ``don't`` is one token, ``e-mail`` two, a trailing ``'`` is
dropped). Punctuation is no token. It is deterministic and reusable.

Sufficient statistics: :func:`text_stats` tokenises a set once into
:class:`TextStats` (token ids, sample offsets, counts of every distinct n-gram
for n = 1..4); every lexical metric accepts either the texts or their
``TextStats``. n-grams never cross sample boundaries; MATTR's window does
(it runs over the concatenated token stream).

Uncertainty: the duplicate rates, the validity shares and the mean length are
means of per-sample values and get a bootstrap interval
(:func:`metrics_core.bootstrap.mean_estimate`). The n-gram metrics (distinct-n,
TTR, MATTR, Ent-n, compression ratio) and the reference-relative ones are
point estimates: resampling with replacement duplicates samples, which by
itself lowers their values, so a plain bootstrap interval would not even
cover the estimate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import unicodedata
import zlib
from dataclasses import dataclass

import numpy as np

from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, _check_bootstrap, mean_estimate
from metrics_core.clusters import _check_tail_mass, jensen_shannon_divergence, tail_clusters
from metrics_core._checks import _check_positive_int, _check_seed, _check_texts
from metrics_core.text_validity import (
    DEFAULT_FAILURE_LIMIT,
    DEFAULT_MAX_CHARS,
    ValidityBaseline,
    fit_validity_baseline,
    text_validity,
)
from metrics_core.univariate import ks_statistic

TOKEN_PATTERN = r"\w+(?:'\w+)*"
TOKEN_RE = re.compile(TOKEN_PATTERN)
DEFAULT_MAX_N = 4
DEFAULT_MATTR_WINDOW = 50
DEFAULT_TAIL_MASS = 0.1
DEFAULT_NUM_PERM = 128
DEFAULT_SHINGLE_SIZE = 5
DEFAULT_NEAR_DUPLICATE_THRESHOLD = 0.8
DEFAULT_ZIPF_MAX_RANK = 5000
#: Banding is chosen so a pair at exactly the threshold is a candidate with at least this probability.
LSH_TARGET_RECALL = 0.99

MERSENNE_61 = (1 << 61) - 1
_P = np.uint64(MERSENNE_61)
_M32 = np.uint64(0xFFFFFFFF)
_M29 = np.uint64((1 << 29) - 1)
_U64_MAX = np.uint64(0xFFFFFFFFFFFFFFFF)
# Universal-hash blocks hold at most this many uint64 values (256 KiB, cache-sized).
_HASH_BLOCK = 1 << 15
# Band buckets above this size are checked member by member instead of pair by pair.
_BIG_BUCKET = 256


def tokenize(text: str) -> list[str]:
    r"""Lower-cased word tokens of ``text`` (see the module docstring for the rule).

    Example:
        >>> tokenize("Don’t STOP—the café's 2 e-mails!")
        ["don't", 'stop', 'the', "café's", '2', 'e', 'mails']
    """
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return TOKEN_RE.findall(text.replace("\u2019", "'").lower())


# --------------------------------------------------------------------------
# Sufficient statistics
# --------------------------------------------------------------------------


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


def _check_order(n) -> int:
    return _check_positive_int(n, "n")


# --------------------------------------------------------------------------
# Lexical diversity of one set
# --------------------------------------------------------------------------


def distinct_n(texts, n: int) -> float:
    r"""Distinct-n (Li et al., NAACL 2016; survey §2.2): unique over total n-grams.

    .. math:: \text{Distinct-}n = \frac{|\{\text{distinct } n\text{-grams}\}|}{\#\,n\text{-grams}},

    n-grams taken within each sample and pooled over the set. Range (0, 1],
    higher is better (less repetition); NaN when no sample has n tokens.
    Point estimate (see the module docstring).

    Args:
        texts: list of ``str`` or their :class:`TextStats`.
        n: the n-gram order.

    Example:
        >>> distinct_n(["a b a b", "a b"], 1), distinct_n(["a b a b", "a b"], 2)
        (0.3333333333333333, 0.5)
    """
    n = _check_order(n)
    counts = _as_stats(texts, n).ngram_counts[n - 1]
    total = int(counts.sum())
    return float(counts.shape[0]) / total if total else math.nan


def type_token_ratio(texts) -> float:
    r"""Type-token ratio (survey §2.2; Treffers-Daller et al. 2018), pooled over the set.

    .. math:: \text{TTR} = \frac{|\text{Types}|}{|\text{Tokens}|}

    Range (0, 1], higher is better; NaN without tokens. It falls with the
    number of tokens, so compare rounds of equal size (or use :func:`mattr`).

    Example:
        >>> type_token_ratio(["the cat", "the dog"])
        0.75
    """
    stats = _as_stats(texts)
    return len(stats.vocabulary) / stats.n_tokens if stats.n_tokens else math.nan


def mattr(texts, *, window: int = DEFAULT_MATTR_WINDOW) -> float:
    r"""Moving-average type-token ratio (Covington & McFall 2010).

    Over the concatenated token stream :math:`t_1..t_T` (samples in order)
    and windows of :math:`W` tokens,

    .. math:: \text{MATTR}_W = \frac{1}{T-W+1} \sum_{i=1}^{T-W+1} \frac{|\{t_i, \dots, t_{i+W-1}\}|}{W}.

    When :math:`T < W` there is no full window and the plain TTR is returned;
    NaN without tokens. Range (0, 1], higher is better; unlike TTR it does
    not depend on the total length. Computed in :math:`O(T \log T)`: token
    :math:`j` adds one distinct type to the windows that contain it but not
    its previous occurrence.

    Args:
        texts: list of ``str`` or their :class:`TextStats`.
        window: W (default 50 tokens).

    Example:
        >>> mattr(["a b a c"], window=2), mattr(["a b"], window=5)
        (1.0, 1.0)
        >>> mattr(["a a b"], window=2)  # windows (a a), (a b): (1/2 + 2/2) / 2
        0.75
    """
    window = _check_positive_int(window, "window")
    stats = _as_stats(texts)
    ids = stats.token_ids
    total = ids.shape[0]
    if total == 0:
        return math.nan
    if total < window:
        return len(stats.vocabulary) / total
    order = np.argsort(ids, kind="stable")
    prev = np.full(total, -1, dtype=np.int64)
    same = ids[order[1:]] == ids[order[:-1]]
    prev[order[1:][same]] = order[:-1][same]
    j = np.arange(total)
    # Windows start in [first, last] for token j to be their first occurrence of its type.
    first = np.maximum(prev + 1, j - window + 1)
    last = np.minimum(j, total - window)
    distinct_sum = int(np.clip(last - first + 1, 0, None).sum())
    return distinct_sum / (window * (total - window + 1))


def ngram_entropy(texts, n: int) -> float:
    r"""n-gram entropy Ent-n in bits (Zhang et al., NeurIPS 2018; survey §2.2).

    .. math:: \text{Ent-}n = -\sum_{g \in \mathcal{G}_n} p(g) \log_2 p(g),

    with :math:`p` the empirical distribution of the set's n-grams (within
    samples, pooled). Base 2 (divide by :math:`\log_2 e` for nats). Range
    :math:`[0, \log_2 |\mathcal{G}_n|]`, higher is better (more even use of
    the n-gram space); NaN when no sample has n tokens. Point estimate.

    Example:
        >>> ngram_entropy(["a b c d"], 1), ngram_entropy(["a a a"], 1)
        (2.0, 0.0)
    """
    n = _check_order(n)
    counts = _as_stats(texts, n).ngram_counts[n - 1]
    total = counts.sum()
    if total == 0:
        return math.nan
    p = counts / float(total)
    return float(max(0.0, -(p * np.log2(p)).sum()))


def _texts_of(texts_or_stats, name: str = "texts") -> tuple[str, ...] | list[str]:
    if isinstance(texts_or_stats, TextStats):
        return texts_or_stats.texts
    return _check_texts(texts_or_stats, name)


def compression_ratio(texts) -> float:
    r"""zlib compression ratio of the set: compressed over raw UTF-8 bytes.

    .. math:: \text{CR} = \frac{|\mathrm{zlib}_9(b)|}{|b|},

    :math:`b` the UTF-8 bytes of the samples joined by newlines
    (``"\n".join(texts)``), :math:`\mathrm{zlib}_9` = ``zlib.compress(b, 9)``
    (header and checksum included). Lower
    means more redundant text, so higher is better for diversity; typical
    prose gives 0.3–0.5, a set of copies tends to 0. NaN when ``b`` is empty.
    DEFLATE only finds repeats within a 32 KiB window, so the ratio sees
    local (and order-dependent) redundancy; compare rounds of similar size.

    Example:
        >>> compression_ratio(["the same line"] * 200) < 0.05 < compression_ratio(["a b c"])
        True
    """
    raw = "\n".join(_texts_of(texts)).encode("utf-8")
    return len(zlib.compress(raw, 9)) / len(raw) if raw else math.nan


def exact_duplicate_indicator(texts) -> np.ndarray:
    """``[n]`` bool: sample ``i`` equals (after ``str.strip()``) an earlier sample.

    Example:
        >>> exact_duplicate_indicator(["a", "b", " a\\n", "a"]).tolist()
        [False, False, True, True]
    """
    texts = _texts_of(texts)
    seen: set[str] = set()
    out = np.zeros(len(texts), dtype=bool)
    for i, t in enumerate(texts):
        key = t.strip()
        out[i] = key in seen
        seen.add(key)
    return out


def exact_duplicate_rate(texts, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0) -> Estimate:
    r"""Share of samples that repeat an earlier sample exactly (after ``strip()``).

    .. math:: \text{exact\_duplicate\_rate} = \frac1n \sum_{i=1}^n 1[\exists j < i: s(x_j) = s(x_i)],

    :math:`s` = ``str.strip`` (leading/trailing whitespace is a generation
    artefact; case and inner whitespace are kept). :math:`k` copies of one
    text add :math:`k-1`. Range [0, 1 - 1/n], lower is better. The interval
    bootstraps the mean of the fixed per-sample indicators.

    Example:
        >>> exact_duplicate_rate(["a", "b", "a ", "a"]).value
        0.5
    """
    return mean_estimate(exact_duplicate_indicator(texts), n_boot=n_boot, level=level, seed=seed)


def mean_length(texts, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0) -> Estimate:
    """Mean number of tokens per sample (:func:`tokenize`), with a bootstrap interval.

    Range [0, inf); neither direction is better, compare with the reference.

    Example:
        >>> mean_length(["a b c", "d"]).value
        2.0
    """
    return mean_estimate(_as_stats(texts).lengths, n_boot=n_boot, level=level, seed=seed)


def zipf_exponent(texts, *, max_rank: int = DEFAULT_ZIPF_MAX_RANK) -> float:
    r"""Zipf exponent of the set's rank-frequency curve by least squares (Zipf 1949).

    With type frequencies sorted descending :math:`f_{(1)} \ge f_{(2)} \ge \dots`
    (ties in any order: equal frequencies give equal points) and
    :math:`R = \min(V, \text{max\_rank})`, the exponent is minus the
    ordinary least-squares slope of :math:`\log f_{(r)}` on :math:`\log r`,
    :math:`r = 1..R`:

    .. math:: \hat s = -\frac{\sum_r (x_r - \bar x)(y_r - \bar y)}{\sum_r (x_r - \bar x)^2},
              \quad x_r = \log r,\ y_r = \log f_{(r)},

    the estimator Holtzman et al. (ICLR 2020) report for generated text over
    the top 5,000 ranks (their tail thinning is not applied). Natural text
    gives about 1; collapse (a few types dominating) raises it; no direction
    is better per se, compare with the reference's. NaN when :math:`R < 2`.
    The hapax plateau at the tail flattens the fit, so it depends on the
    corpus size; compare rounds of equal size.

    Args:
        texts: list of ``str`` or their :class:`TextStats`.
        max_rank: the largest rank fitted (default 5,000).

    Example:
        >>> zipf_exponent(["a " * 12 + "b " * 6 + "c " * 4 + "d " * 3])  # f = 12/r
        1.0
    """
    max_rank = _check_positive_int(max_rank, "max_rank")
    freqs = np.sort(_as_stats(texts).type_counts)[::-1][:max_rank]
    if freqs.shape[0] < 2:
        return math.nan
    x = np.log(np.arange(1, freqs.shape[0] + 1, dtype=np.float64))
    y = np.log(freqs.astype(np.float64))
    xc = x - x.mean()
    return float(-(xc @ (y - y.mean())) / (xc @ xc))


# --------------------------------------------------------------------------
# MinHash near-duplicates
# --------------------------------------------------------------------------


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (Steele et al. 2014), uint64 arithmetic mod 2**64."""
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def token_hash(token: str) -> int:
    """64-bit hash of a token: the first 8 bytes of BLAKE2b(UTF-8), little-endian.

    Unlike ``hash()`` it is the same in every process (no ``PYTHONHASHSEED``).

    Example:
        >>> token_hash("the") == int.from_bytes(hashlib.blake2b(b"the", digest_size=8).digest(), "little")
        True
    """
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")


def _shingle_hashes(stats: TextStats, shingle_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes (values in [0, p)) of every shingle and its sample id, grouped by sample."""
    type_hash = np.fromiter((token_hash(t) for t in stats.vocabulary), dtype=np.uint64, count=len(stats.vocabulary))
    tok = type_hash[stats.token_ids]
    lengths = stats.lengths
    sample_of = np.repeat(np.arange(stats.n_samples), lengths)
    remaining = np.repeat(stats.offsets[1:], lengths) - np.arange(stats.n_tokens)
    parts_h, parts_s = [], []
    # Full shingles of k tokens; samples with 1 <= L < k give one shingle of all L tokens.
    groups = [(np.flatnonzero(remaining >= shingle_size), shingle_size)]
    for length in range(1, shingle_size):
        groups.append((stats.offsets[:-1][lengths == length], length))
    for pos, k in groups:
        h = _mix64(np.full(pos.shape[0], k, dtype=np.uint64))
        for step in range(k):
            h = _mix64(h ^ tok[pos + step])
        parts_h.append(h % _P)
        parts_s.append(sample_of[pos])
    hashes = np.concatenate(parts_h)
    samples = np.concatenate(parts_s)
    order = np.argsort(samples, kind="stable")
    return hashes[order], samples[order]


def _family_parts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    a_hi = a >> np.uint64(32)
    return a & _M32, a_hi, a_hi << np.uint64(3), b + np.uint64(1)


def _universal_hash_plus_one(x: np.ndarray, parts: tuple[np.ndarray, ...]) -> np.ndarray:
    r"""``[m, P]`` values :math:`((a_k x_i + b_k) \bmod p) + 1 \in [1, p]`, exact, for ``x < 2**61``.

    The 122-bit product is split into 32-bit halves and folded with
    :math:`2^{61} \equiv 1 \pmod p`:
    :math:`a x = a_h x_h 2^{64} + (a_h x_l + a_l x_h) 2^{32} + a_l x_l` with
    :math:`2^{64} \equiv 8`; every partial sum stays below :math:`2^{63}`.
    Adding 1 before the two final folds makes them land exactly on
    :math:`[1, p]` without a compare-and-subtract pass.
    """
    a_lo, a_hi, a_hi8, b_plus_one = parts
    x_lo = (x & _M32)[:, None]
    x_hi = (x >> np.uint64(32))[:, None]
    s = x_lo * a_lo  # < 2**64
    t = s >> np.uint64(61)
    s &= _P
    s += t
    mid = x_lo * a_hi
    np.multiply(x_hi, a_lo, out=t)
    mid += t  # < 2**62
    np.right_shift(mid, np.uint64(29), out=t)
    s += t
    mid &= _M29
    mid <<= np.uint64(32)
    s += mid
    np.multiply(x_hi, a_hi8, out=t)  # (a_h x_h) * 8 < 2**61
    s += t
    s += b_plus_one
    for _ in range(2):  # s >= 1: the first fold gives [1, 2**61 + 3], the second [1, p]
        np.right_shift(s, np.uint64(61), out=t)
        s &= _P
        s += t
    return s


def _universal_hash(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[m, P]`` values :math:`(a_k x_i + b_k) \bmod (2^{61}-1)` (see :func:`_universal_hash_plus_one`)."""
    return _universal_hash_plus_one(x, _family_parts(a, b)) - np.uint64(1)


def minhash_parameters(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    r"""The universal hash family :math:`h_k(x) = (a_k x + b_k) \bmod (2^{61}-1)`, k = 1..num_perm.

    ``rng = numpy.random.default_rng(seed)``; :math:`a_k` uniform in
    :math:`[1, p)`, then :math:`b_k` uniform in :math:`[0, p)` (uint64).

    Example:
        >>> a, b = minhash_parameters(4, seed=0)
        >>> a.dtype.name, a.shape, bool((a >= 1).all() and (a < 2**61 - 1).all())
        ('uint64', (4,), True)
    """
    num_perm = _check_positive_int(num_perm, "num_perm")
    rng = np.random.default_rng(_check_seed(seed))
    a = rng.integers(1, MERSENNE_61, size=num_perm, dtype=np.uint64)
    b = rng.integers(0, MERSENNE_61, size=num_perm, dtype=np.uint64)
    return a, b


def minhash_signatures(
    texts, *, num_perm: int = DEFAULT_NUM_PERM, seed: int = 0, shingle_size: int = DEFAULT_SHINGLE_SIZE
) -> np.ndarray:
    r"""MinHash signatures of word-shingle sets (Broder 1997), ``[n, num_perm]`` uint64.

    Sample :math:`i`'s shingles :math:`S_i` are its word k-grams
    (:math:`k` = ``shingle_size``, default 5, within the sample); a sample
    with :math:`1 \le L < k` tokens has the single shingle of all its tokens.
    A shingle's hash :math:`x \in [0, p)` is deterministic across processes:
    each token is hashed by :func:`token_hash` (BLAKE2b, 8 bytes), the k
    token hashes are chained as :math:`z \leftarrow \mathrm{mix}(z \oplus t_j)`
    from :math:`z = \mathrm{mix}(k)` (SplitMix64's finaliser, mod
    :math:`2^{64}`), and :math:`x = z \bmod p`. Then

    .. math:: \mathrm{sig}_{ik} = \min_{x \in S_i} (a_k x + b_k) \bmod p, \qquad p = 2^{61} - 1,

    with :math:`a, b` from :func:`minhash_parameters`. For two samples,
    :math:`\Pr[\mathrm{sig}_{ik} = \mathrm{sig}_{jk}] \approx J(S_i, S_j)`.
    Samples without tokens get the sentinel row ``2**64 - 1``. Vectorised in
    cache-sized blocks of 2**15 values.

    Args:
        texts: list of ``str`` or their :class:`TextStats`.
        num_perm: number of hash functions.
        seed: seed of the hash family.
        shingle_size: k.

    Example:
        >>> sig = minhash_signatures(["one two three four five six", "one two three four five six", ""], num_perm=8)
        >>> sig.shape, bool((sig[0] == sig[1]).all()), bool((sig[2] == 2**64 - 1).all())
        ((3, 8), True, True)
    """
    shingle_size = _check_positive_int(shingle_size, "shingle_size")
    a, b = minhash_parameters(num_perm, seed)
    stats = _as_stats(texts)
    x, sample = _shingle_hashes(stats, shingle_size)
    parts = _family_parts(a, b)
    sig = np.full((stats.n_samples, a.shape[0]), _U64_MAX, dtype=np.uint64)
    block = max(1, _HASH_BLOCK // a.shape[0])
    for lo in range(0, x.shape[0], block):
        xs, ss = x[lo:lo + block], sample[lo:lo + block]
        starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
        mins = np.minimum.reduceat(_universal_hash_plus_one(xs, parts), starts, axis=0)
        rows = ss[starts]
        sig[rows] = np.minimum(sig[rows], mins)  # a sample may straddle two blocks
    sig[stats.lengths > 0] -= np.uint64(1)  # back from h + 1 to h
    return sig


def lsh_bands(num_perm: int, threshold: float) -> tuple[int, int]:
    r"""LSH banding ``(bands, rows)`` for a Jaccard threshold :math:`t` (Leskovec et al., MMDS §3.4).

    Two signatures are candidates when all ``rows`` entries of at least one
    band agree, which for Jaccard :math:`J` happens with probability
    :math:`1 - (1 - J^r)^b`. ``rows`` is the largest :math:`r` with
    :math:`b = \lfloor P / r \rfloor` and :math:`1 - (1 - t^r)^b \ge 0.99`
    (:data:`LSH_TARGET_RECALL`; 1 when none qualifies): as few spurious
    candidates as possible while pairs at the threshold are rarely missed.
    Entries beyond ``b * r`` take part in the verification only.

    Example:
        >>> lsh_bands(128, 0.8), lsh_bands(16, 0.8)
        ((21, 6), (8, 2))
    """
    num_perm = _check_positive_int(num_perm, "num_perm")
    threshold = _check_threshold(threshold)
    best = 1
    for r in range(1, num_perm + 1):
        if 1.0 - (1.0 - threshold**r) ** (num_perm // r) >= LSH_TARGET_RECALL:
            best = r
    return num_perm // best, best


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)):
        raise ValueError(f"threshold: expected a Jaccard threshold in (0, 1], got {threshold!r}")
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold: expected a Jaccard threshold in (0, 1], got {threshold!r}")
    return float(threshold)


def _pairs_within_groups(order: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i, j) of members of each group ``order[start:start + size]``, vectorised."""
    member = np.repeat(starts, sizes) + (np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes))
    partners = np.repeat(starts + sizes, sizes) - member - 1  # later members of the same group
    first = np.repeat(member, partners)
    second = first + 1 + (np.arange(partners.sum()) - np.repeat(np.cumsum(partners) - partners, partners))
    return order[first], order[second]


def near_duplicate_flags(signatures, *, threshold: float = DEFAULT_NEAR_DUPLICATE_THRESHOLD) -> np.ndarray:
    r"""``[n]`` bool: the sample has another sample with estimated Jaccard :math:`\ge` ``threshold``.

    The estimate is the share of agreeing signature entries,
    :math:`\hat J_{ij} = \frac1P \sum_k 1[\mathrm{sig}_{ik} = \mathrm{sig}_{jk}]`.
    Identical signatures are grouped first (:math:`\hat J = 1`); the distinct
    ones are paired by LSH banding (:func:`lsh_bands`) and every candidate
    pair is verified on all P entries. Buckets of more than 256 signatures
    are scanned member by member, skipping members already flagged, so a
    collapsed round costs about :math:`O(nP)` per band. Sentinel rows
    (samples without tokens) are never near-duplicates.

    Args:
        signatures: ``[n, P]`` uint64 from :func:`minhash_signatures`.
        threshold: Jaccard threshold in (0, 1].

    Example:
        >>> sig = np.array([[1, 2, 3, 4], [1, 2, 3, 5], [6, 7, 8, 9]], dtype=np.uint64)
        >>> near_duplicate_flags(sig, threshold=0.75).tolist(), near_duplicate_flags(sig, threshold=0.8).tolist()
        ([True, True, False], [False, False, False])
    """
    sig = np.asarray(signatures)
    if sig.dtype != np.uint64 or sig.ndim != 2 or sig.shape[1] == 0:
        raise ValueError(f"signatures: expected a uint64 array [n, P], got dtype {sig.dtype} shape {sig.shape}")
    threshold = _check_threshold(threshold)
    n, num_perm = sig.shape
    need = math.ceil(threshold * num_perm)
    while need > 0 and (need - 1) / num_perm >= threshold:
        need -= 1
    while need / num_perm < threshold:
        need += 1
    flags = np.zeros(n, dtype=bool)
    valid = np.flatnonzero(~(sig == _U64_MAX).all(axis=1))
    if valid.shape[0] < 2:
        return flags
    uniq, inverse, copies = np.unique(sig[valid], axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    hit = copies > 1
    bands, rows = lsh_bands(num_perm, threshold)
    n_uniq = uniq.shape[0]
    pair_codes = []
    big_buckets = []
    for band in range(bands if n_uniq > 1 else 0):
        key = np.full(n_uniq, rows, dtype=np.uint64)
        for col in range(band * rows, (band + 1) * rows):
            key = _mix64(key ^ uniq[:, col])
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
        sizes = np.diff(np.r_[starts, n_uniq])
        small = (sizes >= 2) & (sizes <= _BIG_BUCKET)
        i, j = _pairs_within_groups(order, starts[small], sizes[small])
        pair_codes.append(np.minimum(i, j) * n_uniq + np.maximum(i, j))
        big_buckets.extend(order[s:s + k] for s, k in zip(starts[sizes > _BIG_BUCKET], sizes[sizes > _BIG_BUCKET]))
    codes = np.unique(np.concatenate(pair_codes)) if pair_codes else np.zeros(0, dtype=np.int64)
    step = max(1, _HASH_BLOCK // num_perm)
    for lo in range(0, codes.shape[0], step):
        i, j = np.divmod(codes[lo:lo + step], n_uniq)
        ok = (uniq[i] == uniq[j]).sum(axis=1) >= need
        hit[i[ok]] = True
        hit[j[ok]] = True
    for members in big_buckets:
        block = uniq[members]
        for pos, m in enumerate(members):
            if hit[m]:
                continue
            agree = (block == uniq[m]).sum(axis=1)
            agree[pos] = 0
            partners = agree >= need
            if partners.any():
                hit[m] = True
                hit[members[partners]] = True
    flags[valid] = hit[inverse]
    return flags


def near_duplicate_rate(
    texts,
    *,
    threshold: float = DEFAULT_NEAR_DUPLICATE_THRESHOLD,
    num_perm: int = DEFAULT_NUM_PERM,
    shingle_size: int = DEFAULT_SHINGLE_SIZE,
    hash_seed: int = 0,
    n_boot: int = 0,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Estimate:
    r"""Share of samples with a near-duplicate partner in the set (MinHash LSH; Broder 1997).

    .. math:: \text{near\_duplicate\_rate} = \frac1n \sum_{i=1}^n 1[\exists j \ne i: \hat J(S_i, S_j) \ge t],

    with :math:`S_i` the word 5-gram shingles and :math:`\hat J` the MinHash
    estimate over 128 permutations (:func:`minhash_signatures`,
    :func:`near_duplicate_flags`), :math:`t = 0.8` by default. Both members
    of a pair count (unlike :func:`exact_duplicate_rate`, which counts only
    the later copies). Range [0, 1], lower is better. The interval bootstraps
    the mean of the fixed per-sample flags.

    Args:
        texts: list of ``str`` or their :class:`TextStats`.
        threshold: Jaccard threshold in (0, 1].
        num_perm: MinHash permutations.
        shingle_size: words per shingle.
        hash_seed: seed of the hash family.
        n_boot, level, seed: bootstrap replicates, confidence level, bootstrap seed.

    Example:
        >>> base = "the quick brown fox jumps over the lazy dog and runs far away from the old farm house"
        >>> near_duplicate_rate([base, base + " today", "a completely different sentence about cats and dogs"]).value
        0.6666666666666666
    """
    _check_bootstrap(n_boot, level)
    sig = minhash_signatures(texts, num_perm=num_perm, seed=hash_seed, shingle_size=shingle_size)
    return mean_estimate(near_duplicate_flags(sig, threshold=threshold), n_boot=n_boot, level=level, seed=seed)


# --------------------------------------------------------------------------
# The reference profile and reference-relative metrics
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# The suite
# --------------------------------------------------------------------------

TEXT_METRIC_NAMES = (
    "validity_rate", "invalid_empty", "invalid_encoding", "invalid_truncated", "invalid_too_long",
    "distinct_1", "distinct_2", "distinct_3", "distinct_4", "ttr", "mattr",
    "entropy_1", "entropy_2", "entropy_3", "entropy_4", "compression_ratio",
    "exact_duplicate_rate", "near_duplicate_rate", "mean_length", "length_ks",
    "vocab_tail_coverage", "vocab_coverage", "zipf_exponent", "unigram_jsd",
)


@dataclass(frozen=True)
class TextSuiteConfig:
    """Parameters of :func:`text_suite` (defaults are the documented ones).

    The rare-type ``tail_mass`` belongs to the :class:`TextReference`, which
    is fitted once with it.
    """

    n_boot: int = 200
    level: float = DEFAULT_LEVEL
    seed: int = 0
    max_chars: int = DEFAULT_MAX_CHARS
    check_truncation: bool = True
    require_terminal_punctuation: bool = True
    validity_failure_limit: float = DEFAULT_FAILURE_LIMIT
    mattr_window: int = DEFAULT_MATTR_WINDOW
    num_perm: int = DEFAULT_NUM_PERM
    shingle_size: int = DEFAULT_SHINGLE_SIZE
    near_duplicate_threshold: float = DEFAULT_NEAR_DUPLICATE_THRESHOLD
    hash_seed: int = 0
    zipf_max_rank: int = DEFAULT_ZIPF_MAX_RANK


def validity_switched_off(reference_profile, config: TextSuiteConfig | None = None) -> dict[str, float]:
    """The validity checks :func:`text_suite` switches off for this reference, with the reference's failure share.

    Example:
        >>> validity_switched_off(fit_text_reference(["a gloss", "another gloss"]))
        {'terminal_punctuation': 1.0}
    """
    config = config or TextSuiteConfig()
    return _as_reference(reference_profile).validity.switched_off(
        max_chars=config.max_chars, check_truncation=config.check_truncation,
        require_terminal_punctuation=config.require_terminal_punctuation, failure_limit=config.validity_failure_limit)


def text_suite(reference_profile, round_texts, *, config: TextSuiteConfig | None = None, **overrides) -> dict[str, Estimate]:
    """Every text metric of one round, keyed by :data:`TEXT_METRIC_NAMES`, in that order.

    The round is tokenised once (:func:`text_stats`). Values are
    :class:`Estimate`: validity shares (``validity_rate`` and the
    ``invalid_<reason>`` *shares* of :func:`metrics_core.text_validity.text_validity`,
    relative to the reference's: a check the reference fails in more than
    ``validity_failure_limit`` of its texts is off, see
    :func:`validity_switched_off`),
    the duplicate rates and ``mean_length`` carry bootstrap intervals; the
    others are point estimates (``ci_low`` etc. None). Bootstrap seeds are
    ``seed`` plus a fixed offset per metric.

    Args:
        reference_profile: :class:`TextReference` from :func:`fit_text_reference`
            (or the reference texts, then fitted with the default tail mass).
        round_texts: non-empty list of ``str``.
        config: suite parameters; ``overrides`` replace single fields
            (``text_suite(ref, texts, n_boot=0)``).

    Example:
        >>> ref = fit_text_reference(["The cat sat on the mat.", "A dog ran in the park."])
        >>> out = text_suite(ref, ["The cat sat.", "The cat sat."], n_boot=0)
        >>> out["validity_rate"].value, out["exact_duplicate_rate"].value, out["distinct_1"].value
        (1.0, 0.5, 0.5)
    """
    config = dataclasses.replace(config or TextSuiteConfig(), **overrides)
    _check_bootstrap(config.n_boot, config.level)
    seed = _check_seed(config.seed)
    ref = _as_reference(reference_profile)
    texts = _check_texts(round_texts, "round_texts")
    stats = text_stats(texts, max_n=DEFAULT_MAX_N, name="round_texts")
    boot = {"n_boot": config.n_boot, "level": config.level}

    out: dict[str, Estimate] = text_validity(
        texts, max_chars=config.max_chars, check_truncation=config.check_truncation,
        require_terminal_punctuation=config.require_terminal_punctuation, reference=ref.validity,
        failure_limit=config.validity_failure_limit, seed=seed, **boot,
    ).metrics()
    for n in range(1, DEFAULT_MAX_N + 1):
        out[f"distinct_{n}"] = Estimate(distinct_n(stats, n))
        out[f"entropy_{n}"] = Estimate(ngram_entropy(stats, n))
    out["ttr"] = Estimate(type_token_ratio(stats))
    out["mattr"] = Estimate(mattr(stats, window=config.mattr_window))
    out["compression_ratio"] = Estimate(compression_ratio(stats))
    out["exact_duplicate_rate"] = exact_duplicate_rate(stats, seed=seed + 1, **boot)
    out["near_duplicate_rate"] = near_duplicate_rate(
        stats, threshold=config.near_duplicate_threshold, num_perm=config.num_perm,
        shingle_size=config.shingle_size, hash_seed=config.hash_seed, seed=seed + 2, **boot,
    )
    out["mean_length"] = mean_length(stats, seed=seed + 3, **boot)
    out["length_ks"] = Estimate(length_ks(ref, stats))
    out["vocab_tail_coverage"] = Estimate(vocab_tail_coverage(ref, stats))
    out["vocab_coverage"] = Estimate(vocab_coverage(ref, stats))
    out["zipf_exponent"] = Estimate(zipf_exponent(stats, max_rank=config.zipf_max_rank))
    out["unigram_jsd"] = Estimate(unigram_jsd(ref, stats))
    return {name: out[name] for name in TEXT_METRIC_NAMES}
