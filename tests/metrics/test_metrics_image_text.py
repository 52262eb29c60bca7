"""Tests of the image-text metrics (metrics_core.image_text): hand-computed cases, sklearn and brute-force
cross-checks, and their direction on a synthetic caption collapse."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics.pairwise import cosine_similarity

from metrics_core.bootstrap import mean_estimate
from metrics_core.image_text import (
    DIRECTIONS,
    IMAGE_TEXT_METRIC_NAMES,
    image_text_suite,
    ita,
    pair_cosines,
    retrieval_hits,
    retrieval_recall_at_1,
)


def raises_exactly(message: str, fn, *args, **kwargs) -> None:
    """``fn`` raises ValueError with exactly this one-line message."""
    with pytest.raises(ValueError) as info:
        fn(*args, **kwargs)
    assert str(info.value) == message
    assert "\n" not in message


def concept_round(rng, n: int, d: int = 32, k: int = 10, *, caption_concepts: int | None = None,
                  text_noise: float = 0.3, detail: float = 1.0, caption_detail: bool = True):
    """``n`` pairs of an image of a random concept (its prototype plus instance detail) and its caption (the
    prototype of the concept named, plus the image's detail where ``caption_detail``, plus noise).
    ``caption_concepts``: captions only ever name the first few concepts (a collapsed captioner)."""
    prototypes = rng.normal(size=(k, d))
    prototypes /= np.linalg.norm(prototypes, axis=1, keepdims=True)
    concepts = rng.integers(k, size=n)
    named = concepts if caption_concepts is None else concepts % caption_concepts
    details = detail * rng.normal(size=(n, d)) / math.sqrt(d)
    image = prototypes[concepts] + details
    noise = text_noise * rng.normal(size=(n, d)) / math.sqrt(d)
    text = prototypes[named] + (details if caption_detail else 0.0) + noise
    return image, text


# ---------------------------------------------------------------- hand-computed


def test_ita_by_hand():
    image = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    text = np.array([[2.0, 0.0], [1.0, 1.0], [-3.0, -4.0]])
    assert pair_cosines(image, text).tolist() == pytest.approx([1.0, 1 / math.sqrt(2), -1.0], abs=1e-15)
    assert ita(image, text).value == pytest.approx((1.0 + 1 / math.sqrt(2) - 1.0) / 3, abs=1e-15)
    assert ita(image, image).value == pytest.approx(1.0, abs=1e-15)
    assert ita(image, -image).value == pytest.approx(-1.0, abs=1e-15)
    # Scale-free, and rows of tiny or huge values neither underflow nor overflow.
    assert ita(image * 1e-200, text * 1e200).value == pytest.approx(ita(image, text).value, abs=1e-15)
    assert ita(image.astype(np.float32), text.astype(np.float32)).value == pytest.approx(ita(image, text).value)


def test_retrieval_by_hand_in_both_directions():
    image = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    text = np.array([[1.0, 0.2], [1.0, 0.3], [0.0, 1.0]])
    # cos(image_i, text_j): rows images, columns captions.
    #   image 0: 0.981 0.958 0.000 -> caption 0 (hit)
    #   image 1: 0.196 0.287 1.000 -> caption 2 (miss)
    #   image 2: 0.832 0.880 0.707 -> caption 1 (miss)
    assert retrieval_hits(image, text).tolist() == [True, False, False]
    # Columns read down: caption 0 -> image 0 (hit), caption 1 -> image 0 (miss), caption 2 -> image 1 (miss).
    assert retrieval_hits(image, text, direction="text_to_image").tolist() == [True, False, False]
    assert retrieval_recall_at_1(image, text).value == pytest.approx(1 / 3)
    text_good = np.array([[1.0, 0.1], [0.1, 1.0], [1.0, 1.0]])
    assert retrieval_recall_at_1(image, text_good).value == 1.0
    assert retrieval_recall_at_1(image, text_good, direction="text_to_image").value == 1.0


def test_ties_with_the_own_counterpart_are_misses():
    image = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]])
    # Captions 0 and 1 point the same way (1 is 3 x 0): an exact tie for images 0 and 1 whatever the rounding.
    text = np.array([[1.0, 0.5], [3.0, 1.5], [1.0, 1.0], [1.0, -1.0]])
    assert retrieval_hits(image, text).tolist() == [False, False, True, True]
    # Distinct captions at equal cosines tie too: image 1, (1, 1), is as close to caption 0 as to its own.
    image_tie, text_tie = np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    assert retrieval_hits(image_tie, text_tie).tolist() == [True, False]
    assert retrieval_hits(image_tie, text_tie, direction="text_to_image").tolist() == [True, True]
    # Every caption the same: nobody is found, in either direction.
    same = np.ones((5, 3))
    rng = np.random.default_rng(0)
    assert not retrieval_hits(rng.normal(size=(5, 3)), same).any()
    assert not retrieval_hits(same, same, direction="text_to_image").any()


def test_blocks_of_queries_give_the_same_hits(monkeypatch):
    from metrics_core.image_text import alignment

    image, text = concept_round(np.random.default_rng(3), 300)
    whole = retrieval_hits(image, text)
    monkeypatch.setattr(alignment, "_QUERY_BLOCK", 7)
    np.testing.assert_array_equal(retrieval_hits(image, text), whole)


def test_bootstrap_intervals_resample_the_fixed_per_pair_values():
    image, text = concept_round(np.random.default_rng(1), 80)
    est = ita(image, text, n_boot=300, seed=4)
    assert est == mean_estimate(pair_cosines(image, text), n_boot=300, seed=4)
    assert est.ci_low < est.value < est.ci_high and est.std_error > 0
    hits = retrieval_hits(image, text, direction="text_to_image")
    rec = retrieval_recall_at_1(image, text, direction="text_to_image", n_boot=300, seed=4)
    assert rec == mean_estimate(hits.astype(float), n_boot=300, seed=4)
    assert rec.ci_low <= rec.value <= rec.ci_high
    assert retrieval_recall_at_1(image, text, n_boot=300, seed=4) == \
        retrieval_recall_at_1(image, text, n_boot=300, seed=4)


def test_suite_keys_order_and_values():
    image, text = concept_round(np.random.default_rng(2), 60)
    out = image_text_suite(image, text, n_boot=50, seed=3)
    assert tuple(out) == IMAGE_TEXT_METRIC_NAMES == ("ita", "retrieval_recall_at_1_i2t", "retrieval_recall_at_1_t2i")
    assert out["ita"] == ita(image, text, n_boot=50, seed=3)
    assert out["retrieval_recall_at_1_i2t"] == retrieval_recall_at_1(image, text, n_boot=50, seed=3)
    assert out["retrieval_recall_at_1_t2i"] == retrieval_recall_at_1(image, text, direction="text_to_image",
                                                                    n_boot=50, seed=3)
    point = image_text_suite(image, text, n_boot=0)
    assert all(e.ci_low is None for e in point.values())
    assert point["ita"].value == out["ita"].value


def test_validation_messages():
    ok = np.eye(3)
    raises_exactly("image: expected a 2-D array [N, D], got 1-D with shape (3,)", ita, np.ones(3), ok)
    raises_exactly("image: expected at least 2 rows, got 1", ita, ok[:1], ok[:1])
    raises_exactly("text: expected 3 rows to match image (one per pair), got 2", ita, ok, ok[:2])
    raises_exactly("text: expected D=3 features to match image, got D=2", retrieval_hits, ok, ok[:, :2])
    with_nan = ok.copy()
    with_nan[2, 0] = np.nan
    raises_exactly("text: 1 NaN or inf values (first in row 2)", ita, ok, with_nan)
    raises_exactly("image: row 1 is all zeros (cosine similarity is undefined for a zero vector; 1 such rows)",
                   retrieval_recall_at_1, np.array([[1.0, 0, 0], [0, 0, 0], [0, 0, 1.0]]), ok)
    raises_exactly("text: expected a float array, got dtype int64", ita, ok, np.eye(3, dtype=np.int64))
    raises_exactly("direction: expected one of 'image_to_text', 'text_to_image', got 'i2t'", retrieval_recall_at_1,
                   ok, ok, direction="i2t")
    raises_exactly("n_boot: expected a non-negative integer, got -1", image_text_suite, ok, ok, n_boot=-1)
    raises_exactly("seed: expected an integer >= 0, got -2", image_text_suite, ok, ok, seed=-2)
    assert DIRECTIONS == ("image_to_text", "text_to_image")


# ---------------------------------------------------------------- independent implementations


def brute_force_hits(queries: np.ndarray, candidates: np.ndarray) -> list[bool]:
    """Recall@1 hits by loops over sklearn's cosines; ties are read off the normalised rows, not the products."""
    sims = cosine_similarity(queries, candidates)
    unit = candidates / np.linalg.norm(candidates, axis=1, keepdims=True)
    hits = []
    for i in range(len(queries)):
        found = True
        for j in range(len(candidates)):
            if j == i:
                continue
            if np.array_equal(unit[j], unit[i]) or sims[i, j] >= sims[i, i]:
                found = False
                break
        hits.append(found)
    return hits


@pytest.mark.parametrize("seed", range(5))
def test_against_sklearn_and_a_loop_on_random_rounds(seed):
    rng = np.random.default_rng(seed)
    image, text = concept_round(rng, 120, d=16, k=6, text_noise=0.8)
    text[[5, 17, 40]] = text[9]  # exact duplicate captions: ties
    image[[3, 30]] = image[60]
    expected_cos = np.diag(cosine_similarity(image, text))
    np.testing.assert_allclose(pair_cosines(image, text), expected_cos, rtol=0, atol=1e-12)
    assert ita(image, text).value == pytest.approx(expected_cos.mean(), abs=1e-12)
    i2t, t2i = brute_force_hits(image, text), brute_force_hits(text, image)
    assert retrieval_hits(image, text).tolist() == i2t
    assert retrieval_hits(image, text, direction="text_to_image").tolist() == t2i
    assert retrieval_recall_at_1(image, text).value == pytest.approx(np.mean(i2t))
    assert not any(i2t[i] for i in (5, 9, 17, 40)) and not any(t2i[i] for i in (3, 30, 60))
    assert 0.05 < np.mean(i2t) < 0.95  # neither trivial nor hopeless, so the comparison means something


# ---------------------------------------------------------------- direction on a synthetic collapse


def test_captions_collapsing_to_few_prototypes_lower_recall():
    rng = np.random.default_rng(7)
    diverse_image, diverse_text = concept_round(rng, 200, k=20)
    # A collapsed captioner names 3 of the 20 concepts and no longer describes the instance.
    collapsed_image, collapsed_text = concept_round(rng, 200, k=20, caption_concepts=3, caption_detail=False)
    for direction in DIRECTIONS:
        diverse = retrieval_recall_at_1(diverse_image, diverse_text, direction=direction).value
        collapsed = retrieval_recall_at_1(collapsed_image, collapsed_text, direction=direction).value
        assert diverse > 0.8 and collapsed < 0.1, (direction, diverse, collapsed)


def test_recall_falls_when_captions_converge_even_while_ita_stays():
    rng = np.random.default_rng(11)
    image, text = concept_round(rng, 200, text_noise=1.0)
    # Same images; every caption still names its image's concept, but is that concept's one description.
    same_image, converged = concept_round(np.random.default_rng(11), 200, text_noise=0.0, caption_detail=False)
    np.testing.assert_array_equal(image, same_image)
    assert abs(ita(image, converged).value - ita(image, text).value) < 0.15
    assert retrieval_recall_at_1(image, text).value > 0.9
    assert retrieval_recall_at_1(image, converged).value == 0.0  # 200 pairs, 10 descriptions: all tied


def test_noise_added_to_captions_lowers_ita():
    rng = np.random.default_rng(5)
    image, text = concept_round(rng, 300)
    values = [ita(image, text + s * rng.normal(size=text.shape)).value for s in (0.0, 0.2, 0.5, 1.0)]
    assert values == sorted(values, reverse=True) and values[0] - values[-1] > 0.3


# --- well_formed_rate: structured captions against a JSON Schema -----------------------------------------------

CAPTION_SCHEMA = {"type": "object", "required": ["objects", "caption"],
                  "properties": {"objects": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                                 "caption": {"type": "string"}}}


def test_well_formed_rate_hand_computed():
    from metrics_core.image_text import well_formed_rate

    captions = ['{"objects": ["cat"], "caption": "a cat"}',  # valid
                '{"objects": [], "caption": "nothing"}',  # minItems
                '{"objects": ["dog"]}',  # no caption
                'a dog on a sofa',  # not JSON
                '{"objects": ["car"], "caption": "a red car"}']  # valid
    assert well_formed_rate(captions, CAPTION_SCHEMA).value == pytest.approx(2 / 5)
    with pytest.raises(ValueError, match="captions: expected a non-empty sequence of str"):
        well_formed_rate([], CAPTION_SCHEMA)


def test_well_formed_rate_matches_jsonschema_on_random_captions():
    import json

    import jsonschema

    from metrics_core.image_text import well_formed_rate

    rng = np.random.default_rng(7)
    captions = []
    for _ in range(300):
        kind = rng.integers(4)
        objects = [str(o) for o in rng.choice(["cat", "dog", "car"], size=int(rng.integers(0, 3)))]
        record = {"objects": objects, "caption": "x"} if kind < 2 else {"objects": objects}
        captions.append(json.dumps(record) if kind != 3 else "plain caption " + str(rng.integers(9)))
    expected = 0
    for c in captions:
        try:
            expected += jsonschema.Draft202012Validator(CAPTION_SCHEMA).is_valid(json.loads(c))
        except json.JSONDecodeError:
            pass
    assert well_formed_rate(captions, CAPTION_SCHEMA).value == pytest.approx(expected / len(captions))


def test_well_formed_rate_falls_as_a_captioner_drops_its_structure():
    from metrics_core.image_text import well_formed_rate

    rng = np.random.default_rng(3)

    def round_(p_broken):
        return ['{"objects": ["cat"], "caption": "a cat"}' if rng.random() > p_broken else "a cat"
                for _ in range(400)]

    rates = [well_formed_rate(round_(p), CAPTION_SCHEMA).value for p in (0.0, 0.2, 0.6)]
    assert rates[0] == 1.0 and rates[0] > rates[1] > rates[2]
