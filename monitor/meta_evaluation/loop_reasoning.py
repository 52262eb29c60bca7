r"""L11-reasoning: a solver retrained on its own correct solutions, its rationales collapsing onto few templates.

The collapse loop (benchmark loop L11, modality ``"reasoning"``) is rejection-sampling self-training on
reasoning: sample solutions from the current model, keep those whose final answer matches the gold answer,
fine-tune the next model on them, repeat. It is STaR (Zelikman et al., NeurIPS 2022, "STaR: Bootstrapping
Reasoning With Reasoning") without rationalisation, and the Grow/Improve loop of ReST (Gulcehre et al. 2023,
"Reinforced Self-Training (ReST) for Language Modeling"), also called rejection-sampling fine-tuning (Yuan et
al. 2023, "Scaling Relationship on Learning Mathematical Reasoning with Large Language Models"). Filtering on
correctness raises accuracy; refitting by maximum likelihood on a finite sample, with no smoothing, also makes
every solution strategy the sample happens to miss vanish for good, so the rationales narrow onto a few
templates and the samples agree more and more. A monitor that watches accuracy alone would call this
progress; the benchmark asks it to see the narrowing.

Questions (:func:`question_bank`): a fixed bank of synthetic arithmetic word problems, the same for every seed
(like a fixed benchmark such as GSM8K): question ``i`` (id ``"q0000"``, ``"q0001"``, ...) is drawn from its
own stream, so a bank of ``n`` questions is the first ``n`` of any larger one. Each is one of six wordings
(:data:`QUESTION_TYPES`) with two names and three numbers :math:`a, b, c`, and its gold answer is
:math:`(a \circ_1 b) \circ_2 c` computed exactly, for three operation patterns (two wordings each):
``(a + b) - c``, ``(a * b) + c`` and ``(a - b) * c``. Numbers are drawn so that every intermediate and gold
result is positive and every error below gives an answer other than the gold one.

Model: a distribution :math:`w` over the :data:`N_STRATEGIES` = 24 solution strategies of :data:`STRATEGIES`.
A strategy is a rationale template (filled with the question's names, numbers, operation symbols or words,
intermediate result :math:`r_1` and final result :math:`r_2`) with its own error behaviour: with probability
:math:`e_s` it makes its error, and the rationale shows the wrong computation and ends on the wrong answer.
The errors (:data:`ERROR_KINDS`): ``"slip"`` (the final result off by one), ``"carry"`` (the first result off
by one, carried on), ``"operation"`` (the second operation replaced: ``+`` by ``-``, ``-`` by ``+``, ``*`` by
``+``) and ``"misread"`` (:math:`c + 1` read for :math:`c`). Strategies 0-5 never err, 6-11 err with
probability 0.15, 12-17 with 0.3 and 18-23 with 0.5. A sample of a question: draw a strategy from :math:`w`,
draw its error coin, render the rationale; the answer is the integer it ends on, as text. Generation 0
(:func:`initial_weights`) is uniform: :math:`H_0 = \ln 24 = 3.178` nats and accuracy 0.7625. Whether a sample
is correct does not depend on the question, so the truth below is exact.

Self-training (``workflow="replace"``, the loop): generation ``g`` answers ``n_samples`` (``M``) training
questions ``samples_per_question`` (``K``) times each; generation ``g + 1`` is the maximum-likelihood weights of
the strategies of the *correct* samples,

.. math:: w_{g+1}(s) = \frac{n_g(s)}{\sum_{s'} n_g(s')},

with no smoothing, so :math:`w_{g+1}(s) = 0` whenever no correct sample used :math:`s`, and then in every later
generation (no correct sample at all: the weights are kept). Two forces lower the entropy: the correctness
filter (in expectation :math:`w_{g+1}(s) \propto w_g(s)(1 - e_s)`, which drives the weight onto the six
error-free strategies but, with infinitely many samples, never below their uniform mix, :math:`\ln 6 = 1.79 >
H_0 / 2 = 1.59` nats) and the finite-sample drift of the refit (neutral among equally good strategies, and
absorbing at zero), which is the collapse part and is what ``M K`` controls. The training step draws only
strategies and error coins: which questions were drawn cannot change the kept counts.

Ground truth (from the true weights :math:`w_g`, never from sampled solutions; :func:`reasoning_truth`):

* ``strategy_entropy``: :math:`H_g = -\sum_s w_g(s) \ln w_g(s)` in nats.
* ``accuracy``: :math:`\sum_s w_g(s)(1 - e_s)`, the probability that a sample is correct.
* ``strategy_support``: the number of strategies with :math:`w_g(s) > 0`, of 24.

Under ``replace`` ``strategy_support`` never rises (a vanished strategy cannot come back).

Onset (``replace`` only): the first generation with :math:`H_g < H_0 / 2`, half of generation 0's strategy
diversity gone (the halving rule of L3, L4 and L6). The filter alone never crosses it (see above), so crossing
it takes the finite-sample collapse.

Sizes: ``M = n_samples = 30`` training questions of ``K = 4`` samples per generation (about 91 correct samples
at generation 0). The onset falls at generation 9, 14, 15, 12, 14, 22, 17, 10, 10, 11 for seeds 0-9 (9-22,
median 14, for seeds 0-29; measured), mid-way through the default 30 generations, while ``accuracy`` rises
from 0.76 to 0.99-1.00 at generation 30 and ``strategy_support`` falls from 24 to 3-5 (seeds 0-9). Past the
onset the entropy drifts down, not monotonically: a refit can come out flatter than its parent (rises of at
most 0.18 nats, seeds 0-29), and for 3 of seeds 0-29 it came back above :math:`H_0 / 2` for a few generations
(to at most :math:`0.52\,H_0`). With ``M = 10`` the onset comes at generation 5-13 and with ``M = 100`` at 17-28
or not within 30 generations (3 of seeds 0-9). Time (one CPU core, measured): about 25 ms to build the default
bank of 1000 questions (once, then cached), under 0.1 ms a generation for the training sample and refit, about
0.5 ms a generation for the ``n_questions_audit = 50`` x 4 audit records: a default 31-round run takes about
0.02 s once the bank is built.

Controls (any alarm on C0 is a false alarm; ``onset`` is always None):

* C0 ``workflow="no_feedback"``: every round is a fresh draw of generation 0's model; the truth is constant.
* C1 ``workflow="accumulate"`` (Gerstgrasser et al. 2024, "Is model collapse inevitable?"): generation
  ``g + 1`` is fitted on the correct samples of *all* training samples so far, generation 0's included, so no
  strategy generation 0 used correctly ever vanishes.
* C2 ``workflow="fresh_real"``: generation ``g + 1`` is fitted on the correct samples among ``M - r`` own
  training questions plus ``r = round(fresh_fraction * M)`` questions answered by generation 0's model.

The filter applies to every training set alike, so C1 and C2 sharpen too (learning the better strategies is not
collapse). At the default sizes, by generation 30 (seeds 0-9, measured) C1 keeps :math:`H_{30}/H_0` of
0.84-0.88 and 23-24 strategies, C2 0.56-0.71 and 13-20 strategies, against 0.25-0.46 and 3-5 for the loop. C1
never crosses the onset threshold; C2's refreshed strategies keep it above in 28 of seeds 0-29, but its own
share of the refit still drifts, and for seeds 18 and 26 it dips below :math:`H_0 / 2` late (generations 23 and
21, to :math:`0.47\,H_0`).

Rounds and reference are lists of record dicts ``{"question_id", "question", "rationale", "answer"}``
(JSON-serialisable; :func:`records_jsonl` writes them as ``.jsonl``, read by
:func:`monitor.inputs.load_records`). Every audited round is ``n_questions_audit`` questions drawn from the
bank without replacement, each answered ``samples_per_question`` times by generation ``g``'s model, a
question's records together. The reference is the gold record of every bank question (``n_reference`` of them,
the bank's size): its gold answer and a correct rationale in a strategy drawn uniformly for it, the same for
every seed. :func:`sample_pool` gives a null pool: generation-0 samples of bank questions.

In the meta-evaluation (:mod:`monitor.meta_evaluation.settings`): rounds of at most 50 questions x 4 samples
against a bank of 1,000 (``REASONING_MAX_QUESTIONS``, ``REASONING_BANK``), so a null's pool holds at most the
bank's 1,000 questions, 20 round sizes; the oracle's exact log e-values are :func:`reasoning_log_evalues`.

Randomness: one :class:`numpy.random.SeedSequence` per purpose and generation (the streams of
:mod:`monitor.meta_evaluation.loop_common`: the training sample of generation ``g``, the generation-0 samples of
C2, the audit sample of generation ``g``; the pools' purpose ``(5,)`` for :func:`sample_pool`), so the weight
trajectory and ``truth`` do not depend on ``audit_every`` and a loop and its controls share generation 0, its
training sample (C1) and the reference.

>>> trace = reasoning_loop(0, 3, n_samples=10, n_questions_audit=3, n_reference=20)
>>> trace.name, trace.modality, trace.kind, len(trace.reference), [len(r) for r in trace.rounds]
('L11-reasoning', 'reasoning', 'collapse', 20, [12, 12, 12, 12])
>>> sorted(trace.rounds[0][0]), trace.reference[0]["question_id"]
(['answer', 'question', 'question_id', 'rationale'], 'q0000')
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Iterable

import numpy as np

from monitor.meta_evaluation.loop_common import (
    CONTROL_WORKFLOWS, _STREAM_DYNAMICS, _STREAM_REAL, _audit_stream, _check_int, _check_run, _check_workflow,
    _fresh_count, _stream, _trace, audited_generations, first_generation,
)
from monitor.meta_evaluation.trace import LoopTrace

# --- questions ---------------------------------------------------------------------------------------------------

NAMES = ("Ava", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jade", "Kai", "Lena", "Milo", "Nora",
         "Omar", "Pia")
"""The names a question's two people are drawn from."""

