r"""JSON-records rounds from ``.jsonl`` files: one generator output per line, each meant to be a JSON object.

A round is read *leniently*: because :func:`metrics_core.json_records.valid_json_rate` measures exactly how many
outputs parse as JSON objects, a line that does not parse is kept as an output (its record ``None``, its text in
``raw``), and so is a line holding another JSON value (an array, a string, a number). A reference is read
*strictly*: it is the data the records should look like, so a line that is not a JSON object is refused. JSON
here is RFC 8259's: ``NaN``, ``Infinity`` and ``-Infinity`` (which Python's ``json`` accepts) are not JSON.
Blank lines are skipped and are not outputs; the shared line rules (UTF-8, line length, BOM, CRLF) are
:mod:`monitor.inputs.files`'. A schema file is one JSON Schema (:func:`load_json_schema`).

Each failure is one line naming the file, role, round, line and the problem, for example
``ref.jsonl (reference): line 7: not valid JSON: Expecting ',' delimiter at column 12``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.errors import InputError
from monitor.inputs.files import (
    DEFAULT_MAX_LINE_BYTES,
    _check_max_line_bytes,
    _check_max_samples,
    _existing_file,
    _extension,
    _iter_lines,
    _one_line,
    _where,
    remembered,
    kept_items,
)

MODALITY = "json"
EXTENSIONS = (".jsonl",)
SCHEMA_EXTENSIONS = (".json",)


@dataclass(frozen=True)
class LoadedJsonRecords:
    """The kept outputs of one file, in file order; ``n_total`` is all of them (blank lines are not outputs).

    ``records[i]`` is output ``i`` parsed (a JSON object, or any other JSON value in a round), or None where the
    line did not parse (or held ``null``); ``raw[i]`` is its line as text, what the text view embeds.
    """

    path: Path
    records: tuple
    raw: tuple[str, ...]
    n_total: int
    fingerprint: str
    modality: str = MODALITY

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def n_used(self) -> int:
        return len(self.raw)

    @property
    def texts(self) -> list[str]:
        """What an output is embedded as: its line, as written (so a malformed output has a text view too)."""
        return list(self.raw)

    def take_rows(self, indices) -> "LoadedJsonRecords":
        """The outputs at ``indices``, in that order (a pool's pseudo-round)."""
        idx = [int(i) for i in np.asarray(indices).ravel()]
        return LoadedJsonRecords(self.path, tuple(self.records[i] for i in idx), tuple(self.raw[i] for i in idx),
                                 len(idx), self.fingerprint)

    def table(self):
        """The parsed objects as a table (:func:`metrics_core.json_records.flatten_records`), for the tabular suite."""
        from metrics_core.json_records import flatten_records

        return flatten_records(list(self.records))


class _NotJson(ValueError):
    """A constant Python's ``json`` accepts and RFC 8259 does not."""


def _refuse_constant(name: str):
    raise _NotJson(f"{name} is not a JSON value")


def _parse(line: str) -> tuple[object, str | None]:
    """``(value, None)``, or ``(None, why it is not JSON)``."""
    try:
        return json.loads(line, parse_constant=_refuse_constant), None
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} at column {exc.colno}"
    except _NotJson as exc:
        return None, str(exc)
    except RecursionError:
        return None, "nested too deeply"


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string" if isinstance(value, str) else "an array" if isinstance(value, list) else "an object"


def _output(line: str, number: int, where: str, strict: bool):
    value, problem = _parse(line)
    if strict:
        if problem is not None:
            raise InputError(f"{where}: line {number}: not valid JSON: {problem}")
        if not isinstance(value, dict):
            raise InputError(f"{where}: line {number}: expected a JSON object, got {_kind(value)}")
    return value


def _check_strict(strict, role: str) -> bool:
    if strict is None:
        return role == "reference"
    if not isinstance(strict, bool):
        raise ValueError(f"strict: expected True, False or None, got {strict!r}")
    return strict


def _check_schema_extension(p: Path, where: str) -> None:
    ext = p.suffix.lower()
    if ext not in SCHEMA_EXTENSIONS:
        shown = f"extension {ext!r}" if ext else "no extension"
        raise InputError(f"{where}: unsupported file type ({shown}); a JSON Schema file is "
                         f"{', '.join(SCHEMA_EXTENSIONS)}")


