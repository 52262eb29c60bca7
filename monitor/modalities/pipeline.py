"""One audit pipeline: a reference prepared once, then any number of rounds audited against it.

The daemon's flow (:mod:`flows.audit`, one Prefect task per step), the
per-loop null (:mod:`monitor.engine.null`, thousands of pseudo-rounds) and the
meta-evaluation (:mod:`monitor.meta_evaluation.runner`) all audit through
:class:`AuditPipeline`, so what the benchmark measures and what the null
calibrates is the daemon's own code, step for step:

1. ``modality_metrics``: the modality's own metrics (text:
   :func:`metrics_core.text.text_suite`; tabular:
   :func:`metrics_core.tabular.tabular_suite`; reasoning:
   :mod:`metrics_core.reasoning`; agent: :mod:`metrics_core.agents`; embeddings: none);
2. ``embed``: the round as rows of an embedding (embeddings as they are; text
   (and reasoning rationales, agent action sequences) through the featurizer fitted on, or chosen for, the reference; tabular rows
   encoded by the reference's schema);
3. ``suite_group``: each group of the embedding suite
   (:data:`metrics_core.SUITE_GROUPS`) against the reference profile.

:meth:`AuditPipeline.audit` runs the three in order and keeps the finite
values, as the flow stores them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import metrics_core
from metrics_core.bootstrap import Estimate
from monitor.errors import InputError
from monitor.modalities import HASHING, MODALITY, SENTENCE_TRANSFORMERS_PREFIX, check_featurizer


def finite_metrics(metrics: dict[str, Estimate]) -> dict[str, Estimate]:
    """The metrics whose value is finite: a metric undefined this round (NaN) is not stored."""
    return {name: est for name, est in metrics.items()
            if est.value is not None and np.isfinite(float(est.value))}


_CHECK_NAMES = {"empty": "empty texts", "encoding": "encoding noise", "terminal_punctuation": "terminal punctuation",
                "unclosed_delimiters": "unclosed quotes or brackets", "too_long": "texts over max_chars"}


def _switched_off_note(reference_where: str, what: str, off: dict[str, float], fails: str, unit: str,
                       share_phrase: str, rest: str) -> list[str]:
    """One line naming the checks switched off because the reference itself fails them (none: no line)."""
    from metrics_core._checks import DEFAULT_FAILURE_LIMIT

    if not off:
        return []
    several = len(off) > 1
    listed = ", ".join(f"{name} ({share:.0%} {share_phrase})" for name, share in off.items())
    return [f"{reference_where}: {what}{'s' if several else ''} off for this loop, since the reference {fails} "
            f"{'them' if several else 'it'} in over {DEFAULT_FAILURE_LIMIT:.0%} of its {unit}: {listed}; {rest}"]


def _validity_notes(text_reference, reference_where: str) -> list[str]:
    from metrics_core.text import validity_switched_off

    off = {_CHECK_NAMES[c]: share for c, share in validity_switched_off(text_reference).items()}
    return _switched_off_note(reference_where, "validity check", off, "fails", "texts", "of the reference fails it",
                              "the other checks are reported relative to the reference's rates")


def _constraint_notes(baseline, reference_where: str) -> list[str]:
    from metrics_core._checks import DEFAULT_FAILURE_LIMIT

    off = {label: rate for label, rate in baseline.rates.items() if rate > DEFAULT_FAILURE_LIMIT}
    return _switched_off_note(reference_where, "constraint", off, "violates", "checks",
                              "of the reference's checks fail", "violation_rate is reported relative to the reference's rate")


@dataclass
class RoundAudit:
    """What one round's audit produced: finite metrics (modality first, then the suite) and its embeddings."""

    metrics: dict[str, Estimate]
    embeddings: np.ndarray
    failures: list[str] = field(default_factory=list)


