r"""Loading text and tabular rounds from raw files: streamed, subsampled, checked.

Every failure raises :class:`~monitor.errors.InputError` with one line that
names the file, the role ("reference" or "round, round N"), where in the file
(line, row or column) and the problem, the same way :mod:`monitor.inputs.io` does for
``.npy`` embeddings. Nothing is returned for a file with any bad line, so
nothing is stored for that round.

**Formats.** Text comes from ``.jsonl`` (one JSON object per line, the sample
in a top-level string field, default ``text``), ``.txt`` (one sample per
line) or a ``.csv`` / ``.parquet`` text column. Tables come from ``.csv`` or
``.parquet``. Embeddings come from ``.npy`` (:func:`monitor.inputs.io.load_embeddings`).

**Modality** (:func:`detect_modality`). An explicit ``modality`` always
decides, as long as it can read the extension. Otherwise ``.npy`` is
embedding, ``.txt`` and ``.jsonl`` are text, and a ``.csv`` / ``.parquet``
file is text exactly when its header holds the text column and every other
column is an id column (:func:`is_id_column`); any other table is tabular.

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

**CSV cells.** The text column is read verbatim (an empty cell, or a row
too short to reach the column, is an empty sample; ``NA`` is the text "NA"). For tables every cell is read as a string
with pandas' default null markers (empty, ``NA``, ``null``, ...), and a column
is numeric when every non-null cell in the whole file parses as a number
(:func:`pandas.to_numeric`); numeric columns are converted, the others stay
strings. Deciding over the whole file keeps the kind independent of pandas'
chunking and of which rows were sampled. Row numbers count data rows from 1
(the header is not a row).

**Subsampling.** With ``max_samples`` set, a seeded uniform sample of
``min(n, max_samples)`` samples without replacement is drawn in the same
single pass with reservoir sampling, Algorithm L (Li 1994, "Reservoir-sampling
algorithms of time complexity O(n(1 + log(N/n)))", ACM TOMS 20(4)), using
``numpy.random.default_rng(seed)``, and returned in file order. Like
:func:`metrics_core.sampling.subsample_indices` it is deterministic for a
seed, every k-subset is equally likely, and a file with at most
``max_samples`` samples is used whole; unlike it, the rows chosen for a seed
differ, because the number of samples is not known until the pass ends.
Every sample is still validated, so a bad line anywhere refuses the file.
``n_total`` (samples in the file) and ``n_used`` (samples kept) record the
sizes.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.errors import InputError
from monitor.inputs.io import _where

MODALITIES = ("text", "tabular", "embedding")
NUMERIC = "numeric"
CATEGORICAL = "categorical"
DEFAULT_TEXT_FIELD = "text"
DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
CHUNK_ROWS = 65_536

TEXT_EXTENSIONS = (".txt", ".jsonl", ".csv", ".parquet")
TABLE_EXTENSIONS = (".csv", ".parquet")
EMBEDDING_EXTENSIONS = (".npy",)
SUPPORTED_EXTENSIONS = (".npy", ".txt", ".jsonl", ".csv", ".parquet")
_READABLE = {"text": TEXT_EXTENSIONS, "tabular": TABLE_EXTENSIONS, "embedding": EMBEDDING_EXTENSIONS}

_ID_NAMES = frozenset({"id", "uuid", "index", "unnamed: 0"})
_PARQUET_INDEX = re.compile(r"__index_level_\d+__")
_UTF8_BOM = "\ufeff"
_PREVIEW_CHARS = 40
_MAX_LISTED = 20


@dataclass(frozen=True)
class LoadedTexts:
    """Text samples of one file: ``texts`` are the kept samples in file order, ``n_total`` all of them."""

    path: Path
    texts: list[str]
    n_total: int
    fingerprint: str
    modality: str = "text"

    @property
    def n_used(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class LoadedTable:
    """Rows of one table file: ``frame`` holds the kept rows in file order, ``n_total`` counts all rows.

    ``column_kinds`` are the whole-file kinds (``"numeric"`` / ``"categorical"``)
    of every column; ``extra_columns`` lists the columns the reference lacks.
    """

    path: Path
    frame: pd.DataFrame
    n_total: int
    fingerprint: str
    column_kinds: dict[str, str] = dataclass_field(default_factory=dict)
    extra_columns: list[str] = dataclass_field(default_factory=list)
    modality: str = "tabular"

    @property
    def n_used(self) -> int:
        return len(self.frame)


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
# Reservoir sampling
# --------------------------------------------------------------------------


def _log1mexp(x: float) -> float:
    """log(1 - exp(x)) for x < 0, accurate at both ends."""
    return math.log(-math.expm1(x)) if x > -math.log(2.0) else math.log1p(-math.exp(x))


class _Reservoir:
    """Algorithm L: which stream positions enter which of ``size`` slots.

    The choice depends on the positions and the seed only, so it is the same
    however the stream is chunked.
    """

    def __init__(self, size: int, seed: int):
        self.size = int(size)
        self._rng = np.random.default_rng(seed)
        self._next = 0  # next position that enters the reservoir
        self._log_w = 0.0

    def _uniform(self) -> float:
        u = self._rng.random()
        while u == 0.0:  # log(0) is undefined; the draw is over [0, 1)
            u = self._rng.random()
        return u

    def _advance(self, position: int) -> None:
        self._log_w += math.log(self._uniform()) / self.size
        denominator = _log1mexp(self._log_w)
        if denominator == 0.0:  # W underflowed: no later position can enter
            self._next = math.inf
            return
        self._next = position + math.floor(math.log(self._uniform()) / denominator) + 1

    def picks(self, start: int, stop: int) -> list[tuple[int, int]]:
        """``(position, slot)`` for each position in ``[start, stop)`` that enters, in order.

        Positions must be offered consecutively from 0.
        """
        out = []
        while self._next < stop:
            position = self._next
            if position < self.size:
                slot = position
                if position == self.size - 1:
                    self._advance(position)
                else:
                    self._next = position + 1
            else:
                slot = int(self._rng.integers(self.size))
                self._advance(position)
            out.append((position, slot))
        return out


class _TextCollector:
    def __init__(self, size: int | None, seed: int):
        self._reservoir = _Reservoir(size, seed) if size is not None else None
        self._all: list[str] = []
        self._slots: dict[int, tuple[int, str]] = {}
        self.n = 0

    def add(self, texts: list[str]) -> None:
        if self._reservoir is None:
            self._all.extend(texts)
        else:
            for position, slot in self._reservoir.picks(self.n, self.n + len(texts)):
                self._slots[slot] = (position, texts[position - self.n])
        self.n += len(texts)

    def result(self) -> list[str]:
        if self._reservoir is None:
            return self._all
        return [text for _, text in sorted(self._slots.values(), key=lambda item: item[0])]


class _RowCollector:
    """Keeps the reservoir's rows of each chunk; pieces are compacted to the live rows now and then."""

    def __init__(self, size: int | None, seed: int):
        self._reservoir = _Reservoir(size, seed) if size is not None else None
        self._owner = np.full(size if size is not None else 0, -1, dtype=np.int64)
        self._pieces: list[pd.DataFrame] = []
        self._piece_rows = 0
        self.n = 0

    def add(self, chunk: pd.DataFrame) -> None:
        m = len(chunk)
        if self._reservoir is None:
            positions = np.arange(self.n, self.n + m, dtype=np.int64)
            piece = chunk
        else:
            picks = self._reservoir.picks(self.n, self.n + m)
            for position, slot in picks:
                self._owner[slot] = position
            positions = np.array([p for p, _ in picks], dtype=np.int64)
            piece = chunk.iloc[positions - self.n]
        self.n += m
        if not len(positions):
            return
        piece.index = pd.Index(positions)  # global row numbers, to restore file order
        self._pieces.append(piece)
        self._piece_rows += len(piece)
        if self._reservoir is not None and self._piece_rows > 2 * self._reservoir.size:
            self._pieces = [self._live()]
            self._piece_rows = len(self._pieces[0])

    def _live(self) -> pd.DataFrame:
        frame = pd.concat(self._pieces) if len(self._pieces) > 1 else self._pieces[0]
        if self._reservoir is not None:
            frame = frame[frame.index.isin(self._owner[self._owner >= 0])]
        return frame

    def result(self) -> pd.DataFrame:
        return self._live().sort_index().reset_index(drop=True)


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


