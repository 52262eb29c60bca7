"""The round modalities (embedding, text, tabular, reasoning): one object each that loads and checks its inputs; plus
the text featurizers, the fitted-featurizer cache, and the tabular option files.

:data:`MODALITY` maps a modality's name to its :class:`Modality`. The CLI, the
flow and the null's pool load through it, so "how is a text round read and
checked" is written once, not once per caller.

:class:`monitor.modalities.pipeline.AuditPipeline` composes these with ``metrics_core``:

* text: :func:`metrics_core.text.text_suite`, then embeddings from a
  featurizer (``hashing``, fitted on the reference, or ``sentence-transformers``
  from a local model) through the content-hash embedding cache, so each unique
  text is embedded once across all rounds and the reference once per
  featurizer;
* tabular: :func:`metrics_core.tabular.tabular_suite`, and rows encoded as
  standardised numeric plus one-hot categorical columns fitted on the
  reference (:func:`metrics_core.tabular.encode_rows`).

* reasoning: the answer metrics of :mod:`metrics_core.reasoning` against the
  reference's gold answers (verified accuracy, pass@k, self-consistency,
  agreement, distinct answers, template collapse, syntax validity), then each
  record's rationale (its answer when it has none) through the text featurizer.

All then run the embedding-space suite on those rows.
"""

from __future__ import annotations

import json
import logging
import tomllib
from dataclasses import dataclass
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


# --------------------------------------------------------------------------------------------------------------
# The modalities
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedInput:
    """One input file of a modality, loaded and checked.

    Attributes:
        path: the file.
        data: what the audit uses, subsampled to ``max_samples``: ``[N, D]`` float array, list of str or
            DataFrame.
        fingerprint: content fingerprint of the whole file.
        loaded: the loader's own result (``monitor.inputs.LoadedArray``, ``LoadedTexts`` or ``LoadedTable``).
    """

    path: Path
    data: object
    fingerprint: str
    loaded: object

    @property
    def n_used(self) -> int:
        return len(self.data)


def _where(loaded: LoadedInput, role: str, round_number: int | None) -> str:
    return f"{loaded.path} ({role})" if round_number is None else f"{loaded.path} ({role}, round {round_number})"


class Modality:
    """How rounds of one modality are read and checked (the metrics are :class:`monitor.modalities.pipeline.AuditPipeline`'s)."""

    name: str = ""
    has_own_metrics = False  # metrics of its own before the embedding suite (:meth:`own_metrics`)
    reports_drift = False  # an Evidently drift report per round (:meth:`drift_report`)
    #: What that report's columns describe: ``"text"`` (descriptors and embedding components of the round's texts
    #: or text view), ``"table"`` (the table's columns), ``"embedding"`` (pooled principal components),
    #: ``"graph"`` (per-graph descriptors), ``"image_text"`` (both sides' components, the captions' descriptors);
    #: None without a report. The benchmark's Evidently baseline (:mod:`monitor.meta_evaluation`) reads it.
    drift_view: str | None = None

    def load(self, path, role: str, round_number: int | None, options, reference: LoadedInput | None = None,
             *, max_samples: int | None | bool = True) -> LoadedInput:
        """Load ``path`` as a ``role`` (``"reference"``, ``"round"`` or ``"pool"``) of this modality.

        Args:
            options: the loop's :class:`~monitor.options.AuditOptions`.
            reference: the loaded reference, which a round is read against (tables: its column kinds).
            max_samples: ``True``: the options' ``max_samples``; else that cap (None: every row).
        """
        raise NotImplementedError

    def load_pool(self, path, options, reference=None) -> LoadedInput:
        """A loop's pool for its null: every row, read like a reference (tables: against the reference's column
        kinds, ``reference`` being its rows)."""
        return self.load(path, "pool", None, options, max_samples=None)

    def check_pool(self, path) -> None:
        """Refuse, in one line, a pool for this modality's null before anything runs (by default any is fine)."""

    def check_pool_rows(self, pool, round_data, pool_path) -> None:
        """Refuse, in one line, a loaded pool whose pseudo-rounds could not stand for this round (by default any
        is fine)."""

    def check_option_files(self, constraints_path: str | None, schema_path: str | None) -> None:
        """Refuse, in one line, a ``--constraints`` or ``--schema`` file this modality cannot read (by default
        the tabular ones: a ``[[constraints]]`` TOML and a ``[columns]`` TOML)."""
        load_constraints_file(constraints_path)
        load_schema_file(schema_path)

    #: Without a pool, ``calibrate`` may split the reference into a reference part and a pool.
    splits_reference = True

    def check_pair(self, reference: LoadedInput, round_: LoadedInput, options, round_number: int) -> None:
        """Refuse, in one line, a round that cannot be audited against this reference."""
        self._check_specific(reference, round_, options, round_number)
        for loaded, role, rnd in ((reference, "reference", None), (round_, "round", round_number)):
            if loaded.n_used < options.k + 1:  # k-NN radii need k other points in each set
                raise InputError(f"{_where(loaded, role, rnd)}: {loaded.n_used} rows, but k={options.k} needs at "
                                 f"least {options.k + 1}")

    def _check_specific(self, reference: LoadedInput, round_: LoadedInput, options, round_number: int) -> None:
        """The modality's own checks, before the sizes."""

    # -- the audit's steps, on a monitor.modalities.pipeline.AuditPipeline (which holds the prepared reference) --------

    def prepare(self, pipe, *, constraints_path: str | None, schema_path: str | None) -> None:
        """Fit what rounds are compared with on ``pipe.reference`` (sets ``pipe``'s reference state)."""
        raise NotImplementedError

    def embed(self, pipe, round_data) -> np.ndarray:
        """The round's rows in the reference's embedding space."""
        raise NotImplementedError

    def reference_texts(self, pipe) -> list[str]:
        """The texts a text featurizer is fitted on and the reference is embedded as (text: the reference)."""
        return list(pipe.reference)

    def own_metrics(self, pipe, round_data, *, n_boot: int, round_where: str) -> dict:
        """The modality's own metrics of one round (before the embedding suite), in registry order."""
        return {}

    def drift_report(self, reference_data, round_data, *, reference_embeddings, round_embeddings, columns,
                     html_path, seed: int):
        """Evidently's drift report of the round against the reference, its HTML written to ``html_path``."""
        raise NotImplementedError(f"{self.name} rounds have no drift report")

    def round_details(self, pipe, round_data) -> dict[str, bytes]:
        """Per-record findings of one round, as files (name -> content) the audit keeps beside the round's
        plots and logs to its MLflow run (by default none)."""
        return {}

    def _cap(self, options, max_samples):
        return options.max_samples if max_samples is True else max_samples


