r"""Write the shipped image-text example: ``monitor/data/image_text_reference.npz`` and ``image_text_rounds/``.

The files are generated, not collected: paired image and caption embeddings of the L10-image-text loop
(:mod:`monitor.meta_evaluation.loop_image_text`), a captioner distilled on its own captions::

    .venv/bin/python scripts/make_image_text_example.py

* ``image_text_reference.npz``: :data:`N_REFERENCE` pairs of the generation-0 captioner (the loop's reference
  stream, seed :data:`SEED`).
* ``image_text_rounds/round_{g}.npz``, ``g = 0..``:data:`N_GENERATIONS`: :data:`N_ROUND` fresh pairs of generation
  ``g``'s captioner each, from a run with ``n_samples = ``:data:`N_SAMPLES` captions per generation: fewer than the
  loop's default (80), so the collapse comes early enough for seven rounds to show it (the true onset,
  ``named_correctly`` below half of generation 0's, is at generation 4).

Each archive holds ``image`` and ``text`` (``[N, 32]`` float32) and ``caption`` (``"a photo of a <concept>"``,
dtype ``<U``), as :func:`monitor.inputs.pairs.load_pairs` reads them. Everything is seeded and written by
:func:`~monitor.meta_evaluation.loop_image_text.pairs_npz_bytes` (fixed zip timestamps), so a re-run gives
byte-identical files. The script prints each round's true share named correctly and name entropy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from monitor.meta_evaluation.loop_image_text import image_text_loop, pairs_npz_bytes  # noqa: E402

SEED = 0
N_REFERENCE = 100
N_ROUND = 64
N_GENERATIONS = 6
N_SAMPLES = 20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=REPO / "monitor" / "data",
                        help="folder for image_text_reference.npz and image_text_rounds/ (default: monitor/data)")
    args = parser.parse_args(argv)
    trace = image_text_loop(SEED, N_GENERATIONS, n_samples=N_SAMPLES, n_audit=N_ROUND, n_reference=N_REFERENCE)
    rounds_dir = args.out / "image_text_rounds"
    rounds_dir.mkdir(parents=True, exist_ok=True)
    (args.out / "image_text_reference.npz").write_bytes(pairs_npz_bytes(trace.reference))
    for g, pairs in zip(trace.generations.tolist(), trace.rounds):
        (rounds_dir / f"round_{g}.npz").write_bytes(pairs_npz_bytes(pairs))
    correct, entropy = trace.truth["named_correctly"], trace.truth["name_entropy"]
    for g in trace.generations.tolist():
        print(f"round {g}: named_correctly {correct[g]:.3f}, name_entropy {entropy[g]:.3f} bits")
    print(f"true onset: generation {trace.onset}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
