"""The CLI: the JSON contract, one-line errors with exit 1, status, serve and demo."""

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
from prometheus_client.parser import text_string_to_metric_families

from metrics_core.registry import REGISTRY
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
    assert list(result["metrics"]) == list(REGISTRY)
    assert list(result["metrics"])[:6] == ["precision", "recall", "density", "coverage", "vendi_score", "self_cosine_similarity"]
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
        ([str(truncated), "--reference", str(ref)], "truncated.npy (round, round 1): not a readable .npy array"),
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
    assert code == 1 and "round -1: expected a non-negative integer" in capsys.readouterr().err
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
    assert {a["metric"] for a in report["alerts"]} == {"coverage", "recall"}
    assert report["status"] in {"ok", "warning", "critical"}
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
    assert "exporter stopped" in out


@pytest.mark.usefixtures("prefect_harness")
def test_demo_runs_loop_and_alerts(home, capsys):
    assert main(["demo", "--rounds", "6", "--port", "0"]) == 0
    out = capsys.readouterr().out
    assert "demo-gmm" in out and "first alert at round" in out
    traj = TrajectoryStore(load_settings().store_url).trajectory("demo-gmm")
    assert sorted(traj["round"].unique()) == list(range(6))
    recall = traj[traj.metric == "recall"].sort_values("round")["value"].to_numpy()
    assert recall[-1] < recall[0] - 0.2  # the loop collapses


def test_serve_port_in_use_is_one_line_error(home, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err
