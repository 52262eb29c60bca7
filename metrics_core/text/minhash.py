r"""MinHash signatures and LSH banding: the near-duplicate rate of a set of texts.

Part of :mod:`metrics_core.text` (its docstring states the tokenisation and the uncertainty rules).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from metrics_core._checks import _check_bootstrap, _check_positive_int, _check_seed, _check_unit_interval
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, mean_estimate
from metrics_core.text.stats import TextStats, _as_stats


DEFAULT_NUM_PERM = 128
DEFAULT_SHINGLE_SIZE = 5
DEFAULT_NEAR_DUPLICATE_THRESHOLD = 0.8

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
    threshold = _check_unit_interval(threshold, "threshold", include_one=True, what="a Jaccard threshold")
    best = 1
    for r in range(1, num_perm + 1):
        if 1.0 - (1.0 - threshold**r) ** (num_perm // r) >= LSH_TARGET_RECALL:
            best = r
    return num_perm // best, best


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
    threshold = _check_unit_interval(threshold, "threshold", include_one=True, what="a Jaccard threshold")
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