QUESTION_TYPES = (
    ("+", "-", "{A} has {a} marbles. {B} gives {A} {b} more, and then {A} loses {c}. "
               "How many marbles does {A} have now?"),
    ("+", "-", "A bus leaves with {a} people. At the first stop {b} people get on and {c} get off, "
               "{A} and {B} among them. How many people are on the bus now?"),
    ("*", "+", "{A} buys {a} boxes of {b} pencils each, and {B} gives {A} {c} loose pencils. "
               "How many pencils does {A} have?"),
    ("*", "+", "{A} plants {a} rows of {b} tulips, and {B} adds {c} more tulips. How many tulips are there?"),
    ("-", "*", "{A} bakes {a} muffins and {B} eats {b} of them. Each muffin left needs {c} raisins. "
               "How many raisins does {A} need?"),
    ("-", "*", "{A} has {a} stamps and gives {b} to {B}. {B} then gets {c} times as many stamps as {A} has left. "
               "How many stamps does {B} get?"),
)
"""Question wordings: (first operation, second operation, text); the gold answer is ``(a op1 b) op2 c``."""

_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}
_WORDS = {"+": "plus", "-": "minus", "*": "times"}
_SWAPPED = {"+": "-", "-": "+", "*": "+"}  # the "operation" error's replacement of the second operation
_BANK_ENTROPY = 20220328  # the bank's own seed (STaR's arXiv date): the same bank for every run seed
_STREAM_POOL = 5  # the pools' purpose (monitor.meta_evaluation.pools.STREAM_POOL)


