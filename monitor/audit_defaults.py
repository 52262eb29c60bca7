"""The audit options' defaults, written once: plain values the CLI's parser reads without importing pydantic.

:class:`monitor.options.AuditOptions` (the flow's options model) takes its defaults from here.
"""

from __future__ import annotations

from metrics_core.sampling import DEFAULT_MAX_SAMPLES

AUDIT_DEFAULTS = {
    "k": 5,  # k-NN neighbourhood size
    "n_boot": 200,  # bootstrap replicates per metric (0: none)
    "seed": 0,  # subsampling, bootstrap and featurizer seed
    "max_samples": DEFAULT_MAX_SAMPLES,  # rows of the reference and of a round kept (seeded subsample)
    "allow_size_change": False,  # audit a round whose sizes or reference differ from the loop's
    "modality": None,  # monitor.inputs.files.MODALITIES, e.g. "text" or "json"; None: detected from the round file
    "text_field": "text",  # JSONL field holding a text
    "featurizer": "hashing",  # text featurizer ("hashing" or "sentence-transformers:<model>")
    "protected_attribute": None,  # tabular: the column CovGap groups by
    "constraints_path": None,  # tabular: constraints TOML for the violation rate; graph: [graph] rules TOML
    "schema_path": None,  # tabular: column kinds TOML; json: a JSON Schema file
    "question_field": "question_id",  # reasoning: JSONL field holding a record's question id
    "answer_field": "answer",  # reasoning: JSONL field holding the final answer
    "rationale_field": "rationale",  # reasoning: JSONL field holding the rationale (optional in a record)
    "passed_field": None,  # reasoning: JSONL field holding the user's own test verdict (true/false); None: none
    "code_language": None,  # reasoning: "python" parses each answer as code (syntax_valid_rate; never run)
    "verifier": None,  # reasoning: "module:function" judging each answer in a contained subprocess; None: none
    "verifier_timeout": 10.0,  # reasoning: wall-clock seconds the verifier may take per record
    "match_key": None,  # json: key path aligning round records with the reference's (mean_match_percentage)
    "log_pattern": None,  # log: regex with named groups severity and/or component (their distributions)
    "encoder": None,  # image_text: "module:function" embedding a .jsonl manifest's image files and captions
    "null_rounds": 1000,  # pseudo-rounds of the loop's null (with a pool)
}
MIN_NULL_ROUNDS = 200
