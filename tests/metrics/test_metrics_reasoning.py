"""Tests of the reasoning and code metrics (metrics_core.reasoning)."""

from __future__ import annotations

import itertools
import math
import warnings
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from metrics_core.bootstrap import Estimate, iter_bootstrap_counts
from metrics_core.reasoning import (
    acc_verify,
    answer_agreement,
    answers_match,
    distinct_answers_per_question,
    majority_answer,
    mean_pass_at_k,
    normalize_answer,
    pass_at_k,
    rationale_skeleton,
    self_consistency_accuracy,
    syntax_valid_indicator,
    syntax_valid_rate,
    template_collapse_indicator,
    template_collapse_rate,
)


def raises_exactly(message: str, fn, *args, **kwargs) -> None:
    """``fn`` raises ValueError with exactly this one-line message."""
    with pytest.raises(ValueError) as info:
        fn(*args, **kwargs)
    assert str(info.value) == message
    assert "\n" not in message


# Spellings of one value each: the random tests know the canonical value without normalize_answer.
SPELLINGS = {
    Fraction(1, 2): ["1/2", "0.5", "0.50", "5e-1", "$\\boxed{1/2}$", " .5 ", "0.5."],
    Fraction(-3): ["-3", "-3.0", "$-3$", "\\boxed{-3}", "-3.", "-30e-1"],
    Fraction(1234): ["1234", "1,234", "1,234.00", "\\boxed{1,234}", "$$1234$$"],
    "paris": ["Paris", "paris.", "  PARIS ", "$Paris$", "\\boxed{paris}"],
    "x + 1": ["x + 1", "X  +  1", "x + 1.", "\\boxed{x + 1}"],
}
CANONICAL = list(SPELLINGS)


def random_round(rng, n_questions: int, max_k: int):
    """Records (ids, answers) with 1..max_k samples per question, shuffled, and their canonical values."""
    ids, answers, values = [], [], []
    for q in range(n_questions):
        for _ in range(int(rng.integers(1, max_k + 1))):
            v = CANONICAL[int(rng.integers(len(CANONICAL)))]
            spellings = SPELLINGS[v]
            ids.append(f"q{q}")
            answers.append(spellings[int(rng.integers(len(spellings)))])
            values.append(v)
    order = rng.permutation(len(ids))
    return [ids[i] for i in order], [answers[i] for i in order], [values[i] for i in order]


# ---------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("1/2", Fraction(1, 2)),
        ("0.5", Fraction(1, 2)),
        ("0.50", Fraction(1, 2)),
        ("5e-1", Fraction(1, 2)),
        ("5E-1", Fraction(1, 2)),
        (".5", Fraction(1, 2)),
        ("-3", Fraction(-3)),
        ("-3.0", Fraction(-3)),
        ("+2", Fraction(2)),
        ("3 / 4", Fraction(3, 4)),
        ("-6/8", Fraction(-3, 4)),
        ("1,234,567", Fraction(1234567)),
        ("-12,345.5", Fraction(-24691, 2)),
        ("$42$", Fraction(42)),
        ("$$42$$", Fraction(42)),
        ("\\boxed{42}", Fraction(42)),
        (" $\\boxed{ 42. }$. ", Fraction(42)),
        ("42.", Fraction(42)),
        ("0.1", Fraction(1, 10)),  # exact: not the float 0.1
        ("1e3", Fraction(1000)),
        ("  The   Answer\n IS  Paris. ", "the answer is paris"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{a}+\\boxed{b}", "\\boxed{a}+\\boxed{b}"),  # two boxes: left alone
        ("$5", "$5"),  # a currency sign is no surrounding pair
        ("1,2", "1,2"),  # not grouped in threes: a list, not a number
        ("1/0", "1/0"),
        ("1_000", "1_000"),
        ("inf", "inf"),
        ("1e1001", "1e1001"),  # past MAX_EXPONENT
        ("", ""),
    ],
)
def test_normalize_answer_cases(answer, expected):
    got = normalize_answer(answer)
    assert got == expected and type(got) is type(expected)


