r"""L7-json: a structured-output generator retrained on its own JSON records, narrowing and growing malformed.

The collapse loop (modality ``"json"``) is a support-ticket extractor that emits one JSON record per line and
is retrained, generation after generation, on a finite sample of its own outputs, unfiltered. Refitting its
categorical fields by maximum likelihood with no smoothing makes every value the sample happens to miss vanish
for good, rare values first (Shumailov et al. 2024, "AI models collapse when trained on recursively generated
data", Nature 631: the discrete-distribution case of their analysis); the numeric field's fitted spread
drifts (their Gaussian case). Because the training sample is not validated,
malformed and schema-violating outputs are learned as readily as good ones, and each refit adds fresh errors of
its own (the "functional approximation error" of Shumailov et al., which the loop compounds; Alemohammad et al.
2024, "Self-Consuming Generative Models Go MAD", ICLR, show the same compounding for generators fed their own
samples), so the share of bad outputs ratchets up.

Record (generation 0 shown in :data:`SCHEMA`, shipped as ``monitor/data/json_schema.json``)::

    {"id": 17, "category": "billing", "priority": "high", "meta": {"channel": "email", "language": "en"},
     "score": 61.5, "tags": ["refund", "vip"], "resolution": "refunded"}

Generative process of generation :math:`g` (parameters :math:`\theta_g`, :func:`initial_parameters` for
:math:`g = 0`, the same for every seed): the seven categorical distributions ``category`` (8 values),
``priority`` (4), ``meta.channel`` (5), ``meta.language`` (5), ``resolution`` (4 values or absent: an optional
field, present in 40% of generation 0's records), ``tag`` (10 tag values) and ``n_tags`` (0-3 tags) are drawn
independently; the tags of a record are ``n_tags`` i.i.d. draws of ``tag``; ``score`` is
:math:`\mathcal N(\mu_g, \sigma_g^2)` clipped to [0, 100] and rounded to 0.1; ``id`` is the output's position.
Then, with probability :math:`v_g` (the violation probability) the output is *bad*: with probability
:data:`MALFORMED_SHARE` it is *malformed*, its JSON text cut at a uniform position (never valid JSON: a proper
prefix of an object), otherwise *schema-violating*, either its ``score`` written as a string or an extra
property ``"comment"`` (each half the time). Generation 0 has :math:`v_0 =` :data:`V0`.

Self-training (``workflow="replace"``, the loop): generation :math:`g` emits ``n_samples`` (:math:`M`) training
outputs; generation :math:`g + 1` is fitted to them:

* each categorical distribution is the maximum-likelihood one, :math:`p_{g+1}(x) = n_g(x) / \sum_y n_g(y)`,
  over the outputs that parse (a malformed output's fields cannot be read), tags pooled over records; no
  smoothing, so a value the sample missed has probability 0 from then on;
* :math:`(\mu_{g+1}, \sigma_{g+1})` are the mean and (maximum-likelihood) standard deviation of the parsed
  outputs' scores;
* :math:`v_{g+1} = \hat v_g + \varepsilon (1 - \hat v_g)`, :math:`\hat v_g` the share of bad outputs in the
  sample (learned, since they are not filtered out) and :math:`\varepsilon =` :data:`EPSILON` the refit's own
  new errors. :math:`\hat v_g` is unbiased for :math:`v_g`, so in expectation
  :math:`v_g = 1 - (1 - v_0)(1 - \varepsilon)^g`: 0.02 at generation 0, 0.20 at 10, 0.35 at 20, 0.47 at 30.

A distribution with no parsed output to fit (all malformed) keeps generation :math:`g`'s.

Ground truth (from :math:`\theta_g`, never from outputs; :func:`json_truth`):

* ``mean_field_entropy``: the mean over the seven categorical distributions of their entropies (nats);
* ``value_support``: the number of categorical values with positive probability, of 41 (an absent
  ``resolution`` counts as a value);
* ``violation_probability``: :math:`v_g`; ``valid_json_probability``: :math:`1 - v_g \cdot` MALFORMED_SHARE,
  the true probability that an output parses as a JSON object; ``schema_valid_probability``: :math:`1 - v_g`;
* ``score_std``: :math:`\sigma_g`.

Under ``replace`` ``value_support`` never rises (a vanished value cannot come back: 41 at generation 0, 8-16
at generation 30 for seeds 0-29, measured); ``mean_field_entropy`` falls, not monotonically (a refit can come
out flatter than its parent: by at most 0.08 nats a generation, seeds 0-29, measured, so a run can step back
above the onset threshold for a while: 1 of seeds 0-29 did); ``violation_probability`` rises in expectation and
fluctuates a lot with :math:`M = 30` (a sample with no bad output resets it to :math:`\varepsilon`): at
generations 10, 20, 30 its mean over seeds 0-29 is 0.22, 0.40, 0.50 (measured; 0.05-1 at generation 30: a generator whose every
output is bad stays so).

Onset (``replace`` only): the first generation with ``mean_field_entropy`` below :data:`ONSET_FRACTION` (one
half) of generation 0's, the halving rule of L3, L4 and L6. At the default sizes (:math:`M =`
:data:`DEFAULT_N_SAMPLES` = 30 training outputs a generation) it falls at generation 15, 16, 10, 14, 12, 15, 11,
15, 15, 15 for seeds 0-9 (8-23, median 14, for seeds 0-29; measured), mid-way through the default 30
generations; with :math:`M = 60` it comes late (generation 13-29, median 24) or, for 7 of seeds 0-29, not
within 30 generations.

Control (any alarm on it is a false alarm; ``onset`` is always None): C0 ``workflow="no_feedback"``: every
round is a fresh draw of generation 0's generator (violations included, at :math:`v_0`); the truth is constant.

Rounds and reference are lists of ``.jsonl`` lines (``str``; :func:`records_jsonl` writes them), read by
:func:`monitor.inputs.json_records.json_records_from_strings`. Every audited round is ``n_audit`` fresh outputs
of generation :math:`g`; the reference is ``n_reference`` outputs of generation 0's value distributions with no
violation (the clean data the generator was first fitted to), so a strict reference loader accepts it.

Randomness: one :class:`numpy.random.SeedSequence` per purpose and generation (the streams of
:mod:`monitor.meta_evaluation.loop_common`), so the parameter trajectory and ``truth`` do not depend on
``audit_every`` or ``n_audit``. Time (one CPU core, measured): 150 audit outputs take about 2 ms, so a
default 31-round run takes about 0.06 s.

>>> line = sample_lines(initial_parameters(), 1, np.random.default_rng(0), clean=True)[0]
>>> record = json.loads(line)
>>> set(SCHEMA["required"]) <= set(record), sorted(record["meta"])
(True, ['channel', 'language'])
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable

import numpy as np
from scipy import special

from monitor.meta_evaluation.loop_common import (
    _STREAM_DYNAMICS, _STREAM_REFERENCE, _audit_stream, _check_int, _check_run, _stream, _trace,
    audited_generations, first_generation,
)
from monitor.meta_evaluation.trace import LoopTrace

NAME = "L7-json"
MODALITY = "json"
WORKFLOWS = ("replace", "no_feedback")

CATEGORIES = ("billing", "shipping", "returns", "account", "technical", "sales", "legal", "other")
PRIORITIES = ("low", "normal", "high", "urgent")
CHANNELS = ("email", "chat", "phone", "web", "social")
LANGUAGES = ("en", "de", "fr", "es", "it")
RESOLUTIONS = (None, "refunded", "replaced", "explained", "escalated")  # None: the optional field is absent
TAGS = ("refund", "vip", "bug", "follow-up", "complaint", "praise", "escalated", "duplicate", "spam", "legacy")
MAX_TAGS = 3

#: The categorical distributions: name -> values (``n_tags``: the number of tags, 0..MAX_TAGS).
FIELDS = {"category": CATEGORIES, "priority": PRIORITIES, "channel": CHANNELS, "language": LANGUAGES,
          "resolution": RESOLUTIONS, "tag": TAGS, "n_tags": tuple(range(MAX_TAGS + 1))}

_P0 = {
    "category": (0.30, 0.20, 0.15, 0.12, 0.10, 0.06, 0.04, 0.03),
    "priority": (0.35, 0.35, 0.20, 0.10),
    "channel": (0.30, 0.25, 0.20, 0.15, 0.10),
    "language": (0.50, 0.20, 0.15, 0.10, 0.05),
    "resolution": (0.60, 0.15, 0.10, 0.10, 0.05),
    "tag": (0.25, 0.18, 0.14, 0.11, 0.09, 0.07, 0.06, 0.04, 0.03, 0.03),
    "n_tags": (0.25, 0.35, 0.25, 0.15),
}
_PER_RECORD = ("category", "priority", "channel", "language", "resolution", "n_tags")  # one draw per record
SCORE_MEAN0, SCORE_STD0 = 60.0, 15.0
V0 = 0.02
"""Generation 0's violation probability."""
EPSILON = 0.02
"""New violations each refit adds, as a share of the outputs that were good."""
MALFORMED_SHARE = 0.5
"""Share of bad outputs that are malformed (the rest violate the schema)."""
ONSET_FRACTION = 0.5
DEFAULT_N_SAMPLES = 30
DEFAULT_N_AUDIT = 150
DEFAULT_N_REFERENCE = 200

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "support ticket (L7-json)",
    "type": "object",
    "required": ["id", "category", "priority", "meta", "score", "tags"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer", "minimum": 0},
        "category": {"enum": list(CATEGORIES)},
        "priority": {"enum": list(PRIORITIES)},
        "meta": {
            "type": "object",
            "required": ["channel", "language"],
            "additionalProperties": False,
            "properties": {"channel": {"enum": list(CHANNELS)}, "language": {"enum": list(LANGUAGES)}},
        },
        "score": {"type": "number", "minimum": 0, "maximum": 100},
        "tags": {"type": "array", "items": {"enum": list(TAGS)}, "maxItems": MAX_TAGS},
        "resolution": {"enum": list(RESOLUTIONS[1:])},
    },
}
"""The records' JSON Schema (Draft 2020-12): what a good output satisfies."""


