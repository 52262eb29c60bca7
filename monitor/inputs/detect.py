r"""Which modality a round file holds.

**Modality** (:func:`detect_modality`). An explicit ``modality`` always
decides, as long as it can read the extension. Otherwise ``.npy`` is
embedding, ``.txt`` is text, ``.log`` is log lines, ``.npz`` is image-text
pairs, a ``.jsonl`` file is text, agent episodes, reasoning records, graphs
or an image-text manifest by its first record's fields (JSON records only
by name), and a ``.csv`` / ``.parquet``
file is text exactly when its header holds the text column and every other
column is an id column (:func:`is_id_column`); any other table is tabular.
"""

from __future__ import annotations

from pathlib import Path


from monitor.errors import InputError
from monitor.inputs.files import (
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_TEXT_FIELD,
    MODALITIES,
    _check_max_line_bytes,
    _check_readable_as,
    _existing_file,
    _extension,
    _file_columns,
    _first_lines,
    _where,
    is_id_column,
)


def detect_modality(
    path: str | Path,
    modality: str | None = None,
    text_field: str | None = None,
    *,
    role: str = "round",
    round_number: int | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    question_field: str = "question_id",
    answer_field: str = "answer",
) -> str:
    """The modality of a file (:data:`monitor.inputs.files.MODALITIES`), reading at most its header.

    The rule, in order:

    1. The extension must be one of ``.npy .txt .jsonl .csv .parquet``
       (case-insensitive).
    2. An explicit ``modality`` (``--modality``) wins, if it reads the
       extension: embedding reads ``.npy``; text reads ``.txt .jsonl .csv
       .parquet``; tabular reads ``.csv .parquet``; reasoning, agent, json and graph read ``.jsonl``; log
       reads ``.log``; image_text reads ``.npz`` and ``.jsonl`` manifests. JSON records are never detected:
       they need ``--modality json``.
    3. ``.npy`` is embedding; ``.txt`` is text; ``.log`` is log; ``.npz`` is image_text. A ``.jsonl`` file
       is read by its first record: text when it has the ``text_field`` field; else agent when it has a
       ``steps`` array (episodes); else reasoning when it has both ``question_field`` and ``answer_field``;
       else graph when it has an ``edges`` or ``links`` array; else image_text when it has ``image`` and
       ``caption`` strings (a manifest); else text (whose loader then names the missing field).
    4. ``.csv`` / ``.parquet`` are text when the header has the column
       ``text_field`` (default ``text``) and every other column is an id
       column (:func:`is_id_column`); otherwise tabular.

    Args:
        path: the file.
        modality: ``None`` to detect, or one of :data:`monitor.inputs.files.MODALITIES`.
        text_field: the text column or JSONL field; ``None`` means ``text``.
        question_field, answer_field: the reasoning record's fields (``.jsonl`` detection).
        role, round_number: name the file in messages, as every loader of :mod:`monitor.inputs` does.

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
    if ext == ".txt":
        return "text"
    if ext == ".log":
        return "log"
    if ext == ".npz":
        return "image_text"
    if ext == ".jsonl":
        return _jsonl_modality(p, where, DEFAULT_TEXT_FIELD if text_field is None else text_field, question_field,
                               answer_field, max_line_bytes)
    _check_max_line_bytes(max_line_bytes)
    field_name = DEFAULT_TEXT_FIELD if text_field is None else text_field
    columns = _file_columns(p, ext, where, max_line_bytes)
    if not columns:
        raise InputError(f"{where}: empty: no header to tell text from tabular")
    others = [c for c in columns if c != field_name and not is_id_column(c)]
    return "text" if field_name in columns and not others else "tabular"


def _jsonl_modality(p: Path, where: str, text_field: str, question_field: str, answer_field: str,
                    max_line_bytes: int) -> str:
    """The modality a ``.jsonl`` file's first record reads as (rule 3 of :func:`detect_modality`)."""
    import json

    _check_max_line_bytes(max_line_bytes)
    for line in _first_lines(p, where, max_line_bytes).decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        try:
            first = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            return "text"  # the text loader names the line and the problem
        if not isinstance(first, dict) or text_field in first:
            return "text"
        if isinstance(first.get("steps"), list):
            return "agent"
        if question_field in first and answer_field in first:
            return "reasoning"
        if isinstance(first.get("edges"), list) or isinstance(first.get("links"), list):
            return "graph"
        if isinstance(first.get("image"), str) and isinstance(first.get("caption"), str):
            return "image_text"  # a manifest of image files and captions, for the loop's --encoder
        return "text"
    return "text"

