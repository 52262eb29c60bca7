"""``load_log_lines``: log rounds from ``.log`` files, severity and component by pattern, one-line refusals."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from monitor.engine.null import split_reference, take_rows
from monitor.errors import InputError
from monitor.inputs.logs import (
    EXAMPLE_PATTERN,
    LoadedLogLines,
    compile_log_pattern,
    load_log_lines,
    log_lines_from_strings,
)

LINES = ["INFO sshd: Accepted password for bob from 10.0.0.5 port 40000 ssh2",
         "ERROR kernel: Out of memory: killed process 1097",
         "garbled line without a header",
         "  WARN http: slow request r1037 took 28 ms"]


def _write(path, lines, newline="\n"):
    path.write_bytes("".join(line + newline for line in lines).encode("utf-8"))
    return path


def _refusal(fn, *args, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_good_file_keeps_lines_and_parses_severity_and_component(tmp_path):
    path = _write(tmp_path / "round.log", [LINES[0], "", "   ", *LINES[1:]])
    loaded = load_log_lines(path, "round", 2, pattern=EXAMPLE_PATTERN)
    assert isinstance(loaded, LoadedLogLines) and loaded.modality == "log"
    assert loaded.lines == tuple(LINES)  # blank lines skipped, the rest kept as they are (leading spaces too)
    assert len(loaded) == loaded.n_used == loaded.n_total == 4
    # the pattern is anchored: the indented line and the garbled one are unparsed
    assert loaded.severity == ("INFO", "ERROR", None, None)
    assert loaded.component == ("sshd", "kernel", None, None)
    assert loaded.texts == LINES
    assert loaded.fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()
    plain = load_log_lines(path, "round", 2)
    assert plain.severity is None and plain.component is None and plain.lines == loaded.lines


def test_crlf_bom_and_a_missing_final_newline(tmp_path):
    path = tmp_path / "r.log"
    path.write_bytes(b"\xef\xbb\xbfINFO a: x\r\nWARN b: y")
    loaded = load_log_lines(path, "reference", pattern=EXAMPLE_PATTERN)
    assert loaded.lines == ("INFO a: x", "WARN b: y") and loaded.severity == ("INFO", "WARN")


def test_a_pattern_with_one_group_gives_only_that_field(tmp_path):
    path = _write(tmp_path / "r.log", ["2024-01-01 ERROR db query failed", "no level here"])
    loaded = load_log_lines(path, "round", 1, pattern=r"\b(?P<severity>INFO|WARN|ERROR)\b")
    assert loaded.severity == ("ERROR", None) and loaded.component is None
    compiled = re.compile(r"(?P<component>\w+)\[\d+\]")
    loaded = load_log_lines(_write(tmp_path / "c.log", ["sshd[42] ok", "bare"]), "round", 1, pattern=compiled)
    assert loaded.component == ("sshd", None) and loaded.severity is None
    # an optional group that takes no part is unparsed too
    loaded = load_log_lines(path, "round", 1, pattern=r"^(?:(?P<severity>[A-Z]+) )?\S+")
    assert loaded.severity == (None, None)


def test_max_samples_keeps_a_seeded_choice_in_file_order_and_pseudo_rounds_take_rows(tmp_path):
    path = _write(tmp_path / "pool.log", [f"INFO c{i % 3}: event {i}" for i in range(40)])
    loaded = load_log_lines(path, "round", 1, pattern=EXAMPLE_PATTERN, max_samples=10, seed=4)
    picked = [int(line.rsplit(" ", 1)[1]) for line in loaded.lines]
    assert len(picked) == 10 and picked == sorted(picked) and loaded.n_total == 40
    assert loaded.component == tuple(f"c{i % 3}" for i in picked)
    assert load_log_lines(path, "round", 1, max_samples=10, seed=4).lines == loaded.lines
    assert load_log_lines(path, "round", 1, max_samples=10, seed=5).lines != loaded.lines
    assert load_log_lines(path, "round", 1, max_samples=100).lines == load_log_lines(path, "round", 1).lines
    whole = load_log_lines(path, "pool", pattern=EXAMPLE_PATTERN)
    rows = take_rows(whole, np.array([3, 0, 7]))
    assert rows.lines == ("INFO c0: event 3", "INFO c0: event 0", "INFO c1: event 7")
    assert rows.component == ("c0", "c0", "c1") and rows.severity == ("INFO",) * 3
    assert len(rows) == rows.n_total == 3 and rows.fingerprint == whole.fingerprint
    bare = load_log_lines(path, "pool").take_rows([1])
    assert bare.lines == ("INFO c1: event 1",) and bare.severity is None
    ref, pool = split_reference(whole, seed=0)
    assert len(ref) + len(pool) == 40 and sorted(ref.lines + pool.lines) == sorted(whole.lines)
    with pytest.raises(ValueError, match=r"^max_samples: expected a positive integer or None, got 0$"):
        load_log_lines(path, "round", 1, max_samples=0)


def test_each_bad_file_is_one_line_naming_file_role_and_line(tmp_path):
    where = lambda p: f"{p} (round, round 3)"  # noqa: E731
    missing = tmp_path / "missing.log"
    assert _refusal(load_log_lines, missing, "round", 3) == f"{where(missing)}: file not found"
    txt = _write(tmp_path / "round.txt", ["INFO a: x"])
    assert _refusal(load_log_lines, txt, "round", 3) == \
        f"{where(txt)}: modality log cannot read a .txt file (log reads .log)"
    bare = _write(tmp_path / "round", ["INFO a: x"])
    assert _refusal(load_log_lines, bare, "round", 3) == \
        f"{where(bare)}: modality log cannot read a file without an extension (log reads .log)"
    bad = tmp_path / "bad.log"
    bad.write_bytes(b"INFO a: x\nWARN b: \xff y\n")
    assert _refusal(load_log_lines, bad, "round", 3) == \
        f"{where(bad)}: line 2: not valid UTF-8 at byte offset 8 (byte 18 of the file): bytes ff"
    long = _write(tmp_path / "long.log", ["INFO a: x", "y" * 100])
    assert _refusal(load_log_lines, long, "round", 3, max_line_bytes=64) == \
        f"{where(long)}: line 2: longer than the limit of 64 bytes (max_line_bytes=64); refused without reading it whole"
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    assert _refusal(load_log_lines, empty, "round", 3) == f"{where(empty)}: empty: no log lines"
    blank = _write(tmp_path / "blank.log", ["", "  ", "\t"])
    assert _refusal(load_log_lines, blank, "round", 3) == f"{where(blank)}: empty: no log lines"
    assert _refusal(load_log_lines, missing, "reference") == f"{missing} (reference): file not found"


@pytest.mark.parametrize("pattern, message", [
    ("(?P<severity>[A-Z+", "--log-pattern: not a valid regular expression: unterminated character set at position "
                           "13 in '(?P<severity>[A-Z+'"),
    (r"^(\w+) ", "--log-pattern: expected a named group 'severity' or 'component', e.g. "
                 "'^(?P<severity>[A-Z]+) (?P<component>\\\\w+):', got no named group in '^(\\\\w+) '"),
    (r"^(?P<level>\w+) ", "--log-pattern: expected a named group 'severity' or 'component', e.g. "
                          "'^(?P<severity>[A-Z]+) (?P<component>\\\\w+):', got named groups 'level' in "
                          "'^(?P<level>\\\\w+) '"),
    (3, "--log-pattern: expected a regular expression, got int"),
    (re.compile(rb"(?P<severity>\w+)"), "--log-pattern: expected a str regular expression, got a bytes one"),
])
def test_each_bad_pattern_is_one_line_naming_the_option(tmp_path, pattern, message):
    assert _refusal(compile_log_pattern, pattern) == message
    path = _write(tmp_path / "r.log", ["INFO a: x"])
    assert _refusal(load_log_lines, path, "round", 1, pattern=pattern) == message
    assert _refusal(log_lines_from_strings, ["INFO a: x"], "generated", pattern=pattern) == message


def test_in_memory_lines_are_checked_like_a_file_and_fingerprinted_as_one(tmp_path):
    lines = [LINES[0], "", LINES[1]]
    loaded = log_lines_from_strings(lines, "generated", pattern=EXAMPLE_PATTERN)
    assert loaded.lines == (LINES[0], LINES[1]) and loaded.severity == ("INFO", "ERROR") and loaded.n_total == 2
    path = _write(tmp_path / "same.log", lines)
    assert loaded.fingerprint == load_log_lines(path, "round", 1).fingerprint
    assert loaded.fingerprint != log_lines_from_strings(lines[::-1], "generated").fingerprint
    assert str(loaded.path) == "<memory>"
    assert _refusal(log_lines_from_strings, ["ok", 3], "generated") == "generated: line 2: expected a string, got int"
    assert _refusal(log_lines_from_strings, ["ok", "a\nb"], "generated") == \
        "generated: line 2: expected one line of text, got a line break at character 1"
    assert _refusal(log_lines_from_strings, ["\udcff"], "generated") == \
        "generated: line 1: not encodable as UTF-8 at character 0: '\\udcff'"
    assert _refusal(log_lines_from_strings, ["", " "], "generated") == "generated: empty: no log lines"
    assert _refusal(log_lines_from_strings, "INFO a: x", "generated") == \
        "generated: expected a list of log lines (str), got str"
