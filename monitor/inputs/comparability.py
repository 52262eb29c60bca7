"""Rounds of a loop are compared only when audited at the same sizes against the same reference.

k-NN radii, coverage counts and tail hits all move with the sample sizes by
themselves, so a trajectory mixing sizes would show "collapse" that is only
a change of N or M. An audit whose sizes or reference differ from the loop's
other rounds is refused unless the user asks for it.
"""

from __future__ import annotations

import pandas as pd

from monitor.errors import InputError


def check_comparable(
    existing: pd.DataFrame,
    loop: str,
    round_number: int,
    *,
    n_reference: int,
    n_round: int,
    reference_fingerprint: str,
    allow_size_change: bool = False,
    allow_reference_change: bool = False,
) -> None:
    """Raise :class:`InputError` when this audit is not comparable with the loop's other rounds.

    Args:
        existing: rows with ``round, n_reference, n_round, reference_fingerprint``
            for the loop (any number of rows per round).
        allow_size_change: accept differing sizes (the reference must still match).
        allow_reference_change: accept a new reference too (``calibrate LOOP`` moving every round of a
            loop to the reference part of a recorded split, one round after the other).
    """
    others = existing[existing["round"] != round_number]
    if others.empty:
        return
    if allow_reference_change:
        return
    refs = set(others["reference_fingerprint"])
    if reference_fingerprint not in refs or len(refs) > 1:
        raise InputError(
            f"loop {loop} round {round_number}: the reference differs from the one its other rounds were "
            f"audited against (fingerprint {reference_fingerprint[:12]} vs {sorted(r[:12] for r in refs)}); "
            "use a new loop name for a new reference"
        )
    if allow_size_change:
        return
    sizes = set(zip(others["n_reference"].astype(int), others["n_round"].astype(int)))
    if sizes != {(n_reference, n_round)}:
        used = ", ".join(f"N={a} M={b}" for a, b in sorted(sizes))
        raise InputError(
            f"loop {loop} round {round_number}: audited at N={n_reference} M={n_round} reference/round samples, "
            f"but its other rounds used {used}; k-NN and coverage metrics are only comparable at equal sizes "
            "(subsample with --max-samples, or pass --allow-size-change)"
        )
