r"""The image-text suite: every image-text metric of a round in one call.

Part of :mod:`metrics_core.image_text` (its docstring states the round's layout and the uncertainty rules).
"""

from __future__ import annotations

from metrics_core._checks import _check_bootstrap, _check_pair_embeddings, _check_seed
from metrics_core.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, Estimate
from metrics_core.image_text.alignment import ita, retrieval_recall_at_1

#: The image-text metrics, in the registry's order.
IMAGE_TEXT_METRIC_NAMES = ("ita", "retrieval_recall_at_1_i2t", "retrieval_recall_at_1_t2i")


def image_text_suite(image, text, *, n_boot: int = DEFAULT_N_BOOT, level: float = DEFAULT_LEVEL,
                     seed: int = 0) -> dict[str, Estimate]:
    """Every image-text metric of one round, keyed by :data:`IMAGE_TEXT_METRIC_NAMES`, in that order.

    All three carry bootstrap intervals (pairs resampled, every one with ``seed``). None needs the reference.

    Args:
        image: ``[N, D]`` image embeddings, ``N >= 2``.
        text: ``[N, D]`` caption embeddings, row ``i`` image ``i``'s caption.
        n_boot: bootstrap replicates (0: point estimates only).
        level: confidence level.
        seed: bootstrap seed.

    Example:
        >>> import numpy as np
        >>> image = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> text = np.array([[1.0, 0.2], [1.0, 0.3], [0.0, 1.0]])
        >>> out = image_text_suite(image, text, n_boot=0)
        >>> list(out) == list(IMAGE_TEXT_METRIC_NAMES), round(out["ita"].value, 4)
        (True, 0.6583)
        >>> out["retrieval_recall_at_1_i2t"].value, out["retrieval_recall_at_1_t2i"].ci_low
        (0.3333333333333333, None)
    """
    _check_bootstrap(n_boot, level)
    seed = _check_seed(seed)
    image, text = _check_pair_embeddings(image, text)
    boot = {"n_boot": n_boot, "level": level, "seed": seed}
    return {
        "ita": ita(image, text, **boot),
        "retrieval_recall_at_1_i2t": retrieval_recall_at_1(image, text, direction="image_to_text", **boot),
        "retrieval_recall_at_1_t2i": retrieval_recall_at_1(image, text, direction="text_to_image", **boot),
    }
