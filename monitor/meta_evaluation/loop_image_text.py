r"""L10-image-text: a captioner distilled on its own captions, whose captions converge on a few concept names.

The collapse loop (benchmark loop L10, modality ``"image_text"``) is captioning self-distillation: the captioner of
generation ``g`` captions a finite sample of images, and the captioner of generation ``g + 1`` learns its language
prior from those captions alone. It is recursive training on generated data (Shumailov et al., Nature 2024, "AI
models collapse when trained on recursively generated data"), in the self-training form used to bootstrap
captioners from their own pseudo-captions (Li et al., ICML 2022, "BLIP: Bootstrapping Language-Image Pre-training
for Unified Vision-Language Understanding", whose captioner-filter loop re-trains on its own synthetic captions),
with the sampling bias of Alemohammad et al. (ICLR 2024, "Self-Consuming Generative Models Go MAD"): decoding
sharpened below temperature 1 favours what is already likely. Refitting a categorical by maximum likelihood on a
finite sample, with no smoothing, makes every concept name the sample misses vanish for good; the sharpened
decoding then lets the frequent names take over the images of the vanished ones: several image concepts come to
be captioned by the same few names, the captions converge and image-text alignment decays.

Concepts (fixed, the same for every seed): :data:`CONCEPTS`, :math:`K = 12` names, each with a unit prototype
:math:`p_c \in \mathbb{R}^D` (:func:`concept_prototypes`, drawn once from a fixed stream; default :math:`D = 32`).

Captioner: a language prior :math:`q_g` over the :math:`K` names. Shown an image of concept :math:`c`, it names
concept :math:`j` with probability

.. math:: C_g(c, j) = \frac{\big(q_g(j)\, e^{\kappa \langle p_c, p_j \rangle}\big)^{1/\tau}}
    {\sum_{j'} \big(q_g(j')\, e^{\kappa \langle p_c, p_{j'} \rangle}\big)^{1/\tau}},

the posterior of the name given visual evidence of sharpness :math:`\kappa` (:data:`EVIDENCE` = 2.4), decoded at
temperature :math:`\tau` (:data:`DECODING_TEMPERATURE` = 0.5). Generation 0's prior is Zipf-like,
:math:`q_0(j) \propto (j + 1)^{-1/2}` (a long tail of rarer names); it names 82.5% of images correctly.

Self-training (``workflow="replace"``, the loop): generation ``g`` captions ``n_samples`` (``M`` = 80) images of
uniformly drawn concepts; generation ``g + 1``'s prior is the maximum-likelihood estimate from those captions,
:math:`q_{g+1}(j) = n_g(j) / M`, with no smoothing: a name no caption used has :math:`q = 0` from then on. The
finite sample is what collapses it: the *expected* refit (:math:`M \to \infty`, :math:`q_{g+1} = \frac1K \sum_c
C_g(c, \cdot)`) is stable and even raises the share named correctly from 0.825 to 0.883; with ``M = 80`` the
onset falls at generation 7-22 for seeds 0-29 (median 11.5, measured), with ``M = 40`` at 4-20 and with ``M = 400``
at 13-26 for 3 of seeds 0-9 and not within 30 generations for the other 7. By generation 30 one or two names are
left for every image (seeds 0-9).

Control C0 (``workflow="no_feedback"``): every generation is generation 0's captioner; the truth is constant and
``onset`` is None.

Ground truth (from the true priors :math:`q_g`, never from sampled pairs; :func:`image_text_truth`):

* ``named_correctly``: :math:`\frac1K \sum_c C_g(c, c)`, the share of images captioned with their own concept;
* ``name_entropy``: the entropy in bits of the name marginal :math:`m_g = \frac1K \sum_c C_g(c, \cdot)`
  (:math:`\log_2 12 = 3.58` at most);
* ``prototype_alignment``: :math:`\frac1K \sum_{c,j} C_g(c, j) \langle p_c, p_j \rangle`, the alignment the
  captions would have without noise (1 when every image is named correctly);
* ``names_alive``: the number of names with :math:`q_g(j) > 0`, which never rises under ``replace``.

Onset (``replace`` only): the first generation with ``named_correctly`` below :data:`ONSET_FRACTION` (half) of
generation 0's, the same halving rule as the other loops.

An audited pair (:func:`sample_pairs`): a concept :math:`c` uniform, a name :math:`j \sim C_g(c, \cdot)`, an
instance detail :math:`u \sim \mathcal N(0, \sigma_u^2 I_D / D)` (:data:`DETAIL` = 0.5), the image embedding
:math:`x = p_c + u`, the caption embedding :math:`t = p_j + u + v` with :math:`v \sim \mathcal N(0, \sigma_v^2 I_D
/ D)` (:data:`CAPTION_NOISE` = 0.5): a caption describes its own image's detail, so retrieval can tell pairs of one
concept apart, and a wrong name moves it off the image's prototype. The caption text is ``"a photo of a <name>"``.
Rounds and the reference are :class:`~monitor.inputs.pairs.LoadedPairs` (:func:`monitor.inputs.pairs.
pairs_from_arrays`); :func:`pairs_npz_bytes` writes one as a byte-reproducible ``.npz``.

Sizes and time: ``n_audit = n_reference = 150`` pairs; a generation's refit and truth take well under 1 ms and an
audit round about 0.5 ms (one CPU core, measured), so a default 31-round run takes about 0.03 s. On seed 0 the
audited metrics follow the truth: ``ita`` 0.80 at generation 0, 0.68 at 12, 0.30 at 30; image-to-text recall@1
0.80, 0.66, 0.24 (``named_correctly`` 0.825, 0.66, 0.083; onset at generation 19).

Randomness: one :class:`numpy.random.SeedSequence` per purpose and generation (the streams of
:mod:`monitor.meta_evaluation.loop_common`: the training captions of generation ``g``, the reference, the audit
round of generation ``g``), so the priors and ``truth`` do not depend on ``audit_every``.

>>> priors = image_text_priors(0, 12)
>>> truth = image_text_truth(priors)
>>> round(float(truth["named_correctly"][0]), 3), int(truth["names_alive"][0]), bool(truth["names_alive"][-1] < 12)
(0.825, 12, True)
>>> pairs = sample_pairs(priors[0], 4, np.random.default_rng(0))
>>> pairs.image.shape, pairs.text.shape, pairs.captions[0].startswith("a photo of a ")
((4, 32), (4, 32), True)
"""

