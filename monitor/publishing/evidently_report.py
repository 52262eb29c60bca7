r"""Evidently drift reports of a round against the reference (Evidently 0.7 API).

Each round gets one Evidently ``Report`` holding a ``DataDriftPreset``:

* tabular rounds: every column, typed by an explicit ``DataDefinition``
  (numerical vs categorical) so Evidently never guesses a type;
* text rounds: five per-text descriptors (:func:`text_descriptors`) plus the
  embeddings projected on their first principal components, every one a
  numerical column;
* embedding rounds: the embeddings' first pooled principal components
  (:func:`embedding_drift_report`);
* graph rounds: six per-graph descriptors (:func:`graph_descriptors`,
  :func:`graph_drift_report`);
* image-text rounds: the first pooled principal components of each side, plus
  the captions' text descriptors when both rounds carry captions
  (:func:`image_text_drift_report`).

Every round but a tabular one thus goes through :func:`tabular_drift_report`
(or its core) on numerical columns built here.

The report is saved as self-contained HTML when a path is given (for MLflow)
and its drift share, recorded as ``evidently_drift_share``, is read back from
``Snapshot.dict()`` by :func:`~monitor.publishing.evidently_snapshot.drift_share_from_dict`:

.. math::
    \mathrm{drift\_share} = \frac{\#\{c : \text{column } c \text{ drifts}\}}{\#\text{columns}}
    \in [0, 1],

lower is better (0: no column drifted; the reference against itself gives 0).
Each column's test is Evidently's default for its type and the reference size
(``evidently.legacy.calculations.stattests.registry._get_default_stattest``),
where a numerical column with at most 5 distinct values counts as categorical:
with at most 1,000 reference rows, K-S p-value (numerical) or chi-square
(Z-test for 2 values) p-value (categorical), drift when the p-value is below
0.05 (K-S: at most 0.05); above 1,000 reference rows, normed Wasserstein
distance (numerical) or Jensen-Shannon distance (categorical), drift when the
distance is at least 0.1. The test thus changes where the reference (after
``max_rows``) crosses 1,000 rows.

Embeddings: Evidently 0.7 has ``evidently.metrics.EmbeddingsDrift``, but it is a
single score that ``DriftedColumnsCount`` does not count, its verdict is not in
``Snapshot.dict()``, and it runs t-SNE on up to 5,000 points for its plot (about
45 s at 10,000 rows on one core). The embeddings are therefore reduced to
``max_embedding_dims`` principal components and each component
is a numerical column of the same ``DataDriftPreset``. The axes are fitted on
the reference and round pooled: axes fitted on the reference alone make a round
from the very same distribution drift (see :func:`pooled_components`).

Evidently is imported lazily: the import alone takes several seconds. A command about to audit one round calls
:func:`preload` first, so that the import overlaps the temporary Prefect API's start.
"""

from __future__ import annotations

import re
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from metrics_core._checks import _check_embedding_array, _check_same_dim, _check_texts
from monitor.publishing.evidently_snapshot import drift_share_from_dict, per_column_drift_from_dict

DRIFT_SHARE_METRIC = "evidently_drift_share"
TEXT_DESCRIPTOR_COLUMNS = ("text_length_chars", "word_count", "mean_word_length", "sentence_count", "non_letter_share")
DEFAULT_EMBEDDING_DIMS = 16
GRAPH_DESCRIPTOR_COLUMNS = (
    "node_count", "edge_count", "density", "mean_degree", "mean_clustering", "connected_components",
)

_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class DriftReport:
    """The drift of one round against the reference, as Evidently reported it.

    ``per_column`` maps each column to ``{"stat_test", "threshold", "score",
    "drifted"}``: Evidently's test name, its threshold, the p-value or distance
    and whether the column drifted.
    """

    drift_share: float
    drifted_columns: int
    n_columns: int
    per_column: dict[str, dict] = field(default_factory=dict)
    html_path: Path | None = None

    def as_metrics(self) -> dict[str, float]:
        """The value to record, keyed by its metric name."""
        return {DRIFT_SHARE_METRIC: self.drift_share}


