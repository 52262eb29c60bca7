r"""Metrics of generated programs and rationales: pass@k, syntax validity, template collapse.

Part of :mod:`metrics_core.reasoning` (its docstring states the round's layout and the uncertainty rules).
Generated code is parsed, never executed.
"""

from __future__ import annotations

import ast
import re
import warnings
from fractions import Fraction

import numpy as np

from metrics_core._checks import (
    _check_choice,
    _check_flags,
    _check_fraction,
    _check_ids,
    _check_int,
    _check_positive_int,
    _check_same_length,
    _check_texts,
)
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, mean_estimate

SUPPORTED_LANGUAGES = ("python", "javascript")
CODE_EXTRA_HINT = "pip install 'collapse-monitor[code]'"
DEFAULT_TEMPLATE_THRESHOLD = 0.10
NUM_MASK = "<num>"
NAME_MASK = "<name>"
#: Numbers (digit runs with inner ``.`` or ``,``: ``3``, ``3.5``, ``1,000``) and words (letters, inner apostrophes).
_SKELETON_TOKEN_RE = re.compile(r"(?P<num>\d+(?:[.,]\d+)*)|(?P<word>[^\W\d_]+(?:'[^\W\d_]+)*)")
_SENTENCE_END = frozenset(".!?\n")


def pass_at_k(n: int, c: int, k: int) -> float:
    r"""Unbiased pass@k of one problem (Chen et al. 2021, "Evaluating Large Language Models Trained on Code", §2.1).

    From :math:`n` samples of which :math:`c` are correct, the probability that at least one of
    :math:`k` samples drawn without replacement is correct:

    .. math::
        \text{pass@}k = 1 - \frac{\binom{n-c}{k}}{\binom{n}{k}}
                      = 1 - \prod_{i=n-c+1}^{n} \Big(1 - \frac{k}{i}\Big),

    the product form of the paper's numerically stable implementation (no huge binomials);
    1 exactly when :math:`n - c < k`. Range [0, 1], higher is better.

    Args:
        n: samples of the problem (``int`` >= 1).
        c: correct samples (``int``, 0 <= c <= n).
        k: the budget (``int``, 1 <= k <= n).

    Example:
        >>> round(pass_at_k(10, 3, 1), 12), pass_at_k(4, 1, 2), pass_at_k(5, 4, 2)  # c/n at k=1
        (0.3, 0.5, 1.0)
    """
    n = _check_positive_int(n, "n")
    c = _check_int(c, "c", 0)
    k = _check_positive_int(k, "k")
    if c > n:
        raise ValueError(f"c: expected at most n={n} correct samples, got {c}")
    if k > n:
        raise ValueError(f"k: expected at most n={n} samples, got {k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def mean_pass_at_k(
    question_ids, correct, k: int, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0
) -> Estimate:
    r"""Mean unbiased pass@k over the problems with at least :math:`k` samples (Chen et al. 2021; survey §3.3).

    .. math:: \text{pass@}k = \frac{1}{|Q_k|} \sum_{q \in Q_k} \Big(1 - \binom{n_q - c_q}{k} \Big/ \binom{n_q}{k}\Big),

    :math:`n_q` the records of problem :math:`q`, :math:`c_q` the correct ones
    (:func:`pass_at_k`), :math:`Q_k = \{q : n_q \ge k\}`: problems with fewer samples are
    skipped (ValueError when every one has). Range [0, 1], higher is better. The interval
    resamples problems.

    Args:
        question_ids: ``[N]`` problem ids (``str`` or ``int``), one per sample.
        correct: ``[N]`` ``bool``: whether the sample is correct (passed the tests, matched gold).
        k: the budget (``int`` >= 1).
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> mean_pass_at_k(["a", "a", "b", "b", "c"], [True, False, False, False, True], 2).value  # c: 1 sample
        0.5
    """
    ids = _check_ids(question_ids)
    flags = _check_flags(correct, "correct")
    _check_same_length(len(ids), len(flags), "question_ids", "correct")
    k = _check_positive_int(k, "k")
    n_c: dict = {}
    for q, f in zip(ids, flags.tolist()):
        n, c = n_c.get(q, (0, 0))
        n_c[q] = (n + 1, c + f)
    values = [pass_at_k(n, c, k) for n, c in n_c.values() if n >= k]
    if not values:
        most = max(n for n, _ in n_c.values())
        raise ValueError(f"k: expected at most the largest number of samples of a question ({most}), got {k}")
    return mean_estimate(np.array(values), n_boot=n_boot, level=level, seed=seed)


