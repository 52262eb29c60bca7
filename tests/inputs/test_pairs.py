"""``load_pairs`` (image-text ``.npz`` rounds) and ``encode_manifest`` / ``load_encoder`` (a local encoder on a
``.jsonl`` manifest): seeded subsampling, pseudo-rounds, fingerprints and one-line refusals."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from monitor.engine.null import split_reference, take_rows
from monitor.errors import CollapseMonitorError, InputError
from monitor.inputs.encoders import encode_manifest, load_encoder
from monitor.inputs.pairs import LoadedPairs, fingerprint_pairs, load_pairs, pairs_from_arrays

HERE = Path(__file__).resolve().parent


def _pairs(n: int = 6, d: int = 4, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"image": rng.normal(size=(n, d)), "text": rng.normal(size=(n, d)).astype(np.float32)}


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _refused(message_tail: str, fn, *args, **kwargs) -> str:
    """``fn`` raises InputError whose one-line message ends with ``message_tail``; returns the message."""
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.endswith(message_tail), message
    return message


# ---------------------------------------------------------------- load_pairs


def test_a_good_archive_keeps_arrays_captions_and_ids(tmp_path):
    arrays = _pairs()
    captions = np.array(["a cat", "a dog", "ein Hund", "", "a car", "snow ☃"])
    path = _npz(tmp_path / "round.npz", **arrays, caption=captions, id=np.arange(10, 16))
    loaded = load_pairs(path, "round", 2)
    assert isinstance(loaded, LoadedPairs) and loaded.modality == "image_text"
    assert len(loaded) == loaded.n_used == loaded.n_total == 6
    np.testing.assert_array_equal(loaded.image, arrays["image"])
    np.testing.assert_array_equal(loaded.text, arrays["text"])
    assert loaded.image.dtype == np.float64 and loaded.text.dtype == np.float32  # kept as saved
    assert loaded.captions == ("a cat", "a dog", "ein Hund", "", "a car", "snow ☃")
    assert loaded.texts == list(loaded.captions)
    assert loaded.ids == (10, 11, 12, 13, 14, 15) and type(loaded.ids[0]) is int
    assert loaded.fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ValueError):
        loaded.image[0, 0] = 1.0  # read-only: a remembered load is shared
    bare = load_pairs(_npz(tmp_path / "bare.npz", **arrays), "reference")
    assert bare.captions is None and bare.texts is None and bare.ids is None
    string_ids = load_pairs(_npz(tmp_path / "s.npz", **arrays, id=np.array(list("abcdef"))), "round", 1)
    assert string_ids.ids == tuple("abcdef")
    compressed = tmp_path / "c.npz"
    np.savez_compressed(compressed, **arrays)
    np.testing.assert_array_equal(load_pairs(compressed, "round", 1).text, arrays["text"])


def test_max_samples_keeps_a_seeded_choice_in_file_order_and_pseudo_rounds_take_rows(tmp_path):
    n = 40
    image = np.c_[np.arange(1.0, n + 1), np.ones(n)]  # row i starts with i + 1
    path = _npz(tmp_path / "pool.npz", image=image, text=image * 2, caption=np.array([f"c{i}" for i in range(n)]))
    loaded = load_pairs(path, "round", 1, max_samples=10, seed=4)
    picked = (loaded.image[:, 0] - 1).astype(int).tolist()
    assert len(picked) == 10 and picked == sorted(picked) and loaded.n_total == n
    assert loaded.captions == tuple(f"c{i}" for i in picked)
    np.testing.assert_array_equal(loaded.text, loaded.image * 2)  # rows stay paired
    assert load_pairs(path, "round", 1, max_samples=10, seed=4).captions == loaded.captions
    assert load_pairs(path, "round", 1, max_samples=10, seed=5).captions != loaded.captions
    whole = load_pairs(path, "pool")
    rows = take_rows(whole, np.array([3, 0, 7]))
    assert rows.captions == ("c3", "c0", "c7") and rows.image[:, 0].tolist() == [4.0, 1.0, 8.0]
    assert len(rows) == 3 and rows.fingerprint == whole.fingerprint
    ref, pool = split_reference(whole, seed=0)
    assert len(ref) + len(pool) == n
    assert sorted(ref.captions + pool.captions) == sorted(whole.captions)


def _pickled_caption_archive(path: Path, arrays: dict) -> Path:
    np.savez(path, **arrays, caption=np.array(["a", None, "c", "d", "e", "f"], dtype=object))
    return path


def _forged_archive(path: Path, arrays: dict) -> Path:
    """A ``text`` member whose header declares a huge shape over a few bytes."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": (10**9, 512)})
    with zipfile.ZipFile(path, "w") as zf:
        with zf.open("image.npy", "w") as fh:
            np.save(fh, arrays["image"])
        zf.writestr("text.npy", buffer.getvalue() + b"\0" * 64)
    return path


