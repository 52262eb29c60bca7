"""The semi-structured modalities (survey §5.2-5.3): JSON records, graphs and log lines.

Each is one :class:`~monitor.modalities.Modality`: its loader (:mod:`monitor.inputs`), its own metrics
(:mod:`metrics_core.json_records`, :mod:`metrics_core.graphs`, :mod:`metrics_core.logs`) and a view the
embedding suite runs on: a record's or a log line's text (the loop's text featurizer), a graph's descriptor
histograms.
"""

from __future__ import annotations

import logging

from monitor.errors import CollapseMonitorError, InputError
from monitor.modalities import LoadedInput, Modality, _TextViewModality


MISSING = "<missing>"  # a categorical field a record lacks: a category of its own in the flattened table


def _with_missing_category(table, schema):
    """The flattened table with each categorical field's absent values as :data:`MISSING` (a generator that
    stops writing an optional field shows as that category taking over, never as an all-null column)."""
    table = table.copy()
    for column in schema.categorical:
        values = table[column].astype(object)
        table[column] = values.where(values.notna(), MISSING)
    return table


def _own(name: str, out: dict) -> dict:
    from metrics_core.registry import metric_names

    return {metric: out[metric] for metric in metric_names(name) if metric in out}


class JsonModality(_TextViewModality):
    """JSON records: one generator output per ``.jsonl`` line, meant to be a JSON object
    (:func:`monitor.inputs.load_json_records`; a round keeps the lines that do not parse, which
    ``valid_json_rate`` counts). ``--schema`` names a JSON Schema file (``schema_correctness_rate``),
    ``--match-key`` the key aligning round records with the reference's (``mean_match_percentage``). The
    tabular suite runs on the flattened fields of the parsed records (dotted paths, array lengths; a field a
    round record lacks is missing, a value of the wrong type too), and the embedding suite and Evidently's text
    report on the raw lines."""

    name = "json"
    has_own_metrics = True

    def load(self, path, role, round_number, options, reference=None, *, max_samples=True):
        from monitor import inputs

        loaded = inputs.load_json_records(path, role, round_number, max_samples=self._cap(options, max_samples),
                                          seed=options.seed)
        return LoadedInput(loaded.path, loaded, loaded.fingerprint, loaded)

    def check_option_files(self, constraints_path, schema_path):
        from monitor import inputs

        if constraints_path is not None:
            raise InputError(f"{constraints_path}: --constraints is for tabular and graph rounds; a JSON round's "
                             "rules are its --schema")
        if schema_path is not None:
            inputs.load_json_schema(schema_path)

    def prepare(self, pipe, *, constraints_path, schema_path):
        from metrics_core.tabular import fit_tabular_reference, infer_schema

        from monitor import inputs

        reference = pipe.reference
        pipe.json_schema = None if schema_path is None else inputs.load_json_schema(schema_path)
        pipe.json_reference = [r for r in reference.records if r is not None]
        table = reference.table()
        pipe.json_table = None
        if len(table) >= 2 and len(table.columns):
            try:
                schema = infer_schema(table, None)
                table = _with_missing_category(table, schema)
                pipe.json_table = (schema, fit_tabular_reference(table, schema, seed=pipe.seed), list(table.columns))
            except ValueError as exc:
                pipe.notes.append(f"{pipe.reference_where}: no tabular suite on the flattened fields: {exc}")
        pipe._reference_embeddings = None  # embedded on first use: the featurizer is fitted or loaded then

    def _round_table(self, pipe, round_data):
        import pandas as pd

        schema, _, columns = pipe.json_table
        table = round_data.table().reindex(columns=columns)
        for column in schema.numeric:  # a value of another type is missing, as an absent field is
            table[column] = pd.to_numeric(table[column], errors="coerce").astype("float64")
        return _with_missing_category(table, schema)

    def round_details(self, pipe, round_data):
        if pipe.json_schema is None:
            return {}
        return {"schema_violations.jsonl": schema_violations_jsonl(round_data, pipe.json_schema)}

    def own_metrics(self, pipe, round_data, *, n_boot, round_where):
        from metrics_core.json_records import json_suite

        key = pipe.match_key
        try:
            out = json_suite(list(round_data.records), pipe.json_reference, schema=pipe.json_schema,
                             truth_records=pipe.json_reference if key else None, key=key, n_boot=n_boot,
                             seed=pipe.seed)
        except ValueError as exc:
            raise InputError(f"{round_where}: {exc}") from exc
        metrics = _own(self.name, out)
        if pipe.json_table is not None and sum(r is not None for r in round_data.records) >= 2:
            from metrics_core.tabular import tabular_suite

            table = self._round_table(pipe, round_data)
            empty = [c for c in pipe.json_table[0].numeric if table[c].isna().all()]
            if empty:  # no value of a numeric field left to compare: this round has no tabular suite
                logging.getLogger("collapse_monitor.json").warning(
                    "%s: flattened fields: numeric field %r has no number in this round; the tabular suite is "
                    "left out", round_where, empty[0])
                return metrics
            try:
                result = tabular_suite(pipe.json_table[1], table, seed=pipe.seed, n_boot=n_boot)
            except ValueError as exc:
                raise InputError(f"{round_where}: flattened fields: {exc}") from exc
            metrics.update(result.metrics)
        return metrics


