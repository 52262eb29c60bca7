r"""Reading round files: the rules every loader shares (:mod:`monitor.inputs`).

Every failure raises :class:`~monitor.errors.InputError` with one line that
names the file, the role ("reference" or "round, round N"), where in the file
(line, row or column) and the problem. Nothing is returned for a file with any
bad line, so nothing is stored for that round.

**Streaming.** ``.txt``, ``.jsonl`` and ``.csv`` files are read in binary
chunks of at most 1 MiB and split into lines here, so a line longer than
``max_line_bytes`` (default 64 MiB, newline excluded) is refused as soon as
that many bytes of it have been read, without holding the rest of it: peak
memory is about ``max_line_bytes`` plus one chunk, whatever the file size.
CSV records are parsed by pandas in row chunks and Parquet files are read
with pyarrow ``iter_batches``. The fingerprint is the sha256 of the file's
bytes, hashed while streaming.

**Line rules.** Lines end at ``\n``; one trailing ``\r`` is dropped (CRLF
files) and a UTF-8 byte order mark at the start of the file is ignored. In a
``.txt`` file every line is a sample, blank ones included (as empty strings),
so the validity metrics can count them; a final newline does not start
another line. In a ``.jsonl`` file blank lines are skipped and are not
samples. Line numbers count physical lines from 1. UTF-8 is checked on every
line, sampled or not, because ``\n`` never occurs inside a multi-byte UTF-8
sequence.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.errors import InputError


MODALITIES = ("text", "tabular", "embedding", "reasoning", "agent", "json", "graph", "log", "image_text")
NUMERIC = "numeric"
CATEGORICAL = "categorical"
DEFAULT_TEXT_FIELD = "text"
DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
CHUNK_ROWS = 65_536

TEXT_EXTENSIONS = (".txt", ".jsonl", ".csv", ".parquet")
TABLE_EXTENSIONS = (".csv", ".parquet")
EMBEDDING_EXTENSIONS = (".npy",)
RECORD_EXTENSIONS = (".jsonl",)
LOG_EXTENSIONS = (".log",)
PAIR_EXTENSIONS = (".npz", ".jsonl")  # paired embeddings, or a manifest of image files and captions (--encoder)
SUPPORTED_EXTENSIONS = (".npy", ".txt", ".jsonl", ".csv", ".parquet", ".log", ".npz")
_READABLE = {"text": TEXT_EXTENSIONS, "tabular": TABLE_EXTENSIONS, "embedding": EMBEDDING_EXTENSIONS,
             "reasoning": RECORD_EXTENSIONS, "agent": RECORD_EXTENSIONS, "json": RECORD_EXTENSIONS,
             "graph": RECORD_EXTENSIONS, "log": LOG_EXTENSIONS, "image_text": PAIR_EXTENSIONS}

_ID_NAMES = frozenset({"id", "uuid", "index", "unnamed: 0"})
_PARQUET_INDEX = re.compile(r"__index_level_\d+__")
_UTF8_BOM = "\ufeff"
_PREVIEW_CHARS = 40
_MAX_LISTED = 20



def _where(path: Path, role: str, round_number: int | None) -> str:
    return f"{path} ({role}, round {round_number})" if round_number is not None else f"{path} ({role})"


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _preview(value) -> str:
    text = repr(value)
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 3] + "..."


def _listing(names) -> str:
    names = [str(n) for n in names]
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _MAX_LISTED else "")


def _size_text(n_bytes: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n_bytes >= factor and n_bytes % factor == 0:
            return f"{n_bytes // factor} {unit}"
    return f"{n_bytes} bytes"


# Files parsed in this process, by identity and state: the CLI validates its inputs before the flow runs and
# the flow loads them again in the same process; a daemon audits many rounds against one reference.
_REMEMBERED: OrderedDict = OrderedDict()
REMEMBERED_FILES = 4


def remembered(kind: str, path: Path, options: tuple, read: Callable):
    """``read()``'s result, parsed once per file state: a second load of an unchanged file (same device,
    inode, size, modification and change times) with the same options returns the first one's result.

    Only successful loads are kept (an error is raised again, with the caller's role and round); at most
    :data:`REMEMBERED_FILES` of them, least recently used dropped.
    """
    try:
        st = path.stat()
    except OSError:
        return read()
    key = (kind, str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, options)
    if key in _REMEMBERED:
        _REMEMBERED.move_to_end(key)
        return _REMEMBERED[key]
    value = read()
    _REMEMBERED[key] = value
    while len(_REMEMBERED) > REMEMBERED_FILES:
        _REMEMBERED.popitem(last=False)
    return value


def _check_max_samples(max_samples) -> None:
    if max_samples is None:
        return
    if isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer)) or max_samples < 1:
        raise ValueError(f"max_samples: expected a positive integer or None, got {max_samples!r}")


def kept_items(n_total: int, max_samples: int | None, seed: int) -> np.ndarray | None:
    """The items a loader keeps of ``n_total``: a seeded uniform choice of ``max_samples``, in file order; None
    keeps them all (no cap, or no more than it).

    >>> kept_items(10, 3, seed=0).tolist(), kept_items(10, None, seed=0), kept_items(3, 5, seed=0)
    ([5, 6, 9], None, None)
    """
    if max_samples is None or n_total <= max_samples:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_total, size=int(max_samples), replace=False))


def _check_max_line_bytes(max_line_bytes) -> None:
    if isinstance(max_line_bytes, bool) or not isinstance(max_line_bytes, (int, np.integer)) or max_line_bytes < 1:
        raise ValueError(f"max_line_bytes: expected a positive integer, got {max_line_bytes!r}")


def _existing_file(path: Path, where: str) -> None:
    if not path.is_file():
        raise InputError(f"{where}: file not found")


def _extension(path: Path, where: str) -> str:
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        shown = f"extension {ext!r}" if ext else "no extension"
        raise InputError(f"{where}: unsupported file type ({shown}); expected one of {', '.join(SUPPORTED_EXTENSIONS)}")
    return ext


def _check_readable_as(modality: str, ext: str, where: str) -> None:
    readable = _READABLE[modality]
    if ext not in readable:
        raise InputError(
            f"{where}: modality {modality} cannot read a {ext} file ({modality} reads {', '.join(readable)})"
        )


def sha256_file(path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> str:
    """sha256 hex digest of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            h.update(chunk)
    return h.hexdigest()


def is_id_column(name: str) -> bool:
    """An id column, which does not make a text file tabular.

    Its lower-cased name is ``id``, ``uuid``, ``index`` or ``unnamed: 0``
    (pandas' written index) or ends with ``_id``.

    Example:
        >>> [is_id_column(c) for c in ("id", "doc_id", "Unnamed: 0", "idea", "text")]
        [True, True, True, False, False]
    """
    lowered = str(name).lower()
    return lowered in _ID_NAMES or lowered.endswith("_id")


# --------------------------------------------------------------------------
# Streaming lines
# --------------------------------------------------------------------------


class _LineBlocks:
    r"""Split a binary file into blocks of complete lines without holding any line over ``max_line_bytes``.

    Iterating yields ``(first_line_number, file_offset, block)``: ``block`` is
    whole lines with their ``\n`` (the last line of the file may lack it).
    Every byte read goes through ``hasher`` when one is given.
    """

    def __init__(self, path: Path, where: str, max_line_bytes: int, hasher=None):
        self.path, self.where, self.max_line_bytes, self.hasher = path, where, max_line_bytes, hasher
        # Chunks no longer than the limit, so a line inside one chunk is within it.
        self.chunk_bytes = min(CHUNK_BYTES, max_line_bytes)

    def _too_long(self, line_number: int) -> InputError:
        limit = self.max_line_bytes
        return InputError(
            f"{self.where}: line {line_number}: longer than the limit of {_size_text(limit)} "
            f"(max_line_bytes={limit}); refused without reading it whole"
        )

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        pending: list[bytes] = []  # pieces of the current, unfinished line
        pending_len = 0
        line_number = 1  # number of the line that starts the next block
        offset = 0  # file offset of the next block
        try:
            fh = open(self.path, "rb")
        except OSError as exc:
            raise InputError(f"{self.where}: cannot read: {exc.strerror}") from exc
        with fh:
            while True:
                try:
                    chunk = fh.read(self.chunk_bytes)
                except OSError as exc:
                    raise InputError(f"{self.where}: cannot read: {exc.strerror}") from exc
                if not chunk:
                    break
                if self.hasher is not None:
                    self.hasher.update(chunk)
                last_newline = chunk.rfind(b"\n")
                if last_newline < 0:
                    if pending_len + len(chunk) > self.max_line_bytes:
                        raise self._too_long(line_number)
                    pending.append(chunk)
                    pending_len += len(chunk)
                    continue
                first_newline = chunk.find(b"\n")
                if pending_len + first_newline > self.max_line_bytes:
                    raise self._too_long(line_number)
                pending.append(chunk[: last_newline + 1])
                block = b"".join(pending)
                yield line_number, offset, block
                line_number += block.count(b"\n")
                offset += len(block)
                tail = chunk[last_newline + 1 :]
                pending, pending_len = ([tail], len(tail)) if tail else ([], 0)
        if pending_len:
            yield line_number, offset, b"".join(pending)


def _utf8_error(where: str, first_line: int, offset: int, block: bytes, exc: UnicodeDecodeError) -> InputError:
    line = first_line + block.count(b"\n", 0, exc.start)
    line_start = block.rfind(b"\n", 0, exc.start) + 1
    bad = block[exc.start : exc.end].hex(" ")
    return InputError(
        f"{where}: line {line}: not valid UTF-8 at byte offset {exc.start - line_start} "
        f"(byte {offset + exc.start} of the file): bytes {bad}"
    )


def _iter_lines(path: Path, where: str, max_line_bytes: int, hasher=None) -> Iterator[tuple[int, list[str]]]:
    r"""Yield ``(first_line_number, lines)`` per block: decoded lines without ``\n`` or a trailing ``\r``."""
    for first_line, offset, block in _LineBlocks(path, where, max_line_bytes, hasher):
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _utf8_error(where, first_line, offset, block, exc) from None
        lines = text.split("\n")
        if block.endswith(b"\n"):
            lines.pop()  # the empty remainder after the last newline is not a line
        if offset == 0 and lines and lines[0].startswith(_UTF8_BOM):
            lines[0] = lines[0][1:]
        yield first_line, [line[:-1] if line.endswith("\r") else line for line in lines]


def _checked_blocks(path: Path, where: str, max_line_bytes: int, hasher=None) -> Iterator[bytes]:
    """The file's blocks of whole lines, each checked for line length and UTF-8."""
    for first_line, offset, block in _LineBlocks(path, where, max_line_bytes, hasher):
        try:
            block.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _utf8_error(where, first_line, offset, block, exc) from None
        yield block


def _scan_lines(path: Path, where: str, max_line_bytes: int) -> str:
    """Check line lengths and UTF-8 of a whole file; return its sha256."""
    h = hashlib.sha256()
    for _ in _checked_blocks(path, where, max_line_bytes, h):
        pass
    return h.hexdigest()


def _first_lines(path: Path, where: str, max_line_bytes: int) -> bytes:
    """The first block of whole lines (at least the first line); ``b""`` for an empty file."""
    return next(iter(_checked_blocks(path, where, max_line_bytes)), b"")


# --------------------------------------------------------------------------
# Modality
# --------------------------------------------------------------------------


def _csv_header(path: Path, where: str, max_line_bytes: int) -> list[str]:
    """The header's column names; ``[]`` for a file with no header (empty or blank)."""
    head = _first_lines(path, where, max_line_bytes)
    if not head.strip():
        return []
    try:
        return [str(c) for c in pd.read_csv(BytesIO(head), nrows=0, encoding="utf-8").columns]
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{where}: not a readable CSV header: {_one_line(exc)}") from exc


def _parquet_file(path: Path, where: str, empty: str = "empty: 0 bytes"):
    import pyarrow.parquet as pq

    with open(path, "rb") as fh:
        magic = fh.read(4)
    if not magic:
        raise InputError(f"{where}: {empty}")
    if magic != b"PAR1":
        raise InputError(f"{where}: not a Parquet file (no PAR1 header)")
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError and others for damaged files
        raise InputError(f"{where}: not a readable Parquet file: {_one_line(exc)}") from exc


def _parquet_columns(parquet) -> list[str]:
    return [name for name in parquet.schema_arrow.names if not _PARQUET_INDEX.fullmatch(name)]


def _file_columns(path: Path, ext: str, where: str, max_line_bytes: int) -> list[str]:
    if ext == ".csv":
        return _csv_header(path, where, max_line_bytes)
    return _parquet_columns(_parquet_file(path, where))


