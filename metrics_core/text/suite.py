r"""The text suite: every text metric of a round in one call.

Part of :mod:`metrics_core.text` (its docstring states the tokenisation and the uncertainty rules).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


from metrics_core._checks import _check_bootstrap, _check_seed, _check_texts
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate
from metrics_core.text_validity import (
    DEFAULT_FAILURE_LIMIT,
    DEFAULT_MAX_CHARS,
    text_validity,
)
from metrics_core.text.stats import DEFAULT_MATTR_WINDOW, DEFAULT_MAX_N, text_stats
from metrics_core.text.lexical import (
    DEFAULT_ZIPF_MAX_RANK, compression_ratio, distinct_n, exact_duplicate_rate, mattr, mean_length,
    ngram_entropy, type_token_ratio, zipf_exponent,
)
from metrics_core.text.minhash import (
    DEFAULT_NEAR_DUPLICATE_THRESHOLD, DEFAULT_NUM_PERM, DEFAULT_SHINGLE_SIZE, near_duplicate_rate,
)
from metrics_core.text.reference import (
    _as_reference, length_ks, unigram_jsd, vocab_coverage,
    vocab_tail_coverage,
)


TEXT_METRIC_NAMES = (
    "validity_rate", "invalid_empty", "invalid_encoding", "invalid_truncated", "invalid_too_long",
    "distinct_1", "distinct_2", "distinct_3", "distinct_4", "ttr", "mattr",
    "entropy_1", "entropy_2", "entropy_3", "entropy_4", "compression_ratio",
    "exact_duplicate_rate", "near_duplicate_rate", "mean_length", "length_ks",
    "vocab_tail_coverage", "vocab_coverage", "zipf_exponent", "unigram_jsd",
)


@dataclass(frozen=True)
class TextSuiteConfig:
    """Parameters of :func:`text_suite` (defaults are the documented ones).

    The rare-type ``tail_mass`` belongs to the :class:`TextReference`, which
    is fitted once with it.
    """

    n_boot: int = 200
    level: float = DEFAULT_LEVEL
    seed: int = 0
    max_chars: int = DEFAULT_MAX_CHARS
    check_truncation: bool = True
    require_terminal_punctuation: bool = True
    validity_failure_limit: float = DEFAULT_FAILURE_LIMIT
    mattr_window: int = DEFAULT_MATTR_WINDOW
    num_perm: int = DEFAULT_NUM_PERM
    shingle_size: int = DEFAULT_SHINGLE_SIZE
    near_duplicate_threshold: float = DEFAULT_NEAR_DUPLICATE_THRESHOLD
    hash_seed: int = 0
    zipf_max_rank: int = DEFAULT_ZIPF_MAX_RANK


def validity_switched_off(reference_profile, config: TextSuiteConfig | None = None) -> dict[str, float]:
    """The validity checks :func:`text_suite` switches off for this reference, with the reference's failure share.

    Example:
        >>> from metrics_core.text import fit_text_reference
        >>> validity_switched_off(fit_text_reference(["a gloss", "another gloss"]))
        {'terminal_punctuation': 1.0}
    """
    config = config or TextSuiteConfig()
    return _as_reference(reference_profile).validity.switched_off(
        max_chars=config.max_chars, check_truncation=config.check_truncation,
        require_terminal_punctuation=config.require_terminal_punctuation, failure_limit=config.validity_failure_limit)


def text_suite(reference_profile, round_texts, *, config: TextSuiteConfig | None = None, **overrides) -> dict[str, Estimate]:
    """Every text metric of one round, keyed by :data:`TEXT_METRIC_NAMES`, in that order.

    The round is tokenised once (:func:`text_stats`). Values are
    :class:`Estimate`: validity shares (``validity_rate`` and the
    ``invalid_<reason>`` *shares* of :func:`metrics_core.text_validity.text_validity`,
    relative to the reference's: a check the reference fails in more than
    ``validity_failure_limit`` of its texts is off, see
    :func:`validity_switched_off`),
    the duplicate rates and ``mean_length`` carry bootstrap intervals; the
    others are point estimates (``ci_low`` etc. None). Bootstrap seeds are
    ``seed`` plus a fixed offset per metric.

    Args:
        reference_profile: :class:`TextReference` from :func:`fit_text_reference`
            (or the reference texts, then fitted with the default tail mass).
        round_texts: non-empty list of ``str``.
        config: suite parameters; ``overrides`` replace single fields
            (``text_suite(ref, texts, n_boot=0)``).

    Example:
        >>> from metrics_core.text import fit_text_reference
        >>> ref = fit_text_reference(["The cat sat on the mat.", "A dog ran in the park."])
        >>> out = text_suite(ref, ["The cat sat.", "The cat sat."], n_boot=0)
        >>> out["validity_rate"].value, out["exact_duplicate_rate"].value, out["distinct_1"].value
        (1.0, 0.5, 0.5)
    """
    config = dataclasses.replace(config or TextSuiteConfig(), **overrides)
    _check_bootstrap(config.n_boot, config.level)
    seed = _check_seed(config.seed)
    ref = _as_reference(reference_profile)
    texts = _check_texts(round_texts, "round_texts")
    stats = text_stats(texts, max_n=DEFAULT_MAX_N, name="round_texts")
    boot = {"n_boot": config.n_boot, "level": config.level}

    out: dict[str, Estimate] = text_validity(
        texts, max_chars=config.max_chars, check_truncation=config.check_truncation,
        require_terminal_punctuation=config.require_terminal_punctuation, reference=ref.validity,
        failure_limit=config.validity_failure_limit, seed=seed, **boot,
    ).metrics()
    for n in range(1, DEFAULT_MAX_N + 1):
        out[f"distinct_{n}"] = Estimate(distinct_n(stats, n))
        out[f"entropy_{n}"] = Estimate(ngram_entropy(stats, n))
    out["ttr"] = Estimate(type_token_ratio(stats))
    out["mattr"] = Estimate(mattr(stats, window=config.mattr_window))
    out["compression_ratio"] = Estimate(compression_ratio(stats))
    out["exact_duplicate_rate"] = exact_duplicate_rate(stats, seed=seed + 1, **boot)
    out["near_duplicate_rate"] = near_duplicate_rate(
        stats, threshold=config.near_duplicate_threshold, num_perm=config.num_perm,
        shingle_size=config.shingle_size, hash_seed=config.hash_seed, seed=seed + 2, **boot,
    )
    out["mean_length"] = mean_length(stats, seed=seed + 3, **boot)
    out["length_ks"] = Estimate(length_ks(ref, stats))
    out["vocab_tail_coverage"] = Estimate(vocab_tail_coverage(ref, stats))
    out["vocab_coverage"] = Estimate(vocab_coverage(ref, stats))
    out["zipf_exponent"] = Estimate(zipf_exponent(stats, max_rank=config.zipf_max_rank))
    out["unigram_jsd"] = Estimate(unigram_jsd(ref, stats))
    return {name: out[name] for name in TEXT_METRIC_NAMES}