def _draw_numbers(pattern: tuple[str, str], rng: np.random.Generator) -> tuple[int, int, int]:
    """Numbers of one question: every result positive, every error's answer unlike the gold answer."""
    while True:
        if pattern == ("+", "-"):
            a, b = int(rng.integers(10, 61)), int(rng.integers(2, 31))
            c = int(rng.integers(1, min(30, a + b - 1) + 1))
        elif pattern == ("*", "+"):
            a, b, c = int(rng.integers(2, 13)), int(rng.integers(2, 13)), int(rng.integers(1, 21))
        else:
            a = int(rng.integers(5, 41))
            b, c = int(rng.integers(1, a)), int(rng.integers(2, 10))
        r1 = _OPS[pattern[0]](a, b)
        gold = _OPS[pattern[1]](r1, c)
        # slip, carry and misread always change the answer here (r1 >= 1, c >= 1; c >= 2 under "*");
        # the swapped operation does unless r1 * c == r1 + c (r1 = c = 2)
        if gold >= 1 and _OPS[_SWAPPED[pattern[1]]](r1, c) != gold:
            return a, b, c


def _question(index: int) -> dict:
    rng = np.random.default_rng(np.random.SeedSequence(_BANK_ENTROPY, spawn_key=(index,)))
    kind = int(rng.integers(len(QUESTION_TYPES)))
    op1, op2, text = QUESTION_TYPES[kind]
    first, second = rng.choice(len(NAMES), size=2, replace=False).tolist()
    a, b, c = _draw_numbers((op1, op2), rng)
    names = {"A": NAMES[first], "B": NAMES[second]}
    return dict(question_id=f"q{index:04d}", type=kind, op1=op1, op2=op2, a=a, b=b, c=c, **names,
                question=text.format(a=a, b=b, c=c, **names), gold=_OPS[op2](_OPS[op1](a, b), c),
                gold_strategy=int(rng.integers(N_STRATEGIES)))


@functools.lru_cache(maxsize=4)
def _bank(n: int) -> tuple[dict, ...]:
    return tuple(_question(i) for i in range(n))


