"""Text and tabular rounds: their own metrics, their rows as embeddings, and the Evidently drift report.

The flow calls these per modality; each is a thin composition of
``metrics_core`` functions plus the disk caches, so the flow's tasks stay
orchestration only:

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

from metrics_core.bootstrap import Estimate
from metrics_core.suite import METRICS_VERSION
from monitor.embedding_cache import EmbeddingCache
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


def text_metrics(reference_texts: list[str], round_texts: list[str], *, n_boot: int, seed: int) -> dict[str, Estimate]:
    from metrics_core.text import fit_text_reference, text_suite

    return text_suite(fit_text_reference(reference_texts), round_texts, n_boot=n_boot, seed=seed)


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


def text_embeddings(
    cache_dir: Path,
    featurizer: str,
    reference_fingerprint: str,
    reference_texts: list[str],
    round_texts: list[str],
    *,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Embeddings of the reference and the round, and the cache key: the featurizer's content hash and ``METRICS_VERSION``."""
    cache = EmbeddingCache(cache_dir / "embeddings")
    if featurizer == HASHING:
        model = _hashing_featurizer(cache_dir / "featurizers", reference_fingerprint, reference_texts, seed)
        key, embed = model.key, model.transform
    else:
        from metrics_core.featurize_st import load_sentence_transformer

        try:
            model = load_sentence_transformer(featurizer[len(SENTENCE_TRANSFORMERS_PREFIX):])
        except (ValueError, ImportError) as exc:
            raise CollapseMonitorError(f"featurizer {featurizer!r}: {exc}") from exc
        key, embed = model.key, model.transform

    key = f"{key}@metrics-v{METRICS_VERSION}"  # a metrics-version bump re-embeds rather than trusting old vectors
    return cache.embed(reference_texts, key, embed), cache.embed(round_texts, key, embed), key


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


def tabular_metrics_and_embeddings(
    reference_df, round_df, *, n_boot: int, seed: int, protected_attribute: str | None, constraints_path: str | None,
    round_where: str, schema_path: str | None = None, reference_where: str = "reference",
) -> tuple[dict[str, Estimate], np.ndarray, np.ndarray, dict[str, list[str]]]:
    """The tabular suite, the encoded rows of both tables, and the numeric / categorical columns used.

    The schema is inferred from the reference (:func:`metrics_core.tabular.infer_schema`)
    and overridden column by column by ``schema_path``.
    """
    from metrics_core.tabular import encode_rows, fit_tabular_reference, infer_schema, tabular_suite

    constraints = load_constraints_file(constraints_path)
    try:
        schema = infer_schema(reference_df, load_schema_file(schema_path))
    except ValueError as exc:  # an override naming an unknown column, or numeric on text
        raise InputError(f"{reference_where}: schema: {exc}") from exc
    fit = fit_tabular_reference(reference_df, schema, seed=seed)
    try:
        result = tabular_suite(fit, round_df, protected_attribute=protected_attribute, constraints=constraints,
                               seed=seed, n_boot=n_boot)
    except ValueError as exc:  # e.g. a protected attribute or constrained column the table lacks
        raise InputError(f"{round_where}: {exc}") from exc
    return (
        dict(result.metrics),
        encode_rows(reference_df, schema, fit),
        encode_rows(round_df, schema, fit),
        {"numeric": list(schema.numeric), "categorical": list(schema.categorical)},
    )
