"""The meta-evaluation's archive: every run's audited rounds and every null, so the engine can be re-applied.

Auditing is almost all of a meta-evaluation's cost (82 minutes for the eleven original loops on 2 cores);
the engine's replay of a run is milliseconds. A run therefore archives what it audited, and
``collapse-monitor meta-evaluate --rescore`` re-applies the current engine and rules to the archive and writes
the report again, without auditing anything (:func:`monitor.meta_evaluation.runner.rescore`). Audits, nulls,
baselines and oracles do not depend on the engine, and the runs are seeded, so the rescored report is the one a
new run with the same settings would write (tested: a rescore under unchanged rules reproduces the run's
``results.json``).

Layout of an archive folder (JSON only, gzip-compressed; no pickle, so an archive from elsewhere is data, never
code)::

    archive.json                 settings, date, machine, timings, rules sources, Evidently check
    runs/<run id>__s<seed>.json.gz    one run: trajectory, generations, baselines' inputs, oracles, truth
    nulls/<loop id>__s<seed>.json.gz  the (loop, seed)'s null (monitor.engine.null.LoopNull.as_json)

NaN and infinities are stored as ``{"__float__": "nan"}`` etc.; arrays keep their dtype and shape.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.errors import CollapseMonitorError

FORMAT = 1  # bump when the layout changes; an archive of another format is refused, not misread
INDEX = "archive.json"


def _encode(value):
    """JSON-ready ``value``: arrays, frames, numpy scalars and non-finite floats made explicit."""
    if isinstance(value, pd.DataFrame):
        return {"__frame__": {str(c): _encode(value[c].to_numpy()) for c in value.columns},
                "columns": [str(c) for c in value.columns]}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return {"__objects__": [_encode(v) for v in value.ravel().tolist()], "shape": list(value.shape)}
        flat = [_encode(v) for v in value.ravel().tolist()]
        return {"__array__": flat, "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return _encode(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot archive a {type(value).__name__}")


def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__float__" in value:
        return float(value["__float__"])
    if "__dict__" in value:
        return {_key(_decode(k)): _decode(v) for k, v in value["__dict__"]}
    if "__array__" in value:
        flat = [_decode(v) for v in value["__array__"]]
        return np.array(flat, dtype=np.dtype(value["dtype"])).reshape(value["shape"])
    if "__objects__" in value:
        out = np.empty(len(value["__objects__"]), dtype=object)
        out[:] = [_decode(v) for v in value["__objects__"]]
        return out.reshape(value["shape"])
    if "__frame__" in value:
        return pd.DataFrame({c: _decode(value["__frame__"][c]) for c in value["columns"]}, columns=value["columns"])
    raise ValueError(f"unknown archived value with keys {sorted(value)}")


def _key(key):
    return tuple(key) if isinstance(key, list) else key


def _write_gz(path: Path, doc) -> None:
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as fh:
        json.dump(doc, fh, separators=(",", ":"), allow_nan=False)


def _read_gz(path: Path):
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def _name(stem: str, seed: int) -> str:
    return f"{stem}__s{int(seed)}.json.gz"


def save_archive(result, folder: str | Path) -> Path:
    """Write ``result``'s runs (without the engine's verdicts) and nulls to ``folder``, replacing it whole.

    Written beside it first and swapped in by renames, so a crash leaves the previous archive or the new one;
    what a killed save left beside it is removed by the next save.

    Args:
        result: a :class:`monitor.meta_evaluation.runner.BenchResult` of audited runs.
        folder: the archive folder.
    """
    folder = Path(folder)
    staging = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    for left in folder.parent.glob(f".{folder.name}.*.*"):  # a killed save's staging or swapped-out copy
        if left.suffix in (".tmp", ".old") and left.is_dir():
            shutil.rmtree(left, ignore_errors=True)
    (staging / "runs").mkdir(parents=True)
    (staging / "nulls").mkdir()
    try:
        for run in result.runs:
            fields = {f.name: getattr(run, f.name) for f in dataclasses.fields(run) if f.name != "engine"}
            _write_gz(staging / "runs" / _name(run.run_id, run.seed), {k: _encode(v) for k, v in fields.items()})
        for (family, seed), null in result.nulls.items():
            if null is not None:
                _write_gz(staging / "nulls" / _name(family, seed), {"null": null.as_json()})
        index = {"format": FORMAT, "settings": result.settings.as_dict(), "date": result.date,
                 "machine": result.machine, "timings": result.timings, "rules_sources": result.rules_sources,
                 "evidently_check": result.evidently_check, "families": list(result.families)}  # the run's order
        (staging / INDEX).write_text(json.dumps({k: _encode(v) for k, v in index.items()}, allow_nan=False, indent=1),
                                     encoding="utf-8")
        old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
        if folder.exists():
            folder.rename(old)
        staging.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


@dataclasses.dataclass
class Archive:
    """An archive read back: the runs (``engine`` None until re-applied), the nulls and the run's index."""

    settings: object
    runs: list
    nulls: dict
    date: str
    machine: dict
    timings: dict
    rules_sources: list
    evidently_check: list
    families: list