@contextmanager
def _quiet_evidently() -> Iterator[None]:
    """Evidently and its dependencies warn about their own deprecations on import and run; scoped, not global.

    A constant numerical column also makes Evidently's column correlations
    (only drawn, never part of a drift verdict) divide by a zero deviation; a
    value the reference never takes, in a column of at most 5 distinct values
    (tested as categorical), makes scipy's chi-square divide by a zero expected
    count (statistic inf, p-value 0: that column drifts, as it should).
    """
    with warnings.catch_warnings():
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.simplefilter("ignore", category)
        warnings.filterwarnings("ignore", message="invalid value encountered in divide", category=RuntimeWarning)
        warnings.filterwarnings("ignore", message="divide by zero encountered in divide", category=RuntimeWarning)
        yield


_preload_lock = threading.Lock()
_preload_thread: threading.Thread | None = None


def preload() -> bool:
    """Start importing Evidently (about 4 s) in a daemon thread, once per process; True when this call started it.

    A one-round CLI audit calls it just before its flow: the import then runs while the temporary Prefect API
    starts in a child process, instead of on the round's critical path. The report's own import waits for this
    one (Python's per-module import lock) and raises any import error where it is handled.
    """
    global _preload_thread
    with _preload_lock:
        if _preload_thread is not None or "evidently.presets" in sys.modules:
            return False
        _preload_thread = threading.Thread(target=_import_evidently, name="evidently-preload", daemon=True)
        _preload_thread.start()
        return True


def _import_evidently() -> None:
    try:
        import evidently.presets  # noqa: F401
    except Exception:  # noqa: BLE001 - the report's own import raises it again, where it is handled
        pass


def _check_frame(df, name: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{name}: expected a pandas DataFrame, got {type(df).__name__}")
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty DataFrame, got shape {df.shape}")
    if not df.columns.is_unique:
        duplicates = sorted(set(df.columns[df.columns.duplicated()]))
        raise ValueError(f"{name}: expected unique column names, got duplicates {duplicates}")


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _split_column_types(
    reference_df: pd.DataFrame, round_df: pd.DataFrame, columns, numeric_columns, categorical_columns
) -> tuple[list[str], list[str]]:
    """Numerical and categorical columns, every one present in both frames and typed exactly once."""
    columns = list(reference_df.columns) if columns is None else list(columns)
    if not columns:
        raise ValueError("columns: expected at least one column, got none")
    for name, df in (("reference_df", reference_df), ("round_df", round_df)):
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise ValueError(f"{name}: missing columns {missing}; it has {list(df.columns)}")
    for arg, given in (("numeric_columns", numeric_columns), ("categorical_columns", categorical_columns)):
        outside = [c for c in (given or []) if c not in columns]
        if outside:
            raise ValueError(f"{arg}: columns {outside} are not among the report columns {columns}")
    if numeric_columns is not None and categorical_columns is not None:
        both = sorted(set(numeric_columns) & set(categorical_columns))
        if both:
            raise ValueError(f"columns {both} are in both numeric_columns and categorical_columns")
        untyped = [c for c in columns if c not in numeric_columns and c not in categorical_columns]
        if untyped:
            raise ValueError(f"columns {untyped} have no type: add them to numeric_columns or categorical_columns")
    categorical = list(categorical_columns) if categorical_columns is not None else None
    if numeric_columns is not None:
        numeric = list(numeric_columns)
    else:  # pandas dtype decides; bool counts as categorical
        numeric = [c for c in columns if c not in (categorical or []) and _is_numeric(reference_df[c])]
    if categorical is None:
        categorical = [c for c in columns if c not in numeric]
    for c in numeric:
        for name, df in (("reference_df", reference_df), ("round_df", round_df)):
            if not _is_numeric(df[c]):
                raise ValueError(f"{name}: numeric column {c!r}: expected a numeric dtype, got {df[c].dtype}")
    order = {c: i for i, c in enumerate(columns)}
    return sorted(numeric, key=order.__getitem__), sorted(categorical, key=order.__getitem__)


def _subsample(df: pd.DataFrame, max_rows: int | None, rng: np.random.Generator) -> pd.DataFrame:
    if max_rows is None or len(df) <= max_rows:
        return df.reset_index(drop=True)
    keep = np.sort(rng.choice(len(df), size=max_rows, replace=False))
    return df.iloc[keep].reset_index(drop=True)


def _check_max_rows(max_rows) -> None:
    if max_rows is not None and (not isinstance(max_rows, (int, np.integer)) or max_rows < 2):
        raise ValueError(f"max_rows: expected None or an integer >= 2, got {max_rows!r}")


def _run_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    html_path,
) -> DriftReport:
    """One ``DataDriftPreset`` over exactly ``numeric + categorical``, read back from ``Snapshot.dict()``."""
    with _quiet_evidently():
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        # Every type list given (empty ones too): Evidently infers only the lists left as None.
        definition = DataDefinition(
            numerical_columns=numeric,
            categorical_columns=categorical,
            text_columns=[],
            datetime_columns=[],
            unknown_columns=[],
            list_columns=[],
        )
        snapshot = Report([DataDriftPreset()], include_tests=True).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
        report_dict = snapshot.dict()
        saved = None
        if html_path is not None:
            saved = Path(html_path)
            saved.parent.mkdir(parents=True, exist_ok=True)
            snapshot.save_html(str(saved))  # save_html silently writes nothing for a Path
    share, drifted, n_columns = drift_share_from_dict(report_dict)
    per_column = per_column_drift_from_dict(report_dict)
    flagged = sum(v["drifted"] for v in per_column.values())
    if set(per_column) != set(numeric + categorical) or flagged != drifted:
        raise ValueError(
            f"Evidently report: DriftedColumnsCount says {drifted} of {n_columns} columns drifted but the "
            f"per-column tests flag {flagged} of columns {sorted(per_column)}; expected columns {numeric + categorical}"
        )
    order = numeric + categorical
    return DriftReport(
        drift_share=share,
        drifted_columns=drifted,
        n_columns=n_columns,
        per_column={c: per_column[c] for c in order},
        html_path=saved,
    )


