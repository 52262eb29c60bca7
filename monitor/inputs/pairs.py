r"""Image-text rounds from ``.npz`` archives of paired embeddings, never unpickled: :func:`load_pairs`.

The project runs no image model: a round is the output of the user's own encoder (for example CLIP), saved with
``numpy.savez`` (or ``savez_compressed``) under these keys:

* ``image``: ``[N, D]`` finite float array, row ``i`` the embedding of image ``i``;
* ``text``: ``[N, D]`` finite float array, row ``i`` the embedding of image ``i``'s caption;
* ``caption`` (optional): ``[N]`` fixed-width unicode string array (dtype ``<U..``, never object), the captions;
* ``id`` (optional): ``[N]`` integer or fixed-width unicode string array, an id per pair.

``N >= 2``, the same ``D`` on both sides, no all-zero row (cosine similarity is undefined for it); any other key is
refused. A round can also be a ``.jsonl`` manifest of image files and captions that a local encoder embeds
(:mod:`monitor.inputs.encoders`). Each failure is one line naming the file, role, round and array, e.g.
``r.npz (round, round 3): array 'text': 2 NaN or inf values (first in row 7)``.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metrics_core._checks import _check_embedding_array, _check_no_zero_row
from monitor.errors import InputError
from monitor.inputs.files import (
    _check_max_samples,
    _existing_file,
    _listing,
    _one_line,
    _where,
    remembered,
    sha256_file,
    kept_items,
)

PAIR_EXTENSIONS = (".npz",)
IMAGE_KEY, TEXT_KEY, CAPTION_KEY, ID_KEY = "image", "text", "caption", "id"
KEYS = (IMAGE_KEY, TEXT_KEY, CAPTION_KEY, ID_KEY)


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no truth value to compare by
class LoadedPairs:
    """The kept pairs of one round, in file order; ``n_total`` is all of them.

    ``image`` and ``text`` are read-only ``[n, D]`` float arrays (float32 or float64, as saved), ``captions`` and
    ``ids`` tuples (or None where the round has none).
    """

    path: Path
    image: np.ndarray
    text: np.ndarray
    captions: tuple[str, ...] | None
    ids: tuple | None
    n_total: int
    fingerprint: str
    modality: str = "image_text"

    def __len__(self) -> int:
        return int(self.image.shape[0])

    @property
    def n_used(self) -> int:
        return len(self)

    @property
    def texts(self) -> list[str] | None:
        """The captions, the round's text view (for the text suite); None without captions."""
        return None if self.captions is None else list(self.captions)

    def take_rows(self, indices) -> "LoadedPairs":
        """The pairs at ``indices``, in that order (a pool's pseudo-round)."""
        idx = np.asarray([int(i) for i in np.asarray(indices).ravel()], dtype=np.int64)
        pick = lambda values: None if values is None else tuple(values[i] for i in idx)  # noqa: E731
        return LoadedPairs(self.path, _frozen(self.image[idx]), _frozen(self.text[idx]), pick(self.captions),
                           pick(self.ids), len(idx), self.fingerprint)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(image, text)``, what :func:`metrics_core.image_text.image_text_suite` takes."""
        return self.image, self.text


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(arr)
    arr.flags.writeable = False
    return arr


def _checked_arrays(image, text, captions, ids, where: str, label: dict[str, str]):
    """Check a round's arrays, each named by ``label[key]`` in messages; returns them frozen, the captions and
    ids as tuples. Raises InputError (one line)."""
    checked = {}
    for key, value in ((IMAGE_KEY, image), (TEXT_KEY, text)):
        try:
            checked[key] = _check_embedding_array(value, label[key], min_rows=2)
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from None
    a, b = checked[IMAGE_KEY], checked[TEXT_KEY]
    if a.shape[0] != b.shape[0]:
        raise InputError(f"{where}: {label[IMAGE_KEY]} has {a.shape[0]} rows, {label[TEXT_KEY]} has {b.shape[0]}; "
                         f"expected one row per pair in both")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"{where}: {label[IMAGE_KEY]} has D={a.shape[1]} features, {label[TEXT_KEY]} has "
                         f"D={b.shape[1]}; both sides must be embedded into one space")
    for key, arr in checked.items():
        try:
            _check_no_zero_row(arr, label[key])
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from None
    n = a.shape[0]
    return _frozen(a), _frozen(b), _captions(captions, n, where, label), _ids(ids, n, where, label)


def _captions(captions, n: int, where: str, label: dict[str, str]) -> tuple[str, ...] | None:
    if captions is None:
        return None
    arr = np.asarray(captions) if isinstance(captions, np.ndarray) else captions
    if not isinstance(arr, np.ndarray) or arr.dtype.kind != "U" or arr.ndim != 1 or arr.shape[0] != n:
        got = (f"dtype {arr.dtype.str} with shape {arr.shape}" if isinstance(arr, np.ndarray)
               else type(arr).__name__)
        raise InputError(f"{where}: {label[CAPTION_KEY]}: expected a 1-D unicode string array (dtype <U) of {n} "
                         f"captions, got {got}")
    return tuple(str(c) for c in arr.tolist())


def _ids(ids, n: int, where: str, label: dict[str, str]) -> tuple | None:
    if ids is None:
        return None
    ok = isinstance(ids, np.ndarray) and ids.ndim == 1 and ids.shape[0] == n and (
        ids.dtype.kind == "U" or np.issubdtype(ids.dtype, np.integer))
    if not ok:
        got = f"dtype {ids.dtype.str} with shape {ids.shape}" if isinstance(ids, np.ndarray) else type(ids).__name__
        raise InputError(f"{where}: {label[ID_KEY]}: expected a 1-D integer or unicode string array of {n} ids, "
                         f"got {got}")
    return tuple(ids.tolist())


def _subsample(image, text, captions, ids, max_samples, seed: int):
    keep = kept_items(image.shape[0], max_samples, seed)
    if keep is None:
        return image, text, captions, ids
    pick = lambda values: None if values is None else tuple(values[int(i)] for i in keep)  # noqa: E731
    return _frozen(image[keep]), _frozen(text[keep]), pick(captions), pick(ids)


def _check_pair_extension(p: Path, where: str, allowed: tuple[str, ...] = PAIR_EXTENSIONS) -> str:
    ext = p.suffix.lower()
    if ext not in allowed:
        shown = f"extension {ext!r}" if ext else "no extension"
        raise InputError(f"{where}: unsupported file type ({shown}); modality image_text reads {', '.join(allowed)}")
    return ext


def load_pairs(path: str | Path, role: str, round_number: int | None = None, *, max_samples: int | None = None,
               seed: int = 0) -> LoadedPairs:
    """Load the paired image and caption embeddings of an ``.npz`` round (``allow_pickle=False``, always).

    Args:
        path: the archive (``.npz``).
        role: ``"reference"``, ``"round"`` or ``"pool"``, for messages.
        round_number: the round, for messages.
        max_samples: keep a seeded uniform choice of this many pairs, in file order. ``None`` keeps all.
        seed: the choice's seed.

    Raises:
        InputError: one line naming the file, role, round and array: a missing or non-``.npz`` file, not a zip
            archive, a pickled (object) array, a missing ``image`` or ``text`` key, an unknown key, an array that is
            not 2-D float, fewer than 2 pairs, mismatched rows or D, a NaN or inf value, an all-zero row, a caption
            or id array of the wrong dtype or length.

    Example:
        >>> import io, os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "r.npz")
        >>> np.savez(p, image=np.eye(3), text=np.eye(3) + 0.1, caption=np.array(["a cat", "a dog", "a car"]))
        >>> pairs = load_pairs(p, "round", 1)
        >>> len(pairs), pairs.image.shape, pairs.texts, pairs.ids, pairs.modality
        (3, (3, 3), ['a cat', 'a dog', 'a car'], None, 'image_text')
        >>> np.savez(p, image=np.eye(3), text=np.eye(3)[:2])
        >>> load_pairs(p, "round", 2)
        Traceback (most recent call last):
        ...
        monitor.errors.InputError: ...r.npz (round, round 2): array 'image' has 3 rows, array 'text' has 2; \
