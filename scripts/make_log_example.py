r"""Write the shipped log example: ``monitor/data/log_reference.log`` and ``log_rounds/``.

The files are generated, not collected: lines of the L9-log loop (:mod:`monitor.meta_evaluation.loop_logs`), a
log generator refitted by maximum likelihood on its own output::

    .venv/bin/python scripts/make_log_example.py

* ``log_reference.log``: :data:`N_REFERENCE` lines of generation 0 (the loop's reference stream, seed
  :data:`SEED`).
* ``log_rounds/round_{g}.log``, ``g = 0..``:data:`N_GENERATIONS`: :data:`N_ROUND` fresh lines of generation
  ``g`` each, from a run with ``n_samples = ``:data:`N_SAMPLES` training lines per generation: fewer than the
  loop's default (35), so the collapse comes early enough for seven rounds to show it (the true onset, template
  entropy below half of generation 0's, is at generation 3; 3 of the 14 templates are left by generation 6).

Every line is ``"<SEVERITY> <component>: <message>"``, so ``--log-pattern`` :data:`monitor.inputs.logs.EXAMPLE_PATTERN`
parses both fields. Everything is seeded and written as UTF-8 with ``\n`` line ends
(:func:`~monitor.meta_evaluation.loop_logs.log_text`), so a re-run gives byte-identical files. The script prints
each round's true template entropy and the number of templates left.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from monitor.meta_evaluation.loop_logs import log_text, logs_loop  # noqa: E402

SEED = 0
N_REFERENCE = 300
N_ROUND = 100
N_GENERATIONS = 6
N_SAMPLES = 20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=REPO / "monitor" / "data",
                        help="folder for log_reference.log and log_rounds/ (default: monitor/data)")
    args = parser.parse_args(argv)
    run = logs_loop(SEED, N_GENERATIONS, n_samples=N_SAMPLES, n_audit=N_ROUND, n_reference=N_REFERENCE)
    rounds_dir = args.out / "log_rounds"
    rounds_dir.mkdir(parents=True, exist_ok=True)
    (args.out / "log_reference.log").write_bytes(log_text(run.reference))
    for g, lines in zip(run.generations.tolist(), run.rounds):
        (rounds_dir / f"round_{g}.log").write_bytes(log_text(lines))
    entropy, support = run.truth["template_entropy"], run.truth["template_support"]
    for g in run.generations.tolist():
        print(f"round {g}: template_entropy {entropy[g]:.3f} bits, {support[g]} of 14 templates")
    print(f"true onset: generation {run.onset}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
