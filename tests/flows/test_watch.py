"""Discovery of round files: layout, manifests, completeness, once per fingerprint; the watch flow."""

from __future__ import annotations

import json
import os
import time

import fsspec
import numpy as np
import pytest

from monitor.inputs import watch
from monitor.errors import CollapseMonitorError
from monitor.store import TrajectoryStore


def _npy(path, seed=0, rows=60, dim=4, scale=1.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, (np.random.default_rng(seed).normal(size=(rows, dim)) * scale).astype(np.float32))
    return path


@pytest.fixture
def store(tmp_path):
    s = TrajectoryStore(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


def test_directory_layout_rounds_reference_options_and_markers(tmp_path):
    src = tmp_path / "src"
    _npy(src / "sft" / "reference.npy")
    _npy(src / "sft" / "round_0.npy")
    _npy(src / "sft" / "round_12.npy")
    (src / "sft" / "round_0.npy.done").touch()
    (src / "sft" / "notes.txt").write_text("not a round")
    (src / "sft" / "loop.toml").write_text('k = 3\nbootstrap = 50\nmodality = "embedding"\n')
    _npy(src / "other" / "round_1.npy")
    found = watch.discover_directory(str(src), default_reference="/refs/default.npy")
    assert found.problems == []
    by_key = {(r.loop, r.round): r for r in found.rounds}
    assert sorted(by_key) == [("other", 1), ("sft", 0), ("sft", 12)]
    sft0, sft12, other = by_key["sft", 0], by_key["sft", 12], by_key["other", 1]
    assert sft0.done and not sft12.done
    assert sft0.reference == str(src / "sft" / "reference.npy")
    assert other.reference == "/refs/default.npy"  # no reference.<ext> of its own
    assert sft0.options == {"k": 3, "n_boot": 50, "modality": "embedding"}
    assert other.options == {}
    assert sft12.size == (src / "sft" / "round_12.npy").stat().st_size
    assert sft12.mtime == pytest.approx((src / "sft" / "round_12.npy").stat().st_mtime)


def test_log_and_image_text_rounds_are_discovered_with_their_loop_options(tmp_path):
    src = tmp_path / "src"
    (src / "logs").mkdir(parents=True)
    (src / "logs" / "reference.log").write_text("INFO api: started\n")
    (src / "logs" / "round_3.log").write_text("INFO api: started\n")
    (src / "logs" / "loop.toml").write_text('log_pattern = "^(?P<severity>[A-Z]+) (?P<component>\\\\w+):"\n')
    (src / "pairs").mkdir()
    np.savez(src / "pairs" / "round_0.npz", image=np.ones((2, 3)), text=np.ones((2, 3)))
    (src / "pairs" / "loop.toml").write_text('encoder = "my_encoders:clip"\nschema = "caption.schema.json"\n')
    found = watch.discover_directory(str(src))
    assert found.problems == []
    by_key = {(r.loop, r.round): r for r in found.rounds}
    assert sorted(by_key) == [("logs", 3), ("pairs", 0)]
    assert by_key["logs", 3].reference == str(src / "logs" / "reference.log")
    assert by_key["logs", 3].options == {"log_pattern": "^(?P<severity>[A-Z]+) (?P<component>\\w+):"}
    assert by_key["pairs", 0].options == {"encoder": "my_encoders:clip",
                                          "schema_path": str(src / "pairs" / "caption.schema.json")}


def test_bad_loop_directories_are_problems_that_name_the_file_and_do_not_stop_the_scan(tmp_path):
    src = tmp_path / "src"
    _npy(src / "good" / "round_0.npy")
    _npy(src / "dup" / "round_2.npy")
    (src / "dup" / "round_2.csv").write_text("a\n1\n")
    _npy(src / "bad name!" / "round_0.npy")
    (src / "badopts" / "loop.toml").parent.mkdir()
    (src / "badopts" / "loop.toml").write_text("kk = 3\n")
    _npy(src / "badopts" / "round_0.npy")
    (src / "badtype" / "loop.toml").parent.mkdir()
    (src / "badtype" / "loop.toml").write_text('k = "five"\n')
    found = watch.discover_directory(str(src))
    assert [(r.loop, r.round) for r in found.rounds] == [("good", 0)]
    text = "\n".join(found.problems)
    assert "round 2 has several files (round_2.csv, round_2.npy)" in text
    assert "bad name!" in text and "expected 1-128 characters" in text
    assert f"{src / 'badopts' / 'loop.toml'}: unknown option(s) kk" in text
    assert f"{src / 'badtype' / 'loop.toml'}: k: expected an integer >= 1, got 'five'" in text


@pytest.mark.parametrize("config, message", [
    ("reference = 5\n", "loop.toml: reference: expected a path, got 5"),
    ("k = 0\n", "loop.toml: k: expected an integer >= 1, got 0"),
    ("max_samples = 0\n", "loop.toml: max_samples: expected an integer >= 1, got 0"),
    ("null_rounds = 10\n", "loop.toml: null_rounds: expected an integer >= 200, got 10"),
    ("bootstrap = true\n", "loop.toml: bootstrap: expected an integer >= 0, got True"),
    ('modality = "audio"\n', "loop.toml: modality: expected 'embedding', 'text', 'tabular', 'reasoning', 'agent', 'json', 'graph', 'log' or 'image_text', got 'audio'"),
    ("allow_size_change = 1\n", "loop.toml: allow_size_change: expected a valid boolean, got 1"),
    ("pool = 3\n", "loop.toml: pool: expected a path, got 3"),
])
@pytest.mark.faults
def test_a_bad_loop_toml_refuses_its_own_loop_only(tmp_path, config, message):
    src = tmp_path / "src"
    _npy(src / "good" / "round_0.npy")
    (src / "bad" / "loop.toml").parent.mkdir(parents=True)
    (src / "bad" / "loop.toml").write_text(config)
    _npy(src / "bad" / "round_0.npy")
    found = watch.discover_directory(str(src))
    assert [(r.loop, r.round) for r in found.rounds] == [("good", 0)]
    assert len(found.problems) == 1 and found.problems[0].startswith(str(src / "bad")) and message in found.problems[0]


@pytest.mark.faults
def test_an_overflowing_round_number_or_a_trailing_newline_refuses_that_loop_only(tmp_path):
    src = tmp_path / "src"
    _npy(src / "good" / "round_0.npy")
    _npy(src / "huge" / "round_99999999999999999999.npy")
    _npy(src / "L\n" / "round_0.npy")
    found = watch.discover_directory(str(src))
    assert [(r.loop, r.round) for r in found.rounds] == [("good", 0)]
    text = "\n".join(found.problems)
    assert "round 99999999999999999999: expected at most 2147483647" in text
    assert "'L\\n': expected 1-128 characters" in text


@pytest.mark.faults
def test_links_out_of_the_watched_source_are_refused_unless_followed(tmp_path):
    outside = tmp_path / "outside"
    _npy(outside / "secret.npy", seed=9)
    _npy(outside / "elsewhere" / "round_0.npy")
    src = tmp_path / "src"
    _npy(src / "sft" / "round_0.npy")
    (src / "sft" / "round_1.npy").symlink_to(outside / "secret.npy")
    (src / "sft" / "round_2.npy").symlink_to(src / "sft" / "round_0.npy")  # a link inside the source is fine
    (src / "linked").symlink_to(outside / "elsewhere", target_is_directory=True)
    found = watch.discover_directory(str(src))
    assert sorted((r.loop, r.round) for r in found.rounds) == [("sft", 0), ("sft", 2)]
    text = "\n".join(found.problems)
    assert f"{src / 'sft' / 'round_1.npy'}: links out of the watched source (to {outside / 'secret.npy'})" in text
    assert f"{src / 'linked'}: links out of the watched source" in text and "--follow-links" in text
    followed = watch.discover(str(src).split(), [], None, follow_links=True)
    assert sorted((r.loop, r.round) for r in followed.rounds) == [("linked", 0), ("sft", 0), ("sft", 1), ("sft", 2)]
    assert followed.problems == []


def test_a_missing_source_is_an_error_naming_it(tmp_path):
    with pytest.raises(CollapseMonitorError, match=f"{tmp_path / 'nope'}: not a directory"):
        watch.discover_directory(str(tmp_path / "nope"))
    with pytest.raises(CollapseMonitorError, match="the watched source is not a directory"):
        watch.check_sources([str(tmp_path / "nope")], [], None)
    with pytest.raises(CollapseMonitorError, match="nothing to watch"):
        watch.check_sources([], [], None)


def test_manifest_lists_rounds_relative_to_itself(tmp_path):
    _npy(tmp_path / "gen" / "a.npy")
    _npy(tmp_path / "gen" / "b.npy")
    _npy(tmp_path / "real" / "ref.npy")
    (tmp_path / "gen" / "b.npy.done").touch()
    manifest = tmp_path / "manifest.toml"
    manifest.write_text(
        '[loops.sft]\nreference = "real/ref.npy"\nbootstrap = 20\n\n'
        '[[rounds]]\nloop = "sft"\nround = 0\npath = "gen/a.npy"\ndone = true\n\n'
        '[[rounds]]\nloop = "sft"\nround = 1\npath = "gen/b.npy"\n\n'
        '[[rounds]]\nloop = "sft"\nround = 2\npath = "gen/not-yet.npy"\n\n'
        '[[rounds]]\nloop = "sft"\nround = 1\npath = "gen/a.npy"\n\n'
        '[[rounds]]\nloop = "sft"\nround = -1\npath = "gen/a.npy"\n\n'
        '[[rounds]]\nloop = "sft"\nround = 3\npath = "gen/a.xlsx"\n'
    )
    found = watch.discover_manifest(str(manifest))
    assert [(r.round, r.url, r.done) for r in found.rounds] == [
        (0, str(tmp_path / "gen" / "a.npy"), True), (1, str(tmp_path / "gen" / "b.npy"), True)]
    assert {r.reference for r in found.rounds} == {str(tmp_path / "real" / "ref.npy")}
    assert found.rounds[0].options == {"n_boot": 20}
    assert found.problems == [
        f"{manifest}: rounds[3]: loop sft round 1 is listed twice",
        f"{manifest}: rounds[4]: round: expected an integer from 0 to 2147483647, got -1",
        f"{manifest}: rounds[5]: gen/a.xlsx: unsupported extension; expected one of .npy .txt .jsonl .csv .parquet "
        ".log .npz",
    ]
    json_manifest = tmp_path / "m.json"
    json_manifest.write_text(json.dumps({"rounds": [{"loop": "j", "round": 4, "path": "gen/a.npy"}]}))
    (j,) = watch.discover_manifest(str(json_manifest), default_reference="/r.npy").rounds
    assert (j.loop, j.round, j.reference, j.done) == ("j", 4, "/r.npy", False)
    bad = tmp_path / "bad.toml"
    bad.write_text("[[rounds]\n")
    with pytest.raises(CollapseMonitorError, match=f"{bad}: not valid TOML"):
        watch.discover_manifest(str(bad))
    bad.write_text("[extra]\n")
    with pytest.raises(CollapseMonitorError, match="unknown top-level key"):
        watch.discover_manifest(str(bad))


@pytest.mark.faults
def test_require_done_waits_for_the_marker_however_long_the_file_is_stable(tmp_path, store):
    src = tmp_path / "src"
    path = src / "lp" / "round_0.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text('{"text": "a half-written"}\n')  # a writer that pauses longer than two scans
    (src / "lp" / "loop.toml").write_text("require_done = true\n")

    def ready():
        return watch.ready_rounds(store, watch.discover_directory(str(src)).rounds)

    assert [ready() for _ in range(3)] == [[], [], []]  # stable, yet never complete without its marker
    (src / "lp" / "round_0.jsonl.done").touch()
    assert [(rf.loop, rf.round) for rf, _ in ready()] == [("lp", 0)]
    (src / "lp" / "loop.toml").write_text('require_done = "yes"\n')
    assert "require_done: expected true or false, got 'yes'" in watch.discover_directory(str(src)).problems[0]


def test_a_file_is_ready_once_complete_and_audited_once_per_content(tmp_path, store):
    src = tmp_path / "src"
    path = _npy(src / "lp" / "round_0.npy", seed=1)

    def ready():
        return watch.ready_rounds(store, watch.discover_directory(str(src)).rounds)

    assert ready() == []  # first sight: size not yet known to be stable
    (rf, fingerprint), = ready()  # same size and mtime at the next scan: complete
    assert fingerprint == watch.sha256_url(str(path)) == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    store.mark_file(rf.url, "audited", fingerprint, rf.size, rf.mtime)
    assert ready() == []  # audited: never again while unchanged
    os.utime(path, (time.time() + 5, time.time() + 5))  # touched, same bytes
    assert ready() == [] and ready() == []
    assert store.watched_file(str(path))["status"] == "audited"
    _npy(path, seed=2)  # new content, same size
    os.utime(path, (time.time() + 10, time.time() + 10))
    assert ready() == []  # changed: wait until stable again
    (rf2, fp2), = ready()
    assert fp2 != fingerprint and rf2.round == 0


@pytest.mark.faults
def test_a_growing_file_waits_and_a_done_marker_skips_the_wait(tmp_path, store):
    src = tmp_path / "src"
    growing = src / "lp" / "round_1.jsonl"
    growing.parent.mkdir(parents=True)
    growing.write_text('{"text": "a"}\n')
    scan = lambda: watch.ready_rounds(store, watch.discover_directory(str(src)).rounds)  # noqa: E731
    assert scan() == []
    with growing.open("a") as fh:
        fh.write('{"text": "b"}\n')
    assert scan() == []  # size changed since the last scan: still being written
    assert [rf.round for rf, _ in scan()] == [1]
    marked = _npy(src / "lp" / "round_2.npy")
    (src / "lp" / "round_2.npy.done").touch()
    assert [rf.round for rf, _ in scan()] == [1, 2]  # round 1 still unhandled; round 2 ready at first sight
    assert store.watched_file(str(marked))["status"] == "pending"


@pytest.mark.faults
def test_a_refused_file_is_retried_only_when_it_changes(tmp_path, store):
    src = tmp_path / "src"
    bad = src / "lp" / "round_0.npy"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not an npy file")
    (src / "lp" / "round_0.npy.done").touch()
    scan = lambda: watch.ready_rounds(store, watch.discover_directory(str(src)).rounds)  # noqa: E731
    (rf, fp), = scan()
    store.mark_file(rf.url, "failed", fp, rf.size, rf.mtime, "bad file")
    assert scan() == []
    bad.write_bytes(b"still not an npy file, longer")
    assert [r.round for r, _ in scan()] == [0]


def test_fsspec_urls_are_watched_and_copied_locally(tmp_path, store):
    fs = fsspec.filesystem("memory")
    root = f"/watch-{tmp_path.name}"
    buf = __import__("io").BytesIO()
    np.save(buf, np.ones((10, 3), dtype=np.float32))
    fs.pipe(f"{root}/lp/round_3.npy", buf.getvalue())
    fs.pipe(f"{root}/lp/round_3.npy.done", b"")
    fs.pipe(f"{root}/lp/reference.npy", buf.getvalue())
    try:
        found = watch.discover_directory(f"memory://{root}")
        (rf,) = found.rounds
        assert rf.url == f"memory://{root}/lp/round_3.npy" and rf.done
        assert rf.reference == f"memory://{root}/lp/reference.npy"
        (ready, fingerprint), = watch.ready_rounds(store, found.rounds)
        local = watch.local_copy(ready.url, tmp_path / "cache", fingerprint)
        assert np.array_equal(np.load(local, allow_pickle=False), np.ones((10, 3), dtype=np.float32))
        assert local.startswith(str(tmp_path / "cache"))
        assert watch.local_copy(str(tmp_path / "x.npy"), tmp_path / "cache") == str(tmp_path / "x.npy")
    finally:
        fs.rm(root, recursive=True)


def test_discover_merges_sources_and_reports_a_round_found_twice(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _npy(a / "lp" / "round_0.npy")
    _npy(b / "lp" / "round_0.npy")
    _npy(b / "lp" / "round_1.npy")
    found = watch.discover([str(a), str(b), str(tmp_path / "missing")], [], None)
    assert sorted((r.round, r.url) for r in found.rounds) == [
        (0, str(a / "lp" / "round_0.npy")), (1, str(b / "lp" / "round_1.npy"))]
    assert any("found in two places" in p for p in found.problems)
    assert any(str(tmp_path / "missing") in p and "not a directory" in p for p in found.problems)


def test_watch_flow_audits_new_rounds_once_refuses_bad_ones_and_keeps_going(tmp_path, home, prefect_harness):
    from flows.watch import watch_rounds

    src = tmp_path / "src"
    _npy(src / "good" / "reference.npy", seed=0, rows=80)
    for r in range(2):
        _npy(src / "good" / f"round_{r}.npy", seed=10 + r, rows=60)
        (src / "good" / f"round_{r}.npy.done").touch()
    (src / "good" / "loop.toml").write_text("bootstrap = 10\n")
    bad = src / "broken" / "round_0.npy"
    bad.parent.mkdir()
    bad.write_text("garbage")
    (src / "broken" / "round_0.npy.done").touch()
    _npy(src / "broken" / "reference.npy", seed=0, rows=80)
    _npy(src / "noref" / "round_0.npy")
    (src / "noref" / "round_0.npy.done").touch()

    first = watch_rounds(sources=[str(src)], home=str(home))
    assert first["audited"] == ["good/0", "good/1"]
    assert first["refused"] == ["broken/0"]
    assert first["retry"] == ["noref/0"]  # no reference yet: not refused, retried
    with TrajectoryStore(f"sqlite:///{home / 'store.db'}") as store:
        rows = store.watched_files()
        assert dict(zip(rows["url"], rows["status"])) == {
            str(src / "broken" / "round_0.npy"): "failed", str(src / "good" / "round_0.npy"): "audited",
            str(src / "good" / "round_1.npy"): "audited", str(src / "noref" / "round_0.npy"): "pending"}
        refused = rows[rows["status"] == "failed"].iloc[0]
        assert str(bad) in refused["error"] and "round 0" in refused["error"]
        audited_at = store.round_audits("good")
        assert sorted(audited_at) == [0, 1]

        _npy(src / "noref" / "reference.npy", seed=3)
        second = watch_rounds(sources=[str(src)], home=str(home))
        assert second["audited"] == ["noref/0"] and second["refused"] == [] and second["retry"] == []
        assert store.round_audits("good") == audited_at  # nothing re-audited

        _npy(src / "good" / "round_1.npy", seed=99, rows=60, scale=0.5)  # rewritten round
        third = watch_rounds(sources=[str(src)], home=str(home))
        assert third["audited"] == ["good/1"]
        after = store.round_audits("good")
        assert after[0] == audited_at[0] and after[1]["fingerprint"] != audited_at[1]["fingerprint"]
        assert len(store.trajectory("good").query("metric == 'recall'")) == 2  # replaced, not duplicated