def detect_modality(
    path: str | Path,
    modality: str | None = None,
    text_field: str | None = None,
    *,
    role: str = "round",
    round_number: int | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> str:
    """``"text"``, ``"tabular"`` or ``"embedding"`` for a file, reading at most its header.

    The rule, in order:

    1. The extension must be one of ``.npy .txt .jsonl .csv .parquet``
       (case-insensitive).
    2. An explicit ``modality`` (``--modality``) wins, if it reads the
       extension: embedding reads ``.npy``; text reads ``.txt .jsonl .csv
       .parquet``; tabular reads ``.csv .parquet``.
    3. ``.npy`` is embedding; ``.txt`` and ``.jsonl`` are text.
    4. ``.csv`` / ``.parquet`` are text when the header has the column
       ``text_field`` (default ``text``) and every other column is an id
       column (:func:`is_id_column`); otherwise tabular.

    Args:
        path: the file.
        modality: ``None`` to detect, or one of ``text``, ``tabular``, ``embedding``.
        text_field: the text column or JSONL field; ``None`` means ``text``.
        role, round_number: name the file in messages, as in :mod:`monitor.inputs.io`.

    Raises:
        InputError: missing file, unsupported extension, unknown modality, a
            modality that cannot read the extension, unreadable header.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> for name, body in (("a.csv", "id,text\\n1,hi\\n"), ("b.csv", "text,label\\nhi,1\\n")):
        ...     _ = open(os.path.join(d, name), "w").write(body)
        >>> detect_modality(os.path.join(d, "a.csv")), detect_modality(os.path.join(d, "b.csv"))
        ('text', 'tabular')
        >>> detect_modality(os.path.join(d, "b.csv"), modality="text")
        'text'
    """
    p = Path(path)
    where = _where(p, role, round_number)
    if modality is not None and modality not in MODALITIES:
        raise InputError(f"{where}: unknown modality {modality!r}; expected one of {', '.join(MODALITIES)}")
    _existing_file(p, where)
    ext = _extension(p, where)
    if modality is not None:
        _check_readable_as(modality, ext, where)
        return modality
    if ext == ".npy":
        return "embedding"
    if ext in (".txt", ".jsonl"):
        return "text"
    _check_max_line_bytes(max_line_bytes)
    field_name = DEFAULT_TEXT_FIELD if text_field is None else text_field
    columns = _file_columns(p, ext, where, max_line_bytes)
    if not columns:
        raise InputError(f"{where}: empty: no header to tell text from tabular")
    others = [c for c in columns if c != field_name and not is_id_column(c)]
    return "text" if field_name in columns and not others else "tabular"


# --------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _jsonl_sample(line: str, number: int, field_name: str, where: str) -> str:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: line {number}: not valid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise InputError(f"{where}: line {number}: not valid JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise InputError(f"{where}: line {number}: expected a JSON object, got {_json_type(obj)}")
    if field_name not in obj:
        fields = f"fields: {_listing(obj)}" if obj else "the object is empty"
        raise InputError(f"{where}: line {number}: no field {field_name!r} ({fields})")
    value = obj[field_name]
    if not isinstance(value, str):
        shown = "" if value is None else f" ({_preview(value)})"
        raise InputError(
            f"{where}: line {number}: field {field_name!r} is {_json_type(value)}{shown}, expected a string"
        )
    return value


def _texts_from_lines(path, where, ext, field_name, collector, max_line_bytes) -> str:
    h = hashlib.sha256()
    for first_line, lines in _iter_lines(path, where, max_line_bytes, h):
        if ext == ".txt":
            collector.add(lines)
        else:
            collector.add(
                [_jsonl_sample(line, first_line + i, field_name, where) for i, line in enumerate(lines) if line.strip()]
            )
    return h.hexdigest()


def _texts_from_csv(path, where, field_name, collector, max_line_bytes) -> str:
    fingerprint = _scan_lines(path, where, max_line_bytes)
    columns = _csv_header(path, where, max_line_bytes)
    if not columns:
        raise InputError(f"{where}: empty: no samples")
    if field_name not in columns:
        raise InputError(f"{where}: no column {field_name!r} (columns: {_listing(columns)})")
    try:
        reader = pd.read_csv(
            path, usecols=[field_name], dtype=str, keep_default_na=False, na_filter=False,
            encoding="utf-8", chunksize=CHUNK_ROWS,
        )
        with reader:
            for chunk in reader:
                collector.add(chunk[field_name].tolist())
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{where}: not a readable CSV: {_one_line(exc)}") from exc
    return fingerprint


def _is_arrow_string(arrow_type) -> bool:
    """Strings, also dictionary-encoded (a pandas category of strings)."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def _texts_from_parquet(path, where, field_name, collector) -> str:
    parquet = _parquet_file(path, where, empty="empty: no samples")
    columns = _parquet_columns(parquet)
    if field_name not in columns:
        raise InputError(f"{where}: no column {field_name!r} (columns: {_listing(columns)})")
    if parquet.metadata.num_rows == 0:
        raise InputError(f"{where}: empty: no samples")
    arrow_type = parquet.schema_arrow.field(field_name).type
    if not _is_arrow_string(arrow_type):
        raise InputError(f"{where}: column {field_name!r} holds {arrow_type} values, expected strings")
    try:
        for batch in parquet.iter_batches(batch_size=CHUNK_ROWS, columns=[field_name]):
            values = batch.column(0)
            if values.null_count:
                row = collector.n + int(np.argmax(values.is_null().to_numpy(zero_copy_only=False))) + 1
                raise InputError(f"{where}: row {row}: column {field_name!r} is null")
            collector.add(values.to_pylist())
    except InputError:
        raise
    except Exception as exc:  # pyarrow raises several types for damaged pages
        raise InputError(f"{where}: not a readable Parquet file: {_one_line(exc)}") from exc
    return sha256_file(path)


def load_texts(
    path: str | Path,
    role: str,
    round_number: int | None = None,
    *,
    field: str = DEFAULT_TEXT_FIELD,
    max_samples: int | None = None,
    seed: int = 0,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> LoadedTexts:
    """Stream the text samples of a ``.txt``, ``.jsonl``, ``.csv`` or ``.parquet`` file.

    Args:
        path: the file; its extension picks the format.
        role: ``"reference"`` or ``"round"``, for messages.
        round_number: the round, for messages.
        field: the JSONL field or the CSV / Parquet column holding the text.
        max_samples: keep a seeded uniform subsample of this many samples
            (in file order); ``None`` keeps all.
        seed: the subsample's seed.
        max_line_bytes: refuse any line longer than this (``.txt``,
            ``.jsonl``, ``.csv``).

    Raises:
        InputError: missing or unsupported file, a line over the limit, bad
            UTF-8, bad JSON, a missing or non-string field, a missing or
            non-string column, a null text, no samples.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "r.jsonl")
        >>> _ = open(p, "w").write('{"text": "a"}\\n\\n{"text": "b", "id": 2}\\n')
        >>> loaded = load_texts(p, "round", 1)
        >>> loaded.texts, loaded.n_total
        (['a', 'b'], 2)
    """
    _check_max_samples(max_samples)
    _check_max_line_bytes(max_line_bytes)
    p = Path(path)
    where = _where(p, role, round_number)
    _existing_file(p, where)
    ext = _extension(p, where)
    _check_readable_as("text", ext, where)
    return remembered("text", p, (field, max_samples, seed, max_line_bytes),
                      lambda: _read_texts(p, where, ext, field, max_samples, seed, max_line_bytes))


def _read_texts(p: Path, where: str, ext: str, field: str, max_samples, seed: int, max_line_bytes: int) -> LoadedTexts:
    collector = _TextCollector(max_samples, seed)
    if ext in (".txt", ".jsonl"):
        fingerprint = _texts_from_lines(p, where, ext, field, collector, max_line_bytes)
    elif ext == ".csv":
        fingerprint = _texts_from_csv(p, where, field, collector, max_line_bytes)
    else:
        fingerprint = _texts_from_parquet(p, where, field, collector)
    if collector.n == 0:
        raise InputError(f"{where}: empty: no samples")
    return LoadedTexts(path=p, texts=collector.result(), n_total=collector.n, fingerprint=fingerprint)


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------


def _is_numeric_dtype(dtype) -> bool:
    """Integer or float; bool and complex are not numeric here (as in metrics_core.tabular)."""
    return (
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
        and not pd.api.types.is_complex_dtype(dtype)
    )


def infer_column_kinds(frame: pd.DataFrame) -> dict[str, str]:
    """``"numeric"`` for integer and float columns, ``"categorical"`` for every other dtype.

    Example:
        >>> infer_column_kinds(pd.DataFrame({"age": [1, 2], "w": [0.5, 1.0], "sex": ["f", "m"], "ok": [True, False]}))
        {'age': 'numeric', 'w': 'numeric', 'sex': 'categorical', 'ok': 'categorical'}
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame: expected a pandas DataFrame, got {type(frame).__name__}")
    return {str(c): NUMERIC if _is_numeric_dtype(frame[c].dtype) else CATEGORICAL for c in frame.columns}


