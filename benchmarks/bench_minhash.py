"""MinHash near-duplicates: ours (``metrics_core.text``) against ``datasketch`` (MinHash + MinHashLSH), side by side.

Run: ``bash scripts/setup.sh bench && .venv/bin/python benchmarks/bench_minhash.py``

For rounds of N texts (word 5-gram shingles, 128 permutations, Jaccard threshold 0.8, a tenth of them
planted near-copies of another text), prints the time from the texts to the per-text near-duplicate
flags of ours (one vectorised pass: :func:`metrics_core.text.minhash_signatures`, then
:func:`metrics_core.text.near_duplicate_flags`) and of datasketch (``MinHash.bulk``, ``MinHashLSH``
insert and query, candidates verified by the estimated Jaccard), both from the same tokens, and the
recall and precision of each against the exact flags (exact Jaccard of every pair sharing a shingle).
Target: ours clearly faster (>= 2x) at equal or better accuracy; else ours should give way to datasketch.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np

SHINGLE = 5
NUM_PERM = 128
THRESHOLD = 0.8


def make_texts(n: int, rng: np.random.Generator) -> list[str]:
    """N texts of 10-40 Zipf-distributed words; one in ten a copy of an earlier text with a word or two changed."""
    vocabulary = [f"w{i}" for i in range(5000)]
    ranks = np.arange(1, len(vocabulary) + 1)
    p = ranks ** -1.1
    p /= p.sum()
    texts: list[str] = []
    for i in range(n):
        if i > 10 and rng.random() < 0.1:
            words = texts[int(rng.integers(0, i))].split()
            for _ in range(int(rng.integers(0, 2)) + (len(words) > 30)):
                words[int(rng.integers(0, len(words)))] = vocabulary[int(rng.integers(0, len(vocabulary)))]
        else:
            words = list(rng.choice(vocabulary, size=int(rng.integers(10, 41)), p=p))
        texts.append(" ".join(words))
    return texts


def shingles(tokens: list[str]) -> set[str]:
    """Word k-grams as metrics_core.text.minhash_signatures defines them (1 <= L < k: one shingle of all)."""
    if len(tokens) < SHINGLE:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i:i + SHINGLE]) for i in range(len(tokens) - SHINGLE + 1)}


def exact_flags(sets: list[set[str]]) -> np.ndarray:
    index: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(sets):
        for sh in s:
            index[sh].append(i)
    pairs = {(a, b) for docs in index.values() for x, a in enumerate(docs) for b in docs[x + 1:]}
    flags = np.zeros(len(sets), dtype=bool)
    for a, b in pairs:
        if len(sets[a] & sets[b]) / len(sets[a] | sets[b]) >= THRESHOLD:
            flags[a] = flags[b] = True
    return flags


def ours(texts: list[str]) -> np.ndarray:
    from metrics_core.text import minhash_signatures, near_duplicate_flags, text_stats

    stats = text_stats(texts, max_n=1)
    return near_duplicate_flags(minhash_signatures(stats, num_perm=NUM_PERM, shingle_size=SHINGLE),
                                threshold=THRESHOLD)


def with_datasketch(texts: list[str]) -> np.ndarray:
    from datasketch import MinHash, MinHashLSH

    from metrics_core.text import tokenize

    sets = [shingles(tokenize(t)) for t in texts]
    hashes = MinHash.bulk([[s.encode("utf-8") for s in shingle_set] for shingle_set in sets], num_perm=NUM_PERM)
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    for i, (h, s) in enumerate(zip(hashes, sets)):
        if s:
            lsh.insert(i, h)
    flags = np.zeros(len(texts), dtype=bool)
    for i, (h, s) in enumerate(zip(hashes, sets)):
        if s and not flags[i]:
            for j in lsh.query(h):
                if j != i and h.jaccard(hashes[j]) >= THRESHOLD:
                    flags[i] = flags[j] = True
    return flags


def timed(fn, texts, repeats: int) -> tuple[float, np.ndarray]:
    out = fn(texts)  # warm-up (imports, hash tables)
    t0 = time.perf_counter()
    for _ in range(repeats):
        out = fn(texts)
    return (time.perf_counter() - t0) / repeats, out


def accuracy(flags: np.ndarray, truth: np.ndarray) -> str:
    tp = int((flags & truth).sum())
    recall = tp / max(1, int(truth.sum()))
    precision = tp / max(1, int(flags.sum()))
    return f"{recall:.3f}/{precision:.3f}"


def main() -> None:
    from metrics_core.text import tokenize

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 2000, 10_000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{'N':>7} {'ours':>10} {'datasketch':>11} {'speed-up':>9} {'ours R/P':>12} {'datasketch R/P':>15} "
          f"{'near-dups':>10}")
    for n in args.sizes:
        texts = make_texts(n, rng)
        truth = exact_flags([shingles(tokenize(t)) for t in texts])
        repeats = max(2, 20_000 // n)
        t_ours, f_ours = timed(ours, texts, repeats)
        t_ds, f_ds = timed(with_datasketch, texts, repeats)
        print(f"{n:>7} {t_ours * 1e3:>7.1f} ms {t_ds * 1e3:>8.1f} ms {t_ds / t_ours:>8.1f}x "
              f"{accuracy(f_ours, truth):>12} {accuracy(f_ds, truth):>15} {int(truth.sum()):>10}")
    print("speed-up: datasketch's time over ours, texts to flags (target >= 2x); R/P: recall/precision of the "
          "flags against the exact Jaccard >= 0.8 flags")


if __name__ == "__main__":
    main()