def test_normalize_answer_huge_numbers_do_not_hang_or_raise():
    assert normalize_answer("1e1000") == 10**1000
    digits = "7" * 5000  # past Python's int() digit limit
    assert normalize_answer(digits) == digits
    assert normalize_answer(digits + "/3") == digits + "/3"


def test_answers_match():
    assert answers_match("1/2", "0.5") and answers_match("0.5", "0.50") and answers_match("5e-1", "1/2")
    assert answers_match("-3", "-3.0") and answers_match("$\\boxed{1,000}$", "1000")
    assert answers_match("Paris.", " paris ")
    assert not answers_match("3", "three") and not answers_match("1/2", "0.51")
    assert not answers_match("0.1", "0.1000000000000000055511151231257827")  # exact, not float
    raises_exactly("answer: expected str, got int", answers_match, 3, "3")


# ---------------------------------------------------------------- verified accuracy


def test_acc_verify_hand_case():
    ids = ["q1", "q1", "q2", "q3", "q3", "q3"]
    answers = ["0.5", "1/3", "Paris.", "$7$", "7.0", "8"]
    gold = {"q1": "1/2", "q2": "paris", "q3": "\\boxed{7}", "unused": "x"}
    # q1: 1 of 2, q2: 1 of 1, q3: 2 of 3 -> 4 of 6 records
    est = acc_verify(ids, answers, gold)
    assert isinstance(est, Estimate) and est.value == pytest.approx(4 / 6) and est.ci_low is None


def test_acc_verify_random_vs_loop():
    rng = np.random.default_rng(0)
    for _ in range(20):
        ids, answers, values = random_round(rng, int(rng.integers(1, 15)), 5)
        gold_values = {q: CANONICAL[int(rng.integers(len(CANONICAL)))] for q in set(ids)}
        gold = {q: SPELLINGS[v][int(rng.integers(len(SPELLINGS[v])))] for q, v in gold_values.items()}
        expected = sum(v == gold_values[q] for q, v in zip(ids, values)) / len(ids)
        assert acc_verify(ids, answers, gold).value == pytest.approx(expected, abs=1e-12)


def test_acc_verify_bootstrap_resamples_questions():
    ids = ["a", "a", "a", "b", "c", "c"]
    answers = ["1", "1", "2", "5", "x", "y"]
    gold = {"a": "1", "b": "4", "c": "x"}
    est = acc_verify(ids, answers, gold, n_boot=300, seed=3)
    correct, sizes = np.array([2.0, 0.0, 1.0]), np.array([3.0, 1.0, 2.0])
    reps = np.array([(w @ correct) / (w @ sizes) for w in iter_bootstrap_counts(3, 300, 3)])
    assert est.value == pytest.approx(0.5)
    assert est.ci_low == pytest.approx(np.quantile(reps, 0.025)) and est.ci_high == pytest.approx(np.quantile(reps, 0.975))
    assert est.std_error == pytest.approx(reps.std(ddof=1))


def test_acc_verify_errors():
    raises_exactly("gold: no gold answer for question_id 'q3'", acc_verify,
                   ["q1", "q3", "q2"], ["1", "2", "3"], {"q1": "1"})
    raises_exactly("gold: no gold answer for question_id 7", acc_verify, [7], ["1"], {"7": "1"})
    raises_exactly("gold: expected a mapping question_id -> gold answer, got list", acc_verify, ["q"], ["1"], ["1"])
    raises_exactly("gold['q']: expected str, got int", acc_verify, ["q"], ["1"], {"q": 1})
    raises_exactly("question_ids: expected a non-empty list of ids, got an empty list", acc_verify, [], [], {})
    raises_exactly("answers: expected a non-empty list of str, got an empty list", acc_verify, ["q"], [], {"q": "1"})
    raises_exactly("answers: expected 2 items to match question_ids, got 1", acc_verify, ["q", "q"], ["1"], {"q": "1"})
    raises_exactly("answers[1]: expected str, got int", acc_verify, ["q", "q"], ["1", 1], {"q": "1"})
    raises_exactly("question_ids[0]: expected a str or int id, got bool", acc_verify, [True], ["1"], {True: "1"})
    raises_exactly("question_ids: expected a list of ids, got a single str", acc_verify, "q", ["1"], {"q": "1"})


