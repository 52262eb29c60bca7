"""The CLI: the JSON contract, one-line errors with exit 1, status and serve (the demo: test_demo.py)."""

import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from metrics_core.registry import metric_names
from prometheus_client.parser import text_string_to_metric_families


from monitor.cli import main
from monitor.config import load_settings
from monitor.store import TrajectoryStore

CLI = [sys.executable, "-m", "monitor.cli"]


def _env(home: Path, tmp_path: Path) -> dict:
    env = dict(os.environ)
    env.update(COLLAPSE_MONITOR_HOME=str(home), PREFECT_HOME=str(tmp_path / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONUNBUFFERED="1")
    return env


def test_audit_json_prints_exactly_one_object(home, shrinking_rounds, tmp_path):
    ref, rounds = shrinking_rounds
    proc = subprocess.run(
        [*CLI, "audit", "cli-loop", "0", str(rounds[0]), "--reference", str(ref), "--json", "--bootstrap", "50"],
        capture_output=True, text=True, env=_env(home, tmp_path), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # fails on any extra output
    assert result["loop"] == "cli-loop" and result["round"] == 0 and result["status"] == "ok"
    # Evidently's drift share (the round's report) first, then the embedding suite
    assert list(result["metrics"]) == ["evidently_drift_share", *metric_names("embedding")]
    assert list(result["metrics"])[1:7] == ["precision", "recall", "density", "coverage", "vendi_score",
                                            "self_cosine_similarity"]
    assert all({"value", "ci_low", "ci_high"} <= set(m) for m in result["metrics"].values())
    assert result["alerts"] == []
    assert all(d["delta"] is None for d in result["derivatives"].values())
    stored = TrajectoryStore(load_settings(home).store_url).trajectory("cli-loop")
    assert stored.set_index("metric").loc["coverage", "value"] == pytest.approx(result["metrics"]["coverage"]["value"])


def _bad_inputs(tmp_path: Path, ref: Path, good: Path):
    ints = tmp_path / "ints.npy"
    np.save(ints, np.ones((20, 8), dtype=np.int64))
    three_d = tmp_path / "3d.npy"
    np.save(three_d, np.ones((4, 5, 8)))
    nan = tmp_path / "nan.npy"
    a = np.random.default_rng(0).normal(size=(20, 8))
    a[3, 2] = np.nan
    np.save(nan, a)
    inf = tmp_path / "inf.npy"
    a[3, 2] = np.inf
    np.save(inf, a)
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 8)))
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    raw_pickle = tmp_path / "raw.npy"
    raw_pickle.write_bytes(pickle.dumps([1.0, 2.0]))
    text = tmp_path / "text.npy"
    text.write_text("not an array\n")
    wrong_d = tmp_path / "wrong_d.npy"
    np.save(wrong_d, np.random.default_rng(1).normal(size=(30, 5)))
    truncated = tmp_path / "truncated.npy"
    np.save(truncated, np.ones((100, 8)))
    truncated.write_bytes(truncated.read_bytes()[:300])
    forged = tmp_path / "forged.npy"  # a header asking for 58 TiB: refused before any allocation
    with open(forged, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 16)})
        fh.write(b"\0" * 64)
    npz = tmp_path / "arch.npy"
    with open(npz, "wb") as fh:
        np.savez(fh, a=np.ones((3, 3)))
    return [
        ([str(tmp_path / "missing.npy"), "--reference", str(ref)], "missing.npy (round, round 1): file not found"),
        ([str(good), "--reference", str(tmp_path / "nope.npy")], "nope.npy (reference): file not found"),
        ([str(ints), "--reference", str(ref)], "ints.npy (round, round 1): embeddings: expected a float array, got dtype int64"),
        ([str(three_d), "--reference", str(ref)], "3d.npy (round, round 1): embeddings: expected a 2-D array"),
        ([str(nan), "--reference", str(ref)], "nan.npy (round, round 1): embeddings: 1 NaN or inf values (first in row 3)"),
        ([str(inf), "--reference", str(ref)], "inf.npy (round, round 1): embeddings: 1 NaN or inf values"),
        ([str(empty), "--reference", str(ref)], "empty.npy (round, round 1): embeddings: expected a non-empty array"),
        ([str(pickled), "--reference", str(ref)], "pickled.npy (round, round 1): holds pickled objects, which are refused"),
        ([str(raw_pickle), "--reference", str(ref)], "raw.npy (round, round 1): holds pickled data, which is refused"),
        ([str(text), "--reference", str(ref)], "text.npy (round, round 1): not a .npy file (no NPY header)"),
        ([str(npz), "--reference", str(ref)], "arch.npy (round, round 1): is an .npz archive"),
        ([str(truncated), "--reference", str(ref)],
         "truncated.npy (round, round 1): the header declares shape (100, 8) (6,400 bytes of float64) but the file "
         "holds"),
        ([str(forged), "--reference", str(ref)],
         "forged.npy (round, round 1): the header declares shape (1000000000000, 16) (64,000,000,000,000 bytes"),
        ([str(wrong_d), "--reference", str(ref)], "wrong_d.npy (round, round 1): embeddings have D=5 features, but the reference"),
    ]


