r"""Final-answer metrics of a reasoning round: normalisation, verified accuracy, self-consistency, agreement.

Part of :mod:`metrics_core.reasoning` (its docstring states the round's layout and the uncertainty rules).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fractions import Fraction

import numpy as np

from metrics_core._checks import _check_ids, _check_same_length, _check_texts
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, bootstrap_estimate, mean_estimate

#: Decimal or scientific notation, after lowercasing: ``-3``, ``0.50``, ``.5``, ``5.``, ``5e-1``.
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e(?P<exp>[+-]?\d+))?")
#: A ratio of integers: ``1/2``, ``-3 / 4`` (a zero denominator is no number).
_RATIO_RE = re.compile(r"(?P<num>[+-]?\d+) ?/ ?(?P<den>\d+)")
#: Comma thousands separators in well-formed groups of three: ``1,234``, ``-12,345.5``.
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")
#: Larger exponents stay strings: ``10**exp`` as an exact integer would cost time and memory.
MAX_EXPONENT = 1000
_BOXED = "\\boxed{"


def _boxed_content(s: str) -> str | None:
    """The content of ``\\boxed{...}`` when the box spans all of ``s`` (its brace closes at the end)."""
    if not s.startswith(_BOXED) or not s.endswith("}"):
        return None
    depth = 0
    for i in range(len(_BOXED) - 1, len(s)):
        depth += {"{": 1, "}": -1}.get(s[i], 0)
        if depth == 0:  # "\boxed{a}+\boxed{b}" closes before the end: not one box
            return s[len(_BOXED):-1] if i == len(s) - 1 else None
    return None


def _as_number(s: str) -> Fraction | None:
    if _THOUSANDS_RE.fullmatch(s):
        s = s.replace(",", "")
    try:
        m = _RATIO_RE.fullmatch(s)
        if m:
            den = int(m["den"])
            return Fraction(int(m["num"]), den) if den else None
        m = _DECIMAL_RE.fullmatch(s)
        if m is None or (m["exp"] is not None and abs(int(m["exp"])) > MAX_EXPONENT):
            return None
        return Fraction(s)
    except ValueError:  # over Python's int() digit limit (4300 digits)
        return None


def normalize_answer(answer: str) -> str | Fraction:
    r"""The comparable form of a final answer: an exact :class:`~fractions.Fraction` for a number, else a string.

    Steps, in order:

    1. whitespace collapsed to single spaces and stripped (``" ".join(answer.split())``), then ``str.lower()``;
    2. repeated until nothing changes: trailing periods removed; one surrounding ``$...$``
       pair removed (``$$...$$`` in two rounds; a lone ``$5`` keeps its ``$``); a ``\boxed{...}``
       spanning the whole answer (its brace closing at the end) unwrapped; the result stripped;
    3. comma thousands separators removed when the whole answer is a number grouped in threes
       (``1,234.5``; ``1,2`` stays a string);
    4. a number is returned as the exact :class:`~fractions.Fraction`: decimal or scientific
       notation (``[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?``, exponents up to ±1000) or a ratio of
       integers with a nonzero denominator (``-3/4``, ``3 / 4``), at most 4300 digits (Python's
       ``int()`` limit). So ``1/2``, ``0.5``, ``0.50`` and ``5e-1`` are all ``Fraction(1, 2)``
       and ``-3 == -3.0``, without float rounding.

    Anything else is returned as the string of step 2; a number never equals a string.
    No LaTeX beyond ``\boxed`` is interpreted (``\frac{1}{2}`` stays a string).

    Args:
        answer: the final answer as generated (``str``).

    Example:
        >>> normalize_answer(" $\\boxed{1,234.50}$. "), normalize_answer("5E-1") == normalize_answer("1/2")
        (Fraction(2469, 2), True)
        >>> normalize_answer("  The   Answer IS Paris. ")
        'the answer is paris'
    """
    if not isinstance(answer, str):
        raise ValueError(f"answer: expected str, got {type(answer).__name__}")
    s = " ".join(answer.split()).lower()
    prev = None
    while s != prev:
        prev = s
        s = s.rstrip(".").strip()
        if len(s) >= 2 and s[0] == "$" and s[-1] == "$":
            s = s[1:-1].strip()
        inner = _boxed_content(s)
        if inner is not None:
            s = inner.strip()
    number = _as_number(s)
    return s if number is None else number


def answers_match(a: str, b: str) -> bool:
    r"""Whether two answers are equal after :func:`normalize_answer` (numbers exactly, others as strings).

    Args:
        a, b: answers (``str``).

    Example:
        >>> answers_match("0.50", "$\\boxed{1/2}$"), answers_match("-3", "-3.0"), answers_match("3", "three")
        (True, True, False)
    """
    return normalize_answer(a) == normalize_answer(b)


def _counts(values: list) -> dict:
    """Value -> occurrences, in order of first appearance."""
    counts: dict = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


def _normalized_by_question(question_ids, answers) -> dict:
    """Question id -> its records' normalised answers, questions in order of first appearance."""
    ids = _check_ids(question_ids)
    answers = _check_texts(answers, "answers")
    _check_same_length(len(ids), len(answers), "question_ids", "answers")
    groups: dict = {}
    for q, a in zip(ids, answers):
        groups.setdefault(q, []).append(normalize_answer(a))
    return groups


def _normalized_gold(gold, question_ids) -> dict:
    """The normalised gold answer of every question in ``question_ids`` (in order; the first missing one raises)."""
    if not isinstance(gold, Mapping):
        raise ValueError(f"gold: expected a mapping question_id -> gold answer, got {type(gold).__name__}")
    out = {}
    for q in question_ids:
        if q in out:
            continue
        if q not in gold:
            raise ValueError(f"gold: no gold answer for question_id {q!r}")
        if not isinstance(gold[q], str):
            raise ValueError(f"gold[{q!r}]: expected str, got {type(gold[q]).__name__}")
        out[q] = normalize_answer(gold[q])
    return out


def acc_verify(
    question_ids, answers, gold, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0
) -> Estimate:
    r"""Verified accuracy (survey §3.2): share of records whose answer matches its question's gold answer.

    .. math:: \text{Acc}_\text{verify} = \frac1N \sum_{i=1}^N 1\big[\nu(a_i) = \nu(g_{q_i})\big],

    :math:`\nu` = :func:`normalize_answer`, :math:`g_q` the gold answer of question :math:`q`;
    every one of the :math:`N` records counts (with :math:`K` samples per question, the mean
    accuracy of a single sample). Range [0, 1], higher is better. The interval resamples
    questions (a record's samples are not independent):
    :math:`\sum_q w_q c_q / \sum_q w_q n_q` with :math:`c_q` of the :math:`n_q` records of
    :math:`q` correct.

    Args:
        question_ids: ``[N]`` ids (``str`` or ``int``), one per record.
        answers: ``[N]`` final answers (``str``).
        gold: mapping question id -> gold answer (``str``); every record's question needs one
            (ValueError naming the first, in record order, without).
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> acc_verify(["q1", "q1", "q2"], ["0.5", "1/3", "Paris."], {"q1": "1/2", "q2": "paris"}).value
        0.6666666666666666
    """
    groups = _normalized_by_question(question_ids, answers)
    golds = _normalized_gold(gold, list(groups))
    correct = np.array([sum(a == golds[q] for a in group) for q, group in groups.items()], dtype=np.float64)
    sizes = np.array([len(group) for group in groups.values()], dtype=np.float64)
    return bootstrap_estimate(lambda w: float(w @ correct) / float(w @ sizes), len(groups),
                              n_boot=n_boot, level=level, seed=seed)


def majority_answer(normalized: list) -> str | Fraction:
    """The mode of already normalised answers; among tied answers the one appearing first.

    Example:
        >>> majority_answer(["b", "a", "a", "b", "c"])
        'b'
    """
    counts = _counts(normalized)
    # dicts keep first-appearance order and max() returns the first maximal key: the earliest tied answer
    return max(counts, key=counts.__getitem__)


def self_consistency_accuracy(
    question_ids, answers, gold, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0
) -> Estimate:
    r"""Self-consistency (majority-vote) accuracy (Wang et al., ICLR 2023; survey §3.2).

    With :math:`\hat a_q = \operatorname{mode}\{\nu(a_{q,1}), \dots, \nu(a_{q,K_q})\}` the
    majority answer over question :math:`q`'s samples (:math:`\nu` = :func:`normalize_answer`;
    a tie goes to the tied answer whose first sample comes earliest in the records),

    .. math:: \text{SC-Acc} = \frac1Q \sum_{q=1}^Q 1\big[\hat a_q = \nu(g_q)\big].

    Range [0, 1], higher is better; a question with one sample votes with it. The interval
    resamples questions.

    Args:
        question_ids: ``[N]`` ids (``str`` or ``int``), one per record.
        answers: ``[N]`` final answers (``str``); :math:`K_q` records per question.
        gold: mapping question id -> gold answer (``str``), for every question.
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> ids = ["q1"] * 3 + ["q2"] * 2
        >>> self_consistency_accuracy(ids, ["2", "2.0", "3", "x", "y"], {"q1": "2", "q2": "y"}).value  # q2: tie, "x"
        0.5
    """
    groups = _normalized_by_question(question_ids, answers)
    golds = _normalized_gold(gold, list(groups))
    hits = [majority_answer(group) == golds[q] for q, group in groups.items()]
    return mean_estimate(np.array(hits, dtype=np.float64), n_boot=n_boot, level=level, seed=seed)


def answer_agreement(
    question_ids, answers, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0
) -> Estimate:
    r"""Pairwise answer agreement: the share of a question's sample pairs with equal final answers.

    For question :math:`q` with :math:`K_q \ge 2` samples of which :math:`n_{q,c}` have
    normalised answer :math:`c` (:func:`normalize_answer`),

    .. math::
        \text{agree}_q = \frac{\sum_c n_{q,c}(n_{q,c}-1)}{K_q(K_q-1)}, \qquad
        \text{Agreement} = \frac{1}{|Q_2|}\sum_{q \in Q_2} \text{agree}_q,

    :math:`Q_2` the questions with at least 2 samples (the others are skipped; ValueError when
    none). Range [0, 1]; higher means the samples agree more, which is not better in itself:
    a rise without a rise in accuracy means the sampled reasoning lost diversity (collapse),
    so compare with the reference. The interval resamples questions.

    Args:
        question_ids: ``[N]`` ids (``str`` or ``int``), one per record.
        answers: ``[N]`` final answers (``str``).
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> answer_agreement(["q1"] * 3 + ["q2"] * 2, ["1", "1.0", "2", "a", "b"]).value  # (2/6 + 0/2) / 2
        0.16666666666666666
    """
    groups = _normalized_by_question(question_ids, answers)
    per_question = []
    for group in groups.values():
        k = len(group)
        if k >= 2:
            counts = np.array(list(_counts(group).values()), dtype=np.float64)
            per_question.append(float((counts * (counts - 1)).sum()) / (k * (k - 1)))
    if not per_question:
        raise ValueError(f"question_ids: expected a question with at least 2 samples, "
                         f"got 1 sample for each of {len(groups)} questions")
    return mean_estimate(np.array(per_question), n_boot=n_boot, level=level, seed=seed)


def distinct_answers_per_question(
    question_ids, answers, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0
) -> Estimate:
    r"""Mean number of distinct normalised final answers per question.

    .. math:: \text{Distinct-Ans} = \frac1Q \sum_{q=1}^Q \big|\{\nu(a_{q,1}), \dots, \nu(a_{q,K_q})\}\big|,

    :math:`\nu` = :func:`normalize_answer`, every question counted. Range :math:`[1, \max_q K_q]`;
    higher means more diverse answers (1: every question's samples agree). It grows with
    :math:`K`, so compare rounds with the same number of samples per question. The interval
    resamples questions.

    Args:
        question_ids: ``[N]`` ids (``str`` or ``int``), one per record.
        answers: ``[N]`` final answers (``str``).
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> distinct_answers_per_question(["q1"] * 3 + ["q2"] * 2, ["1", "1.0", "2", "a", "b"]).value
        2.0
    """
    groups = _normalized_by_question(question_ids, answers)
    sizes = np.array([len(set(group)) for group in groups.values()], dtype=np.float64)
    return mean_estimate(sizes, n_boot=n_boot, level=level, seed=seed)