def _reference_kinds(reference_columns) -> dict[str, tuple[str, str]]:
    """column -> (kind, how the reference shows it) from kinds or dtypes."""
    if reference_columns is None:
        return {}
    if not isinstance(reference_columns, Mapping):
        raise ValueError(
            f"reference_columns: expected a mapping column -> kind or dtype, got {type(reference_columns).__name__}"
        )
    out = {}
    for column, spec in reference_columns.items():
        if isinstance(spec, str) and spec in (NUMERIC, CATEGORICAL):
            out[str(column)] = (spec, spec)
            continue
        try:
            dtype = pd.api.types.pandas_dtype(spec)
        except TypeError as exc:
            raise ValueError(
                f"reference_columns: column {column!r}: expected 'numeric', 'categorical' or a dtype, got {spec!r}"
            ) from exc
        out[str(column)] = (NUMERIC if _is_numeric_dtype(dtype) else CATEGORICAL, str(dtype))
    return out


class _ColumnStats:
    """What the whole file says about one column, gathered chunk by chunk."""

    def __init__(self):
        self.non_null = 0
        self.first_value: tuple[int, object] | None = None  # (row, value) of the first non-null cell
        self.first_non_number: tuple[int, object] | None = None  # CSV: first cell that is not a number
        self.non_numeric_dtype = False  # Parquet: some batch has a non-numeric dtype

    def update(self, values: pd.Series, first_row: int, from_strings: bool) -> None:
        present = values.notna().to_numpy()
        count = int(present.sum())
        if count == 0:
            return
        self.non_null += count
        if self.first_value is None:
            i = int(np.argmax(present))
            self.first_value = (first_row + i, values.iloc[i])
        if from_strings:
            if self.first_non_number is None:
                bad = present & pd.to_numeric(values, errors="coerce").isna().to_numpy()
                if bad.any():
                    i = int(np.argmax(bad))
                    self.first_non_number = (first_row + i, values.iloc[i])
        elif not _is_numeric_dtype(values.dtype):
            self.non_numeric_dtype = True

    def kind(self, from_strings: bool) -> str:
        if from_strings:
            return CATEGORICAL if self.first_non_number is not None else NUMERIC
        return CATEGORICAL if self.non_numeric_dtype else NUMERIC

    def example(self, from_strings: bool) -> tuple[int, object]:
        """A cell that shows the column's kind: the first non-number if any, else the first value."""
        if from_strings and self.first_non_number is not None:
            return self.first_non_number
        return self.first_value