def tabular_drift_report(
    reference_df: pd.DataFrame,
    round_df: pd.DataFrame,
    *,
    html_path: str | Path | None = None,
    columns: Sequence[str] | None = None,
    numeric_columns: Sequence[str] | None = None,
    categorical_columns: Sequence[str] | None = None,
    max_rows: int | None = None,
    seed: int = 0,
) -> DriftReport:
    r"""Evidently ``DataDriftPreset`` of a tabular round against the reference.

    .. math::
        \mathrm{drift\_share} = \frac{1}{|C|}\sum_{c\in C} \mathbb{1}[\text{Evidently's test drifts on } c],

    read back from the report's ``Snapshot.dict()`` (``DriftedColumnsCount``);
    per-column tests are Evidently's defaults (see the module docstring). Range
    [0, 1]; lower is better; 0 for the reference against itself.

    Column types are never left to Evidently: ``numeric_columns`` and
    ``categorical_columns`` when given, otherwise numeric pandas dtypes (not
    bool) are numerical and every other column categorical.

    Args:
        reference_df: reference rows ``[N_ref, columns]``.
        round_df: the round's rows ``[N_round, columns]``, holding every report column.
        html_path: where to save the HTML report (parent folders are created); None: no file.
        columns: the columns to test (default: every column of ``reference_df``).
        numeric_columns: columns tested as numerical; need a numeric dtype in both frames.
        categorical_columns: columns tested as categorical.
        max_rows: when set, each frame longer than this is cut to a seeded random
            subsample of ``max_rows`` rows (Evidently runs in about 3 s at
            10,000 x 20 and 11 s at 50,000 x 20 on one core).
        seed: seed of that subsample.

    Example:
        >>> ref = pd.DataFrame({"x": [0.1, 0.5, 0.9, 1.3, 1.7, 2.1], "kind": list("abcabc")})
        >>> report = tabular_drift_report(ref, ref.copy())
        >>> report.drift_share, report.drifted_columns, report.n_columns
        (0.0, 0, 2)
        >>> report.per_column["kind"]["stat_test"]
        'chi-square p_value'
    """
    _check_frame(reference_df, "reference_df")
    _check_frame(round_df, "round_df")
    _check_max_rows(max_rows)
    numeric, categorical = _split_column_types(reference_df, round_df, columns, numeric_columns, categorical_columns)
    rng = np.random.default_rng(seed)
    selected = numeric + categorical
    reference = _subsample(reference_df[selected], max_rows, rng)
    current = _subsample(round_df[selected], max_rows, rng)
    return _run_drift_report(reference, current, numeric, categorical, html_path)