def _javascript_parser():
    """A tree-sitter parser of JavaScript (the kept ``tree-sitter`` and ``tree-sitter-javascript`` packages)."""
    try:
        import tree_sitter
        import tree_sitter_javascript
    except ImportError:
        raise ImportError(f"JavaScript syntax needs tree-sitter: {CODE_EXTRA_HINT}") from None
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_javascript.language()))


def syntax_valid_indicator(sources, language: str = "python") -> np.ndarray:
    """``[N]`` bool: source ``i`` parses (Python: :func:`ast.parse`, which compiles to a syntax tree and runs nothing;
    JavaScript: tree-sitter's JavaScript grammar, the source valid when its syntax tree holds no error or missing
    node).

    Example:
        >>> syntax_valid_indicator(["x = 1", "def f(:", ""]).tolist()
        [True, False, True]
        >>> syntax_valid_indicator(["const f = (a) => a * 2;", "let a = ;"], "javascript").tolist()
        [True, False]
    """
    _check_choice(language, "language", SUPPORTED_LANGUAGES)
    sources = _check_texts(sources, "sources")
    out = np.zeros(len(sources), dtype=bool)
    if language == "javascript":
        parser = _javascript_parser()
        for i, src in enumerate(sources):
            out[i] = not parser.parse(src.encode("utf-8")).root_node.has_error
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid-escape warnings ("\d") say nothing about validity
        for i, src in enumerate(sources):
            try:
                ast.parse(src)
            # ValueError: a null byte (3.11); RecursionError, MemoryError: nesting too deep for the parser
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue
            out[i] = True
    return out


def syntax_valid_rate(
    sources, language: str = "python", *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0
) -> Estimate:
    r"""Share of generated programs that are syntactically valid (survey §3.3 code validity).

    .. math:: \text{SyntaxValid} = \frac1N \sum_{i=1}^N 1[\mathrm{parse}(s_i) \text{ succeeds}],

    with Python's own parser (:func:`ast.parse`, the grammar of the running interpreter; the
    code is compiled to a syntax tree only, never executed). Errors the compiler finds only after
    parsing (``return`` or ``break`` outside their block, a repeated parameter name) are not
    counted. JavaScript is parsed with tree-sitter's JavaScript grammar (Brunsfeld et al.,
    tree-sitter; the ``code`` extra): a source is valid when its syntax tree has no error or
    missing node (tree-sitter recovers from errors, so early errors a JavaScript engine reports
    after parsing, such as a duplicate ``let``, are not counted either). Sources are parsed as given: strip markdown fences before. An empty source parses
    (an empty module). Range [0, 1], higher is better. The interval bootstraps the mean of the per-source indicators.

    Args:
        sources: ``[N]`` program texts (``str``).
        language: ``"python"`` or ``"javascript"`` (others raise ValueError).
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> syntax_valid_rate(["def f(x):\n    return x", "print(", "import os"]).value
        0.6666666666666666
    """
    return mean_estimate(syntax_valid_indicator(sources, language), n_boot=n_boot, level=level, seed=seed)