class EmbeddingModality(Modality):
    name = "embedding"
    reports_drift = True
    drift_view = "embedding"

    def prepare(self, pipe, *, constraints_path, schema_path):
        pipe._reference_embeddings = np.asarray(pipe.reference, dtype=np.float64)

    def embed(self, pipe, round_data):
        return np.asarray(round_data, dtype=np.float64)

    def load(self, path, role, round_number, options, reference=None, *, max_samples=True):
        from metrics_core import subsample
        from monitor import inputs

        loaded = inputs.load_embeddings(path, role, round_number)
        data = subsample(loaded.data, self._cap(options, max_samples), options.seed)
        return LoadedInput(loaded.path, data, loaded.fingerprint, loaded)

    def _check_specific(self, reference, round_, options, round_number):
        from monitor import inputs

        inputs.check_same_dim(reference.loaded, round_.loaded, round_number)

    def drift_report(self, reference_data, round_data, *, reference_embeddings, round_embeddings, columns,
                     html_path, seed):
        from monitor.publishing import evidently_report

        return evidently_report.embedding_drift_report(reference_data, round_data, html_path=html_path, seed=seed)


class TextModality(Modality):
    name = "text"
    has_own_metrics = reports_drift = True
    drift_view = "text"

    def prepare(self, pipe, *, constraints_path, schema_path):
        from metrics_core.text import fit_text_reference
        from monitor.modalities.pipeline import _validity_notes

        pipe.text_reference = fit_text_reference(list(pipe.reference))
        pipe.notes.extend(_validity_notes(pipe.text_reference, pipe.reference_where))
        pipe._reference_embeddings = None  # embedded on first use: the featurizer is fitted or loaded then

    def embed(self, pipe, round_data):
        pipe.reference_embeddings  # noqa: B018 - fits the featurizer (and its key) first
        return pipe._embed_texts(list(round_data))

    def own_metrics(self, pipe, round_data, *, n_boot, round_where):
        from metrics_core.text import text_suite

        return text_suite(pipe.text_reference, list(round_data), n_boot=n_boot, seed=pipe.seed)

    def drift_report(self, reference_data, round_data, *, reference_embeddings, round_embeddings, columns,
                     html_path, seed):
        from monitor.publishing import evidently_report

        return evidently_report.text_drift_report(
            reference_data, round_data, reference_embeddings=reference_embeddings,
            round_embeddings=round_embeddings, html_path=html_path, seed=seed)

    def load(self, path, role, round_number, options, reference=None, *, max_samples=True):
        from monitor import inputs

        loaded = inputs.load_texts(path, role, round_number, field=options.text_field,
                                    max_samples=self._cap(options, max_samples), seed=options.seed)
        return LoadedInput(loaded.path, loaded.texts, loaded.fingerprint, loaded)


