"""Tests of the log metrics (metrics_core.logs): Drain3 templates, matching, parse rate, coverage, divergences."""

from __future__ import annotations

import re
import sys
from collections import Counter

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from metrics_core.bootstrap import Estimate, mean_estimate
from metrics_core.logs import (
    DRAIN3_MISSING,
    LOG_METRIC_NAMES,
    UNPARSED,
    LogTemplates,
    category_histograms,
    component_jsd,
    fit_log_templates,
    log_suite,
    match_templates,
    severity_jsd,
    template_coverage,
    template_histograms,
    template_jsd,
    template_parse_rate,
    tokenize,
)
from metrics_core.logs import templates as templates_module
from monitor.meta_evaluation.loop_logs import TEMPLATES, initial_generator, sample_lines


def raises_exactly(message: str, fn, *args, **kwargs) -> None:
    """``fn`` raises ValueError with exactly this one-line message."""
    with pytest.raises(ValueError) as info:
        fn(*args, **kwargs)
    assert str(info.value) == message
    assert "\n" not in message


def lines_of(p, n: int, seed: int) -> list[str]:
    """``n`` lines of the L9-log generator with template probabilities ``p`` (uniform parameter values)."""
    _, q = initial_generator()
    return sample_lines(np.asarray(p, dtype=float), q, n, np.random.default_rng(seed))


def regex_match(lines, templates: LogTemplates) -> np.ndarray:
    """Independent matcher: one anchored regex per template (re.escape of fixed tokens, \\S+ for <*>) over the
    whitespace-normalised masked line; of the matching templates the fewest wildcards, then lowest index."""
    regexes = [re.compile("^" + " ".join(r"\S+" if tok == "<*>" else re.escape(tok) for tok in t) + "$")
               for t in templates.templates]
    wildcards = [t.count("<*>") for t in templates.templates]
    out = []
    for line in lines:
        for regex, name in templates.masking:
            line = re.sub(regex, f"<{name}>", line)
        normalised = " ".join(line.split())
        hits = [(wildcards[i], i) for i, r in enumerate(regexes) if r.match(normalised)]
        out.append(min(hits)[1] if hits else -1)
    return np.array(out, dtype=np.int64)


SMALL = LogTemplates((("open", "<*>"), ("open", "log"), ("<*>", "<*>", "<*>"), ("close",)), (4, 2, 1, 1))


# ---------------------------------------------------------------- fitting


def test_fit_hand_case():
    lines = ["user bob logged in", "user amy logged in", "user amy logged out", "open file a.txt",
             "open file b.txt", "close all", "took 12 ms", "took 7 ms"]
    t = fit_log_templates(lines)
    # bob/amy differ in one of 4 tokens (similarity 3/4 >= 0.4): one template; "logged out" then shares 2 of the
    # 3 constant tokens of "user <*> logged in" (similarity 2/4): merged too, "in"/"out" becoming <*>.
    assert t.strings == ("user <*> logged <*>", "open file <*>", "close all", "took <*> ms")
    assert t.templates[0] == ("user", "<*>", "logged", "<*>")
    assert t.reference_counts == (3, 2, 1, 2) and t.n_reference == 8 and len(t) == 4
    assert (t.similarity_threshold, t.depth, t.masking) == (0.4, 4, ())
    # a threshold above 3/4 keeps bob and amy apart
    strict = fit_log_templates(lines[:2], similarity_threshold=0.8)
    assert strict.strings == ("user bob logged in", "user amy logged in") and strict.reference_counts == (1, 1)


def test_fit_with_masking_masks_round_lines_too():
    t = fit_log_templates(["took 12 ms", "took 7 ms", "took 7 s"], masking=[(r"\d+", "NUM")])
    assert t.strings == ("took <NUM> <*>",) and t.reference_counts == (3,)
    assert t.masking == ((r"\d+", "NUM"),)
    assert tokenize("  took 99   ms ", t.masking) == ("took", "<NUM>", "ms")
    assert match_templates(["took 99 hours", "took many ms", "took 1 2 ms"], t).tolist() == [0, -1, -1]


