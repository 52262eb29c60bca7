r"""Write the shipped JSON-records example: ``monitor/data/json_reference.jsonl``, ``json_rounds/`` and
``json_schema.json``.

The files are generated, not collected: outputs of the L7-json loop (:mod:`monitor.meta_evaluation.loop_json_records`),
a support-ticket extractor retrained on its own unfiltered JSON records::

    .venv/bin/python scripts/make_json_example.py

* ``json_reference.jsonl``: :data:`N_REFERENCE` clean records of generation 0 (the loop's reference stream, seed
  :data:`SEED`).
* ``json_rounds/round_{g}.jsonl``, ``g = 0..``:data:`N_GENERATIONS`: :data:`N_ROUND` fresh outputs of generation
  ``g`` each, malformed and schema-violating ones included, from a run with ``n_samples = ``:data:`N_SAMPLES`
  training outputs per generation: a third of the loop's default (30), so the collapse comes early enough
  for seven rounds to show it (the true onset, mean field entropy below half of generation 0's, is at
  generation 3).
* ``json_schema.json``: the records' JSON Schema (:data:`~monitor.meta_evaluation.loop_json_records.SCHEMA`).

Everything is seeded and written byte for byte the same on a re-run. The script prints each round's true mean
field entropy, value support and violation probability.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from monitor.meta_evaluation.loop_json_records import (  # noqa: E402
    json_records_loop,
    records_jsonl,
    schema_json,
)

SEED = 9
N_REFERENCE = 120
N_ROUND = 60
N_GENERATIONS = 6
N_SAMPLES = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=REPO / "monitor" / "data",
                        help="folder for json_reference.jsonl, json_rounds/ and json_schema.json "
                             "(default: monitor/data)")
    args = parser.parse_args(argv)
    trace = json_records_loop(SEED, N_GENERATIONS, n_samples=N_SAMPLES, n_audit=N_ROUND, n_reference=N_REFERENCE)
    rounds_dir = args.out / "json_rounds"
    rounds_dir.mkdir(parents=True, exist_ok=True)
    (args.out / "json_reference.jsonl").write_bytes(records_jsonl(trace.reference))
    (args.out / "json_schema.json").write_bytes(schema_json())
    for g, lines in zip(trace.generations.tolist(), trace.rounds):
        (rounds_dir / f"round_{g}.jsonl").write_bytes(records_jsonl(lines))
    truth = trace.truth
    for g in trace.generations.tolist():
        print(f"round {g}: mean_field_entropy {truth['mean_field_entropy'][g]:.3f} nats, value_support "
              f"{truth['value_support'][g]}, violation_probability {truth['violation_probability'][g]:.3f}")
    print(f"true onset: generation {trace.onset}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