def _values_word(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "booleans"
    if isinstance(value, str):
        return "strings"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "numbers"
    return f"{type(value).__name__} values"


def _csv_chunks(path: Path, where: str) -> Iterator[pd.DataFrame]:
    try:
        reader = pd.read_csv(path, dtype=str, encoding="utf-8", chunksize=CHUNK_ROWS)
        with reader:
            yield from reader
    except pd.errors.EmptyDataError:
        return
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{where}: not a readable CSV: {_one_line(exc)}") from exc


def _parquet_chunks(parquet, columns: list[str], where: str) -> Iterator[pd.DataFrame]:
    import pyarrow as pa

    try:
        for batch in parquet.iter_batches(batch_size=CHUNK_ROWS, columns=columns):
            frame = pa.Table.from_batches([batch]).to_pandas()
            # The pandas metadata turns a named index column back into the index; keep it a column.
            if any(name in columns for name in frame.index.names):
                frame = frame.reset_index()
            yield frame[columns].reset_index(drop=True)
    except Exception as exc:  # pyarrow raises several types for damaged pages
        raise InputError(f"{where}: not a readable Parquet file: {_one_line(exc)}") from exc


def _check_missing(columns: list[str], reference: dict, where: str) -> None:
    missing = [c for c in reference if c not in columns]
    if len(missing) == 1:
        raise InputError(f"{where}: column {missing[0]!r} is missing (the reference has it)")
    if missing:
        raise InputError(
            f"{where}: columns {_listing(repr(c) for c in missing)} are missing (the reference has them)"
        )


def load_table(
    path: str | Path,
    role: str,
    round_number: int | None = None,
    *,
    reference_columns: Mapping | None = None,
    max_samples: int | None = None,
    seed: int = 0,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> LoadedTable:
    """Stream the rows of a ``.csv`` or ``.parquet`` table and check them against the reference's columns.

    Checks, in this order, each refusing the file with one line: a reference
    column missing from the header; a line over ``max_line_bytes`` or bad
    UTF-8 (CSV); no rows; a column whose every value is null (the reference's
    columns when ``reference_columns`` is given, else every column); a
    column whose kind differs from the reference (numeric vs categorical,
    decided over the whole file, see the module notes), shown with the first
    cell that differs and its row. Columns the reference lacks are kept and
    listed in ``extra_columns``.

    Args:
        path: the file; ``.csv`` or ``.parquet``.
        role: ``"reference"`` or ``"round"``, for messages.
        round_number: the round, for messages.
        reference_columns: column -> ``"numeric"`` / ``"categorical"`` (as
            from :func:`infer_column_kinds` or ``LoadedTable.column_kinds`` of
            the reference) or a pandas dtype (converted to a kind the same
            way); ``None`` skips the comparison. Both directions are checked,
            so pass these dtype kinds, not ``metrics_core.tabular``'s metric
            schema, which calls integer columns with few levels categorical.
        max_samples: keep a seeded uniform subsample of this many rows (in
            file order); ``None`` keeps all.
        seed: the subsample's seed.
        max_line_bytes: refuse any CSV line longer than this.

    Raises:
        InputError: as listed above, and for a missing, unsupported or
            unreadable file.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "r.csv")
        >>> _ = open(p, "w").write("age,sex\\n31,f\\n,m\\n40,NA\\n")
        >>> t = load_table(p, "round", 2, reference_columns={"age": "numeric"})
        >>> t.frame["age"].tolist(), t.column_kinds, t.extra_columns
        ([31.0, nan, 40.0], {'age': 'numeric', 'sex': 'categorical'}, ['sex'])
    """
    _check_max_samples(max_samples)
    _check_max_line_bytes(max_line_bytes)
    reference = _reference_kinds(reference_columns)
    p = Path(path)
    where = _where(p, role, round_number)
    _existing_file(p, where)
    ext = _extension(p, where)
    _check_readable_as("tabular", ext, where)
    return remembered("table", p, (tuple(sorted(reference.items())), max_samples, seed, max_line_bytes),
                      lambda: _read_table(p, where, ext, reference, max_samples, seed, max_line_bytes))


def _read_table(p: Path, where: str, ext: str, reference: dict, max_samples, seed: int,
                max_line_bytes: int) -> LoadedTable:
    from_strings = ext == ".csv"
    if from_strings:
        columns = _csv_header(p, where, max_line_bytes)
        if not columns:
            raise InputError(f"{where}: empty: no rows")
        _check_missing(columns, reference, where)
        fingerprint = _scan_lines(p, where, max_line_bytes)
        chunks = _csv_chunks(p, where)
    else:
        parquet = _parquet_file(p, where, empty="empty: no rows")
        columns = _parquet_columns(parquet)
        _check_missing(columns, reference, where)
        fingerprint = sha256_file(p)
        chunks = _parquet_chunks(parquet, columns, where)

    stats = {c: _ColumnStats() for c in columns}
    collector = _RowCollector(max_samples, seed)
    for chunk in chunks:
        chunk.columns = [str(c) for c in chunk.columns]
        for column in columns:
            stats[column].update(chunk[column], collector.n + 1, from_strings)
        collector.add(chunk)
    if collector.n == 0:
        raise InputError(f"{where}: empty: no rows")

    checked = [c for c in columns if c in reference] if reference else columns
    for column in checked:
        if stats[column].non_null == 0:
            raise InputError(f"{where}: column {column!r}: every value is null ({collector.n} rows)")
    kinds = {c: stats[c].kind(from_strings) if stats[c].non_null else NUMERIC for c in columns}
    for column, (expected, shown) in reference.items():
        if kinds[column] != expected:
            row, value = stats[column].example(from_strings)
            if from_strings and kinds[column] == NUMERIC:
                value = pd.to_numeric(pd.Series([value])).iloc[0].item()
            like = f"like the reference ({shown})" if shown != expected else "like the reference"
            raise InputError(
                f"{where}: column {column!r}: expected {expected} {like}, "
                f"got {_values_word(value)} such as {_preview(value)} (row {row})"
            )

    frame = collector.result()
    if from_strings:
        for column in columns:
            if kinds[column] == NUMERIC:
                frame[column] = pd.to_numeric(frame[column])
    extra = [c for c in columns if c not in reference] if reference else []
    return LoadedTable(
        path=p, frame=frame, n_total=collector.n, fingerprint=fingerprint, column_kinds=kinds, extra_columns=extra
    )
