r"""Alignment of an image-text round: mean pair cosine (ITA) and cross-modal retrieval recall@1.

Part of :mod:`metrics_core.image_text` (its docstring states the round's layout and the uncertainty rules).
"""

from __future__ import annotations

import numpy as np

from metrics_core._checks import _check_choice, _check_pair_embeddings
from metrics_core.bootstrap import DEFAULT_LEVEL, Estimate, mean_estimate

#: Retrieval directions: the query side, then the side searched.
DIRECTIONS = ("image_to_text", "text_to_image")
_QUERY_BLOCK = 1024  # query rows per similarity block: memory stays O(block x N), not O(N^2)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; each row is first divided by its largest ``|value|``, so rows of tiny or huge
    values neither underflow nor overflow when squared."""
    scaled = x / np.abs(x).max(axis=1, keepdims=True)
    return scaled / np.linalg.norm(scaled, axis=1, keepdims=True)


def pair_cosines(image, text) -> np.ndarray:
    r"""``[N]`` float64: the cosine similarity :math:`\cos(x_i, t_i)` of each image with its own caption.

    Example:
        >>> pair_cosines(np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[3.0, 0.0], [1.0, 1.0]])).round(4).tolist()
        [1.0, 0.7071]
    """
    a, b = _check_pair_embeddings(image, text)
    return np.clip(np.einsum("ij,ij->i", _unit_rows(a), _unit_rows(b)), -1.0, 1.0)


def ita(image, text, *, n_boot: int = 0, level: float = DEFAULT_LEVEL, seed: int = 0) -> Estimate:
    r"""Image-text alignment (survey §6.2): the mean cosine similarity of each image with its own caption.

    .. math:: \text{ITA} = \frac1N \sum_{i=1}^N \frac{\langle x_i, t_i \rangle}{\lVert x_i \rVert\,\lVert t_i \rVert},

    :math:`x_i`, :math:`t_i` the embeddings of image :math:`i` and of its caption. It is CLIPScore (Hessel et al.,
    EMNLP 2021, "CLIPScore: A Reference-free Evaluation Metric for Image Captioning") without its rescaling
    :math:`w \max(\cos, 0)` with :math:`w = 2.5`: negative cosines are kept, so the mean stays linear in the pairs.
    Its scale depends on the encoder (CLIP's matched pairs score about 0.3), so compare rounds embedded by one
    encoder only. Range [-1, 1], higher is better: captions drifting away from their images lower it. The
    interval bootstraps the mean over pairs.

    Args:
        image: ``[N, D]`` image embeddings, ``N >= 2``.
        text: ``[N, D]`` caption embeddings, row ``i`` image ``i``'s caption.
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> ita(np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[3.0, 0.0], [1.0, 1.0]])).value  # (1 + 1/sqrt 2) / 2
        0.8535533905932737
    """
    return mean_estimate(pair_cosines(image, text), n_boot=n_boot, level=level, seed=seed)


def retrieval_hits(image, text, *, direction: str = "image_to_text") -> np.ndarray:
    r"""``[N]`` bool: whether each query's own counterpart is its strictly most cosine-similar candidate.

    ``direction="image_to_text"``: query image :math:`i`, candidates all :math:`N` captions; ``"text_to_image"``:
    query caption :math:`i`, candidates all :math:`N` images. Tie rule (deterministic): a hit needs the own
    counterpart's cosine to be strictly larger than every other candidate's, so a tie at the top is a miss. A
    candidate equal to the own counterpart after L2 normalisation (a duplicate caption, or a multiple of it) ties
    it exactly, whatever the rounding of the products: such candidates are grouped before the comparison.

    Example:
        >>> image = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> retrieval_hits(image, np.array([[1.0, 0.1], [0.1, 1.0], [1.0, 1.0]])).tolist()
        [True, True, True]
        >>> retrieval_hits(image, np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])).tolist()  # rows 0, 1 tie
        [False, False, False]
    """
    direction = _check_choice(direction, "direction", DIRECTIONS)
    a, b = _check_pair_embeddings(image, text)
    queries, candidates = (a, b) if direction == "image_to_text" else (b, a)
    queries, candidates = _unit_rows(queries), _unit_rows(candidates)
    distinct, group, size = np.unique(candidates, axis=0, return_inverse=True, return_counts=True)
    group = group.ravel()
    hits = size[group] == 1  # an exact duplicate of the own counterpart is a tie: a miss
    for start in range(0, len(queries), _QUERY_BLOCK):
        rows = np.arange(start, min(start + _QUERY_BLOCK, len(queries)))
        sims = queries[rows] @ distinct.T
        own = sims[np.arange(len(rows)), group[rows]].copy()
        sims[np.arange(len(rows)), group[rows]] = -np.inf
        best_other = sims.max(axis=1) if distinct.shape[0] > 1 else np.full(len(rows), -np.inf)
        hits[rows] &= own > best_other
    return hits


def retrieval_recall_at_1(image, text, *, direction: str = "image_to_text", n_boot: int = 0,
                          level: float = DEFAULT_LEVEL, seed: int = 0) -> Estimate:
    r"""Cross-modal retrieval recall@1 within the round: the share of pairs whose own counterpart is the query's
    most cosine-similar candidate among all :math:`N` of the other side.

    .. math:: \text{R@1}_{i \to t} = \frac1N \sum_{i=1}^N
        1\Big[\cos(x_i, t_i) > \max_{j \ne i,\ \hat t_j \ne \hat t_i} \cos(x_i, t_j)
        \ \wedge\ \nexists\, j \ne i: \hat t_j = \hat t_i\Big],

    :math:`\hat t` the L2-normalised rows; ``"text_to_image"`` swaps the roles of :math:`x` and :math:`t`. This is
    the zero-shot retrieval recall@k of CLIP (Radford et al., ICML 2021, "Learning Transferable Visual Models From
    Natural Language Supervision") at :math:`k = 1`, with the round's own pairs as the gallery. Tie rule: a tie
    with the own counterpart is a miss (see :func:`retrieval_hits`), so identical captions never count as found.
    Range [0, 1], higher is better. Captions converging on a few descriptions drive it down even while
    :func:`ita` stays: every image still sits close to its caption, but as close to many others. It depends on
    :math:`N` (more candidates, more chances to be outranked; a random embedding scores about :math:`1/N`), so
    compare rounds of equal size. The interval bootstraps the mean of the fixed per-pair hits.

    Args:
        image: ``[N, D]`` image embeddings, ``N >= 2``.
        text: ``[N, D]`` caption embeddings, row ``i`` image ``i``'s caption.
        direction: ``"image_to_text"`` (query images, search captions) or ``"text_to_image"``.
        n_boot: bootstrap replicates (0: point estimate).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> image = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> text = np.array([[1.0, 0.2], [1.0, 0.3], [0.0, 1.0]])
        >>> retrieval_recall_at_1(image, text).value  # image 1 finds caption 2, image 2 caption 1
        0.3333333333333333
        >>> retrieval_recall_at_1(image, text, direction="text_to_image").value  # captions 1, 2 find images 0, 1
        0.3333333333333333
    """
    hits = retrieval_hits(image, text, direction=direction)
    return mean_estimate(hits.astype(np.float64), n_boot=n_boot, level=level, seed=seed)