class TabularModality(Modality):
    name = "tabular"
    has_own_metrics = reports_drift = True
    drift_view = "table"

    def prepare(self, pipe, *, constraints_path, schema_path):
        from metrics_core.tabular import encode_rows, fit_tabular_reference, infer_schema
        from monitor.modalities.pipeline import _constraint_notes

        reference = pipe.reference
        pipe.constraints = load_constraints_file(constraints_path)
        pipe._reference_frame = reference
        pipe._violation_baselines = {}
        try:
            pipe.schema = infer_schema(reference, load_schema_file(schema_path))
        except ValueError as exc:  # an override naming an unknown column, or numeric on text
            raise InputError(f"{pipe.reference_where}: schema: {exc}") from exc
        pipe.tabular_fit = fit_tabular_reference(reference, pipe.schema, seed=pipe.seed)
        if pipe.constraints:
            pipe.notes.extend(_constraint_notes(pipe._violation_baseline(len(reference)), pipe.reference_where))
        pipe._reference_embeddings = encode_rows(reference, pipe.schema, pipe.tabular_fit)
        pipe.tabular_columns = {"numeric": list(pipe.schema.numeric), "categorical": list(pipe.schema.categorical)}

    def embed(self, pipe, round_data):
        from metrics_core.tabular import encode_rows

        return encode_rows(round_data, pipe.schema, pipe.tabular_fit)

    def own_metrics(self, pipe, round_data, *, n_boot, round_where):
        from metrics_core.tabular import tabular_suite

        try:
            result = tabular_suite(pipe.tabular_fit, round_data, protected_attribute=pipe.protected_attribute,
                                   constraints=pipe.constraints, seed=pipe.seed, n_boot=n_boot,
                                   violation_reference=pipe._violation_baseline(len(round_data)))
        except ValueError as exc:  # e.g. a protected attribute or constrained column the table lacks
            raise InputError(f"{round_where}: {exc}") from exc
        return dict(result.metrics)

    def drift_report(self, reference_data, round_data, *, reference_embeddings, round_embeddings, columns,
                     html_path, seed):
        from monitor.publishing import evidently_report

        return evidently_report.tabular_drift_report(
            reference_data, round_data, html_path=html_path, numeric_columns=columns["numeric"],
            categorical_columns=columns["categorical"], seed=seed)

    def load(self, path, role, round_number, options, reference=None, *, max_samples=True):
        from monitor import inputs

        kinds = None if reference is None else reference.loaded.column_kinds
        loaded = inputs.load_table(path, role, round_number, reference_columns=kinds,
                                    max_samples=self._cap(options, max_samples), seed=options.seed)
        return LoadedInput(loaded.path, loaded.frame, loaded.fingerprint, loaded)

    def load_pool(self, path, options, reference=None):
        from monitor import inputs

        kinds = None if reference is None else inputs.infer_column_kinds(reference)
        loaded = inputs.load_table(path, "pool", None, reference_columns=kinds, max_samples=None,
                                    seed=options.seed)
        return LoadedInput(loaded.path, loaded.frame, loaded.fingerprint, loaded)

    def _check_specific(self, reference, round_, options, round_number):
        column = options.protected_attribute
        if column and column not in reference.loaded.column_kinds:
            raise InputError(f"{_where(reference, 'reference', None)}: protected attribute column {column!r} is missing")


class _TextViewModality(Modality):
    """A modality whose inputs carry a text view (``.texts``: reasoning rationales, agent action sequences): the
    featurizer is fitted on the reference's, the embedding suite runs on it, and Evidently's text report too."""

    reports_drift = True
    drift_view = "text"

    def reference_texts(self, pipe):
        return pipe.reference.texts

    def embed(self, pipe, round_data):
        pipe.reference_embeddings  # noqa: B018 - fits the featurizer (and its key) first
        return pipe._embed_texts(round_data.texts)

    def drift_report(self, reference_data, round_data, *, reference_embeddings, round_embeddings, columns,
                     html_path, seed):
        from monitor.publishing import evidently_report

        return evidently_report.text_drift_report(
            reference_data.texts, round_data.texts, reference_embeddings=reference_embeddings,
            round_embeddings=round_embeddings, html_path=html_path, seed=seed)