class AuditPipeline:
    """A reference prepared once for auditing rounds of one modality.

    Args:
        modality: ``"embedding"`` (``[N, D]`` array), ``"text"`` (list of str),
            ``"tabular"`` (pandas DataFrame), ``"reasoning"`` (:class:`monitor.inputs.LoadedRecords`) or
            ``"agent"`` (:class:`monitor.inputs.LoadedEpisodes`).
        reference: the reference set (already subsampled to the audit size).
        k: k-NN neighbourhood size of the embedding suite.
        n_boot: bootstrap replicates (0: point values only, as the null's pseudo-rounds use).
        seed: bootstrap, featurizer and subsample seed.
        featurizer: text only, ``hashing`` or ``sentence-transformers:<model>``.
        cache_dir: the home's cache (fitted featurizers, text embeddings, the reference
            profile); None keeps everything in memory.
        reference_fingerprint: content fingerprint of the reference (keys the disk caches).
        protected_attribute, constraints_path, schema_path: tabular options (see the flow).
        code_language: reasoning only, ``"python"``: the answers are programs (``syntax_valid_rate``).
        verifier, verifier_timeout: reasoning only: the user's ``module:function`` judging each answer, and its
            per-record timeout (:mod:`monitor.modalities.verifier`); None: answers are checked against gold.
        match_key: json only: the key path aligning round records with the reference's (mean_match_percentage).
        reference_where: how errors name the reference.

    >>> rng = np.random.default_rng(0)
    >>> pipe = AuditPipeline("embedding", rng.normal(size=(60, 4)), n_boot=0)
    >>> audit = pipe.audit(rng.normal(size=(60, 4)))
    >>> sorted(audit.metrics)[:3], audit.embeddings.shape
    (['alpha_precision', 'authenticity', 'beta_recall'], (60, 4))
    """

    def __init__(self, modality: str, reference, *, k: int = 5, n_boot: int = 200, seed: int = 0,
                 featurizer: str = HASHING, cache_dir: str | Path | None = None,
                 reference_fingerprint: str | None = None, protected_attribute: str | None = None,
                 constraints_path: str | None = None, schema_path: str | None = None,
                 code_language: str | None = None, verifier: str | None = None,
                 verifier_timeout: float = 10.0, match_key: str | None = None,
                 reference_where: str = "reference") -> None:
        if modality not in MODALITY:
            raise ValueError(f"modality: expected one of {', '.join(MODALITY)}, got {modality!r}")
        self.modality, self.reference, self.seed = modality, reference, int(seed)
        self.config = metrics_core.SuiteConfig(k=k, n_boot=n_boot, seed=seed)
        self.featurizer = check_featurizer(featurizer)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.reference_fingerprint = reference_fingerprint
        self.protected_attribute = protected_attribute
        self.code_language = code_language
        self.verifier, self.verifier_timeout = verifier, float(verifier_timeout)
        self.match_key = match_key
        self.reference_where = reference_where
        self.feature_key = ""
        self.tabular_columns: dict[str, list[str]] | None = None
        self._profile = None
        self._embedder = None
        self.notes: list[str] = []  # said once per audit (the flow logs them as warnings)
        self.kind = MODALITY[modality]
        self.kind.prepare(self, constraints_path=constraints_path, schema_path=schema_path)

    # -- configuration ---------------------------------------------------------------------------------------

    def suite_config(self, n_boot: int | None = None) -> metrics_core.SuiteConfig:
        return self.config if n_boot is None else dataclasses.replace(self.config, n_boot=int(n_boot))

    @property
    def reference_key(self) -> str:
        """Key of the reference profile: fingerprint, size, featurizer and the suite's reference fields."""
        fingerprint = (self.reference_fingerprint or "memory")[:24]
        n_rows = self.reference_embeddings.shape[0]  # first: embedding texts sets the featurizer key
        return f"{fingerprint}-{n_rows}-{self.feature_key[:16]}-{self.config.reference_key()}"

    # -- step 2: embeddings ----------------------------------------------------------------------------------

    def _text_embedder(self):
        if self._embedder is None:
            from monitor import modalities

            texts = self.kind.reference_texts(self)
            if self.featurizer == HASHING:
                if self.cache_dir is not None and self.reference_fingerprint is not None:
                    model = modalities._hashing_featurizer(self.cache_dir / "featurizers", self.reference_fingerprint,
                                                           texts, self.seed)
                else:
                    from metrics_core.featurize import fit_hashing_featurizer

                    model = fit_hashing_featurizer(texts, seed=self.seed)
            else:
                from metrics_core.featurize_st import load_sentence_transformer
                from monitor.errors import CollapseMonitorError

                try:
                    model = load_sentence_transformer(self.featurizer[len(SENTENCE_TRANSFORMERS_PREFIX):])
                except (ValueError, ImportError) as exc:
                    raise CollapseMonitorError(f"featurizer {self.featurizer!r}: {exc}") from exc
            # a metrics-version bump re-embeds rather than trusting old vectors
            self.feature_key = f"{model.key}@metrics-v{metrics_core.METRICS_VERSION}"
            self._embedder = model
        return self._embedder

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        model = self._text_embedder()
        if self.cache_dir is None:
            return np.asarray(model.transform(texts), dtype=np.float64)
        from monitor.modalities.embedding_cache import EmbeddingCache

        return EmbeddingCache(self.cache_dir / "embeddings").embed(texts, self.feature_key, model.transform)

    @property
    def reference_embeddings(self) -> np.ndarray:
        if self._reference_embeddings is None:
            self._reference_embeddings = self._embed_texts(self.kind.reference_texts(self))
        return self._reference_embeddings

    def embed(self, round_data) -> np.ndarray:
        """The round's rows in the reference's embedding space."""
        return self.kind.embed(self, round_data)

    # -- step 1: the modality's own metrics --------------------------------------------------------------------

    def modality_metrics(self, round_data, *, n_boot: int | None = None,
                         round_where: str = "round") -> dict[str, Estimate]:
        """The modality's own metrics of one round (none for embeddings), in registry order."""
        n_boot = self.config.n_boot if n_boot is None else int(n_boot)
        return self.kind.own_metrics(self, round_data, n_boot=n_boot, round_where=round_where)

    def _violation_baseline(self, n_rows: int):
        """The reference's constraint violations at a round size (None without constraints), once per size."""
        if not self.constraints:
            return None
        if n_rows not in self._violation_baselines:
            from metrics_core.tabular import fit_violation_baseline

            try:
                self._violation_baselines[n_rows] = fit_violation_baseline(self._reference_frame, self.constraints,
                                                                           n_rows, seed=self.seed)
            except ValueError as exc:  # a constrained column the reference lacks
                raise InputError(f"{self.reference_where}: {exc}") from exc
        return self._violation_baselines[n_rows]

    # -- step 3: the embedding suite ---------------------------------------------------------------------------

    def fit_profile(self):
        """The reference profile, fitted once (from the home's cache when there is one)."""
        if self._profile is None:
            if self.cache_dir is not None:
                from monitor.modalities import profile_cache

                key = self.reference_key
                profile = profile_cache.load_profile(self.cache_dir, key)
                if profile is None:
                    profile = metrics_core.fit_suite_reference(self.reference_embeddings, self.config)
                    profile_cache.save_profile(profile, self.cache_dir, key)
                self._profile = profile
            else:
                self._profile = metrics_core.fit_suite_reference(self.reference_embeddings, self.config)
        return self._profile

    def use_profile(self, profile) -> None:
        """Adopt a profile fitted elsewhere (the flow's cached task)."""
        self._profile = profile

    def suite_group(self, group: str, round_embeddings: np.ndarray, *, n_boot: int | None = None,
                    profile=None) -> dict[str, Estimate]:
        """One group of the embedding suite, exactly as :func:`metrics_core.embedding_suite` computes it."""
        return metrics_core.embedding_suite_group(
            group, self.reference_embeddings, round_embeddings, config=self.suite_config(n_boot),
            profile=self.fit_profile() if profile is None else profile)

    # -- all steps ---------------------------------------------------------------------------------------------

    def audit(self, round_data, *, n_boot: int | None = None, round_where: str = "round",
              skip_failed_groups: bool = False) -> RoundAudit:
        """Every metric of one round, as the flow computes and stores it (finite values only).

        With ``skip_failed_groups`` a suite group that cannot be computed on this
        round (e.g. EDS of 1-d data with as many negative as positive values)
        drops only its own metrics, and the failure is listed; else it raises.
        """
        metrics = self.modality_metrics(round_data, n_boot=n_boot, round_where=round_where)
        embeddings = self.embed(round_data)
        failures = []
        for group in metrics_core.SUITE_GROUPS:
            try:
                metrics.update(self.suite_group(group, embeddings, n_boot=n_boot))
            except ValueError as exc:
                if not skip_failed_groups:
                    raise
                failures.append(f"{round_where}: {group}: {exc}")
        return RoundAudit(finite_metrics(metrics), embeddings, failures)
