r"""Text metrics over lists of strings: lexical diversity, duplicates, tails, validity.

Model collapse in text shows as a shrinking vocabulary, repeated n-grams and
near-copies, a steeper rank-frequency curve and lost rare words (Shumailov et
al., Nature 2024). Every metric here is a pure function of the round's texts
(and, for the reference-relative ones, of a :class:`TextReference` fitted once
from the real texts); :func:`text_suite` computes all of them.

Tokenisation (:func:`tokenize`): NFC normalisation, ``’`` mapped to ``'``,
``str.lower()``, then the words matched by :data:`TOKEN_PATTERN`
``\w+(?:'\w+)*`` (Unicode letters, digits and underscore, with inner
apostrophes: ``don't`` is one token, ``e-mail`` two, a trailing ``'`` is
dropped). Punctuation is no token. It is deterministic and reusable.

Sufficient statistics: :func:`text_stats` tokenises a set once into
:class:`TextStats` (token ids, sample offsets, counts of every distinct n-gram
for n = 1..4); every lexical metric accepts either the texts or their
``TextStats``. n-grams never cross sample boundaries; MATTR's window does
(it runs over the concatenated token stream).

Uncertainty: the duplicate rates, the validity shares and the mean length are
means of per-sample values and get a bootstrap interval
(:func:`metrics_core.bootstrap.mean_estimate`). The n-gram metrics (distinct-n,
TTR, MATTR, Ent-n, compression ratio) and the reference-relative ones are
point estimates: resampling with replacement duplicates samples, which by
itself lowers their values, so a plain bootstrap interval would not even
cover the estimate.

The package holds one module per part: :mod:`~metrics_core.text.stats`, :mod:`~metrics_core.text.lexical`,
:mod:`~metrics_core.text.minhash`, :mod:`~metrics_core.text.reference`, :mod:`~metrics_core.text.suite`.
"""

from metrics_core.text.stats import (  # noqa: F401
    DEFAULT_MATTR_WINDOW,
    DEFAULT_MAX_N,
    DEFAULT_TAIL_MASS,
    TOKEN_PATTERN,
    TOKEN_RE,
    TextStats,
    text_stats,
    tokenize,
)
from metrics_core.text.lexical import (  # noqa: F401
    DEFAULT_ZIPF_MAX_RANK,
    compression_ratio,
    distinct_n,
    exact_duplicate_indicator,
    exact_duplicate_rate,
    mattr,
    mean_length,
    ngram_entropy,
    type_token_ratio,
    zipf_exponent,
)
from metrics_core.text.minhash import (  # noqa: F401
    DEFAULT_NEAR_DUPLICATE_THRESHOLD,
    DEFAULT_NUM_PERM,
    DEFAULT_SHINGLE_SIZE,
    LSH_TARGET_RECALL,
    MERSENNE_61,
    lsh_bands,
    minhash_parameters,
    minhash_signatures,
    near_duplicate_flags,
    near_duplicate_rate,
    token_hash,
)
from metrics_core.text.reference import (  # noqa: F401
    TextReference,
    fit_text_reference,
    length_ks,
    unigram_jsd,
    vocab_coverage,
    vocab_tail_coverage,
)
from metrics_core.text.suite import (  # noqa: F401
    TEXT_METRIC_NAMES,
    TextSuiteConfig,
    text_suite,
    validity_switched_off,
)