def test_fit_agrees_with_drain3_itself():
    """The templates are Drain3's clusters, in creation order, and every reference line parses."""
    from drain3.template_miner import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    reference = lines_of(initial_generator()[0], 400, seed=1)
    config = TemplateMinerConfig()
    miner = TemplateMiner(config=config)
    assigned = [miner.add_log_message(line)["cluster_id"] for line in reference]
    t = fit_log_templates(reference)
    assert t.strings == tuple(c.get_template() for c in miner.drain.clusters)
    assert len(t) == len(TEMPLATES)  # Drain recovers the generator's 14 templates
    index = match_templates(reference, t)
    assert (index >= 0).all()
    # here no template is more specific than another, so each line matches exactly the cluster it joined
    assert (index + 1).tolist() == [int(c) for c in assigned]
    assert t.reference_counts == tuple(c.size for c in miner.drain.clusters)


def test_a_template_no_reference_line_picks_is_dropped(monkeypatch):
    """Drain can leave a template whose lines a more specific one matches; fitting drops it."""
    class Cluster:
        def __init__(self, cluster_id, tokens):
            self.cluster_id, self.log_template_tokens = cluster_id, tuple(tokens)

    class Miner:
        def __init__(self, persistence_handler=None, config=None):
            self.drain = self
            self.clusters = [Cluster(2, ["a", "b"]), Cluster(1, ["a", "<*>"]), Cluster(3, ["c"])]

        def add_log_message(self, line):
            return {}

    real = templates_module._drain3()
    monkeypatch.setattr(templates_module, "_drain3", lambda: (real[0], Miner, real[2]))
    t = fit_log_templates(["a b", "a b", "c"])
    assert t.strings == ("a b", "c") and t.reference_counts == (2, 1)


def test_missing_drain3_is_one_import_error_line(monkeypatch):
    for name in ("drain3", "drain3.template_miner", "drain3.template_miner_config", "drain3.masking"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError) as info:
        fit_log_templates(["a b"])
    assert str(info.value) == DRAIN3_MISSING == "log rounds need drain3: pip install 'collapse-monitor[logs]'"
    # matching needs no drain3
    assert match_templates(["open x"], SMALL).tolist() == [0]


# ---------------------------------------------------------------- matching


def test_match_hand_case_most_specific_wins():
    lines = ["open x", "open log", "open  log ", "close x", "a b c", "open", "close", "open log now"]
    # "open log" matches templates 0 and 1 (and 2 is 3 tokens): 1 has no wildcard; whitespace is not a token
    assert match_templates(lines, SMALL).tolist() == [0, 1, 1, -1, 2, -1, 3, 2]
    tie = LogTemplates((("<*>", "b"), ("a", "<*>")), (1, 1))  # one wildcard each: the lower index
    assert match_templates(["a b", "x b", "a y"], tie).tolist() == [0, 0, 1]
    empty = LogTemplates(((), ("x",)), (1, 1))  # Drain's template of a blank line: zero tokens
    assert match_templates(["   ", "x"], empty).tolist() == [0, 1]


def test_match_random_vs_regex_matcher():
    rng = np.random.default_rng(3)
    vocab = ["a", "b", "c", "<*>", "x.y", "(z)", "*"]
    for _ in range(40):
        k = int(rng.integers(1, 12))
        templates = tuple(tuple(str(rng.choice(vocab)) for _ in range(int(rng.integers(1, 5)))) for _ in range(k))
        t = LogTemplates(templates, tuple(int(c) for c in rng.integers(1, 5, size=k)))
        lines = [" ".join(str(rng.choice(vocab[:3] + vocab[4:])) for _ in range(int(rng.integers(1, 5))))
                 for _ in range(200)]
        assert match_templates(lines, t).tolist() == regex_match(lines, t).tolist()


