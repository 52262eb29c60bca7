"""Hashing featurizer speed, measured side by side with scikit-learn in one run.

Run: ``.venv/bin/python benchmarks/bench_featurize.py``

Texts are generated (no downloads): words of 2-9 random letters, a vocabulary
of 20,000 words drawn with Zipfian frequencies (exponent 1.1), 20-40 words per
text. Prints the machine's fp32 GEMM rate (the yardstick, measured in the same
run because shared machines are noisy), then texts/s for

* scikit-learn's ``HashingVectorizer`` on the same features (word 1-2-grams
  plus ``char_wb`` 3-5-grams), the peer, hashing only;
* our hashing only (:func:`metrics_core.hashing.hashed_ngram_counts`);
* our full ``transform`` (hashing, TF-IDF, projection to 256 dims) on 1 and 2
  threads, with the default sparse sign projection (``method="sparse-jl"``)
  and, side by side in the same run, with LSA (``method="lsa"``), against the
  20,000 texts/s target on 2 cores (judged on the default);
* ``fit_hashing_featurizer`` on the reference for both methods (sparse-jl:
  hashing and idf; lsa: also the randomised SVD).

Each time is the best of ``--repeats`` runs. ``--sentence-transformer MODEL``
adds the throughput of a local sentence-transformers model for comparison.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from _gemm import gemm_gflops  # noqa: E402 - benchmarks/ is the script's directory

TARGET = 20_000


def zipf_corpus(n_texts: int, seed: int, vocab_size: int = 20_000) -> list[str]:
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab_rng = np.random.default_rng(12345)  # one vocabulary for every corpus
    vocab = np.array(["".join(vocab_rng.choice(letters, size=vocab_rng.integers(2, 10))) for _ in range(vocab_size)])
    p = 1.0 / np.arange(1, vocab_size + 1) ** 1.1
    p /= p.sum()
    lengths = rng.integers(20, 41, size=n_texts)
    words = vocab[rng.choice(vocab_size, size=int(lengths.sum()), p=p)]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [" ".join(words[bounds[i]:bounds[i + 1]]) for i in range(n_texts)]


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def sklearn_hashing(texts: list[str], n_features: int):
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import HashingVectorizer

    word = HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=n_features, alternate_sign=False, norm=None)
    char = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), n_features=n_features, alternate_sign=False, norm=None)
    return sp.hstack([word.transform(texts), char.transform(texts)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-reference", type=int, default=10_000)
    parser.add_argument("--n-texts", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sentence-transformer", default=None, help="local model directory or package name")
    args = parser.parse_args()

    from metrics_core.featurize import DEFAULT_METHOD, LSA, fit_hashing_featurizer
    from metrics_core.hashing import DEFAULT_N_FEATURES, hashed_ngram_counts

    reference = zipf_corpus(args.n_reference, seed=0)
    texts = zipf_corpus(args.n_texts, seed=1)
    n = len(texts)
    words = np.mean([len(t.split()) for t in texts])
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}")
    print(f"fp32 GEMM (4096x384 @ 384x4096): {gemm_gflops(4096):.1f} GFLOP/s")
    print(f"{args.n_reference} reference texts, {n} texts, {words:.1f} words per text on average")

    featurizers = {}
    for method in (DEFAULT_METHOD, LSA):
        t0 = time.perf_counter()
        featurizers[method] = f = fit_hashing_featurizer(reference, dim=args.dim, method=method)
        t_fit = time.perf_counter() - t0
        shape = (f"{f.nnz_per_bucket} entries per bucket" if f.columns is None
                 else f"{f.columns.size} columns x {args.dim}")
        print(f"fit ({f.method}, {shape}): {t_fit:.2f} s, {args.n_reference / t_fit:,.0f} texts/s")

    t_peer = best_time(lambda: sklearn_hashing(texts, DEFAULT_N_FEATURES), 1)
    t_hash = best_time(lambda: hashed_ngram_counts(texts, n_threads=1), args.repeats)
    print(f"hashing only, 1 thread: sklearn HashingVectorizer {n / t_peer:,.0f} texts/s, "
          f"ours {n / t_hash:,.0f} texts/s, speed-up {t_peer / t_hash:.1f}x")

    threads_before = torch.get_num_threads()
    rates = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for method, f in featurizers.items():  # interleaved, so both see the same machine load
            f.transform(texts[:4096], n_threads=threads)  # warm-up
            rates[method, threads] = n / best_time(lambda: f.transform(texts, n_threads=threads), args.repeats)
        print(f"transform, {threads} thread(s): "
              + ", ".join(f"{m} {rates[m, threads]:,.0f} texts/s" for m in featurizers))
    torch.set_num_threads(threads_before)
    rate = rates[DEFAULT_METHOD, 2]
    verdict = "meets" if rate >= TARGET else "MISSES"
    print(f"transform ({DEFAULT_METHOD}) on 2 threads: {rate:,.0f} texts/s, "
          f"{rate / TARGET:.2f}x the {TARGET:,} target ({verdict})")

    if args.sentence_transformer:
        from metrics_core.featurize_st import load_sentence_transformer

        st = load_sentence_transformer(args.sentence_transformer, device="cpu")
        sample = texts[:1024]
        st.transform(sample[:64])  # warm-up
        t_st = best_time(lambda: st.transform(sample), 1)
        print(f"sentence-transformers {st.model_dir.name} on CPU: {len(sample) / t_st:,.0f} texts/s "
              f"({rate * t_st / len(sample):.0f}x slower than hashing on 2 threads)")


if __name__ == "__main__":
    main()