def load_json_records(
    path: str | Path,
    role: str,
    round_number: int | None = None,
    *,
    strict: bool | None = None,
    max_samples: int | None = None,
    seed: int = 0,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> LoadedJsonRecords:
    """Stream the outputs of a JSON-records ``.jsonl`` file.

    Args:
        path: the file (``.jsonl``).
        role: ``"reference"``, ``"round"`` or ``"pool"``, for messages.
        round_number: the round, for messages.
        strict: refuse a line that is not a JSON object; ``None``: strict for ``role="reference"`` only.
        max_samples: keep a seeded uniform choice of this many outputs, in file order. ``None`` keeps all.
        seed: the choice's seed.
        max_line_bytes: refuse any line longer than this.

    Raises:
        InputError: one line naming the file, role and line: a missing or non-``.jsonl`` file, a line over the
            limit, bad UTF-8, no outputs; when strict, a line that is not valid JSON (with the parser's message
            and column) or not a JSON object.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "r.jsonl")
        >>> _ = open(p, "w").write('{"id": 1, "tags": ["a"]}\\n\\n{"id": 2, "tags": [\\n[1, 2]\\n')
        >>> r = load_json_records(p, "round", 3)
        >>> r.records, r.raw[1], len(r), r.n_total
        (({'id': 1, 'tags': ['a']}, None, [1, 2]), '{"id": 2, "tags": [', 3, 3)
        >>> load_json_records(p, "reference")
        Traceback (most recent call last):
        ...
        monitor.errors.InputError: ...r.jsonl (reference): line 3: not valid JSON: Expecting value at column 20
    """
    _check_max_samples(max_samples)
    _check_max_line_bytes(max_line_bytes)
    p = Path(path)
    where = _where(p, role, round_number)
    strict = _check_strict(strict, role)
    _existing_file(p, where)
    ext = _extension(p, where)
    if ext not in EXTENSIONS:
        raise InputError(f"{where}: modality {MODALITY} cannot read a {ext} file ({MODALITY} reads "
                         f"{', '.join(EXTENSIONS)})")
    return remembered(MODALITY, p, (strict, max_samples, seed, max_line_bytes),
                      lambda: _read(p, where, strict, max_samples, seed, max_line_bytes))


def _read(p: Path, where: str, strict: bool, max_samples, seed: int, max_line_bytes: int) -> LoadedJsonRecords:
    h = hashlib.sha256()
    records, raw = [], []
    for first_line, lines in _iter_lines(p, where, max_line_bytes, h):
        for i, line in enumerate(lines):
            if line.strip():
                records.append(_output(line, first_line + i, where, strict))
                raw.append(line)
    return _loaded(p, where, records, raw, h.hexdigest(), max_samples, seed)


def _loaded(p: Path, where: str, records: list, raw: list, fingerprint: str, max_samples, seed: int):
    if not raw:
        raise InputError(f"{where}: empty: no records")
    n_total = len(raw)
    keep = kept_items(n_total, max_samples, seed)
    if keep is not None:
        records, raw = [records[int(i)] for i in keep], [raw[int(i)] for i in keep]
    return LoadedJsonRecords(p, tuple(records), tuple(raw), n_total, fingerprint)


def json_records_from_strings(lines, where: str, *, strict: bool = False, path: str | Path = "<memory>",
                              max_samples: int | None = None, seed: int = 0) -> LoadedJsonRecords:
    r"""Outputs from in-memory strings (a generator's), read as the lines of a file would be.

    Each string is one line: blank ones are skipped (as in a file), and one holding a line break is refused (a
    file would hold it as several lines). ``where`` names them in errors and a string's position (1-based)
    stands for its line. The fingerprint is the sha256 of the strings' UTF-8 bytes, each followed by ``\n``: the
    fingerprint of the ``.jsonl`` file that holds them.

    >>> r = json_records_from_strings(['{"a": 1}', "", '{"a": '], "generated")
    >>> r.records, r.raw, r.fingerprint == hashlib.sha256(b'{"a": 1}\n\n{"a": \n').hexdigest()
    (({'a': 1}, None), ('{"a": 1}', '{"a": '), True)
    >>> json_records_from_strings(['{"a": 1}', '[1]'], "generated", strict=True)
    Traceback (most recent call last):
    ...
    monitor.errors.InputError: generated: line 2: expected a JSON object, got an array
    """
    _check_max_samples(max_samples)
    if isinstance(lines, (str, bytes)) or not isinstance(lines, (list, tuple)):
        raise InputError(f"{where}: expected a list of str (one output each), got {type(lines).__name__}")
    h = hashlib.sha256()
    records, raw = [], []
    for number, line in enumerate(lines, start=1):
        if not isinstance(line, str):
            raise InputError(f"{where}: line {number}: expected a str, got {type(line).__name__}")
        if "\n" in line or "\r" in line:
            raise InputError(f"{where}: line {number}: an output holds a line break; a .jsonl line cannot")
        h.update(line.encode("utf-8", "surrogatepass") + b"\n")
        if line.strip():
            records.append(_output(line, number, where, strict))
            raw.append(line)
    return _loaded(Path(path), where, records, raw, h.hexdigest(), max_samples, seed)


def load_json_schema(path: str | Path) -> dict:
    """Read and check a JSON Schema file (``.json``): one JSON object, valid against its dialect's metaschema
    (``$schema``; Draft 2020-12 when it names none).

    Raises:
        InputError: one line naming the file: not found, not ``.json``, not UTF-8, not JSON (line and column),
            not an object, or not a valid JSON Schema (the first line of ``jsonschema``'s message and where in
            the schema, as a JSON path).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "s.json")
        >>> _ = open(p, "w").write('{"type": "object", "required": ["id"]}')
        >>> load_json_schema(p)
        {'type': 'object', 'required': ['id']}
        >>> _ = open(p, "w").write('{"type": "object", "required": "id"}')
        >>> load_json_schema(p)
        Traceback (most recent call last):
        ...
        monitor.errors.InputError: ...s.json (schema): not a valid JSON Schema (Draft202012Validator): \
'id' is not of type 'array' at $.required
    """
    p = Path(path)
    where = f"{p} (schema)"
    _existing_file(p, where)
    _check_schema_extension(p, where)
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not valid UTF-8 at byte {exc.start}") from None
    except OSError as exc:
        raise InputError(f"{where}: cannot read: {exc.strerror}") from None
    try:
        schema = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (_NotJson, RecursionError) as exc:
        problem = str(exc) if isinstance(exc, _NotJson) else "nested too deeply"
        raise InputError(f"{where}: not valid JSON: {problem}") from None
    if not isinstance(schema, dict):
        raise InputError(f"{where}: expected a JSON object (a JSON Schema), got {_kind(schema)}")
    from metrics_core.json_records import json_schema_validator

    try:
        json_schema_validator(schema)
    except ValueError as exc:
        raise InputError(f"{where}: {_one_line(str(exc).removeprefix('schema: '))}") from None
    return schema