def question_bank(n: int) -> list[dict]:
    r"""The first ``n`` questions of the fixed bank: dicts of ``question_id``, ``question``, ``gold`` (int), the
    wording ``type`` (:data:`QUESTION_TYPES`), its operations ``op1`` and ``op2``, the numbers ``a``, ``b``, ``c``,
    the names ``A`` and ``B``, and ``gold_strategy`` (the strategy of its gold rationale).

    >>> q = question_bank(3)[1]
    >>> q["question_id"], q["gold"] == {"+": int.__add__, "-": int.__sub__, "*": int.__mul__}[q["op2"]](
    ...     {"+": int.__add__, "-": int.__sub__, "*": int.__mul__}[q["op1"]](q["a"], q["b"]), q["c"])
    ('q0001', True)
    """
    return [dict(q) for q in _bank(_check_int(n, "n", 1))]


# --- strategies --------------------------------------------------------------------------------------------------

ERROR_KINDS = ("slip", "carry", "operation", "misread")
"""What an erring strategy gets wrong: the final result by one, the first result by one (carried on), the second
operation, or the third number (read as ``c + 1``)."""

# (rationale template, error kind, error probability). Fields: {A} {B} names, {a} {b} {c} numbers, {o1} {o2}
# operation symbols, {w1} {w2} their words, {r1} {r2} the results. No name starts a sentence, so that
# metrics_core.reasoning.rationale_skeleton masks every name.
STRATEGIES = (
    ("First, {a} {o1} {b} = {r1}. Then {r1} {o2} {c} = {r2}. The answer is {r2}.", "slip", 0.0),
    ("Step 1: {a} {o1} {b} = {r1}. Step 2: {r1} {o2} {c} = {r2}. Answer: {r2}.", "carry", 0.0),
    ("We start from the numbers in the problem. {a} {w1} {b} is {r1}, and {r1} {w2} {c} is {r2}. "
     "So the answer is {r2}.", "operation", 0.0),
    ("Let's think step by step. For {A}, {a} {o1} {b} makes {r1}. Then {r1} {o2} {c} makes {r2}. "
     "The final answer is {r2}.", "misread", 0.0),
    ("To help {A}, we first combine {a} and {b} to get {r1}. Combining {r1} with {c} gives {r2}. "
     "The answer is {r2}.", "slip", 0.0),
    ("The total is ({a} {o1} {b}) {o2} {c} = {r1} {o2} {c} = {r2}.", "carry", 0.0),
    ("Write one expression: ({a} {o1} {b}) {o2} {c}. Inside the brackets we get {r1}, so it equals {r2}. "
     "Therefore {r2}.", "operation", 0.15),
    ("Answer: {r2}. Reason: {a} {o1} {b} = {r1} and {r1} {o2} {c} = {r2}.", "misread", 0.15),
    ("Start with {a}. After the change of {b} we have {r1}. After the change of {c} we have {r2}. "
     "So the count for {A} is {r2}.", "slip", 0.15),
    ("Since {a} {w1} {b} equals {r1}, and {r1} {w2} {c} equals {r2}, the answer must be {r2}.", "carry", 0.15),
    ("Working it out for {A} and {B}: first {a} {o1} {b} = {r1}, next {r1} {o2} {c} = {r2}. Result: {r2}.",
     "operation", 0.15),
    ("Let n be the answer. n = ({a} {o1} {b}) {o2} {c}, which is {r1} {o2} {c}, so n = {r2}.", "misread", 0.15),
    ("In the story the count changes twice. We do {a} {o1} {b} first and get {r1}; then {r1} {o2} {c} gives "
     "{r2}. Answer {r2}.", "slip", 0.3),
    ("Quick look at the numbers: {a}, {b}, {c}. Combined in order they give {r1} and then {r2}. "
     "The answer is {r2}.", "carry", 0.3),
    ("Translate to math: x = ({a} {o1} {b}) {o2} {c}. Then x = {r1} {o2} {c} = {r2}. The value of x is {r2}.",
     "operation", 0.3),
    ("The first part gives {a} {w1} {b}, that is {r1}. The second part gives {r1} {w2} {c}, that is {r2}. "
     "Hence {r2}.", "misread", 0.3),
    ("We need the final number for {A}. Compute {r1} from {a} {o1} {b}, then {r2} from {r1} {o2} {c}. "
     "It is {r2}.", "slip", 0.3),
    ("Doing the first operation first, {a} {o1} {b} = {r1}, and so {a} {o1} {b} {o2} {c} comes to {r2}. "
     "The answer is {r2}.", "carry", 0.3),
    ("A table helps. Row one: {a} {o1} {b} -> {r1}. Row two: {r1} {o2} {c} -> {r2}. Final: {r2}.",
     "operation", 0.5),
    ("Count it out. Begin at {a}, apply {b} to reach {r1}, apply {c} to reach {r2}. That is the answer: {r2}.",
     "misread", 0.5),
    ("If {A} tracks the amount, it goes {a}, then {r1}, then {r2}. So the answer is {r2}.", "slip", 0.5),
    ("Two operations, done in order: {a} {o1} {b} = {r1}; {r1} {o2} {c} = {r2}. We get {r2}.", "carry", 0.5),
    ("Think of it backwards: the answer {r2} comes from {r1} {o2} {c}, and {r1} comes from {a} {o1} {b}. "
     "So {r2}.", "operation", 0.5),
    ("On a number line, {a} {w1} {b} lands on {r1}, and {r1} {w2} {c} lands on {r2}. The answer is {r2}.",
     "misread", 0.5),
)
"""The solution strategies: (rationale template, error kind, error probability :math:`e_s`)."""

