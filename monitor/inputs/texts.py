r"""Text rounds from ``.txt``, ``.jsonl``, ``.csv`` or ``.parquet`` files: streamed, subsampled, checked.

The shared rules (failures, streaming, lines) are :mod:`monitor.inputs.files`'.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.errors import InputError
from monitor.inputs import files
from monitor.inputs.files import (
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_TEXT_FIELD,
    _check_max_line_bytes,
    _check_max_samples,
    _check_readable_as,
    _csv_header,
    _existing_file,
    _extension,
    _iter_lines,
    _listing,
    _one_line,
    _parquet_columns,
    _parquet_file,
    _preview,
    _scan_lines,
    _where,
    remembered,
    sha256_file,
)
from monitor.inputs.sampling import _TextCollector


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
            encoding="utf-8", chunksize=files.CHUNK_ROWS,
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
        for batch in parquet.iter_batches(batch_size=files.CHUNK_ROWS, columns=[field_name]):
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


