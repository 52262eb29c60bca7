r"""What every numeric loop shares: seeded streams, argument checks, audited generations and the trace.

Part of the numeric loops (:mod:`monitor.meta_evaluation.loops`, whose docstring states the common
rules: streams, workflows, controls, onsets).
"""

from __future__ import annotations

import numpy as np

from metrics_core._checks import _check_int  # noqa: F401 - the loops take it from here

from monitor.meta_evaluation.trace import LoopTrace


# --- seed streams -----------------------------------------------------------------------------------------------

_STREAM_MODEL0 = 0  # generation-0 model drawn from the seed (L2 mixture)
_STREAM_DYNAMICS = 1  # training samples of every generation
_STREAM_REAL = 2  # real data of the controls (C1 batch 0, C2 fresh real)
_STREAM_REFERENCE = 3
_STREAM_AUDIT = 4  # spawn_key (4, g): one stream per audited generation

WORKFLOWS = ("replace", "no_feedback", "accumulate", "fresh_real")
CONTROL_WORKFLOWS = {"C0": "no_feedback", "C1": "accumulate", "C2": "fresh_real"}
_CONTROL_IDS = {workflow: control for control, workflow in CONTROL_WORKFLOWS.items()}


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=tuple(key)))


def _audit_stream(seed: int, generation: int) -> np.random.Generator:
    return _stream(seed, _STREAM_AUDIT, int(generation))


# --- input checks ------------------------------------------------------------------------------------------------


def _check_run(seed, n_generations, audit_every) -> tuple[int, int, int]:
    return (_check_int(seed, "seed", 0), _check_int(n_generations, "n_generations", 1),
            _check_int(audit_every, "audit_every", 1))


def _check_workflow(workflow: str) -> str:
    if workflow not in WORKFLOWS:
        raise ValueError(f"workflow: expected one of {WORKFLOWS}, got {workflow!r}")
    return workflow


def _fresh_count(fresh_fraction: float, size: int, name: str) -> int:
    r"""Number of fresh real samples among ``size`` (C2), at least 1 and at most ``size - 1``."""
    if not (isinstance(fresh_fraction, (float, int)) and 0.0 < fresh_fraction < 1.0):
        raise ValueError(f"fresh_fraction: expected a number in (0, 1), got {fresh_fraction!r}")
    n_fresh = int(round(fresh_fraction * size))
    if not 1 <= n_fresh <= size - 1:
        raise ValueError(f"fresh_fraction: expected 1 <= round(fresh_fraction * {name}) <= {name} - 1, "
                         f"got {n_fresh} of {size}")
    return n_fresh


# --- shared trace helpers ----------------------------------------------------------------------------------------


def audited_generations(n_generations: int, audit_every: int = 1) -> np.ndarray:
    r"""Generations that get an audit sample: :math:`\{0, a, 2a, \dots\} \cap [0, N]`.

    Args:
        n_generations: ``N``, the last simulated generation.
        audit_every: ``a``, the audit stride.

    >>> audited_generations(10, 4).tolist()
    [0, 4, 8]
    """
    _check_run(0, n_generations, audit_every)
    return np.arange(0, n_generations + 1, audit_every, dtype=np.int64)


def first_generation(condition: np.ndarray) -> int | None:
    r"""Index of the first True in a per-generation boolean array, or None.

    Args:
        condition: ``[n_generations + 1]`` booleans, index = generation.

    >>> first_generation(np.array([False, False, True, True])), first_generation(np.zeros(3, bool))
    (2, None)
    """
    hits = np.flatnonzero(np.asarray(condition, dtype=bool))
    return int(hits[0]) if hits.size else None


def _loop_name(base: str, workflow: str) -> str:
    return base if workflow == "replace" else f"{_CONTROL_IDS[workflow]}-{base}"


def _trace(base: str, workflow: str, modality: str, seed: int, reference, rounds: list, generations: np.ndarray,
           onset: int | None, truth: dict, params: dict) -> LoopTrace:
    collapse = workflow == "replace"
    return LoopTrace(name=_loop_name(base, workflow), kind="collapse" if collapse else "control",
                     modality=modality, seed=seed, reference=reference, rounds=rounds, generations=generations,
                     onset=onset if collapse else None, truth=truth, params=params)
