r"""Log rounds from ``.log`` files: one log line per line, streamed, subsampled by line, checked.

Every non-blank line is a sample, kept as it is (no stripping: the templates' tokeniser splits on whitespace
itself); blank (whitespace-only) lines are skipped. The shared line rules are :mod:`monitor.inputs.files`':
lines end at ``\n``, one trailing ``\r`` is dropped, a UTF-8 byte order mark at the start is ignored, UTF-8 is
checked on every line and a line over ``max_line_bytes`` is refused without reading it whole.

With a log pattern (``--log-pattern``, :func:`compile_log_pattern`), a regular expression with a named group
``severity`` and/or ``component``, each line's severity and component are what those groups capture at the
pattern's first match (:meth:`re.Pattern.search`), ``None`` where the pattern does not match the line or the
group takes no part: the metrics count those lines as "unparsed".

Each failure is one line naming the file, role and line, for example
``r.log (round, round 3): line 7: not valid UTF-8 at byte offset 4 (byte 120 of the file): bytes ff``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.errors import InputError
from monitor.inputs.files import (
    DEFAULT_MAX_LINE_BYTES,
    _check_max_line_bytes,
    _check_max_samples,
    _existing_file,
    _iter_lines,
    _where,
    remembered,
    kept_items,
)

LOG_EXTENSIONS = (".log",)
PATTERN_OPTION = "--log-pattern"
PATTERN_GROUPS = ("severity", "component")
#: An example pattern: ``"ERROR kernel: ..."`` gives severity ``ERROR`` and component ``kernel``.
EXAMPLE_PATTERN = r"^(?P<severity>[A-Z]+) (?P<component>\w+):"


@dataclass(frozen=True)
class LoadedLogLines:
    """The kept lines of one log file, in file order; ``n_total`` is all its non-blank lines.

    ``severity`` and ``component`` hold one value per line (``None`` where the pattern did not parse it), or are
    ``None`` as a whole when there is no pattern or it has no such group.
    """

    path: Path
    lines: tuple[str, ...]
    severity: tuple[str | None, ...] | None
    component: tuple[str | None, ...] | None
    n_total: int
    fingerprint: str
    modality: str = "log"

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def n_used(self) -> int:
        return len(self.lines)

    @property
    def texts(self) -> list[str]:
        """What a line is embedded as: the line itself."""
        return list(self.lines)

    def take_rows(self, indices) -> "LoadedLogLines":
        """The lines at ``indices``, in that order (a pool's pseudo-round)."""
        idx = [int(i) for i in np.asarray(indices).ravel()]

        def pick(values):
            return None if values is None else tuple(values[i] for i in idx)

        return LoadedLogLines(self.path, pick(self.lines), pick(self.severity), pick(self.component), len(idx),
                              self.fingerprint)


def compile_log_pattern(pattern) -> re.Pattern:
    r"""The ``--log-pattern`` regular expression, compiled, with a named group ``severity`` and/or ``component``.

    Args:
        pattern: a regular expression (``str``) or an already compiled one.

    Raises:
        InputError: one line naming the option: not a valid regular expression, or neither named group.

    Example:
        >>> sorted(compile_log_pattern(EXAMPLE_PATTERN).groupindex)
        ['component', 'severity']
        >>> try:
        ...     compile_log_pattern(r"^(\w+) ")
        ... except InputError as exc:
        ...     print(str(exc).replace(repr(EXAMPLE_PATTERN), "EXAMPLE_PATTERN"))
        --log-pattern: expected a named group 'severity' or 'component', e.g. EXAMPLE_PATTERN, got no named group in '^(\\w+) '
    """
    if isinstance(pattern, re.Pattern):
        compiled = pattern
    elif isinstance(pattern, str):
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise InputError(f"{PATTERN_OPTION}: not a valid regular expression: {exc} in {pattern!r}") from None
    else:
        raise InputError(f"{PATTERN_OPTION}: expected a regular expression, got {type(pattern).__name__}")
    if not isinstance(compiled.pattern, str):
        raise InputError(f"{PATTERN_OPTION}: expected a str regular expression, got a bytes one")
    if not set(PATTERN_GROUPS) & set(compiled.groupindex):
        named = ", ".join(repr(g) for g in compiled.groupindex)
        got = f"named groups {named}" if named else "no named group"
        raise InputError(f"{PATTERN_OPTION}: expected a named group 'severity' or 'component', e.g. "
                         f"{EXAMPLE_PATTERN!r}, got {got} in {compiled.pattern!r}")
    return compiled


def _fields(lines: list[str], pattern: re.Pattern | None) -> tuple[tuple | None, tuple | None]:
    """Per line, what the pattern's severity and component groups captured (``None``: not parsed)."""
    if pattern is None:
        return None, None
    matches = [pattern.search(line) for line in lines]
    return tuple(tuple(None if m is None else m.group(group) for m in matches) if group in pattern.groupindex
                 else None for group in PATTERN_GROUPS)


def _loaded(path: Path, lines: list[str], n_total: int, fingerprint: str, pattern) -> LoadedLogLines:
    severity, component = _fields(lines, pattern)
    return LoadedLogLines(path, tuple(lines), severity, component, n_total, fingerprint)


def load_log_lines(
    path: str | Path,
    role: str,
    round_number: int | None = None,
    *,
    pattern: str | re.Pattern | None = None,
    max_samples: int | None = None,
    seed: int = 0,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> LoadedLogLines:
    r"""Stream the log lines of a ``.log`` file.

    Args:
        path: the file (``.log``).
        role: ``"reference"``, ``"round"`` or ``"pool"``, for messages.
        round_number: the round, for messages.
        pattern: the ``--log-pattern`` (:func:`compile_log_pattern`), or ``None``: no severity or component.
        max_samples: keep a seeded uniform choice of this many lines, in file order. ``None`` keeps all.
        seed: the choice's seed.
        max_line_bytes: refuse any line longer than this.

    Raises:
        InputError: one line naming the file, role and line: a missing or non-``.log`` file, a line over the
            limit, bad UTF-8, no non-blank line; or naming ``--log-pattern`` for a bad pattern.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "r.log")
        >>> _ = open(p, "w").write("INFO sshd: session opened\n\n  \nERROR kernel: oops\nno header\n")
        >>> r = load_log_lines(p, "round", 1, pattern=EXAMPLE_PATTERN)
        >>> r.lines, r.n_total
        (('INFO sshd: session opened', 'ERROR kernel: oops', 'no header'), 3)
        >>> r.severity, r.component
        (('INFO', 'ERROR', None), ('sshd', 'kernel', None))
        >>> load_log_lines(p.replace("r.log", "x.log"), "round", 1)
        Traceback (most recent call last):
        ...
        monitor.errors.InputError: ...x.log (round, round 1): file not found
    """
    _check_max_samples(max_samples)
    _check_max_line_bytes(max_line_bytes)
    compiled = None if pattern is None else compile_log_pattern(pattern)
    p = Path(path)
    where = _where(p, role, round_number)
    _existing_file(p, where)
    ext = p.suffix.lower()
    if ext not in LOG_EXTENSIONS:
        shown = f"a {ext} file" if ext else "a file without an extension"
        raise InputError(f"{where}: modality log cannot read {shown} (log reads {', '.join(LOG_EXTENSIONS)})")
    key = (None if compiled is None else (compiled.pattern, compiled.flags), max_samples, seed, max_line_bytes)
    return remembered("log", p, key, lambda: _read_log(p, where, compiled, max_samples, seed, max_line_bytes))


def _read_log(p: Path, where: str, pattern, max_samples, seed: int, max_line_bytes: int) -> LoadedLogLines:
    h = hashlib.sha256()
    lines: list[str] = []
    for _, block in _iter_lines(p, where, max_line_bytes, h):
        lines.extend(line for line in block if line.strip())
    if not lines:
        raise InputError(f"{where}: empty: no log lines")
    n_total = len(lines)
    keep = kept_items(n_total, max_samples, seed)
    if keep is not None:
        lines = [lines[int(i)] for i in keep]
    return _loaded(p, lines, n_total, h.hexdigest(), pattern)


def log_lines_from_strings(lines, where: str, *, pattern: str | re.Pattern | None = None,
                           path: str | Path = "<memory>") -> LoadedLogLines:
    r"""Log lines already in memory (a generator's output), checked like a file's lines.

    ``where`` names them in errors, and a line's position (1-based) stands for its line number. Blank lines are
    skipped. The fingerprint is the sha256 of the ``.log`` file they make (each line followed by ``\n``).

    >>> r = log_lines_from_strings(["INFO a: x", "", "WARN b: y"], "generated", pattern=EXAMPLE_PATTERN)
    >>> r.lines, r.severity, len(r.fingerprint)
    (('INFO a: x', 'WARN b: y'), ('INFO', 'WARN'), 64)
    >>> log_lines_from_strings(["ok", "two\nlines"], "generated")
    Traceback (most recent call last):
    ...
    monitor.errors.InputError: generated: line 2: expected one line of text, got a line break at character 3
    """
    compiled = None if pattern is None else compile_log_pattern(pattern)
    if isinstance(lines, str) or not isinstance(lines, (list, tuple)):
        raise InputError(f"{where}: expected a list of log lines (str), got {type(lines).__name__}")
    h = hashlib.sha256()
    kept = []
    for number, line in enumerate(lines, start=1):
        if not isinstance(line, str):
            raise InputError(f"{where}: line {number}: expected a string, got {type(line).__name__}")
        if "\n" in line:
            raise InputError(f"{where}: line {number}: expected one line of text, got a line break at character "
                             f"{line.index(chr(10))}")
        try:
            h.update(line.encode("utf-8") + b"\n")
        except UnicodeEncodeError as exc:
            raise InputError(f"{where}: line {number}: not encodable as UTF-8 at character {exc.start}: "
                             f"{line[exc.start:exc.end]!r}") from None
        if line.strip():
            kept.append(line)
    if not kept:
        raise InputError(f"{where}: empty: no log lines")
    return _loaded(Path(path), kept, len(kept), h.hexdigest(), compiled)