# ---------------------------------------------------------------- pass@k


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    """Share of all k-subsets of n samples (the first c correct) with at least one correct sample."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


def test_pass_at_k_hand_cases():
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # c/n at k = 1
    assert pass_at_k(4, 0, 3) == 0.0 and pass_at_k(4, 4, 1) == 1.0
    assert pass_at_k(5, 3, 3) == 1.0  # n - c < k: every 3-subset holds a correct sample
    assert pass_at_k(np.int64(6), np.int64(2), np.int64(6)) == 1.0


def test_pass_at_k_vs_all_subsets():
    for n in range(1, 10):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_large_n_vs_exact_binomials():
    rng = np.random.default_rng(1)
    for _ in range(50):
        n = int(rng.integers(100, 2000))
        c, k = int(rng.integers(0, n + 1)), int(rng.integers(1, 101))
        exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
        assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-9, abs=1e-12)


def test_mean_pass_at_k_hand_case():
    ids = ["a", "a", "a", "b", "b", "c"]
    correct = [True, False, False, False, False, True]
    # a: n=3, c=1 -> 1 - C(2,2)/C(3,2) = 2/3; b: n=2, c=0 -> 0; c: 1 sample < k, skipped
    assert mean_pass_at_k(ids, correct, 2).value == pytest.approx((2 / 3 + 0) / 2)
    assert mean_pass_at_k(ids, np.array(correct), 1).value == pytest.approx((1 / 3 + 0 + 1) / 3)


def test_mean_pass_at_k_random_vs_subsets():
    rng = np.random.default_rng(2)
    for _ in range(30):
        n_q = int(rng.integers(1, 8))
        sizes = rng.integers(1, 8, size=n_q)
        ids = [q for q in range(n_q) for _ in range(int(sizes[q]))]
        correct = (rng.random(len(ids)) < rng.random()).tolist()
        k = int(rng.integers(1, int(sizes.max()) + 1))
        expected = []
        for q in range(n_q):
            flags = [f for i, f in zip(ids, correct) if i == q]
            if len(flags) >= k:
                hits = [any(flags[j] for j in s) for s in itertools.combinations(range(len(flags)), k)]
                expected.append(sum(hits) / len(hits))
        assert mean_pass_at_k(ids, correct, k).value == pytest.approx(float(np.mean(expected)), abs=1e-12)


def test_pass_at_k_errors():
    raises_exactly("k: expected at most n=3 samples, got 4", pass_at_k, 3, 1, 4)
    raises_exactly("c: expected at most n=3 correct samples, got 4", pass_at_k, 3, 4, 1)
    raises_exactly("n: expected a positive integer, got 0", pass_at_k, 0, 0, 1)
    raises_exactly("c: expected an integer >= 0, got -1", pass_at_k, 3, -1, 1)
    raises_exactly("k: expected a positive integer, got 0", pass_at_k, 3, 1, 0)
    raises_exactly("k: expected a positive integer, got 1.0", pass_at_k, 3, 1, 1.0)
    raises_exactly("k: expected at most the largest number of samples of a question (2), got 3",
                   mean_pass_at_k, ["a", "a", "b"], [True, False, True], 3)
    raises_exactly("correct: expected 3 items to match question_ids, got 2", mean_pass_at_k, ["a"] * 3, [True] * 2, 1)
    raises_exactly("correct[1]: expected bool, got int", mean_pass_at_k, ["a", "a"], [True, 1], 1)
    raises_exactly("correct: expected a non-empty list of bool, got an empty list", mean_pass_at_k, ["a"], [], 1)
    raises_exactly("question_ids: expected a non-empty list of ids, got an empty tuple", mean_pass_at_k, (), [True], 1)


# ---------------------------------------------------------------- syntax validity


def test_syntax_valid_rate_hand_case(tmp_path):
    marker = tmp_path / "ran"
    sources = [
        "def f(x):\n    return x + 1\n",
        "print(",
        f"open({str(marker)!r}, 'w').write('x')\nraise SystemExit(3)",  # valid; would leave a file if run
        "",  # an empty module
        "x = '\\d'",  # an invalid escape: a DeprecationWarning (SyntaxWarning from 3.12), still valid
        "a\0b",
        "(" * 300 + ")" * 300,  # too deeply nested for the parser
        "-" * 200_000 + "1",  # the parser's stack overflows (MemoryError)
        "class A:\npass",
        "return 1",  # only the compiler refuses it: valid here
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the invalid escape's warning does not leak
        flags = syntax_valid_indicator(sources).tolist()
    assert flags == [True, False, True, True, True, False, False, False, False, True]
    assert syntax_valid_rate(sources).value == pytest.approx(5 / 10)
    assert not marker.exists()


def test_syntax_valid_rate_random_vs_compile():
    rng = np.random.default_rng(4)
    base = "def f(a, b=2):\n    if a > b:\n        return [a * i for i in range(b)]\n    return {'a': (a, b)}\n"
    sources = []
    for _ in range(300):  # delete or duplicate a few random characters
        chars = list(base)
        for _ in range(int(rng.integers(0, 3))):
            i = int(rng.integers(len(chars)))
            if rng.random() < 0.5:
                del chars[i]
            else:
                chars.insert(i, chars[i])
        sources.append("".join(chars))
    expected = []
    for src in sources:
        try:
            compile(src, "<src>", "exec", flags=0x400, dont_inherit=True)  # ast.PyCF_ONLY_AST
            expected.append(True)
        except SyntaxError:
            expected.append(False)
    assert 0 < sum(expected) < len(expected)
    assert syntax_valid_indicator(sources).tolist() == expected
    assert syntax_valid_rate(sources).value == pytest.approx(np.mean(expected))


def test_syntax_valid_rate_errors():
    raises_exactly("language: expected one of 'python', 'javascript', got 'rust'", syntax_valid_rate, ["fn main() {}"], "rust")
    raises_exactly("sources: expected a non-empty list of str, got an empty list", syntax_valid_rate, [])
    raises_exactly("sources[0]: expected str, got bytes", syntax_valid_rate, [b"x = 1"])


# ---------------------------------------------------------------- self-consistency, agreement, distinct answers


def test_self_consistency_hand_case():
    ids = ["q1", "q1", "q1", "q2", "q2", "q3", "q3", "q3", "q3"]
    answers = ["2", "2.0", "3", "x", "y", "7", "8", "$8$", "7."]
    gold = {"q1": "2", "q2": "y", "q3": "8"}
    # q1: 2 (2 votes) right; q2: tie x/y -> x (first) wrong; q3: tie 7/8 -> 7 (first) wrong
    assert self_consistency_accuracy(ids, answers, gold).value == pytest.approx(1 / 3)
    assert majority_answer([normalize_answer(a) for a in ["y", "x", "x", "y"]]) == "y"


def test_self_consistency_random_vs_counter():
    rng = np.random.default_rng(5)
    for _ in range(30):
        ids, answers, values = random_round(rng, int(rng.integers(1, 12)), 6)
        gold_values = {q: CANONICAL[int(rng.integers(len(CANONICAL)))] for q in set(ids)}
        gold = {q: SPELLINGS[v][0] for q, v in gold_values.items()}
        by_q: dict = {}
        for q, v in zip(ids, values):
            by_q.setdefault(q, []).append(v)
        # most_common keeps first-insertion order among equal counts: the earliest tied answer
        expected = np.mean([Counter(vs).most_common(1)[0][0] == gold_values[q] for q, vs in by_q.items()])
        assert self_consistency_accuracy(ids, answers, gold).value == pytest.approx(expected)


def test_answer_agreement_hand_case():
    ids = ["q1"] * 4 + ["q2"] * 3 + ["q3"]
    answers = ["1", "1.0", "1/1", "2", "a", "b", "c", "z"]
    # q1: classes {3, 1} -> 3*2 / (4*3) = 1/2; q2: 0; q3: one sample, skipped
    assert answer_agreement(ids, answers).value == pytest.approx(0.25)


def test_answer_agreement_random_vs_pair_loops():
    rng = np.random.default_rng(6)
    for _ in range(30):
        ids, answers, values = random_round(rng, int(rng.integers(1, 12)), 6)
        ids, answers, values = ids + ["extra", "extra"], answers + ["1", "2"], values + [1, 2]
        by_q: dict = {}
        for q, v in zip(ids, values):
            by_q.setdefault(q, []).append(v)
        shares = []
        for vs in by_q.values():
            if len(vs) >= 2:
                pairs = [(i, j) for i in range(len(vs)) for j in range(i + 1, len(vs))]
                shares.append(sum(vs[i] == vs[j] for i, j in pairs) / len(pairs))
        assert answer_agreement(ids, answers).value == pytest.approx(np.mean(shares), abs=1e-12)


def test_distinct_answers_hand_and_random():
    ids = ["q1", "q1", "q1", "q2", "q2", "q3"]
    assert distinct_answers_per_question(ids, ["1", "1.0", "2", "a", "A.", "z"]).value == pytest.approx((2 + 1 + 1) / 3)
    rng = np.random.default_rng(7)
    for _ in range(30):
        ids, answers, values = random_round(rng, int(rng.integers(1, 12)), 6)
        expected = np.mean([len({v for i, v in zip(ids, values) if i == q}) for q in set(ids)])
        assert distinct_answers_per_question(ids, answers).value == pytest.approx(expected)


def test_consistency_metrics_errors():
    raises_exactly("question_ids: expected a question with at least 2 samples, got 1 sample for each of 2 questions",
                   answer_agreement, ["a", "b"], ["1", "2"])
    raises_exactly("gold: no gold answer for question_id 'b'", self_consistency_accuracy, ["a", "b"], ["1", "2"], {"a": "1"})
    raises_exactly("answers: expected 1 items to match question_ids, got 2", distinct_answers_per_question, ["a"], ["1", "2"])
    raises_exactly("question_ids: expected a non-empty list of ids, got an empty list", answer_agreement, [], [])
    raises_exactly("answers: expected a list of str, got a single str", distinct_answers_per_question, ["a"], "1")


def test_per_question_bootstrap_intervals():
    rng = np.random.default_rng(8)
    ids, answers, values = random_round(rng, 40, 5)
    gold = {q: "1/2" for q in set(ids)}
    for est in (self_consistency_accuracy(ids, answers, gold, n_boot=200, seed=1),
                answer_agreement(ids, answers, n_boot=200, seed=1),
                distinct_answers_per_question(ids, answers, n_boot=200, seed=1),
                acc_verify(ids, answers, gold, n_boot=200, seed=1)):
        assert est.ci_low <= est.value <= est.ci_high and est.std_error > 0


# ---------------------------------------------------------------- template collapse


def test_rationale_skeleton_hand_cases():
    assert rationale_skeleton("Tom has 3 apples. He gives 1,000 to Ann!\nTotal: 2.5") == \
        "tom has <num> apples. he gives <num> to <name>! total: <num>"
    assert rationale_skeleton("So  Bob   pays -4/5 of it?  Yes, I do.") == "so <name> pays -<num>/<num> of it? yes, <name> do."
    assert rationale_skeleton("x2 = 3x") == "x<num> = <num>x"
    assert rationale_skeleton("") == ""
    raises_exactly("rationale: expected str, got NoneType", rationale_skeleton, None)


def test_template_collapse_hand_case():
    rationales = [f"First, {name} buys {k} pens at {p} each, so {name} pays {k * p}."
                  for name, k, p in [("Ann", 2, 3), ("Bob", 4, 5), ("Cy", 1, 9), ("Dee", 7, 2)]]
    rationales += [f"Let y = {i}." for i in range(3)]
    rationales += [f"we need case {w} here" for w in "abcde"]
    # N = 12, tau N = 1.2: the 4 and the 3 skeletons are shared (> 1.2), the 5 unique ones not
    assert template_collapse_indicator(rationales).tolist() == [True] * 7 + [False] * 5
    assert template_collapse_rate(rationales).value == pytest.approx(7 / 12)
    # tau N = 3.6: only the 4-rationale template exceeds it
    assert template_collapse_rate(rationales, threshold=0.3).value == pytest.approx(4 / 12)
    # tau N = 3 exactly: "more than" is strict
    assert template_collapse_rate(rationales, threshold=0.25).value == pytest.approx(4 / 12)
    # 0.29 * 100 is 28.999999999999996 in floats; the threshold is taken as 29/100, so 29 copies are not more
    copies = [f"Pay {k}." for k in range(29)] + [f"case {i // 26} {chr(97 + i % 26)}" for i in range(71)]
    assert template_collapse_rate(copies, threshold=0.29).value == 0.0
    assert template_collapse_rate(copies, threshold=0.28).value == pytest.approx(0.29)
    assert template_collapse_rate(rationales[:4] + [f"case {w}" for w in "abcdefghijklmnop"], threshold=0.2).value == 0.0


def simple_skeleton(text: str) -> str:
    """Skeleton of space-separated generated text: numbers -> <num>, capitalised non-initial words -> <name>."""
    out, start = [], True
    for tok in text.split():
        core, tail = tok.rstrip("."), tok[len(tok.rstrip(".")):]
        if core.isdigit():
            out.append("<num>" + tail)
        elif core[0].isupper() and not start:
            out.append("<name>" + tail)
        else:
            out.append(core.lower() + tail)
        start = tok.endswith(".")
    return " ".join(out)


def test_template_collapse_random_vs_dict_count():
    rng = np.random.default_rng(9)
    names = ["Ann", "Bob", "Cy", "Dee", "Eve"]
    words = ["we", "add", "the", "total", "then", "so", "it", "is", "cost", "each", "apples"]
    mixed = 0
    for trial in range(40):
        # a template fixes each slot's kind (word, number, name); instances fill numbers and names at random
        templates = [[(int(rng.integers(3)), str(rng.choice(words))) for _ in range(int(rng.integers(2, 6)))]
                     for _ in range(int(rng.integers(1, 8)))]
        weights = rng.dirichlet(np.ones(len(templates)))
        rationales = []
        for _ in range(int(rng.integers(1, 80))):
            tpl = templates[int(rng.choice(len(templates), p=weights))]
            sentence = [w if kind == 0 else str(int(rng.integers(0, 1000))) if kind == 1 else str(rng.choice(names))
                        for kind, w in tpl]
            text = " ".join(sentence)
            text = text[0].upper() + text[1:] + "."  # not str.capitalize(): it lowercases the names
            if rng.random() < 0.3:  # a free second sentence: mostly a unique skeleton
                text += " " + " ".join(str(rng.choice(words)) for _ in range(3)).capitalize() + "."
            rationales.append(text)
        threshold = float(rng.choice([0.05, 0.1, 0.2, 0.25, 0.3, 0.5]))
        skeletons = [simple_skeleton(r) for r in rationales]
        assert skeletons == [rationale_skeleton(r) for r in rationales]
        counts: dict = {}
        for s in skeletons:
            counts[s] = counts.get(s, 0) + 1
        t100 = round(threshold * 100)  # exact: count > threshold * N  <=>  100 count > t100 N
        expected = [100 * counts[s] > t100 * len(rationales) for s in skeletons]
        assert template_collapse_indicator(rationales, threshold).tolist() == expected, trial
        assert template_collapse_rate(rationales, threshold).value == pytest.approx(np.mean(expected))
        mixed += 0 < sum(expected) < len(expected)
    assert mixed >= 20  # most trials have both collapsed and free rationales


def test_template_collapse_errors():
    raises_exactly("threshold: expected a number in (0, 1), got 1.5", template_collapse_rate, ["a"], 1.5)
    raises_exactly("threshold: expected a number in (0, 1), got 0", template_collapse_rate, ["a"], 0)
    raises_exactly("rationales: expected a non-empty list of str, got an empty list", template_collapse_rate, [])
    raises_exactly("rationales[1]: expected str, got float", template_collapse_rate, ["a", 1.0])


# --- syntax_valid_rate on JavaScript (tree-sitter), against esprima ------------------------------------------

JS_VALID = ["function add(a, b) { return a + b; }", "var x = [1, 2, 3].map(function (v) { return v * 2; });",
            "if (n > 1) { n = n - 1; } else { n = 0; }", "for (var i = 0; i < 3; i++) { console.log(i); }",
            "var o = {a: 1, 'b': [true, null]};", "while (k) { k = k.next; }", ""]
JS_BROKEN = ["function add(a, b) { return a + b; ", "var x = ;", "if (n > 1 { n = 0; }", "for (var i = 0; i < 3 i++) {}",
             "var o = {a: 1 b: 2};", "return return;"]


def test_javascript_syntax_valid_rate_hand_computed():
    from metrics_core.reasoning import syntax_valid_rate

    assert syntax_valid_rate(JS_VALID + JS_BROKEN, "javascript").value == pytest.approx(7 / 13)
    assert syntax_valid_rate(JS_VALID, "javascript").value == 1.0
    with pytest.raises(ValueError, match="language"):
        syntax_valid_rate(JS_VALID, "ruby")


def test_javascript_syntax_agrees_with_esprima_on_random_es5_programs():
    """An independent parser (esprima, a port of the reference ECMAScript parser) on generated ES5 programs and
    their random truncations and deletions."""
    import esprima

    from metrics_core.reasoning.generations import syntax_valid_indicator

    rng = np.random.default_rng(11)
    sources = []
    for _ in range(200):
        program = " ".join(rng.choice(JS_VALID[:-1], size=int(rng.integers(1, 4))))
        cut = rng.integers(3)
        if cut == 1:  # a truncation
            program = program[: int(rng.integers(1, len(program)))]
        elif cut == 2:  # a character deleted
            i = int(rng.integers(len(program)))
            program = program[:i] + program[i + 1:]
        sources.append(program)

    def esprima_ok(src):
        try:
            esprima.parseScript(src)
            return True
        except esprima.Error:
            return False

    ours = syntax_valid_indicator(sources, "javascript").tolist()
    theirs = [esprima_ok(s) for s in sources]
    agree = sum(a == b for a, b in zip(ours, theirs))
    assert 0.3 < sum(theirs) / len(theirs) < 0.9  # both kinds present
    assert agree >= 0.97 * len(sources)  # tree-sitter recovers where esprima's early errors fire, rarely


def test_javascript_syntax_valid_rate_falls_as_programs_are_truncated():
    from metrics_core.reasoning import syntax_valid_rate

    rng = np.random.default_rng(2)
    programs = [" ".join(rng.choice(JS_VALID[:-1], size=3)) for _ in range(100)]

    def round_(share_truncated):
        return [p[: len(p) // 2] if rng.random() < share_truncated else p for p in programs]

    rates = [syntax_valid_rate(round_(s), "javascript").value for s in (0.0, 0.3, 0.8)]
    assert rates[0] == 1.0 and rates[0] > rates[1] > rates[2]