from __future__ import annotations

import functools
import io
import math
import zipfile
from collections.abc import Callable

import numpy as np
from scipy import special

from monitor.inputs.pairs import LoadedPairs, pairs_from_arrays
from monitor.meta_evaluation.loop_common import (
    _STREAM_DYNAMICS, _STREAM_REFERENCE, _audit_stream, _check_int, _check_run, _stream, _trace,
    audited_generations, first_generation,
)
from monitor.meta_evaluation.trace import LoopTrace

CONCEPTS = ("cat", "dog", "car", "tree", "boat", "bird", "house", "horse", "flower", "train", "chair", "clock")
"""The concept names, in prior order (the Zipf-like prior of generation 0 favours the first)."""

WORKFLOWS = ("replace", "no_feedback")
DEFAULT_DIM = 32
DEFAULT_N_SAMPLES = 80
DEFAULT_N_AUDIT = 150
DEFAULT_N_REFERENCE = 150
EVIDENCE = 2.4  # kappa: how sharply the visual evidence favours the image's own concept
DECODING_TEMPERATURE = 0.5  # tau < 1: decoding favours the names the prior already favours
ZIPF_EXPONENT = 0.5
DETAIL = 0.5  # sigma_u: instance detail an image and its caption share
CAPTION_NOISE = 0.5  # sigma_v
ONSET_FRACTION = 0.5
_PROTOTYPE_SEED = 20240724  # the prototypes are fixed: the same concepts for every seed


@functools.lru_cache(maxsize=8)
def _prototypes(dim: int) -> np.ndarray:
    p = np.random.default_rng(_PROTOTYPE_SEED).standard_normal((len(CONCEPTS), dim))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    p.flags.writeable = False
    return p


def concept_prototypes(dim: int = DEFAULT_DIM) -> np.ndarray:
    """``[K, dim]`` unit prototypes of :data:`CONCEPTS`, the same for every seed.

    >>> p = concept_prototypes(8)
    >>> p.shape, bool(np.allclose(np.linalg.norm(p, axis=1), 1.0))
    ((12, 8), True)
    """
    return _prototypes(_check_int(dim, "dim", 2))


def initial_prior() -> np.ndarray:
    r"""Generation 0's language prior, :math:`q_0(j) \propto (j + 1)^{-1/2}`.

    >>> initial_prior().round(3)[:3].tolist(), float(initial_prior().sum())
    ([0.178, 0.126, 0.103], 1.0)
    """
    q = 1.0 / np.arange(1, len(CONCEPTS) + 1) ** ZIPF_EXPONENT
    return q / q.sum()