N_STRATEGIES = len(STRATEGIES)
ERROR_RATES = np.array([e for _, _, e in STRATEGIES])
"""``[24]`` error probabilities :math:`e_s`."""

DEFAULT_N_SAMPLES = 30
DEFAULT_SAMPLES_PER_QUESTION = 4
DEFAULT_N_QUESTIONS_AUDIT = 50
DEFAULT_N_REFERENCE = 1000
DEFAULT_FRESH_FRACTION = 0.1
ONSET_FRACTION = 0.5


def initial_weights() -> np.ndarray:
    r"""Generation 0's model: uniform weights over the 24 strategies.

    >>> w = initial_weights()
    >>> w.shape, float(w.sum()), round(float(np.dot(w, 1 - ERROR_RATES)), 4)
    ((24,), 1.0, 0.7625)
    """
    return np.full(N_STRATEGIES, 1.0 / N_STRATEGIES)


def _check_weights(weights) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    if w.shape != (N_STRATEGIES,) or not np.all(np.isfinite(w)) or np.any(w < 0) or not np.isclose(w.sum(), 1.0):
        raise ValueError(f"weights: expected {N_STRATEGIES} probabilities summing to 1, got shape {w.shape}")
    return w


def solve(question: dict, strategy: int, *, error: bool = False, sign: int = 1) -> dict:
    r"""One sample: ``question`` (from :func:`question_bank`) solved with ``strategy``, erring or not, as a record.

    ``sign`` (+1 or -1) is the direction of a ``"slip"`` or ``"carry"`` error; the other kinds ignore it.

    >>> q = dict(question_id="q9", question="?", op1="*", op2="+", a=3, b=4, c=5, A="Ava", B="Ben")
    >>> solve(q, 0)["rationale"], solve(q, 0)["answer"]
    ('First, 3 * 4 = 12. Then 12 + 5 = 17. The answer is 17.', '17')
    >>> solve(q, 0, error=True)["rationale"], solve(q, 0, error=True, sign=-1)["answer"]
    ('First, 3 * 4 = 12. Then 12 + 5 = 18. The answer is 18.', '16')
    >>> solve(q, 2, error=True)["rationale"]
    'We start from the numbers in the problem. 3 times 4 is 12, and 12 minus 5 is 7. So the answer is 7.'
    """
    template, kind, _ = STRATEGIES[strategy]
    a, b, c, op1, op2 = question["a"], question["b"], question["c"], question["op1"], question["op2"]
    if error and kind == "operation":
        op2 = _SWAPPED[op2]
    if error and kind == "misread":
        c += 1
    r1 = _OPS[op1](a, b) + (sign if error and kind == "carry" else 0)
    r2 = _OPS[op2](r1, c) + (sign if error and kind == "slip" else 0)
    rationale = template.format(A=question["A"], B=question["B"], a=a, b=b, c=c, o1=op1, o2=op2, w1=_WORDS[op1],
                                w2=_WORDS[op2], r1=r1, r2=r2)
    return {"question_id": question["question_id"], "question": question["question"], "rationale": rationale,
            "answer": str(r2)}


def gold_record(question: dict) -> dict:
    """A question's reference record: its gold answer and a correct rationale in its ``gold_strategy``.

    >>> r = gold_record(question_bank(1)[0])
    >>> r["answer"] == str(question_bank(1)[0]["gold"]), sorted(r)
    (True, ['answer', 'question', 'question_id', 'rationale'])
    """
    return solve(question, question["gold_strategy"])


