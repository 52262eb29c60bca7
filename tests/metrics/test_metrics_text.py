"""Tests of the text metrics (metrics_core.text, metrics_core.text_validity)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats

from metrics_core.bootstrap import Estimate, mean_estimate
from metrics_core.text import (
    MERSENNE_61,
    TEXT_METRIC_NAMES,
    TextReference,
    TextStats,
    TextSuiteConfig,
    compression_ratio,
    distinct_n,
    exact_duplicate_indicator,
    exact_duplicate_rate,
    fit_text_reference,
    length_ks,
    lsh_bands,
    mattr,
    mean_length,
    minhash_parameters,
    minhash_signatures,
    near_duplicate_flags,
    near_duplicate_rate,
    ngram_entropy,
    text_stats,
    text_suite,
    tokenize,
    type_token_ratio,
    unigram_jsd,
    vocab_coverage,
    vocab_tail_coverage,
    zipf_exponent,
)
from metrics_core.text.minhash import _universal_hash
from metrics_core.text_validity import (
    VALIDITY_CHECKS,
    VALIDITY_REASONS,
    fit_validity_baseline,
    has_encoding_noise,
    has_unclosed_delimiters,
    invalid_reasons,
    looks_truncated,
    text_validity,
    validity_checks,
)
from metrics_core.univariate import ks_statistic

REPO = Path(__file__).resolve().parents[2]
WORDS = (
    "time person year way day thing man world life hand part child eye woman place work week case point "
    "government company number group problem fact be have do say get make go know take see come think look "
    "want give use find tell ask seem feel try leave call good new first last long great little own other "
    "old right big high different small large next early young important few public bad same able"
).split()


def random_texts(rng, n, low=0, high=12, vocab=WORDS, end="."):
    """Random texts of ``low..high`` words from ``vocab``, each ending in ``end``."""
    return [" ".join(rng.choice(vocab, size=int(rng.integers(low, high + 1)))) + end for _ in range(n)]


# --------------------------------------------------------------------------
# Naive reference implementations
# --------------------------------------------------------------------------


def naive_ngrams(texts, n):
    grams = []
    for t in texts:
        toks = tokenize(t)
        grams += [tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)]
    return grams


def naive_mattr(texts, window):
    stream = [tok for t in texts for tok in tokenize(t)]
    if not stream:
        return math.nan
    if len(stream) < window:
        return len(set(stream)) / len(stream)
    ratios = [len(set(stream[i:i + window])) / window for i in range(len(stream) - window + 1)]
    return sum(ratios) / len(ratios)


def naive_shingles(text, k=5):
    toks = tokenize(text)
    if len(toks) == 0:
        return set()
    if len(toks) < k:
        return {tuple(toks)}
    return {tuple(toks[i:i + k]) for i in range(len(toks) - k + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b)


def naive_near_duplicate_rate(texts, threshold):
    """O(n^2) exact Jaccard of the shingle sets."""
    sets = [naive_shingles(t) for t in texts]
    flags = [False] * len(texts)
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if sets[i] and sets[j] and jaccard(sets[i], sets[j]) >= threshold:
                flags[i] = flags[j] = True
    return sum(flags) / len(flags)


def naive_signature_flags(sig, threshold):
    """O(n^2) over signatures: some other row agrees on >= threshold of the entries."""
    n, p = sig.shape
    empty = (sig == np.uint64(2**64 - 1)).all(axis=1)
    agree = (sig[:, None, :] == sig[None, :, :]).mean(axis=2)
    np.fill_diagonal(agree, 0.0)
    agree[empty, :] = 0.0
    agree[:, empty] = 0.0
    return (agree >= threshold).any(axis=1)


_TERMINALS = ".!?\u2026\u3002\uff01\uff1f"
_CLOSERS = "\"'\u201d\u2019\u00bb)]}"
_CONTINUATION = {chr(c) for c in range(0x80, 0xC0)} | {
    bytes([c]).decode("cp1252") for c in range(0x80, 0xA0) if c not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}


def naive_reasons(text, max_chars=20_000, check_truncation=True, require_terminal=True):
    empty = text.strip() == ""
    encoding = any(
        c == "\ufffd" or (ord(c) < 0x20 and c not in "\t\n\r") or 0x7F <= ord(c) <= 0x9F for c in text
    )
    for x, y in zip(text, text[1:]):
        if x in "\u00c2\u00c3\u00e2" and y in _CONTINUATION:
            encoding = True
    truncated = False
    if check_truncation and not empty:
        s = text.rstrip()
        k = len(s)
        while k > 0 and s[k - 1] in _CLOSERS:
            k -= 1
        if require_terminal and not (k > 0 and s[k - 1] in _TERMINALS):
            truncated = True
        if text.count('"') % 2 or text.count("\u201c") > text.count("\u201d"):
            truncated = True
        stack = []
        for c in text:
            if c in "([{":
                stack.append(c)
            elif c in ")]}" and stack and stack[-1] == {")": "(", "]": "[", "}": "{"}[c]:
                stack.pop()
        truncated = truncated or bool(stack)
    return [empty, encoding, truncated, len(text) > max_chars]


# --------------------------------------------------------------------------
# Tokenizer and input checks
# --------------------------------------------------------------------------


def test_tokenize_hand_case():
    assert tokenize("Don’t STOP—the café's 2 e-mails! snake_case, rock'n'roll 'quoted'") == [
        "don't", "stop", "the", "café's", "2", "e", "mails", "snake_case", "rock'n'roll", "quoted",
    ]
    assert tokenize("") == [] and tokenize(" ... !!! ") == []


def test_tokenize_normalises_unicode_forms():
    nfd = "cafe\u0301 Ÿ"  # e + combining acute
    assert tokenize(nfd) == tokenize("café ÿ") == ["café", "ÿ"]


@pytest.mark.parametrize("fn", [
    lambda t: text_stats(t), lambda t: text_validity(t), lambda t: distinct_n(t, 1),
    lambda t: fit_text_reference(t), lambda t: text_suite(["A reference."], t, n_boot=0),
    lambda t: near_duplicate_rate(t), lambda t: compression_ratio(t), lambda t: exact_duplicate_rate(t),
])
def test_bad_input_raises(fn):
    with pytest.raises(ValueError, match=r"\[2\]: expected str, got int"):
        fn(["a.", "b.", 3])
    with pytest.raises(ValueError, match=r"\[0\]: expected str, got bytes"):
        fn([b"a."])
    with pytest.raises(ValueError, match="expected a list of str, got a single str"):
        fn("not a list")
    with pytest.raises(ValueError, match="empty"):
        fn([])


def test_reference_without_tokens_raises():
    with pytest.raises(ValueError, match="at least one token"):
        fit_text_reference(["...", ""])


def test_text_stats_hand_case():
    s = text_stats(["the cat sat", "", "the cat", "dog"])
    assert isinstance(s, TextStats) and s.n_samples == 4 and s.n_tokens == 6 and s.max_n == 4
    assert s.vocabulary == ("the", "cat", "sat", "dog")
    assert s.token_ids.tolist() == [0, 1, 2, 0, 1, 3]
    assert s.offsets.tolist() == [0, 3, 3, 5, 6]
    assert s.lengths.tolist() == [3, 0, 2, 1]
    assert s.type_counts.tolist() == [2, 2, 1, 1]
    assert sorted(s.ngram_counts[1].tolist()) == [1, 2]  # (the cat) x2, (cat sat)
    assert s.ngram_counts[2].tolist() == [1] and s.ngram_counts[3].tolist() == []


def test_text_stats_too_small_max_n_refused():
    with pytest.raises(ValueError, match="max_n >= 3"):
        distinct_n(text_stats(["a b c."], max_n=2), 3)


# --------------------------------------------------------------------------
# Validity
# --------------------------------------------------------------------------


def test_validity_hand_case():
    texts = [
        "A fine sentence.",          # valid
        "   \n\t ",                  # empty
        "Broken caf\u00c3\u00a9.",   # encoding
        "It stops in the",           # truncated
        "He said \"wait.",           # truncated (quote)
        "Call f(x.",                 # truncated (bracket)
        "Bell\x07 and cut",          # encoding + truncated
        "x" * 30 + ".",              # too long for max_chars=20
        "(Done.)",                   # valid: closing bracket after terminal punctuation
        "1) first 2) second.",       # valid: stray closers are ignored
    ]
    res = text_validity(texts, max_chars=20)
    assert invalid_reasons(texts, max_chars=20).astype(int).tolist() == [
        [0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0],
        [0, 0, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0],
    ]
    assert res.validity_rate.value == pytest.approx(0.3)
    assert res.reason_counts == {"empty": 1, "encoding": 2, "truncated": 4, "too_long": 1}
    assert tuple(res.reason_counts) == tuple(res.reason_shares) == VALIDITY_REASONS
    assert res.metrics()["invalid_truncated"].value == pytest.approx(0.4)
    assert list(res.metrics()) == ["validity_rate", "invalid_empty", "invalid_encoding", "invalid_truncated", "invalid_too_long"]
    assert res.n_samples == 10


def test_truncation_flags():
    texts = ["A title", "A (broken title", "Sentence."]
    assert invalid_reasons(texts)[:, 2].tolist() == [True, True, False]
    assert invalid_reasons(texts, require_terminal_punctuation=False)[:, 2].tolist() == [False, True, False]
    assert invalid_reasons(texts, check_truncation=False)[:, 2].tolist() == [False, False, False]
    assert not looks_truncated("“Quoted.”") and looks_truncated("“Quoted.") and looks_truncated("Ends with a colon:")
    assert not looks_truncated("Why? ") and not looks_truncated("Wait…") and not looks_truncated("終わり。")
    assert has_unclosed_delimiters("{[(]}") and not has_unclosed_delimiters("{[()]}")


@pytest.mark.parametrize("word", ["café", "über", "it’s", "“quoted”", "naïve", "señor", "à bientôt", "€5", "Ångström"])
@pytest.mark.parametrize("codec", ["cp1252", "latin-1"])
def test_mojibake_of_utf8_is_flagged(word, codec):
    garbled = word.encode("utf-8").decode(codec, errors="replace")
    assert garbled != word
    assert has_encoding_noise(garbled)
    assert not has_encoding_noise(word)


@pytest.mark.parametrize("clean", ["São Paulo.", "Ça va?", "ÂGE D'OR.", "Ãgua", "tab\tnew\nline\r.", "naïve café résumé."])
def test_clean_text_has_no_encoding_noise(clean):
    assert not has_encoding_noise(clean)


def test_validity_matches_naive_rules_on_random_strings():
    rng = np.random.default_rng(11)
    alphabet = list("ab .!?…\"'”“()[]{}\tÃÂâ€™©é") + ["\xa0", "\x00", "\x85", "\x7f", "\x1f", "\ufffd", "\n", "\u201d", "。"]
    texts = ["".join(rng.choice(alphabet, size=int(rng.integers(0, 14)))) for _ in range(3000)]
    for kwargs, naive_kwargs in [
        ({}, {}),
        ({"max_chars": 8}, {"max_chars": 8}),
        ({"require_terminal_punctuation": False}, {"require_terminal": False}),
        ({"check_truncation": False}, {"check_truncation": False}),
    ]:
        got = invalid_reasons(texts, **kwargs)
        want = np.array([naive_reasons(t, **naive_kwargs) for t in texts])
        np.testing.assert_array_equal(got, want)
        if "max_chars" in kwargs:
            assert got.any(axis=0).all()  # every rule was exercised


def test_validity_bootstrap_is_mean_estimate_of_indicators():
    rng = np.random.default_rng(3)
    texts = random_texts(rng, 200, low=1, end="") + random_texts(rng, 100)
    res = text_validity(texts, n_boot=300, seed=5)
    valid = ~invalid_reasons(texts).any(axis=1)
    assert res.validity_rate == mean_estimate(valid, n_boot=300, seed=5)
    assert res.validity_rate.ci_low < res.validity_rate.value < res.validity_rate.ci_high
    assert res.reason_shares["truncated"].value == pytest.approx(1 - valid.mean())


# --------------------------------------------------------------------------
# Lexical diversity
# --------------------------------------------------------------------------


def test_lexical_hand_case():
    texts = ["a b a b", "a b", "c"]
    # unigrams a a b b a b c: 3 types / 7 tokens; bigrams ab ba ab ab: 2/4; trigrams aba bab: 2/2
    assert distinct_n(texts, 1) == pytest.approx(3 / 7)
    assert distinct_n(texts, 2) == pytest.approx(0.5)
    assert distinct_n(texts, 3) == 1.0
    assert math.isnan(distinct_n(texts, 5))
    assert type_token_ratio(texts) == pytest.approx(3 / 7)
    # Ent-1: p = (3/7, 3/7, 1/7)
    assert ngram_entropy(texts, 1) == pytest.approx(-(2 * 3 / 7 * math.log2(3 / 7) + 1 / 7 * math.log2(1 / 7)))
    # Ent-2: ab x3, ba x1
    assert ngram_entropy(texts, 2) == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))
    assert ngram_entropy(texts, 3) == 1.0
    # stream a b a b a b c, W = 3: windows aba bab aba bab abc -> (2 + 2 + 2 + 2 + 3) / 3 / 5
    assert mattr(texts, window=3) == pytest.approx(11 / 15)
    assert mattr(texts, window=50) == pytest.approx(3 / 7)  # fewer tokens than the window: TTR
    assert math.isnan(mattr(["...", ""], window=3)) and math.isnan(type_token_ratio(["..."]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lexical_metrics_match_naive(seed):
    rng = np.random.default_rng(seed)
    vocab = WORDS[: int(rng.integers(5, len(WORDS)))]
    texts = random_texts(rng, int(rng.integers(1, 80)), vocab=vocab)
    stats = text_stats(texts)
    for n in range(1, 5):
        grams = naive_ngrams(texts, n)
        counts = np.array(list(Counter(grams).values()), dtype=float)
        if grams:
            assert distinct_n(stats, n) == pytest.approx(len(set(grams)) / len(grams), rel=1e-12)
            assert ngram_entropy(stats, n) == pytest.approx(scipy.stats.entropy(counts, base=2), rel=1e-10, abs=1e-12)
        else:
            assert math.isnan(distinct_n(stats, n)) and math.isnan(ngram_entropy(stats, n))
        assert distinct_n(texts, n) == distinct_n(stats, n)
    tokens = [tok for t in texts for tok in tokenize(t)]
    assert type_token_ratio(stats) == pytest.approx(len(set(tokens)) / len(tokens))
    for window in (1, 2, 7, 50, 400):
        assert mattr(stats, window=window) == pytest.approx(naive_mattr(texts, window), rel=1e-12)


def test_compression_ratio_hand_case_and_zlib_stream():
    assert compression_ratio(["a"]) == 9.0  # 2-byte header + 3-byte block + 4-byte Adler-32 for 1 byte
    assert compression_ratio(["aaaa", "aaaa"]) == pytest.approx(15 / 9)
    assert math.isnan(compression_ratio([""]))
    rng = np.random.default_rng(4)
    texts = random_texts(rng, 300)
    raw = "\n".join(texts).encode("utf-8")
    stream = zlib.compressobj(level=9)
    assert compression_ratio(texts) == pytest.approx(len(stream.compress(raw) + stream.flush()) / len(raw))
    assert compression_ratio(texts[:10] * 30) < compression_ratio(texts) / 2


def test_exact_duplicates_hand_and_naive():
    assert exact_duplicate_indicator(["a", "b", " a\n", "a", "A"]).tolist() == [False, False, True, True, False]
    assert exact_duplicate_rate(["x"] * 4).value == 0.75
    rng = np.random.default_rng(5)
    texts = [str(v) + (" " if rng.random() < 0.3 else "") for v in rng.integers(0, 30, size=200)]
    naive = [any(texts[j].strip() == texts[i].strip() for j in range(i)) for i in range(len(texts))]
    assert exact_duplicate_rate(texts).value == pytest.approx(np.mean(naive))
    est = exact_duplicate_rate(texts, n_boot=200, seed=1)
    assert est == mean_estimate(np.array(naive, dtype=float), n_boot=200, seed=1)


def test_mean_length():
    assert mean_length(["a b c.", "d", "..."]).value == pytest.approx(4 / 3)
    est = mean_length(random_texts(np.random.default_rng(0), 500, 1, 20), n_boot=200)
    assert est.ci_low < est.value < est.ci_high and 9.0 < est.value < 12.0


# --------------------------------------------------------------------------
# Zipf exponent
# --------------------------------------------------------------------------


def test_zipf_hand_cases():
    assert zipf_exponent(["a " * 12 + "b " * 6 + "c " * 4 + "d " * 3]) == pytest.approx(1.0, abs=1e-12)
    # two points (1, 3) and (2, 1): slope = -log 3 / log 2
    assert zipf_exponent(["a a a b"]) == pytest.approx(math.log2(3), abs=1e-12)
    assert zipf_exponent(["a " * 12 + "b " * 6 + "c " * 4 + "d " * 3], max_rank=2) == pytest.approx(1.0, abs=1e-12)
    assert math.isnan(zipf_exponent(["a a a"]))


def test_zipf_matches_linregress():
    rng = np.random.default_rng(8)
    texts = random_texts(rng, 300, 1, 30)
    counts = np.array(sorted(Counter(tok for t in texts for tok in tokenize(t)).values(), reverse=True), dtype=float)
    for max_rank in (5000, 20):
        c = counts[:max_rank]
        fit = scipy.stats.linregress(np.log(np.arange(1, len(c) + 1)), np.log(c))
        assert zipf_exponent(texts, max_rank=max_rank) == pytest.approx(-fit.slope, rel=1e-10)


@pytest.mark.parametrize("exponent", [0.8, 1.0, 1.5])
def test_zipf_recovers_sampled_exponent(exponent):
    rng = np.random.default_rng(int(exponent * 10))
    n_types, n_tokens = 150, 300_000
    p = np.arange(1, n_types + 1, dtype=float) ** -exponent
    ranks = rng.choice(n_types, size=n_tokens, p=p / p.sum())
    names = np.array([f"t{r}" for r in range(n_types)])
    texts = [" ".join(chunk) for chunk in np.array_split(names[ranks], 3000)]
    assert zipf_exponent(texts) == pytest.approx(exponent, abs=0.03)


# --------------------------------------------------------------------------
# MinHash near-duplicates
# --------------------------------------------------------------------------


def test_universal_hash_is_exact_mod_mersenne():
    rng = np.random.default_rng(0)
    edge = np.array([0, 1, 2**32 - 1, 2**32, 2**61 - 2], dtype=np.uint64)
    x = np.concatenate([edge, rng.integers(0, MERSENNE_61, size=200, dtype=np.uint64)])
    a, b = minhash_parameters(16, seed=3)
    a = np.concatenate([a, np.array([1, MERSENNE_61 - 1], dtype=np.uint64)])
    b = np.concatenate([b, np.array([0, MERSENNE_61 - 1], dtype=np.uint64)])
    got = _universal_hash(x, a, b)
    want = [[(int(ak) * int(xi) + int(bk)) % MERSENNE_61 for ak, bk in zip(a, b)] for xi in x]
    assert got.tolist() == want


def test_lsh_bands_hand_values():
    assert lsh_bands(128, 0.8) == (21, 6)  # 1-(1-.8^6)^21 = .9983; r=7: 1-(1-.8^7)^18 = .986 < .99
    assert lsh_bands(16, 0.8) == (8, 2)
    assert lsh_bands(4, 0.75) == (4, 1)
    assert lsh_bands(128, 1.0) == (1, 128)


def test_minhash_estimates_exact_jaccard():
    rng = np.random.default_rng(21)
    pairs = []
    for _ in range(40):
        base = list(rng.choice(WORDS, size=60))
        other = list(base)
        for pos in rng.choice(60, size=int(rng.integers(0, 25)), replace=False):
            other[pos] = str(rng.choice(WORDS))
        pairs += [" ".join(base), " ".join(other)]
    num_perm = 256
    sig = minhash_signatures(pairs, num_perm=num_perm, seed=7)
    errors = []
    for i in range(0, len(pairs), 2):
        exact = jaccard(naive_shingles(pairs[i]), naive_shingles(pairs[i + 1]))
        est = float((sig[i] == sig[i + 1]).mean())
        assert abs(est - exact) <= 4.5 * math.sqrt(exact * (1 - exact) / num_perm) + 1e-12
        errors.append(est - exact)
    assert abs(np.mean(errors)) < 0.02  # unbiased
    assert np.std(errors) > 0  # the estimates are not trivially exact


def test_minhash_short_samples_and_determinism():
    sig = minhash_signatures(["a b c", "A B C!", "c b a", "a b c d", "", "..."], num_perm=32)
    assert (sig[0] == sig[1]).all()  # same tokens
    assert (sig[0] != sig[2]).any() and (sig[0] != sig[3]).any()  # order and length matter: one shingle each
    assert (sig[4] == np.uint64(2**64 - 1)).all() and (sig[5] == np.uint64(2**64 - 1)).all()
    assert (sig[:4] < np.uint64(MERSENNE_61)).all()
    assert near_duplicate_flags(sig).tolist() == [True, True, False, False, False, False]


def test_minhash_is_identical_across_processes():
    texts = ["the quick brown fox jumps over the lazy dog again", "ein kleiner Test mit Umlauten äöü und mehr Wörtern"]
    here = minhash_signatures(texts, num_perm=16, seed=3)
    code = (
        "from metrics_core.text import minhash_signatures;"
        f"print(minhash_signatures({texts!r}, num_perm=16, seed=3).tolist())"
    )
    hash_seed = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"  # str hashes differ from this process's
    env = dict(os.environ, PYTHONHASHSEED=hash_seed, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert eval(out.stdout) == here.tolist()


def planted_corpus(seed, n_random=120, n_near=20, n_mid=15, length=200):
    """Random texts, near copies (1-2 words changed, J >= 0.9) and half overlaps (J ~ 0.33)."""
    rng = np.random.default_rng(seed)
    texts = [list(rng.choice(WORDS, size=length)) for _ in range(n_random)]
    for _ in range(n_near):
        copy = list(texts[int(rng.integers(n_random))])
        for pos in rng.choice(length, size=int(rng.integers(1, 3)), replace=False):
            copy[pos] = "planted"
        texts.append(copy)
    for _ in range(n_mid):
        src = texts[int(rng.integers(n_random))]
        texts.append(src[: length // 2] + list(rng.choice(WORDS, size=length // 2)))
    order = rng.permutation(len(texts))
    return [" ".join(texts[i]) + "." for i in order]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_near_duplicate_rate_matches_brute_force(seed):
    texts = planted_corpus(seed)
    want = naive_near_duplicate_rate(texts, 0.8)
    assert 0.1 < want < 0.5
    assert near_duplicate_rate(texts).value == pytest.approx(want)
    sig = minhash_signatures(texts)
    np.testing.assert_array_equal(near_duplicate_flags(sig), naive_signature_flags(sig, 0.8))
    # a lower threshold also catches the half-overlap pairs (J ~ 0.33 on shingles)
    assert near_duplicate_rate(texts, threshold=0.2).value == pytest.approx(naive_near_duplicate_rate(texts, 0.2))


def test_near_duplicate_flags_on_signatures_near_the_threshold():
    # Synthetic signatures: partners agree on 90..120 of 128 entries (around t = 0.8 -> 103).
    rng = np.random.default_rng(9)
    base = rng.integers(0, MERSENNE_61, size=(300, 128), dtype=np.uint64)
    partners = base[:150].copy()
    for row in partners:
        k = int(rng.integers(8, 39))
        row[rng.choice(128, size=k, replace=False)] = rng.integers(0, MERSENNE_61, size=k, dtype=np.uint64)
    sig = np.concatenate([base, partners])
    got = near_duplicate_flags(sig)
    want = naive_signature_flags(sig, 0.8)
    assert want.sum() > 50 and (~want).sum() > 50
    assert not (got & ~want).any()  # every flagged pair was verified
    assert got[want].mean() >= 0.97  # banding recall >= 0.99 per pair at the threshold


def test_near_duplicate_pairs_are_checked_across_a_bucket():
    # A and C agree on 108/128 entries but share only band 0 (every other band has one
    # changed entry); B shares band 0 (and one more entry) and sits between them in the bucket.
    rng = np.random.default_rng(13)
    bands, rows = lsh_bands(128, 0.8)
    a = rng.integers(0, MERSENNE_61, size=128, dtype=np.uint64)
    c = a.copy()
    c[[band * rows + 1 for band in range(1, bands)]] += np.uint64(2)
    b = rng.integers(0, MERSENNE_61, size=128, dtype=np.uint64)
    b[: rows + 1] = a[: rows + 1]
    b[rows + 1] = a[rows + 1] + np.uint64(1)  # rows sort A < B < C, so B sits between them
    sig = np.stack([a, b, c])
    assert (a == c).sum() == 108
    assert near_duplicate_flags(sig).tolist() == [True, False, True]
    assert near_duplicate_flags(sig, threshold=0.85).tolist() == [False, False, False]  # 108/128 = 0.84


def test_near_duplicate_big_buckets_match_brute_force():
    # 400 variants of one 200-word text (pairwise J ~ 0.9): buckets far above 256 members.
    rng = np.random.default_rng(12)
    base = list(rng.choice(WORDS, size=200))
    texts = []
    for _ in range(400):
        variant = list(base)
        variant[int(rng.integers(200))] = "variant"
        texts.append(" ".join(variant))
    texts += [" ".join(rng.choice(WORDS, size=200)) for _ in range(100)]
    texts += texts[:3] + ["", "  "]  # exact copies, empty samples
    sig = minhash_signatures(texts)
    flags = near_duplicate_flags(sig)
    np.testing.assert_array_equal(flags, naive_signature_flags(sig, 0.8))
    assert flags[:400].all() and not flags[400:500].any() and not flags[-2:].any()


def test_near_duplicate_rate_bootstrap_and_validation():
    texts = planted_corpus(5)
    flags = near_duplicate_flags(minhash_signatures(texts, seed=4))
    assert near_duplicate_rate(texts, hash_seed=4, n_boot=100, seed=2) == mean_estimate(flags, n_boot=100, seed=2)
    with pytest.raises(ValueError, match="threshold"):
        near_duplicate_rate(texts, threshold=0.0)
    with pytest.raises(ValueError, match="signatures"):
        near_duplicate_flags(np.zeros((3, 4)))


# --------------------------------------------------------------------------
# Reference-relative metrics
# --------------------------------------------------------------------------


def naive_rare_types(texts, tail_mass):
    counts = Counter(tok for t in texts for tok in tokenize(t))
    total = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))
    rare, cum = set(), 0
    for tok, c in ordered:
        cum += c
        if cum / total > tail_mass:
            break
        rare.add(tok)
    return rare or {ordered[0][0]}


def test_rare_types_hand_cases():
    ref = ["d c b a e"]  # five types, 0.2 of the mass each: ties broken by the string
    assert fit_text_reference(ref, tail_mass=0.4).rare_types == {"a", "b"}
    assert fit_text_reference(ref, tail_mass=0.3).rare_types == {"a"}  # b would cross 0.3
    assert fit_text_reference(ref, tail_mass=0.1).rare_types == {"a"}  # at least one type
    r = fit_text_reference(["a a a a a a b b c d", "x"], tail_mass=0.2)
    assert isinstance(r, TextReference) and r.tail_mass == 0.2
    assert r.rare_types == {"c", "d"} and r.rare_mass == pytest.approx(2 / 11)
    assert r.types == ("a", "b", "c", "d", "x") and r.counts.tolist() == [6, 2, 1, 1, 1]
    assert r.lengths.tolist() == [1, 10] and r.n_samples == 2 and r.n_tokens == 11


def test_reference_relative_hand_case():
    ref = fit_text_reference(["a a a a a a b b c d."], tail_mass=0.2)  # rare: c, d
    round_ = ["a c e.", "e e"]
    assert vocab_tail_coverage(ref, round_) == 0.5
    assert vocab_coverage(ref, round_) == 0.5  # a, c of a, b, c, d
    # p (round) on a b c d e = (1, 0, 1, 0, 3)/5, q (ref) = (6, 2, 1, 1, 0)/10
    p = np.array([0.2, 0, 0.2, 0, 0.6])
    q = np.array([0.6, 0.2, 0.1, 0.1, 0])
    m = (p + q) / 2
    kl = lambda a: sum(ai * math.log2(ai / mi) for ai, mi in zip(a, m) if ai > 0)  # noqa: E731
    assert unigram_jsd(ref, round_) == pytest.approx(0.5 * kl(p) + 0.5 * kl(q))
    assert length_ks(ref, round_) == 1.0  # lengths (3, 2) vs (10,)
    assert unigram_jsd(ref, ["a a b"]) > 0 and unigram_jsd(ref, ["a a a a a a b b c d"]) == 0.0
    assert math.isnan(unigram_jsd(ref, ["...", ""]))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_reference_relative_match_naive(seed):
    rng = np.random.default_rng(seed)
    ref_texts = random_texts(rng, 60, 0, 15)
    round_texts = random_texts(rng, 40, 0, 10, vocab=WORDS[: int(rng.integers(5, len(WORDS)))] + ["novel", "unseen"])
    tail_mass = float(rng.uniform(0.02, 0.5))
    ref = fit_text_reference(ref_texts, tail_mass=tail_mass)
    assert ref.rare_types == naive_rare_types(ref_texts, tail_mass)
    round_types = {tok for t in round_texts for tok in tokenize(t)}
    ref_counts = Counter(tok for t in ref_texts for tok in tokenize(t))
    round_counts = Counter(tok for t in round_texts for tok in tokenize(t))
    assert vocab_tail_coverage(ref, round_texts) == pytest.approx(len(ref.rare_types & round_types) / len(ref.rare_types))
    assert vocab_coverage(ref, round_texts) == pytest.approx(len(set(ref_counts) & round_types) / len(ref_counts))
    union = sorted(set(ref_counts) | set(round_counts))
    p = np.array([round_counts[t] for t in union], dtype=float)
    q = np.array([ref_counts[t] for t in union], dtype=float)
    want = scipy.spatial.distance.jensenshannon(p / p.sum(), q / q.sum(), base=2) ** 2
    assert unigram_jsd(ref, round_texts) == pytest.approx(want, abs=1e-12)
    ref_lengths = [len(tokenize(t)) for t in ref_texts]
    round_lengths = [len(tokenize(t)) for t in round_texts]
    assert length_ks(ref, round_texts) == pytest.approx(scipy.stats.ks_2samp(round_lengths, ref_lengths).statistic, abs=1e-15)


def test_ks_statistic_matches_scipy_on_continuous_and_tied_samples():
    rng = np.random.default_rng(1)
    for n, m in [(1, 1), (5, 40), (300, 200)]:
        a, b = rng.normal(size=n), rng.normal(0.3, size=m)
        assert ks_statistic(a, b) == pytest.approx(scipy.stats.ks_2samp(a, b).statistic, abs=1e-15)
        assert ks_statistic(np.sort(a), b, a_sorted=True) == ks_statistic(a, b)
    ties_a, ties_b = rng.integers(0, 5, size=50), rng.integers(1, 6, size=70)  # sample lengths tie a lot
    assert ks_statistic(ties_a, ties_b) == pytest.approx(scipy.stats.ks_2samp(ties_a, ties_b).statistic, abs=1e-15)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        ks_statistic([], [1.0])


# --------------------------------------------------------------------------
# The suite
# --------------------------------------------------------------------------


def test_text_suite_matches_the_individual_metrics():
    rng = np.random.default_rng(30)
    ref_texts = random_texts(rng, 300, 3, 25)
    round_texts = random_texts(rng, 150, 3, 25) + random_texts(rng, 20, 3, 25, end="") + [""] * 5
    round_texts += round_texts[:30]
    ref = fit_text_reference(ref_texts, tail_mass=0.15)
    out = text_suite(ref, round_texts, n_boot=50, seed=3, mattr_window=20, num_perm=64)
    assert tuple(out) == TEXT_METRIC_NAMES
    assert all(isinstance(v, Estimate) for v in out.values())
    stats = text_stats(round_texts)
    validity = text_validity(round_texts, n_boot=50, seed=3)
    want = {
        "validity_rate": validity.validity_rate.value,
        "invalid_empty": 5 / len(round_texts),
        "invalid_truncated": 20 / len(round_texts),
        "ttr": type_token_ratio(stats),
        "mattr": mattr(stats, window=20),
        "compression_ratio": compression_ratio(round_texts),
        "exact_duplicate_rate": exact_duplicate_rate(round_texts).value,
        "near_duplicate_rate": near_duplicate_rate(round_texts, num_perm=64).value,
        "mean_length": mean_length(round_texts).value,
        "length_ks": length_ks(ref, round_texts),
        "vocab_tail_coverage": vocab_tail_coverage(ref, round_texts),
        "vocab_coverage": vocab_coverage(ref, round_texts),
        "zipf_exponent": zipf_exponent(round_texts),
        "unigram_jsd": unigram_jsd(ref, round_texts),
        **{f"distinct_{n}": distinct_n(stats, n) for n in range(1, 5)},
        **{f"entropy_{n}": ngram_entropy(stats, n) for n in range(1, 5)},
    }
    for name, value in want.items():
        assert out[name].value == pytest.approx(value, rel=1e-12), name
    assert out["exact_duplicate_rate"].value >= 30 / len(round_texts)
    for name in ("validity_rate", "exact_duplicate_rate", "near_duplicate_rate", "mean_length"):
        assert out[name].std_error is not None and out[name].std_error > 0, name
    assert out["validity_rate"] == validity.validity_rate
    assert out["distinct_1"].ci_low is None and out["zipf_exponent"].std_error is None
    # a reference given as texts is fitted with the default tail mass
    again = text_suite(ref_texts, round_texts, n_boot=0)
    assert again["vocab_tail_coverage"].value == vocab_tail_coverage(fit_text_reference(ref_texts), round_texts)


def test_text_suite_sees_collapse():
    rng = np.random.default_rng(31)
    ref = fit_text_reference(random_texts(rng, 400, 5, 20))
    healthy = text_suite(ref, random_texts(rng, 200, 5, 20), n_boot=0)
    collapsed = text_suite(ref, random_texts(rng, 10, 5, 20, vocab=WORDS[:15]) * 20, n_boot=0)
    assert collapsed["exact_duplicate_rate"].value == pytest.approx(0.95)
    assert collapsed["near_duplicate_rate"].value == 1.0 and healthy["near_duplicate_rate"].value == 0.0
    for name in ("distinct_2", "mattr", "entropy_2", "compression_ratio", "vocab_coverage", "vocab_tail_coverage"):
        assert collapsed[name].value < healthy[name].value, name
    assert collapsed["unigram_jsd"].value > healthy["unigram_jsd"].value


def test_text_suite_on_a_round_without_tokens():
    ref = fit_text_reference(["Some reference text.", "More of it."])
    out = text_suite(ref, ["", "...", "  "], config=TextSuiteConfig(n_boot=20))
    assert out["validity_rate"].value == pytest.approx(1 / 3)  # "..." is valid punctuation
    assert out["invalid_empty"].value == pytest.approx(2 / 3)
    for name in ("distinct_1", "entropy_4", "ttr", "mattr", "zipf_exponent", "unigram_jsd"):
        assert math.isnan(out[name].value), name
    assert out["near_duplicate_rate"].value == 0.0 and out["mean_length"].value == 0.0
    assert out["vocab_coverage"].value == 0.0 and out["vocab_tail_coverage"].value == 0.0
    assert out["exact_duplicate_rate"].value == pytest.approx(1 / 3)  # "" and "  " after strip()
    assert out["length_ks"].value == 1.0


def test_text_suite_of_the_reference_against_itself():
    texts = random_texts(np.random.default_rng(40), 200, 1, 20)
    out = text_suite(fit_text_reference(texts), texts, n_boot=0)
    assert out["length_ks"].value == 0.0 and out["unigram_jsd"].value == 0.0
    assert out["vocab_coverage"].value == 1.0 and out["vocab_tail_coverage"].value == 1.0


def test_validity_relative_to_a_reference_that_lacks_final_periods():
    """Dictionary glosses end without a period: that check is off, the others are relative to the reference."""
    glosses = ["a domesticated carnivorous mammal", "(botany) a flowering plant", "the act of running",
               "a small (furry) animal", "a large body of water"]
    ref = fit_validity_baseline(glosses)
    assert ref.check_shares() == {"empty": 0.0, "encoding": 0.0, "terminal_punctuation": 1.0,
                                  "unclosed_delimiters": 0.0, "too_long": 0.0}
    assert ref.switched_off() == {"terminal_punctuation": 1.0}
    assert ref.switched_off(require_terminal_punctuation=False) == {}
    round_texts = ["a flowering (small animal", "the act of water", "a body of", "   ", "a mammal (botany"]
    res = text_validity(round_texts, reference=ref)
    # Hand count: unclosed brackets in 2 of 5, one empty; none is flagged for the missing period.
    assert res.switched_off == {"terminal_punctuation": 1.0}
    assert res.reason_counts == {"empty": 1, "encoding": 0, "truncated": 2, "too_long": 0}
    assert res.validity_rate.value == pytest.approx(0.4)
    assert res.metrics()["invalid_truncated"].value == pytest.approx(0.4)
    assert res.reference_shares == {"empty": 0.0, "encoding": 0.0, "truncated": 0.0, "too_long": 0.0}
    assert text_validity(glosses, reference=ref).validity_rate.value == 1.0  # the reference is valid against itself
    assert text_validity(glosses).validity_rate.value == 0.0  # absolute: every gloss "truncated"


def test_validity_reports_shares_above_the_reference():
    ref = fit_validity_baseline(["Fine."] * 9 + ["cut (off."])  # 10% unclosed: under the limit, stays on
    assert ref.switched_off() == {}
    res = text_validity(["Fine."] * 7 + ["cut (off."] * 3, reference=ref, n_boot=200, seed=1)
    assert res.validity_rate.value == pytest.approx(1 - (0.3 - 0.1))
    assert res.reason_shares["truncated"].value == pytest.approx(0.2)
    assert res.reason_shares["empty"].value == 0.0 and res.reference_shares["truncated"] == pytest.approx(0.1)
    assert res.reason_shares["truncated"].ci_low < 0.2 < res.reason_shares["truncated"].ci_high
    better = text_validity(["Fine."] * 10, reference=ref)
    assert better.validity_rate.value == pytest.approx(1.1) and better.reason_shares["truncated"].value == pytest.approx(-0.1)
    assert text_validity(["cut (off."], reference=ref, failure_limit=0.05).switched_off == {"unclosed_delimiters": 0.1}
    with pytest.raises(ValueError, match="failure_limit: expected a share in"):
        text_validity(["Fine."], reference=ref, failure_limit=1.5)


def naive_terminal_fails(text):
    s = text.rstrip()
    k = len(s)
    while k > 0 and s[k - 1] in _CLOSERS:
        k -= 1
    return text.strip() != "" and not (k > 0 and s[k - 1] in _TERMINALS)


def test_relative_validity_matches_naive_rules_on_random_strings():
    rng = np.random.default_rng(12)
    alphabet = list("ab .!?\"()[]") + ["\ufffd", "\x00"]
    def texts(n, weights):
        return ["".join(rng.choice(alphabet, size=int(rng.integers(0, 12)), p=weights)) for _ in range(n)]
    uniform = np.full(len(alphabet), 1 / len(alphabet))
    for reference, round_texts, max_chars in ((texts(400, uniform), texts(300, uniform), 9),
                                              (texts(500, uniform), texts(200, uniform), 11)):
        naive = {c: [] for c in VALIDITY_CHECKS}
        for t in reference:
            empty, encoding, _, too_long = naive_reasons(t, max_chars=max_chars)
            naive["empty"].append(empty)
            naive["encoding"].append(encoding)
            naive["terminal_punctuation"].append(naive_terminal_fails(t))
            naive["unclosed_delimiters"].append(naive_reasons(t, max_chars=max_chars, require_terminal=False)[2])
            naive["too_long"].append(too_long)
        shares = {c: float(np.mean(v)) for c, v in naive.items()}
        np.testing.assert_allclose(validity_checks(reference, max_chars=max_chars).mean(axis=0),
                                   [shares[c] for c in VALIDITY_CHECKS])
        ref = fit_validity_baseline(reference)
        res = text_validity(round_texts, reference=ref, max_chars=max_chars)
        off = {c for c, v in shares.items() if v > 0.2}
        assert set(res.switched_off) == off and "terminal_punctuation" in off  # random strings rarely end in . ! ?
        kwargs = {"max_chars": max_chars, "require_terminal": "terminal_punctuation" not in off,
                  "check_truncation": not {"terminal_punctuation", "unclosed_delimiters"} <= off}
        keep = np.array([c not in off for c in ("empty", "encoding")] + [True, "too_long" not in off])
        want_round = np.array([naive_reasons(t, **kwargs) for t in round_texts]) & keep
        want_ref = np.array([naive_reasons(t, **kwargs) for t in reference]) & keep
        assert res.validity_rate.value == pytest.approx(1 - want_round.any(axis=1).mean() + want_ref.any(axis=1).mean())
        for j, reason in enumerate(VALIDITY_REASONS):
            assert res.reason_shares[reason].value == pytest.approx(want_round[:, j].mean() - want_ref[:, j].mean())
