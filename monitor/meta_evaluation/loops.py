r"""Numeric collapse loops L1, L2, L3, L5 and their controls C0, C1, C2 (survey §8.1 meta-evaluation).

Every loop is a seeded Markov chain over a generator's *true parameters*:
generation 0 is the true (or real-data-fitted) distribution and generation
``n + 1`` is refitted on ``M`` samples of generation ``n`` (the training-set
size ``M`` is what drives collapse). The monitor never sees those samples: at
every audited generation ``g`` (``0, audit_every, 2 * audit_every, ...``) it
gets ``n_audit`` *fresh* samples of generation ``g``'s model, and one fixed
reference drawn from generation 0's distribution. The ground-truth onset is a
function of the true parameters only (``LoopTrace.truth``), never of audited
metrics.

Loops (``workflow="replace"``: each generation's data replace the previous):

* L1 Gaussian refit (Shumailov et al. 2024): :func:`gaussian_refit_loop`.
* L2 GMM mode dropping: :func:`gmm_mode_dropping_loop`.
* L3 Zipf tail under temperature sampling (Dohmatob et al. 2024): :func:`zipf_tail_loop`.
* L5 tabular Gaussian copula on a bundled scikit-learn dataset: :func:`copula_tabular_loop`.

Controls (any alarm is a false alarm; ``onset`` is always None):

* C0 ``workflow="no_feedback"``: every round is a fresh draw of generation 0.
* C1 ``workflow="accumulate"``: generation ``n + 1`` trains on the real data plus all
  synthetic data so far (Gerstgrasser et al. 2024, "Is model collapse inevitable?").
* C2 ``workflow="fresh_real"``: ``1 - fresh_fraction`` own samples plus ``fresh_fraction``
  fresh real samples each generation.

Seed streams: every run derives independent sub-streams from
``np.random.SeedSequence(seed, spawn_key=(k, ...))``: the generation-0 model,
the training dynamics, fresh real data, the reference, and one audit stream *per
generation*, so the audit sample of generation ``g`` and all of ``truth`` do not
depend on ``audit_every``, and a loop and its controls share the reference and
the generation-0 model for equal seeds.
"""

from __future__ import annotations

import functools
from typing import Callable


from monitor.meta_evaluation.trace import LoopTrace

from monitor.meta_evaluation.loop_common import CONTROL_WORKFLOWS
from monitor.meta_evaluation.loop_gaussian import gaussian_refit_loop
from monitor.meta_evaluation.loop_mixture import gmm_mode_dropping_loop
from monitor.meta_evaluation.loop_zipf import zipf_tail_loop
from monitor.meta_evaluation.loop_copula import copula_tabular_loop
from monitor.meta_evaluation.loop_common import (  # noqa: F401 - the names of the one-file loops module
    WORKFLOWS, _CONTROL_IDS, _STREAM_AUDIT, _STREAM_DYNAMICS, _STREAM_MODEL0, _STREAM_REAL, _STREAM_REFERENCE,
    _audit_stream, _check_int, _check_run, _check_workflow, _fresh_count, _loop_name, _stream, _trace,
    audited_generations, first_generation,
)
from monitor.meta_evaluation.loop_gaussian import (  # noqa: F401 - the names of the one-file loops module
    _pool_moments, _sample_gaussian, _symmetric_sqrt, gaussian_refit_parameters, gaussian_refit_theory,
    gaussian_truth, gaussian_w2_squared_to_standard,
)
from monitor.meta_evaluation.loop_mixture import (  # noqa: F401 - the names of the one-file loops module
    _PooledStats, _batch_stats, _incremental_em, _log_gaussian, equal_weight_mixture, gmm_refit_models,
    gmm_truth,
)
from monitor.meta_evaluation.loop_zipf import (  # noqa: F401 - the names of the one-file loops module
    _render_documents, expected_observed_support, temperature, zipf_exponent_mle, zipf_law,
    zipf_refit_distributions, zipf_truth,
)
from monitor.meta_evaluation.loop_copula import (  # noqa: F401 - the names of the one-file loops module
    GaussianCopula, _DATASETS, copula_refit_models, copula_truth, fit_gaussian_copula, load_real_table,
)


