"""The audit options: one pydantic model for the ``audit-round`` flow, the CLI, the in-loop API, watch and backfill.

Prefect validates a flow's pydantic parameters, so a bad option fails before the flow runs. The per-call
inputs (the loop, the round, its files, the home, the pool) stay separate flow parameters; the options are
what a loop is audited *with*, recorded with each round so a backfill or ``calibrate`` re-audits it the same
way (:meth:`AuditOptions.record`, :meth:`AuditOptions.from_record`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from monitor.audit_defaults import AUDIT_DEFAULTS

_D = AUDIT_DEFAULTS
# Recorded with a round beside the options: where its null's pool came from (per call, not an option).
_RECORD_EXTRAS = ("pool_path", "pool_source")


# Options a null depends on that only some modalities read (monitor.options.AuditOptions.null_options).
_MODALITY_NULL_OPTIONS = ("question_field", "answer_field", "rationale_field", "passed_field", "code_language",
                          "verifier", "match_key", "log_pattern", "encoder")


class AuditOptions(BaseModel):
    """How a loop's rounds are audited (defaults: :data:`monitor.audit_defaults.AUDIT_DEFAULTS`).

    >>> AuditOptions(n_boot=0).n_boot, AuditOptions().k
    (0, 5)
    >>> AuditOptions(k=0)
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for AuditOptions
    k
      Input should be greater than or equal to 1 [type=greater_than_equal, input_value=0, input_type=int]
        For further information visit https://errors.pydantic.dev/2.../v/greater_than_equal
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int = Field(_D["k"], ge=1)
    n_boot: int = Field(_D["n_boot"], ge=0)
    seed: int = Field(_D["seed"], ge=0)
    max_samples: int | None = Field(_D["max_samples"], ge=1)
    allow_size_change: bool = _D["allow_size_change"]
    modality: Literal["embedding", "text", "tabular", "reasoning", "agent", "json", "graph", "log",
                      "image_text"] | None = _D["modality"]
    text_field: str = _D["text_field"]
    featurizer: str = _D["featurizer"]
    protected_attribute: str | None = _D["protected_attribute"]
    constraints_path: str | None = _D["constraints_path"]
    schema_path: str | None = _D["schema_path"]
    question_field: str = _D["question_field"]
    answer_field: str = _D["answer_field"]
    rationale_field: str = _D["rationale_field"]
    passed_field: str | None = _D["passed_field"]
    code_language: Literal["python", "javascript"] | None = _D["code_language"]
    verifier: str | None = Field(_D["verifier"], pattern=r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
    verifier_timeout: float = Field(_D["verifier_timeout"], gt=0, le=3600)
    match_key: str | None = Field(_D["match_key"], min_length=1)
    log_pattern: str | None = Field(_D["log_pattern"], min_length=1)
    encoder: str | None = Field(_D["encoder"], pattern=r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
    null_rounds: int = Field(_D["null_rounds"], ge=1)  # under MIN_NULL_ROUNDS: refused, in one line, by the null

    def pipeline_options(self) -> dict:
        """What :class:`monitor.modalities.pipeline.AuditPipeline` takes besides the reference."""
        return self.model_dump(include={"k", "n_boot", "seed", "featurizer", "protected_attribute",
                                        "constraints_path", "schema_path", "code_language", "verifier",
                                        "verifier_timeout", "match_key"})

    def null_options(self) -> dict:
        """The options a loop's null depends on (part of its key: a change rebuilds it)."""
        options = self.model_dump(include={"k", "seed", "featurizer", "text_field", "max_samples",
                                           "protected_attribute", "constraints_path", "schema_path"})
        # Options of one modality count only when set: a stored null of a loop not using them keeps its key.
        specific = self.model_dump(include=set(_MODALITY_NULL_OPTIONS))
        options.update({name: value for name, value in specific.items() if value != _D[name]})
        return options

    def cache_key(self) -> str:
        """A digest of everything a round's metrics depend on besides its files: the options and the contents of
        the constraints and schema files they name, and of the verifier's module (an edited file must not reuse
        cached metrics).

        >>> AuditOptions().cache_key() == AuditOptions().cache_key() != AuditOptions(k=3).cache_key()
        True
        """
        import hashlib
        import json
        from pathlib import Path

        h = hashlib.sha256(json.dumps(self.model_dump(exclude={"allow_size_change", "null_rounds"}),
                                      sort_keys=True).encode())
        for path in (self.constraints_path, self.schema_path, _verifier_source(self.verifier)):
            if path is not None and Path(path).is_file():
                h.update(b"\0" + Path(path).read_bytes())
        return h.hexdigest()

    def record(self, modality: str, pool_path: str | None, pool_source: str) -> dict:
        """What the store records with a round to re-audit it the same way (the detected modality fixed)."""
        return {**self.model_dump(exclude={"modality"}), "modality": modality, "pool_path": pool_path,
                "pool_source": pool_source}

    @classmethod
    def from_record(cls, record: dict) -> tuple["AuditOptions", dict]:
        """A recorded round's options and its per-call extras (``pool_path``, ``pool_source`` where present).

        >>> options, extras = AuditOptions.from_record({"k": 3, "pool_path": None, "pool_source": "pool"})
        >>> options.k, extras
        (3, {'pool_path': None, 'pool_source': 'pool'})
        """
        extras = {key: record[key] for key in _RECORD_EXTRAS if key in record}
        return cls(**{key: value for key, value in record.items() if key not in _RECORD_EXTRAS}), extras


def _verifier_source(spec: str | None) -> str | None:
    """The file of a verifier's module, found without importing it (a top-level module or package on the path)."""
    if spec is None:
        return None
    import importlib.machinery
    import os
    import sys

    parts = spec.split(":")[0].split(".")
    search = [os.getcwd(), *sys.path]
    for i, part in enumerate(parts):
        found = importlib.machinery.PathFinder.find_spec(part, search)
        if found is None:
            return None
        if i == len(parts) - 1 or not found.submodule_search_locations:
            return found.origin if i == len(parts) - 1 else None
        search = list(found.submodule_search_locations)
    return None


def option_minimum(name: str) -> int | None:
    """The smallest value an integer option takes (its ``ge`` bound), None for an option that is not an integer.

    >>> option_minimum("k"), option_minimum("n_boot"), option_minimum("featurizer")
    (1, 0, None)
    """
    for bound in AuditOptions.model_fields[name].metadata:
        if hasattr(bound, "ge"):
            return int(bound.ge)
    return None


def option_problem(name: str, value) -> str | None:
    """Why ``value`` is not a valid ``name`` option, in a few words (None when it is); strict, as a file's
    typed values are: ``"5"`` is not an integer and ``true`` is not 1.

    >>> option_problem("k", 0), option_problem("modality", "audio"), option_problem("seed", 3)
    ('expected an integer >= 1, got 0', "expected 'embedding', 'text', 'tabular', 'reasoning', 'agent', 'json', \
'graph', 'log' or 'image_text', got 'audio'", None)
    """
    from pydantic import ValidationError

    try:
        AuditOptions.model_validate({name: value}, strict=True)
    except ValidationError as exc:
        minimum = option_minimum(name)
        if minimum is not None:
            return f"expected an integer >= {minimum}, got {value!r}"
        return f"{exc.errors()[0]['msg'][0].lower()}{exc.errors()[0]['msg'][1:]}, got {value!r}".replace(
            "input should be", "expected")
    return None