@pytest.mark.parametrize("build, message", [
    (lambda p, a: _pickled_caption_archive(p, a),
     "array 'caption': holds pickled objects (dtype object), which are refused; save float arrays and the captions "
     "as a fixed-width unicode array (dtype <U)"),
    (lambda p, a: _npz(p, text=a["text"], caption=np.array(list("abcdef"))),
     "no array 'image' (arrays: text, caption)"),
    (lambda p, a: _npz(p, image=a["image"]), "no array 'text' (arrays: image)"),
    (lambda p, a: _npz(p), "no array 'image' (the archive is empty)"),
    (lambda p, a: _npz(p, **a, label=np.zeros(6), extra=np.ones(2)),
     "unknown arrays label, extra (an image-text round holds image, text, caption, id)"),
    (lambda p, a: _npz(p, image=a["image"][0], text=a["text"]),
     "array 'image': expected a 2-D array [N, D], got 1-D with shape (4,)"),
    (lambda p, a: _npz(p, image=a["image"], text=a["text"][:, :, None]),
     "array 'text': expected a 2-D array [N, D], got 3-D with shape (6, 4, 1)"),
    (lambda p, a: _npz(p, image=a["image"][:1], text=a["text"][:1]), "array 'image': expected at least 2 rows, got 1"),
    (lambda p, a: _npz(p, image=a["image"], text=a["text"][:5]),
     "array 'image' has 6 rows, array 'text' has 5; expected one row per pair in both"),
    (lambda p, a: _npz(p, image=a["image"], text=a["text"][:, :3]),
     "array 'image' has D=4 features, array 'text' has D=3; both sides must be embedded into one space"),
    (lambda p, a: _npz(p, image=a["image"], text=np.where(np.arange(24).reshape(6, 4) % 7 == 6, np.inf,
                                                           a["text"])),
     "array 'text': 3 NaN or inf values (first in row 1)"),
    (lambda p, a: _npz(p, image=np.r_[a["image"][:4], np.zeros((2, 4))], text=a["text"]),
     "array 'image': row 4 is all zeros (cosine similarity is undefined for a zero vector; 2 such rows)"),
    (lambda p, a: _npz(p, image=a["image"].astype(np.int64), text=a["text"]),
     "array 'image': expected a float array, got dtype int64"),
    (lambda p, a: _npz(p, **a, caption=np.array([b"a"] * 6)),
     "array 'caption': expected a 1-D unicode string array (dtype <U) of 6 captions, got dtype |S1 with shape (6,)"),
    (lambda p, a: _npz(p, **a, caption=np.array(["a"] * 5)),
     "array 'caption': expected a 1-D unicode string array (dtype <U) of 6 captions, got dtype <U1 with shape (5,)"),
    (lambda p, a: _npz(p, **a, id=np.arange(6.0)),
     "array 'id': expected a 1-D integer or unicode string array of 6 ids, got dtype <f8 with shape (6,)"),
    (lambda p, a: _forged_archive(p, a),
     "array 'text': the header declares shape (1000000000, 512) (4,096,000,000,000 bytes of float64) but the member "
     "holds 64 bytes; truncated or corrupt"),
])
def test_each_bad_archive_is_one_line_naming_file_role_round_and_array(tmp_path, build, message):
    path = build(tmp_path / "round.npz", _pairs())
    assert _refused(message, load_pairs, path, "round", 3) == f"{path} (round, round 3): {message}"