expected one row per pair in both
    """
    _check_max_samples(max_samples)
    p = Path(path)
    where = _where(p, role, round_number)
    _existing_file(p, where)
    _check_pair_extension(p, where)
    return remembered("image_text", p, (max_samples, seed), lambda: _read_pairs(p, where, max_samples, seed))


def _read_pairs(p: Path, where: str, max_samples, seed: int) -> LoadedPairs:
    try:
        with open(p, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise InputError(f"{where}: cannot read: {exc.strerror}") from exc
    if not magic:
        raise InputError(f"{where}: empty: 0 bytes")
    if not magic.startswith(b"PK"):
        raise InputError(f"{where}: not an .npz archive (no zip header); save the arrays with numpy.savez")
    fingerprint = sha256_file(p)
    try:
        archive = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{where}: not a readable .npz archive: {_one_line(exc)}") from exc
    with archive:
        keys = list(archive.files)
        unknown = [k for k in keys if k not in KEYS]
        if unknown:
            raise InputError(f"{where}: unknown arrays {_listing(unknown)} (an image-text round holds "
                             f"{', '.join(KEYS)})")
        for key in (IMAGE_KEY, TEXT_KEY):
            if key not in keys:
                held = f"arrays: {_listing(keys)}" if keys else "the archive is empty"
                raise InputError(f"{where}: no array {key!r} ({held})")
        arrays = {key: _member(archive, key, where) for key in keys}
    label = {key: f"array {key!r}" for key in KEYS}
    image, text, captions, ids = _checked_arrays(arrays[IMAGE_KEY], arrays[TEXT_KEY], arrays.get(CAPTION_KEY),
                                                 arrays.get(ID_KEY), where, label)
    n_total = image.shape[0]
    image, text, captions, ids = _subsample(image, text, captions, ids, max_samples, seed)
    return LoadedPairs(p, image, text, captions, ids, n_total, fingerprint)


def _member(archive, key: str, where: str) -> np.ndarray:
    """One array of the archive, its header's size checked first: a forged header must not allocate terabytes."""
    from numpy.lib import format as npy_format

    at = f"{where}: array {key!r}"
    try:
        info = archive.zip.getinfo(f"{key}.npy")
        with archive.zip.open(info) as fh:
            version = npy_format.read_magic(fh)
            read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, _, dtype = read_header(fh)
            header_bytes = fh.tell()
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{at}: not a readable .npy member: {_one_line(exc)}") from exc
    if dtype.hasobject:
        raise InputError(f"{at}: holds pickled objects (dtype {dtype}), which are refused; save float arrays and "
                         "the captions as a fixed-width unicode array (dtype <U)")
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if declared > info.file_size - header_bytes:
        raise InputError(f"{at}: the header declares shape {tuple(shape)} ({declared:,} bytes of {dtype}) but the "
                         f"member holds {info.file_size - header_bytes:,} bytes; truncated or corrupt")
    try:
        return archive[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise InputError(f"{at}: holds pickled objects, which are refused") from exc
        raise InputError(f"{at}: not a readable .npy member: {_one_line(exc)}") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{at}: not a readable .npy member: {_one_line(exc)}") from exc


def fingerprint_pairs(image: np.ndarray, text: np.ndarray, captions=None, ids=None) -> str:
    """sha256 over the arrays' dtypes, shapes and bytes, and the captions and ids: equal rounds, equal fingerprint.

    >>> a = fingerprint_pairs(np.eye(2), np.eye(2))
    >>> a == fingerprint_pairs(np.eye(2), np.eye(2)), a == fingerprint_pairs(np.eye(2), np.eye(2), ("x", "y"))
    (True, False)
    """
    h = hashlib.sha256()
    for arr in (image, text):
        arr = np.ascontiguousarray(arr)
        h.update(f"{arr.dtype.str}|{arr.shape}|".encode())
        h.update(arr.data)
    for name, values in ((CAPTION_KEY, captions), (ID_KEY, ids)):
        if values is not None:
            h.update(f"|{name}|{len(values)}|".encode())
            for v in values:
                item = repr(v).encode("utf-8", "surrogatepass")
                h.update(len(item).to_bytes(8, "little") + item)
    return h.hexdigest()


def pairs_from_arrays(image, text, captions=None, *, where: str, ids=None,
                      path: str | Path = "<memory>") -> LoadedPairs:
    """Pairs from in-memory arrays (a generator's round), checked like an archive's; ``where`` names them in errors.

    ``captions`` and ``ids`` may be lists, tuples or arrays (captions: strings; ids: integers or strings). The
    fingerprint is :func:`fingerprint_pairs` of the checked arrays.

    >>> pairs = pairs_from_arrays(np.eye(2), np.eye(2), ["a", "b"], where="generated")
    >>> len(pairs), pairs.captions, len(pairs.fingerprint)
    (2, ('a', 'b'), 64)
    >>> pairs_from_arrays(np.eye(2), np.zeros((2, 2)), where="generated")
    Traceback (most recent call last):
    ...
    monitor.errors.InputError: generated: text: row 0 is all zeros (cosine similarity is undefined for a zero \
vector; 2 such rows)
    """
    if captions is not None and not isinstance(captions, np.ndarray):
        captions = list(captions)
        if not all(isinstance(c, str) for c in captions):
            bad = next(i for i, c in enumerate(captions) if not isinstance(c, str))
            raise InputError(f"{where}: caption[{bad}]: expected str, got {type(captions[bad]).__name__}")
        captions = np.array(captions, dtype=str) if captions else np.array([], dtype="<U1")
    if ids is not None and not isinstance(ids, np.ndarray):
        ids = list(ids)
        if not all(isinstance(i, str) for i in ids) and not all(
                isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)) for i in ids):
            raise InputError(f"{where}: id: expected all integers or all strings")
        ids = np.array(ids) if ids else np.array([], dtype=np.int64)
    label = {key: key for key in KEYS}
    image, text, captions, ids = _checked_arrays(image, text, captions, ids, where, label)
    return LoadedPairs(Path(path), image, text, captions, ids, image.shape[0],
                       fingerprint_pairs(image, text, captions, ids))
