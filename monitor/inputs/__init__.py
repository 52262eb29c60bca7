"""The one place that loads rounds, references and pools: :func:`load_embeddings`, :func:`load_texts`,
:func:`load_table`, :func:`load_records`, and :func:`detect_modality` to choose between them.

**Formats.** Text comes from ``.jsonl`` (one JSON object per line, the sample
in a top-level string field, default ``text``), ``.txt`` (one sample per
line) or a ``.csv`` / ``.parquet`` text column. Tables come from ``.csv`` or
``.parquet``. Embeddings come from ``.npy`` (:func:`load_embeddings`). Reasoning and code rounds come from
``.jsonl`` records of a question id, an answer, a rationale and a test verdict (:func:`load_records`; chosen
with ``--modality reasoning``, or detected by the first record's fields). Agent trajectories come from
``.jsonl`` episodes of steps (:func:`load_episodes`; ``--modality agent``, or detected by a ``steps`` array).
JSON records come from ``.jsonl`` generator outputs (:func:`load_json_records`; ``--modality json`` only),
graphs from ``.jsonl`` edge lists or node-link objects (:func:`load_graphs`; detected by ``edges``/``links``),
log lines from ``.log`` (:func:`load_log_lines`), and image-text pairs from ``.npz`` embeddings
(:func:`load_pairs`) or a ``.jsonl`` manifest of image files and captions encoded by the user's encoder
(:func:`encode_manifest`).

Every failure is one line that names the file, the role, where in the file and the problem
(:mod:`monitor.inputs.files`); a file parsed once is remembered per process while it is unchanged
(:func:`monitor.inputs.files.remembered`). The modules: ``files`` (shared reading rules), ``sampling``
(reservoir subsampling), ``detect``, ``embeddings``, ``texts``, ``tables``, ``records``, ``episodes``, ``json_records``, ``graphs``,
``logs``, ``pairs``, ``encoders``; ``watch`` and
``comparability`` decide which files become rounds and whether a round may join its loop.
"""

from __future__ import annotations

_EXPORTS = {
    "load_embeddings": "embeddings", "LoadedArray": "embeddings", "check_same_dim": "embeddings",
    "fingerprint_array": "embeddings",
    "load_texts": "texts", "LoadedTexts": "texts",
    "load_table": "tables", "LoadedTable": "tables", "infer_column_kinds": "tables",
    "load_records": "records", "LoadedRecords": "records",
    "load_episodes": "episodes", "LoadedEpisodes": "episodes",
    "load_json_records": "json_records", "LoadedJsonRecords": "json_records", "load_json_schema": "json_records",
    "load_graphs": "graphs", "LoadedGraphs": "graphs", "load_graph_constraints": "graphs",
    "load_log_lines": "logs", "LoadedLogLines": "logs", "compile_log_pattern": "logs",
    "load_pairs": "pairs", "LoadedPairs": "pairs", "encode_manifest": "encoders", "load_encoder": "encoders",
    "detect_modality": "detect",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    # Lazy: the watcher and the commands import the package without pandas' readers.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"monitor.inputs.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'monitor.inputs' has no attribute {name!r}")