def test_files_that_are_not_archives(tmp_path):
    missing = tmp_path / "missing.npz"
    assert _refused("file not found", load_pairs, missing, "reference") == f"{missing} (reference): file not found"
    npy = tmp_path / "round.npy"
    np.save(npy, np.eye(3))
    _refused("unsupported file type (extension '.npy'); modality image_text reads .npz", load_pairs, npy, "round", 1)
    pickled = tmp_path / "pickled.npz"
    pickled.write_bytes(pickle.dumps({"image": np.eye(2)}))
    _refused("not an .npz archive (no zip header); save the arrays with numpy.savez", load_pairs, pickled, "round", 1)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    _refused("empty: 0 bytes", load_pairs, empty, "round", 1)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    assert "not a readable .npz archive: " in _refused("", load_pairs, broken, "round", 1)


def test_in_memory_pairs_are_checked_alike_and_fingerprinted_by_content():
    arrays = _pairs()
    loaded = pairs_from_arrays(arrays["image"], arrays["text"], [f"c{i}" for i in range(6)], where="generated")
    assert loaded.captions == tuple(f"c{i}" for i in range(6)) and str(loaded.path) == "<memory>"
    again = pairs_from_arrays(arrays["image"].copy(), arrays["text"].copy(), tuple(loaded.captions), where="again")
    assert again.fingerprint == loaded.fingerprint
    assert loaded.fingerprint == fingerprint_pairs(arrays["image"], arrays["text"], loaded.captions)
    assert pairs_from_arrays(arrays["image"], arrays["text"], where="g").fingerprint != loaded.fingerprint
    swapped = pairs_from_arrays(arrays["image"], arrays["text"], [f"c{i}" for i in (1, 0, 2, 3, 4, 5)], where="g")
    assert swapped.fingerprint != loaded.fingerprint
    _refused("generated: caption[2]: expected str, got int", pairs_from_arrays, arrays["image"], arrays["text"],
             ["a", "b", 3, "d", "e", "f"], where="generated")
    _refused("generated: image has 6 rows, text has 5; expected one row per pair in both", pairs_from_arrays,
             arrays["image"], arrays["text"][:5], where="generated")
    _refused("generated: text: 1 NaN or inf values (first in row 0)", pairs_from_arrays, arrays["image"],
             np.where(np.arange(24).reshape(6, 4) == 2, np.nan, arrays["text"]), where="generated")


# ---------------------------------------------------------------- the encoder path


def _manifest(folder: Path, records: list, name: str = "round.jsonl") -> Path:
    path = folder / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def images(tmp_path, monkeypatch):
    """A round folder with three tiny "image" files (any bytes) and the test encoder importable."""
    monkeypatch.syspath_prepend(str(HERE))
    folder = tmp_path / "round"
    (folder / "img").mkdir(parents=True)
    for name, data in {"cat.bin": b"cat whiskers \xff\xfe", "dog.bin": b"dog bark", "car.bin": b"car wheel"}.items():
        (folder / "img" / name).write_bytes(data)
    return folder


GOOD = [{"image": "img/cat.bin", "caption": "a photo of a cat", "id": 7},
        {"image": "img/dog.bin", "caption": "a photo of a dog", "id": "d"},
        {"image": "img/car.bin", "caption": "a photo of a car", "id": 9}]


def test_a_manifest_is_embedded_by_the_named_encoder(images):
    import tiny_encoder

    path = _manifest(images, ["", *GOOD])
    loaded = encode_manifest(path, "tiny_encoder:encode", "round", 1)
    assert len(loaded) == loaded.n_total == 3 and loaded.modality == "image_text"
    assert loaded.captions == ("a photo of a cat", "a photo of a dog", "a photo of a car")
    assert loaded.ids == (7, "d", 9) and loaded.texts == list(loaded.captions)
    image, text = tiny_encoder.encode([images / "img" / n for n in ("cat.bin", "dog.bin", "car.bin")],
                                      list(loaded.captions))
    np.testing.assert_array_equal(loaded.image, image)
    np.testing.assert_array_equal(loaded.text, text)
    assert encode_manifest(path, tiny_encoder.encode, "round", 1).fingerprint == loaded.fingerprint
    no_ids = encode_manifest(_manifest(images, [{k: v for k, v in r.items() if k != "id"} for r in GOOD], "n.jsonl"),
                             "tiny_encoder:encode", "round", 1)
    assert no_ids.ids is None