def load_archive(folder: str | Path, families=None) -> Archive:
    """Read the archive in ``folder`` (only ``families`` when given: loop ids).

    Raises:
        CollapseMonitorError: no archive there, another format, or a file that does not parse (named).
    """
    from monitor.meta_evaluation.jobs import RunResult
    from monitor.meta_evaluation.settings import BenchSettings, family_of
    from monitor.engine.null import LoopNull

    folder = Path(folder)
    index_path = folder / INDEX
    if not index_path.is_file():
        raise CollapseMonitorError(f"{index_path}: no meta-evaluation archive here (a full run writes one; "
                                   "--rescore re-applies the engine to it)")
    try:
        index = {k: _decode(v) for k, v in json.loads(index_path.read_text(encoding="utf-8")).items()}
    except (OSError, ValueError, AttributeError) as exc:
        raise CollapseMonitorError(f"{index_path}: unreadable archive index: {exc}") from exc
    if index.get("format") != FORMAT:
        raise CollapseMonitorError(f"{index_path}: archive format {index.get('format')!r}, this version reads "
                                   f"{FORMAT}: run the meta-evaluation again")
    wanted = set(index["families"] if families is None else families)
    missing = sorted(wanted - set(index["families"]))
    if missing:
        raise CollapseMonitorError(f"{index_path}: the archive holds loops {index['families']}, not {missing}")
    raw = dict(index["settings"])
    raw["seeds"] = tuple(raw["seeds"])
    raw["text_seeds"] = None if raw["text_seeds"] is None else tuple(raw["text_seeds"])
    raw["schedules"] = {k: tuple(v) for k, v in raw["schedules"].items()}
    settings = BenchSettings(**raw)
    runs, nulls = [], {}
    for path in sorted((folder / "runs").glob("*.json.gz")):
        try:
            fields = {k: _decode(v) for k, v in _read_gz(path).items()}
            if family_of(fields["run_id"]) not in wanted:
                continue
            runs.append(RunResult(**fields, engine=None))
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
            raise CollapseMonitorError(f"{path}: unreadable archived run: {exc}") from exc
    for path in sorted((folder / "nulls").glob("*.json.gz")):
        family, _, seed = path.name.removesuffix(".json.gz").rpartition("__s")
        if family not in wanted:
            continue
        try:
            nulls[(family, int(seed))] = LoopNull.from_json(_read_gz(path)["null"])
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
            raise CollapseMonitorError(f"{path}: unreadable archived null: {exc}") from exc
    return Archive(settings, runs, nulls, index["date"], index["machine"], index["timings"],
                   index["rules_sources"], index["evidently_check"], [f for f in index["families"] if f in wanted])
