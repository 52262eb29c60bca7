r"""Lexical diversity of one set of texts: distinct-n, TTR, MATTR, n-gram entropy, compression, duplicates, Zipf.

Part of :mod:`metrics_core.text` (its docstring states the tokenisation and the uncertainty rules).
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from metrics_core._checks import _check_order, _check_positive_int, _check_texts
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, mean_estimate
from metrics_core.text.stats import DEFAULT_MATTR_WINDOW, TextStats, _as_stats


DEFAULT_ZIPF_MAX_RANK = 5000

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
