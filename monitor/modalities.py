"""Text and tabular rounds: featurizers, the fitted-featurizer cache, and the tabular option files.

:class:`monitor.pipeline.AuditPipeline` composes these with ``metrics_core``:

* text: :func:`metrics_core.text.text_suite`, then embeddings from a
  featurizer (``hashing``, fitted on the reference, or ``sentence-transformers``
  from a local model) through the content-hash embedding cache, so each unique
  text is embedded once across all rounds and the reference once per
  featurizer;
* tabular: :func:`metrics_core.tabular.tabular_suite`, and rows encoded as
  standardised numeric plus one-hot categorical columns fitted on the
  reference (:func:`metrics_core.tabular.encode_rows`).

Both then run the embedding-space suite on those rows.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np

from monitor.errors import CollapseMonitorError, InputError

HASHING = "hashing"
SENTENCE_TRANSFORMERS_PREFIX = "sentence-transformers:"


def check_featurizer(name: str) -> str:
    """``hashing`` or ``sentence-transformers:<local path or installed package>``."""
    if name == HASHING or (name.startswith(SENTENCE_TRANSFORMERS_PREFIX) and len(name) > len(SENTENCE_TRANSFORMERS_PREFIX)):
        return name
    raise CollapseMonitorError(
        f"featurizer {name!r}: expected 'hashing' or 'sentence-transformers:<model path or package>'"
    )


def _hashing_featurizer(cache_dir: Path, reference_fingerprint: str, reference_texts: list[str], seed: int):
    """The hashing featurizer fitted on the reference, from disk (JSON + .npz, no pickle) or fitted now."""
    from metrics_core.featurize import HashingFeaturizer, fit_hashing_featurizer

    stem = cache_dir / f"hashing-{reference_fingerprint[:24]}-{len(reference_texts)}-{seed}"
    config_path, arrays_path = stem.with_suffix(".json"), stem.with_suffix(".npz")
    if config_path.is_file() and arrays_path.is_file():
        try:
            with np.load(arrays_path, allow_pickle=False) as npz:
                return HashingFeaturizer.from_arrays(json.loads(config_path.read_text()), dict(npz))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged entry is refitted
    featurizer = fit_hashing_featurizer(reference_texts, seed=seed)
    config, arrays = featurizer.to_arrays()
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(arrays_path, **arrays)
    config_path.write_text(json.dumps(config))
    return featurizer


def load_constraints_file(path: str | None):
    """Integrity constraints for the violation rate, from a TOML file with a ``[[constraints]]`` array."""
    if path is None:
        return None
    from metrics_core.tabular import load_constraints

    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
        return load_constraints(doc)
    except FileNotFoundError:
        raise InputError(f"{path}: constraints file not found") from None
    except (tomllib.TOMLDecodeError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: bad constraints: {exc}") from None


def load_schema_file(path: str | None) -> dict[str, str] | None:
    """Column kinds overriding the inferred schema, from a TOML file with a ``[columns]`` table."""
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(f"{path}: schema file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
    columns = doc.get("columns")
    if not isinstance(columns, dict) or set(doc) != {"columns"}:
        raise InputError(f"{path}: expected one [columns] table of column = \"numeric\" or \"categorical\"")
    for column, kind in columns.items():
        if kind not in ("numeric", "categorical"):
            raise InputError(f"{path}: [columns] {column} = {kind!r}: expected \"numeric\" or \"categorical\"")
    return columns
