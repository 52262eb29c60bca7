"""On-disk cache of fitted reference profiles, without pickle.

A profile is a tree of frozen dataclasses holding arrays, tensors and
scalars. It is written as two files: ``<key>.json`` (the tree, with array
placeholders) and ``<key>.npz`` (the arrays, read back with
``allow_pickle=False``). Only the dataclasses listed in ``_ALLOWED`` can be
rebuilt, through their constructors, so a tampered cache can at worst fail
validation; it can never run code. Files are written atomically; a missing or
unreadable entry is simply refitted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from metrics_core.alpha import AlphaReference
from metrics_core.clusters import ClusterReference
from metrics_core.distribution import GaussianStats
from metrics_core.privacy import DCRReference
from metrics_core.spectral import SpectrumReference
from metrics_core.suite import SuiteReference

log = logging.getLogger(__name__)

_ALLOWED = {cls.__name__: cls for cls in (SuiteReference, AlphaReference, ClusterReference, GaussianStats, DCRReference, SpectrumReference)}
# Profiles cached before the fit functions took one word order (fit_<what>_reference) are still read.
_FORMER_NAMES = {"ReferenceProfile": SuiteReference, "ReferenceClusters": ClusterReference,
                 "ReferenceSpectrum": SpectrumReference}
_MEMORY: OrderedDict[str, SuiteReference] = OrderedDict()
_MEMORY_SIZE = 4


def _encode(obj, arrays: dict[str, np.ndarray]):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        name = type(obj).__name__
        if name not in _ALLOWED:
            raise TypeError(f"profile cache: {name} is not a cacheable type")
        return {"__dataclass__": name, "fields": {f.name: _encode(getattr(obj, f.name), arrays) for f in dataclasses.fields(obj)}}
    if isinstance(obj, torch.Tensor):
        key = f"a{len(arrays)}"
        arrays[key] = obj.detach().cpu().numpy()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError("profile cache: object arrays are not cacheable")
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {"__ndarray__": key}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        return {"__seq__": [_encode(v, arrays) for v in obj], "tuple": isinstance(obj, tuple)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"profile cache: cannot store a {type(obj).__name__}")


def _decode(node, arrays):
    if isinstance(node, dict):
        if "__dataclass__" in node:
            name = node["__dataclass__"]
            cls = _ALLOWED[name] if name in _ALLOWED else _FORMER_NAMES[name]
            return cls(**{name: _decode(v, arrays) for name, v in node["fields"].items()})
        if "__tensor__" in node:
            return torch.from_numpy(np.array(arrays[node["__tensor__"]]))
        if "__ndarray__" in node:
            return np.array(arrays[node["__ndarray__"]])
        if "__seq__" in node:
            seq = [_decode(v, arrays) for v in node["__seq__"]]
            return tuple(seq) if node["tuple"] else seq
        raise ValueError("profile cache: unknown node")
    return node


def save_profile(profile: SuiteReference, directory: Path, key: str) -> None:
    save_tree(profile, directory, key)
    _remember(key, profile)


def save_tree(obj, directory: Path, key: str) -> None:
    """Write any tree of the allowed dataclasses, tensors, arrays, scalars and sequences."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, arrays)
    for suffix, write in ((".npz", lambda fh: np.savez(fh, **arrays)), (".json", lambda fh: fh.write(json.dumps(tree).encode()))):
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{key}", suffix=suffix)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, directory / f"{key}{suffix}")


def load_profile(directory: Path, key: str) -> SuiteReference | None:
    """The cached profile, or None when absent or unreadable (then it is refitted)."""
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        return _MEMORY[key]
    try:
        profile = load_tree(directory, key)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("reference profile cache %s unreadable (%s); refitting", key, exc)
        return None
    if not isinstance(profile, SuiteReference):
        return None
    _remember(key, profile)
    return profile


def load_tree(directory: Path, key: str):
    """Read what :func:`save_tree` wrote; None when the files are absent."""
    json_path, npz_path = directory / f"{key}.json", directory / f"{key}.npz"
    if not (json_path.is_file() and npz_path.is_file()):
        return None
    with np.load(npz_path, allow_pickle=False) as arrays:
        return _decode(json.loads(json_path.read_text()), arrays)


def _remember(key: str, profile: SuiteReference) -> None:
    _MEMORY[key] = profile
    _MEMORY.move_to_end(key)
    while len(_MEMORY) > _MEMORY_SIZE:
        _MEMORY.popitem(last=False)
