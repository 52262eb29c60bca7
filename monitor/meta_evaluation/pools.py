r"""Pools of real data for a loop family: fresh independent draws of generation 0's distribution.

A monitor calibrated on the benchmark needs real data beyond the trace's reference
(e.g. to estimate a metric's null spread). :func:`draw_pool` gives ``size`` i.i.d.
draws :math:`x_1, \dots, x_n \sim P_0`, with :math:`P_0` the distribution that
generation 0 (and every round of the family's C0 control) is drawn from, in the
format of the trace's rounds:

* L1 ``L1-d{d}-M{M}``: :math:`N(0, I_d)`, a float64 ``[size, d]`` array.
* L2 ``L2-K{K}-d{d}``: the seed's generation-0 mixture
  (:func:`~monitor.meta_evaluation.loops.equal_weight_mixture`; it depends on the seed, so the pool
  does too), a float64 ``[size, d]`` array.
* L3 ``L3-tau{tau}``: ``size`` documents of ``tokens_per_document`` i.i.d. tokens of the Zipf
  law, rendered ``"w<rank>"`` as the trace's documents (``tau`` does not touch generation 0).
* L5 ``L5-wine``: rows of the generation-0 Gaussian copula fitted to the real table, a
  DataFrame with the table's columns (C0's rounds are drawn from this copula, not resampled
  from the 178 real rows).
* L4 ``L4-text``: the corpus is finite, so the pool is ``size`` real glosses drawn without
  replacement from the glosses outside the run's reference (``setup.outside_reference``, the set
  C0-L4 draws its rounds from; it includes generation 0's training glosses), normalised
  as the trace's texts; :func:`pool_capacity` says how many there are
  (``corpus size - n_reference``, 19,000 at the defaults). With ``source="model0"`` (a
  ``C0-L4-text`` override) the pool is ``size`` sentences of the generation-0 bigram model
  instead: the distribution C0's rounds then come from, the loop without feedback.
* L6 ``L6-agent``: ``size`` episodes of the generation-0 policy
  (:func:`~monitor.meta_evaluation.loop_agent.sample_episodes` of
  :func:`~monitor.meta_evaluation.loop_agent.initial_policy`, uniform start-goal pairs, the run's
  ``max_steps``), a list of episode dicts as the trace's rounds (the runner parses it once,
  :func:`monitor.meta_evaluation.audit.pipeline_input`); the policy is the same for every seed, the draws are not.
* L7 ``L7-json``: ``size`` outputs of generation 0's generator
  (:func:`~monitor.meta_evaluation.loop_json_records.sample_lines` of
  :func:`~monitor.meta_evaluation.loop_json_records.initial_parameters`), violations included at :math:`v_0`
  as in C0's rounds, ``.jsonl`` line strings, written as consecutive rounds of the run's ``n_audit``
  outputs: a record's ``id`` is its position in its round, so a pseudo-round's ids are spread as a round's
  (numbered through the pool, they would be up to ``size``, and a null of them would tell pool from round).
* L8 ``L8-graph``: ``size`` graphs of generation 0's mixture of families
  (:func:`~monitor.meta_evaluation.loop_graphs.sample_graphs`), a list of graph objects.
* L9 ``L9-log``: ``size`` lines of generation 0's log generator
  (:func:`~monitor.meta_evaluation.loop_logs.sample_lines` of
  :func:`~monitor.meta_evaluation.loop_logs.initial_generator`), a list of str.
* L10 ``L10-image-text``: ``size`` pairs of generation 0's captioner
  (:func:`~monitor.meta_evaluation.loop_image_text.sample_pairs` of
  :func:`~monitor.meta_evaluation.loop_image_text.initial_prior`, the run's ``dim``), a
  :class:`~monitor.inputs.pairs.LoadedPairs`.

  Generation 0 of L7-L10 is the same for every seed; the draws are not. The runner parses every pool once
  (:func:`monitor.meta_evaluation.audit.pipeline_input`).
* L11 ``L11-reasoning``: ``size`` *questions* of the run's bank (``n_reference``), without replacement, each
  answered ``samples_per_question`` times by generation 0's uniform strategy weights
  (:func:`~monitor.meta_evaluation.loop_reasoning.sample_pool`), a list of record dicts as the trace's rounds:
  every pool question has its gold answer in the trace's reference (the bank's gold records), and a null's
  pseudo-round draws whole questions (:func:`monitor.engine.null.take_units`). At most the bank's questions
  (:func:`pool_capacity`).

A control or drift id (``C0-L2-K10-d8``, ``D0-L1-d1-M20``) gives its family's pool. The
size overrides a run takes are accepted (the runner's ``n_audit``, ``n_reference``,
``n_documents``) and those that shape generation 0 are used: ``d``, ``K``, ``spread``,
``V``, ``beta``, ``tokens_per_document``, ``dataset``, and for L4 ``n_train``,
``n_reference`` and ``corpus`` (they fix the split), for L6 ``max_steps``, for L10 ``dim`` and for L11
``samples_per_question`` and ``n_reference`` (the bank). An argument the run's
function does not take is an error.

Seeds: the pool has a stream of its own, ``SeedSequence(seed, spawn_key=(5,))`` for the
numeric loops, L6 and L7-L11 (whose streams are :mod:`~monitor.meta_evaluation.loop_common`'s) and
``spawn_key=(5, 0)`` for L4, a purpose neither loop module uses, so it
is independent of the generation-0 model, the training dynamics, the reference, the real
data of the controls and every audit stream (and of the drift controls' ``(6,)``).
"""