def test_the_fingerprint_covers_the_manifest_and_every_image(images):
    path = _manifest(images, GOOD)
    before = encode_manifest(path, "tiny_encoder:encode", "round", 1).fingerprint
    (images / "img" / "dog.bin").write_bytes(b"dog barks")
    after = encode_manifest(path, "tiny_encoder:encode", "round", 1).fingerprint
    assert before != after
    _manifest(images, [GOOD[0], GOOD[1], {**GOOD[2], "caption": "a car"}])
    assert encode_manifest(path, "tiny_encoder:encode", "round", 1).fingerprint not in (before, after)
    # Subsampling encodes fewer pairs but the round (its fingerprint) is the same file.
    sub = encode_manifest(path, "tiny_encoder:encode", "round", 1, max_samples=2, seed=1)
    assert len(sub) == 2 and sub.n_total == 3
    assert sub.fingerprint == encode_manifest(path, "tiny_encoder:encode", "round", 1).fingerprint


def test_max_samples_encodes_a_seeded_choice_in_manifest_order(images):
    records = [{"image": "img/cat.bin", "caption": f"caption {i}"} for i in range(20)]
    path = _manifest(images, records)
    seen = []

    def spy(image_paths, captions):
        seen.append(list(captions))
        return np.ones((len(captions), 2)), np.c_[np.ones(len(captions)), np.arange(len(captions))]

    loaded = encode_manifest(path, spy, "round", 1, max_samples=5, seed=3)
    numbers = [int(c.split()[1]) for c in loaded.captions]
    assert seen == [list(loaded.captions)] and len(numbers) == 5 and numbers == sorted(numbers)
    assert encode_manifest(path, spy, "round", 1, max_samples=5, seed=3).captions == loaded.captions


def test_paths_never_leave_the_manifest_folder(images, tmp_path):
    outside = tmp_path / "secret.bin"
    outside.write_bytes(b"secret")
    (images / "img" / "link.bin").symlink_to(outside)
    (images / "img" / "inner.bin").symlink_to(images / "img" / "cat.bin")  # a symlink inside is fine
    (tmp_path / "elsewhere").mkdir()
    (images / "linked_dir").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere" / "x.bin").write_bytes(b"x")
    cases = {
        str(outside): f"field 'image': expected a path relative to the manifest's folder, got the absolute path "
                      f"{str(outside)!r}",
        "../secret.bin": "field 'image': '../secret.bin' climbs out of the manifest's folder",
        "img/../../secret.bin": "field 'image': 'img/../../secret.bin' climbs out of the manifest's folder",
        "img/link.bin": "field 'image': 'img/link.bin' is a symlink resolving outside the manifest's folder",
        "linked_dir/x.bin": "field 'image': 'linked_dir/x.bin' is a symlink resolving outside the manifest's folder",
        "img/missing.bin": "field 'image': image file 'img/missing.bin' not found",
        "img": "field 'image': 'img' is not a file",
        "C:\\x.bin": "field 'image': expected a path relative to the manifest's folder, got the absolute path "
                     "'C:\\\\x.bin'",
    }
    for image, message in cases.items():
        path = _manifest(images, [GOOD[0], {"image": image, "caption": "x"}])
        _refused(f"(round, round 2): line 2: {message}", encode_manifest, path, "tiny_encoder:encode", "round", 2)
    inside = _manifest(images, [GOOD[0], {"image": "img/inner.bin", "caption": "a cat"},
                                {"image": "img/./../img/dog.bin", "caption": "a dog"}])
    assert len(encode_manifest(inside, "tiny_encoder:encode", "round", 2)) == 3


