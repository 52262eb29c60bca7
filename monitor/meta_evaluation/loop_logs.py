r"""L9-log: a log generator refitted on its own output, forgetting its rare messages.

The collapse loop (benchmark loop L9, modality ``"log"``) is the self-consuming loop of Shumailov et al. (2024,
"AI models collapse when trained on recursively generated data", Nature) applied to a log generator: sample log
lines from the current generator, refit the generator to them by maximum likelihood, repeat. With a finite
sample and no smoothing, a template (or a parameter value) that one generation's sample happens to miss gets
probability 0 and never comes back; the rare templates of the tail go first, and the template distribution
drifts towards a few modes, one of which grows until it takes over (neutral drift absorbed at the boundary, as
in a Wright-Fisher population). The log metrics (:mod:`metrics_core.logs`) should see template coverage fall
and the template, severity and component divergences rise.

Generative process (:data:`TEMPLATES`, :data:`VOCABULARIES`): a line is ``"<SEVERITY> <component>: <message>"``
(the default log pattern :data:`monitor.inputs.logs.EXAMPLE_PATTERN` parses severity and component). The
generator picks one of :math:`K = 14` templates with probability :math:`p_g(k)`, each with a fixed severity
(DEBUG, INFO, WARN, ERROR or CRITICAL) and component (sshd, http, cache, cron, kernel, disk, db, raid), and fills
each of its parameter slots independently with a value of the slot's kind (a user name, an IP address, a port,
a request id, a duration in ms, a process id, a device) drawn from that kind's distribution :math:`q_g^{(s)}`
over a fixed vocabulary. Generation 0 (the same for every seed): :math:`p_0(k) \propto (k + 1)^{-1.2}` (the
first template takes 37.6% of the lines, the last five, the tail :data:`TAIL`, 9.7% together, the rarest
1.6%) and every :math:`q_0^{(s)}` uniform. :math:`H(p_0) = 3.01` bits of a possible :math:`\log_2 14 = 3.81`.

Self-training (``workflow="replace"``, the loop): generation ``g`` emits ``n_samples`` (``M``) training lines;
generation ``g + 1`` is the maximum-likelihood fit to them,

.. math:: p_{g+1}(k) = \frac{n_g(k)}{M}, \qquad q_{g+1}^{(s)}(v) = \frac{n_g^{(s)}(v)}{\sum_{v'} n_g^{(s)}(v')},

:math:`n_g(k)` the lines of template :math:`k`, :math:`n_g^{(s)}(v)` the slots of kind :math:`s` filled with
:math:`v`; no smoothing, so zeros are absorbing. A kind no training line uses keeps generation ``g``'s
distribution (the likelihood has nothing to fit). The dynamics are simulated on counts (multinomial draws
equal in law to rendering the lines and counting), so they take microseconds a generation.

Ground truth (from :math:`p_g` and :math:`q_g`, never from audited lines; :func:`logs_truth`):

* ``template_entropy``: :math:`H(p_g)` in bits;
* ``template_support``: the number of templates with :math:`p_g(k) > 0`, of 14 (never rises under replace);
* ``tail_mass``: :math:`\sum_{k \in \text{TAIL}} p_g(k)`, the rare templates' share (usually falling, but the
  drift is neutral: now and then a tail template is the one that grows, e.g. seed 2);
* ``parameter_entropy``: the mean over the 7 parameter kinds of :math:`H(q_g^{(s)})` in bits.

Onset (``replace`` only): the first generation with :math:`H(p_g) < \tfrac12 H(p_0)`, half of the template
entropy gone (the halving rule of L3, L4 and L6). At the default ``M = 35`` it falls at generation 8, 15,
14, 6, 9, 18, 24, 7, 24, 9 for seeds 0-9 (5-25, median 11, for seeds 0-29; measured), mid-way through the
default 30 generations, while ``template_support`` falls from 14 to 1-3 by generation 30. The entropy falls
but not monotonically (a refit can come out flatter than its parent): in 9 of those 30 seeds it rose above
:math:`H(p_0) / 2` again for a while after the onset. With ``M = 60`` the onset is later (6-30) and missing in 4
of 30 seeds.

Controls (any alarm on C0 is a false alarm; ``onset`` is always None):

* C0 ``workflow="no_feedback"``: every round is a fresh draw of generation 0; the truth is constant.
* C1 ``workflow="accumulate"`` (Gerstgrasser et al. 2024, "Is model collapse inevitable?"): generation
  ``g + 1`` is fitted on all training samples so far, generation 0's included.
* C2 ``workflow="fresh_real"``: generation ``g + 1`` is fitted on ``M - r`` own lines plus
  ``r = round(fresh_fraction * M)`` fresh lines of generation 0 (default ``fresh_fraction = 0.2``, 7 lines: at
  0.1, 4 lines, the entropy still halves in 9 of 30 seeds).

By generation 30 (seeds 0-29, measured) C1 keeps :math:`H(p_{30}) / H(p_0)` of 0.70-1.10 and 8-13 of the 14
templates, C2 0.56-1.03 and 5-11, against 0.00-0.52 and 1-3 for the loop; C1 never crosses the onset threshold
and C2 does in 1 of the 30 seeds.

Rounds and the reference are lists of log lines (``str``; :func:`log_text` writes them as a ``.log`` file),
parsed by :func:`monitor.inputs.logs.log_lines_from_strings`. Every audited round is ``n_audit`` fresh lines of
generation ``g``; the reference is ``n_reference`` lines of generation 0 from its own stream.

Randomness: one :class:`numpy.random.SeedSequence` per purpose and generation (the streams of
:mod:`monitor.meta_evaluation.loop_common`), so the dynamics and ``truth`` do not depend on ``audit_every`` and
a loop and its controls share generation 0's training sample and the reference for equal seeds. Time (one CPU
core, measured): a 200-line audit round renders in under 1 ms; a default 31-round run takes about 0.02 s.

Three lines of generation 0:

>>> for line in sample_lines(*initial_generator(), 3, np.random.default_rng(1)):
...     print(line)
INFO http: GET /api/items/r2443 returned 200 in 373 ms
WARN kernel: task 1000 blocked for more than 488 seconds
INFO sshd: Accepted password for oscar from 10.0.1.21 port 41370 ssh2
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

import numpy as np

from monitor.meta_evaluation.loop_common import (
    CONTROL_WORKFLOWS, _STREAM_DYNAMICS, _STREAM_REAL, _STREAM_REFERENCE, _audit_stream, _check_int, _check_run,
    _check_workflow, _fresh_count, _stream, _trace, audited_generations, first_generation,
)
from monitor.meta_evaluation.trace import LoopTrace

# --- the generator -----------------------------------------------------------------------------------------------

VOCABULARIES: dict[str, tuple[str, ...]] = {
    "user": ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar"),
    "ip": tuple(f"10.0.{i // 8}.{16 * (i % 8) + 5}" for i in range(32)),
    "port": tuple(str(40000 + 137 * i) for i in range(24)),
    "rid": tuple(f"r{1000 + 37 * i}" for i in range(48)),
    "ms": tuple(str(5 + 23 * i) for i in range(40)),
    "pid": tuple(str(1000 + 97 * i) for i in range(30)),
    "dev": tuple(f"sd{c}" for c in "abcdefgh"),
}
"""The parameter kinds and their values (the same for every seed)."""

KINDS = tuple(VOCABULARIES)

TEMPLATES: tuple[tuple[str, str, str], ...] = (
    ("INFO", "sshd", "Accepted password for {user} from {ip} port {port} ssh2"),
    ("INFO", "http", "GET /api/items/{rid} returned 200 in {ms} ms"),
    ("INFO", "sshd", "Connection closed by {ip}"),
    ("DEBUG", "cache", "hit for key session:{rid}"),
    ("INFO", "http", "POST /api/orders created order {rid}"),
    ("INFO", "cron", "job backup started with pid {pid}"),
    ("WARN", "http", "slow request {rid} took {ms} ms"),
    ("INFO", "kernel", "usb device {dev} attached"),
    ("WARN", "disk", "device {dev} usage above 90 percent"),
    ("ERROR", "db", "query {rid} failed after {ms} ms: deadlock detected"),
    ("ERROR", "sshd", "Failed password for invalid user {user} from {ip}"),
    ("WARN", "kernel", "task {pid} blocked for more than {ms} seconds"),
    ("ERROR", "kernel", "Out of memory: killed process {pid}"),
    ("CRITICAL", "raid", "array {dev} degraded, rebuild required"),
)
"""``(severity, component, message)``: ``{kind}`` is a parameter slot, filled with a value of that kind."""

K = len(TEMPLATES)
TAIL = tuple(range(K - 5, K))
"""The rare templates: the last five."""

ZIPF_EXPONENT = 1.2
DEFAULT_N_SAMPLES = 35
DEFAULT_N_AUDIT = 200
DEFAULT_N_REFERENCE = 400
DEFAULT_FRESH_FRACTION = 0.2
ONSET_FRACTION = 0.5


def _slots(message: str) -> tuple[str, ...]:
    import string

    return tuple(field for _, field, _, _ in string.Formatter().parse(message) if field)


_SLOTS = tuple(_slots(message) for _, _, message in TEMPLATES)  # per template, its slot kinds in order
# [K, kinds]: how many slots of each kind a template has
_USES = np.array([[slots.count(kind) for kind in KINDS] for slots in _SLOTS], dtype=np.int64)


def initial_generator() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    r"""Generation 0: :math:`p_0(k) \propto (k + 1)^{-1.2}` over :data:`TEMPLATES`, uniform values of every kind.

    >>> p, q = initial_generator()
    >>> round(float(p[0]), 3), round(float(p[list(TAIL)].sum()), 3), q["dev"].tolist() == [0.125] * 8
    (0.376, 0.097, True)
    """
    weights = np.arange(1, K + 1, dtype=float) ** -ZIPF_EXPONENT
    return weights / weights.sum(), {kind: np.full(len(v), 1.0 / len(v)) for kind, v in VOCABULARIES.items()}


def _draw(p: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` indices drawn from ``p`` (never one of probability 0)."""
    cdf = np.cumsum(p)
    cdf[np.flatnonzero(p > 0)[-1]:] = np.inf  # rounding never reaches past the last positive entry
    return np.searchsorted(cdf, rng.random(n), side="right")


