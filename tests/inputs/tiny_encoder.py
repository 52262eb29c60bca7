"""A deterministic tiny "image-text encoder" for the encoder-path tests (no model, no PIL).

An "image" is any file: its bytes are read as lower-case words (undecodable bytes replaced). Both sides embed a bag
of words as the sum of one fixed random vector per word (seeded by the word's sha256), plus a small vector seeded by
the whole file's bytes (an image) or the whole caption (a caption), so no row is ever zero and equal inputs give
equal rows. An image file holding ``b"cat"`` and the caption ``"a cat"`` share the word vector of ``cat``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

DIM = 16
_OWN_WEIGHT = 0.1  # the input's own vector, small next to its words'


def _vector(key: bytes) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(key).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(DIM)


def _embed(text: str, own: bytes) -> np.ndarray:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return sum((_vector(b"word:" + w.encode()) for w in words), np.zeros(DIM)) + _OWN_WEIGHT * _vector(own)


def encode(image_paths: list[Path], captions: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``([N, 16] image embeddings, [N, 16] caption embeddings)``, float64."""
    images = []
    for path in image_paths:
        data = Path(path).read_bytes()
        images.append(_embed(data.decode("utf-8", "replace"), b"image:" + data))
    texts = [_embed(c, b"caption:" + c.encode()) for c in captions]
    return np.array(images).reshape(-1, DIM), np.array(texts).reshape(-1, DIM)


# Broken encoders, one per way an encoder's output can be refused.

def one_row_short(image_paths, captions):
    image, text = encode(image_paths, captions)
    return image, text[:-1]


def with_nan(image_paths, captions):
    image, text = encode(image_paths, captions)
    text[1, 3] = np.nan
    return image, text


def other_dim(image_paths, captions):
    image, text = encode(image_paths, captions)
    return image, text[:, :8]


def zero_image(image_paths, captions):
    image, text = encode(image_paths, captions)
    image[0] = 0.0
    return image, text


def only_images(image_paths, captions):
    return encode(image_paths, captions)[0]


def integers(image_paths, captions):
    image, text = encode(image_paths, captions)
    return image.astype(np.int64), text


def raises(image_paths, captions):
    raise RuntimeError("model weights not found\nat /models/clip")


NOT_CALLABLE = 3