class ReasoningModality(_TextViewModality):
    """Reasoning and code rounds: JSONL records of a question id, a final answer, a rationale and, optionally,
    the user's own test verdict (:func:`monitor.inputs.load_records`). The reference's answers are the gold
    answers; its rationales (answers where it has none) are what the text featurizer is fitted on. Generated code
    is never run by the monitor itself: ``syntax_valid_rate`` parses it; pass rates come from gold answers, the
    ``passed`` field, or the user's own verifier (:mod:`monitor.modalities.verifier`, in a contained subprocess)."""

    name = "reasoning"
    has_own_metrics = True

    def load(self, path, role, round_number, options, reference=None, *, max_samples=True):
        from monitor import inputs

        is_reference = role == "reference"
        loaded = inputs.load_records(
            path, role, round_number, question_field=options.question_field, answer_field=options.answer_field,
            rationale_field=options.rationale_field, passed_field=None if is_reference else options.passed_field,
            gold=is_reference, max_samples=self._cap(options, max_samples), seed=options.seed)
        return LoadedInput(loaded.path, loaded, loaded.fingerprint, loaded)

    # The reference holds gold answers, one per question, not generated samples: it cannot stand for a round.
    splits_reference = False

    def load_pool(self, path, options, reference=None):
        """Generation-0 samples, read like rounds: a pseudo-round draws whole questions
        (:meth:`monitor.inputs.LoadedRecords.take_units`), and every question needs a gold answer in
        ``reference``."""
        from monitor import inputs

        loaded = inputs.load_records(
            path, "pool", None, question_field=options.question_field, answer_field=options.answer_field,
            rationale_field=options.rationale_field, passed_field=options.passed_field, gold=reference is None,
            max_samples=None, seed=options.seed)
        gold = getattr(reference, "gold", None)
        if gold is not None:
            missing = [q for q in loaded.samples_per_question() if q not in gold]
            if missing:
                raise InputError(f"{loaded.path} (pool): {len(missing)} of {loaded.n_units} questions have no gold "
                                 f"answer in {reference.path} (reference) (first: question {missing[0]!r})")
        return LoadedInput(loaded.path, loaded, loaded.fingerprint, loaded)

    def check_pool_rows(self, pool, round_data, pool_path):
        pool_sizes = pool.samples_per_question().values()
        round_sizes = round_data.samples_per_question().values()
        if (min(pool_sizes), max(pool_sizes)) != (min(round_sizes), max(round_sizes)):
            def shown(sizes):
                return str(min(sizes)) if min(sizes) == max(sizes) else f"{min(sizes)} to {max(sizes)}"
            raise InputError(f"{pool_path} (pool): {shown(pool_sizes)} samples per question, but the round has "
                             f"{shown(round_sizes)}; a pseudo-round must draw questions sampled like the round's")

    def _check_specific(self, reference, round_, options, round_number):
        if options.verifier is not None and options.passed_field is not None:
            raise InputError(f"verifier {options.verifier} and passed field {options.passed_field!r}: both judge "
                             "each record; choose one")
        gold = reference.data.gold
        missing = [q for q in round_.data.samples_per_question() if q not in gold]
        if missing:
            raise InputError(f"{_where(round_, 'round', round_number)}: {len(missing)} of "
                             f"{len(round_.data.samples_per_question())} questions have no gold answer in "
                             f"{reference.path} (reference) (first: question {missing[0]!r})")

    def prepare(self, pipe, *, constraints_path, schema_path):
        reference = pipe.reference
        gold = reference.gold
        if gold is None:  # records loaded as a round: their first answer per question
            gold = {}
            for q, a in zip(reference.question_ids, reference.answers):
                gold.setdefault(q, a)
        pipe.gold = gold
        rationales = [r for r in reference.rationales if r]
        pipe.rationale_reference = None
        if rationales:  # the text suite on the rationales (rationale_*), against the reference's own
            from metrics_core.text import fit_text_reference

            from monitor.modalities.pipeline import _validity_notes

            pipe.rationale_reference = fit_text_reference(rationales)
            pipe.notes.extend(_validity_notes(pipe.rationale_reference, f"{pipe.reference_where} rationales"))
        pipe._reference_embeddings = None  # embedded on first use: the featurizer is fitted or loaded then

    def own_metrics(self, pipe, round_data, *, n_boot, round_where):
        from metrics_core import reasoning
        from metrics_core.bootstrap import mean_estimate
        from metrics_core.registry import metric_names

        ids, answers, seed = list(round_data.question_ids), list(round_data.answers), pipe.seed
        boot = {"n_boot": n_boot, "seed": seed}
        sizes = list(round_data.samples_per_question().values())
        out = {}
        try:
            out["acc_verify"] = reasoning.acc_verify(ids, answers, pipe.gold, **boot)
            if pipe.verifier is not None:
                from monitor.modalities.verifier import run_verifier

                verdicts = run_verifier(pipe.verifier, ids, answers, pipe.gold, timeout_s=pipe.verifier_timeout,
                                        where=round_where)
                if verdicts.summary(pipe.verifier):
                    logging.getLogger("collapse_monitor.verifier").warning("%s: %s", round_where,
                                                                           verdicts.summary(pipe.verifier))
                correct = verdicts.passed
                out["pass_rate"] = mean_estimate(np.asarray(correct, dtype=np.float64), **boot)
            elif round_data.passed is not None:
                correct = list(round_data.passed)
                out["pass_rate"] = mean_estimate(np.asarray(correct, dtype=np.float64), **boot)
            else:
                gold = {q: reasoning.normalize_answer(pipe.gold[q]) for q in set(ids)}
                correct = [reasoning.normalize_answer(a) == gold[q] for q, a in zip(ids, answers)]
            out["pass_at_1"] = reasoning.mean_pass_at_k(ids, correct, 1, **boot)
            if min(sizes) >= 2:
                out["pass_at_k"] = reasoning.mean_pass_at_k(ids, correct, min(sizes), **boot)
            if pipe.code_language is not None:
                out["syntax_valid_rate"] = reasoning.syntax_valid_rate(answers, pipe.code_language, **boot)
            if max(sizes) >= 2:
                out["self_consistency_accuracy"] = reasoning.self_consistency_accuracy(ids, answers, pipe.gold, **boot)
                out["answer_agreement"] = reasoning.answer_agreement(ids, answers, **boot)
            out["distinct_answers_per_question"] = reasoning.distinct_answers_per_question(ids, answers, **boot)
            rationales = [r for r in round_data.rationales if r]
            if rationales:
                out["template_collapse_rate"] = reasoning.template_collapse_rate(rationales, **boot)
                if pipe.rationale_reference is not None:
                    from metrics_core.registry import RATIONALE_PREFIX
                    from metrics_core.text import text_suite

                    for name, est in text_suite(pipe.rationale_reference, rationales, n_boot=n_boot,
                                                seed=seed).items():
                        out[RATIONALE_PREFIX + name] = est
        except ValueError as exc:  # e.g. a question without a gold answer (refused up front by check_pair)
            raise InputError(f"{round_where}: {exc}") from exc
        except ImportError as exc:  # --code-language javascript without the code extra
            raise CollapseMonitorError(str(exc)) from None
        return {name: out[name] for name in metric_names("reasoning") if name in out}


