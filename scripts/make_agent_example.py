r"""Write the shipped agent-trajectory example: ``monitor/data/agent_reference.jsonl`` and ``agent_rounds/``.

The files are generated, not collected: episodes of the L6-agent gridworld loop
(:mod:`monitor.meta_evaluation.loop_agent`), a policy retrained on its own successful episodes::

    .venv/bin/python scripts/make_agent_example.py

* ``agent_reference.jsonl``: :data:`N_REFERENCE` episodes of the generation-0 policy (the loop's reference
  stream, seed :data:`SEED`).
* ``agent_rounds/round_{g}.jsonl``, ``g = 0..``:data:`N_GENERATIONS`: :data:`N_ROUND` fresh episodes of
  generation ``g``'s policy each, from a run with ``n_samples = ``:data:`N_SAMPLES` training episodes per
  generation: fewer than the loop's default (120), so the collapse comes early enough for seven rounds to
  show it (the true onset, ``action_entropy`` below half of generation 0's, is at generation 5).

Everything is seeded and written as compact ``.jsonl`` (:func:`~monitor.meta_evaluation.loop_agent.episodes_jsonl`),
so a re-run gives byte-identical files. The script prints each round's true action entropy and success rate.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from monitor.meta_evaluation.loop_agent import agent_loop, episodes_jsonl  # noqa: E402

SEED = 0
N_REFERENCE = 120
N_ROUND = 40
N_GENERATIONS = 6
N_SAMPLES = 40


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=REPO / "monitor" / "data",
                        help="folder for agent_reference.jsonl and agent_rounds/ (default: monitor/data)")
    args = parser.parse_args(argv)
    trace = agent_loop(SEED, N_GENERATIONS, n_samples=N_SAMPLES, n_audit=N_ROUND, n_reference=N_REFERENCE)
    rounds_dir = args.out / "agent_rounds"
    rounds_dir.mkdir(parents=True, exist_ok=True)
    (args.out / "agent_reference.jsonl").write_bytes(episodes_jsonl(trace.reference))
    for g, episodes in zip(trace.generations.tolist(), trace.rounds):
        (rounds_dir / f"round_{g}.jsonl").write_bytes(episodes_jsonl(episodes))
    entropy, success = trace.truth["action_entropy"], trace.truth["success_rate"]
    for g in trace.generations.tolist():
        print(f"round {g}: action_entropy {entropy[g]:.3f} nats, success_rate {success[g]:.3f}")
    print(f"true onset: generation {trace.onset}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
