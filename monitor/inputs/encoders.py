r"""Image-text rounds embedded on the spot by a local encoder the user names: :func:`encode_manifest`.

Instead of an ``.npz`` of embeddings (:mod:`monitor.inputs.pairs`), a round can be a ``.jsonl`` manifest, one pair
per line::

    {"image": "images/0001.png", "caption": "a photo of a cat"}

``image`` is a path relative to the manifest's folder; an optional ``id`` (a string or an integer) is kept when
every line has one; other fields are not read. The encoder is the user's own code, named ``module:function``
(:func:`load_encoder`): it is called once per round as ``function(image_paths, captions)`` with a list of
:class:`pathlib.Path` and a list of ``str``, and returns ``(image_emb, text_emb)``, two ``[N, D]`` float arrays,
row ``i`` for pair ``i``. The monitor never opens an image itself and ships no model.

A manifest never reaches out of its own folder: an absolute path, a path whose ``..`` climbs out of the folder, and
a symlink that resolves outside it are refused, as is a missing image file. The round's fingerprint covers the
manifest's bytes and every referenced image file's bytes, so re-encoding the same files gives the same
fingerprint and editing one image changes it. Blank lines are skipped; the shared line rules are
:mod:`monitor.inputs.files`'. Each failure is one line naming the manifest, role, round, line and field (or the
encoder), e.g. ``m.jsonl (round, round 2): line 4: field 'image': '../x.png' climbs out of the manifest's folder``.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from monitor.errors import CollapseMonitorError, InputError
from monitor.inputs.files import (
    DEFAULT_MAX_LINE_BYTES,
    _check_max_line_bytes,
    _check_max_samples,
    _existing_file,
    _iter_lines,
    _one_line,
    _where,
    sha256_file,
    kept_items,
)
from monitor.inputs.pairs import IMAGE_KEY, TEXT_KEY, CAPTION_KEY, ID_KEY, LoadedPairs, _check_pair_extension, \
    _checked_arrays
from monitor.inputs.records import _decode, _Number, _required, _shown

MANIFEST_EXTENSIONS = (".jsonl",)


def _encoder_name(encoder) -> str:
    if isinstance(encoder, str):
        return encoder
    module = getattr(encoder, "__module__", None) or "?"
    return f"{module}:{getattr(encoder, '__qualname__', type(encoder).__name__)}"


def load_encoder(spec: str) -> Callable:
    """The encoder function a ``module:function`` spec names (``function`` may be dotted: ``module:Class.method``).

    Importing the module runs its code: name only your own encoder.

    Raises:
        CollapseMonitorError: one line: a spec that is not ``module:function``, a module that cannot be imported
            (with the import's own error), a missing attribute, an attribute that is not callable.

    Example:
        >>> load_encoder("os.path:join")("a", "b") == os.path.join("a", "b")
        True
        >>> load_encoder("os.path")
        Traceback (most recent call last):
        ...
        monitor.errors.CollapseMonitorError: encoder 'os.path': expected 'module:function' (e.g. \
'my_clip:encode'), got no ':'
    """
    if not isinstance(spec, str):
        raise CollapseMonitorError(f"encoder: expected a 'module:function' string, got {type(spec).__name__}")
    at = f"encoder {spec!r}"
    module_name, sep, attribute = spec.partition(":")
    parts = attribute.split(".")
    if not sep or not module_name.strip() or not all(p.isidentifier() for p in parts) \
            or not all(p.isidentifier() for p in module_name.split(".")):
        got = "no ':'" if not sep else "an empty or malformed part"
        raise CollapseMonitorError(f"{at}: expected 'module:function' (e.g. 'my_clip:encode'), got {got}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may raise anything while importing
        raise CollapseMonitorError(f"{at}: cannot import module {module_name!r}: {type(exc).__name__}: "
                                   f"{_one_line(exc)}") from exc
    target = module
    for i, part in enumerate(parts):
        if not hasattr(target, part):
            owner = module_name if i == 0 else f"{module_name}:{'.'.join(parts[:i])}"
            raise CollapseMonitorError(f"{at}: {owner} has no attribute {part!r}")
        target = getattr(target, part)
    if not callable(target):
        raise CollapseMonitorError(f"{at}: {attribute!r} is not callable (got {type(target).__name__})")
    return target


def _image_path(value, folder: Path, number: int, where: str) -> Path:
    """The image file a manifest line names, inside ``folder`` (already resolved)."""
    at = f"{where}: line {number}: field {IMAGE_KEY!r}"
    if not isinstance(value, str) or isinstance(value, _Number) or not value.strip():
        raise InputError(f"{at}: expected a non-empty path string, got {_shown(value)}")
    if "\x00" in value:
        raise InputError(f"{at}: the path holds a NUL character")
    if PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute() or PureWindowsPath(value).drive:
        raise InputError(f"{at}: expected a path relative to the manifest's folder, got the absolute path {value!r}")
    if os.path.normpath(value).replace("\\", "/").split("/")[0] == "..":
        raise InputError(f"{at}: {value!r} climbs out of the manifest's folder")
    path = folder / value
    resolved = path.resolve()
    if not resolved.is_relative_to(folder):
        raise InputError(f"{at}: {value!r} is a symlink resolving outside the manifest's folder")
    if not resolved.is_file():
        raise InputError(f"{at}: image file {value!r} not found" if not resolved.exists()
                         else f"{at}: {value!r} is not a file")
    return resolved


def _id(obj: dict, number: int, where: str):
    value = obj.get(ID_KEY)
    if value is None:
        return None
    if isinstance(value, _Number):
        try:
            return int(value)
        except ValueError:
            pass
    elif isinstance(value, str) and value:
        return value
    raise InputError(f"{where}: line {number}: field {ID_KEY!r}: expected a non-empty string or an integer, got "
                     f"{_shown(value)}")


def _manifest(p: Path, where: str, max_line_bytes: int) -> tuple[list[tuple], str]:
    """The manifest's ``(image path, caption, id)`` per pair and the round's fingerprint."""
    folder = p.parent.resolve()
    h = hashlib.sha256()
    rows: list[tuple] = []
    for first_line, lines in _iter_lines(p, where, max_line_bytes, h):
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            number = first_line + i
            obj = _decode(line, number, where)
            image = _image_path(_required(obj, IMAGE_KEY, number, where), folder, number, where)
            caption = _required(obj, CAPTION_KEY, number, where)
            if not isinstance(caption, str) or isinstance(caption, _Number):
                raise InputError(f"{where}: line {number}: field {CAPTION_KEY!r}: expected a string, got "
                                 f"{_shown(caption)}")
            rows.append((image, caption, _id(obj, number, where)))
    if not rows:
        raise InputError(f"{where}: empty: no pairs")
    fingerprint = hashlib.sha256(h.digest())
    for image, _, _ in rows:  # the images' bytes, in manifest order: a changed image is a changed round
        try:
            fingerprint.update(bytes.fromhex(sha256_file(image)))
        except OSError as exc:
            raise InputError(f"{where}: image {image.name!r}: cannot read: {exc.strerror}") from exc
    return rows, fingerprint.hexdigest()


def encode_manifest(path: str | Path, encoder, role: str, round_number: int | None = None, *,
                    max_samples: int | None = None, seed: int = 0,
                    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> LoadedPairs:
    """Embed the pairs of a ``.jsonl`` manifest with a local encoder (module docstring) and check its output.

    Args:
        path: the manifest (``.jsonl``).
        encoder: the encoder function, or its ``module:function`` spec (:func:`load_encoder`).
        role: ``"reference"``, ``"round"`` or ``"pool"``, for messages.
        round_number: the round, for messages.
        max_samples: encode only a seeded uniform choice of this many pairs, in manifest order (every line is
            still checked and every image hashed). ``None`` keeps all.
        seed: the choice's seed.
        max_line_bytes: refuse any line longer than this.

    Raises:
        InputError: one line naming the manifest, role, round and line and field, or the encoder: a missing or
            non-``.jsonl`` file, bad JSON, a missing or mistyped field, an image path out of the folder or missing,
            no pairs, an encoder that fails or returns anything but two finite ``[N, D]`` float arrays of one
            ``D`` with a row per pair and no all-zero row.
        CollapseMonitorError: a bad encoder spec (:func:`load_encoder`).
    """
    _check_max_samples(max_samples)
    _check_max_line_bytes(max_line_bytes)
    fn = load_encoder(encoder) if isinstance(encoder, str) else encoder
    if not callable(fn):
        raise CollapseMonitorError(f"encoder: expected a callable or a 'module:function' string, got "
                                   f"{type(encoder).__name__}")
    name = _encoder_name(encoder)
    p = Path(path)
    where = _where(p, role, round_number)
    _existing_file(p, where)
    _check_pair_extension(p, where, MANIFEST_EXTENSIONS)
    rows, fingerprint = _manifest(p, where, max_line_bytes)
    n_total = len(rows)
    keep = kept_items(n_total, max_samples, seed)
    if keep is not None:
        rows = [rows[int(i)] for i in keep]
    images, captions, ids = (list(column) for column in zip(*rows))
    at = f"{where}: encoder {name!r}"
    try:
        output = fn(list(images), list(captions))
    except Exception as exc:  # the user's encoder may raise anything
        raise InputError(f"{at}: failed: {type(exc).__name__}: {_one_line(exc)}") from exc
    if not isinstance(output, (tuple, list)) or len(output) != 2:
        got = f"a {type(output).__name__} of {len(output)}" if isinstance(output, (tuple, list)) \
            else type(output).__name__
        raise InputError(f"{at}: expected a pair (image_emb, text_emb), got {got}")
    embedded = []
    for side, value in zip((IMAGE_KEY, TEXT_KEY), output):
        try:
            arr = value if isinstance(value, np.ndarray) else np.asarray(value)
        except (ValueError, TypeError, RuntimeError) as exc:  # ragged lists, tensors on an accelerator
            raise InputError(f"{at}: returned {side} embeddings that are not an array: {_one_line(exc)}") from exc
        if arr.ndim >= 1 and arr.shape[0] != len(images):
            raise InputError(f"{at}: returned {arr.shape[0]} {side} embedding rows for {len(images)} pairs")
        embedded.append(arr)
    label = {IMAGE_KEY: "image embeddings", TEXT_KEY: "text embeddings", CAPTION_KEY: "captions", ID_KEY: "ids"}
    image, text, _, _ = _checked_arrays(embedded[0], embedded[1], None, None, at, label)
    has_ids = all(i is not None for i in ids)
    return LoadedPairs(p, image, text, tuple(captions), tuple(ids) if has_ids else None, n_total, fingerprint)
