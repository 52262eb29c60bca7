"""Tests for the L10-image-text loop (meta_evaluation/loop_image_text.py) and its example
(scripts/make_image_text_example.py)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from metrics_core.image_text import image_text_suite
from monitor.inputs.pairs import LoadedPairs, load_pairs
from monitor.meta_evaluation import loop_image_text as L

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "monitor" / "data"
SMALL = dict(n_audit=30, n_reference=20)


def _same_trace(a, b) -> bool:
    def same_pairs(x: LoadedPairs, y: LoadedPairs) -> bool:
        return (np.array_equal(x.image, y.image) and np.array_equal(x.text, y.text) and x.captions == y.captions
                and x.fingerprint == y.fingerprint)

    return (a.name == b.name and a.onset == b.onset and same_pairs(a.reference, b.reference)
            and len(a.rounds) == len(b.rounds) and all(same_pairs(x, y) for x, y in zip(a.rounds, b.rounds))
            and np.array_equal(a.generations, b.generations) and a.truth.keys() == b.truth.keys()
            and all(np.array_equal(a.truth[k], b.truth[k]) for k in a.truth))


# --------------------------------------------------------------------------
# The captioner, by hand
# --------------------------------------------------------------------------


def test_naming_matrix_is_the_sharpened_posterior():
    prior = L.initial_prior()
    p = L.concept_prototypes()
    naming = L.naming_matrix(prior)
    for c, j in ((0, 0), (3, 7), (11, 2)):
        weights = [(prior[k] * math.exp(L.EVIDENCE * float(p[c] @ p[k]))) ** (1 / L.DECODING_TEMPERATURE)
                   for k in range(12)]
        assert naming[c, j] == pytest.approx(weights[j] / sum(weights), rel=1e-12)
    # A vanished name is never used; with two names left, every image gets one of them.
    two = np.zeros(12)
    two[[1, 5]] = [0.25, 0.75]
    left = L.naming_matrix(two)
    assert np.all(left[:, [0, 2, 3, 4, 6, 7, 8, 9, 10, 11]] == 0) and np.allclose(left[:, [1, 5]].sum(axis=1), 1)
    assert L.initial_prior()[0] == pytest.approx(1 / sum(1 / math.sqrt(j) for j in range(1, 13)))
    assert len(L.CONCEPTS) == len(set(L.CONCEPTS)) == 12


def test_truth_by_hand():
    one_name = np.eye(12)[4]
    cosines = L.concept_prototypes() @ L.concept_prototypes().T
    t = L.image_text_truth(np.stack([L.initial_prior(), one_name]))
    assert t["names_alive"].tolist() == [12, 1]
    assert t["named_correctly"][1] == pytest.approx(1 / 12) and t["name_entropy"][1] == 0.0
    assert t["prototype_alignment"][1] == pytest.approx(cosines[:, 4].mean())
    naming = L.naming_matrix(L.initial_prior())
    marginal = naming.mean(axis=0)
    assert t["name_entropy"][0] == pytest.approx(-(marginal * np.log2(marginal)).sum())
    assert t["named_correctly"][0] == pytest.approx(0.825, abs=5e-4)


def test_refit_is_the_maximum_likelihood_prior_of_the_generated_captions():
    priors = L.image_text_priors(3, 4, n_samples=50)
    assert np.allclose(priors[1:] * 50, np.round(priors[1:] * 50), rtol=0, atol=1e-9)  # counts over M
    for g in range(4):
        assert set(np.flatnonzero(priors[g + 1])) <= set(np.flatnonzero(priors[g]))  # no name comes back


def test_sample_pairs_follow_the_generative_process():
    rng = np.random.default_rng(0)
    pairs = L.sample_pairs(np.eye(12)[2], 400, rng)  # one name left: every caption names "car"
    assert set(pairs.captions) == {"a photo of a car"}
    p = L.concept_prototypes()
    # caption - image = p_car - p_concept + noise: its mean over many pairs is near p_car - mean prototype.
    diff = (pairs.text - pairs.image).mean(axis=0)
    assert np.linalg.norm(diff - (p[2] - p.mean(axis=0))) < 0.15
    full = L.sample_pairs(L.initial_prior(), 400, np.random.default_rng(1))
    assert len(set(full.captions)) == 12


# --------------------------------------------------------------------------
# The loop and the control
# --------------------------------------------------------------------------


def test_control_is_constant():
    c0 = L.CONTROLS["C0-L10-image-text"](0, 6, **SMALL)
    assert c0.name == "C0-L10-image-text" and c0.kind == "control" and c0.onset is None
    for name, values in c0.truth.items():
        assert np.all(values == values[0]), name
    assert c0.modality == "image_text" and len(c0.rounds) == 7


@pytest.mark.parametrize("seed", range(6))
def test_truth_falls_and_the_onset_is_found(seed):
    trace = L.image_text_loop(seed, 30, **SMALL)
    t = trace.truth
    assert trace.name == "L10-image-text" and trace.kind == "collapse"
    assert np.all(np.diff(t["names_alive"]) <= 0) and t["names_alive"][-1] <= 2
    assert t["named_correctly"][-1] < 0.25 * t["named_correctly"][0]
    assert t["name_entropy"][-1] < 0.5 * t["name_entropy"][0]
    assert t["prototype_alignment"][-1] < t["prototype_alignment"][0] - 0.3
    onset = trace.onset
    assert onset is not None and 5 <= onset <= 25
    threshold = L.ONSET_FRACTION * t["named_correctly"][0]
    assert t["named_correctly"][onset] < threshold and np.all(t["named_correctly"][:onset] >= threshold)


def test_the_finite_sample_is_what_collapses():
    prior = L.initial_prior()
    for _ in range(200):  # the expected refit, M -> infinity
        prior = L.naming_matrix(prior).mean(axis=0)
    expected = L.image_text_truth(prior[None])
    assert expected["named_correctly"][0] == pytest.approx(0.883, abs=1e-3)
    assert expected["names_alive"][0] == 12
    small = [L.image_text_loop(s, 30, n_samples=40, **SMALL).onset for s in range(5)]
    large = [L.image_text_loop(s, 30, n_samples=400, **SMALL).onset for s in range(5)]
    assert all(o is not None for o in small)
    assert sum(o is None for o in large) >= 3 and np.median(small) < 10


def test_audited_metrics_follow_the_truth():
    trace = L.image_text_loop(0, 30, 6, n_audit=150, n_reference=20)
    suites = [image_text_suite(r.image, r.text, n_boot=0) for r in trace.rounds]
    first, last = suites[0], suites[-1]
    assert first["ita"].value - last["ita"].value > 0.3
    assert first["retrieval_recall_at_1_i2t"].value - last["retrieval_recall_at_1_i2t"].value > 0.3
    assert first["retrieval_recall_at_1_t2i"].value - last["retrieval_recall_at_1_t2i"].value > 0.3


def test_seeded_determinism_and_audit_stride():
    a, b = L.image_text_loop(4, 8, **SMALL), L.image_text_loop(4, 8, **SMALL)
    assert _same_trace(a, b)
    other = L.image_text_loop(5, 8, **SMALL)
    assert not np.array_equal(a.truth["named_correctly"], other.truth["named_correctly"])
    strided = L.image_text_loop(4, 8, 2, **SMALL)
    assert strided.generations.tolist() == [0, 2, 4, 6, 8]
    assert all(np.array_equal(strided.truth[k], a.truth[k]) for k in a.truth)  # truth independent of audit_every
    for g, pairs in zip(strided.generations.tolist(), strided.rounds):
        assert np.array_equal(pairs.image, a.rounds[g].image)
    assert L.LOOPS["L10-image-text"] is L.image_text_loop
    assert L.SUGGESTED_SCHEDULE == (30, 1) and L.QUICK_SCHEDULE == (12, 2)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="workflow: expected one of"):
        L.image_text_loop(0, 3, workflow="accumulate")
    with pytest.raises(ValueError, match="n_audit: expected an integer >= 2, got 1"):
        L.image_text_loop(0, 3, n_audit=1)
    with pytest.raises(ValueError, match="n_generations: expected a positive integer, got 0"):
        L.image_text_loop(0, 0)


# --------------------------------------------------------------------------
# The shipped example
# --------------------------------------------------------------------------


def _example_script():
    spec = importlib.util.spec_from_file_location("make_image_text_example",
                                                  REPO / "scripts" / "make_image_text_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_is_reproducible_and_loads(tmp_path, capsys):
    script = _example_script()
    assert script.main(["--out", str(tmp_path)]) == 0
    assert "true onset: generation 4" in capsys.readouterr().out
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.npz"))
    shipped = sorted(p.relative_to(DATA) for p in DATA.glob("image_text*/**/*.npz")) + \
        [Path("image_text_reference.npz")]
    assert sorted(shipped) == written and len(written) == 8
    total = 0
    for rel in written:
        assert (tmp_path / rel).read_bytes() == (DATA / rel).read_bytes(), rel
        total += (DATA / rel).stat().st_size
    assert total < 200_000
    rounds = [load_pairs(DATA / "image_text_rounds" / f"round_{g}.npz", "round", g) for g in range(7)]
    reference = load_pairs(DATA / "image_text_reference.npz", "reference")
    assert len(reference) == 100 and all(len(r) == 64 for r in rounds)
    assert rounds[0].image.dtype == np.float32 and rounds[0].captions[0].startswith("a photo of a ")
    assert len(set(rounds[-1].captions)) < len(set(rounds[0].captions))
    ita = [image_text_suite(r.image, r.text, n_boot=0)["ita"].value for r in rounds]
    assert ita[-1] < ita[0] - 0.2