# --- sampling ----------------------------------------------------------------------------------------------------


def _draw(weights: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` samples' strategies, error coins and slip/carry signs."""
    strategies = rng.choice(N_STRATEGIES, size=n, p=weights)  # a zero weight is never drawn
    errors = rng.random(n) < ERROR_RATES[strategies]
    signs = np.where(rng.random(n) < 0.5, -1, 1)
    return strategies, errors, signs


def sample_records(weights, questions: list[dict], samples_per_question: int, rng: np.random.Generator) -> list[dict]:
    r"""``samples_per_question`` samples of each question by the model ``weights``, a question's records together.

    Args:
        weights: ``[24]`` strategy probabilities (:func:`initial_weights`).
        questions: questions of :func:`question_bank`.
        samples_per_question: ``K``.
        rng: the stream.

    >>> q = question_bank(2)
    >>> r = sample_records(initial_weights(), q, 3, np.random.default_rng(0))
    >>> [x["question_id"] for x in r]
    ['q0000', 'q0000', 'q0000', 'q0001', 'q0001', 'q0001']
    """
    weights = _check_weights(weights)
    k = _check_int(samples_per_question, "samples_per_question", 1)
    strategies, errors, signs = _draw(weights, len(questions) * k, rng)
    return [solve(questions[i // k], int(s), error=bool(e), sign=int(sign))
            for i, (s, e, sign) in enumerate(zip(strategies.tolist(), errors.tolist(), signs.tolist()))]


def _kept_counts(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``[24]`` strategy counts of the correct samples among ``n``."""
    strategies, errors, _ = _draw(weights, n, rng)
    return np.bincount(strategies[~errors], minlength=N_STRATEGIES).astype(float)


def _round_questions(bank: tuple[dict, ...], n_questions: int, rng: np.random.Generator) -> list[dict]:
    if n_questions > len(bank):
        raise ValueError(f"n_questions_audit: expected at most n_reference={len(bank)} questions (the bank), "
                         f"got {n_questions}")
    return [bank[i] for i in rng.choice(len(bank), size=n_questions, replace=False).tolist()]


# --- dynamics and truth ------------------------------------------------------------------------------------------


def reasoning_weights(seed: int, n_generations: int, *, workflow: str = "replace",
                      n_samples: int = DEFAULT_N_SAMPLES,
                      samples_per_question: int = DEFAULT_SAMPLES_PER_QUESTION,
                      fresh_fraction: float = DEFAULT_FRESH_FRACTION) -> np.ndarray:
    r"""True strategy weights of every generation of L11-reasoning or a control; see the module docstring.

    Args:
        seed: run seed.
        n_generations: last generation ``N``.
        workflow: ``"replace"``, ``"no_feedback"``, ``"accumulate"`` or ``"fresh_real"``.
        n_samples: ``M``, training questions per generation.
        samples_per_question: ``K``, samples per training question.
        fresh_fraction: share of the training questions answered by generation 0's model in C2.

    Returns:
        ``[N + 1, 24]`` weights, index = generation.

    >>> w = reasoning_weights(0, 5, n_samples=5)
    >>> w.shape, bool((w[5] > 0).sum() <= (w[0] > 0).sum()), bool(np.allclose(w.sum(axis=1), 1.0))
    ((6, 24), True, True)
    """
    seed, n_generations, _ = _check_run(seed, n_generations, 1)
    workflow = _check_workflow(workflow)
    n_samples = _check_int(n_samples, "n_samples", 1)
    k = _check_int(samples_per_question, "samples_per_question", 1)
    n_fresh = _fresh_count(fresh_fraction, n_samples, "n_samples") if workflow == "fresh_real" else 0
    weights = np.empty((n_generations + 1, N_STRATEGIES))
    weights[:] = initial_weights()
    if workflow == "no_feedback":
        return weights
    pooled = np.zeros(N_STRATEGIES)
    for g in range(n_generations):
        counts = _kept_counts(weights[g], (n_samples - n_fresh) * k, _stream(seed, _STREAM_DYNAMICS, g))
        if n_fresh:
            counts += _kept_counts(weights[0], n_fresh * k, _stream(seed, _STREAM_REAL, g))
        if workflow == "accumulate":
            pooled += counts
            counts = pooled
        total = counts.sum()
        weights[g + 1] = counts / total if total > 0 else weights[g]
    return weights


def reasoning_truth(weights) -> dict[str, np.ndarray]:
    r"""Per-generation truth of L11-reasoning: ``strategy_entropy`` (nats), ``accuracy``, ``strategy_support``.

    Args:
        weights: ``[G, 24]`` true weights (:func:`reasoning_weights`).

    >>> t = reasoning_truth(np.stack([initial_weights(), np.eye(24)[0]]))
    >>> t["strategy_entropy"].round(4).tolist(), t["accuracy"].round(4).tolist(), t["strategy_support"].tolist()
    ([3.1781, 0.0], [0.7625, 1.0], [24, 1])
    """
    w = np.asarray(weights, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(w > 0, -w * np.log(w), 0.0)
    return {  # one sum per generation: equal weights give bit-equal truth
        "strategy_entropy": np.array([float(row.sum()) for row in terms]),
        "accuracy": np.array([float(np.dot(row, 1.0 - ERROR_RATES)) for row in w]),
        "strategy_support": (w > 0).sum(axis=1),
    }


# --- the loop ----------------------------------------------------------------------------------------------------


def reasoning_loop(seed: int = 0, n_generations: int = 30, audit_every: int = 1, *, workflow: str = "replace",
                   n_samples: int = DEFAULT_N_SAMPLES, n_questions_audit: int = DEFAULT_N_QUESTIONS_AUDIT,
                   samples_per_question: int = DEFAULT_SAMPLES_PER_QUESTION,
                   n_reference: int = DEFAULT_N_REFERENCE,
                   fresh_fraction: float = DEFAULT_FRESH_FRACTION) -> LoopTrace:
    r"""L11-reasoning: a solver refitted on its own correct solutions, or a control (module docstring).

    Onset (``replace`` only): the first generation with ``truth["strategy_entropy"] < 0.5 * truth[...][0]``.

    Args:
        seed: run seed.
        n_generations: last simulated generation.
        audit_every: audit stride.
        workflow: ``"replace"`` (L11-reasoning), ``"no_feedback"`` (C0), ``"accumulate"`` (C1) or
            ``"fresh_real"`` (C2).
        n_samples: ``M``, training questions per generation.
        n_questions_audit: questions per audit round (each ``samples_per_question`` times).
        samples_per_question: ``K``, samples per question, in training and in the audit rounds.
        n_reference: the bank's size: the reference holds the gold record of each of its questions.
        fresh_fraction: share of the training questions answered by generation 0's model in C2.

    >>> c0 = reasoning_loop(0, 2, workflow="no_feedback", n_questions_audit=3, n_reference=10)
    >>> c0.name, c0.kind, c0.onset, len(set(c0.truth["strategy_entropy"].tolist()))
    ('C0-L11-reasoning', 'control', None, 1)
    """
    seed, n_generations, audit_every = _check_run(seed, n_generations, audit_every)
    n_questions_audit = _check_int(n_questions_audit, "n_questions_audit", 1)
    k = _check_int(samples_per_question, "samples_per_question", 1)
    bank = _bank(_check_int(n_reference, "n_reference", 1))
    weights = reasoning_weights(seed, n_generations, workflow=workflow, n_samples=n_samples,
                                samples_per_question=k, fresh_fraction=fresh_fraction)
    truth = reasoning_truth(weights)
    generations = audited_generations(n_generations, audit_every)
    rounds = []
    for g in generations.tolist():
        rng = _audit_stream(seed, g)
        rounds.append(sample_records(weights[g], _round_questions(bank, n_questions_audit, rng), k, rng))
    reference = [gold_record(q) for q in bank]
    onset = first_generation(truth["strategy_entropy"] < ONSET_FRACTION * truth["strategy_entropy"][0])
    params = dict(n_samples=n_samples, n_questions_audit=n_questions_audit, samples_per_question=k,
                  n_reference=n_reference, workflow=workflow, fresh_fraction=fresh_fraction,
                  n_generations=n_generations, audit_every=audit_every)
    return _trace("L11-reasoning", workflow, "reasoning", seed, reference, rounds, generations, onset, truth, params)


def sample_pool(seed: int, n_questions: int, *, samples_per_question: int = DEFAULT_SAMPLES_PER_QUESTION,
                n_reference: int = DEFAULT_N_REFERENCE) -> list[dict]:
    r"""A null pool: ``n_questions`` bank questions (without replacement), each answered ``samples_per_question``
    times by generation 0's model, from the pools' stream ``SeedSequence(seed, spawn_key=(5,))``.

    Every question is in the bank of ``n_reference`` questions, so the trace's reference holds its gold answer.

    >>> pool = sample_pool(0, 3, samples_per_question=2, n_reference=10)
    >>> len(pool), len({r["question_id"] for r in pool})
    (6, 3)
    """
    seed = _check_int(seed, "seed", 0)
    n_questions = _check_int(n_questions, "n_questions", 1)
    k = _check_int(samples_per_question, "samples_per_question", 1)
    bank = _bank(_check_int(n_reference, "n_reference", 1))
    if n_questions > len(bank):
        raise ValueError(f"n_questions: expected at most n_reference={len(bank)} questions (the bank), "
                         f"got {n_questions}")
    rng = _stream(seed, _STREAM_POOL)
    questions = [bank[i] for i in rng.choice(len(bank), size=n_questions, replace=False).tolist()]
    return sample_records(initial_weights(), questions, k, rng)


def records_jsonl(records: Iterable[dict]) -> bytes:
    r"""Records as ``.jsonl`` bytes: one compact JSON object per line (keys in their order), UTF-8.

    >>> records_jsonl([{"question_id": "q1", "answer": "4"}])
    b'{"question_id":"q1","answer":"4"}\n'
    """
    return b"".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"
                    for r in records)


# --- the oracle --------------------------------------------------------------------------------------------------


def reasoning_log_evalues(trace: LoopTrace) -> np.ndarray:
    r"""``[R]`` the oracle's log e-values of an L11-reasoning trace (or its control)
    (:mod:`monitor.meta_evaluation.oracle`): per round,

    .. math:: \log e_g = \sum_{i} \log w_g(s_i) - \log w_0(s_i),

    over its samples' strategies :math:`s_i`. A rationale shows its template, so a record determines its
    strategy, and given the strategy its error coin and slip sign have the same law in every generation (and the
    questions are drawn alike): the record's likelihood ratio is its strategy's weight ratio, exactly. The true
    weights are regenerated from the seed (:func:`reasoning_weights`), each round's draws from its audit stream
    (checked: they render the round's records). Exactly 0 under C0; a strategy with :math:`w_g(s) = 0` cannot
    occur in generation ``g``'s rounds, and :math:`w_0` is uniform, so every term is finite.

    >>> reasoning_log_evalues(CONTROLS["C0-L11-reasoning"](0, 2, n_questions_audit=3, n_reference=10)).tolist()
    [0.0, 0.0, 0.0]
    """
    params, seed = trace.params, trace.seed
    k = params["samples_per_question"]
    weights = reasoning_weights(seed, params["n_generations"], workflow=params["workflow"],
                                n_samples=params["n_samples"], samples_per_question=k,
                                fresh_fraction=params["fresh_fraction"])
    bank = _bank(params["n_reference"])
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)
    out = np.zeros(len(trace.rounds))
    for r, (g, records) in enumerate(zip(trace.generations.tolist(), trace.rounds)):
        rng = _audit_stream(seed, g)  # as reasoning_loop draws the round: its questions, then its samples
        questions = _round_questions(bank, params["n_questions_audit"], rng)
        strategies, errors, signs = _draw(weights[g], len(questions) * k, rng)
        rendered = [solve(questions[i // k], int(s), error=bool(e), sign=int(sign))
                    for i, (s, e, sign) in enumerate(zip(strategies.tolist(), errors.tolist(), signs.tolist()))]
        if rendered != list(records):
            raise ValueError(f"trace: {trace.name} seed {seed} round {r} does not match its regeneration from params")
        out[r] = float(np.sum(log_w[g][strategies] - log_w[0][strategies]))
    return out


# --- registry (the meta-evaluation's loop L11 and its controls) -------------------------------------------------

SUGGESTED_SCHEDULE = (30, 1)
"""Suggested ``(n_generations, audit_every)`` at the default sizes: 31 audited rounds, onset at generation 9-22
(seeds 0-29), mid-run."""

QUICK_SCHEDULE = (12, 2)
"""The meta-evaluation's quick mode: 7 audited rounds."""

LOOPS: dict[str, Callable[..., LoopTrace]] = {"L11-reasoning": reasoning_loop}
"""The collapse loop by id, called as ``fn(seed, n_generations, audit_every=1, **overrides)``."""

CONTROLS: dict[str, Callable[..., LoopTrace]] = {
    f"{control}-L11-reasoning": functools.partial(reasoning_loop, workflow=workflow)
    for control, workflow in CONTROL_WORKFLOWS.items()
}
"""Controls by id (``C0-L11-reasoning``, ``C1-...``, ``C2-...``), called like :data:`LOOPS`."""
