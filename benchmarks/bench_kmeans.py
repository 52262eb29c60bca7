"""k-means: ours (``metrics_core.kmeans.kmeans``) against scikit-learn's ``KMeans`` (Lloyd), side by side.

Run: ``.venv/bin/python benchmarks/bench_kmeans.py``

For a Gaussian mixture of N rows in D dimensions and K = 50 clusters (the reference clustering of the
coverage metrics), prints:

* the time of a full fit (k-means++ seeding, then Lloyd, one restart, max_iter 50, tol 1e-4) of ours and of
  scikit-learn, and their inertias;
* the same from identical initial centres (ours' k-means++ rows), which isolates the Lloyd engines: the
  final inertias should agree and the labels be the same up to ties;
* whether each gives the same labels with 1 thread and with all threads (ours decides every near-tie in
  float64, so its assignment does not depend on the thread count or the device).

Target: keep ours only if it is clearly faster (>= 1.5x on the full fit) or gives a property scikit-learn
lacks; the second applies either way (thread- and device-independent assignments, torch on a GPU).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def mixture(n: int, d: int, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.normal(0, 3, size=(k, d))
    weights = rng.dirichlet(np.ones(k))
    return centres[rng.choice(k, size=n, p=weights)] + rng.normal(size=(n, d))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    from metrics_core.kmeans import kmeans, kmeans_plusplus_init

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["10000x64", "50000x384"], help="NxD")
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    k = args.clusters
    print(f"{'N x D':>11} {'fit: ours':>10} {'sklearn':>9} {'speed-up':>9} {'inertia ours/sk':>16} "
          f"{'same init: ours':>16} {'sklearn':>9} {'inertia ours/sk':>16} {'labels equal':>13} "
          f"{'thread-independent ours/sk':>27}")
    for shape in args.shapes:
        n, d = (int(v) for v in shape.split("x"))
        x = mixture(n, d, k, rng)
        kmeans(x[:1000], 5)  # warm-up: torch's first GEMM
        t_ours, ours = timed(lambda: kmeans(x, k, seed=args.seed))
        sk_model = KMeans(k, init="k-means++", n_init=1, max_iter=50, tol=1e-4, algorithm="lloyd",
                          random_state=args.seed)
        t_sk, sk = timed(lambda: sk_model.fit(x))
        init = x[kmeans_plusplus_init(x, k, seed=args.seed)]
        t_ours_init, ours_init = timed(lambda: kmeans(x, k, init=init))
        sk_init_model = KMeans(k, init=init, n_init=1, max_iter=50, tol=1e-4, algorithm="lloyd")
        t_sk_init, sk_init = timed(lambda: sk_init_model.fit(x))
        agree = float(np.mean(ours_init.labels == sk_init.labels_))
        threads = torch.get_num_threads()
        with threadpool_limits(1):
            torch.set_num_threads(1)
            ours_1 = kmeans(x, k, init=init)
            sk_1 = KMeans(k, init=init, n_init=1, max_iter=50, tol=1e-4, algorithm="lloyd").fit(x)
        torch.set_num_threads(threads)
        same_ours = bool(np.array_equal(ours_1.labels, ours_init.labels))
        same_sk = bool(np.array_equal(sk_1.labels_, sk_init.labels_))
        print(f"{shape:>11} {t_ours:>8.2f} s {t_sk:>7.2f} s {t_sk / t_ours:>8.2f}x "
              f"{ours.inertia / sk.inertia_:>16.4f} {t_ours_init:>14.2f} s {t_sk_init:>7.2f} s "
              f"{ours_init.inertia / sk_init.inertia_:>16.6f} {agree:>13.4f} {str(same_ours) + '/' + str(same_sk):>27}")
    print("speed-up: scikit-learn's full-fit time over ours; labels equal: share of rows with the same label "
          "from the same initial centres")


if __name__ == "__main__":
    main()