@pytest.mark.parametrize("lines, message", [
    (['{"image": "img/cat.bin"}'], "line 1: no field 'caption' (fields: image)"),
    (['{"caption": "a cat"}'], "line 1: no field 'image' (fields: caption)"),
    (['{"image": 3, "caption": "a cat"}'], "line 1: field 'image': expected a non-empty path string, got a number (3)"),
    (['{"image": "", "caption": "a cat"}'], "line 1: field 'image': expected a non-empty path string, got a string "
                                            "(\"\")"),
    (['{"image": "img/cat.bin", "caption": ["a"]}'], "line 1: field 'caption': expected a string, got an array "
                                                     "([\"a\"])"),
    (['{"image": "img/cat.bin", "caption": "a", "id": 1.5}'],
     "line 1: field 'id': expected a non-empty string or an integer, got a number (1.5)"),
    (['{"image": "img/cat.bin", "caption": "a"', ], "line 1: not valid JSON: Expecting ',' delimiter at column 40"),
    (['', '[1]'], "line 2: expected a JSON object, got an array"),
    ([], "empty: no pairs"),
])
def test_each_bad_manifest_line_is_one_line_naming_line_and_field(images, lines, message):
    path = _manifest(images, lines)
    assert _refused(message, encode_manifest, path, "tiny_encoder:encode", "round", 3) == \
        f"{path} (round, round 3): {message}"


@pytest.mark.parametrize("function, message", [
    ("one_row_short", "returned 2 text embedding rows for 3 pairs"),
    ("with_nan", "text embeddings: 1 NaN or inf values (first in row 1)"),
    ("other_dim", "image embeddings has D=16 features, text embeddings has D=8; both sides must be embedded into "
                  "one space"),
    ("zero_image", "image embeddings: row 0 is all zeros (cosine similarity is undefined for a zero vector; 1 such "
                   "rows)"),
    ("only_images", "expected a pair (image_emb, text_emb), got ndarray"),
    ("integers", "image embeddings: expected a float array, got dtype int64"),
    ("raises", "failed: RuntimeError: model weights not found at /models/clip"),
])
def test_each_bad_encoder_output_is_one_line_naming_the_encoder(images, function, message):
    path = _manifest(images, GOOD)
    spec = f"tiny_encoder:{function}"
    assert _refused(message, encode_manifest, path, spec, "round", 1) == \
        f"{path} (round, round 1): encoder {spec!r}: {message}"


def test_bad_encoder_specs_are_one_line(images):
    cases = {
        "tiny_encoder": "encoder 'tiny_encoder': expected 'module:function' (e.g. 'my_clip:encode'), got no ':'",
        "tiny_encoder:": "encoder 'tiny_encoder:': expected 'module:function' (e.g. 'my_clip:encode'), got an empty "
                         "or malformed part",
        "no_such_module_xyz:encode": "encoder 'no_such_module_xyz:encode': cannot import module "
                                     "'no_such_module_xyz': ModuleNotFoundError: No module named 'no_such_module_xyz'",
        "tiny_encoder:missing": "encoder 'tiny_encoder:missing': tiny_encoder has no attribute 'missing'",
        "tiny_encoder:encode.x": "encoder 'tiny_encoder:encode.x': tiny_encoder:encode has no attribute 'x'",
        "tiny_encoder:NOT_CALLABLE": "encoder 'tiny_encoder:NOT_CALLABLE': 'NOT_CALLABLE' is not callable (got int)",
    }
    for spec, message in cases.items():
        with pytest.raises(CollapseMonitorError) as info:
            load_encoder(spec)
        assert str(info.value) == message and not isinstance(info.value, InputError)
    import tiny_encoder

    assert load_encoder("tiny_encoder:encode") is tiny_encoder.encode
    with pytest.raises(CollapseMonitorError, match="^encoder 'tiny_encoder': expected 'module:function'"):
        encode_manifest(_manifest(images, GOOD), "tiny_encoder", "round", 1)


def test_a_manifest_of_the_wrong_type_or_missing(images):
    missing = images / "missing.jsonl"
    _refused(f"{missing} (round, round 1): file not found", encode_manifest, missing, "tiny_encoder:encode",
             "round", 1)
    npz = _npz(images / "r.npz", **_pairs())
    _refused("unsupported file type (extension '.npz'); modality image_text reads .jsonl", encode_manifest, npz,
             "tiny_encoder:encode", "round", 1)