def initial_parameters() -> dict:
    """Generation 0's parameters: the seven categorical distributions, ``score_mean``, ``score_std``, ``violation``.

    >>> p = initial_parameters()
    >>> sorted(p), p["violation"], len(p["tag"])
    (['category', 'channel', 'language', 'n_tags', 'priority', 'resolution', 'score_mean', 'score_std', 'tag', \
'violation'], 0.02, 10)
    """
    params = {name: np.array(p, dtype=float) for name, p in _P0.items()}
    params.update(score_mean=SCORE_MEAN0, score_std=SCORE_STD0, violation=V0)
    return params


def _draw(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    cdf = np.cumsum(p)
    cdf[np.flatnonzero(p > 0)[-1]:] = np.inf  # rounding never picks a zero-probability value past the last one
    return (rng.random(size)[:, None] >= cdf[None, :]).sum(axis=1)


def _sample(params: dict, n: int, rng: np.random.Generator, *, clean: bool = False) -> dict:
    """``n`` latent outputs: value indices per field, tags, scores and each output's fault (0 good, 1 malformed,
    2 score as a string, 3 extra property); every draw comes from ``rng`` in a fixed order."""
    draws = {name: _draw(rng, params[name], n) for name in _PER_RECORD}
    tags = _draw(rng, params["tag"], int(draws["n_tags"].sum()))
    scores = np.clip(rng.normal(params["score_mean"], params["score_std"], n), 0.0, 100.0).round(1)
    u, kind, cut = rng.random(n), rng.random(n), rng.random(n)
    bad = (u < params["violation"]) & (not clean)
    fault = np.where(~bad, 0, np.where(kind < MALFORMED_SHARE, 1,
                                       np.where(kind < MALFORMED_SHARE + (1 - MALFORMED_SHARE) / 2, 2, 3)))
    return dict(draws, tags=np.split(tags, np.cumsum(draws["n_tags"])[:-1]), score=scores, fault=fault, cut=cut)


def _render(sim: dict, ids: Iterable[int]) -> list[str]:
    lines = []
    for i, id_ in enumerate(ids):
        record = {"id": int(id_), "category": CATEGORIES[sim["category"][i]],
                  "priority": PRIORITIES[sim["priority"][i]],
                  "meta": {"channel": CHANNELS[sim["channel"][i]], "language": LANGUAGES[sim["language"][i]]},
                  "score": float(sim["score"][i]), "tags": [TAGS[t] for t in sim["tags"][i]]}
        if RESOLUTIONS[sim["resolution"][i]] is not None:
            record["resolution"] = RESOLUTIONS[sim["resolution"][i]]
        fault = int(sim["fault"][i])
        if fault == 2:
            record["score"] = f"{record['score']:.1f}"
        elif fault == 3:
            record["comment"] = "see previous ticket"
        text = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        if fault == 1:
            text = text[: 1 + int(sim["cut"][i] * (len(text) - 1))]  # a proper prefix: 1..len-1 characters
        lines.append(text)
    return lines


def sample_lines(params: dict, n: int, rng: np.random.Generator, *, clean: bool = False,
                 first_id: int = 0) -> list[str]:
    """``n`` outputs of the generator with ``params`` as ``.jsonl`` lines (``clean``: no violation).

    >>> from monitor.inputs.json_records import json_records_from_strings
    >>> bad = dict(initial_parameters(), violation=1.0)  # every output malformed or schema-violating
    >>> records = json_records_from_strings(sample_lines(bad, 200, np.random.default_rng(1)), "bad").records
    >>> 0.4 < sum(r is None for r in records) / 200 < 0.6
    True
    >>> all(r is None or "comment" in r or isinstance(r["score"], str) for r in records)
    True
    """
    n = _check_int(n, "n", 1)
    return _render(_sample(params, n, rng, clean=clean), range(first_id, first_id + n))


def _refit(params: dict, sim: dict) -> dict:
    parsed = sim["fault"] != 1
    out = dict(params)
    if parsed.any():
        for name in _PER_RECORD:
            counts = np.bincount(sim[name][parsed], minlength=len(FIELDS[name])).astype(float)
            out[name] = counts / counts.sum()
        tags = np.concatenate([t for t, ok in zip(sim["tags"], parsed) if ok])
        if tags.size:
            counts = np.bincount(tags, minlength=len(TAGS)).astype(float)
            out["tag"] = counts / counts.sum()
        if parsed.sum() >= 2:
            out["score_mean"] = float(sim["score"][parsed].mean())
            out["score_std"] = float(sim["score"][parsed].std())
    bad_share = float((sim["fault"] != 0).mean())
    out["violation"] = bad_share + EPSILON * (1.0 - bad_share)
    return out


def json_parameters(seed: int, n_generations: int, *, workflow: str = "replace",
                    n_samples: int = DEFAULT_N_SAMPLES) -> list[dict]:
    """True parameters of every generation, index = generation (no audit outputs); see the module docstring.

    >>> params = json_parameters(0, 5, n_samples=20)
    >>> len(params), bool((params[5]["category"] > 0).sum() <= 8), params[5]["violation"] > 0
    (6, True, True)
    """
    seed, n_generations, _ = _check_run(seed, n_generations, 1)
    if workflow not in WORKFLOWS:
        raise ValueError(f"workflow: expected one of {WORKFLOWS}, got {workflow!r}")
    n_samples = _check_int(n_samples, "n_samples", 1)
    params = [initial_parameters()]
    for g in range(n_generations):
        if workflow == "no_feedback":
            params.append(initial_parameters())
        else:
            params.append(_refit(params[g], _sample(params[g], n_samples, _stream(seed, _STREAM_DYNAMICS, g))))
    return params


def _entropy(p: np.ndarray) -> float:
    q = p[p > 0]
    return float(-(q * np.log(q)).sum())


def json_truth(params: list[dict]) -> dict[str, np.ndarray]:
    """Per-generation truth: ``mean_field_entropy``, ``value_support``, ``violation_probability``,
    ``valid_json_probability``, ``schema_valid_probability``, ``score_std`` (module docstring).

    >>> t = json_truth([initial_parameters()])
    >>> round(float(t["mean_field_entropy"][0]), 4), int(t["value_support"][0]), float(t["valid_json_probability"][0])
    (1.5215, 41, 0.99)
    """
    violation = np.array([p["violation"] for p in params])
    return {
        "mean_field_entropy": np.array([np.mean([_entropy(p[name]) for name in FIELDS]) for p in params]),
        "value_support": np.array([sum(int((p[name] > 0).sum()) for name in FIELDS) for p in params]),
        "violation_probability": violation,
        "valid_json_probability": 1.0 - violation * MALFORMED_SHARE,
        "schema_valid_probability": 1.0 - violation,
        "score_std": np.array([p["score_std"] for p in params]),
    }


def json_records_loop(seed: int = 0, n_generations: int = 30, audit_every: int = 1, *, workflow: str = "replace",
                      n_samples: int = DEFAULT_N_SAMPLES, n_audit: int = DEFAULT_N_AUDIT,
                      n_reference: int = DEFAULT_N_REFERENCE) -> LoopTrace:
    """L7-json: a JSON-records generator refitted on its own outputs, or its control C0 (module docstring).

    Onset (``replace`` only): the first generation with ``truth["mean_field_entropy"]`` below
    :data:`ONSET_FRACTION` of generation 0's.

    Args:
        seed: run seed.
        n_generations: last simulated generation.
        audit_every: audit stride.
        workflow: ``"replace"`` (the loop) or ``"no_feedback"`` (C0).
        n_samples: ``M``, training outputs per generation.
        n_audit: outputs per audit round.
        n_reference: clean generation-0 outputs in the reference.
    """
    seed, n_generations, audit_every = _check_run(seed, n_generations, audit_every)
    n_audit = _check_int(n_audit, "n_audit", 1)
    n_reference = _check_int(n_reference, "n_reference", 1)
    params = json_parameters(seed, n_generations, workflow=workflow, n_samples=n_samples)
    truth = json_truth(params)
    generations = audited_generations(n_generations, audit_every)
    rounds = [sample_lines(params[g], n_audit, _audit_stream(seed, g)) for g in generations]
    reference = sample_lines(params[0], n_reference, _stream(seed, _STREAM_REFERENCE), clean=True)
    onset = first_generation(truth["mean_field_entropy"] < ONSET_FRACTION * truth["mean_field_entropy"][0])
    run = dict(n_samples=n_samples, n_audit=n_audit, n_reference=n_reference, workflow=workflow,
               n_generations=n_generations, audit_every=audit_every)
    return _trace(NAME, workflow, MODALITY, seed, reference, rounds, generations, onset, truth, run)


def records_jsonl(lines: Iterable[str]) -> bytes:
    r"""Output lines as ``.jsonl`` bytes, each followed by ``\n``, UTF-8.

    >>> records_jsonl(['{"a":1}', '{"a":'])
    b'{"a":1}\n{"a":\n'
    """
    return b"".join(line.encode("utf-8") + b"\n" for line in lines)


def schema_json() -> bytes:
    """:data:`SCHEMA` as the bytes of ``monitor/data/json_schema.json`` (indented, keys in order, final newline)."""
    return (json.dumps(SCHEMA, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# --- the oracle (monitor.meta_evaluation.oracle) ------------------------------------------------------------------


def _log_interval_probability(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    r""":math:`\log(\Phi(b) - \Phi(a))` for standardised bounds ``a < b`` (``-inf``/``inf`` allowed), computed in
    the lower tail (mirrored where ``a > 0``) so that far tails do not round to 0."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    upper = a > 0
    lo, hi = np.where(upper, -b, a), np.where(upper, -a, b)
    log_lo, log_hi = special.log_ndtr(lo), special.log_ndtr(hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        return log_hi + np.log1p(-np.exp(log_lo - log_hi))


def score_log_probabilities(scores, mean: float, std: float) -> np.ndarray:
    r"""``[n]`` :math:`\log P(s)` of written scores :math:`s = \operatorname{round}(\operatorname{clip}(z, 0, 100), 1)`,
    :math:`z \sim \mathcal N(\mu, \sigma^2)`: the mass of :math:`[s - 0.05, s + 0.05)`, of :math:`z < 0.05` at
    0 and of :math:`z \ge 99.95` at 100 (a point mass at :math:`\operatorname{round}(\operatorname{clip}(\mu))`
    when :math:`\sigma = 0`).

    >>> np.exp(score_log_probabilities([0.0, 50.0, 100.0], 50.0, 1e-9)).round(6).tolist()
    [0.0, 1.0, 0.0]
    >>> round(float(np.exp(score_log_probabilities([100.0], 100.0, 5.0))[0]), 4)  # P(z >= 99.95): just over half
    0.504
    """
    s = np.asarray(scores, dtype=float)
    if std == 0:
        with np.errstate(divide="ignore"):
            return np.log((s == np.round(np.clip(mean, 0.0, 100.0), 1)).astype(float))
    lower = np.where(s <= 0.0, -np.inf, (s - 0.05 - mean) / std)
    upper = np.where(s >= 100.0, np.inf, (s + 0.05 - mean) / std)
    return _log_interval_probability(lower, upper)


def _log_ratio(p_g: np.ndarray, p_0: np.ndarray, index: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(p_g[index]) - np.log(p_0[index])


def latent_log_ratios(sim: dict, params_g: dict, params_0: dict) -> np.ndarray:
    r"""``[n]`` per output :math:`\log p_g(z) - \log p_0(z)` of its latent draws :math:`z` (:func:`_sample`'s):
    the six per-record values, the tags, the written score and whether the output is bad. The fault's kind
    (malformed or which violation, shares :data:`MALFORMED_SHARE`) and the cut are drawn alike by every
    generation and cancel.

    >>> p0 = initial_parameters()
    >>> pg = dict(p0, violation=0.04)  # only the violation probability doubled
    >>> sim = _sample(pg, 3, np.random.default_rng(0))
    >>> bad = sim["fault"] != 0
    >>> bool(np.allclose(latent_log_ratios(sim, pg, p0), np.where(bad, np.log(2.0), np.log(0.96 / 0.98))))
    True
    """
    out = sum(_log_ratio(params_g[name], params_0[name], sim[name]) for name in _PER_RECORD)
    out = out + np.array([_log_ratio(params_g["tag"], params_0["tag"], t).sum() for t in sim["tags"]])
    with np.errstate(invalid="ignore"):
        out = out + (score_log_probabilities(sim["score"], params_g["score_mean"], params_g["score_std"])
                     - score_log_probabilities(sim["score"], params_0["score_mean"], params_0["score_std"]))
    v_g, v_0 = params_g["violation"], params_0["violation"]
    with np.errstate(divide="ignore"):
        fault = np.where(sim["fault"] != 0, np.log(v_g) - np.log(v_0), np.log1p(-v_g) - np.log1p(-v_0))
    return out + fault


def json_log_evalues(trace: LoopTrace) -> np.ndarray:
    r"""``[R]`` the oracle's log e-values of an L7-json trace (or its control): per round, the sum over its
    outputs of :func:`latent_log_ratios` (:mod:`monitor.meta_evaluation.oracle`).

    The exact probability of a malformed output (a prefix of some record's text) is a sum over every record that
    could complete it, so the oracle takes the likelihood ratio of the output's latent draws instead: the true
    parameters of every generation are regenerated from the seed (:func:`json_parameters`), each round's draws
    from its audit stream (checked: they render the round's lines). It is an exact e-value for "the round is
    generation 0's" (the draws are) and, since it sees what the lines are made from, at least as powerful as
    any test of the lines alone.

    >>> json_log_evalues(CONTROLS["C0-L7-json"](0, 2, n_audit=5, n_reference=5)).tolist()
    [0.0, 0.0, 0.0]
    """
    params, seed = trace.params, trace.seed
    models = json_parameters(seed, params["n_generations"], workflow=params["workflow"], n_samples=params["n_samples"])
    out = np.zeros(len(trace.rounds))
    for r, (g, lines) in enumerate(zip(trace.generations.tolist(), trace.rounds)):
        sim = _sample(models[g], len(lines), _audit_stream(seed, g))
        if _render(sim, range(len(lines))) != list(lines):
            raise ValueError(f"trace: {trace.name} seed {seed} round {r} does not match its regeneration from params")
        log_r = latent_log_ratios(sim, models[g], models[0])
        if np.isnan(log_r).any() or np.isneginf(log_r).any():
            raise ValueError(f"trace: {trace.name} seed {seed} round {r} has an output impossible under its own model")
        out[r] = float(np.inf) if np.isposinf(log_r).any() else float(log_r.sum())
    return out


# --- registry ----------------------------------------------------------------------------------------------------

SUGGESTED_SCHEDULE = (30, 1)
"""Suggested ``(n_generations, audit_every)`` at the default sizes: 31 audited rounds, onset mid-run."""

QUICK_SCHEDULE = (12, 2)
"""Quick mode: 7 audited rounds."""

LOOPS: dict[str, Callable[..., LoopTrace]] = {NAME: json_records_loop}
"""The collapse loop by id, called as ``fn(seed, n_generations, audit_every=1, **overrides)``."""

CONTROLS: dict[str, Callable[..., LoopTrace]] = {f"C0-{NAME}": functools.partial(json_records_loop,
                                                                                 workflow="no_feedback")}
"""The control by id (``C0-L7-json``), called like :data:`LOOPS`."""