def test_bad_input_one_line_exit_1_nothing_written(home, shrinking_rounds, tmp_path, capsys):
    ref, rounds = shrinking_rounds
    for args, expected in _bad_inputs(tmp_path, ref, rounds[0]):
        code = main(["audit", "bad-loop", "1", *args])
        err = capsys.readouterr().err
        assert code == 1, args
        assert err.count("\n") == 1 and err.startswith("collapse-monitor: error: "), err
        assert expected in err, (expected, err)
    code = main(["audit", "bad-loop", "-1", str(rounds[0]), "--reference", str(ref)])
    assert code == 1 and "round -1: expected an integer from 0 to 2147483647" in capsys.readouterr().err
    code = main(["audit", "bad-loop", str(2**63), str(rounds[0]), "--reference", str(ref)])
    assert code == 1 and f"round {2**63}: expected an integer from 0" in capsys.readouterr().err  # before any compute
    code = main(["audit", "L\n", "1", str(rounds[0]), "--reference", str(ref)])
    assert code == 1 and "loop 'L\\n': expected 1-128 characters" in capsys.readouterr().err
    code = main(["audit", "bad loop!", "1", str(rounds[0]), "--reference", str(ref)])
    assert code == 1 and "loop 'bad loop!'" in capsys.readouterr().err
    assert not home.exists()  # nothing written anywhere


@pytest.mark.usefixtures("prefect_harness")
def test_bad_input_never_loses_stored_rounds(home, shrinking_rounds, tmp_path, capsys):
    ref, rounds = shrinking_rounds
    assert main(["audit", "keep", "0", str(rounds[0]), "--reference", str(ref), "--bootstrap", "0", "--json"]) == 0
    before = TrajectoryStore(load_settings().store_url).trajectory("keep")
    nan = tmp_path / "nan0.npy"
    np.save(nan, np.full((50, 8), np.nan))
    capsys.readouterr()
    assert main(["audit", "keep", "0", str(nan), "--reference", str(ref)]) == 1
    after = TrajectoryStore(load_settings().store_url).trajectory("keep")
    assert before.equals(after)
    # A round of another size is not comparable: refused unless asked for.
    smaller = tmp_path / "smaller.npy"
    np.save(smaller, np.load(rounds[1])[:200])
    capsys.readouterr()
    assert main(["audit", "keep", "1", str(smaller), "--reference", str(ref), "--bootstrap", "0"]) == 1
    err = capsys.readouterr().err
    assert "loop keep round 1: audited at N=400 M=200" in err and "other rounds used N=400 M=300" in err
    assert TrajectoryStore(load_settings().store_url).trajectory("keep").equals(after)
    assert main(["audit", "keep", "1", str(smaller), "--reference", str(ref), "--bootstrap", "0",
                 "--allow-size-change", "--json"]) == 0
    # --max-samples subsamples to a common size instead.
    assert main(["audit", "keep2", "0", str(rounds[0]), "--reference", str(ref), "--bootstrap", "0",
                 "--max-samples", "150", "--json"]) == 0
    sizes = TrajectoryStore(load_settings().store_url).round_sizes("keep2")
    assert sizes[["n_reference", "n_round"]].values.tolist() == [[150, 150]]