LOOPS: dict[str, Callable[..., LoopTrace]] = {
    **{f"L1-d{d}-M{M}": functools.partial(gaussian_refit_loop, d=d, M=M) for d in (1, 16) for M in (20, 100, 1000)},
    "L2-K10-d8": functools.partial(gmm_mode_dropping_loop, K=10, d=8),
    "L3-tau1.0": functools.partial(zipf_tail_loop, tau=1.0),
    "L3-tau0.9": functools.partial(zipf_tail_loop, tau=0.9),
    "L5-wine": functools.partial(copula_tabular_loop, dataset="wine"),
}
"""Collapse loops by id; each is called as ``fn(seed, n_generations, audit_every=1, **overrides)``."""

CONTROLS: dict[str, Callable[..., LoopTrace]] = {
    f"{control}-{loop_id}": functools.partial(loop, workflow=workflow)
    for loop_id, loop in LOOPS.items()
    for control, workflow in CONTROL_WORKFLOWS.items()
}
"""Controls by id (``C0-<loop id>``, ``C1-...``, ``C2-...``), called like :data:`LOOPS`."""

_SCHEDULES: dict[str, tuple[int, int]] = {
    "L1-d1-M20": (40, 1),
    "L1-d1-M100": (200, 5),
    "L1-d1-M1000": (2000, 50),
    "L1-d16-M20": (60, 2),
    "L1-d16-M100": (240, 6),
    "L1-d16-M1000": (2000, 50),
    "L2-K10-d8": (100, 4),
    "L3-tau1.0": (30, 1),
    "L3-tau0.9": (24, 1),
    "L5-wine": (120, 4),
}


def suggested_schedule(loop_id: str) -> dict[str, int]:
    r"""Suggested ``n_generations`` and ``audit_every`` for a loop or control id (a control gets its loop's).

    Chosen so that the onset lies inside the run for most seeds with 25-41 audited rounds.
    Measured onset quantiles (10 / 50 / 80 / 90 %, seeds 0.., default sizes) and the share of
    seeds whose onset falls inside the suggested run:

    ======================  ==============================  ==========  ==========
    loop                    onset q10 / q50 / q80 / q90       schedule    inside
    ======================  ==============================  ==========  ==========
    L1-d1-M20 (300 seeds)   2 / 9 / 21 / 34                  40, 1       93%
    L1-d1-M100 (300)        10 / 35 / 88 / 186               200, 5      92%
    L1-d1-M1000 (60)        59 / 308 / 1110 / 1639           2000, 50    ~90%
    L1-d16-M20 (300)        8 / 18 / 36 / 56                 60, 2       91%
    L1-d16-M100 (300)       37 / 82 / 169 / 197              240, 6      93%
    L1-d16-M1000 (40)       454 / 838 / 1617 / >2500         2000, 50    ~85%
    L2-K10-d8 (24)          33 / 50 / 64 / 74 (max 114)      100, 4      96%
    L3-tau1.0 (10)          4 / 5 / 5 / 5                    30, 1       100%
    L3-tau0.9               3 (deterministic)                24, 1       100%
    L5-wine (40)            47 / 62 / 83 / 89 (max 119)      120, 4      100%
    ======================  ==============================  ==========  ==========

    L1's onset is a first passage of a random walk in :math:`\log\operatorname{tr}\Sigma_n`
    (drift :math:`\approx -1/(M-1)`, step sd :math:`\approx\sqrt{2/(M-1)}` at ``d = 1``), hence
    the heavy right tail and a median below :math:`(M-1)\ln 2`.

    Args:
        loop_id: a key of :data:`LOOPS` or :data:`CONTROLS`.

    >>> suggested_schedule("C1-L3-tau0.9")
    {'n_generations': 24, 'audit_every': 1}
    """
    base = loop_id.split("-", 1)[1] if loop_id[:2] in CONTROL_WORKFLOWS and loop_id[2:3] == "-" else loop_id
    if base not in _SCHEDULES:
        raise ValueError(f"loop_id: expected one of {sorted(LOOPS) + sorted(CONTROLS)}, got {loop_id!r}")
    n_generations, audit_every = _SCHEDULES[base]
    return {"n_generations": n_generations, "audit_every": audit_every}