def rationale_skeleton(rationale: str) -> str:
    r"""The template of a rationale: numbers and names masked, whitespace collapsed, lowercased.

    Tokens are found with ``\d+([.,]\d+)*`` (numbers: ``3``, ``3.5``, ``1,000``) and
    ``[^\W\d_]+('[^\W\d_]+)*`` (words: runs of letters with inner apostrophes); the text
    between tokens (punctuation, operators, signs) is kept as is. Then

    * every number becomes ``<num>`` (``-3`` becomes ``-<num>``, ``3/4`` ``<num>/<num>``);
    * every capitalised word (first character uppercase, so ``I`` and ``GCD`` too) that does
      not start a sentence becomes ``<name>``; a word starts a sentence when it is the first
      token or the text since the previous token holds ``.``, ``!``, ``?`` or a newline;
    * other words are kept; the result is ``" ".join(text.split()).lower()``.

    Example:
        >>> rationale_skeleton("Tom has 3 apples. He buys 2.5 more from Ann!\nTotal: 1,000 (-2)")
        'tom has <num> apples. he buys <num> more from <name>! total: <num> (-<num>)'
    """
    if not isinstance(rationale, str):
        raise ValueError(f"rationale: expected str, got {type(rationale).__name__}")
    parts = []
    end = 0
    for m in _SKELETON_TOKEN_RE.finditer(rationale):
        gap = rationale[end:m.start()]
        at_start = end == 0 or not _SENTENCE_END.isdisjoint(gap)
        parts.append(gap)
        word = m["word"]
        if word is None:
            parts.append(NUM_MASK)
        else:
            parts.append(NAME_MASK if word[0].isupper() and not at_start else word)
        end = m.end()
    parts.append(rationale[end:])
    return " ".join("".join(parts).split()).lower()


def template_collapse_indicator(rationales, threshold: float = DEFAULT_TEMPLATE_THRESHOLD) -> np.ndarray:
    """``[N]`` bool: rationale ``i``'s skeleton is shared by more than ``threshold * N`` rationales of the round.

    Example:
        >>> template_collapse_indicator(["A is 1.", "A is 2.", "B is 3.", "No."], threshold=0.25).tolist()
        [True, True, False, False]
    """
    rationales = _check_texts(rationales, "rationales")
    # the decimal the threshold prints as (0.29 is 29/100): "more than threshold * N" compares exactly
    limit = Fraction(repr(_check_fraction(threshold, "threshold"))) * len(rationales)
    skeletons = [rationale_skeleton(r) for r in rationales]
    counts: dict[str, int] = {}
    for s in skeletons:
        counts[s] = counts.get(s, 0) + 1
    return np.array([counts[s] > limit for s in skeletons], dtype=bool)


def template_collapse_rate(
    rationales,
    threshold: float = DEFAULT_TEMPLATE_THRESHOLD,
    *,
    n_boot: int = 0,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Estimate:
    r"""Template collapse: share of rationales whose skeleton is one a large part of the round shares (survey §3.2).

    With :math:`s_i` the skeleton of rationale :math:`i` (:func:`rationale_skeleton`: numbers
    and names masked) and :math:`m(s) = |\{j : s_j = s\}|`,

    .. math:: \text{TemplateCollapse}_\tau = \frac1N \sum_{i=1}^N 1\big[m(s_i) > \tau N\big].

    A round whose reasoning is one template with the numbers and names swapped scores near 1;
    diverse reasoning near 0. Range [0, 1], lower is better. With :math:`N \le 1/\tau` every
    skeleton, even a unique one, exceeds :math:`\tau N` and the rate is 1: use rounds of more
    than :math:`1/\tau` rationales (10 for the default). Like the exact-duplicate rate, the
    interval bootstraps the mean of the fixed per-rationale indicators.

    Args:
        rationales: ``[N]`` rationale texts (``str``).
        threshold: :math:`\tau` in (0, 1), default 0.10, taken as the decimal it prints as.
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> template = [f"So {name} pays {k} dollars." for name, k in zip("ABCDEF", range(6))]  # 6 of 20 > 2
        >>> template_collapse_rate(template + [f"case {w}" for w in "abcdefghijklmn"]).value
        0.3
    """
    indicator = template_collapse_indicator(rationales, threshold)
    return mean_estimate(indicator, n_boot=n_boot, level=level, seed=seed)