def text_descriptors(texts: Sequence[str]) -> pd.DataFrame:
    r"""Five per-text descriptors, computed here with no downloads (no NLTK data, no models).

    For a text :math:`t` with whitespace-separated tokens :math:`w_1..w_m`
    (punctuation stays in its token):

    * ``text_length_chars`` :math:`= |t|` (Unicode code points);
    * ``word_count`` :math:`= m`;
    * ``mean_word_length`` :math:`= \frac{1}{m}\sum_j |w_j|` (0 when :math:`m = 0`);
    * ``sentence_count``: non-blank pieces of :math:`t` split at whitespace
      that follows ``.``, ``!`` or ``?`` (0 for a blank text);
    * ``non_letter_share``: share of non-whitespace characters that are not
      letters (``str.isalpha``), in [0, 1] (0 when there are none).

    Evidently's own ``TextLength``, ``WordCount``, ``SentenceCount`` and
    ``NonLetterCharacterPercentage`` are offline too, but the last divides by
    zero on an empty text and ``WordCount`` drops non-ASCII letters.

    Args:
        texts: ``N`` strings.

    Returns:
        ``[N, 5]`` float DataFrame with the columns :data:`TEXT_DESCRIPTOR_COLUMNS`.

    Example:
        >>> text_descriptors(["Hi there. Bye!", ""]).round(4).values.tolist()
        [[14.0, 3.0, 4.0, 2.0, 0.1667], [0.0, 0.0, 0.0, 0.0, 0.0]]
    """
    values = _check_texts(texts, "texts")
    rows = []
    for t in values:
        words = t.split()
        non_space = sum(1 for ch in t if not ch.isspace())
        letters = sum(map(str.isalpha, t))
        rows.append(
            (
                len(t),
                len(words),
                sum(map(len, words)) / len(words) if words else 0.0,
                sum(1 for piece in _SENTENCE_BREAK.split(t) if piece.strip()),
                (non_space - letters) / non_space if non_space else 0.0,
            )
        )
    return pd.DataFrame(rows, columns=list(TEXT_DESCRIPTOR_COLUMNS), dtype=np.float64)


