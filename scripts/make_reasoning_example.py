r"""Write the shipped reasoning example: ``monitor/data/reasoning_reference.jsonl`` and ``reasoning_rounds/``.

The files are generated, not collected: records of the L11-reasoning loop
(:mod:`monitor.meta_evaluation.loop_reasoning`), an arithmetic word-problem solver retrained on its own correct
solutions (STaR-style rejection-sampling self-training)::

    .venv/bin/python scripts/make_reasoning_example.py

* ``reasoning_rounds/round_{g}.jsonl``, ``g = 0..``:data:`N_GENERATIONS`: :data:`N_QUESTIONS` bank questions
  answered :data:`SAMPLES_PER_QUESTION` times each by generation ``g``'s model, from a run (seed :data:`SEED`)
  with ``n_samples = ``:data:`N_SAMPLES` training questions per generation: fewer than the loop's default
  (30), so the collapse comes early enough for seven rounds to show it (the true onset, strategy entropy below
  half of generation 0's, is at generation 4).
* ``reasoning_reference.jsonl``: the gold record (gold answer, a correct rationale) of every question the rounds
  use, in bank order: every round question has its gold answer there.

Everything is seeded and written as compact ``.jsonl``
(:func:`~monitor.meta_evaluation.loop_reasoning.records_jsonl`), so a re-run gives byte-identical files. The
script prints each round's true strategy entropy and accuracy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from monitor.meta_evaluation.loop_reasoning import reasoning_loop, records_jsonl  # noqa: E402

SEED = 0
N_QUESTIONS = 15
SAMPLES_PER_QUESTION = 4
N_GENERATIONS = 6
N_SAMPLES = 5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=REPO / "monitor" / "data",
                        help="folder for reasoning_reference.jsonl and reasoning_rounds/ (default: monitor/data)")
    args = parser.parse_args(argv)
    trace = reasoning_loop(SEED, N_GENERATIONS, n_samples=N_SAMPLES, n_questions_audit=N_QUESTIONS,
                           samples_per_question=SAMPLES_PER_QUESTION)
    used = {r["question_id"] for records in trace.rounds for r in records}
    rounds_dir = args.out / "reasoning_rounds"
    rounds_dir.mkdir(parents=True, exist_ok=True)
    (args.out / "reasoning_reference.jsonl").write_bytes(
        records_jsonl(r for r in trace.reference if r["question_id"] in used))
    for g, records in zip(trace.generations.tolist(), trace.rounds):
        (rounds_dir / f"round_{g}.jsonl").write_bytes(records_jsonl(records))
    entropy, accuracy = trace.truth["strategy_entropy"], trace.truth["accuracy"]
    for g in trace.generations.tolist():
        print(f"round {g}: strategy_entropy {entropy[g]:.3f} nats, accuracy {accuracy[g]:.3f}")
    print(f"reference: {len(used)} questions; true onset: generation {trace.onset}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