from __future__ import annotations

import inspect
import re

import numpy as np
import pandas as pd

from monitor.meta_evaluation import loop_agent as A
from monitor.meta_evaluation import loop_graphs, loop_image_text, loop_json_records, loop_logs, loop_reasoning
from monitor.meta_evaluation import loops as L
from monitor.meta_evaluation import ngram as N
from monitor.meta_evaluation import textloop as T
from monitor.meta_evaluation.drift import DRIFT_CONTROLS

STREAM_POOL = 5  # spawn_key purpose of the pools (loops use 0-4, textloop 0-3, drift 6)
_PREFIX = re.compile(r"^[CD]\d-")


_STRUCTURED = (loop_json_records, loop_graphs, loop_logs, loop_image_text, loop_reasoning)  # L7-L11


def _registry() -> dict:
    structured = {k: v for m in _STRUCTURED for k, v in {**m.LOOPS, **m.CONTROLS}.items()}
    return {**L.LOOPS, **L.CONTROLS, **T.LOOPS, **T.CONTROLS, **A.LOOPS, **A.CONTROLS, **structured, **DRIFT_CONTROLS}


def family_of(run_id: str) -> str:
    r"""The collapse loop id of a loop, control or drift id: the part after a ``C?-`` / ``D?-`` prefix.

    >>> family_of("C0-L2-K10-d8"), family_of("D0-L1-d1-M20"), family_of("L4-text"), family_of("C2-L6-agent")
    ('L2-K10-d8', 'L1-d1-M20', 'L4-text', 'L6-agent')
    """
    registry = _registry()
    if not isinstance(run_id, str) or run_id not in registry:
        raise ValueError(f"loop_id: expected a loop, control or drift id such as 'L1-d1-M20', 'C0-L4-text' or "
                         f"'D0-L5-wine', got {run_id!r}")
    return _PREFIX.sub("", run_id)