def test_match_masked_random_vs_regex_matcher():
    rng = np.random.default_rng(4)
    t = fit_log_templates(lines_of(initial_generator()[0], 300, seed=5),
                          masking=[(r"\d+\.\d+\.\d+\.\d+", "IP"), (r"\b\d+\b", "NUM")])
    assert any("<IP>" in s for s in t.strings) and any("<NUM>" in s for s in t.strings)
    lines = lines_of(rng.dirichlet(np.ones(len(TEMPLATES))), 300, seed=6) + ["INFO sshd: Connection closed by bob"]
    assert match_templates(lines, t).tolist() == regex_match(lines, t).tolist()


# ---------------------------------------------------------------- parse rate, coverage, JSD


def test_parse_rate_coverage_and_jsd_hand_case():
    lines = ["open x", "open log", "halt", "open y", "halt now"]
    # matches 0, 1, -1, 0, -1: 3 of 5 parse; templates 0 and 1 of 4 covered
    assert template_parse_rate(lines, SMALL).value == 0.6
    assert template_coverage(lines, SMALL) == 0.5
    r, q = template_histograms(lines, SMALL)
    assert r.tolist() == [2, 1, 0, 0, 2] and q.tolist() == [4, 2, 1, 1, 0]
    # r = (.4, .2, 0, 0, .4), q = (.5, .25, .125, .125, 0), m = (.45, .225, .0625, .0625, .2)
    kl_r = 0.4 * np.log2(0.4 / 0.45) + 0.2 * np.log2(0.2 / 0.225) + 0.4 * np.log2(0.4 / 0.2)
    kl_q = 0.5 * np.log2(0.5 / 0.45) + 0.25 * np.log2(0.25 / 0.225) + 2 * 0.125 * np.log2(0.125 / 0.0625)
    assert template_jsd(lines, SMALL) == pytest.approx(0.5 * kl_r + 0.5 * kl_q, abs=1e-12)
    assert template_jsd(["zzz"], SMALL) == 1.0 and template_parse_rate(["zzz"], SMALL).value == 0.0


def test_reference_against_itself():
    reference = lines_of(initial_generator()[0], 300, seed=7)
    t = fit_log_templates(reference)
    assert template_parse_rate(reference, t).value == 1.0
    assert template_coverage(reference, t) == 1.0
    assert template_jsd(reference, t) == 0.0


def test_coverage_and_jsd_random_vs_brute_force_and_scipy():
    rng = np.random.default_rng(8)
    reference = lines_of(initial_generator()[0], 400, seed=9)
    t = fit_log_templates(reference)
    for seed in range(15):
        p = rng.dirichlet(np.full(len(TEMPLATES), 0.3))
        lines = lines_of(p, int(rng.integers(1, 200)), seed=100 + seed)
        lines += ["garbage " * int(rng.integers(1, 3))] * int(rng.integers(0, 5))  # unseen formats
        index = regex_match(lines, t)
        assert template_parse_rate(lines, t).value == pytest.approx(float(np.mean(index >= 0)), abs=1e-15)
        covered = {i for i in index.tolist() if i >= 0}
        assert template_coverage(lines, t) == len(covered) / len(t)
        counts = Counter(index.tolist())
        r = [counts.get(i, 0) for i in range(len(t))] + [counts.get(-1, 0)]
        q = list(t.reference_counts) + [0]
        expected = jensenshannon(r, q, base=2) ** 2
        assert template_jsd(lines, t) == pytest.approx(expected, abs=1e-12)


