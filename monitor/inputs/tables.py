r"""Tabular rounds from ``.csv`` or ``.parquet`` files: streamed, subsampled, checked.

**CSV cells.** The text column is read verbatim (an empty cell, or a row
too short to reach the column, is an empty sample; ``NA`` is the text "NA"). For tables every cell is read as a string
with pandas' default null markers (empty, ``NA``, ``null``, ...), and a column
is numeric when every non-null cell in the whole file parses as a number
(:func:`pandas.to_numeric`); numeric columns are converted, the others stay
strings. Deciding over the whole file keeps the kind independent of pandas'
chunking and of which rows were sampled. Row numbers count data rows from 1
(the header is not a row).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.errors import InputError
from monitor.inputs import files
from monitor.inputs.files import (
    CATEGORICAL,
    DEFAULT_MAX_LINE_BYTES,
    NUMERIC,
    _check_max_line_bytes,
    _check_max_samples,
    _check_readable_as,
    _csv_header,
    _existing_file,
    _extension,
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
from monitor.inputs.sampling import _RowCollector


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
        reader = pd.read_csv(path, dtype=str, encoding="utf-8", chunksize=files.CHUNK_ROWS)
        with reader:
            yield from reader
    except pd.errors.EmptyDataError:
        return
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{where}: not a readable CSV: {_one_line(exc)}") from exc


def _parquet_chunks(parquet, columns: list[str], where: str) -> Iterator[pd.DataFrame]:
    import pyarrow as pa

    try:
        for batch in parquet.iter_batches(batch_size=files.CHUNK_ROWS, columns=columns):
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

