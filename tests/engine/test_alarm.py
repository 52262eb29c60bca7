"""The alarm with a guarantee end to end: a loop registered with a pool, its null, signals, status and exporter."""

import json
import urllib.request

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.cli import main
from monitor.config import load_settings
from monitor.errors import CollapseMonitorError
from monitor.engine.null import ensure_loop_null, null_from_rows
from monitor.modalities.pipeline import AuditPipeline
from monitor.engine.rules import load_rules
from monitor.store import TrajectoryStore


@pytest.fixture
def pooled_loop(tmp_path):
    """A reference, a pool of 16 round sizes held out from it, two no-feedback rounds and one contracted round."""
    rng = np.random.default_rng(11)
    ref = rng.normal(size=(120, 4)).astype(np.float32)
    pool = rng.normal(size=(16 * 120, 4)).astype(np.float32)
    paths = {"reference": tmp_path / "reference.npy", "pool": tmp_path / "pool.npy"}
    np.save(paths["reference"], ref)
    np.save(paths["pool"], pool)
    for r, scale in enumerate([1.0, 1.0, 0.6]):
        paths[r] = tmp_path / f"round_{r}.npy"
        np.save(paths[r], (rng.normal(size=(120, 4)) * scale).astype(np.float32))
    return paths


def test_audit_with_a_pool_builds_the_null_and_raises_the_collapse_signal(home, pooled_loop, capsys):
    for r in range(3):
        code = main(["audit", "L", str(r), str(pooled_loop[r]), "--reference", str(pooled_loop["reference"]),
                     "--pool", str(pooled_loop["pool"]), "--null-rounds", "200", "--bootstrap", "0", "--json"])
        out = capsys.readouterr().out
        assert code == 0
        verdict = json.loads(out)
        signals = {name: s["severity"] for name, s in verdict["signals"].items()}
        if r < 2:  # fresh draws of the pool's distribution: quiet
            assert signals == {"collapse": "ok", "drift": "ok"}, verdict["signals"]
    # 40% less spread: the intrinsic-spread metrics raise the collapse signal and name themselves
    assert verdict["signals"]["collapse"]["severity"] != "ok"
    assert "log_volume_ratio" in verdict["signals"]["collapse"]["metrics"]
    g = verdict["guarantee"]
    assert g["arl0"] == 1000 and g["null_rounds"] == 200 and g["pool_size"] == 16 * 120 and g["round_size"] == 120
    assert g["offset"] == pytest.approx(2 * np.sqrt(1 / 16 + 1 / 200))
    alert = next(a for a in verdict["alerts"] if a["metric"] == "log_volume_ratio")
    assert alert["explanation"]["signal"] == "collapse" and alert["explanation"]["null"]["z"] > 3
    settings = load_settings(None)
    with TrajectoryStore(settings.store_url) as store:
        row = store.null_record("L")
        assert row["n_rounds"] == row["target_rounds"] == 200
        null = store.null("L")
        assert null.round_size == 120 and null.pool_size == 16 * 120
        # status shows the signals and the guarantee
        assert main(["status", "L", "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["signals"]["collapse"]["severity"] != "ok" and status["guarantee"]["arl0"] == 1000
        assert main(["status", "L"]) == 0
        text = capsys.readouterr().out
        assert "false-alarm guarantee: ARL0 >= 1000 rounds" in text and "collapse signal:" in text
        # the exporter serves them
        from monitor.publishing.exporter import Exporter

        exporter = Exporter(store, "127.0.0.1", 0)
        try:
            body = urllib.request.urlopen(exporter.url, timeout=10).read().decode()
        finally:
            exporter.stop()
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for fam in text_string_to_metric_families(body) for s in fam.samples}
        assert samples[("collapse_loop_arl0_rounds", (("loop", "L"),))] == 1000
        assert samples[("collapse_signal_state", (("loop", "L"), ("signal", "collapse")))] >= 1
        assert samples[("collapse_signal_state", (("loop", "L"), ("signal", "drift")))] in (0, 1, 2)
        assert samples[("collapse_signal_evidence_ratio", (("loop", "L"), ("signal", "collapse")))] >= 1


def test_a_loop_without_a_pool_says_it_has_no_guarantee(home, pooled_loop, capsys):
    assert main(["audit", "P", "0", str(pooled_loop[0]), "--reference", str(pooled_loop["reference"]),
                 "--bootstrap", "0", "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["guarantee"] is None
    assert "no false-alarm guarantee" in verdict["signals"]["collapse"]["message"]
    assert main(["status", "P"]) == 0
    assert "false-alarm guarantee: none (no null" in capsys.readouterr().out


def test_null_build_resumes_after_an_interruption_with_the_same_pseudo_rounds(tmp_path):
    rng = np.random.default_rng(3)
    ref, pool = rng.normal(size=(60, 3)), rng.normal(size=(600, 3))
    pipeline = AuditPipeline("embedding", ref, n_boot=0, seed=0)
    with TrajectoryStore(f"sqlite:///{tmp_path / 'store.db'}") as store:
        def crash_after(limit):
            def progress(done, total):
                if done >= limit:
                    raise KeyboardInterrupt("killed")
            return progress

        with pytest.raises(KeyboardInterrupt):
            ensure_loop_null(store, "L", pipeline, pool, "pool.npy", "key-1", 60, n_rounds=200, checkpoint=50,
                             progress=crash_after(120))
        partial = store.null_record("L")
        assert partial["n_rounds"] == 100 and store.null("L") is None  # checkpointed, not yet usable
        resumed = ensure_loop_null(store, "L", pipeline, pool, "pool.npy", "key-1", 60, n_rounds=200, checkpoint=50)
        fresh_store = TrajectoryStore(f"sqlite:///{tmp_path / 'fresh.db'}")
        fresh = ensure_loop_null(fresh_store, "L", pipeline, pool, "pool.npy", "key-1", 60, n_rounds=200)
        fresh_store.close()
        assert resumed.n_rounds == 200 and np.allclose(resumed.values, fresh.values, equal_nan=True)
        # a changed key (new reference, pool, options or metrics version) rebuilds
        calls = []
        ensure_loop_null(store, "L", pipeline, pool, "pool.npy", "key-2", 60, n_rounds=200,
                         progress=lambda done, total: calls.append(done))
        assert calls and calls[-1] == 200
        with pytest.raises(CollapseMonitorError, match="pool.*60"):
            ensure_loop_null(store, "M", pipeline, pool[:50], "small.npy", "k", 60, n_rounds=200)


def test_an_unchanged_pool_is_not_read_again_and_a_changed_one_is(home, pooled_loop, monkeypatch, capsys):
    import monitor.engine.null as null_mod

    args = ["--reference", str(pooled_loop["reference"]), "--pool", str(pooled_loop["pool"]), "--null-rounds", "200",
            "--bootstrap", "0", "--json"]
    assert main(["audit", "U", "0", str(pooled_loop[0]), *args]) == 0
    reads = []
    real_load_pool = null_mod.load_pool
    monkeypatch.setattr(null_mod, "load_pool", lambda *a, **kw: reads.append(a[0]) or real_load_pool(*a, **kw))
    assert main(["audit", "U", "1", str(pooled_loop[1]), *args]) == 0
    assert reads == []  # same path, size and times: the stored null is reused without reading the pool
    pool = np.load(pooled_loop["pool"], allow_pickle=False)
    np.save(pooled_loop["pool"], pool[: 15 * 120])  # the pool changes: read, fingerprinted, and the null rebuilt
    assert main(["audit", "U", "2", str(pooled_loop[2]), *args]) == 0
    assert reads == [str(pooled_loop["pool"])]
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["guarantee"]["pool_size"] == 15 * 120


def test_rules_signal_and_alarm_are_validated(tmp_path):
    rules = load_rules()
    assert rules.arl0 == 1000 and rules.signal_of("distinct_2") == "collapse"
    assert rules.signal_of("recall") == "drift" and rules.signal_of("vendi_score") == "drift"
    assert rules.signal_of("authenticity") == "none"  # privacy is off by default
    bad = tmp_path / "bad.toml"
    for text, message in (("[alarm]\narl0 = 1.0\n", "arl0 = 1.0: expected a finite number of rounds > 1"),
                          ("[alarm]\narl0 = inf\n", "expected a finite number"),
                          ("[alarm]\nlevel = 3\n", "expected arl0"),
                          ('[metric.recall]\nsignal = "loud"\n', "signal = 'loud': expected one of"),
                          ("[calibration]\nthreshold_scale = inf\n", "threshold_scale = inf: expected a finite"),
                          ("[metric.recall]\nthreshold = nan\n", r"\[metric.recall\] threshold = nan: expected a finite"),
                          ("[metric.recall]\nthreshold = inf\n", r"threshold = inf: expected a finite number"),
                          ("[family.coverage]\nz_h = -inf\n", r"\[family.coverage\] z_h = -inf: expected a finite"),
                          ('[modality.text.metric.recal]\nsignal = "drift"\n',
                           r"\[modality.text.metric.recal\] unknown metric 'recal'"),
                          ('[modality.text.metric.recall]\nsignal = "loud"\n',
                           r"\[modality.text.metric.recall\] signal = 'loud': expected one of"),
                          ('[modality.any.metric.recall]\nsignal = "drift"\n',
                           r"\[modality.any.metric\] a round is never of modality 'any'"),
                          ("[modality.text]\nmetric = 3\n", r"\[modality.text.metric\] expected tables")):
        bad.write_text(text)
        with pytest.raises(CollapseMonitorError, match=message):
            load_rules(bad)
    bad.write_bytes(b"[alarm]\narl0 = 100 # \xff\xfe\n")
    with pytest.raises(CollapseMonitorError, match="not UTF-8 text|not valid TOML"):
        load_rules(bad)
    good = tmp_path / "good.toml"
    good.write_text('[alarm]\narl0 = 5000\n[metric.recall]\nsignal = "collapse"\n')
    custom = load_rules(good)
    assert custom.arl0 == 5000 and custom.signal_of("recall") == "collapse"
    # In text loops the shipped rules route the spread of featurized text to drift; a user can route it back.
    assert rules.signal_of("effective_rank") == "collapse" and rules.for_round("embedding") is rules
    assert rules.for_round("text").signal_of("effective_rank") == "drift"
    assert rules.for_round("text").signal_of("log_volume_ratio") == "drift"
    assert rules.for_round("text").signal_of("distinct_2") == "collapse"
    good.write_text('[metric.effective_rank]\nwindow = 7\n[modality.text.metric.effective_rank]\nsignal = "collapse"\n')
    custom = load_rules(good).for_round("text")
    assert custom.signal_of("effective_rank") == "collapse" and custom.for_metric("effective_rank").window == 7
    assert custom.signal_of("log_volume_ratio") == "drift"
    assert load_rules(good).fingerprint != custom.fingerprint


def test_null_statistics_come_from_the_pipeline_audits():
    rows = [{"precision": 0.9, "recall": 0.8}, {"precision": 0.8, "recall": 0.9}, {"precision": 1.0}]
    null = null_from_rows(rows, round_size=10, pool_size=100)
    assert null.mean.tolist() == pytest.approx([0.9, 0.85])
    assert null.sd[0] == pytest.approx(0.1)


def store_rows(loop):
    with TrajectoryStore(load_settings(None).store_url) as store:
        return store.trajectory(loop).drop(columns=["audited_at"]).to_dict("records")


def test_calibrate_loop_builds_the_null_from_a_pool_or_a_recorded_split(home, pooled_loop, capsys):
    for loop, rows in (("S", "40"), ("T", "120")):  # S: rounds of 40 rows, so that half its reference can pool them
        for r in range(2):
            assert main(["audit", loop, str(r), str(pooled_loop[r]), "--reference", str(pooled_loop["reference"]),
                         "--bootstrap", "0", "--max-samples", rows, "--json"]) == 0
    capsys.readouterr()
    # T: an explicit pool; only the latest round is re-audited, every round is re-evaluated
    assert main(["calibrate", "T", "--pool", str(pooled_loop["pool"]), "--null-rounds", "200", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] is None and out["rounds_reaudited"] == [1]
    assert out["guarantee"]["pool_size"] == 16 * 120 and out["guarantee"]["null_rounds"] == 200
    # S: no pool anywhere: the reference is split in two, and every round re-audited against its reference part
    assert main(["calibrate", "S", "--null-rounds", "200", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rounds_reaudited"] == [0, 1] and out["split"]["reference"] == str(pooled_loop["reference"].resolve())
    ref_part = np.load(out["split"]["reference_part"], allow_pickle=False)
    pool_part = np.load(out["split"]["pool_part"], allow_pickle=False)
    assert len(ref_part) + len(pool_part) == 120 and len(pool_part) == 60
    assert out["guarantee"]["pool_size"] == 60 and out["guarantee"]["round_size"] == 40
    assert out["guarantee"]["pool_too_small"]  # 1.5 round sizes: said plainly, with the ARL0 it supports
    assert out["guarantee"]["source"] == "split" and "held out of the reference" in out["guarantee"]["message"]
    with TrajectoryStore(load_settings(None).store_url) as store:
        sizes = store.round_sizes("S")
        assert set(sizes["n_reference"]) == {40}  # both rounds now compare with (a subsample of) the reference part
        assert {s["reference_path"] for s in store.sources("S")} == {out["split"]["reference_part"]}
    # a pool too small for pseudo-rounds is refused before anything is stored
    before = store_rows("T")
    assert main(["calibrate", "T", "--pool", out["split"]["pool_part"], "--null-rounds", "200"]) == 1
    assert "60 rows, but pseudo-rounds of the loop's round size 120" in capsys.readouterr().err
    assert store_rows("T") == before
    # a LOOP and --reference together, or --pool without a LOOP, are refused in one line
    assert main(["calibrate", "S", "--reference", str(pooled_loop["reference"])]) == 1
    assert main(["calibrate", "--pool", str(pooled_loop["pool"])]) == 1
    err = capsys.readouterr().err
    assert "not both" in err and "--pool needs the LOOP" in err
