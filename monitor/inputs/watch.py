"""Discovery of round files in watched sources: directories, fsspec URLs and manifests.

A watched source is a directory (a local path or any fsspec URL such as
``s3://bucket/loops``) laid out as ``<loop>/round_<N>.<ext>``, with
``ext`` one of ``npy jsonl txt csv parquet log npz``. Each loop directory may hold
its reference as ``reference.<ext>`` (else the watcher's default reference
is used) and a ``loop.toml`` of audit options (:data:`LOOP_OPTIONS`).

A manifest is the alternative when files cannot follow the convention: a
TOML or JSON file listing the rounds, with paths relative to the manifest::

    [loops.sft-v3]                 # per-loop options, as in loop.toml
    reference = "real/ref.jsonl"
    modality = "text"

    [[rounds]]
    loop = "sft-v3"
    round = 0
    path = "gen/round0.jsonl"
    done = true                    # optional: complete now, don't wait

A file is audited only once it is complete: a ``<file>.done`` marker exists
(or ``done = true`` in the manifest), or its size and modification time are
unchanged since the previous scan. Each version of a file is audited once:
the store keeps the content fingerprint of what was audited, and a changed
file re-audits its round. A file refused as bad input is not retried until it
changes; other failures are retried at the next scan.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from monitor.config import MAX_ROUND, check_loop_name
from monitor.engine.null import MIN_NULL_ROUNDS
from monitor.options import AuditOptions, option_problem
from monitor.errors import CollapseMonitorError
from monitor.inputs.files import CHUNK_BYTES, SUPPORTED_EXTENSIONS

ROUND_FILE = re.compile(r"^round_(\d+)(\.(?:npy|jsonl|txt|csv|parquet|log|npz))$", re.IGNORECASE)
REFERENCE_STEM = "reference"
LOOP_CONFIG = "loop.toml"
DONE_SUFFIX = ".done"
# loop.toml / manifest key -> AuditOptions field (``pool`` -> the per-call ``pool_path``); path-valued keys are
# resolved against the file's directory.
LOOP_OPTIONS = {
    "modality": "modality", "text_field": "text_field", "featurizer": "featurizer", "k": "k",
    "bootstrap": "n_boot", "seed": "seed", "max_samples": "max_samples",
    "protected_attribute": "protected_attribute", "constraints": "constraints_path", "schema": "schema_path",
    "allow_size_change": "allow_size_change", "pool": "pool_path", "null_rounds": "null_rounds",
    "question_field": "question_field", "answer_field": "answer_field", "rationale_field": "rationale_field",
    "passed_field": "passed_field", "code_language": "code_language", "verifier": "verifier",
    "verifier_timeout": "verifier_timeout", "match_key": "match_key", "log_pattern": "log_pattern",
    "encoder": "encoder",
}
_PATH_OPTIONS = ("constraints", "schema", "pool")
@dataclass(frozen=True)
class RoundFile:
    """A round file found in a source, with what auditing it needs."""

    loop: str
    round: int
    url: str
    size: int
    mtime: float | None
    done: bool
    reference: str | None
    options: dict = field(default_factory=dict)
    require_done: bool = False  # loop.toml ``require_done``: complete only with its .done marker


@dataclass(frozen=True)
class Discovery:
    rounds: list[RoundFile]
    problems: list[str]  # one line each, naming the file; the scan goes on


def _fs(url: str):
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ValueError, ImportError) as exc:
        raise CollapseMonitorError(f"{url}: cannot open this source: {exc}") from exc


def _is_local(fs) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def _url(fs, path: str) -> str:
    return path if _is_local(fs) else fs.unstrip_protocol(path)


def _mtime(fs, path: str, info: dict) -> float | None:
    if "mtime" in info:
        return float(info["mtime"])
    try:
        return fs.modified(path).timestamp()
    except (NotImplementedError, AttributeError, OSError, KeyError):
        return None


def _stat(fs, path: str) -> tuple[int, float | None]:
    info = fs.info(path)
    return int(info["size"]), _mtime(fs, path, info)


def _options(raw: dict, where: str, base: str, fs) -> dict:
    unknown = sorted(set(raw) - set(LOOP_OPTIONS) - {"reference", "require_done"})
    if unknown:
        raise CollapseMonitorError(
            f"{where}: unknown option(s) {', '.join(unknown)}; expected some of reference, {', '.join(LOOP_OPTIONS)}")
    out = {}
    if "reference" in raw and (not isinstance(raw["reference"], str) or not raw["reference"]):
        raise CollapseMonitorError(f"{where}: reference: expected a path, got {raw['reference']!r}")
    if "require_done" in raw and not isinstance(raw["require_done"], bool):
        raise CollapseMonitorError(f"{where}: require_done: expected true or false, got {raw['require_done']!r}")
    for key, value in raw.items():
        if key in ("reference", "require_done"):
            continue
        # Checked when loop.toml is read, so a bad value refuses the loop once (retried when the file
        # changes) instead of failing every scan; the types and bounds are the audit options' own.
        name = LOOP_OPTIONS[key]
        if name == "null_rounds" and isinstance(value, int) and not isinstance(value, bool) \
                and value < MIN_NULL_ROUNDS:
            problem = f"expected an integer >= {MIN_NULL_ROUNDS}, got {value!r}"
        elif name in AuditOptions.model_fields:
            problem = option_problem(name, value)
        else:  # pool: a path
            problem = None if isinstance(value, str) and value else f"expected a path, got {value!r}"
        if problem:
            raise CollapseMonitorError(f"{where}: {key}: {problem}")
        out[LOOP_OPTIONS[key]] = _local_path(fs, _join(base, value)) if key in _PATH_OPTIONS else value
    return out


def _join(base: str, relative: str) -> str:
    if "://" in relative or relative.startswith("/"):
        return relative
    return str(PurePosixPath(base) / relative)


def _local_path(fs, path: str) -> str:
    if not _is_local(fs):
        raise CollapseMonitorError(f"{path}: option files (constraints, schema) must be local paths")
    return path


def _read_config(fs, path: str) -> dict:
    try:
        with fs.open(path, "rb") as fh:
            raw = fh.read()
        if path.lower().endswith(".json"):
            data = json.loads(raw)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CollapseMonitorError(f"{_url(fs, path)}: cannot read: {exc}") from exc
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise CollapseMonitorError(f"{_url(fs, path)}: not valid {'JSON' if path.endswith('.json') else 'TOML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise CollapseMonitorError(f"{_url(fs, path)}: expected a table at the top level")
    return data


def _escape_check(fs, root: str, follow_links: bool):
    """A function telling whether a path resolves outside the watched source (None: inside, or links followed)."""
    if follow_links or not _is_local(fs):
        return lambda path: None
    inside = os.path.realpath(root)

    def escapes(path: str) -> str | None:
        target = os.path.realpath(path)
        return None if os.path.commonpath([inside, target]) == inside else target
    return escapes


def discover_directory(source: str, default_reference: str | None = None, *,
                       follow_links: bool = False) -> Discovery:
    """Round files under ``source`` laid out as ``<loop>/round_<N>.<ext>``.

    A loop folder or file that is a link resolving outside ``source`` is refused (a neighbour's
    ``round_0.txt -> /etc/passwd`` is not audited) unless ``follow_links``.
    """
    fs, root = _fs(source)
    try:
        if not fs.isdir(root):
            raise CollapseMonitorError(f"{source}: not a directory")
        loop_dirs = sorted(p for p in fs.ls(root, detail=False) if fs.isdir(p))
    except OSError as exc:
        raise CollapseMonitorError(f"{source}: cannot list: {exc}") from exc
    escapes = _escape_check(fs, root, follow_links)
    rounds, problems = [], []
    for loop_dir in loop_dirs:
        loop = PurePosixPath(loop_dir).name
        if loop.startswith("."):
            continue
        try:
            check_loop_name(loop)
            target = escapes(loop_dir)
            if target is not None:
                raise CollapseMonitorError(f"{_url(fs, loop_dir)}: links out of the watched source (to {target}); "
                                           "not followed (serve --follow-links allows it)")
            rounds += _loop_directory(fs, loop_dir, loop, default_reference, escapes, problems)
        except (CollapseMonitorError, OSError, TypeError, ValueError, OverflowError) as exc:
            # One loop's bad file or config refuses that loop only; the others are scanned.
            problems.append(str(exc) if _url(fs, loop_dir) in str(exc) else f"{_url(fs, loop_dir)}: {exc}")
    return Discovery(rounds, problems)


def _loop_directory(fs, loop_dir: str, loop: str, default_reference: str | None, escapes=lambda path: None,
                    problems: list | None = None) -> list[RoundFile]:
    entries = {}
    for p in fs.ls(loop_dir, detail=True):
        if p.get("type") == "directory":
            continue
        target = escapes(p["name"])
        if target is not None:  # skipped with its reason; the loop's other files go on
            if problems is not None:
                problems.append(f"{_url(fs, p['name'])}: links out of the watched source (to {target}); not "
                                "followed (serve --follow-links allows it)")
            continue
        entries[PurePosixPath(p["name"]).name] = p
    options, reference, require_done = {}, default_reference, False
    if LOOP_CONFIG in entries:
        config_path = entries[LOOP_CONFIG]["name"]
        raw = _read_config(fs, config_path)
        options = _options(raw, _url(fs, config_path), loop_dir, fs)
        require_done = bool(raw.get("require_done", False))
        if "reference" in raw:
            reference = _url(fs, _join(loop_dir, raw["reference"]))
    references = sorted(n for n in entries if PurePosixPath(n).stem == REFERENCE_STEM
                        and PurePosixPath(n).suffix.lower() in SUPPORTED_EXTENSIONS)
    if len(references) > 1:
        raise CollapseMonitorError(f"{_url(fs, loop_dir)}: several reference files ({', '.join(references)}); keep one")
    if references:
        reference = _url(fs, entries[references[0]]["name"])
    found: dict[int, list[str]] = {}
    for name in entries:
        m = ROUND_FILE.fullmatch(name)
        if m and int(m.group(1)) > MAX_ROUND:
            raise CollapseMonitorError(f"{_url(fs, entries[name]['name'])}: round {m.group(1)}: expected at most "
                                       f"{MAX_ROUND}")
        if m:
            found.setdefault(int(m.group(1)), []).append(name)
    out = []
    for round_number, names in sorted(found.items()):
        if len(names) > 1:
            raise CollapseMonitorError(
                f"{_url(fs, loop_dir)}: round {round_number} has several files ({', '.join(sorted(names))}); keep one")
        entry = entries[names[0]]
        out.append(RoundFile(
            loop=loop, round=round_number, url=_url(fs, entry["name"]), size=int(entry["size"]),
            mtime=_mtime(fs, entry["name"], entry), done=names[0] + DONE_SUFFIX in entries,
            reference=reference, options=options, require_done=require_done))
    return out


def discover_manifest(manifest: str, default_reference: str | None = None) -> Discovery:
    """Round files listed in a TOML or JSON manifest (paths relative to it)."""
    fs, path = _fs(manifest)
    data = _read_config(fs, path)
    base = str(PurePosixPath(path).parent)
    where = _url(fs, path)
    unknown = sorted(set(data) - {"loops", "rounds"})
    if unknown:
        raise CollapseMonitorError(f"{where}: unknown top-level key(s) {', '.join(unknown)}; expected loops, rounds")
    loops = data.get("loops", {})
    entries = data.get("rounds", [])
    if not isinstance(loops, dict) or not isinstance(entries, list):
        raise CollapseMonitorError(f"{where}: expected a [loops] table and a [[rounds]] array")
    loop_options, loop_references, loop_require_done = {}, {}, {}
    for loop, raw in loops.items():
        if not isinstance(raw, dict):
            raise CollapseMonitorError(f"{where}: loops.{loop}: expected a table")
        loop_options[loop] = _options(raw, f"{where}: loops.{loop}", base, fs)
        loop_require_done[loop] = bool(raw.get("require_done", False))
        if "reference" in raw:
            loop_references[loop] = _url(fs, _join(base, raw["reference"]))
    rounds, problems, seen = [], [], set()
    for i, entry in enumerate(entries):
        at = f"{where}: rounds[{i}]"
        try:
            if not isinstance(entry, dict) or set(entry) - {"loop", "round", "path", "done"} \
                    or not {"loop", "round", "path"} <= set(entry):
                raise CollapseMonitorError(f"{at}: expected keys loop, round, path (and optional done), got {entry!r}")
            loop, round_number, rel = entry["loop"], entry["round"], entry["path"]
            check_loop_name(loop)
            if isinstance(round_number, bool) or not isinstance(round_number, int) or not 0 <= round_number <= MAX_ROUND:
                raise CollapseMonitorError(f"{at}: round: expected an integer from 0 to {MAX_ROUND}, got "
                                           f"{round_number!r}")
            if (loop, round_number) in seen:
                raise CollapseMonitorError(f"{at}: loop {loop} round {round_number} is listed twice")
            seen.add((loop, round_number))
            file_path = _join(base, rel)
            if PurePosixPath(file_path).suffix.lower() not in SUPPORTED_EXTENSIONS:
                raise CollapseMonitorError(
                    f"{at}: {rel}: unsupported extension; expected one of {' '.join(SUPPORTED_EXTENSIONS)}")
            file_fs, file_path = _fs(file_path) if "://" in file_path else (fs, file_path)
            if not file_fs.exists(file_path):
                continue  # listed ahead of being written: picked up once it exists
            size, mtime = _stat(file_fs, file_path)
            done = bool(entry.get("done", False)) or file_fs.exists(file_path + DONE_SUFFIX)
            rounds.append(RoundFile(loop, round_number, _url(file_fs, file_path), size, mtime, done,
                                    loop_references.get(loop, default_reference), loop_options.get(loop, {}),
                                    loop_require_done.get(loop, False)))
        except (CollapseMonitorError, OSError, TypeError, ValueError) as exc:  # this entry only
            problems.append(str(exc) if isinstance(exc, CollapseMonitorError) else f"{at}: {exc}")
    return Discovery(rounds, problems)


def sha256_url(url: str) -> str:
    """Content fingerprint of a file at a local path or fsspec URL, streamed."""
    import hashlib

    fs, path = _fs(url)
    digest = hashlib.sha256()
    with fs.open(path, "rb") as fh:
        while block := fh.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def local_copy(url: str, cache_dir: Path, fingerprint: str | None = None) -> str:
    """A local path for the file: itself when local, else a copy under ``cache_dir`` (refreshed when it changed)."""
    fs, path = _fs(url)
    if _is_local(fs):
        return path
    name = PurePosixPath(path).name
    tag = (fingerprint or "latest")[:16]
    target = cache_dir / re.sub(r"[^A-Za-z0-9_.-]", "_", str(PurePosixPath(path).parent)).strip("_") / tag / name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        fs.get_file(path, str(partial))
        partial.replace(target)
    return str(target)


def ready_rounds(store, rounds: list[RoundFile]) -> list[tuple[RoundFile, str]]:
    """The rounds to audit now, with their fingerprints; records every observation in ``store``.

    A file is ready when complete (``.done`` marker, or size and mtime equal
    to the previous scan's, unless its loop sets ``require_done``) and its
    content differs from the version last audited or refused. Unchanged
    handled files are not read again.
    """
    ready = []
    for rf in sorted(rounds, key=lambda r: (r.loop, r.round)):
        row = store.watched_file(rf.url)
        unchanged_since_handled = (
            row is not None and row["status"] in ("audited", "failed")
            and row["handled_size"] == rf.size and row["handled_mtime"] == rf.mtime
        )
        stable = row is not None and row["observed_size"] == rf.size and row["observed_mtime"] == rf.mtime
        store.observe_file(rf.url, rf.loop, rf.round, rf.size, rf.mtime)
        if unchanged_since_handled or not (rf.done or (stable and not rf.require_done)):
            continue
        fingerprint = sha256_url(rf.url)
        if row is not None and row["status"] in ("audited", "failed") and row["fingerprint"] == fingerprint:
            store.mark_file(rf.url, row["status"], fingerprint, rf.size, rf.mtime, row["error"])  # touched, same bytes
            continue
        ready.append((rf, fingerprint))
    return ready


def discover(sources: list[str], manifests: list[str], default_reference: str | None, *,
             follow_links: bool = False) -> Discovery:
    """Every round file of every source and manifest; one source's failure is a problem, not fatal."""
    rounds, problems = [], []
    for kind, urls in (("directory", sources), ("manifest", manifests)):
        for url in urls:
            try:
                found = discover_directory(url, default_reference, follow_links=follow_links) if kind == "directory" \
                    else discover_manifest(url, default_reference)
            except CollapseMonitorError as exc:
                problems.append(str(exc) if url in str(exc) else f"{url}: {exc}")
                continue
            except OSError as exc:
                problems.append(f"{url}: cannot read: {exc}")
                continue
            rounds += found.rounds
            problems += found.problems
    by_key: dict[tuple[str, int], RoundFile] = {}
    for rf in rounds:
        other = by_key.get((rf.loop, rf.round))
        if other is not None and other.url != rf.url:
            problems.append(f"loop {rf.loop} round {rf.round}: found in two places ({other.url}, {rf.url}); "
                            "auditing the first")
            continue
        by_key[(rf.loop, rf.round)] = rf
    return Discovery(list(by_key.values()), problems)


def check_sources(sources: list[str], manifests: list[str], default_reference: str | None) -> None:
    """Fail fast (before serving) on a source that is not there or a reference that does not exist."""
    for url in sources:
        fs, root = _fs(url)
        if not fs.isdir(root):
            raise CollapseMonitorError(f"{url}: the watched source is not a directory")
    for url in manifests:
        fs, path = _fs(url)
        if not fs.isfile(path):
            raise CollapseMonitorError(f"{url}: the manifest does not exist")
    if default_reference is not None:
        fs, path = _fs(default_reference)
        if not fs.isfile(path):
            raise CollapseMonitorError(f"{default_reference}: the reference file does not exist")
    if not sources and not manifests:
        raise CollapseMonitorError("nothing to watch: give --watch DIR_OR_URL and/or --manifest FILE")