def test_collapse_lowers_coverage_and_raises_jsd_and_unseen_formats_lower_parse_rate():
    p0, _ = initial_generator()
    t = fit_log_templates(lines_of(p0, 400, seed=10))
    coverage, jsd = [], []
    for keep in (14, 6, 3, 1):  # the generator narrows to its `keep` most common templates
        p = np.where(np.arange(len(p0)) < keep, p0, 0.0)
        p = p / p.sum()
        # sharper too: the head grows as the tail vanishes
        p = p ** (1 + (14 - keep) / 4)
        lines = lines_of(p / p.sum(), 200, seed=11)
        coverage.append(template_coverage(lines, t))
        jsd.append(template_jsd(lines, t))
    assert coverage[0] > 0.8 and all(a > b for a, b in zip(coverage, coverage[1:])), coverage
    assert coverage[-1] == 1 / len(t)
    assert jsd[0] < 0.05 and all(a < b for a, b in zip(jsd, jsd[1:])), jsd
    lines = lines_of(p0, 200, seed=12)
    rates = []
    for n_unseen in (0, 50, 150):
        invented = [f"NOTICE auth: token {i} refreshed for tenant {i % 7}" for i in range(n_unseen)]
        rates.append(template_parse_rate(lines + invented, t).value)
    assert rates[0] > 0.95 and rates[0] > rates[1] > rates[2], rates


# ---------------------------------------------------------------- severity and component


def test_category_jsd_hand_case():
    names, p, q = category_histograms(["INFO", None, "INFO", "WARN"], ["ERROR", "INFO"])
    assert names == ["ERROR", "INFO", "WARN", UNPARSED] and p.tolist() == [0, 2, 1, 1] and q.tolist() == [1, 1, 0, 0]
    # p = (0, 1/2, 1/4, 1/4), q = (1/2, 1/2, 0, 0), m = (1/4, 1/2, 1/8, 1/8): KL(p|m) = 1/2, KL(q|m) = 1/2
    assert severity_jsd(["INFO", None, "INFO", "WARN"], ["ERROR", "INFO"]) == pytest.approx(0.5, abs=1e-15)
    assert component_jsd(["sshd"], ["kernel"]) == 1.0
    assert component_jsd(["sshd", "db"], ["db", "sshd", "db", "sshd"]) == 0.0
    assert severity_jsd([None, None], [None]) == 0.0  # all unparsed on both sides: the same distribution
    assert severity_jsd(["INFO"], [None]) == 1.0


def test_category_jsd_random_vs_scipy():
    rng = np.random.default_rng(13)
    levels = ["DEBUG", "INFO", "WARN", "ERROR", None]
    for _ in range(30):
        a = [levels[i] for i in rng.integers(0, 5, size=int(rng.integers(1, 60)))]
        b = [levels[i] for i in rng.integers(0, 3, size=int(rng.integers(1, 60)))]
        support = sorted({v for v in a + b if v is not None}) + [None]
        expected = jensenshannon([a.count(v) for v in support], [b.count(v) for v in support], base=2) ** 2
        assert severity_jsd(a, b) == pytest.approx(expected, abs=1e-12)
        assert component_jsd(b, a) == pytest.approx(expected, abs=1e-12)


def test_category_jsd_rises_as_one_level_takes_over():
    p_ref = np.array([0.1, 0.6, 0.2, 0.1])
    levels = np.array(["DEBUG", "INFO", "WARN", "ERROR"])
    rng = np.random.default_rng(14)
    reference = levels[rng.choice(4, size=2000, p=p_ref)].tolist()
    values = []
    for share in (0.0, 0.5, 0.9, 1.0):  # share of the lines forced to INFO
        p = (1 - share) * p_ref + share * np.array([0, 1.0, 0, 0])
        values.append(severity_jsd(levels[rng.choice(4, size=2000, p=p)].tolist(), reference))
    assert values[0] < 0.01 and all(a < b for a, b in zip(values, values[1:])), values


# ---------------------------------------------------------------- bootstrap, suite, errors


def test_parse_rate_interval_is_the_bootstrap_of_its_indicators():
    t = fit_log_templates(lines_of(initial_generator()[0], 200, seed=15))
    lines = lines_of(initial_generator()[0], 150, seed=16) + ["odd line"] * 30
    est = template_parse_rate(lines, t, n_boot=200, seed=3)
    assert est == mean_estimate(match_templates(lines, t) >= 0, n_boot=200, seed=3)
    assert est.ci_low <= est.value <= est.ci_high and est.std_error > 0
    point = template_parse_rate(lines, t)
    assert point.value == est.value and (point.ci_low, point.ci_high, point.std_error) == (None, None, None)