def family_arguments(run_id: str, overrides: dict) -> dict:
    r"""The keyword arguments the run's function would use: its defaults updated by ``overrides``.

    >>> args = family_arguments("C2-L1-d16-M20", {"n_audit": 50})
    >>> args["d"], args["M"], args["n_audit"], args["workflow"]
    (16, 20, 50, 'fresh_real')
    """
    family_of(run_id)
    parameters = inspect.signature(_registry()[run_id]).parameters
    known = {name: p.default for name, p in parameters.items()
             if p.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ValueError(f"overrides: {run_id} takes no {', '.join(map(repr, unknown))} "
                         f"(expected some of {sorted(known)})")
    return {**known, **overrides}


def _l4_setup(seed: int, args: dict):
    corpus = args.get("corpus")
    encoded = N._encoded_wordnet() if corpus is None else N.encode_corpus(corpus)
    n_train = N._check_positive_int(args["n_train"], "n_train")
    n_reference = N._check_positive_int(args["n_reference"], "n_reference")
    return encoded, T._split(seed, encoded, n_train, n_reference)


def pool_capacity(loop_id: str, **overrides) -> int | None:
    r"""How many pool items :func:`draw_pool` can give for ``loop_id``: None (unlimited) except for L4 and L11.

    L4: the glosses outside the reference, ``corpus size - n_reference`` (the same for every seed). L11: the
    questions of its bank, ``n_reference`` (each answered ``samples_per_question`` times).

    >>> pool_capacity("L1-d1-M20"), pool_capacity("C0-L4-text"), pool_capacity("L4-text", n_reference=300)
    (None, 19000, 19700)
    >>> pool_capacity("C0-L11-reasoning", n_reference=300)
    300
    """
    args = family_arguments(loop_id, overrides)
    if family_of(loop_id) == "L11-reasoning":
        return L._check_int(args["n_reference"], "n_reference", 1)
    if family_of(loop_id) != "L4-text":
        return None
    return int(_l4_setup(0, args)[1].outside_reference.size)


def draw_pool(loop_id: str, seed: int, size: int, **overrides):
    r"""``size`` independent draws of generation 0's distribution of ``loop_id``'s family (module docstring).

    Args:
        loop_id: a loop, control or drift id (its family decides).
        seed: run seed (the generation-0 model of L2 and the split of L4 depend on it).
        size: number of rows / documents / glosses, >= 1; at most :func:`pool_capacity` for L4.
        **overrides: keyword arguments of the run's function (``n_audit``, ``n_reference``, ``d``, ...).

    Returns:
        float64 ``[size, d]`` (L1, L2), ``list[str]`` (L3, L4, L7 ``.jsonl`` lines, L9 log lines), a DataFrame
        (L5), ``list[dict]`` episodes (L6) or graph objects (L8), :class:`~monitor.inputs.pairs.LoadedPairs` (L10),
        or ``list[dict]`` records of ``size`` questions (L11; at most :func:`pool_capacity`).

    >>> draw_pool("L1-d16-M20", 0, 4).shape, draw_pool("C0-L3-tau0.9", 0, 2, tokens_per_document=3)
    ((4, 16), ['w1 w23 w2', 'w9 w1 w10'])
    """
    seed = L._check_int(seed, "seed", 0)
    size = L._check_int(size, "size", 1)
    args = family_arguments(loop_id, overrides)
    family = family_of(loop_id)
    if family == "L4-text":
        if args.get("source") == "model0":  # the loop without feedback: generation 0's own sentences
            _, models = T.run_with_models("C0-L4-text", seed, 1, **{k: v for k, v in overrides.items()})
            sentences = N.sample_ngram(models[0], size, T._stream(seed, STREAM_POOL, 1), tau=args["tau"],
                                       max_tokens=args["max_tokens"])
            vocabulary = N.wordnet_vocabulary() if args.get("corpus") is None else \
                N.encode_corpus(args["corpus"]).vocabulary
            return [N.decode(sentence, vocabulary) for sentence in sentences]
        encoded, setup = _l4_setup(seed, args)
        available = setup.outside_reference
        if size > available.size:
            raise ValueError(f"size: expected at most {available.size} (real glosses outside the reference of "
                             f"{loop_id}), got {size}")
        picked = available[T._stream(seed, STREAM_POOL).choice(available.size, size, replace=False)]
        return [encoded.texts[i] for i in picked]
    rng = L._stream(seed, STREAM_POOL)
    kind = family.split("-", 1)[0]  # "L10", not "L1"
    if kind == "L7":  # as rounds of n_audit outputs, each numbered from 0: a pseudo-round's ids are a round's
        n = L._check_int(args["n_audit"], "n_audit", 1)
        params = loop_json_records.initial_parameters()
        return [line for start in range(0, size, n)
                for line in loop_json_records.sample_lines(params, min(n, size - start), rng)]
    if kind == "L8":
        return loop_graphs.sample_graphs(loop_graphs.graphs_params(seed, 1, workflow="no_feedback"), 0, size, rng)
    if kind == "L9":
        return loop_logs.sample_lines(*loop_logs.initial_generator(), size, rng)
    if kind == "L10":
        return loop_image_text.sample_pairs(loop_image_text.initial_prior(), L._check_int(size, "size", 2), rng,
                                            dim=args["dim"], where=f"{family} pool")
    if kind == "L11":  # the loop's own pool stream, SeedSequence(seed, spawn_key=(5,)), as rng's
        return loop_reasoning.sample_pool(seed, size, samples_per_question=args["samples_per_question"],
                                          n_reference=args["n_reference"])
    if kind == "L6":
        return A.sample_episodes(A.initial_policy(), size, rng, max_steps=args["max_steps"])
    if kind == "L1":
        return rng.standard_normal((size, L._check_int(args["d"], "d", 1)))
    if kind == "L2":
        return L.equal_weight_mixture(seed, args["K"], args["d"], args["spread"]).sample(size, rng)
    if kind == "L3":
        V = args["V"]
        tokens = rng.choice(V, size=(size, L._check_int(args["tokens_per_document"], "tokens_per_document", 1)),
                            p=L.zipf_law(V, args["beta"]))
        return L._render_documents(tokens, np.array([f"w{rank}" for rank in range(1, V + 1)]))
    real = L.load_real_table(args["dataset"])
    return pd.DataFrame(L.fit_gaussian_copula(real.to_numpy()).sample(size, rng), columns=real.columns)
