"""The metric registry: one place that names every metric and its meaning.

Names are snake_case and stable: they become store keys, MLflow keys and
Prometheus label values. The CLI, the store, the alert rules and the exporter
read this registry instead of keeping lists of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES = ("fidelity", "diversity", "coverage", "privacy", "validity")
# any: computed for every input modality
MODALITIES = ("embedding", "text", "tabular", "reasoning", "agent", "json", "graph", "log", "image_text", "any")


@dataclass(frozen=True)
class MetricSpec:
    name: str
    family: str
    modality: str
    higher_is_better: bool
    value_range: tuple[float | None, float | None]  # None: unbounded
    citation: str
    description: str
    # The value of the reference audited against itself, where it is exactly
    # defined (a possible alert baseline); None elsewhere.
    self_value: float | None = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: unknown family {self.family!r}, expected one of {FAMILIES}")
        if self.modality not in MODALITIES:
            raise ValueError(f"{self.name}: unknown modality {self.modality!r}, expected one of {MODALITIES}")


_SPECS = (
    MetricSpec("precision", "fidelity", "embedding", True, (0.0, 1.0),
               "Kynkäänniemi et al. 2019", "share of round points inside the reference k-NN manifold", self_value=1.0),
    MetricSpec("recall", "coverage", "embedding", True, (0.0, 1.0),
               "Kynkäänniemi et al. 2019", "share of reference points inside the round k-NN manifold", self_value=1.0),
    MetricSpec("density", "fidelity", "embedding", True, (0.0, None),
               "Naeem et al. 2020", "mean number of reference balls holding a round point, over k"),
    MetricSpec("coverage", "coverage", "embedding", True, (0.0, 1.0),
               "Naeem et al. 2020", "share of reference balls holding at least one round point", self_value=1.0),
    MetricSpec("vendi_score", "diversity", "embedding", True, (1.0, None),
               "Friedman & Dieng 2023", "effective number of distinct directions (cosine kernel)"),
    MetricSpec("self_cosine_similarity", "diversity", "embedding", False, (-1.0, 1.0),
               "LLM Data Auditor survey §2.2", "mean pairwise cosine similarity of the round"),
    MetricSpec("alpha_precision", "fidelity", "embedding", True, (0.0, 1.0),
               "Alaa et al. 2022", "integrated alpha-precision: round mass inside the reference alpha-supports"),
    MetricSpec("beta_recall", "coverage", "embedding", True, (0.0, 1.0),
               "Alaa et al. 2022", "integrated beta-recall: reference covered by the round beta-supports"),
    MetricSpec("authenticity", "privacy", "embedding", True, (0.0, 1.0),
               "Alaa et al. 2022", "share of round samples not closer to a reference sample than its own neighbour"),
    MetricSpec("mmd2", "fidelity", "embedding", False, (-2.0, 2.0),
               "Gretton et al. 2012", "unbiased squared MMD, RBF kernel, bandwidth fixed by the reference"),
    MetricSpec("frechet_distance", "fidelity", "embedding", False, (0.0, None),
               "Dowson & Landau 1982; Heusel et al. 2017", "Frechet distance between fitted Gaussians", self_value=0.0),
    MetricSpec("eds", "fidelity", "embedding", True, (-1.0, 1.0),
               "LLM Data Auditor survey §2.2", "cosine of the mean L2-normalised embeddings", self_value=1.0),
    MetricSpec("effective_rank", "diversity", "embedding", True, (0.0, None),
               "Roy & Vetterli 2007", "entropy-based effective rank of the round covariance"),
    MetricSpec("log_volume_ratio", "diversity", "embedding", True, (None, None),
               "Roy & Vetterli 2007 (spectrum); this project", "per-axis mean log variance ratio, round vs reference", self_value=0.0),
    MetricSpec("dcr_median", "privacy", "embedding", True, (0.0, None),
               "LLM Data Auditor survey §4.3", "median distance from a round sample to its closest reference record"),
    MetricSpec("dcr_p05", "privacy", "embedding", True, (0.0, None),
               "LLM Data Auditor survey §4.3", "5th percentile of round-to-reference closest-record distances"),
    MetricSpec("dcr_real_to_round_median", "coverage", "embedding", False, (0.0, None),
               "LLM Data Auditor survey §4.3", "median distance from a held-out reference sample to the round"),
    MetricSpec("copy_rate", "privacy", "embedding", False, (0.0, 1.0),
               "LLM Data Auditor survey §4.3", "share of round samples closer to the reference than its holdout baseline"),
    MetricSpec("tail_coverage", "coverage", "embedding", True, (0.0, 1.0),
               "LLM Data Auditor survey §8.1", "share of rare reference clusters the round still hits", self_value=1.0),
    MetricSpec("tail_mass_ratio", "coverage", "embedding", True, (0.0, None),
               "LLM Data Auditor survey §8.1", "round mass on the rare clusters over the reference's", self_value=1.0),
    MetricSpec("mode_coverage", "coverage", "embedding", True, (0.0, 1.0),
               "LLM Data Auditor survey §8.1", "share of reference clusters hit by the round", self_value=1.0),
    MetricSpec("modes_hit", "coverage", "embedding", True, (0.0, None),
               "LLM Data Auditor survey §8.1", "number of reference clusters hit by the round"),
    MetricSpec("cluster_jsd", "coverage", "embedding", False, (0.0, 1.0),
               "Lin 1991", "Jensen-Shannon divergence (base 2) of the cluster histograms", self_value=0.0),
    # Text rounds (metrics_core.text, metrics_core.text_validity).
    MetricSpec("validity_rate", "validity", "text", True, (0.0, 2.0),
               "LLM Data Auditor survey §2.2, §2.4", "1 minus the share of samples with an empty/encoding/truncation/"
               "length failure beyond the reference's (1: as valid as the reference; checks the reference fails "
               "in over 20% of its texts are off)"),
    MetricSpec("invalid_empty", "validity", "text", False, (-1.0, 1.0),
               "LLM Data Auditor survey §2.4", "share of whitespace-only samples, minus the reference's"),
    MetricSpec("invalid_encoding", "validity", "text", False, (-1.0, 1.0),
               "LLM Data Auditor survey §2.4", "share of samples with U+FFFD, control characters or mojibake, "
               "minus the reference's"),
    MetricSpec("invalid_truncated", "validity", "text", False, (-1.0, 1.0),
               "LLM Data Auditor survey §2.4", "share of samples lacking terminal punctuation or with unclosed "
               "quotes/brackets, minus the reference's"),
    MetricSpec("invalid_too_long", "validity", "text", False, (-1.0, 1.0),
               "LLM Data Auditor survey §2.4", "share of samples longer than max_chars code points, minus the reference's"),
    MetricSpec("distinct_1", "diversity", "text", True, (0.0, 1.0),
               "Li et al. 2016", "distinct unigrams over total unigrams, pooled over the round"),
    MetricSpec("distinct_2", "diversity", "text", True, (0.0, 1.0),
               "Li et al. 2016", "distinct bigrams over total bigrams (within samples), pooled"),
    MetricSpec("distinct_3", "diversity", "text", True, (0.0, 1.0),
               "Li et al. 2016", "distinct trigrams over total trigrams (within samples), pooled"),
    MetricSpec("distinct_4", "diversity", "text", True, (0.0, 1.0),
               "Li et al. 2016", "distinct 4-grams over total 4-grams (within samples), pooled"),
    MetricSpec("ttr", "diversity", "text", True, (0.0, 1.0),
               "LLM Data Auditor survey §2.2", "types over tokens, pooled over the round"),
    MetricSpec("mattr", "diversity", "text", True, (0.0, 1.0),
               "Covington & McFall 2010", "moving-average type-token ratio, 50-token windows over the token stream"),
    MetricSpec("entropy_1", "diversity", "text", True, (0.0, None),
               "Zhang et al. 2018; survey §2.2", "Shannon entropy (bits) of the unigram distribution"),
    MetricSpec("entropy_2", "diversity", "text", True, (0.0, None),
               "Zhang et al. 2018; survey §2.2", "Shannon entropy (bits) of the bigram distribution"),
    MetricSpec("entropy_3", "diversity", "text", True, (0.0, None),
               "Zhang et al. 2018; survey §2.2", "Shannon entropy (bits) of the trigram distribution"),
    MetricSpec("entropy_4", "diversity", "text", True, (0.0, None),
               "Zhang et al. 2018; survey §2.2", "Shannon entropy (bits) of the 4-gram distribution"),
    MetricSpec("compression_ratio", "diversity", "text", True, (0.0, None),
               "this project (zlib level 9)", "zlib-compressed over raw UTF-8 bytes of the newline-joined round"),
    MetricSpec("exact_duplicate_rate", "diversity", "text", False, (0.0, 1.0),
               "LLM Data Auditor survey §2.1", "share of samples repeating an earlier sample after strip()"),
    MetricSpec("near_duplicate_rate", "diversity", "text", False, (0.0, 1.0),
               "Broder 1997 (MinHash); survey §2.1", "share of samples with a partner of MinHash Jaccard >= 0.8 on word 5-gram shingles"),
    MetricSpec("mean_length", "fidelity", "text", True, (0.0, None),
               "this project", "mean tokens per sample (no better direction: alerts off by default)"),
    MetricSpec("length_ks", "fidelity", "text", False, (0.0, 1.0),
               "Smirnov 1939", "two-sample KS statistic of round vs reference token lengths", self_value=0.0),
    MetricSpec("vocab_tail_coverage", "coverage", "text", True, (0.0, 1.0),
               "LLM Data Auditor survey §8.1; Shumailov et al. 2024",
               "share of rare reference types (lowest 10% token mass) seen in the round", self_value=1.0),
    MetricSpec("vocab_coverage", "coverage", "text", True, (0.0, 1.0),
               "LLM Data Auditor survey §8.1", "share of reference types seen in the round", self_value=1.0),
    MetricSpec("zipf_exponent", "diversity", "text", False, (0.0, None),
               "Zipf 1949; Holtzman et al. 2020", "minus the least-squares slope of log frequency on log rank (top 5000 ranks)"),
    MetricSpec("unigram_jsd", "fidelity", "text", False, (0.0, 1.0),
               "Lin 1991", "Jensen-Shannon divergence (base 2) of round vs reference unigram distributions", self_value=0.0),
    # Tabular rounds (metrics_core.tabular).
    MetricSpec("ks_mean", "fidelity", "tabular", False, (0.0, 1.0),
               "Zhang et al. 2024 (TabSyn); survey §4.2", "mean two-sample KS statistic over numeric columns", self_value=0.0),
    MetricSpec("tvd_mean", "fidelity", "tabular", False, (0.0, 1.0),
               "Zhang et al. 2024 (TabSyn); survey §4.2", "mean total variation distance over categorical columns", self_value=0.0),
    MetricSpec("column_shape_error", "fidelity", "tabular", False, (0.0, 1.0),
               "Zhang et al. 2024 (TabSyn); SDMetrics Column Shapes", "mean of per-column KS and TVD (1 - column shapes score)", self_value=0.0),
    MetricSpec("pearson_score", "fidelity", "tabular", False, (0.0, 1.0),
               "survey §4.2; Zhang et al. 2024 App. E.3", "half the mean absolute Pearson correlation gap over numeric pairs", self_value=0.0),
    MetricSpec("contingency_score", "fidelity", "tabular", False, (0.0, 1.0),
               "survey §4.2; Zhang et al. 2024 App. E.3", "mean contingency-table TVD over pairs with a categorical column", self_value=0.0),
    MetricSpec("det_score", "fidelity", "tabular", True, (0.0, 1.0),
               "survey §4.2; SDMetrics LogisticDetection", "1 - (2 max(AUC, .5) - 1) of a 3-fold logistic-regression detector"),
    MetricSpec("chi2_min_pvalue", "fidelity", "tabular", True, (0.0, 1.0),
               "survey §4.2; Pearson 1900", "smallest chi-squared goodness-of-fit p-value over categorical columns"),
    MetricSpec("chi2_reject_share", "fidelity", "tabular", False, (0.0, 1.0),
               "survey §4.2; Pearson 1900", "share of categorical columns whose chi-squared p-value is below 0.05"),
    MetricSpec("category_coverage", "coverage", "tabular", True, (0.0, 1.0),
               "survey §4.4, §8.1", "share of reference categories the round still produces (pooled)", self_value=1.0),
    MetricSpec("rare_category_coverage", "coverage", "tabular", True, (0.0, 1.0),
               "survey §4.4, §8.1", "share of rare reference categories (share < 5%) the round still produces", self_value=1.0),
    MetricSpec("cov_gap", "coverage", "tabular", False, (0.0, 1.0),
               "survey §4.3", "total variation distance of the protected attribute's group shares", self_value=0.0),
    MetricSpec("violation_rate", "validity", "tabular", False, (-1.0, 1.0),
               "survey §4.2; Kivinen & Mannila 1995 (FD g3)", "share of declared integrity checks the round fails, "
               "minus the reference's at the round's size (constraints the reference violates in over 20% of its "
               "checks are off)"),
    # Reasoning and code rounds (metrics_core.reasoning; monitor.modalities.reasoning). Generated code is parsed,
    # not run by the monitor: pass rates come from the answers matching the reference's gold answers, the user's own
    # harness, or the user's own verifier (monitor.modalities.verifier, off unless named).
    MetricSpec("acc_verify", "validity", "reasoning", True, (0.0, 1.0),
               "LLM Data Auditor survey §3.2", "share of records whose normalised final answer matches the "
               "reference's gold answer of its question"),
    MetricSpec("pass_at_1", "validity", "reasoning", True, (0.0, 1.0),
               "Chen et al. 2021", "mean unbiased pass@1 over questions (correct: the record's passed verdict or the "
               "user's verifier's when given, else its answer matching gold)"),
    MetricSpec("pass_at_k", "validity", "reasoning", True, (0.0, 1.0),
               "Chen et al. 2021", "mean unbiased pass@k over questions, k = the fewest samples of a question in "
               "the round (only when k >= 2; keep K fixed across rounds)"),
    MetricSpec("pass_rate", "validity", "reasoning", True, (0.0, 1.0),
               "LLM Data Auditor survey §3.3", "share of records the user's own test harness passed (the passed "
               "field) or the user's own verifier passed (--verifier, run contained); only when given"),
    MetricSpec("syntax_valid_rate", "validity", "reasoning", True, (0.0, 1.0),
               "LLM Data Auditor survey §3.3", "share of answers that parse as code of the loop's code_language "
               "(ast.parse only, never executed)"),
    MetricSpec("self_consistency_accuracy", "fidelity", "reasoning", True, (0.0, 1.0),
               "Wang et al. 2023", "share of questions whose majority answer over their samples matches gold "
               "(only when a question has >= 2 samples)"),
    MetricSpec("distinct_answers_per_question", "diversity", "reasoning", True, (1.0, None),
               "LLM Data Auditor survey §3.2", "mean number of distinct normalised answers per question"),
    MetricSpec("answer_agreement", "diversity", "reasoning", False, (0.0, 1.0),
               "Wang et al. 2023; LLM Data Auditor survey §3.2", "share of a question's sample pairs with equal "
               "answers, averaged over questions with >= 2 samples (rising without accuracy: lost diversity)"),
    MetricSpec("template_collapse_rate", "diversity", "reasoning", False, (0.0, 1.0),
               "LLM Data Auditor survey §3.2", "share of rationales whose skeleton (numbers and names masked) over "
               "10% of the round's rationales share"),
    # Agent-trajectory rounds (metrics_core.agents; monitor.modalities.AgentModality): episodes of steps with an
    # action, an error flag and optional rewards, success and sub-goals.
    MetricSpec("exec_rate", "validity", "agent", True, (0.0, 1.0),
               "LLM Data Auditor survey §7.2", "share of the round's steps that ran without an error (pooled over "
               "episodes)"),
    MetricSpec("success_rate", "validity", "agent", True, (0.0, 1.0),
               "LLM Data Auditor survey §7.2", "share of the episodes reporting success that succeeded (only when "
               "an episode reports it)"),
    MetricSpec("percent_complete", "validity", "agent", True, (0.0, 1.0),
               "Ma et al. 2024 (AgentBoard progress rate); survey §7.2", "mean share of its declared sub-goals an "
               "episode achieved, over episodes declaring goals (only when one does)"),
    MetricSpec("action_distinct_1", "diversity", "agent", True, (0.0, 1.0),
               "Li et al. 2016; survey §7.3", "distinct actions over total steps, pooled over the round"),
    MetricSpec("action_distinct_2", "diversity", "agent", True, (0.0, 1.0),
               "Li et al. 2016; survey §7.3", "distinct action bigrams over total (within episodes), pooled"),
    MetricSpec("action_distinct_3", "diversity", "agent", True, (0.0, 1.0),
               "Li et al. 2016; survey §7.3", "distinct action trigrams over total (within episodes), pooled"),
    MetricSpec("action_entropy", "diversity", "agent", True, (0.0, None),
               "Zhang et al. 2018; survey §7.3", "Shannon entropy (bits) of the round's action distribution"),
    MetricSpec("duplicate_episode_rate", "diversity", "agent", False, (0.0, 1.0),
               "LLM Data Auditor survey §7.3", "share of episodes whose action sequence repeats an earlier episode's"),
    MetricSpec("episode_length_ks", "fidelity", "agent", False, (0.0, 1.0),
               "Smirnov 1939", "two-sample KS statistic of round vs reference episode lengths (steps)", self_value=0.0),
    MetricSpec("episode_return_ks", "fidelity", "agent", False, (0.0, 1.0),
               "Smirnov 1939", "two-sample KS statistic of round vs reference episode returns (summed rewards; only "
               "when both have rewards)", self_value=0.0),
    # JSON-record rounds (metrics_core.json_records; monitor.modalities.structured.JsonModality): one generated
    # output per line, meant to be a JSON object; the tabular suite also runs on the flattened fields.
    MetricSpec("valid_json_rate", "validity", "json", True, (0.0, 1.0),
               "LLM Data Auditor survey §5.2; Shorten et al. 2024 (StructuredRAG)", "share of outputs (non-blank "
               "lines) that parse as a JSON object; other JSON values and unparsed lines count invalid",
               self_value=1.0),
    MetricSpec("schema_correctness_rate", "validity", "json", True, (0.0, 1.0),
               "LLM Data Auditor survey §5.2; Geng et al. 2025 (JSONSchemaBench)", "share of outputs that are JSON "
               "objects valid under the JSON Schema (dialect from $schema, default Draft 2020-12; only with --schema)"),
    MetricSpec("field_coverage", "coverage", "json", True, (0.0, 1.0),
               "LLM Data Auditor survey §5.3, §8.1", "share of the reference's field paths (dotted keys, array "
               "counts, pooled element paths) present in at least one round record", self_value=1.0),
    MetricSpec("categorical_value_coverage", "coverage", "json", True, (0.0, 1.0),
               "LLM Data Auditor survey §5.3, §8.1; Shumailov et al. 2024", "share of the reference's (categorical "
               "path, value) pairs (str/bool leaves, at most 50 distinct values) the round produces", self_value=1.0),
    MetricSpec("mean_match_percentage", "fidelity", "json", True, (0.0, 1.0),
               "LLM Data Auditor survey §5.3", "mean share of a reference record's field paths reproduced by the "
               "round record with its key (--match-key), over aligned reference records (a share, not x100)"),
    # Graph rounds (metrics_core.graphs; monitor.modalities.structured.GraphModality): one graph per line; the
    # embedding suite runs on each graph's descriptor histograms.
    MetricSpec("valid_rule_rate", "validity", "graph", True, (0.0, 1.0),
               "LLM Data Auditor survey §5.2; Simonovsky & Komodakis 2018", "share of graphs satisfying every rule of "
               "the constraints file (connected, acyclic, max degree, node/edge bounds; only with --constraints)"),
    MetricSpec("uniqueness", "diversity", "graph", True, (0.0, 1.0),
               "De Cao & Kipf 2018 (MolGAN); Shi et al. 2020 (GraphAF); survey §5.2",
               "distinct graphs over all graphs of the round (equality: Weisfeiler-Lehman hash, 3 iterations)"),
    MetricSpec("novelty", "privacy", "graph", True, (0.0, 1.0),
               "Simonovsky & Komodakis 2018 (GraphVAE); De Cao & Kipf 2018; survey §5.2",
               "share of round graphs whose WL hash is no reference graph's", self_value=0.0),
    MetricSpec("degree_mmd2", "fidelity", "graph", False, (0.0, 2.0),
               "You et al. 2018 (GraphRNN); Liao et al. 2019 (GRAN)", "biased squared MMD of normalised degree "
               "histograms, Gaussian kernel on L2 distance, bandwidth fixed by the reference", self_value=0.0),
    MetricSpec("clustering_mmd2", "fidelity", "graph", False, (0.0, 2.0),
               "You et al. 2018 (GraphRNN); Liao et al. 2019 (GRAN)", "biased squared MMD of clustering-coefficient "
               "histograms (100 bins), Gaussian kernel on L2 distance, bandwidth fixed by the reference",
               self_value=0.0),
    MetricSpec("spectral_mmd2", "fidelity", "graph", False, (0.0, 2.0),
               "Liao et al. 2019 (GRAN)", "biased squared MMD of normalised-Laplacian eigenvalue histograms (200 bins "
               "on [0, 2]), Gaussian kernel on L2 distance, bandwidth fixed by the reference", self_value=0.0),
    # Log rounds (metrics_core.logs; monitor.modalities.structured.LogModality): log lines read against the
    # reference's Drain3 templates.
    MetricSpec("template_parse_rate", "validity", "log", True, (0.0, 1.0),
               "He et al. 2017 (Drain); LLM Data Auditor survey §5.2", "share of round lines matching a reference "
               "Drain template (every constant token, as many tokens)", self_value=1.0),
    MetricSpec("template_coverage", "coverage", "log", True, (0.0, 1.0),
               "He et al. 2017 (Drain); LLM Data Auditor survey §5.3", "share of the reference's Drain templates "
               "that at least one round line matches", self_value=1.0),
    MetricSpec("template_jsd", "fidelity", "log", False, (0.0, 1.0),
               "Lin 1991; He et al. 2017 (Drain)", "Jensen-Shannon divergence (base 2) of round vs reference template "
               "distributions, unmatched round lines in one extra bucket", self_value=0.0),
    MetricSpec("severity_jsd", "fidelity", "log", False, (0.0, 1.0),
               "Lin 1991; LLM Data Auditor survey §5.3", "JSD (base 2) of round vs reference severity levels "
               "(--log-pattern group 'severity'; unparsed lines one category; only with that group)", self_value=0.0),
    MetricSpec("component_jsd", "fidelity", "log", False, (0.0, 1.0),
               "Lin 1991; LLM Data Auditor survey §5.3", "JSD (base 2) of round vs reference components "
               "(--log-pattern group 'component'; unparsed lines one category; only with that group)", self_value=0.0),
    # Image-text rounds (metrics_core.image_text; monitor.modalities.image_text.ImageTextModality): paired
    # embeddings from the user's own encoder; the embedding suite also runs on each side (image_*, text_*).
    MetricSpec("ita", "fidelity", "image_text", True, (-1.0, 1.0),
               "Hessel et al. 2021 (CLIPScore, without rescaling); survey §6.2", "mean cosine similarity of each "
               "image embedding with its own caption's (compare rounds embedded by one encoder)"),
    MetricSpec("retrieval_recall_at_1_i2t", "diversity", "image_text", True, (0.0, 1.0),
               "Radford et al. 2021 (CLIP retrieval recall@k); survey §6.2", "share of images whose own caption is "
               "strictly the most cosine-similar of the round's N captions (ties miss; depends on N: keep round "
               "sizes equal)"),
    MetricSpec("retrieval_recall_at_1_t2i", "diversity", "image_text", True, (0.0, 1.0),
               "Radford et al. 2021 (CLIP retrieval recall@k); survey §6.2", "share of captions whose own image is "
               "strictly the most cosine-similar of the round's N images (ties miss; depends on N: keep round "
               "sizes equal)"),
    MetricSpec("well_formed_rate", "validity", "image_text", True, (0.0, 1.0),
               "LLM Data Auditor survey §6.2; jsonschema", "share of captions that parse as a JSON object valid "
               "under --schema (structured captions; only with a schema and caption strings)"),
    # Any input modality (monitor.publishing.evidently_report).
    MetricSpec("evidently_drift_share", "fidelity", "any", False, (0.0, 1.0),
               "Evidently 0.7 DataDriftPreset (DriftedColumnsCount)", "share of columns Evidently flags as drifted, round vs reference"),
)

RATIONALE_PREFIX = "rationale_"


def _rationale_specs(specs) -> tuple[MetricSpec, ...]:
    """The text suite on a reasoning round's rationales (survey §3.2, rationale diversity): one spec per text
    metric, named ``rationale_<name>``, same family, direction, range and citation."""
    return tuple(MetricSpec(RATIONALE_PREFIX + s.name, s.family, "reasoning", s.higher_is_better, s.value_range,
                            s.citation, f"on the rationales: {s.description}", s.self_value)
                 for s in specs if s.modality == "text")


_AFTER_REASONING = max(i for i, s in enumerate(_SPECS) if s.modality == "reasoning") + 1
_SPECS = _SPECS[:_AFTER_REASONING] + _rationale_specs(_SPECS) + _SPECS[_AFTER_REASONING:]

IMAGE_PREFIX, CAPTION_EMBEDDING_PREFIX, CAPTION_PREFIX = "image_", "text_", "caption_"


def _image_text_specs(specs) -> tuple[MetricSpec, ...]:
    """An image-text round's other suites (survey §6.2): the embedding suite on each side (``image_<name>`` on
    the image embeddings, ``text_<name>`` on the caption embeddings) and, with captions as strings, the text
    suite on them (``caption_<name>``); same family, direction, range and citation."""
    sides = [(IMAGE_PREFIX, "embedding", "on the image embeddings"),
             (CAPTION_EMBEDDING_PREFIX, "embedding", "on the caption embeddings"),
             (CAPTION_PREFIX, "text", "on the captions' text")]
    return tuple(MetricSpec(prefix + s.name, s.family, "image_text", s.higher_is_better, s.value_range, s.citation,
                            f"{where}: {s.description}", s.self_value)
                 for prefix, modality, where in sides for s in specs if s.modality == modality)


_AFTER_IMAGE_TEXT = max(i for i, s in enumerate(_SPECS) if s.modality == "image_text") + 1
_SPECS = _SPECS[:_AFTER_IMAGE_TEXT] + _image_text_specs(_SPECS) + _SPECS[_AFTER_IMAGE_TEXT:]

REGISTRY: dict[str, MetricSpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> MetricSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known metrics: {', '.join(REGISTRY)}") from None


ROUND_MODALITIES = ("embedding", "text", "tabular", "reasoning", "agent", "json", "graph", "log", "image_text")
# Which modality a round's metrics mean, most specific first: a JSON round also reports the tabular suite (on its
# flattened fields), an image-text round the text suite (on its captions).
_DECIDING_ORDER = ("json", "graph", "log", "image_text", "reasoning", "agent", "text", "tabular")


def round_modality(metrics) -> str:
    """The modality of the rounds that produced ``metrics`` (names; unknown names are skipped).

    Every other modality's rounds also report the embedding suite on their
    featurized rows, so a metric of theirs decides (the most specific one: JSON
    rounds also report the tabular suite); embedding metrics alone mean an
    embedding round.

    >>> round_modality(["effective_rank", "distinct_2"]), round_modality(["effective_rank"])
    ('text', 'embedding')
    >>> round_modality(["effective_rank", "acc_verify"]), round_modality(["vendi_score", "exec_rate"])
    ('reasoning', 'agent')
    """
    found = {REGISTRY[m].modality for m in metrics if m in REGISTRY}
    for modality in _DECIDING_ORDER:
        if modality in found:
            return modality
    return "embedding"


def metric_names(modality: str | None = None) -> list[str]:
    return [s.name for s in _SPECS if modality is None or s.modality == modality]