def test_log_suite_matches_the_functions():
    reference = lines_of(initial_generator()[0], 300, seed=17)
    t = fit_log_templates(reference)
    lines = lines_of(initial_generator()[0], 100, seed=18) + ["garbled"]
    sev = [line.split(" ", 1)[0] for line in lines[:-1]] + [None]
    ref_sev = [line.split(" ", 1)[0] for line in reference]
    comp = [line.split(" ")[1].rstrip(":") for line in lines[:-1]] + [None]
    ref_comp = [line.split(" ")[1].rstrip(":") for line in reference]
    out = log_suite(lines, t, round_severity=sev, reference_severity=ref_sev, round_component=comp,
                    reference_component=ref_comp, n_boot=40, seed=2)
    assert list(out) == list(LOG_METRIC_NAMES)
    assert out["template_parse_rate"] == template_parse_rate(lines, t, n_boot=40, seed=2)
    assert out["template_coverage"] == Estimate(template_coverage(lines, t))
    assert out["template_jsd"] == Estimate(template_jsd(lines, t))
    assert out["severity_jsd"] == Estimate(severity_jsd(sev, ref_sev))
    assert out["component_jsd"] == Estimate(component_jsd(comp, ref_comp))
    assert out["severity_jsd"].value > 0
    bare = log_suite(lines, t, round_severity=sev, n_boot=0)  # no reference severity: left out
    assert list(bare) == ["template_parse_rate", "template_coverage", "template_jsd"]


def test_errors():
    raises_exactly("reference_lines: expected a non-empty list of str, got an empty list", fit_log_templates, [])
    raises_exactly("reference_lines[1]: expected str, got int", fit_log_templates, ["a", 3])
    raises_exactly("similarity_threshold: expected a number in [0, 1], got 1.5", fit_log_templates, ["a"],
                   similarity_threshold=1.5)
    raises_exactly("depth: expected an integer >= 3, got 2", fit_log_templates, ["a"], depth=2)
    raises_exactly("masking: expected None or a list of (regex, mask name) pairs, got str", fit_log_templates, ["a"],
                   masking=r"\d+")
    raises_exactly("masking[0]: expected a (regex, mask name) pair of str, got tuple", fit_log_templates, ["a"],
                   masking=[(r"\d+",)])
    raises_exactly("masking[0]: expected a mask name without whitespace, got 'A B'", fit_log_templates, ["a"],
                   masking=[(r"\d+", "A B")])
    raises_exactly("masking[0]: not a valid regular expression: missing ), unterminated subpattern at position 0",
                   fit_log_templates, ["a"], masking=[("(", "X")])
    raises_exactly("lines: expected a list of str, got a single str", match_templates, "open x", SMALL)
    raises_exactly("templates: expected metrics_core.logs.LogTemplates, got list", template_jsd, ["a"], [("a",)])
    raises_exactly("reference_counts: expected integers >= 0 with a positive sum, got (0, 0)", LogTemplates,
                   (("a",), ("b",)), (0, 0))
    raises_exactly("reference_counts: expected 2 counts to match templates", LogTemplates, (("a",), ("b",)), (1,))
    raises_exactly("templates[0]: expected a tuple of str tokens, got str", LogTemplates, ("a b",), (1,))
    raises_exactly("round_severity[1]: expected str or None, got int", severity_jsd, ["INFO", 3], ["INFO"])
    raises_exactly("reference_component: expected a non-empty list of str or None, got an empty list",
                   component_jsd, ["db"], [])
    raises_exactly("seed: expected an integer >= 0, got -1", log_suite, ["a"], SMALL, seed=-1)
    raises_exactly("n_boot: expected a non-negative integer, got -1", log_suite, ["a"], SMALL, n_boot=-1)
    with pytest.raises(AttributeError):
        SMALL.templates = ()  # frozen
