r"""L4: a word n-gram language model retrained on its own samples, started from real English glosses.

The collapse loop (benchmark loop L4, survey §8.1: dynamic feedback-loop
evaluation) follows Shumailov et al. (Nature 2024, "AI models collapse when
trained on recursively generated data"), with the simplest language model that
shows the mechanism: a word-level n-gram model fitted by maximum likelihood,

.. math:: \hat P(w \mid h) = \frac{c(h, w)}{\sum_{w'} c(h, w')},

over sentences padded with ``n - 1`` start tokens ``<s>`` and one end token
``</s>`` (Jurafsky & Martin, *Speech and Language Processing*, ch. 3). There is
no smoothing, so an n-gram that one generation's samples miss has probability
zero in every later generation: the support can only shrink, rare words and
word pairs (the tails) go first.

Generation 0 is fitted on ``n_train`` real glosses drawn (seeded) from the
shipped WordNet 3.0 corpus (:func:`load_wordnet_glosses`); generation ``g + 1``
is fitted only on ``n_samples`` (``M``, the same every generation) sentences
sampled from generation ``g`` at temperature ``tau``,
:math:`P_\tau(w \mid h) \propto \hat P(w \mid h)^{1/\tau}`. Sentences longer
than ``max_tokens`` words are rejected and redrawn, so every training sentence
is complete (ends in ``</s>``) and every context of a refit model has a
continuation.

Sizes: ``n_train = 1000``, ``M = 5000``. With ``M = n_train``
(``n_samples=None``) a bigram seen once (about 9 in 10 bigram types of 1000
glosses: Zipf's tail) is missed by the first refit with probability about
:math:`e^{-1}`, and :math:`D_g` (below) halves by generation 2-3, which leaves a
monitor no rounds to warn in. Five samples per real gloss (synthetic text is
cheap) puts the onset at generation 13-15 for all of 20 seeds tried, mid-way
through the suggested 30 generations; a generation takes about 0.05 s.

Ground truth (from the model's parameters, never from audited text): the
bigram support of generation ``g``,

.. math:: D_g = \left|\{(u, v) : (u, v) \text{ occurs in an } n\text{-gram } (h, w),\
          c_g(h, w) > 0,\ \text{as its last two tokens}\}\right|,

which for a bigram model is the number of nonzero entries of the transition
table, ``<s>`` and ``</s>`` included. The onset is the first generation with
:math:`D_g < D_0 / 2` ("the true model's distinct-bigram mass below 50% of
round 0"). Why the support size: "distinct" names bigram *types*, as distinct-n
does for text (Li et al., NAACL 2016); the model's own probability mass on its
support is identically 1, so a mass reading only makes sense as the counting
measure of the support (this ``D_g``) or as the generation-0 mass of the
surviving support (``bigram_mass_retained`` in ``truth``). The latter is
dominated by frequent bigrams, which survive almost surely, and lags the tails
the benchmark is about (about 0.58 of it is left when :math:`D_g` crosses
one half); it is recorded, not used.

Controls (any alarm is a false alarm; same seed -> same split, reference and
generation-0 model as L4):

* C0 no feedback: every audited round is a fresh draw of real glosses (the
  reference distribution itself, as the issue words it and as
  ``monitor.engine.simulate.control_rounds`` does), disjoint from the reference, so
  audit and reference are exchangeable and any alarm is unambiguously false;
  the truth is the generation-0 model's, constant (nothing is refitted).
  ``source="model0"`` instead audits fresh samples of the fixed generation-0
  model: the matched-generator variant, which also shows the constant gap
  between n-gram text and real text.
* C1 accumulate (Gerstgrasser et al. 2024, "Is model collapse inevitable?"):
  generation ``g + 1`` is fitted on the ``n_train`` real glosses plus all
  ``g + 1`` synthetic sets of ``M`` so far; counts add up and the support
  stays :math:`D_0` (samples cannot add n-grams).
* C2 fresh real: generation ``g + 1`` is fitted on ``M - round(0.1 M)`` own
  samples plus ``round(0.1 M)`` real glosses drawn fresh each generation
  from outside the training and reference glosses.

All returned text (reference and rounds) is in one form, the lower-case
``metrics_core.text.tokenize`` tokens joined by single spaces, so formatting
never tells real from synthetic text.

Randomness: one :class:`numpy.random.SeedSequence` per purpose and generation
(``spawn_key=(purpose, generation)``), so the model trajectory does not depend
on ``audit_every`` and the audit sample of generation ``g`` is the same
whichever generations are audited.

The corpus and the model live in :mod:`monitor.meta_evaluation.ngram`, the ground truth in
:mod:`monitor.meta_evaluation.ngram_truth`; this module holds the loops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from monitor.meta_evaluation.ngram import (
    DEFAULT_MAX_TOKENS, DEFAULT_ORDER, DEFAULT_TAU, EncodedCorpus, NgramModel, _check_order, _check_positive_int,
    _check_tau, _encoded_wordnet, count_ngrams, decode, encode_corpus, merge_counts, model_from_counts, sample_ngram,
)
from monitor.meta_evaluation.ngram_truth import ONSET_FRACTION, bigram_counts, collapse_onset, model_truth
from monitor.meta_evaluation.trace import LoopTrace

DEFAULT_N_TRAIN = 1000
DEFAULT_N_SAMPLES = 5000
DEFAULT_N_AUDIT = 1000
DEFAULT_N_REFERENCE = 1000
DEFAULT_FRESH_FRACTION = 0.1

# SeedSequence spawn keys, one per purpose.
_SPLIT, _TRAIN, _AUDIT, _FRESH = 0, 1, 2, 3

#: Suggested (n_generations, audit_every) at the defaults: 31 audited rounds,
#: onset at generation 13-15 for seeds 0-19 (about 1.5 s per L4 run).
SUGGESTED_SCHEDULE = (30, 1)
#: Quick mode: 21 audited rounds, the onset still inside the run.
QUICK_SCHEDULE = (20, 1)


# --------------------------------------------------------------------------
# Loops
# --------------------------------------------------------------------------


def _stream(seed: int, purpose: int, generation: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(purpose, generation)))


@dataclass(frozen=True)
class _Setup:
    train: np.ndarray  # corpus indices of the M real training glosses
    reference: np.ndarray
    fresh_pool: np.ndarray  # neither training nor reference (when the corpus allows)
    outside_reference: np.ndarray


def _split(seed: int, corpus: EncodedCorpus, n_train: int, n_reference: int) -> _Setup:
    n = len(corpus.sentences)
    if n_train > n:
        raise ValueError(f"n_train: expected at most {n} (corpus size), got {n_train}")
    if n_reference > n:
        raise ValueError(f"n_reference: expected at most {n} (corpus size), got {n_reference}")
    order = _stream(seed, _SPLIT).permutation(n)
    train = order[:n_train]
    # Disjoint from the training glosses when the corpus allows, else the last n_reference.
    reference = order[n_train:n_train + n_reference] if n_train + n_reference <= n else order[n - n_reference:]
    used = np.zeros(n, dtype=bool)
    used[reference] = True
    outside_reference = np.flatnonzero(~used)
    used[train] = True
    fresh_pool = np.flatnonzero(~used)
    return _Setup(train, reference, fresh_pool, outside_reference)


def _draw_real(pool: np.ndarray, k: int, rng: np.random.Generator, name: str) -> np.ndarray:
    if k > pool.size:
        raise ValueError(f"{name}: expected at most {pool.size} (real glosses available), got {k}")
    return pool[rng.choice(pool.size, k, replace=False)]


def _check_common(seed, n_generations, audit_every, order, n_train, n_audit, n_reference, tau, max_tokens):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
    return (
        int(seed),
        _check_positive_int(n_generations, "n_generations"),
        _check_positive_int(audit_every, "audit_every"),
        _check_order(order),
        _check_positive_int(n_train, "n_train"),
        _check_positive_int(n_audit, "n_audit"),
        _check_positive_int(n_reference, "n_reference"),
        _check_tau(tau),
        _check_positive_int(max_tokens, "max_tokens"),
    )


def _run(mode: str, seed, n_generations, audit_every, *, order, n_train, n_samples, n_audit, n_reference, tau,
         max_tokens, fresh_fraction=DEFAULT_FRESH_FRACTION, source="real", corpus=None,
         models_out: list | None = None) -> LoopTrace:
    """One trace of L4 (``mode="L4"``) or a control (``"C0"``, ``"C1"``, ``"C2"``); see the module docstring.

    ``models_out``, when a list, receives the true model of every generation ``0..n_generations`` (read only).
    """
    seed, n_generations, audit_every, order, n_train, n_audit, n_reference, tau, max_tokens = _check_common(
        seed, n_generations, audit_every, order, n_train, n_audit, n_reference, tau, max_tokens)
    n_samples = n_train if n_samples is None else _check_positive_int(n_samples, "n_samples")
    n_fresh = 0
    if mode == "C2":
        if isinstance(fresh_fraction, bool) or not isinstance(fresh_fraction, (int, float, np.floating)) or not (
            0 < fresh_fraction < 1
        ):
            raise ValueError(f"fresh_fraction: expected a float in (0, 1), got {fresh_fraction!r}")
        n_fresh = int(round(fresh_fraction * n_samples))
        if not 1 <= n_fresh < n_samples:
            raise ValueError(f"round(fresh_fraction * n_samples): expected in [1, {n_samples - 1}], got {n_fresh}")
    if mode == "C0" and source not in ("real", "model0"):
        raise ValueError(f"source: expected 'real' or 'model0', got {source!r}")
    encoded = _encoded_wordnet() if corpus is None else encode_corpus(corpus)
    setup = _split(seed, encoded, n_train, n_reference)
    n_types = len(encoded.vocabulary)
    sentences = encoded.sentences

    real_counts = count_ngrams([sentences[i] for i in setup.train], order)
    model = model_from_counts(*real_counts, n_types=n_types)
    generation0_bigrams, generation0_bigram_counts = bigram_counts(model)
    accumulated = real_counts
    frozen = mode == "C0"  # no feedback: the generator never changes
    truth_rows, rounds, generations = [], [], []
    for g in range(n_generations + 1):
        if models_out is not None:
            models_out.append(model)
        if g == 0 or not frozen:
            row = model_truth(model, generation0_bigrams, generation0_bigram_counts, tau)
        truth_rows.append(row)
        if g % audit_every == 0:
            if frozen and source == "real":
                picked = _draw_real(setup.outside_reference, n_audit, _stream(seed, _AUDIT, g), "n_audit")
                rounds.append([encoded.texts[i] for i in picked])
            else:
                audit = sample_ngram(model, n_audit, _stream(seed, _AUDIT, g), tau=tau, max_tokens=max_tokens)
                rounds.append([decode(sentence, encoded.vocabulary) for sentence in audit])
            generations.append(g)
        if g == n_generations or frozen:
            continue
        synthetic = sample_ngram(model, n_samples - n_fresh, _stream(seed, _TRAIN, g), tau=tau,
                                 max_tokens=max_tokens)
        if mode == "L4":
            counts = count_ngrams(synthetic, order)
        elif mode == "C1":
            accumulated = merge_counts(accumulated, count_ngrams(synthetic, order))
            counts = accumulated
        else:  # C2
            pool = setup.fresh_pool if setup.fresh_pool.size >= n_fresh else setup.outside_reference
            fresh = _draw_real(pool, n_fresh, _stream(seed, _FRESH, g), "round(fresh_fraction * n_samples)")
            counts = count_ngrams(synthetic + [sentences[i] for i in fresh], order)
        model = model_from_counts(*counts, n_types=n_types)

    truth = {key: np.array([row[key] for row in truth_rows]) for key in truth_rows[0]}
    truth["distinct_bigram_ratio"] = truth["distinct_bigrams"] / truth["distinct_bigrams"][0]
    params = {"order": order, "n_train": n_train, "n_samples": n_samples, "n_audit": n_audit,
              "n_reference": n_reference, "tau": tau, "max_tokens": max_tokens, "onset_fraction": ONSET_FRACTION,
              "corpus": "wordnet-3.0-glosses" if corpus is None else "custom"}
    if mode == "C2":
        params.update(fresh_fraction=float(fresh_fraction), n_fresh=n_fresh)
    if mode == "C0":
        params["source"] = source
    return LoopTrace(
        name="L4-text" if mode == "L4" else f"{mode}-L4-text",
        kind="collapse" if mode == "L4" else "control",
        modality="text",
        seed=seed,
        reference=[encoded.texts[i] for i in setup.reference],
        rounds=rounds,
        generations=np.array(generations, dtype=np.int64),
        onset=collapse_onset(truth["distinct_bigrams"]) if mode == "L4" else None,
        truth=truth,
        params=params,
    )


_COMMON_ARGS = """
        seed: int >= 0; equal seeds (and arguments) give identical traces.
        n_generations: generations after 0; ``truth`` arrays have ``n_generations + 1`` entries.
        audit_every: audit generations ``0, audit_every, 2 * audit_every, ...``.
        order: n of the n-gram model (2 = bigram).
        n_train: real glosses the generation-0 model is fitted on.
        n_samples: ``M``, sentences each refit is fitted on (None: ``n_train``).
        n_audit: sentences per audit round.
        n_reference: real glosses in the reference, disjoint from the
            training glosses when the corpus allows.
        tau: sampling temperature > 0.
        max_tokens: the longest sentence, in words (longer samples are redrawn).
        corpus: texts to use instead of the shipped WordNet glosses."""


def l4_text(seed: int, n_generations: int, audit_every: int = 1, *, order: int = DEFAULT_ORDER,
            n_train: int = DEFAULT_N_TRAIN, n_samples: int | None = DEFAULT_N_SAMPLES,
            n_audit: int = DEFAULT_N_AUDIT, n_reference: int = DEFAULT_N_REFERENCE, tau: float = DEFAULT_TAU,
            max_tokens: int = DEFAULT_MAX_TOKENS, corpus: Sequence[str] | None = None) -> LoopTrace:
    r"""L4 text: the n-gram model refitted each generation only on its own ``M`` samples.

    Onset: the first generation with :math:`D_g < D_0 / 2`, :math:`D_g` the
    model's distinct bigrams with nonzero probability (module docstring).

    Args:{args}

    Example:
        >>> t = l4_text(0, 2, n_train=50, n_samples=50, n_audit=5, n_reference=5)
        >>> t.name, t.kind, [len(r) for r in t.rounds], t.truth["distinct_bigrams"].shape
        ('L4-text', 'collapse', [5, 5, 5], (3,))
    """
    return _run("L4", seed, n_generations, audit_every, order=order, n_train=n_train, n_samples=n_samples,
                n_audit=n_audit, n_reference=n_reference, tau=tau, max_tokens=max_tokens, corpus=corpus)


def c0_l4_text(seed: int, n_generations: int, audit_every: int = 1, *, source: str = "real",
               order: int = DEFAULT_ORDER, n_train: int = DEFAULT_N_TRAIN, n_samples: int | None = DEFAULT_N_SAMPLES,
               n_audit: int = DEFAULT_N_AUDIT, n_reference: int = DEFAULT_N_REFERENCE, tau: float = DEFAULT_TAU,
               max_tokens: int = DEFAULT_MAX_TOKENS, corpus: Sequence[str] | None = None) -> LoopTrace:
    r"""C0 no feedback: every audited round is a fresh draw, nothing is ever refitted.

    ``source="real"``: ``n_audit`` real glosses drawn without replacement
    from the glosses outside the reference, independently per generation.
    ``source="model0"``: ``n_audit`` fresh samples of the generation-0 model.
    ``truth`` repeats generation 0's values; ``onset`` is None.

    Args:
        source: ``"real"`` or ``"model0"``.{args}

    Example:
        >>> t = c0_l4_text(0, 2, n_train=50, n_samples=50, n_audit=5, n_reference=5)
        >>> t.name, t.onset, t.truth["distinct_bigram_ratio"].tolist()
        ('C0-L4-text', None, [1.0, 1.0, 1.0])
    """
    return _run("C0", seed, n_generations, audit_every, order=order, n_train=n_train, n_samples=n_samples,
                n_audit=n_audit, n_reference=n_reference, tau=tau, max_tokens=max_tokens, source=source,
                corpus=corpus)


def c1_l4_text(seed: int, n_generations: int, audit_every: int = 1, *, order: int = DEFAULT_ORDER,
               n_train: int = DEFAULT_N_TRAIN, n_samples: int | None = DEFAULT_N_SAMPLES,
               n_audit: int = DEFAULT_N_AUDIT, n_reference: int = DEFAULT_N_REFERENCE, tau: float = DEFAULT_TAU,
               max_tokens: int = DEFAULT_MAX_TOKENS, corpus: Sequence[str] | None = None) -> LoopTrace:
    r"""C1 accumulate (Gerstgrasser et al. 2024): refit on all real glosses plus every synthetic set so far.

    Generation ``g`` is fitted on ``n_train + g * M`` sentences (the counts
    add), so its support stays :math:`D_0`; ``onset`` is None.

    Args:{args}

    Example:
        >>> t = c1_l4_text(0, 2, n_train=50, n_samples=50, n_audit=5, n_reference=5)
        >>> t.name, t.truth["distinct_bigram_ratio"].tolist()
        ('C1-L4-text', [1.0, 1.0, 1.0])
    """
    return _run("C1", seed, n_generations, audit_every, order=order, n_train=n_train, n_samples=n_samples,
                n_audit=n_audit, n_reference=n_reference, tau=tau, max_tokens=max_tokens, corpus=corpus)


def c2_l4_text(seed: int, n_generations: int, audit_every: int = 1, *,
               fresh_fraction: float = DEFAULT_FRESH_FRACTION, order: int = DEFAULT_ORDER,
               n_train: int = DEFAULT_N_TRAIN, n_samples: int | None = DEFAULT_N_SAMPLES,
               n_audit: int = DEFAULT_N_AUDIT, n_reference: int = DEFAULT_N_REFERENCE, tau: float = DEFAULT_TAU,
               max_tokens: int = DEFAULT_MAX_TOKENS, corpus: Sequence[str] | None = None) -> LoopTrace:
    r"""C2 fresh real: refit on ``M - k`` own samples plus ``k = round(fresh_fraction * M)`` fresh real glosses.

    The real glosses are drawn anew each generation (without replacement
    within a generation) from outside the training and reference glosses
    (outside the reference only, if that pool is smaller than ``k``);
    ``onset`` is None.

    Args:
        fresh_fraction: the real share of each refit, in (0, 1).{args}

    Example:
        >>> t = c2_l4_text(0, 2, n_train=50, n_samples=50, n_audit=5, n_reference=5)
        >>> t.name, t.params["n_fresh"]
        ('C2-L4-text', 5)
    """
    return _run("C2", seed, n_generations, audit_every, order=order, n_train=n_train, n_samples=n_samples,
                n_audit=n_audit, n_reference=n_reference, tau=tau, max_tokens=max_tokens,
                fresh_fraction=fresh_fraction, corpus=corpus)


for _loop in (l4_text, c0_l4_text, c1_l4_text, c2_l4_text):
    if _loop.__doc__:  # None under python -OO
        _loop.__doc__ = _loop.__doc__.replace("{args}", _COMMON_ARGS)

#: Collapse loops by name, each ``fn(seed, n_generations, audit_every=1, **overrides) -> LoopTrace``.
LOOPS: dict[str, Callable[..., LoopTrace]] = {"L4-text": l4_text}
#: Controls by name (kind "control", onset None), same call signature.
CONTROLS: dict[str, Callable[..., LoopTrace]] = {
    "C0-L4-text": c0_l4_text,
    "C1-L4-text": c1_l4_text,
    "C2-L4-text": c2_l4_text,
}


def run_with_models(run_id: str, seed: int, n_generations: int, audit_every: int = 1,
                    **overrides) -> tuple[LoopTrace, list[NgramModel]]:
    r"""A trace of :data:`LOOPS` or :data:`CONTROLS` together with the true model of every generation.

    The trace is exactly ``{**LOOPS, **CONTROLS}[run_id](seed, n_generations, audit_every, **overrides)``
    (same arguments, same streams); ``models[g]`` is the :class:`NgramModel` that generation ``g``
    samples its audit round from (C0: the generation-0 model every generation, whether the
    rounds are real glosses or model samples). Models are shared, not copied: do not mutate.

    Args:
        run_id: ``"L4-text"``, ``"C0-L4-text"``, ``"C1-L4-text"`` or ``"C2-L4-text"``.
        seed: run seed.
        n_generations: last generation; ``len(models) == n_generations + 1``.
        audit_every: audit stride.
        **overrides: keyword arguments of that function (``n_audit``, ``tau``, ...).

    Example:
        >>> t, models = run_with_models("L4-text", 0, 2, n_train=50, n_samples=50, n_audit=5, n_reference=5)
        >>> len(models), [float(len(m.grams)) for m in models] == t.truth["distinct_ngrams"].tolist()
        (3, True)
    """
    import inspect

    registry = {**LOOPS, **CONTROLS}
    if run_id not in registry:
        raise ValueError(f"run_id: expected one of {sorted(registry)}, got {run_id!r}")
    try:
        bound = inspect.signature(registry[run_id]).bind(seed, n_generations, audit_every, **overrides)
    except TypeError as error:
        raise ValueError(f"overrides: {error}") from None
    bound.apply_defaults()
    args = dict(bound.arguments)
    models: list[NgramModel] = []
    mode = "L4" if run_id == "L4-text" else run_id[:2]
    trace = _run(mode, args.pop("seed"), args.pop("n_generations"), args.pop("audit_every"), **args,
                 models_out=models)
    return trace, models
