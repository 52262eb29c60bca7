"""Tests for the L4 text loop (meta_evaluation/textloop.py, ngram.py, ngram_truth.py) and its shipped WordNet corpus."""

from __future__ import annotations

import collections
import gzip
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from metrics_core.text import distinct_n, tokenize
from monitor.meta_evaluation import ngram as N
from monitor.meta_evaluation import ngram_truth as G
from monitor.meta_evaluation import textloop as T
from monitor.meta_evaluation.trace import LoopTrace

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "monitor" / "data"
# Small but real: the shipped corpus with a few hundred training glosses keeps each run well under a second.
SMALL = dict(n_train=200, n_samples=600, n_audit=60, n_reference=60)
CAT_CORPUS = ["the cat sat", "the cat ran", "the dog sat"]


def _tiny(texts=CAT_CORPUS, order=2):
    enc = N.encode_corpus(texts)
    return enc, N.fit_ngram(enc.sentences, len(enc.vocabulary), order=order)


# --------------------------------------------------------------------------
# The shipped corpus
# --------------------------------------------------------------------------


def test_loader_reads_the_shipped_file():
    glosses = N.load_wordnet_glosses()
    assert len(glosses) == 20_000
    assert len(set(glosses)) == 20_000  # deduplicated
    assert all(g and g == g.strip() and "  " not in g for g in glosses)  # no empty lines or stray spaces
    assert all(g.isascii() and g == g.lower() and '"' not in g and "`" not in g for g in glosses)
    assert list(glosses) == sorted(glosses)
    lengths = [len(tokenize(g)) for g in glosses]
    assert min(lengths) >= 3 and max(lengths) <= 40
    # Plain English: the commonest words of English definitions lead the ranking.
    top = [w for w, _ in collections.Counter(t for g in glosses for t in tokenize(g)).most_common(8)]
    assert {"of", "a", "the", "or", "to", "and"} <= set(top)
    # The file on disk is what the loader returns (one gloss per line, newline-terminated).
    raw = gzip.decompress((DATA / "wordnet_glosses.txt.gz").read_bytes()).decode("ascii")
    assert raw == "\n".join(glosses) + "\n"
    assert (DATA / "wordnet_glosses.txt.gz").stat().st_size < 1_000_000


def test_license_and_readme_ship_with_the_corpus():
    license_text = (DATA / "WORDNET_LICENSE").read_text(encoding="utf-8")
    assert "License: WordNet3.0" in license_text
    assert "WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved." in license_text
    assert "Princeton University and LICENSEE agrees to preserve same." in license_text
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    assert "wordnet-base" in readme and "1:3.0-37" in readme and "WORDNET_LICENSE" in readme