@pytest.mark.usefixtures("prefect_harness")
def test_status_json_and_table(home, shrinking_rounds, capsys):
    ref, rounds = shrinking_rounds
    for r in (0, 1, 2):
        assert main(["audit", "st", str(r), str(rounds[r]), "--reference", str(ref), "--bootstrap", "0", "--json"]) == 0
    capsys.readouterr()
    assert main(["status", "st", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [e["round"] for e in report["rounds"]] == [0, 1, 2]
    assert report["rounds"][2]["derivatives"]["recall"]["delta"] == pytest.approx(
        report["rounds"][2]["metrics"]["recall"]["value"] - report["rounds"][1]["metrics"]["recall"]["value"]
    )
    # One state per metric; without bootstrap errors and with 3 rounds no change is significant yet.
    assert {a["metric"] for a in report["alerts"]} == {"evidently_drift_share", *metric_names("embedding")}
    assert report["status"] == "ok" and report["history"] == []
    assert report["rounds"][2]["derivatives"]["recall"]["zscore"] is None
    assert 0.0 <= report["risk"]["risk"] <= 1.0
    assert main(["status", "st"]) == 0
    out = capsys.readouterr().out
    assert "loop st" in out and "status:" in out
    assert main(["status", "nope"]) == 1
    assert "loop 'nope': no audited rounds" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.usefixtures("prefect_harness")
def test_serve_scrape_and_sigterm(home, shrinking_rounds, tmp_path):
    ref, rounds = shrinking_rounds
    assert main(["audit", "srv", "0", str(rounds[0]), "--reference", str(ref), "--bootstrap", "0", "--json"]) == 0
    port = _free_port()
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=_env(home, tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        body = None
        for _ in range(100):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.2)
        assert body is not None, proc.stderr.read() if proc.poll() is not None else "no answer"
        names = {s.name: s for f in text_string_to_metric_families(body) for s in f.samples}
        assert names["collapse_round"].labels == {"loop": "srv"} and names["collapse_round"].value == 0.0
        assert names["collapse_up"].value == 1.0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.rstrip().endswith("stopped")


def test_serve_port_in_use_is_one_line_error(home, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err


def _stored_loop(home, loop, coverage_values, se=0.01, audited_at=1000.0):
    from metrics_core.bootstrap import Estimate
    from monitor.store import RoundRecord

    store = TrajectoryStore(load_settings(home).store_url)
    for r, v in enumerate(coverage_values):
        store.record_round(RoundRecord(
            loop=loop, round=r, metrics={"coverage": Estimate(float(v), v - 0.02, v + 0.02, se),
                                         "vendi_score": Estimate(10.0 + 0.01 * (-1) ** r, 9.9, 10.1, 0.05)},
            n_reference=100, n_round=100, fingerprint=f"{r:064d}", reference_fingerprint="r" * 64,
            metrics_version="2", audited_at=audited_at + r))
    store.close()


def test_bad_rules_file_is_refused_before_anything_is_stored(home, shrinking_rounds, tmp_path, capsys):
    ref, rounds = shrinking_rounds
    bad = tmp_path / "bad.toml"
    bad.write_text("[family.coverage]\nz_h = 'high'\n")
    assert main(["--rules", str(bad), "audit", "r", "0", str(rounds[0]), "--reference", str(ref)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"collapse-monitor: error: {bad}: [family.coverage] z_h = 'high': expected a number"
    assert TrajectoryStore(load_settings(home).store_url).loops() == []


def test_evaluate_applies_changed_rules_to_stored_loops(home, tmp_path, capsys):
    drop = [0.9, 0.902, 0.898, 0.9, 0.65, 0.652, 0.648]
    _stored_loop(home, "ev", drop)
    assert main(["evaluate", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (loop,) = out["loops"]
    assert loop["loop"] == "ev" and loop["status"] == "critical"
    assert [a["metric"] for a in loop["alerts"]] == ["coverage"]
    assert loop["risk"]["driver_family"] == "coverage"
    off = tmp_path / "off.toml"
    off.write_text("[family.coverage]\nenabled = false\n")
    assert main(["--rules", str(off), "evaluate", "ev"]) == 0
    assert "ev: ok" in capsys.readouterr().out
    assert main(["status", "ev", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "ok"
    # History keeps the superseded critical out of the current view.
    assert report["history"] == []
    assert main(["evaluate", "nope"]) == 1
    assert "loop 'nope': no audited rounds" in capsys.readouterr().err


def test_status_without_a_loop_is_an_overview_riskiest_first(home, capsys):
    now = time.time()
    drop = [0.9, 0.902, 0.898, 0.9, 0.65, 0.652, 0.648]
    flat = [0.9, 0.902, 0.898, 0.9, 0.901, 0.899, 0.9]
    _stored_loop(home, "falling", drop, audited_at=now - 60 - len(drop))
    _stored_loop(home, "flat", flat, audited_at=now - 60 - len(flat))
    _stored_loop(home, "quiet", flat, audited_at=now - 8 * 3600)  # 8 h without an audit: stale
    _stored_loop(home, "done", flat, audited_at=now - 8 * 86400)  # over a week: finished, not stale
    assert main(["evaluate", "--json"]) == 0
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["loops"]
    assert rows[0]["loop"] == "falling" and [r["loop"] for r in rows[1:]] == ["done", "flat", "quiet"]
    top = rows[0]
    assert (top["last_round"], top["state"], top["active_alerts"], top["driver_family"]) == (6, "critical", 1,
                                                                                            "coverage")
    assert top["risk"] > rows[1]["risk"] and not top["stale"]
    by_loop = {r["loop"]: r for r in rows}
    assert by_loop["quiet"]["stale"] and not by_loop["quiet"]["finished"]
    assert by_loop["done"]["finished"] and not by_loop["done"]["stale"]
    assert by_loop["flat"]["state"] == "ok" and by_loop["flat"]["active_alerts"] == 0
    assert 60 <= by_loop["flat"]["age_seconds"] < 120
    assert main(["status", "--stale-after", "9", "--json"]) == 0
    assert not {r["loop"]: r for r in json.loads(capsys.readouterr().out)["loops"]}["quiet"]["stale"]
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "4 loops, riskiest first" in out and out.index("falling") < out.index("quiet")
    assert "critical D" in out and "stale" in out and "done" in out  # D: the drift signal (derivative rules)


def test_status_overview_of_an_empty_home_and_without_torch(home, tmp_path):
    code = ("import sys; from monitor.cli import main; rc = main(['status']); "
            "sys.exit(rc if 'torch' not in sys.modules else 99)")
    done = subprocess.run([sys.executable, "-c", code], env=_env(home, tmp_path), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no audited loops" in done.stdout


def test_status_shows_risk_explanations_and_history(home, capsys):
    _stored_loop(home, "st2", [0.9, 0.902, 0.898, 0.9, 0.65, 0.652, 0.648])
    assert main(["evaluate", "st2"]) == 0
    capsys.readouterr()
    assert main(["status", "st2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    alert = next(a for a in report["alerts"] if a["metric"] == "coverage")
    assert alert["severity"] == "critical" and alert["since_round"] == 5
    assert alert["explanation"]["intervention"].startswith("stop the loop and roll back to round 4")
    assert [(h["round"], h["from"], h["to"]) for h in report["history"]] == [(5, "ok", "critical")]
    assert report["rounds"][-1]["derivatives"]["coverage"]["cusum"] > 4
    assert report["risk"]["driver_metric"] == "coverage"
    assert main(["status", "st2"]) == 0
    out = capsys.readouterr().out
    assert "collapse risk" in out and "what to do: stop the loop" in out and "ok -> critical" in out


def test_calibrate_from_a_reference_writes_rules_that_later_commands_use(home, tmp_path, capsys):
    rng = np.random.default_rng(0)
    ref = tmp_path / "big_reference.npy"
    np.save(ref, rng.normal(size=(1600, 8)).astype(np.float32))
    assert main(["calibrate", "--reference", str(ref), "--control-rounds", "12", "--bootstrap", "30",
                 "--target-arl0", "50", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rules_file = Path(summary["rules_file"])
    assert rules_file == Path(load_settings(home).home) / "rules.toml"
    assert summary["control_rounds"] == 12 and 0.0 < summary["finite_population_factor"] < 1.0
    assert summary["arl0"] >= 50 - 3 * summary["arl0_se"]
    from monitor.engine.rules import load_rules

    rules = load_rules(rules_file)
    assert rules.threshold_scale == pytest.approx(summary["threshold_scale"], rel=1e-3)
    assert set(summary["noise_factors"]) == {m for m in metric_names("embedding") if rules.for_metric(m).enabled}
    # The home's rules.toml is picked up without --rules.
    assert load_settings(home).rules_path == rules_file
    _stored_loop(home, "after", [0.9, 0.9, 0.9])
    assert main(["evaluate", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rules"][-1] == str(rules_file)


def test_calibrate_from_stored_control_loops_and_its_errors(home, tmp_path, capsys):
    rng = np.random.default_rng(1)
    for name in ("ctl-a", "ctl-b"):
        _stored_loop(home, name, 0.9 + rng.normal(0, 0.01, size=15))
    out = tmp_path / "calibrated.toml"
    assert main(["calibrate", "--from-loop", "ctl-a", "--from-loop", "ctl-b", "--target-arl0", "30",
                 "--out", str(out)]) == 0
    assert "calibrated on control loops ctl-a, ctl-b" in capsys.readouterr().out
    assert "control loops ctl-a, ctl-b" in out.read_text()
    assert main(["calibrate"]) == 1
    assert "give either --reference FILE or --from-loop LOOP" in capsys.readouterr().err
    assert main(["calibrate", "--from-loop", "missing"]) == 1
    assert "loop 'missing': no audited rounds" in capsys.readouterr().err


def test_report_writes_family_and_risk_pngs_or_one_html_page(home, tmp_path, capsys):
    _stored_loop(home, "rep", [0.9, 0.902, 0.898, 0.9, 0.65, 0.652, 0.648])
    assert main(["evaluate", "rep"]) == 0
    capsys.readouterr()
    assert main(["report", "rep", "--out", str(tmp_path / "png"), "--json"]) == 0
    files = [Path(f) for f in json.loads(capsys.readouterr().out)["files"]]
    # coverage and diversity families (coverage, vendi_score) plus the risk plot
    assert sorted(f.name for f in files) == ["rep-coverage.png", "rep-diversity.png", "rep-risk.png"]
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5000 for f in files)
    assert main(["report", "rep", "--format", "html", "--out", str(tmp_path / "html"), "--json"]) == 0
    (page,) = [Path(f) for f in json.loads(capsys.readouterr().out)["files"]]
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 3 and "stop the loop and roll back to round 4" in text
    assert sorted(p.name for p in (tmp_path / "html").iterdir()) == ["rep.html"]
    assert main(["report", "nope"]) == 1
    assert "loop 'nope': no audited rounds" in capsys.readouterr().err


def test_status_table_shows_trend_sparklines(home, capsys):
    _stored_loop(home, "spark", [0.9, 0.85, 0.8, 0.75])
    assert main(["evaluate", "spark"]) == 0
    capsys.readouterr()
    assert main(["status", "spark"]) == 0
    assert "█▆▃▁" in capsys.readouterr().out


def test_shared_flags_are_declared_once_and_the_state_flags_work_on_either_side_of_the_verb():
    from monitor.cli import build_parser

    parser = build_parser()
    before = parser.parse_args(["--home", "/a", "--rules", "r.toml", "status", "--json"])
    after = parser.parse_args(["status", "--home", "/b", "--json"])
    assert (before.home, before.rules, before.json) == ("/a", "r.toml", True)
    assert (after.home, after.rules, after.json) == ("/b", None, True)
    audit = parser.parse_args(["audit", "L", "0", "x.npy", "--reference", "r.npy"])
    calibrate = parser.parse_args(["calibrate", "L"])
    for args in (audit, calibrate):  # one declaration, the same defaults
        assert (args.k, args.seed, args.null_rounds, args.json) == (5, 0, 1000, False)
    assert (audit.task_runner, parser.parse_args(["serve"]).task_runner) == ("threads", "threads")
    assert parser.parse_args(["demo"]).null_rounds == 200  # the demo keeps its own, smaller null
