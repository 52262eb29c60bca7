r"""Evidently's drift share, fast: Evidently's own per-column tests without rendering a report.

Part of the meta-evaluation runner (:mod:`monitor.meta_evaluation.runner`, whose docstring defines the
terms).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from monitor.meta_evaluation.settings import EVIDENTLY_EMBEDDING_DIMS


def evidently_columns(modality: str, reference, current, reference_embeddings: np.ndarray,
                      current_embeddings: np.ndarray, tabular_columns: dict | None = None
                      ) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    r"""The reference and current frames Evidently tests, with their numerical and categorical columns.

    As :mod:`monitor.publishing.evidently_report` builds them: text, the five
    :func:`~monitor.publishing.evidently_report.text_descriptors` plus
    ``embedding_pc_01..K`` (the embeddings on the top :math:`K=\min(16, D, N+M-1)`
    principal axes of reference and round pooled); tabular, the typed columns
    of the tables; a modality whose rounds the daemon reports on their text view
    (``Modality.drift_view == "text"``, ``.texts``: agent episodes' action sequences, JSON records' raw lines, log
    lines, reasoning records' rationales), the text columns of those texts and their embeddings; any other
    modality (the daemon's own reports on them use other columns: pooled components per side, per-graph
    descriptors), the ``K`` pooled principal components of the benchmark's own embeddings of it alone, kept
    as they were before those reports existed so the published baselines stay comparable: embedding rounds as
    they are, graphs' descriptor histograms (degree, clustering, spectrum; a graph's text view, its edge
    list, says nothing a text descriptor could use), image-text pairs' joint embeddings (the two unit
    halves side by side: the alignment a caption shift breaks; their captions are one template of one
    word, so text descriptors would only count that word's letters).

    Args:
        modality: a round modality (:data:`monitor.modalities.MODALITY`).
        reference: the reference (texts, DataFrame, the embeddings again, or the modality's loaded
            input, e.g. :class:`monitor.inputs.LoadedEpisodes`).
        current: the round, same modality.
        reference_embeddings: ``[N, D]`` embeddings of the reference.
        current_embeddings: ``[M, D]`` embeddings of the round.
        tabular_columns: tabular only, ``{"numeric": [...], "categorical": [...]}``.

    >>> ref, cur = np.eye(3), np.eye(3)[::-1]
    >>> r, c, num, cat = evidently_columns("embedding", ref, cur, ref, cur)
    >>> num, cat, r.shape
    (['embedding_pc_01', 'embedding_pc_02', 'embedding_pc_03'], [], (3, 3))
    """
    from monitor.publishing import evidently_report

    if modality == "tabular":
        if tabular_columns is None:
            raise ValueError("tabular_columns: expected the {'numeric', 'categorical'} columns of a tabular round")
        numeric, categorical = list(tabular_columns["numeric"]), list(tabular_columns["categorical"])
        cols = numeric + categorical
        return reference[cols].reset_index(drop=True), current[cols].reset_index(drop=True), numeric, categorical
    from monitor.modalities import MODALITY

    if modality not in MODALITY:
        raise ValueError(f"modality: expected one of {', '.join(MODALITY)}, got {modality!r}")

    texts = MODALITY[modality].drift_view == "text"  # the daemon's text report on the texts or their text view
    if texts and modality != "text":
        reference, current = list(reference.texts), list(current.texts)
    ref_emb = np.asarray(reference_embeddings, dtype=np.float64)
    cur_emb = np.asarray(current_embeddings, dtype=np.float64)
    k = min(EVIDENTLY_EMBEDDING_DIMS, ref_emb.shape[1], len(ref_emb) + len(cur_emb) - 1)
    ref_pc, cur_pc = evidently_report.pooled_components(ref_emb, cur_emb, k)
    names = [f"embedding_pc_{j + 1:02d}" for j in range(k)]
    ref_frame, cur_frame = pd.DataFrame(ref_pc, columns=names), pd.DataFrame(cur_pc, columns=names)
    if texts:
        ref_frame = pd.concat([evidently_report.text_descriptors(reference), ref_frame], axis=1)
        cur_frame = pd.concat([evidently_report.text_descriptors(current), cur_frame], axis=1)
    return ref_frame, cur_frame, list(ref_frame.columns), []


def evidently_drift_share(reference: pd.DataFrame, current: pd.DataFrame, numeric: Sequence[str],
                          categorical: Sequence[str] = ()) -> float:
    r"""Evidently's drift share by its own per-column tests, without building a report.

    .. math:: \mathrm{share} = \frac{1}{|C|}\sum_{c\in C}\mathbb 1[\text{Evidently's default test drifts on } c]

    Per column, what ``evidently.legacy.calculations.data_drift.get_one_column_drift``
    does inside every ``ValueDrift`` of a ``DataDriftPreset``: infinite values
    become NaN and are dropped, the test is
    ``get_stattest(reference, current, column_type, None)`` (Evidently's default
    for the type, reference size and number of distinct values) at its default
    threshold. Categorical columns go through the full report
    (:func:`monitor.publishing.evidently_report.tabular_drift_report`), whose dataset
    conversion this does not reproduce; none of the benchmark's loops has one.

    Args:
        reference: the reference frame.
        current: the round's frame, same columns.
        numeric: numerical column names.
        categorical: categorical column names.

    >>> ref = pd.DataFrame({"x": np.linspace(0, 1, 50)})
    >>> evidently_drift_share(ref, ref + 0.0, ["x"]), evidently_drift_share(ref, ref + 5.0, ["x"])
    (0.0, 1.0)
    """
    numeric, categorical = list(numeric), list(categorical)
    if not numeric and not categorical:
        raise ValueError("numeric, categorical: expected at least one column, got none")
    if categorical:
        from monitor.publishing import evidently_report

        return evidently_report.tabular_drift_report(
            reference, current, numeric_columns=numeric, categorical_columns=categorical).drift_share
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.core import ColumnType

    drifted = 0
    for column in numeric:
        # replace([-inf, inf], nan).dropna(), as Evidently does, with one mask
        ref, cur = reference[column], current[column]
        ref, cur = ref[np.isfinite(ref.to_numpy(dtype=np.float64))], cur[np.isfinite(cur.to_numpy(dtype=np.float64))]
        if ref.empty or cur.empty:
            raise ValueError(f"column {column!r}: no finite value in the {'reference' if ref.empty else 'round'}")
        test = get_stattest(ref, cur, ColumnType.Numerical, None)
        drifted += bool(test(ref, cur, ColumnType.Numerical, None).drifted)
    return drifted / len(numeric)


def evidently_full_report_share(reference: pd.DataFrame, current: pd.DataFrame, numeric: Sequence[str],
                                categorical: Sequence[str] = ()) -> float:
    """The same drift share from a full Evidently report (:mod:`monitor.publishing.evidently_report`), for the check."""
    from monitor.publishing import evidently_report

    return evidently_report.tabular_drift_report(
        reference, current, numeric_columns=list(numeric), categorical_columns=list(categorical)).drift_share