def _corpus_script():
    spec = importlib.util.spec_from_file_location("make_wordnet_corpus", REPO / "scripts" / "make_wordnet_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gloss_cleaning_rule():
    clean = _corpus_script().clean_definition
    assert clean('a whole (a thing or person) of the same kind; "lard was used"  ') == (
        "a whole (a thing or person) of the same kind")
    assert clean('a report (e.g., "he said `I am a fool\'")') == "a report"
    assert clean("Reveal in  private; tell confidentially  ") == "reveal in private; tell confidentially"


@pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").exists(), reason="Debian wordnet-base not installed")
def test_script_rebuilds_the_shipped_files_byte_for_byte(tmp_path):
    _corpus_script().main(["--out-dir", str(tmp_path)])
    assert (tmp_path / "wordnet_glosses.txt.gz").read_bytes() == (DATA / "wordnet_glosses.txt.gz").read_bytes()
    assert (tmp_path / "WORDNET_LICENSE").read_bytes() == (DATA / "WORDNET_LICENSE").read_bytes()
    # And the license is a verbatim prefix of the package's copyright file.
    copyright_file = Path("/usr/share/doc/wordnet-base/copyright").read_bytes()
    assert copyright_file.startswith((DATA / "WORDNET_LICENSE").read_bytes())


# --------------------------------------------------------------------------
# The n-gram model on hand-made corpora
# --------------------------------------------------------------------------


def test_bigram_mle_by_hand():
    enc, model = _tiny()
    p = lambda h: N.conditional_probabilities(model, h, enc.vocabulary)  # noqa: E731
    # c(<s>, the) = 3 of 3 starts; c(the, cat) = 2, c(the, dog) = 1; c(cat, sat) = c(cat, ran) = 1.
    assert p(["<s>"]) == {"the": 1.0}
    assert p(["the"]) == pytest.approx({"cat": 2 / 3, "dog": 1 / 3})
    assert p(["cat"]) == pytest.approx({"sat": 0.5, "ran": 0.5})
    assert p(["dog"]) == {"sat": 1.0}
    assert p(["sat"]) == {"</s>": 1.0}
    assert p(["unicorn"]) == {}
    # Two-word corpus of the brief: "a b", "a c" gives P(b | a) = 0.5.
    enc2, model2 = _tiny(["a b", "a c"])
    assert N.conditional_probabilities(model2, ["a"], enc2.vocabulary) == {"b": 0.5, "c": 0.5}


def test_tempered_probabilities_by_hand():
    enc, model = _tiny()
    # tau = 0.5 squares the counts: P(cat | the) = 2^2 / (2^2 + 1^2) = 0.8.
    squared = N.conditional_probabilities(model, ["the"], enc.vocabulary, tau=0.5)
    assert squared == pytest.approx({"cat": 0.8, "dog": 0.2})
    # tau = 2 takes square roots: sqrt(2) / (sqrt(2) + 1).
    assert N.conditional_probabilities(model, ["the"], enc.vocabulary, tau=2.0)["cat"] == pytest.approx(
        math.sqrt(2) / (math.sqrt(2) + 1))
    # A tiny tau must not overflow (log-space): the argmax takes everything.
    assert N.conditional_probabilities(model, ["the"], enc.vocabulary, tau=1e-3)["cat"] == pytest.approx(1.0)


def test_trigram_mle_by_hand():
    enc, model = _tiny(order=3)
    p = lambda h: N.conditional_probabilities(model, h, enc.vocabulary)  # noqa: E731
    assert p(["<s>", "<s>"]) == {"the": 1.0}
    assert p(["<s>", "the"]) == pytest.approx({"cat": 2 / 3, "dog": 1 / 3})
    assert p(["the", "cat"]) == pytest.approx({"sat": 0.5, "ran": 0.5})
    assert p(["the", "dog"]) == {"sat": 1.0}
    assert p(["cat", "sat"]) == {"</s>": 1.0}


def test_truth_of_the_hand_model():
    enc, model = _tiny()
    counts0 = G.bigram_counts(model)
    truth = G.model_truth(model, *counts0)
    # Bigrams: <s>-the, the-cat, the-dog, cat-sat, cat-ran, dog-sat, sat-</s>, ran-</s>.
    assert truth["distinct_bigrams"] == 8 and truth["distinct_ngrams"] == 8
    assert truth["vocabulary_size"] == 5  # the cat dog sat ran
    assert truth["bigram_mass_retained"] == 1.0
    # Every sentence is "the X Y </s>": 4 tokens; entropy h(2/3) at "the" plus ln 2 at "cat" (visited 2/3 of the time).
    h = -(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3)
    assert truth["expected_tokens"] == pytest.approx(4.0)
    assert truth["entropy_rate"] == pytest.approx((h + (2 / 3) * math.log(2)) / 4)
    # The trigram model has the same bigram support, and 9 trigrams: <s><s>the, <s>-the-cat, <s>-the-dog,
    # the-cat-sat, the-cat-ran, the-dog-sat, cat-sat-</s>, cat-ran-</s>, dog-sat-</s>.
    _, trigram = _tiny(order=3)
    assert G.model_truth(trigram, *counts0)["distinct_bigrams"] == 8
    assert len(trigram.grams) == 9


def test_count_ngrams_matches_a_naive_counter_on_random_sentences():
    rng = np.random.default_rng(7)
    sentences = [rng.integers(2, 9, size=rng.integers(1, 8)) for _ in range(300)]
    for order in (2, 3, 4):
        naive = collections.Counter()
        for s in sentences:
            padded = [N.BOS_ID] * (order - 1) + s.tolist() + [N.EOS_ID]
            naive.update(tuple(padded[i:i + order]) for i in range(len(padded) - order + 1))
        grams, counts = N.count_ngrams(sentences, order)
        assert {tuple(g): c for g, c in zip(grams.tolist(), counts.tolist())} == dict(naive)
        assert [tuple(g) for g in grams.tolist()] == sorted(naive)  # sorted lexicographically
        # merge_counts of two halves equals the counts of the whole.
        half = len(sentences) // 2
        merged = N.merge_counts(N.count_ngrams(sentences[:half], order), N.count_ngrams(sentences[half:], order))
        assert np.array_equal(merged[0], grams) and np.array_equal(merged[1], counts)


def test_sampling_frequencies_match_the_model():
    enc, model = _tiny()
    n = 20_000
    for tau, expected in ((1.0, {"the cat sat": 1 / 3, "the cat ran": 1 / 3, "the dog sat": 1 / 3}),
                          (0.5, {"the cat sat": 0.4, "the cat ran": 0.4, "the dog sat": 0.2})):
        samples = N.sample_ngram(model, n, np.random.default_rng(3), tau=tau)
        freq = collections.Counter(N.decode(s, enc.vocabulary) for s in samples)
        assert set(freq) == set(expected)
        # Binomial sd <= sqrt(0.25 / 20000) = 0.0035; 0.02 is more than 5 sd.
        for sentence, p in expected.items():
            assert abs(freq[sentence] / n - p) < 0.02


def test_overlong_sentences_are_redrawn():
    # "a", "a a": P(a | <s>) = 1, P(a | a) = 1/3, P(</s> | a) = 2/3, so P(L = k) = (1/3)^(k-1) 2/3.
    enc, model = _tiny(["a", "a a"])
    samples = N.sample_ngram(model, 20_000, np.random.default_rng(5), max_tokens=2)
    lengths = np.array([len(s) for s in samples])
    assert lengths.min() == 1 and lengths.max() == 2
    # Conditioned on L <= 2: P(L = 1) = (2/3) / (2/3 + 2/9) = 0.75; sd 0.003, tolerance 0.02.
    assert abs(np.mean(lengths == 1) - 0.75) < 0.02


def test_entropy_rate_matches_a_dense_solve_on_real_glosses():
    enc = N.encode_corpus(N.load_wordnet_glosses()[:150])
    for order in (2, 3):
        model = N.fit_ngram(enc.sentences, len(enc.vocabulary), order=order)
        probabilities = N.transition_probabilities(model, 0.8)
        n_rows = len(model.row_ptr) - 1
        q = np.zeros((n_rows, n_rows))
        entropy = np.zeros(n_rows)
        for row in range(n_rows):  # naive loops over the table
            for k in range(model.row_ptr[row], model.row_ptr[row + 1]):
                entropy[row] -= probabilities[k] * math.log(probabilities[k])
                if model.next_context[k] >= 0:
                    q[row, model.next_context[k]] += probabilities[k]
        start = np.zeros(n_rows)
        start[model.start_context] = 1.0
        visits = np.linalg.solve(np.eye(n_rows) - q.T, start)
        rate, expected_tokens = G.entropy_rate(model, 0.8)
        assert expected_tokens == pytest.approx(visits.sum(), rel=1e-9)
        assert rate == pytest.approx(visits @ entropy / visits.sum(), rel=1e-9)


def test_refit_on_own_samples_never_adds_a_bigram():
    # MLE without smoothing: a sample only uses n-grams of positive probability, i.e. n-grams of the
    # training data, so the refit's support is a subset of the old one (for every order and tau).
    enc = N.encode_corpus(N.load_wordnet_glosses()[:400])
    for order, tau in ((2, 1.0), (3, 0.7)):
        model = N.fit_ngram(enc.sentences, len(enc.vocabulary), order=order)
        rng = np.random.default_rng(11)
        for _ in range(4):
            refit = N.fit_ngram(N.sample_ngram(model, 400, rng, tau=tau), len(enc.vocabulary), order=order)
            assert np.isin(G.bigram_keys(refit), G.bigram_keys(model)).all()
            old = {tuple(g) for g in model.grams.tolist()}
            assert all(tuple(g) in old for g in refit.grams.tolist())
            model = refit


# --------------------------------------------------------------------------
# The loops
# --------------------------------------------------------------------------


def test_registry_and_trace_contract():
    assert set(T.LOOPS) == {"L4-text"}
    assert set(T.CONTROLS) == {"C0-L4-text", "C1-L4-text", "C2-L4-text"}
    for name, fn in {**T.LOOPS, **T.CONTROLS}.items():
        trace = fn(3, 4, 2, **SMALL)
        assert isinstance(trace, LoopTrace)
        assert trace.name == name and trace.modality == "text" and trace.seed == 3
        assert trace.kind == ("collapse" if name == "L4-text" else "control")
        assert trace.generations.tolist() == [0, 2, 4]
        assert [len(r) for r in trace.rounds] == [SMALL["n_audit"]] * 3
        assert len(trace.reference) == SMALL["n_reference"]
        assert all(isinstance(t, str) and t for r in trace.rounds for t in r)
        assert all(len(v) == 5 for v in trace.truth.values())
        if trace.kind == "control":
            assert trace.onset is None


def test_determinism_and_independence_from_audit_every():
    a = T.l4_text(5, 4, 1, **SMALL)
    b = T.l4_text(5, 4, 1, **SMALL)
    assert a.rounds == b.rounds and a.reference == b.reference and a.onset == b.onset
    assert all(np.array_equal(a.truth[k], b.truth[k]) for k in a.truth)
    # Auditing fewer generations changes neither the trajectory nor the audits it keeps.
    c = T.l4_text(5, 4, 2, **SMALL)
    assert c.rounds == [a.rounds[0], a.rounds[2], a.rounds[4]]
    assert all(np.array_equal(a.truth[k], c.truth[k]) for k in a.truth)
    d = T.l4_text(6, 4, 1, **SMALL)
    assert d.reference != a.reference and d.rounds[0] != a.rounds[0]


def test_reference_is_real_fixed_and_disjoint_from_training():
    traces = [fn(2, 2, 1, **SMALL) for fn in (*T.LOOPS.values(), *T.CONTROLS.values())]
    assert all(t.reference == traces[0].reference for t in traces)  # paired: one split per seed
    encoded = N._encoded_wordnet()
    setup = T._split(2, encoded, SMALL["n_train"], SMALL["n_reference"])
    training = {encoded.texts[i] for i in setup.train}
    real = set(encoded.texts)
    assert set(traces[0].reference) <= real and not set(traces[0].reference) & training
    # Audits and reference share one text form (tokens joined by single spaces).
    for text in traces[0].reference + traces[0].rounds[-1]:
        assert text == " ".join(tokenize(text))


def test_onset_equals_a_naive_recomputation_from_truth():
    n_generations, audit_every = T.SUGGESTED_SCHEDULE
    for seed in (0, 1):
        trace = T.l4_text(seed, n_generations, audit_every)
        d = trace.truth["distinct_bigrams"]
        naive = next((g for g in range(len(d)) if 2 * d[g] < d[0]), None)
        assert trace.onset == naive
        # The suggested schedule puts the onset inside the run, with audited rounds before it.
        assert naive is not None and 5 <= naive <= n_generations
        assert len(trace.rounds) == n_generations // audit_every + 1
        assert np.all(np.diff(d) <= 0)  # never increases (see test_refit_on_own_samples_never_adds_a_bigram)
        assert np.all(np.diff(trace.truth["vocabulary_size"]) <= 0)
        assert trace.truth["distinct_bigram_ratio"][naive] < 0.5 <= trace.truth["distinct_bigram_ratio"][naive - 1]
    # With small sizes the onset may fall outside the run: then it is None.
    short = T.l4_text(0, 1, 1, **SMALL)
    assert short.onset == G.collapse_onset(short.truth["distinct_bigrams"])
    assert G.collapse_onset(np.array([10, 6, 5, 4])) == 3  # 5 is not below 10 / 2
    assert G.collapse_onset(np.array([10, 6, 5])) is None


def test_controls_stay_healthier_than_l4():
    kwargs = dict(n_train=300, n_samples=900, n_audit=200, n_reference=200)
    runs = {name: fn(4, 8, 8, **kwargs) for name, fn in {**T.LOOPS, **T.CONTROLS}.items()}
    ratio = {name: t.truth["distinct_bigram_ratio"] for name, t in runs.items()}
    assert np.all(ratio["C0-L4-text"] == 1.0)
    assert np.all(ratio["C1-L4-text"] == 1.0)  # accumulation keeps the real data, hence the support
    assert ratio["L4-text"][-1] < 0.5
    assert ratio["C2-L4-text"][-1] > 0.9 > ratio["L4-text"][-1]
    # The audited text shows it too: more distinct bigrams in every control's last round than in L4's.
    last = {name: distinct_n(t.rounds[-1], 2) for name, t in runs.items()}
    assert min(last[c] for c in T.CONTROLS) > last["L4-text"]
    # C0's rounds are fresh real glosses from outside the reference, a new draw each generation.
    c0 = runs["C0-L4-text"]
    real = set(N._encoded_wordnet().texts)
    assert set(c0.rounds[0]) <= real and set(c0.rounds[1]) <= real
    assert not set(c0.rounds[1]) & set(c0.reference) and c0.rounds[0] != c0.rounds[1]


def test_c0_model0_source_samples_the_frozen_generation0_model():
    real = T.c0_l4_text(1, 3, 1, **SMALL)
    frozen = T.c0_l4_text(1, 3, 1, source="model0", **SMALL)
    l4 = T.l4_text(1, 3, 1, **SMALL)
    assert frozen.params["source"] == "model0" and real.params["source"] == "real"
    # Generation 0 is shared with L4 (same model, same audit stream); later rounds differ from L4's.
    assert frozen.rounds[0] == l4.rounds[0] and frozen.rounds[3] != l4.rounds[3]
    assert np.all(frozen.truth["distinct_bigrams"] == l4.truth["distinct_bigrams"][0])


def test_c2_mixes_in_fresh_real_glosses():
    trace = T.c2_l4_text(0, 3, 1, fresh_fraction=0.25, **SMALL)
    assert trace.params["n_fresh"] == 150  # round(0.25 * 600)
    # Fresh real glosses bring bigrams the generation-0 model never had.
    assert trace.truth["distinct_bigrams"][3] > trace.truth["distinct_bigrams"][0] * 0.9


@pytest.mark.parametrize("fn, kwargs, match", [
    (T.l4_text, dict(seed=-1), "seed"),
    (T.l4_text, dict(n_generations=0), "n_generations"),
    (T.l4_text, dict(audit_every=0), "audit_every"),
    (T.l4_text, dict(order=1), "order"),
    (T.l4_text, dict(order=6), "order"),
    (T.l4_text, dict(tau=0.0), "tau"),
    (T.l4_text, dict(tau=float("nan")), "tau"),
    (T.l4_text, dict(n_train=30_000), "n_train"),
    (T.l4_text, dict(n_samples=0), "n_samples"),
    (T.l4_text, dict(n_audit=0), "n_audit"),
    (T.l4_text, dict(n_reference=0), "n_reference"),
    (T.l4_text, dict(max_tokens=0), "max_tokens"),
    (T.l4_text, dict(corpus=[]), "texts"),
    (T.l4_text, dict(corpus=["a b", "!!"]), "texts"),
    (T.c0_l4_text, dict(source="fake"), "source"),
    (T.c0_l4_text, dict(n_audit=19_950), "n_audit"),  # only 20000 - 60 glosses lie outside the reference
    (T.c2_l4_text, dict(fresh_fraction=1.0), "fresh_fraction"),
    (T.c2_l4_text, dict(fresh_fraction=1e-4), "fresh_fraction"),
])
def test_bad_parameters_raise(fn, kwargs, match):
    args = dict(seed=0, n_generations=1, audit_every=1, **SMALL)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fn(**args)


def test_bad_model_inputs_raise():
    with pytest.raises(ValueError, match="word ids >= 2"):
        N.count_ngrams([np.array([0, 3])])
    with pytest.raises(ValueError, match="at least one sentence"):
        N.count_ngrams([])
    # A table cut before </s> leaves a history without continuation.
    with pytest.raises(ValueError, match="no continuation"):
        N.model_from_counts(np.array([[0, 2], [2, 3]]), np.array([1, 1]), n_types=4)
    with pytest.raises(ValueError, match="history"):
        N.conditional_probabilities(_tiny()[1], ["a", "b"], _tiny()[0].vocabulary)
    with pytest.raises(ValueError, match="D_0"):
        G.collapse_onset(np.array([0, 0]))


def test_n_samples_none_refits_on_n_train_samples():
    # The literal reading M = n_train: same sizes every generation; the onset then comes within 2-3 generations.
    trace = T.l4_text(0, 3, 1, n_train=300, n_samples=None, n_audit=20, n_reference=20)
    assert trace.params["n_samples"] == 300
    assert trace.onset is not None and trace.onset <= 3


def test_a_rejection_round_that_keeps_nothing_adds_no_empty_sentence():
    # Regression: seed 7 with 2000 samples per refit reaches a model whose first
    # rejection round keeps no sentence; np.split of nothing used to add an empty one.
    trace = T.l4_text(7, 25, n_samples=2000)
    assert len(trace.rounds) == 26 and all(all(text.strip() for text in r) for r in trace.rounds)
