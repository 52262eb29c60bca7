r"""Image-text metrics: pair alignment and cross-modal retrieval within a round (LLM Data Auditor survey §6.2).

Model collapse in image-text data shows as captions that drift from their images (falling alignment) and as
captions that converge on a few descriptions, so that an image no longer picks out its own caption among the
round's (falling retrieval recall, even while each caption stays roughly on topic). Every metric here is a pure
function of the round's paired embeddings; :func:`image_text_suite` computes all of them.

A round is ``N`` image-caption pairs, embedded by the user's own encoder (for example CLIP) into one joint space:

* ``image``: ``[N, D]`` finite float array, row ``i`` the embedding of image ``i``;
* ``text``: ``[N, D]`` finite float array, row ``i`` the embedding of image ``i``'s caption;

with ``N >= 2``, the same ``D`` on both sides and no all-zero row (cosine similarity is undefined for a zero
vector); ValueError names the argument otherwise. Similarities are cosines, computed in float64 on rows scaled
to unit L2 norm. No metric needs the reference: the reference is audited like a round, and the embedding suite
on each side and the text suite on the captions (wired by the monitor, not here) compare with it.

Uncertainty: both metrics are means of fixed per-pair values and return a
:class:`~metrics_core.bootstrap.Estimate` whose interval resamples pairs: :func:`ita` the mean of the per-pair
cosines, :func:`retrieval_recall_at_1` the mean of the per-pair hit indicators, each computed once against all
``N`` candidates of the whole round (as the text exact-duplicate rate bootstraps its fixed indicators):
re-running retrieval inside a resample would put copies of one pair among the candidates, whose exact ties
count as misses, so the interval would not even cover the estimate.

The package holds :mod:`~metrics_core.image_text.alignment`, :mod:`~metrics_core.image_text.structure`
(:func:`well_formed_rate`, for captions that are JSON records, against a schema) and
:mod:`~metrics_core.image_text.suite`.
"""

from metrics_core.image_text.alignment import (  # noqa: F401
    DIRECTIONS,
    ita,
    pair_cosines,
    retrieval_hits,
    retrieval_recall_at_1,
)
from metrics_core.image_text.structure import parse_caption, well_formed_rate  # noqa: F401
from metrics_core.image_text.suite import IMAGE_TEXT_METRIC_NAMES, image_text_suite  # noqa: F401
