"""The meta-evaluation's archive (monitor.meta_evaluation.archive): lossless, pickle-free, and refusing bad files."""

from __future__ import annotations

import gzip
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from monitor.engine.null import LoopNull
from monitor.errors import CollapseMonitorError
from monitor.meta_evaluation import archive
from monitor.meta_evaluation.jobs import RunResult
from monitor.meta_evaluation.settings import default_settings


def _run(seed: int) -> RunResult:
    trajectory = pd.DataFrame({"loop": ["L1-d1-M20"] * 3, "round": np.array([0, 1, 2]), "metric": ["mmd2"] * 3,
                               "value": [0.1, np.nan, 0.3], "ci_low": [None, None, None],
                               "ci_high": [np.inf, -np.inf, 1.0], "std_error": [0.01, 0.02, 0.03]})
    return RunResult(
        run_id="L1-d1-M20", family="L1-d1-M20", kind="collapse", modality="embedding", seed=seed,
        generations=np.array([0, 1, 2], dtype=np.int64), onset=2, params={"sigma": np.array([1.0, 0.5]), "M": 20,
                                                                           (1, 2): "tuple key"},
        trajectory=trajectory, drift_share=np.array([0.0, 0.5, np.nan]), mmd_pvalue=np.array([0.5, 0.01, 0.01]),
        engine=None, evidently_check=[{"fast": 0.1, "full": 0.1}], seconds={"total": 1.5, "rounds": 3.0},
        failures=["one"], oracle_alarms=np.array([False, True, True]), truth_crossing=None,
        collapse_oracle_alarms=None)


def _result(runs, nulls):
    return SimpleNamespace(runs=runs, nulls=nulls, settings=default_settings(True), date="2026-12-06 05:00",
                           machine={"cpus": 2}, timings={"wall_seconds": 1.0}, rules_sources=["shipped"],
                           evidently_check=[], families={"L1-d1-M20": {}})


def _equal(a, b) -> bool:
    if isinstance(a, pd.DataFrame):
        return list(a.columns) == list(b.columns) and all(_equal(a[c].to_numpy(), b[c].to_numpy()) for c in a.columns)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and all(_equal(x, y) for x, y in zip(a.ravel(), b.ravel()))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, float) and np.isnan(a):
        return isinstance(b, float) and np.isnan(b)
    return a == b and type(a) is type(b)


def test_runs_and_nulls_round_trip_exactly(tmp_path):
    null = LoopNull(np.array([[0.1, np.nan], [0.2, 0.3]]), ("a", "b"), 20, 5120, "pool", "key", {"n": 2})
    folder = archive.save_archive(_result([_run(0), _run(1)], {("L1-d1-M20", 0): null, ("L1-d1-M20", 1): None}),
                                  tmp_path / "arch")
    back = archive.load_archive(folder)
    assert back.settings == default_settings(True) and back.date == "2026-12-06 05:00"
    assert [r.seed for r in back.runs] == [0, 1]
    for got in back.runs:
        want = _run(got.seed)
        for name in RunResult.__dataclass_fields__:
            assert _equal(getattr(got, name), getattr(want, name)), name
    assert list(back.nulls) == [("L1-d1-M20", 0)]  # a run without a null archives none
    assert back.nulls[("L1-d1-M20", 0)].as_json() == null.as_json()
    # JSON only: nothing in the archive can run code when read
    for path in folder.rglob("*.json.gz"):
        json.loads(gzip.decompress(path.read_bytes()))


def test_an_archive_is_replaced_whole_and_bad_files_are_named(tmp_path):
    folder = archive.save_archive(_result([_run(0), _run(1)], {}), tmp_path / "arch")
    for left in (".arch.999.tmp", ".arch.999.old"):  # what a save killed mid-way leaves
        (tmp_path / left / "runs").mkdir(parents=True)
    archive.save_archive(_result([_run(3)], {}), folder)
    assert [r.seed for r in archive.load_archive(folder).runs] == [3]
    assert [p.name for p in tmp_path.iterdir()] == ["arch"]  # no staging folder left behind
    # the loops keep the run's order (a rescored report lists them as the run's did)
    two = _result([_run(0)], {})
    two.families = {"L5-wine": {}, "L1-d1-M20": {}}
    assert archive.load_archive(archive.save_archive(two, tmp_path / "two")).families == ["L5-wine", "L1-d1-M20"]
    with pytest.raises(CollapseMonitorError, match="holds loops \\['L1-d1-M20'\\], not \\['L5-wine'\\]"):
        archive.load_archive(folder, ["L5-wine"])
    bad = folder / "runs" / "L1-d1-M20__s3.json.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(CollapseMonitorError, match=r"L1-d1-M20__s3\.json\.gz: unreadable archived run"):
        archive.load_archive(folder)
    index = folder / "archive.json"
    index.write_text(json.dumps({**json.loads(index.read_text()), "format": 99}))
    with pytest.raises(CollapseMonitorError, match="archive format 99"):
        archive.load_archive(folder)
    with pytest.raises(CollapseMonitorError, match="no meta-evaluation archive here"):
        archive.load_archive(tmp_path / "nothing")