def sample_lines(p: np.ndarray, q: dict[str, np.ndarray], n: int, rng: np.random.Generator) -> list[str]:
    """``n`` log lines of the generator ``(p, q)``: templates, then each slot's value, drawn from ``rng``.

    >>> p, q = initial_generator()
    >>> lines = sample_lines(p, q, 3, np.random.default_rng(0))
    >>> len(lines), all(line.split(" ", 1)[0] in ("DEBUG", "INFO", "WARN", "ERROR", "CRITICAL") for line in lines)
    (3, True)
    """
    return _render(*_latent(p, q, _check_int(n, "n", 1), rng))


def _latent(p: np.ndarray, q: dict[str, np.ndarray], n: int,
            rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The draws behind ``n`` lines: their templates, then per kind the values of its slots in line order."""
    templates = _draw(p, n, rng)
    values = {}
    for j, kind in enumerate(KINDS):
        needed = int(_USES[templates, j].sum())
        values[kind] = _draw(q[kind], needed, rng) if needed else np.zeros(0, dtype=np.int64)
    return templates, values


def _render(templates: np.ndarray, values: dict[str, np.ndarray]) -> list[str]:
    remaining = {kind: iter(v.tolist()) for kind, v in values.items()}
    lines = []
    for k in templates.tolist():
        severity, component, message = TEMPLATES[k]
        filled = {kind: VOCABULARIES[kind][next(remaining[kind])] for kind in _SLOTS[k]}
        lines.append(f"{severity} {component}: {message.format(**filled)}")
    return lines


def _sample_counts(p: np.ndarray, q: dict[str, np.ndarray], n: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The template counts and per-kind value counts of ``n`` lines of ``(p, q)``, without rendering them."""
    counts = rng.multinomial(n, p)
    needed = counts @ _USES
    return counts, {kind: rng.multinomial(int(needed[j]), q[kind]) for j, kind in enumerate(KINDS)}


def _refit(counts: np.ndarray, value_counts: dict[str, np.ndarray], q: dict[str, np.ndarray]):
    return counts / counts.sum(), {kind: c / c.sum() if c.sum() > 0 else q[kind] for kind, c in value_counts.items()}


def logs_generators(seed: int, n_generations: int, *, workflow: str = "replace",
                    n_samples: int = DEFAULT_N_SAMPLES, fresh_fraction: float = DEFAULT_FRESH_FRACTION) -> list:
    r"""The true generators ``(p_g, q_g)`` of every generation of L9-log or a control (no audit lines).

    Args:
        seed: run seed.
        n_generations: last generation ``N``.
        workflow: ``"replace"``, ``"no_feedback"``, ``"accumulate"`` or ``"fresh_real"``.
        n_samples: ``M``, training lines per generation.
        fresh_fraction: share of generation-0 lines in the C2 training sample.

    Returns:
        ``N + 1`` pairs ``(p, q)``: ``p`` ``[14]`` template probabilities, ``q`` kind -> value probabilities.

    >>> gens = logs_generators(0, 5, n_samples=30)
    >>> len(gens), bool((gens[5][0] > 0).sum() <= (gens[0][0] > 0).sum())
    (6, True)
    """
    seed, n_generations, _ = _check_run(seed, n_generations, 1)
    workflow = _check_workflow(workflow)
    n_samples = _check_int(n_samples, "n_samples", 1)
    n_fresh = _fresh_count(fresh_fraction, n_samples, "n_samples") if workflow == "fresh_real" else 0
    p0, q0 = initial_generator()
    generators = [(p0, q0)]
    if workflow == "no_feedback":
        return generators * (n_generations + 1)
    pooled = (np.zeros(K, dtype=np.int64), {kind: np.zeros(len(v), dtype=np.int64) for kind, v in VOCABULARIES.items()})
    for g in range(n_generations):
        p, q = generators[g]
        counts, values = _sample_counts(p, q, n_samples - n_fresh, _stream(seed, _STREAM_DYNAMICS, g))
        if n_fresh:
            fresh, fresh_values = _sample_counts(p0, q0, n_fresh, _stream(seed, _STREAM_REAL, g))
            counts, values = counts + fresh, {kind: values[kind] + fresh_values[kind] for kind in KINDS}
        if workflow == "accumulate":
            pooled = (pooled[0] + counts, {kind: pooled[1][kind] + values[kind] for kind in KINDS})
            counts, values = pooled
        generators.append(_refit(counts, values, q))
    return generators


def _entropy_bits(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(max(0.0, -(nz * np.log2(nz)).sum()))


def logs_truth(generators: Iterable) -> dict[str, np.ndarray]:
    r"""Per-generation truth of L9-log: ``template_entropy``, ``template_support``, ``tail_mass`` and
    ``parameter_entropy`` (module docstring), from the true generators.

    >>> t = logs_truth([initial_generator()])
    >>> round(float(t["template_entropy"][0]), 3), int(t["template_support"][0]), round(float(t["tail_mass"][0]), 3)
    (3.008, 14, 0.097)
    """
    generators = list(generators)
    return {
        "template_entropy": np.array([_entropy_bits(p) for p, _ in generators]),
        "template_support": np.array([int((p > 0).sum()) for p, _ in generators], dtype=np.int64),
        "tail_mass": np.array([float(p[list(TAIL)].sum()) for p, _ in generators]),
        "parameter_entropy": np.array([float(np.mean([_entropy_bits(q[kind]) for kind in KINDS]))
                                       for _, q in generators]),
    }


# --- the loop ----------------------------------------------------------------------------------------------------


def logs_loop(seed: int = 0, n_generations: int = 30, audit_every: int = 1, *, workflow: str = "replace",
              n_samples: int = DEFAULT_N_SAMPLES, n_audit: int = DEFAULT_N_AUDIT,
              n_reference: int = DEFAULT_N_REFERENCE, fresh_fraction: float = DEFAULT_FRESH_FRACTION) -> LoopTrace:
    r"""L9-log: a log generator refitted on its own lines, or a control (module docstring).

    Onset (``replace`` only): the first generation with ``truth["template_entropy"] < 0.5 * truth[...][0]``.

    Args:
        seed: run seed.
        n_generations: last simulated generation.
        audit_every: audit stride.
        workflow: ``"replace"`` (L9-log), ``"no_feedback"`` (C0), ``"accumulate"`` (C1) or ``"fresh_real"`` (C2).
        n_samples: ``M``, training lines per generation.
        n_audit: lines per audit round.
        n_reference: lines in the reference (generation 0).
        fresh_fraction: share of generation-0 lines in the C2 training sample.
    """
    seed, n_generations, audit_every = _check_run(seed, n_generations, audit_every)
    n_audit = _check_int(n_audit, "n_audit", 1)
    n_reference = _check_int(n_reference, "n_reference", 1)
    generators = logs_generators(seed, n_generations, workflow=workflow, n_samples=n_samples,
                                 fresh_fraction=fresh_fraction)
    truth = logs_truth(generators)
    generations = audited_generations(n_generations, audit_every)
    rounds = [sample_lines(*generators[g], n_audit, _audit_stream(seed, g)) for g in generations.tolist()]
    reference = sample_lines(*generators[0], n_reference, _stream(seed, _STREAM_REFERENCE))
    onset = first_generation(truth["template_entropy"] < ONSET_FRACTION * truth["template_entropy"][0])
    params = dict(n_samples=n_samples, n_audit=n_audit, n_reference=n_reference, workflow=workflow,
                  fresh_fraction=fresh_fraction, n_generations=n_generations, audit_every=audit_every)
    return _trace("L9-log", workflow, "log", seed, reference, rounds, generations, onset, truth, params)


def log_text(lines: Iterable[str]) -> bytes:
    r"""Log lines as ``.log`` bytes: each line followed by ``\n``, UTF-8.

    >>> log_text(["INFO sshd: Connection closed by 10.0.0.5", "DEBUG cache: hit for key session:r1000"])
    b'INFO sshd: Connection closed by 10.0.0.5\nDEBUG cache: hit for key session:r1000\n'
    """
    return b"".join(line.encode("utf-8") + b"\n" for line in lines)


# --- the oracle (monitor.meta_evaluation.oracle) ------------------------------------------------------------------


def line_log_ratios(templates: np.ndarray, values: dict[str, np.ndarray], generator_g, generator_0) -> float:
    r""":math:`\sum_i [\log p_g(k_i) - \log p_0(k_i)] + \sum_s \sum_v [\log q_g^{(s)}(v) - \log q_0^{(s)}(v)]`
    over lines of templates :math:`k_i` whose slots hold the values ``values`` (per kind, every slot's value):
    the sum of the lines' log-likelihood ratios.

    >>> p0, q0 = initial_generator()
    >>> pg = np.eye(K)[2]  # every line template 2 ("Connection closed by {ip}")
    >>> qg = dict(q0, ip=np.eye(32)[0])  # every ip the first
    >>> ratio = line_log_ratios(np.array([2, 2]), {"ip": np.array([0, 0])}, (pg, qg), (p0, q0))
    >>> bool(np.isclose(ratio, 2 * (-np.log(p0[2]) + np.log(32))))
    True
    """
    (p_g, q_g), (p_0, q_0) = generator_g, generator_0
    with np.errstate(divide="ignore"):
        total = float(np.sum(np.log(p_g[templates]) - np.log(p_0[templates])))
        for kind, v in values.items():
            total += float(np.sum(np.log(q_g[kind][v]) - np.log(q_0[kind][v])))
    return total


def logs_log_evalues(trace: LoopTrace) -> np.ndarray:
    r"""``[R]`` the oracle's log e-values of an L9-log trace or control: per round, :func:`line_log_ratios` of its
    lines' draws.

    The true generators of every generation are regenerated from the seed (:func:`logs_generators`) and each
    round's draws (templates, slot values) from its audit stream, checked to render the round's lines. A line
    shows its template and slot values (the templates' fixed texts differ, and no value holds them), so the
    draws' likelihood ratio is the line's exact one. Generation 0 gives every template and value positive
    probability, so no line of a later generation has :math:`p_0 = 0`.

    >>> logs_log_evalues(CONTROLS["C0-L9-log"](0, 2, n_audit=5, n_reference=5)).tolist()
    [0.0, 0.0, 0.0]
    """
    params, seed = trace.params, trace.seed
    generators = logs_generators(seed, params["n_generations"], workflow=params["workflow"],
                                 n_samples=params["n_samples"], fresh_fraction=params["fresh_fraction"])
    out = np.zeros(len(trace.rounds))
    for r, (g, lines) in enumerate(zip(trace.generations.tolist(), trace.rounds)):
        templates, values = _latent(*generators[g], len(lines), _audit_stream(seed, g))
        if _render(templates, values) != list(lines):
            raise ValueError(f"trace: {trace.name} seed {seed} round {r} does not match its regeneration from params")
        out[r] = line_log_ratios(templates, values, generators[g], generators[0])
    return out


# --- registry (the meta-evaluation's loop L9 and its controls) ---------------------------------------------------

SUGGESTED_SCHEDULE = (30, 1)
"""Suggested ``(n_generations, audit_every)`` at the default sizes: 31 audited rounds, onset at generation 5-25
(seeds 0-29), mid-run."""

QUICK_SCHEDULE = (12, 2)
"""The meta-evaluation's quick mode: 7 audited rounds."""

LOOPS: dict[str, Callable[..., LoopTrace]] = {"L9-log": logs_loop}
"""The collapse loop by id, called as ``fn(seed, n_generations, audit_every=1, **overrides)``."""

CONTROLS: dict[str, Callable[..., LoopTrace]] = {
    f"{control}-L9-log": functools.partial(logs_loop, workflow=workflow)
    for control, workflow in CONTROL_WORKFLOWS.items()
}
"""Controls by id (``C0-L9-log``, ``C1-...``, ``C2-...``), called like :data:`LOOPS`."""