def naming_matrix(prior, dim: int = DEFAULT_DIM) -> np.ndarray:
    r"""``[K, K]`` :math:`C(c, j)`: the probability that an image of concept ``c`` is captioned with name ``j``.

    Zero where the prior is zero: a vanished name is never used again.

    >>> c = naming_matrix(initial_prior())
    >>> bool(np.allclose(c.sum(axis=1), 1.0)), round(float(np.diag(c).mean()), 3)
    (True, 0.825)
    >>> float(naming_matrix(np.eye(12)[3])[:, 3].min())  # one name left: every image gets it
    1.0
    """
    q = np.asarray(prior, dtype=float)
    p = concept_prototypes(dim)
    with np.errstate(divide="ignore"):
        logits = (np.log(q)[None, :] + EVIDENCE * (p @ p.T)) / DECODING_TEMPERATURE
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def _names(naming: np.ndarray, concepts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cdf = np.cumsum(naming[concepts], axis=1)
    return np.minimum((rng.random(len(concepts))[:, None] >= cdf).sum(axis=1), len(CONCEPTS) - 1)


def image_text_priors(seed: int, n_generations: int, *, workflow: str = "replace",
                      n_samples: int = DEFAULT_N_SAMPLES, dim: int = DEFAULT_DIM) -> np.ndarray:
    r"""True language priors of every generation (no audit pairs); see the module docstring.

    Returns:
        ``[N + 1, K]`` priors, index = generation.

    >>> q = image_text_priors(0, 5, n_samples=30)
    >>> q.shape, bool(np.allclose(q.sum(axis=1), 1.0)), bool((q[5] > 0).sum() <= 12)
    ((6, 12), True, True)
    """
    seed, n_generations, _ = _check_run(seed, n_generations, 1)
    if workflow not in WORKFLOWS:
        raise ValueError(f"workflow: expected one of {WORKFLOWS}, got {workflow!r}")
    n_samples = _check_int(n_samples, "n_samples", 1)
    k = len(CONCEPTS)
    priors = np.empty((n_generations + 1, k))
    priors[:] = initial_prior()
    if workflow == "no_feedback":
        return priors
    for g in range(n_generations):
        rng = _stream(seed, _STREAM_DYNAMICS, g)
        names = _names(naming_matrix(priors[g], dim), rng.integers(k, size=n_samples), rng)
        priors[g + 1] = np.bincount(names, minlength=k) / n_samples
    return priors


def image_text_truth(priors, dim: int = DEFAULT_DIM) -> dict[str, np.ndarray]:
    r"""Per-generation truth: ``named_correctly``, ``name_entropy`` (bits), ``prototype_alignment``, ``names_alive``.

    >>> t = image_text_truth(np.stack([initial_prior(), np.eye(12)[0]]))
    >>> t["names_alive"].tolist(), round(float(t["named_correctly"][1]), 4), float(t["name_entropy"][1])
    ([12, 1], 0.0833, 0.0)
    """
    priors = np.asarray(priors, dtype=float)
    cosines = concept_prototypes(dim) @ concept_prototypes(dim).T
    correct, entropy, alignment = [], [], []
    for q in priors:
        naming = naming_matrix(q, dim)
        marginal = naming.mean(axis=0)
        nonzero = marginal[marginal > 0]
        correct.append(float(np.trace(naming)) / len(CONCEPTS))
        entropy.append(max(0.0, float(-(nonzero * np.log2(nonzero)).sum())))
        alignment.append(float((naming * cosines).sum()) / len(CONCEPTS))
    return {"named_correctly": np.array(correct), "name_entropy": np.array(entropy),
            "prototype_alignment": np.array(alignment), "names_alive": (priors > 0).sum(axis=1)}


def sample_pairs(prior, n: int, rng: np.random.Generator, *, dim: int = DEFAULT_DIM,
                 where: str = "generated") -> LoadedPairs:
    """``n`` audited image-caption pairs of the captioner with language prior ``prior`` (module docstring).

    >>> a = sample_pairs(initial_prior(), 3, np.random.default_rng(1))
    >>> b = sample_pairs(initial_prior(), 3, np.random.default_rng(1))
    >>> a.fingerprint == b.fingerprint, len(a)
    (True, 3)
    """
    n, dim = _check_int(n, "n", 2), _check_int(dim, "dim", 2)
    prototypes = concept_prototypes(dim)
    concepts = rng.integers(len(CONCEPTS), size=n)
    names = _names(naming_matrix(prior, dim), concepts, rng)
    detail = DETAIL / math.sqrt(dim) * rng.standard_normal((n, dim))
    noise = CAPTION_NOISE / math.sqrt(dim) * rng.standard_normal((n, dim))
    image = prototypes[concepts] + detail
    text = prototypes[names] + detail + noise
    captions = [f"a photo of a {CONCEPTS[j]}" for j in names.tolist()]
    return pairs_from_arrays(image, text, captions, where=where)


def image_text_loop(seed: int = 0, n_generations: int = 30, audit_every: int = 1, *, workflow: str = "replace",
                    n_samples: int = DEFAULT_N_SAMPLES, n_audit: int = DEFAULT_N_AUDIT,
                    n_reference: int = DEFAULT_N_REFERENCE, dim: int = DEFAULT_DIM) -> LoopTrace:
    r"""L10-image-text: a captioner distilled on its own captions, or the control C0 (module docstring).

    Onset (``replace`` only): the first generation with ``truth["named_correctly"]`` below
    ``ONSET_FRACTION * truth["named_correctly"][0]``.

    Args:
        seed: run seed.
        n_generations: last simulated generation.
        audit_every: audit stride.
        workflow: ``"replace"`` (L10-image-text) or ``"no_feedback"`` (C0).
        n_samples: ``M``, captions per generation the next captioner learns from.
        n_audit: pairs per audit round.
        n_reference: pairs in the reference (generation 0's captioner).
        dim: ``D``, the embedding dimension.
    """
    seed, n_generations, audit_every = _check_run(seed, n_generations, audit_every)
    n_audit = _check_int(n_audit, "n_audit", 2)
    n_reference = _check_int(n_reference, "n_reference", 2)
    dim = _check_int(dim, "dim", 2)
    priors = image_text_priors(seed, n_generations, workflow=workflow, n_samples=n_samples, dim=dim)
    truth = image_text_truth(priors, dim)
    generations = audited_generations(n_generations, audit_every)
    rounds = [sample_pairs(priors[g], n_audit, _audit_stream(seed, g), dim=dim, where=f"generation {g}")
              for g in generations]
    reference = sample_pairs(priors[0], n_reference, _stream(seed, _STREAM_REFERENCE), dim=dim, where="reference")
    onset = first_generation(truth["named_correctly"] < ONSET_FRACTION * truth["named_correctly"][0])
    params = dict(n_samples=n_samples, n_audit=n_audit, n_reference=n_reference, dim=dim, workflow=workflow,
                  n_generations=n_generations, audit_every=audit_every)
    return _trace("L10-image-text", workflow, "image_text", seed, reference, rounds, generations, onset, truth, params)


# --- the oracle (monitor.meta_evaluation.oracle) ------------------------------------------------------------------


def pair_log_probabilities(pairs: LoadedPairs, prior, dim: int = DEFAULT_DIM) -> np.ndarray:
    r"""``[n]`` exact :math:`\log p(x, t, j)` of pairs under the captioner with language prior ``prior``, up to a
    constant that no prior changes (so differences are exact log-likelihood ratios).

    With :math:`u = x - p_c` and :math:`v = t - x - p_j + p_c` (unit Jacobian),

    .. math:: p(x, t, j) = \frac1K \sum_c \varphi_{\sigma_u}(x - p_c)\, C(c, j)\,
              \varphi_{\sigma_v}(t - x - p_j + p_c),

    :math:`\varphi_\sigma` the density of :math:`\mathcal N(0, \sigma^2 I_D / D)` and ``j`` the caption's name.

    >>> pairs = sample_pairs(initial_prior(), 3, np.random.default_rng(0), dim=8)
    >>> same = pair_log_probabilities(pairs, initial_prior(), 8) - pair_log_probabilities(pairs, initial_prior(), 8)
    >>> same.tolist()
    [0.0, 0.0, 0.0]
    """
    if pairs.captions is None:
        raise ValueError("pairs: expected captions (the caption names the concept j)")
    prefix = "a photo of a "
    index = {name: j for j, name in enumerate(CONCEPTS)}
    try:
        names = np.array([index[c[len(prefix):]] if c.startswith(prefix) else index[c] for c in pairs.captions])
    except KeyError as error:
        raise ValueError(f"pairs: a caption names no concept: {error}") from None
    prototypes = concept_prototypes(dim)
    x, t = np.asarray(pairs.image, dtype=float), np.asarray(pairs.text, dtype=float)
    var_u, var_v = DETAIL**2 / dim, CAPTION_NOISE**2 / dim
    u = x[:, None, :] - prototypes[None, :, :]  # [n, K, D]: the detail, were the image of concept c
    v = (t - prototypes[names])[:, None, :] - u  # t - p_j - u
    log_w = -0.5 * ((u**2).sum(axis=2) / var_u + (v**2).sum(axis=2) / var_v)
    with np.errstate(divide="ignore"):
        log_naming = np.log(naming_matrix(prior, dim))[:, names].T  # [n, K]: log C(c, j_i)
    return special.logsumexp(log_w + log_naming, axis=1)


def image_text_log_evalues(trace: LoopTrace) -> np.ndarray:
    r"""``[R]`` the oracle's log e-values of an L10-image-text trace or its control: per round,
    :math:`\sum_i [\log p_g(x_i, t_i, j_i) - \log p_0(x_i, t_i, j_i)]`, the pairs' exact probabilities
    (:func:`pair_log_probabilities`) under the true priors regenerated from the seed (:func:`image_text_priors`).
    Generation 0's prior is positive everywhere, so every pair has :math:`p_0 > 0`.

    >>> image_text_log_evalues(CONTROLS["C0-L10-image-text"](0, 2, n_audit=4, n_reference=4)).tolist()
    [0.0, 0.0, 0.0]
    """
    params, seed = trace.params, trace.seed
    dim = params["dim"]
    priors = image_text_priors(seed, params["n_generations"], workflow=params["workflow"],
                               n_samples=params["n_samples"], dim=dim)
    out = np.zeros(len(trace.rounds))
    for r, (g, pairs) in enumerate(zip(trace.generations.tolist(), trace.rounds)):
        if np.array_equal(priors[g], priors[0]):
            continue  # generation 0's captioner: exactly 0
        log_g = pair_log_probabilities(pairs, priors[g], dim)
        if np.isneginf(log_g).any():
            raise ValueError(f"trace: {trace.name} seed {seed} round {r} has a pair impossible under its own model")
        out[r] = float(np.sum(log_g - pair_log_probabilities(pairs, priors[0], dim)))
    return out


def pairs_npz_bytes(pairs: LoadedPairs, dtype=np.float32) -> bytes:
    """``pairs`` as the bytes of an ``.npz`` round (``image``, ``text``, ``caption`` when it has captions), arrays
    cast to ``dtype``; byte-reproducible, unlike :func:`numpy.savez` (whose zip entries carry the current time).

    >>> import tempfile, os
    >>> from monitor.inputs.pairs import load_pairs
    >>> pairs = sample_pairs(initial_prior(), 3, np.random.default_rng(0))
    >>> data = pairs_npz_bytes(pairs)
    >>> data == pairs_npz_bytes(pairs)
    True
    >>> p = os.path.join(tempfile.mkdtemp(), "r.npz")
    >>> _ = open(p, "wb").write(data)
    >>> load_pairs(p, "round", 0).captions == pairs.captions
    True
    """
    arrays = {"image": pairs.image.astype(dtype), "text": pairs.text.astype(dtype)}
    if pairs.captions is not None:
        arrays["caption"] = np.array(pairs.captions, dtype=str)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return out.getvalue()


# --- registry (the meta-evaluation's loop L10 and its control) ---------------------------------------------------

SUGGESTED_SCHEDULE = (30, 1)
"""Suggested ``(n_generations, audit_every)`` at the default sizes: 31 audited rounds, onset at generation 7-22
(seeds 0-29), mid-run."""

QUICK_SCHEDULE = (12, 2)
"""The meta-evaluation's quick mode: 7 audited rounds."""

LOOPS: dict[str, Callable[..., LoopTrace]] = {"L10-image-text": image_text_loop}
"""The collapse loop by id, called as ``fn(seed, n_generations, audit_every=1, **overrides)``."""

CONTROLS: dict[str, Callable[..., LoopTrace]] = {
    "C0-L10-image-text": functools.partial(image_text_loop, workflow="no_feedback"),
}
"""The control by id (``C0-L10-image-text``), called like :data:`LOOPS`."""
