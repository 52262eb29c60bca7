"""Text and tabular round loaders: formats, modality, bad input, streaming and seeded subsampling."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from monitor.inputs import files, texts
from monitor.errors import InputError
from monitor.inputs import detect_modality, infer_column_kinds, load_embeddings, load_table, load_texts

MiB = 1024 * 1024


def write_bytes(path, data: bytes):
    path.write_bytes(data)
    return path


def message(fn) -> str:
    with pytest.raises(InputError) as info:
        fn()
    text = str(info.value)
    assert "\n" not in text
    return text


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------


def test_jsonl_custom_field_round_trip(tmp_path):
    rows = [
        {"body": "first", "id": 1},
        {"body": "two\nlines, \"quoted\"", "id": 2},
        {"body": "", "id": 3},
        {"body": "ünï ✓"},
    ]
    body = "\ufeff" + "\n".join(json.dumps(r, ensure_ascii=False) for r in rows[:2]) + "\r\n\n   \n"
    body += "\n".join(json.dumps(r, ensure_ascii=False) for r in rows[2:])  # no final newline
    p = write_bytes(tmp_path / "r.jsonl", body.encode())
    loaded = load_texts(p, "round", 1, field="body")
    assert loaded.texts == ["first", 'two\nlines, "quoted"', "", "ünï ✓"]
    assert (loaded.n_total, loaded.n_used, loaded.modality) == (4, 4, "text")


def test_txt_crlf_blank_lines_are_samples(tmp_path):
    p = write_bytes(tmp_path / "r.txt", b"alpha\r\nbeta\r\n\r\n\xc3\xa9t\xc3\xa9\r\nlast")
    assert load_texts(p, "round", 2).texts == ["alpha", "beta", "", "été", "last"]
    q = write_bytes(tmp_path / "q.txt", b"\xef\xbb\xbfa\n\nb\n")  # BOM dropped; the final newline ends line 3
    loaded = load_texts(q, "reference")
    assert loaded.texts == ["a", "", "b"]
    assert loaded.n_total == 3


def test_csv_text_column_is_read_verbatim(tmp_path):
    p = write_bytes(tmp_path / "r.csv", b'id,text\n1,"hello, world"\n2,"two\nlines"\n3,NA\n4,\n5,null\n')
    loaded = load_texts(p, "round", 1)
    assert loaded.texts == ["hello, world", "two\nlines", "NA", "", "null"]
    assert loaded.n_total == 5
    bom = write_bytes(tmp_path / "bom.csv", b"\xef\xbb\xbfid,text\n1,a\n")
    assert (detect_modality(bom), load_texts(bom, "round", 1).texts) == ("text", ["a"])


def test_parquet_text_column(tmp_path):
    p = tmp_path / "r.parquet"
    pd.DataFrame({"doc_id": [3, 1, 2], "content": ["c", "a", "ü"]}).to_parquet(p)
    assert load_texts(p, "round", 1, field="content").texts == ["c", "a", "ü"]
    categories = tmp_path / "c.parquet"  # dictionary-encoded strings
    pd.DataFrame({"text": pd.Categorical(["b", "a", "b"])}).to_parquet(categories)
    assert load_texts(categories, "round", 1).texts == ["b", "a", "b"]


def test_csv_table_matches_a_whole_file_pandas_read(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_ROWS", 2)  # several chunks, so kinds must be decided over the file
    p = write_bytes(
        tmp_path / "t.csv",
        b"age,weight,sex,code,flag\n31,70.5,f,1,yes\n,80,m,2,no\n40,,NA,3,yes\n22,65.25,f,x,no\n57,90,m,5,\n",
    )
    loaded = load_table(p, "round", 4)
    expected = pd.read_csv(p)
    pd.testing.assert_frame_equal(loaded.frame, expected)
    assert loaded.column_kinds == {
        "age": "numeric", "weight": "numeric", "sex": "categorical", "code": "categorical", "flag": "categorical",
    }
    assert loaded.frame["code"].tolist() == ["1", "2", "3", "x", "5"]
    assert (loaded.n_total, loaded.n_used, loaded.modality) == (5, 5, "tabular")
    assert infer_column_kinds(loaded.frame) == loaded.column_kinds


def test_parquet_table_mixed_types_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_ROWS", 2)
    frame = pd.DataFrame(
        {
            "i": [1, 2, 3, 4, 5],
            "f": [0.5, np.nan, 2.0, 3.5, -1.0],
            "s": ["a", None, "c", "d", "e"],
            "b": [True, False, True, True, False],
            "n": pd.array([1, None, 3, 4, None], dtype="Int64"),
        }
    )
    p = tmp_path / "t.parquet"
    frame.to_parquet(p)
    loaded = load_table(p, "round", 1)
    pd.testing.assert_frame_equal(loaded.frame, frame)
    assert loaded.column_kinds == {
        "i": "numeric", "f": "numeric", "s": "categorical", "b": "categorical", "n": "numeric",
    }


def test_parquet_index_columns(tmp_path):
    named = tmp_path / "named.parquet"
    pd.DataFrame({"x": [1.5, 2.5]}, index=pd.Index([7, 9], name="row_id")).to_parquet(named)
    assert load_table(named, "round", 1).frame.to_dict("list") == {"x": [1.5, 2.5], "row_id": [7, 9]}
    unnamed = tmp_path / "unnamed.parquet"
    pd.DataFrame({"x": [1.5, 2.5]}, index=[7, 9]).to_parquet(unnamed)  # stored as __index_level_0__
    assert load_table(unnamed, "round", 1).frame.to_dict("list") == {"x": [1.5, 2.5]}


def test_reference_schema_extra_columns_and_dtypes(tmp_path):
    ref = write_bytes(tmp_path / "ref.csv", b"age,sex\n31,f\n40,m\n")
    round_ = write_bytes(tmp_path / "r.csv", b"sex,age,score\nm,29,0.5\nf,33,0.7\n")
    reference = load_table(ref, "reference")
    by_kind = load_table(round_, "round", 1, reference_columns=reference.column_kinds)
    by_dtype = load_table(round_, "round", 1, reference_columns=reference.frame.dtypes.to_dict())
    assert by_kind.extra_columns == by_dtype.extra_columns == ["score"]
    assert by_kind.frame.to_dict("list") == {"sex": ["m", "f"], "age": [29, 33], "score": [0.5, 0.7]}


# --------------------------------------------------------------------------
# Modality
# --------------------------------------------------------------------------


def _csv(columns):
    return (",".join(columns) + "\n" + ",".join("1" for _ in columns) + "\n").encode()


@pytest.mark.parametrize(
    "name, columns, modality, text_field, expected",
    [
        ("e.npy", None, None, None, "embedding"),
        ("a.txt", None, None, None, "text"),
        ("a.TXT", None, None, None, "text"),
        ("a.jsonl", None, None, None, "text"),
        ("a.csv", ["text"], None, None, "text"),
        ("a.csv", ["id", "text"], None, None, "text"),
        ("a.csv", ["doc_id", "text", "Unnamed: 0"], None, None, "text"),
        ("a.csv", ["text", "label"], None, None, "tabular"),
        ("a.csv", ["body"], None, None, "tabular"),
        ("a.csv", ["id", "body"], None, "body", "text"),
        ("a.csv", ["text", "label"], "text", None, "text"),
        ("a.csv", ["text"], "tabular", None, "tabular"),
        ("a.parquet", ["text"], None, None, "text"),
        ("a.parquet", ["text", "score"], None, None, "tabular"),
        ("a.parquet", ["uuid", "text"], None, None, "text"),
        ("a.txt", None, "text", None, "text"),
    ],
)
def test_detect_modality_table(tmp_path, name, columns, modality, text_field, expected):
    p = tmp_path / name
    if name.endswith(".npy"):
        np.save(p, np.zeros((2, 2), dtype=np.float32))
    elif name.endswith(".parquet"):
        pd.DataFrame({c: ["1"] for c in columns}).to_parquet(p)
    elif name.endswith(".csv"):
        write_bytes(p, _csv(columns))
    else:
        write_bytes(p, b'{"text": "a"}\n')
    assert detect_modality(p, modality, text_field) == expected


def test_detect_modality_refusals(tmp_path):
    xlsx = write_bytes(tmp_path / "r.xlsx", b"x")
    assert message(lambda: detect_modality(xlsx, round_number=2)) == (
        f"{xlsx} (round, round 2): unsupported file type (extension '.xlsx'); "
        "expected one of .npy, .txt, .jsonl, .csv, .parquet, .log, .npz"
    )
    txt = write_bytes(tmp_path / "r.txt", b"a\n")
    assert message(lambda: detect_modality(txt, "tabular", role="reference")) == (
        f"{txt} (reference): modality tabular cannot read a .txt file (tabular reads .csv, .parquet)"
    )
    assert message(lambda: detect_modality(txt, "image")) == (
        f"{txt} (round): unknown modality 'image'; expected one of text, tabular, embedding, reasoning, agent, json, graph, log, image_text"
    )
    missing = tmp_path / "nope.csv"
    assert message(lambda: detect_modality(missing)) == f"{missing} (round): file not found"
    empty = write_bytes(tmp_path / "e.csv", b"")
    assert message(lambda: detect_modality(empty)) == f"{empty} (round): empty: no header to tell text from tabular"


# --------------------------------------------------------------------------
# Bad input: one line naming the file, the place and the problem
# --------------------------------------------------------------------------


def test_jsonl_malformed_line(tmp_path):
    p = write_bytes(tmp_path / "r.jsonl", b'{"text": "a"}\n\n{text: 1}\n')
    assert message(lambda: load_texts(p, "round", 3)) == (
        f"{p} (round, round 3): line 3: not valid JSON: Expecting property name enclosed in double quotes at column 2"
    )


def test_jsonl_not_an_object(tmp_path):
    p = write_bytes(tmp_path / "r.jsonl", b'{"text": "a"}\n["text"]\n')
    assert message(lambda: load_texts(p, "round", 3)) == (
        f"{p} (round, round 3): line 2: expected a JSON object, got an array"
    )


def test_jsonl_missing_field(tmp_path):
    p = write_bytes(tmp_path / "r.jsonl", b'{"text": "a"}\n{"a": 1, "b": 2}\n')
    assert message(lambda: load_texts(p, "round", 3)) == f"{p} (round, round 3): line 2: no field 'text' (fields: a, b)"
    q = write_bytes(tmp_path / "q.jsonl", b"{}\n")
    assert message(lambda: load_texts(q, "reference")) == (
        f"{q} (reference): line 1: no field 'text' (the object is empty)"
    )


@pytest.mark.parametrize(
    "value, shown",
    [("5", "a number (5)"), ("null", "null"), ('["a"]', "an array (['a'])"), ("true", "a boolean (True)")],
)
def test_jsonl_field_not_a_string(tmp_path, value, shown):
    p = write_bytes(tmp_path / "r.jsonl", f'{{"body": "a"}}\n{{"body": {value}}}\n'.encode())
    assert message(lambda: load_texts(p, "round", 7, field="body")) == (
        f"{p} (round, round 7): line 2: field 'body' is {shown}, expected a string"
    )


@pytest.mark.parametrize("ext", [".txt", ".jsonl"])
def test_non_utf8_line(tmp_path, ext):
    p = write_bytes(tmp_path / f"r{ext}", b'{"text": "ok"}\n{"text": "a\xffb"}\n')
    assert message(lambda: load_texts(p, "round", 5)) == (
        f"{p} (round, round 5): line 2: not valid UTF-8 at byte offset 11 (byte 26 of the file): bytes ff"
    )


def test_non_utf8_in_csv_text_and_table(tmp_path):
    p = write_bytes(tmp_path / "r.csv", b"text,n\nok,1\nfine,2\nbad \xe9t\xe9,3\n")
    expected = f"{p} (round, round 1): line 4: not valid UTF-8 at byte offset 4 (byte 23 of the file): bytes e9"
    assert message(lambda: load_texts(p, "round", 1)) == expected
    assert message(lambda: load_table(p, "round", 1)) == expected


def test_non_utf8_across_chunk_boundaries(tmp_path):
    # A small line limit makes chunks of that many bytes, so lines and characters straddle chunks.
    good = "é€𝄞 x\nab\n€€€\n"
    p = write_bytes(tmp_path / "r.txt", good.encode())
    assert load_texts(p, "round", 1, max_line_bytes=12).texts == ["é€𝄞 x", "ab", "€€€"]
    q = write_bytes(tmp_path / "q.txt", "ab\n€€\n".encode() + b"\xe2\x82\n")  # a truncated euro sign
    assert message(lambda: load_texts(q, "round", 1, max_line_bytes=7)) == (
        f"{q} (round, round 1): line 3: not valid UTF-8 at byte offset 0 (byte 10 of the file): bytes e2 82"
    )


def test_table_column_type_differs_with_row_number(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_ROWS", 5)  # row 12 sits in the third chunk
    ages = [str(20 + i) for i in range(15)]
    ages[11] = "abc"
    p = write_bytes(tmp_path / "r.csv", ("age,sex\n" + "".join(f"{a},f\n" for a in ages)).encode())
    assert message(lambda: load_table(p, "round", 3, reference_columns={"age": "numeric", "sex": "categorical"})) == (
        f"{p} (round, round 3): column 'age': expected numeric like the reference, got strings such as 'abc' (row 12)"
    )


def test_table_numbers_where_the_reference_has_strings(tmp_path):
    p = write_bytes(tmp_path / "r.csv", b"grade\nNA\n3\n4\n")
    ref = {"grade": np.dtype(object)}
    assert message(lambda: load_table(p, "round", 2, reference_columns=ref)) == (
        f"{p} (round, round 2): column 'grade': expected categorical like the reference (object), "
        "got numbers such as 3 (row 2)"
    )


def test_parquet_column_type_differs(tmp_path):
    p = tmp_path / "r.parquet"
    pd.DataFrame({"age": [None, "x", "y"]}).to_parquet(p)
    assert message(lambda: load_table(p, "round", 1, reference_columns={"age": "int64"})) == (
        f"{p} (round, round 1): column 'age': expected numeric like the reference (int64), "
        "got strings such as 'x' (row 2)"
    )


def test_all_null_column(tmp_path):
    p = write_bytes(tmp_path / "r.csv", b"age,sex\n,f\nNA,m\n,f\n")
    assert message(lambda: load_table(p, "round", 1)) == (
        f"{p} (round, round 1): column 'age': every value is null (3 rows)"
    )
    q = tmp_path / "q.parquet"
    pd.DataFrame({"sex": ["f", "m"], "age": [None, None]}).to_parquet(q)
    assert message(lambda: load_table(q, "round", 1, reference_columns={"age": "numeric"})) == (
        f"{q} (round, round 1): column 'age': every value is null (2 rows)"
    )
    # An all-null column the reference does not have is only listed.
    assert load_table(p, "round", 1, reference_columns={"sex": "categorical"}).extra_columns == ["age"]


def test_column_missing_relative_to_reference(tmp_path):
    p = write_bytes(tmp_path / "r.csv", b"sex,score\nf,1\n")
    assert message(lambda: load_table(p, "round", 4, reference_columns={"age": "numeric", "sex": "categorical"})) == (
        f"{p} (round, round 4): column 'age' is missing (the reference has it)"
    )
    assert message(lambda: load_table(p, "round", 4, reference_columns={"age": "numeric", "zip": "categorical"})) == (
        f"{p} (round, round 4): columns 'age', 'zip' are missing (the reference has them)"
    )
    q = tmp_path / "q.parquet"
    pd.DataFrame({"sex": ["f"]}).to_parquet(q)
    assert message(lambda: load_table(q, "round", 4, reference_columns={"age": "numeric"})) == (
        f"{q} (round, round 4): column 'age' is missing (the reference has it)"
    )


def test_text_column_missing_or_bad(tmp_path):
    p = write_bytes(tmp_path / "r.csv", b"id,body\n1,a\n")
    assert message(lambda: load_texts(p, "round", 1)) == f"{p} (round, round 1): no column 'text' (columns: id, body)"
    short = write_bytes(tmp_path / "s.csv", b"id,text\n1,a\n2\n")  # pandas reads a short row's cell as empty
    assert load_texts(short, "round", 1).texts == ["a", ""]
    q = tmp_path / "q.parquet"
    pd.DataFrame({"text": [1, 2]}).to_parquet(q)
    assert message(lambda: load_texts(q, "round", 1)) == (
        f"{q} (round, round 1): column 'text' holds int64 values, expected strings"
    )
    nulls = tmp_path / "n.parquet"
    pd.DataFrame({"text": ["a", "b", None]}).to_parquet(nulls)
    assert message(lambda: load_texts(nulls, "round", 1)) == f"{nulls} (round, round 1): row 3: column 'text' is null"


@pytest.mark.parametrize(
    "name, data, loader, problem",
    [
        ("e.txt", b"", load_texts, "empty: no samples"),
        ("e.jsonl", b"", load_texts, "empty: no samples"),
        ("blank.jsonl", b"\n  \n\r\n", load_texts, "empty: no samples"),
        ("e.csv", b"", load_texts, "empty: no samples"),
        ("header.csv", b"id,text\n", load_texts, "empty: no samples"),
        ("e.parquet", b"", load_texts, "empty: no samples"),
        ("e.csv", b"", load_table, "empty: no rows"),
        ("blank.csv", b"\n\n", load_table, "empty: no rows"),
        ("header.csv", b"age,sex\n", load_table, "empty: no rows"),
        ("e.parquet", b"", load_table, "empty: no rows"),
    ],
)
def test_empty_files(tmp_path, name, data, loader, problem):
    p = write_bytes(tmp_path / name, data)
    assert message(lambda: loader(p, "round", 6)) == f"{p} (round, round 6): {problem}"


def test_parquet_without_rows(tmp_path):
    p = tmp_path / "r.parquet"
    pd.DataFrame({"text": pd.Series([], dtype=object), "n": pd.Series([], dtype=float)}).to_parquet(p)
    assert message(lambda: load_texts(p, "round", 1)) == f"{p} (round, round 1): empty: no samples"
    assert message(lambda: load_table(p, "round", 1)) == f"{p} (round, round 1): empty: no rows"


def test_unreadable_files(tmp_path):
    missing = tmp_path / "gone.txt"
    assert message(lambda: load_texts(missing, "round", 1)) == f"{missing} (round, round 1): file not found"
    fake = write_bytes(tmp_path / "fake.parquet", b"text\na\n")
    assert message(lambda: load_table(fake, "round", 1)) == (
        f"{fake} (round, round 1): not a Parquet file (no PAR1 header)"
    )
    npy = tmp_path / "e.npy"
    np.save(npy, np.zeros((2, 2)))
    assert message(lambda: load_texts(npy, "reference")) == (
        f"{npy} (reference): modality text cannot read a .npy file (text reads .txt, .jsonl, .csv, .parquet)"
    )
    jsonl = write_bytes(tmp_path / "r.jsonl", b'{"text": "a"}\n')
    assert message(lambda: load_table(jsonl, "reference")) == (
        f"{jsonl} (reference): modality tabular cannot read a .jsonl file (tabular reads .csv, .parquet)"
    )
    ragged = write_bytes(tmp_path / "ragged.csv", b"a,b\n1,2\n3,4,5\n")
    text = message(lambda: load_table(ragged, "round", 1))
    assert text.startswith(f"{ragged} (round, round 1): not a readable CSV: ") and "line 3" in text


# --------------------------------------------------------------------------
# Long lines: refused by number, without holding the line
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def huge_line(tmp_path_factory):
    """One 200 MiB line with no newline, as .txt, .jsonl and .csv (hard links to the same bytes)."""
    d = tmp_path_factory.mktemp("huge")
    txt = d / "huge.txt"
    block = b"x" * (8 * MiB)
    with open(txt, "wb") as fh:
        for _ in range(25):
            fh.write(block)
    paths = {".txt": txt}
    for ext in (".jsonl", ".csv"):
        other = d / f"huge{ext}"
        try:
            os.link(txt, other)
        except OSError:
            shutil.copyfile(txt, other)
        paths[ext] = other
    return paths


def _refused_with_peak(fn) -> tuple[str, int]:
    tracemalloc.start()
    try:
        text = message(fn)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return text, peak


@pytest.mark.parametrize("ext", [".txt", ".jsonl", ".csv"])
def test_long_line_refused_at_the_default_limit(huge_line, ext):
    p = huge_line[ext]
    assert p.stat().st_size == 200 * MiB
    text, peak = _refused_with_peak(lambda: load_texts(p, "round", 9))
    assert text == (
        f"{p} (round, round 9): line 1: longer than the limit of 64 MiB (max_line_bytes=67108864); "
        "refused without reading it whole"
    )
    assert peak < 70 * MiB  # the limit plus one chunk, not the 200 MiB line


def test_long_line_refused_with_small_memory(huge_line):
    limit = 1 * MiB
    for ext, fn in (
        (".txt", lambda p: load_texts(p, "round", 9, max_line_bytes=limit)),
        (".jsonl", lambda p: load_texts(p, "round", 9, max_line_bytes=limit)),
        (".csv", lambda p: load_texts(p, "round", 9, max_line_bytes=limit)),
        (".csv", lambda p: load_table(p, "round", 9, max_line_bytes=limit)),
        (".csv", lambda p: detect_modality(p, round_number=9, max_line_bytes=limit)),
    ):
        p = huge_line[ext]
        text, peak = _refused_with_peak(lambda: fn(p))
        assert text == (
            f"{p} (round, round 9): line 1: longer than the limit of 1 MiB (max_line_bytes=1048576); "
            "refused without reading it whole"
        )
        assert peak < 4 * MiB


def test_long_line_gets_its_line_number(tmp_path):
    p = tmp_path / "r.jsonl"
    with open(p, "wb") as fh:
        fh.write(b'{"text": "a"}\n{"text": "b"}\n{"text": "')
        fh.write(b"y" * (3 * MiB))
        fh.write(b'"}\n')
    assert message(lambda: load_texts(p, "round", 2, max_line_bytes=MiB)) == (
        f"{p} (round, round 2): line 3: longer than the limit of 1 MiB (max_line_bytes=1048576); "
        "refused without reading it whole"
    )
    # Exactly at the limit is allowed; one byte more is not (the newline does not count).
    exact = write_bytes(tmp_path / "exact.txt", b"a" * 100 + b"\n" + b"b" * 101 + b"\n")
    assert load_texts(exact, "round", 1, max_line_bytes=101).texts == ["a" * 100, "b" * 101]
    assert message(lambda: load_texts(exact, "round", 1, max_line_bytes=100)) == (
        f"{exact} (round, round 1): line 2: longer than the limit of 100 bytes (max_line_bytes=100); "
        "refused without reading it whole"
    )


# --------------------------------------------------------------------------
# Fingerprints
# --------------------------------------------------------------------------


def test_fingerprint_is_sha256_of_the_file(tmp_path):
    txt = write_bytes(tmp_path / "r.txt", b"a\r\nb\n\nc")
    jsonl = write_bytes(tmp_path / "r.jsonl", b'{"text": "a"}\n{"text": "b"}\n')
    csv = write_bytes(tmp_path / "r.csv", b"text,n\na,1\nb,2\n")
    parquet = tmp_path / "r.parquet"
    pd.DataFrame({"text": ["a", "b"], "n": [1, 2]}).to_parquet(parquet)
    cases = [(txt, load_texts), (jsonl, load_texts), (csv, load_texts), (parquet, load_texts)]
    for p, load in cases + [(csv, load_table), (parquet, load_table)]:
        expected = hashlib.sha256(p.read_bytes()).hexdigest()
        assert load(p, "round", 1).fingerprint == expected
        assert load(p, "round", 1, max_samples=1, seed=3).fingerprint == expected


def test_fingerprint_of_a_multi_chunk_file(tmp_path):
    p = tmp_path / "big.txt"
    lines = [f"sample {i} " + "z" * (i % 97) for i in range(40_000)]  # about 2.2 MB, several 1 MiB chunks
    p.write_text("\n".join(lines) + "\n")
    loaded = load_texts(p, "round", 1, max_samples=100, seed=1)
    assert loaded.fingerprint == hashlib.sha256(p.read_bytes()).hexdigest()
    assert loaded.n_total == 40_000


# --------------------------------------------------------------------------
# Seeded subsampling
# --------------------------------------------------------------------------


def _numbered_txt(path, n):
    path.write_text("".join(f"s{i:05d}\n" for i in range(n)))
    return path


def _positions(texts):
    return [int(t[1:]) for t in texts]


def test_subsample_deterministic_exact_size_file_order(tmp_path):
    p = _numbered_txt(tmp_path / "r.txt", 1000)
    a = load_texts(p, "round", 1, max_samples=50, seed=11)
    b = load_texts(p, "round", 1, max_samples=50, seed=11)
    c = load_texts(p, "round", 1, max_samples=50, seed=12)
    assert a.texts == b.texts
    assert a.texts != c.texts
    assert (a.n_used, a.n_total) == (50, 1000)
    pos = _positions(a.texts)
    assert pos == sorted(pos) and len(set(pos)) == 50
    whole = load_texts(p, "round", 1, max_samples=1000, seed=11)
    assert whole.texts == load_texts(p, "round", 1, max_samples=5000).texts == load_texts(p, "round", 1).texts
    assert whole.n_used == whole.n_total == 1000


def test_subsample_does_not_depend_on_chunking_or_format(tmp_path, monkeypatch):
    n, k, seed = 300, 17, 5
    txt = _numbered_txt(tmp_path / "r.txt", n)
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("".join(json.dumps({"text": f"s{i:05d}", "i": i}) + "\n" for i in range(n)))
    csv = tmp_path / "r.csv"
    parquet = tmp_path / "r.parquet"
    frame = pd.DataFrame({"text": [f"s{i:05d}" for i in range(n)], "i": range(n)})
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet)
    reference = _positions(load_texts(txt, "round", 1, max_samples=k, seed=seed).texts)
    assert _positions(load_texts(txt, "round", 1, max_samples=k, seed=seed, max_line_bytes=8).texts) == reference
    assert _positions(load_texts(jsonl, "round", 1, max_samples=k, seed=seed).texts) == reference
    monkeypatch.setattr(files, "CHUNK_ROWS", 7)  # many chunks, and the row pieces get compacted
    for p in (csv, parquet):
        assert _positions(load_texts(p, "round", 1, max_samples=k, seed=seed).texts) == reference
        table = load_table(p, "round", 1, max_samples=k, seed=seed)
        assert table.frame["i"].tolist() == reference
        assert table.frame["text"].tolist() == [f"s{i:05d}" for i in reference]
        assert (table.n_used, table.n_total) == (k, n)


def test_each_sample_is_included_with_probability_k_over_n(tmp_path):
    n, k, n_seeds = 20, 5, 2000
    p = _numbered_txt(tmp_path / "r.txt", n)
    counts = np.zeros(n)
    for seed in range(n_seeds):
        counts[_positions(load_texts(p, "round", 1, max_samples=k, seed=seed).texts)] += 1
    expected = n_seeds * k / n
    statistic = float(((counts - expected) ** 2 / expected).sum())
    # Inclusion counts with a fixed total: the statistic is about (1 - k/n) chi2(n - 1), so this bound is loose.
    assert statistic < scipy.stats.chi2.ppf(0.999, df=n - 1)
    assert np.abs(counts / n_seeds - k / n).max() < 0.04


def test_every_subset_is_equally_likely(tmp_path):
    n, k, n_seeds = 6, 2, 3000
    p = _numbered_txt(tmp_path / "r.txt", n)
    subsets = {s: 0 for s in itertools.combinations(range(n), k)}
    for seed in range(n_seeds):
        subsets[tuple(_positions(load_texts(p, "round", 1, max_samples=k, seed=seed).texts))] += 1
    counts = np.array(list(subsets.values()), dtype=float)
    expected = n_seeds / len(subsets)
    statistic = float(((counts - expected) ** 2 / expected).sum())
    assert statistic < scipy.stats.chi2.ppf(0.999, df=len(subsets) - 1)
    assert counts.min() > 0


def test_reservoir_against_a_naive_algorithm_r(tmp_path):
    # The naive Algorithm R (Vitter 1985) draws from a different stream of numbers, so only the
    # distribution can agree: compare the mean inclusion position over many seeds.
    n, k, n_seeds = 50, 10, 600
    p = _numbered_txt(tmp_path / "r.txt", n)

    def algorithm_r(seed):
        rng = np.random.default_rng(seed)
        reservoir = list(range(k))
        for i in range(k, n):
            j = int(rng.integers(0, i + 1))
            if j < k:
                reservoir[j] = i
        return sorted(reservoir)

    ours = np.array([_positions(load_texts(p, "round", 1, max_samples=k, seed=s).texts) for s in range(n_seeds)])
    naive = np.array([algorithm_r(s) for s in range(n_seeds)])
    # The j-th smallest chosen position has the same distribution under both; its mean is (j+1)(n+1)/(k+1) - 1.
    exact = (np.arange(1, k + 1) * (n + 1) / (k + 1)) - 1
    assert np.abs(ours.mean(axis=0) - exact).max() < 1.5
    assert np.abs(naive.mean(axis=0) - exact).max() < 1.5
    assert scipy.stats.ks_2samp(ours.ravel(), naive.ravel()).pvalue > 0.001


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_max_samples(tmp_path, bad):
    p = _numbered_txt(tmp_path / "r.txt", 3)
    with pytest.raises(ValueError, match="max_samples: expected a positive integer or None"):
        load_texts(p, "round", 1, max_samples=bad)


def test_a_file_is_parsed_once_per_state_and_an_error_is_never_remembered(tmp_path, monkeypatch):

    reads = []
    real = texts._read_texts
    monkeypatch.setattr(texts, "_read_texts", lambda *a: reads.append(a[0]) or real(*a))
    p = tmp_path / "r.jsonl"
    p.write_text('{"text": "a"}\n{"text": "b"}\n', encoding="utf-8")
    first = load_texts(p, "reference")
    again = load_texts(p, "round", 3)  # the CLI's check, then the flow's load: one read
    assert again is first and len(reads) == 1
    assert load_texts(p, "round", 3, max_samples=1).n_used == 1 and len(reads) == 2  # other options
    p.write_text('{"text": "a"}\n{"text": "c"}\n', encoding="utf-8")  # same size, new content
    changed = load_texts(p, "round", 3)
    assert changed.texts == ["a", "c"] and changed.fingerprint != first.fingerprint and len(reads) == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"txt": "a"}\n', encoding="utf-8")
    for role, rnd, where in (("reference", None, "(reference)"), ("round", 7, "(round, round 7)")):
        with pytest.raises(InputError, match=re.escape(where)):
            load_texts(bad, role, rnd)
    arr = tmp_path / "e.npy"
    np.save(arr, np.ones((4, 2)))
    assert load_embeddings(arr, "reference") is load_embeddings(arr, "round", 1)
