r"""Reasoning and code rounds from ``.jsonl`` files: one record per line, streamed, subsampled by question, checked.

A record is a JSON object with a question id (a string or an integer), a final answer (a string or a number;
a number is kept as its JSON text, so ``0.50`` stays ``"0.50"``), optionally a rationale (a string) and, when
the loop names a ``passed`` field, the user's own test-harness verdict (a boolean). Field names are options
(:class:`monitor.options.AuditOptions`). Blank lines are skipped; the shared line rules are
:mod:`monitor.inputs.files`'. A question's samples stay together: ``max_samples`` keeps whole questions.

A reference file holds the gold answers: its answer per question, over the whole file (so a question its
subsample drops still has one), and two different answers (after
:func:`metrics_core.reasoning.normalize_answer`) for one question are refused, naming both lines.
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
    _check_readable_as,
    _existing_file,
    _extension,
    _iter_lines,
    _listing,
    _where,
    remembered,
)

DEFAULT_QUESTION_FIELD = "question_id"
DEFAULT_ANSWER_FIELD = "answer"
DEFAULT_RATIONALE_FIELD = "rationale"
_PREVIEW_CHARS = 40


@dataclass(frozen=True)
class LoadedRecords:
    """Reasoning records of one file: the kept records in file order (whole questions), ``n_total`` all of them.

    ``rationales`` are ``""`` where a record has none; ``passed`` is None unless the loop names a passed field;
    ``gold`` (a reference's) maps every question of the whole file to its answer (None for a round).
    """

    path: Path
    question_ids: tuple
    answers: tuple[str, ...]
    rationales: tuple[str, ...]
    passed: tuple[bool, ...] | None
    n_total: int
    fingerprint: str
    gold: dict | None = None
    modality: str = "reasoning"
    unit_name = "questions"  # what a null's pseudo-round draws (monitor.engine.null.unit_count)

    def __len__(self) -> int:
        return len(self.question_ids)

    @property
    def n_used(self) -> int:
        return len(self.question_ids)

    @property
    def texts(self) -> list[str]:
        """What a record is embedded as: its rationale, or its answer when it has none."""
        return [r if r else a for r, a in zip(self.rationales, self.answers)]

    @property
    def n_units(self) -> int:
        """Its questions: a null's pseudo-round draws whole questions, never part of a question's samples."""
        return len(self.samples_per_question())

    def take_units(self, indices) -> "LoadedRecords":
        """The records of the questions at ``indices`` (in order of first appearance), in file order: a pool's
        pseudo-round, which keeps every sample of a question it draws.

        >>> r = LoadedRecords(Path("p.jsonl"), ("a", "b", "a", "c"), ("1", "2", "3", "4"), ("", "", "", ""),
        ...                   None, 4, "f")
        >>> r.n_units, r.take_units([0, 2]).question_ids, r.take_units([0, 2]).answers
        (3, ('a', 'a', 'c'), ('1', '3', '4'))
        """
        questions = list(self.samples_per_question())
        chosen = {questions[int(i)] for i in np.asarray(indices).ravel()}
        keep = [i for i, q in enumerate(self.question_ids) if q in chosen]
        pick = lambda values: tuple(values[i] for i in keep)  # noqa: E731
        return LoadedRecords(self.path, pick(self.question_ids), pick(self.answers), pick(self.rationales),
                             None if self.passed is None else pick(self.passed), len(keep), self.fingerprint,
                             self.gold)

    def samples_per_question(self) -> dict:
        """Question id -> its records, questions in order of first appearance."""
        counts: dict = {}
        for q in self.question_ids:
            counts[q] = counts.get(q, 0) + 1
        return counts


class _Number(str):
    """A JSON number, kept as its text (``json.loads`` hooks)."""


def _plain(value):
    """Numbers kept as their JSON text (:class:`_Number`) back to Python numbers, inside arrays and objects too."""
    if isinstance(value, _Number):
        return json.loads(str(value))
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (_Number, int, float)):  # int, float: objects built in memory, not parsed
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _shown(value) -> str:
    if value is None:
        return "null"
    text = str(value) if isinstance(value, _Number) else json.dumps(_plain(value), ensure_ascii=False)
    if len(text) > _PREVIEW_CHARS:
        text = text[: _PREVIEW_CHARS - 3] + "..."
    return f"{_kind(value)} ({text})"


def _decode(line: str, number: int, where: str) -> dict:
    try:
        obj = json.loads(line, parse_int=_Number, parse_float=_Number, parse_constant=_Number)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: line {number}: not valid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise InputError(f"{where}: line {number}: not valid JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise InputError(f"{where}: line {number}: expected a JSON object, got {_kind(obj)}")
    return obj


def _required(obj: dict, name: str, number: int, where: str):
    if name not in obj:
        fields = f"fields: {_listing(obj)}" if obj else "the object is empty"
        raise InputError(f"{where}: line {number}: no field {name!r} ({fields})")
    return obj[name]


def _bad(where: str, number: int, name: str, expected: str, value) -> InputError:
    return InputError(f"{where}: line {number}: field {name!r}: expected {expected}, got {_shown(value)}")


def _record(line: str, number: int, where: str, fields: tuple[str, str, str, str | None]):
    question_field, answer_field, rationale_field, passed_field = fields
    obj = _decode(line, number, where)
    qid = _required(obj, question_field, number, where)
    if isinstance(qid, _Number):
        try:
            qid = int(qid)
        except ValueError:  # 1.5, 1e3, NaN
            raise _bad(where, number, question_field, "a string or integer", qid) from None
    elif not isinstance(qid, str) or not qid:
        raise _bad(where, number, question_field, "a non-empty string or an integer", qid)
    answer = _required(obj, answer_field, number, where)
    if not isinstance(answer, str):  # a _Number is a str: its JSON text
        raise _bad(where, number, answer_field, "a string or number", answer)
    rationale = obj.get(rationale_field)
    if rationale is None:
        rationale = ""
    elif not isinstance(rationale, str) or isinstance(rationale, _Number):
        raise _bad(where, number, rationale_field, "a string", rationale)
    passed = None
    if passed_field is not None:
        passed = _required(obj, passed_field, number, where)
        if not isinstance(passed, bool):
            raise _bad(where, number, passed_field, "true or false", passed)
    return qid, str(answer), str(rationale), passed


def load_records(
    path: str | Path,
    role: str,
    round_number: int | None = None,
    *,
    question_field: str = DEFAULT_QUESTION_FIELD,
    answer_field: str = DEFAULT_ANSWER_FIELD,
    rationale_field: str = DEFAULT_RATIONALE_FIELD,
    passed_field: str | None = None,
    gold: bool = False,
    max_samples: int | None = None,
    seed: int = 0,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> LoadedRecords:
    """Stream the reasoning records of a ``.jsonl`` file.

    Args:
        path: the file (``.jsonl``).
        role: ``"reference"``, ``"round"`` or ``"pool"``, for messages.
        round_number: the round, for messages.
        question_field, answer_field, rationale_field, passed_field: the record's field names (no passed field:
            ``passed`` is None; with one, every record needs a boolean there).
        gold: read the file as a reference: ``gold`` maps each question (whole file) to its answer, and a question
            with two different normalised answers is refused naming both lines.
        max_samples: keep whole questions, a seeded choice of them, as many as fit in this many records (at least
            one question); records stay in file order. ``None`` keeps all.
        seed: the choice's seed.
        max_line_bytes: refuse any line longer than this.

    Raises:
        InputError: one line naming the file, role, line and field: a missing or non-``.jsonl`` file, a line over
            the limit, bad UTF-8, bad JSON, a missing field or one of the wrong type, conflicting gold answers,
            no records.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "r.jsonl")
        >>> _ = open(p, "w").write('{"question_id": 1, "answer": 0.50}\\n\\n{"question_id": "b", "answer": "x", '
        ...                        '"rationale": "so x"}\\n')
        >>> loaded = load_records(p, "round", 1)
        >>> loaded.question_ids, loaded.answers, loaded.rationales, len(loaded)
        ((1, 'b'), ('0.50', 'x'), ('', 'so x'), 2)
    """
    _check_max_samples(max_samples)
    _check_max_line_bytes(max_line_bytes)
    p = Path(path)
    where = _where(p, role, round_number)
    _existing_file(p, where)
    _check_readable_as("reasoning", _extension(p, where), where)
    fields = (question_field, answer_field, rationale_field, passed_field)
    return remembered("reasoning", p, (fields, gold, max_samples, seed, max_line_bytes),
                      lambda: _read_records(p, where, fields, gold, max_samples, seed, max_line_bytes))


def _read_records(p: Path, where: str, fields, gold: bool, max_samples, seed: int,
                  max_line_bytes: int) -> LoadedRecords:
    from metrics_core.reasoning import normalize_answer

    h = hashlib.sha256()
    records: list[tuple] = []
    golds: dict = {}  # question -> (answer, its normalised form, line)
    for first_line, lines in _iter_lines(p, where, max_line_bytes, h):
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            number = first_line + i
            record = _record(line, number, where, fields)
            records.append(record)
            if gold:
                qid, answer = record[0], record[1]
                normalized = normalize_answer(answer)
                if qid not in golds:
                    golds[qid] = (answer, normalized, number)
                elif golds[qid][1] != normalized:
                    first, _, first_number = golds[qid]
                    raise InputError(
                        f"{where}: line {number}: question {qid!r}: gold answer {answer!r} differs from "
                        f"{first!r} on line {first_number}; a reference holds one answer per question")
    if not records:
        raise InputError(f"{where}: empty: no records")
    kept = _whole_questions(records, max_samples, seed)
    return LoadedRecords(
        path=p,
        question_ids=tuple(r[0] for r in kept),
        answers=tuple(r[1] for r in kept),
        rationales=tuple(r[2] for r in kept),
        passed=None if fields[3] is None else tuple(r[3] for r in kept),
        n_total=len(records),
        fingerprint=h.hexdigest(),
        gold={q: a for q, (a, _, _) in golds.items()} if gold else None,
    )


def _whole_questions(records: list[tuple], max_samples: int | None, seed: int) -> list[tuple]:
    """The records of a seeded choice of questions fitting in ``max_samples`` records, in file order."""
    if max_samples is None or len(records) <= max_samples:
        return records
    sizes: dict = {}
    for r in records:
        sizes[r[0]] = sizes.get(r[0], 0) + 1
    questions = list(sizes)
    chosen, used = set(), 0
    for index in np.random.default_rng(seed).permutation(len(questions)):
        q = questions[int(index)]
        if used + sizes[q] > max_samples:
            if chosen:
                break
        chosen.add(q)
        used += sizes[q]
    return [r for r in records if r[0] in chosen]