def schema_violations_jsonl(round_data, schema) -> bytes:
    """The first schema violation of each failing record of a JSON round, one JSON object per line: the record's
    line number in the round file (blank lines not counted: its position among the records, 1-based) and the
    violation (its JSON path and message, or why it is no record).

    >>> from monitor.inputs.json_records import json_records_from_strings
    >>> rnd = json_records_from_strings(['{"id": 1}', '{"id": "x"}', "oops"], "r")
    >>> print(schema_violations_jsonl(rnd, {"properties": {"id": {"type": "integer"}}}).decode(), end="")
    {"record": 2, "violation": "$.id: 'x' is not of type 'integer'"}
    {"record": 3, "violation": "$: not valid JSON (the line did not parse)"}
    """
    import json

    from metrics_core.json_records import schema_violations

    lines = []
    for number, (record, violation) in enumerate(zip(round_data.records,
                                                     schema_violations(list(round_data.records), schema)), 1):
        if violation is not None:
            lines.append(json.dumps({"record": number, "violation": violation}, ensure_ascii=False))
    return "".join(line + "\n" for line in lines).encode("utf-8")


class GraphModality(Modality):
    """Graphs: one edge list or node-link object per ``.jsonl`` line (:func:`monitor.inputs.load_graphs`).
    ``--constraints`` names a TOML file of ``[graph]`` rules (``valid_rule_rate``). The descriptor kernels
    (bins and bandwidths) are fitted on the reference once; the embedding suite runs on each graph's
    concatenated degree, clustering and spectral histograms, and Evidently's report on each graph's size, density,
    degree, clustering and component count (:func:`monitor.publishing.evidently_report.graph_descriptors`)."""

    name = "graph"
    has_own_metrics = reports_drift = True
    drift_view = "graph"

    def load(self, path, role, round_number, options, reference=None, *, max_samples=True):
        from monitor import inputs

        loaded = inputs.load_graphs(path, role, round_number, max_samples=self._cap(options, max_samples),
                                    seed=options.seed)
        return LoadedInput(loaded.path, loaded, loaded.fingerprint, loaded)

    def check_option_files(self, constraints_path, schema_path):
        from monitor import inputs

        if schema_path is not None:
            raise InputError(f"{schema_path}: --schema is for tabular and JSON rounds; a graph round's rules are its "
                             "--constraints")
        if constraints_path is not None:
            inputs.load_graph_constraints(constraints_path)

    def prepare(self, pipe, *, constraints_path, schema_path):
        import numpy as np
        from metrics_core.graphs import fit_descriptor_kernels, graph_features

        from monitor import inputs

        pipe.graph_constraints = None if constraints_path is None else inputs.load_graph_constraints(constraints_path)
        try:
            pipe.graph_kernels = fit_descriptor_kernels(list(pipe.reference.graphs))
        except ValueError as exc:
            raise InputError(f"{pipe.reference_where}: {exc}") from exc
        pipe._reference_embeddings = np.asarray(graph_features(list(pipe.reference.graphs), pipe.graph_kernels),
                                                dtype=np.float64)

    def embed(self, pipe, round_data):
        import numpy as np
        from metrics_core.graphs import graph_features

        return np.asarray(graph_features(list(round_data.graphs), pipe.graph_kernels), dtype=np.float64)

    def own_metrics(self, pipe, round_data, *, n_boot, round_where):
        from metrics_core.graphs import graph_suite

        try:
            out = graph_suite(list(round_data.graphs), list(pipe.reference.graphs), constraints=pipe.graph_constraints,
                              kernels=pipe.graph_kernels, n_boot=n_boot, seed=pipe.seed)
        except ValueError as exc:
            raise InputError(f"{round_where}: {exc}") from exc
        return _own(self.name, out)

    def drift_report(self, reference_data, round_data, *, reference_embeddings, round_embeddings, columns,
                     html_path, seed):
        from monitor.publishing import evidently_report

        # The loaded graphs, not the embedded histograms: a descriptor per column reads in the report.
        return evidently_report.graph_drift_report(list(reference_data.graphs), list(round_data.graphs),
                                                   html_path=html_path, seed=seed)


class LogModality(_TextViewModality):
    """Log lines (``.log``, :func:`monitor.inputs.load_log_lines`): templates are mined with Drain3 on the
    reference once; ``--log-pattern`` (named groups ``severity``, ``component``) adds their distributions. The
    embedding suite and Evidently's text report run on the lines."""

    name = "log"
    has_own_metrics = True

    def load(self, path, role, round_number, options, reference=None, *, max_samples=True):
        from monitor import inputs

        loaded = inputs.load_log_lines(path, role, round_number, pattern=options.log_pattern,
                                       max_samples=self._cap(options, max_samples), seed=options.seed)
        return LoadedInput(loaded.path, loaded, loaded.fingerprint, loaded)

    def prepare(self, pipe, *, constraints_path, schema_path):
        from metrics_core.logs import fit_log_templates

        try:
            pipe.log_templates = fit_log_templates(list(pipe.reference.lines))
        except ImportError as exc:
            raise CollapseMonitorError(str(exc)) from None
        except ValueError as exc:
            raise InputError(f"{pipe.reference_where}: {exc}") from exc
        pipe._reference_embeddings = None  # embedded on first use: the featurizer is fitted or loaded then

    def own_metrics(self, pipe, round_data, *, n_boot, round_where):
        from metrics_core.logs import log_suite

        reference = pipe.reference
        try:
            out = log_suite(list(round_data.lines), pipe.log_templates, round_severity=round_data.severity,
                            reference_severity=reference.severity, round_component=round_data.component,
                            reference_component=reference.component, n_boot=n_boot, seed=pipe.seed)
        except ValueError as exc:
            raise InputError(f"{round_where}: {exc}") from exc
        return _own(self.name, out)