def pooled_components(reference: np.ndarray, current: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Both sets projected on the top principal axes of their union (centred at the union's mean).

    Axes fitted on the reference alone are its own highest-variance directions,
    so its projections are wider than any other sample's and even a round drawn
    from the reference distribution drifts (16 of 16 columns for isotropic
    384-d data at 10,000 rows). Fitted on the union, the axes are a symmetric
    function of all rows, so with no drift reference and round projections are
    exchangeable. Each axis's sign makes its largest-magnitude loading positive.
    """
    pooled = np.concatenate([reference, current])
    mean = pooled.mean(axis=0)
    centred = pooled - mean
    # D x D eigenproblem: cheaper than an SVD of the N x D matrix when N >> D.
    scatter = centred.T @ centred / max(len(pooled) - 1, 1)
    eigenvalues, eigenvectors = np.linalg.eigh(scatter)
    axes = eigenvectors[:, np.argsort(eigenvalues)[::-1][:n_components]]
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(axes.shape[1])])
    axes = axes * np.where(signs == 0, 1.0, signs)
    projected = centred @ axes
    return projected[: len(reference)], projected[len(reference):]


def _check_max_embedding_dims(max_embedding_dims) -> None:
    if max_embedding_dims is not None and (
        not isinstance(max_embedding_dims, (int, np.integer)) or max_embedding_dims < 1
    ):
        raise ValueError(f"max_embedding_dims: expected None or a positive integer, got {max_embedding_dims!r}")


def _embedding_frames(
    reference: np.ndarray, current: np.ndarray, max_dims: int | None, prefix: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    r"""Two embedding sets as numerical report columns, one frame each.

    Their projections on the first
    :math:`K = \min(\texttt{max\_dims}, D, N_\mathrm{ref}+N_\mathrm{round}-1)`
    pooled principal axes (:func:`pooled_components`; the centred union spans
    at most :math:`N_\mathrm{ref}+N_\mathrm{round}-1` directions), named
    ``{prefix}_pc_01..K``; with ``max_dims=None`` the raw dimensions
    ``{prefix}_dim_000..``.

    Example:
        >>> ref, cur = _embedding_frames(np.eye(3), np.eye(3)[::-1], 2, "image")
        >>> list(ref.columns), ref.shape, cur.shape
        (['image_pc_01', 'image_pc_02'], (3, 2), (3, 2))
    """
    if max_dims is None:
        names = [f"{prefix}_dim_{j:03d}" for j in range(reference.shape[1])]
    else:
        k = min(max_dims, reference.shape[1], len(reference) + len(current) - 1)
        reference, current = pooled_components(reference, current, k)
        names = [f"{prefix}_pc_{j + 1:02d}" for j in range(k)]
    return pd.DataFrame(reference, columns=names), pd.DataFrame(current, columns=names)


def _checked_embedding_pair(reference, current, reference_name: str, round_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64 ``[N, D]`` arrays with one ``D``, checked without torch."""
    ref = _check_embedding_array(reference, reference_name)
    cur = _check_embedding_array(current, round_name)
    _check_same_dim(ref, cur, reference_name, round_name)
    return ref.astype(np.float64), cur.astype(np.float64)


def _numeric_drift_report(reference: pd.DataFrame, current: pd.DataFrame, html_path, max_rows, seed) -> DriftReport:
    """:func:`tabular_drift_report` on frames built here, every column numerical."""
    columns = list(reference.columns)
    return tabular_drift_report(reference, current, html_path=html_path, numeric_columns=columns,
                                categorical_columns=[], max_rows=max_rows, seed=seed)


def embedding_drift_report(
    reference_embeddings,
    round_embeddings,
    *,
    html_path: str | Path | None = None,
    max_embedding_dims: int | None = DEFAULT_EMBEDDING_DIMS,
    max_rows: int | None = None,
    seed: int = 0,
) -> DriftReport:
    r"""Evidently ``DataDriftPreset`` of an embedding round on its pooled principal components.

    The columns are ``embedding_pc_01..embedding_pc_K``, the reference's and the
    round's embeddings projected on the first
    :math:`K = \min(\texttt{max\_embedding\_dims}, D, N_\mathrm{ref}+N_\mathrm{round}-1)`
    principal axes of both pooled, exactly the embedding part of
    :func:`text_drift_report` (``max_embedding_dims=None``: the raw dimensions
    ``embedding_dim_000..``). Each column's test is Evidently's default (module
    docstring). Range [0, 1]; lower is better; 0 for the reference against itself.

    A component tests one direction: a shift of the mean moves the projections
    on the axis along it (the first, once the shift dominates the spread) and
    no other, so it drifts about one column of :math:`K`; a change of spread
    (a round collapsing onto fewer, tighter modes) moves every component.

    Args:
        reference_embeddings: ``[N_ref, D]`` float reference embeddings.
        round_embeddings: ``[N_round, D]`` float embeddings of the round.
        html_path: where to save the HTML report (parent folders are created); None: no file.
        max_embedding_dims: number of pooled principal components kept (None: every raw dimension).
        max_rows: when set, each side longer than this is cut to a seeded random subsample.
        seed: seed of that subsample.

    Example:
        >>> emb = np.random.default_rng(0).normal(size=(40, 5))
        >>> report = embedding_drift_report(emb, emb.copy(), max_embedding_dims=3)
        >>> list(report.per_column), report.drift_share
        (['embedding_pc_01', 'embedding_pc_02', 'embedding_pc_03'], 0.0)
    """
    _check_max_rows(max_rows)
    _check_max_embedding_dims(max_embedding_dims)
    ref, cur = _checked_embedding_pair(reference_embeddings, round_embeddings, "reference_embeddings",
                                       "round_embeddings")
    reference, current = _embedding_frames(ref, cur, max_embedding_dims, "embedding")
    return _numeric_drift_report(reference, current, html_path, max_rows, seed)


def graph_descriptors(graphs) -> pd.DataFrame:
    r"""Six numerical descriptors per graph, on its undirected simple view.

    The view is the one :mod:`metrics_core.graphs.descriptors` computes its
    histograms on (directions dropped, self-loops removed), so the report and
    the descriptor MMDs read the same structure. For a graph of :math:`n`
    nodes and :math:`m` edges:

    * ``node_count`` :math:`= n`; ``edge_count`` :math:`= m`;
    * ``density`` :math:`= 2m / (n(n-1))`, 0 for a single node (:func:`networkx.density`);
    * ``mean_degree`` :math:`= 2m / n`;
    * ``mean_clustering``: the nodes' mean clustering coefficient, a node of
      degree below 2 counting 0 (:func:`networkx.average_clustering`);
    * ``connected_components``: the number of connected components (weakly
      connected ones for a directed graph).

    Args:
        graphs: ``N`` networkx ``Graph`` or ``DiGraph`` objects (no multigraph), each with a node.

    Returns:
        ``[N, 6]`` float DataFrame with the columns :data:`GRAPH_DESCRIPTOR_COLUMNS`.

    Example:
        >>> import networkx as nx
        >>> triangle, path = nx.cycle_graph(3), nx.path_graph(4)
        >>> graph_descriptors([triangle, path]).values.tolist()
        [[3.0, 3.0, 1.0, 2.0, 1.0, 1.0], [4.0, 3.0, 0.5, 1.5, 0.0, 1.0]]
    """
    import networkx as nx  # here, not at the top: only graph rounds need it
    from metrics_core._checks import _check_graphs
    from metrics_core.graphs.descriptors import _simple_undirected

    rows = []
    for g in _check_graphs(graphs):
        h = _simple_undirected(g)
        n, m = h.number_of_nodes(), h.number_of_edges()  # n >= 1: _check_graphs refuses empty graphs
        rows.append((n, m, nx.density(h), 2 * m / n, nx.average_clustering(h), nx.number_connected_components(h)))
    return pd.DataFrame(rows, columns=list(GRAPH_DESCRIPTOR_COLUMNS), dtype=np.float64)


def graph_drift_report(
    reference_graphs,
    round_graphs,
    *,
    html_path: str | Path | None = None,
    max_rows: int | None = None,
    seed: int = 0,
) -> DriftReport:
    r"""Evidently ``DataDriftPreset`` of a graph round on its per-graph descriptors.

    One row per graph, the numerical columns :data:`GRAPH_DESCRIPTOR_COLUMNS`
    (:func:`graph_descriptors`); each column's test is Evidently's default
    (module docstring: a column with at most 5 distinct values, such as the
    component count of small connected graphs, is tested as categorical).
    Range [0, 1]; lower is better; 0 for the reference against itself.

    Args:
        reference_graphs: ``N_ref`` reference networkx graphs.
        round_graphs: ``N_round`` graphs of the round.
        html_path: where to save the HTML report (parent folders are created); None: no file.
        max_rows: when set, each side longer than this is cut to a seeded random subsample.
        seed: seed of that subsample.

    Example:
        >>> import networkx as nx
        >>> graphs = [nx.path_graph(n) for n in range(2, 12)]
        >>> graph_drift_report(graphs, list(graphs)).drift_share
        0.0
    """
    from metrics_core._checks import _check_graphs

    _check_max_rows(max_rows)
    reference = graph_descriptors(_check_graphs(reference_graphs, "reference_graphs"))
    current = graph_descriptors(_check_graphs(round_graphs, "round_graphs"))
    return _numeric_drift_report(reference, current, html_path, max_rows, seed)


def image_text_drift_report(
    reference_image,
    round_image,
    reference_text,
    round_text,
    *,
    reference_captions: Sequence[str] | None = None,
    round_captions: Sequence[str] | None = None,
    html_path: str | Path | None = None,
    max_embedding_dims: int | None = DEFAULT_EMBEDDING_DIMS,
    max_rows: int | None = None,
    seed: int = 0,
) -> DriftReport:
    r"""Evidently ``DataDriftPreset`` of an image-text round on both sides' components and its captions.

    One row per pair, every column numerical: ``image_pc_01..K`` and
    ``text_pc_01..K``, each side's embeddings projected on the first
    :math:`K = \min(\texttt{max\_embedding\_dims}, D, N_\mathrm{ref}+N_\mathrm{round}-1)`
    principal axes of that side's reference and round pooled (as
    :func:`embedding_drift_report`; ``max_embedding_dims=None``: the raw
    dimensions ``image_dim_000..``, ``text_dim_000..``), then, when captions
    are given, ``caption_`` plus each of :data:`TEXT_DESCRIPTOR_COLUMNS`
    (:func:`text_descriptors`). One drift share over all of them. Range
    [0, 1]; lower is better; 0 for the reference against itself.

    Args:
        reference_image: ``[N_ref, D]`` float image embeddings of the reference pairs.
        round_image: ``[N_round, D]`` float image embeddings of the round's pairs.
        reference_text: ``[N_ref, D']`` float caption embeddings of the reference pairs.
        round_text: ``[N_round, D']`` float caption embeddings of the round's pairs.
        reference_captions: ``N_ref`` caption strings, or None.
        round_captions: ``N_round`` caption strings, or None (both or neither).
        html_path: where to save the HTML report (parent folders are created); None: no file.
        max_embedding_dims: number of pooled principal components kept per side (None: every raw dimension).
        max_rows: when set, each side longer than this is cut to a seeded random subsample of pairs.
        seed: seed of that subsample.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> image, text = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
        >>> report = image_text_drift_report(image, image.copy(), text, text.copy(), max_embedding_dims=2)
        >>> list(report.per_column), report.drift_share
        (['image_pc_01', 'image_pc_02', 'text_pc_01', 'text_pc_02'], 0.0)
    """
    _check_max_rows(max_rows)
    _check_max_embedding_dims(max_embedding_dims)
    if (reference_captions is None) != (round_captions is None):
        raise ValueError(
            "reference_captions, round_captions: expected both or neither, got "
            f"{'reference_captions' if reference_captions is not None else 'round_captions'} only"
        )
    ref_image, cur_image = _checked_embedding_pair(reference_image, round_image, "reference_image", "round_image")
    ref_text, cur_text = _checked_embedding_pair(reference_text, round_text, "reference_text", "round_text")
    for name, rows, image_name, n_pairs in (("reference_text", len(ref_text), "reference_image", len(ref_image)),
                                            ("round_text", len(cur_text), "round_image", len(cur_image))):
        if rows != n_pairs:
            raise ValueError(f"{name}: expected one row per pair ({n_pairs} rows, as {image_name}), got {rows}")
    reference_parts = []
    current_parts = []
    for prefix, ref, cur in (("image", ref_image, cur_image), ("text", ref_text, cur_text)):
        ref_frame, cur_frame = _embedding_frames(ref, cur, max_embedding_dims, prefix)
        reference_parts.append(ref_frame)
        current_parts.append(cur_frame)
    if reference_captions is not None:
        for name, captions, n_pairs, parts in (("reference_captions", reference_captions, len(ref_image),
                                                reference_parts),
                                               ("round_captions", round_captions, len(cur_image), current_parts)):
            texts = _check_texts(captions, name)
            if len(texts) != n_pairs:
                raise ValueError(f"{name}: expected one caption per pair ({n_pairs}), got {len(texts)}")
            parts.append(text_descriptors(texts).add_prefix("caption_"))
    reference = pd.concat(reference_parts, axis=1)
    current = pd.concat(current_parts, axis=1)
    return _numeric_drift_report(reference, current, html_path, max_rows, seed)


def text_drift_report(
    reference_texts: Sequence[str],
    round_texts: Sequence[str],
    *,
    reference_embeddings=None,
    round_embeddings=None,
    html_path: str | Path | None = None,
    max_embedding_dims: int | None = DEFAULT_EMBEDDING_DIMS,
    max_rows: int | None = None,
    seed: int = 0,
) -> DriftReport:
    r"""Evidently ``DataDriftPreset`` of a text round on its descriptors and embeddings.

    The report's numerical columns are :data:`TEXT_DESCRIPTOR_COLUMNS`
    (:func:`text_descriptors`) and, when embeddings are given, their projections
    ``embedding_pc_01..embedding_pc_K`` on the first
    :math:`K = \min(\texttt{max\_embedding\_dims}, D, N_\mathrm{ref}+N_\mathrm{round}-1)`
    principal axes of the reference and round embeddings pooled (not of the
    reference alone: that biases towards drift, see :func:`pooled_components`;
    ``max_embedding_dims=None``: the raw dimensions ``embedding_dim_000..``). Evidently's ``EmbeddingsDrift`` is not
    used (see the module docstring). The drift share is Evidently's share of
    drifted columns over all of them, descriptors and embedding columns alike.
    Range [0, 1]; lower is better; 0 for the reference against itself.

    Args:
        reference_texts: ``N_ref`` reference strings.
        round_texts: ``N_round`` strings of the round.
        reference_embeddings: ``[N_ref, D]`` float embeddings of the reference texts, or None.
        round_embeddings: ``[N_round, D]`` float embeddings of the round texts, or None (both or neither).
        html_path: where to save the HTML report (parent folders are created); None: no file.
        max_embedding_dims: number of pooled principal components kept (None: every raw dimension).
        max_rows: when set, each side longer than this is cut to a seeded random subsample.
        seed: seed of that subsample.

    Example:
        >>> texts = ["A cat sat.", "Dogs run fast!", "It rains. We stay in.", "Ok", "Numbers 1, 2 and 3."]
        >>> text_drift_report(texts, list(texts)).drift_share
        0.0
    """
    ref_texts = _check_texts(reference_texts, "reference_texts")
    cur_texts = _check_texts(round_texts, "round_texts")
    _check_max_rows(max_rows)
    _check_max_embedding_dims(max_embedding_dims)
    if (reference_embeddings is None) != (round_embeddings is None):
        raise ValueError(
            "reference_embeddings, round_embeddings: expected both or neither, got "
            f"{'reference_embeddings' if reference_embeddings is not None else 'round_embeddings'} only"
        )
    reference = text_descriptors(ref_texts)
    current = text_descriptors(cur_texts)
    if reference_embeddings is not None:
        ref_emb, cur_emb = _checked_embedding_pair(reference_embeddings, round_embeddings, "reference_embeddings",
                                                   "round_embeddings")
        sides = (("reference_embeddings", ref_emb, ref_texts), ("round_embeddings", cur_emb, cur_texts))
        for name, emb, texts in sides:
            if len(emb) != len(texts):
                raise ValueError(f"{name}: expected one row per text ({len(texts)} rows), got {len(emb)}")
        ref_frame, cur_frame = _embedding_frames(ref_emb, cur_emb, max_embedding_dims, "embedding")
        reference = pd.concat([reference, ref_frame], axis=1)
        current = pd.concat([current, cur_frame], axis=1)
    rng = np.random.default_rng(seed)
    reference = _subsample(reference, max_rows, rng)
    current = _subsample(current, max_rows, rng)
    return _run_drift_report(reference, current, list(reference.columns), [], html_path)

