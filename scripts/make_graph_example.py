r"""Write the shipped graph example: ``monitor/data/graph_reference.jsonl`` and ``graph_rounds/``.

The files are generated, not collected: graphs of the L8-graph loop (:mod:`monitor.meta_evaluation.loop_graphs`),
a mixture of tree, cycle, grid and community graphs refitted by maximum likelihood on its own samples::

    .venv/bin/python scripts/make_graph_example.py

* ``graph_reference.jsonl``: :data:`N_REFERENCE` graphs of the generation-0 model (the loop's reference stream,
  seed :data:`SEED`).
* ``graph_rounds/round_{g}.jsonl``, ``g = 0..``:data:`N_GENERATIONS`: :data:`N_ROUND` fresh graphs of generation
  ``g``'s model each, from a run with ``n_samples = ``:data:`N_SAMPLES` training pairs per generation: fewer
  than the loop's default (16), so the collapse comes early enough for seven rounds to show it (the true onset,
  half of the four families gone, is at generation :data:`EXPECTED_ONSET`).

The rules of ``monitor/data/graph_constraints.toml`` (written by hand, not by this script) apply to these
graphs. Everything is seeded and written as compact ``.jsonl``
(:func:`~monitor.meta_evaluation.loop_graphs.graphs_jsonl`), so a re-run gives byte-identical files. The script
prints each round's true family weights, entropy and size spread.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from monitor.meta_evaluation.loop_graphs import FAMILIES, graphs_jsonl, graphs_loop, graphs_params  # noqa: E402

SEED = 0
N_REFERENCE = 100
N_ROUND = 40
N_GENERATIONS = 6
N_SAMPLES = 10
EXPECTED_ONSET = 4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=REPO / "monitor" / "data",
                        help="folder for graph_reference.jsonl and graph_rounds/ (default: monitor/data)")
    args = parser.parse_args(argv)
    trace = graphs_loop(SEED, N_GENERATIONS, n_samples=N_SAMPLES, n_audit=N_ROUND, n_reference=N_REFERENCE)
    rounds_dir = args.out / "graph_rounds"
    rounds_dir.mkdir(parents=True, exist_ok=True)
    (args.out / "graph_reference.jsonl").write_bytes(graphs_jsonl(trace.reference))
    for g, graphs in zip(trace.generations.tolist(), trace.rounds):
        (rounds_dir / f"round_{g}.jsonl").write_bytes(graphs_jsonl(graphs))
    weights = graphs_params(SEED, N_GENERATIONS, n_samples=N_SAMPLES)["weights"]
    entropy, size_sd = trace.truth["family_entropy"], trace.truth["size_sd"]
    for g in trace.generations.tolist():
        shares = ", ".join(f"{name} {w:.2f}" for name, w in zip(FAMILIES, weights[g]))
        print(f"round {g}: {shares}; family_entropy {entropy[g]:.3f} nats, size_sd {size_sd[g]:.2f} nodes")
    print(f"true onset: generation {trace.onset}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