class AgentModality(_TextViewModality):
    """Agent trajectories: JSONL episodes of steps (an action, optionally an error and a reward) with an optional
    success verdict and sub-goals (:func:`monitor.inputs.load_episodes`). The metrics are
    :mod:`metrics_core.agents`' against the reference's episodes; an episode's text view (its actions, one per
    line) goes through the text featurizer for the embedding suite. Episodes are independent units, so a pool
    gives the loop its null like any other modality."""

    name = "agent"
    has_own_metrics = True

    def load(self, path, role, round_number, options, reference=None, *, max_samples=True):
        from monitor import inputs

        loaded = inputs.load_episodes(path, role, round_number, max_samples=self._cap(options, max_samples),
                                      seed=options.seed)
        return LoadedInput(loaded.path, loaded, loaded.fingerprint, loaded)

    def prepare(self, pipe, *, constraints_path, schema_path):
        pipe.reference_episodes = pipe.reference.episodes()
        pipe._reference_embeddings = None  # embedded on first use: the featurizer is fitted or loaded then

    def own_metrics(self, pipe, round_data, *, n_boot, round_where):
        from metrics_core.agents import agent_suite
        from metrics_core.registry import metric_names

        try:
            out = agent_suite(round_data.episodes(), pipe.reference_episodes, n_boot=n_boot, seed=pipe.seed)
        except ValueError as exc:
            raise InputError(f"{round_where}: {exc}") from exc
        return {name: out[name] for name in metric_names("agent") if name in out}


def _modalities() -> dict[str, Modality]:
    from monitor.modalities.image_text import ImageTextModality
    from monitor.modalities.structured import GraphModality, JsonModality, LogModality

    return {m.name: m for m in (EmbeddingModality(), TextModality(), TabularModality(), ReasoningModality(),
                                AgentModality(), JsonModality(), GraphModality(), LogModality(), ImageTextModality())}


MODALITY: dict[str, Modality] = _modalities()

