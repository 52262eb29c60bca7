"""The hostile-input battery: bad arrays, text, tables, names and rules files given to ``collapse-monitor audit``.

One table of cases and the exact one-line message each must get (exit 1, nothing stored). ``loop.toml`` files
have their own table in ``tests/test_watch.py`` (they are refused by the watcher, loop by loop).
"""

from __future__ import annotations

import numpy as np
import pytest

from monitor.cli import main

GOOD, REF, TEXT_REF, TABLE_REF = "good.npy", "ref.npy", "ref.jsonl", "ref.csv"
NAME_RULE = "expected 1-128 characters of letters, digits, '_', '.', '-', starting with a letter or digit"


def _forged_npy() -> bytes:
    """A valid NPY header declaring 10^12 x 16 float32 (58 TiB) over 64 bytes of data."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 16), }"
    header = header + " " * (118 - len(header)) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 64


def _write_inputs(d) -> None:
    rng = np.random.default_rng(0)
    np.save(d / REF, rng.normal(size=(50, 4)).astype(np.float32))
    np.save(d / GOOD, rng.normal(size=(40, 4)).astype(np.float32))
    (d / TEXT_REF).write_text("".join(f'{{"text": "the cat sat on mat number {i}"}}\n' for i in range(30)))
    (d / TABLE_REF).write_text("age,sex\n30,m\n40,f\n50,m\n")
    np.save(d / "object.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(d / "flat.npy", np.zeros(10, dtype=np.float32))
    with_nan = rng.normal(size=(40, 4)).astype(np.float32)
    with_nan[3, 2] = np.nan
    np.save(d / "nan.npy", with_nan)
    np.save(d / "no_rows.npy", np.zeros((0, 4), dtype=np.float32))
    np.save(d / "five_dims.npy", rng.normal(size=(40, 5)).astype(np.float32))
    np.save(d / "strings.npy", np.array([["a", "b"]]))
    (d / "garbage.npy").write_bytes(bytes(range(256)))
    (d / "forged.npy").write_bytes(_forged_npy())
    (d / "bad.jsonl").write_text('{"text": "a b c"}\n{text: 1}\n')
    (d / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    (d / "no_field.jsonl").write_text('{"body": "hello there"}\n')
    (d / "empty.txt").write_text("")
    (d / "empty.csv").write_text("")
    (d / "no_sex.csv").write_text("age\n30\n40\n")
    (d / "inf.toml").write_text("[calibration]\nthreshold_scale = inf\n")
    (d / "nan.toml").write_text("[defaults]\nz_h = nan\n")
    (d / "latin1.toml").write_bytes("# caf\xe9\n".encode("latin-1"))


def _audit(data: str, ref: str = REF, loop: str = "L", rnd: str = "1", rules: str | None = None) -> list[str]:
    return [*(["--rules", rules] if rules else []), "audit", loop, rnd, data, "--reference", ref]


# (case, argv, message): {d} is the folder holding the files.
CASES = [
    ("pickled objects", _audit("object.npy"),
     "{d}/object.npy (round, round 1): holds pickled objects, which are refused; save a float array"),
    ("1-d array", _audit("flat.npy"),
     "{d}/flat.npy (round, round 1): embeddings: expected a 2-D array [N, D], got 1-D with shape (10,)"),
    ("NaN", _audit("nan.npy"), "{d}/nan.npy (round, round 1): embeddings: 1 NaN or inf values (first in row 3)"),
    ("no rows", _audit("no_rows.npy"),
     "{d}/no_rows.npy (round, round 1): embeddings: expected a non-empty array [N, D], got shape (0, 4)"),
    ("other D", _audit("five_dims.npy"),
     "{d}/five_dims.npy (round, round 1): embeddings have D=5 features, but the reference {d}/ref.npy has D=4"),
    ("strings", _audit("strings.npy"),
     "{d}/strings.npy (round, round 1): embeddings: expected a float array, got dtype <U1"),
    ("not NPY", _audit("garbage.npy"), "{d}/garbage.npy (round, round 1): not a .npy file (no NPY header)"),
    ("forged header", _audit("forged.npy"),
     "{d}/forged.npy (round, round 1): the header declares shape (1000000000000, 16) (64,000,000,000,000 bytes of "
     "float32) but the file holds 64 bytes; truncated or corrupt"),
    ("missing file", _audit("nope.npy"), "{d}/nope.npy (round, round 1): file not found"),
    ("bad JSON line", _audit("bad.jsonl", TEXT_REF),
     "{d}/bad.jsonl (round, round 1): line 2: not valid JSON: Expecting property name enclosed in double quotes at "
     "column 2"),
    ("not UTF-8 text", _audit("latin1.txt", TEXT_REF),
     "{d}/latin1.txt (round, round 1): line 1: not valid UTF-8 at byte offset 3 (byte 3 of the file): bytes e9"),
    ("no text field", _audit("no_field.jsonl", TEXT_REF),
     "{d}/no_field.jsonl (round, round 1): line 1: no field 'text' (fields: body)"),
    ("empty text", _audit("empty.txt", TEXT_REF), "{d}/empty.txt (round, round 1): empty: no samples"),
    ("empty table", _audit("empty.csv", TABLE_REF),
     "{d}/empty.csv (round, round 1): empty: no header to tell text from tabular"),
    ("missing column", _audit("no_sex.csv", TABLE_REF),
     "{d}/no_sex.csv (round, round 1): column 'sex' is missing (the reference has it)"),
    ("loop name with a newline", _audit(GOOD, loop="L\n"), f"loop 'L\\n': {NAME_RULE}"),
    ("loop name with a path", _audit(GOOD, loop="../x"), f"loop '../x': {NAME_RULE}"),
    ("round 2^63", _audit(GOOD, rnd=str(2**63)),
     "round 9223372036854775808: expected an integer from 0 to 2147483647"),
    ("negative round", _audit(GOOD, rnd="-1"), "round -1: expected an integer from 0 to 2147483647"),
    ("rules: inf", _audit(GOOD, rules="inf.toml"),
     "{d}/inf.toml: [calibration] threshold_scale = inf: expected a finite positive number"),
    ("rules: nan", _audit(GOOD, rules="nan.toml"), "{d}/nan.toml: [defaults] z_h = nan: expected a finite number"),
    ("rules: not UTF-8", _audit(GOOD, rules="latin1.toml"),
     "{d}/latin1.toml: not UTF-8 text (byte 5); a rules file is UTF-8 TOML"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    _write_inputs(d)
    return d


@pytest.mark.parametrize(("argv", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_hostile_input_gets_one_line_naming_it_and_nothing_is_stored(inputs, home, capsys, argv, expected):
    files = {a for a in argv if (inputs / a).suffix and "/" not in a}
    argv = [str(inputs / a) if a in files else a for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == f"collapse-monitor: error: {expected.format(d=inputs)}\n"
    assert not (home / "store.db").exists()  # refused before anything was opened, let alone stored
