r"""Which modality a round file holds.

**Modality** (:func:`detect_modality`). An explicit ``modality`` always
decides, as long as it can read the extension. Otherwise ``.npy`` is
embedding, ``.txt`` and ``.jsonl`` are text, and a ``.csv`` / ``.parquet``
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
) -> str:
    """``"text"``, ``"tabular"`` or ``"embedding"`` for a file, reading at most its header.

    The rule, in order:

    1. The extension must be one of ``.npy .txt .jsonl .csv .parquet``
       (case-insensitive).
    2. An explicit ``modality`` (``--modality``) wins, if it reads the
       extension: embedding reads ``.npy``; text reads ``.txt .jsonl .csv
       .parquet``; tabular reads ``.csv .parquet``; reasoning and agent read ``.jsonl``
       (neither is ever detected: a ``.jsonl`` file is text unless told).
    3. ``.npy`` is embedding; ``.txt`` and ``.jsonl`` are text.
    4. ``.csv`` / ``.parquet`` are text when the header has the column
       ``text_field`` (default ``text``) and every other column is an id
       column (:func:`is_id_column`); otherwise tabular.

    Args:
        path: the file.
        modality: ``None`` to detect, or one of ``text``, ``tabular``, ``embedding``, ``reasoning``, ``agent``.
        text_field: the text column or JSONL field; ``None`` means ``text``.
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
    if ext in (".txt", ".jsonl"):
        return "text"
    _check_max_line_bytes(max_line_bytes)
    field_name = DEFAULT_TEXT_FIELD if text_field is None else text_field
    columns = _file_columns(p, ext, where, max_line_bytes)
    if not columns:
        raise InputError(f"{where}: empty: no header to tell text from tabular")
    others = [c for c in columns if c != field_name and not is_id_column(c)]
    return "text" if field_name in columns and not others else "tabular"


