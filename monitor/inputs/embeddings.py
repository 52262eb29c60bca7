"""Embedding rounds from ``.npy`` files, never unpickled: every failure names the file, the round and the problem."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metrics_core._checks import _check_embedding_array
from monitor.errors import InputError
from monitor.inputs.files import _where, remembered


@dataclass(frozen=True)
class LoadedArray:
    path: Path
    data: np.ndarray
    fingerprint: str


def fingerprint_array(arr: np.ndarray) -> str:
    """sha256 over dtype, shape and bytes: equal data, equal fingerprint."""
    h = hashlib.sha256()
    h.update(f"{arr.dtype.str}|{arr.shape}|".encode())
    h.update(np.ascontiguousarray(arr).data)
    return h.hexdigest()


def load_embeddings(path: str | Path, role: str, round_number: int | None = None) -> LoadedArray:
    """Load a ``.npy`` float array ``[N, D]`` without ever unpickling.

    Raises:
        InputError: missing or unreadable file, pickled or non-float data,
            wrong number of dimensions, empty array, NaN or inf values.
    """
    p = Path(path)
    where = _where(p, role, round_number)
    if not p.is_file():
        raise InputError(f"{where}: file not found")
    return remembered("npy", p, (), lambda: _read_embeddings(p, where))


def _read_embeddings(p: Path, where: str) -> LoadedArray:
    try:
        with open(p, "rb") as fh:
            magic = fh.read(6)
    except OSError as exc:
        raise InputError(f"{where}: cannot read: {exc.strerror}") from exc
    if magic.startswith(b"PK"):
        raise InputError(f"{where}: is an .npz archive; expected a single .npy array")
    if magic.startswith(b"\x80"):
        raise InputError(f"{where}: holds pickled data, which is refused; save a float array with numpy.save")
    if magic != b"\x93NUMPY":
        raise InputError(f"{where}: not a .npy file (no NPY header)")
    _check_npy_size(p, where)
    try:
        arr = np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise InputError(f"{where}: holds pickled objects, which are refused; save a float array") from exc
        raise InputError(f"{where}: not a readable .npy array: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise InputError(f"{where}: not a readable .npy array: {exc}") from exc
    try:
        _check_embedding_array(arr, "embeddings")  # numpy only: loading a round never imports torch
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from exc
    return LoadedArray(path=p, data=arr, fingerprint=fingerprint_array(arr))


def _check_npy_size(p: Path, where: str) -> None:
    """The header's shape must fit in the file: a forged header must not make ``np.load`` allocate terabytes."""
    from numpy.lib import format as npy_format

    try:
        with open(p, "rb") as fh:
            version = npy_format.read_magic(fh)
            read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, _, dtype = read_header(fh)
            data_offset = fh.tell()
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{where}: not a readable .npy array: {exc}") from exc
    if dtype.hasobject:
        return  # np.load refuses it (allow_pickle=False) with its own message
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    available = p.stat().st_size - data_offset
    if declared > available:
        raise InputError(f"{where}: the header declares shape {tuple(shape)} ({declared:,} bytes of "
                         f"{dtype}) but the file holds {available:,} bytes; truncated or corrupt")


def check_same_dim(reference: LoadedArray, round_: LoadedArray, round_number: int) -> None:
    d_ref, d_round = reference.data.shape[1], round_.data.shape[1]
    if d_ref != d_round:
        raise InputError(
            f"{round_.path} (round, round {round_number}): embeddings have D={d_round} features, "
            f"but the reference {reference.path} has D={d_ref}"
        )
