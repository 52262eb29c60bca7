"""The in-loop Python API: audit each generation from inside a self-training loop.

.. code-block:: python

    from monitor import CollapseMonitor

    mon = CollapseMonitor(loop="sft-v3", reference=real_texts)      # or a path, a DataFrame, an array
    verdict = mon.audit_round(k, generated_texts)                    # same kinds
    if verdict.status == "critical":
        ...  # verdict.alerts, verdict.risk, verdict.metrics

It runs the same ``audit_round`` flow as the CLI and the daemon, writes to the
same store and MLflow, and is served by the same exporter; without
``PREFECT_API_URL`` Prefect runs in ephemeral mode, so no server is needed.
In-memory inputs are written once, content-addressed, under
``$COLLAPSE_MONITOR_HOME/inputs/<loop>/`` (``.npy`` for arrays, ``.jsonl`` for
texts, ``.parquet`` for tables), so their fingerprints, caches and re-audits
behave exactly like files'.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.config import check_loop_name, check_round_number, load_settings
from monitor.errors import InputError


@dataclass(frozen=True)
class Verdict:
    """What one audit concluded (the CLI's ``--json`` contract as attributes)."""

    loop: str
    round: int
    status: str
    metrics: dict[str, dict]
    derivatives: dict[str, dict]
    alerts: list[dict]
    risk: dict | None
    transitions: list[dict]
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_result(cls, result: dict) -> "Verdict":
        return cls(result["loop"], result["round"], result["status"], result["metrics"], result["derivatives"],
                   result["alerts"], result["risk"], result["transitions"], result)

    @property
    def signals(self) -> dict[str, dict]:
        """The ``collapse`` and ``drift`` signals: severity, since when, evidence, the metrics named."""
        return self.raw.get("signals", {})

    @property
    def guarantee(self) -> dict | None:
        """The loop's false-alarm guarantee (None until the loop has a null: pass ``pool=``)."""
        return self.raw.get("guarantee")

    def value(self, metric: str) -> float:
        return self.metrics[metric]["value"]


def materialise(data, directory: Path, role: str, round_number: int | None, text_field: str) -> str:
    """A path for ``data``: paths pass through; arrays, texts, reasoning records and tables are written
    content-addressed."""
    where = f"{role}" if round_number is None else f"{role}, round {round_number}"
    if isinstance(data, (str, os.PathLike)):
        return str(Path(data).resolve())
    directory.mkdir(parents=True, exist_ok=True)
    if hasattr(data, "to_jsonl"):  # a loaded input that writes itself back (agent episodes)
        body = data.to_jsonl()
        path = directory / f"{role}-{hashlib.sha256(body).hexdigest()[:24]}.jsonl"
        if not path.exists():
            path.write_bytes(body)
        return str(path)
    if isinstance(data, pd.DataFrame):
        blob = pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes() + json.dumps(
            [str(c) for c in data.columns]).encode()
        path = directory / f"{role}-{hashlib.sha256(blob).hexdigest()[:24]}.parquet"
        if not path.exists():
            data.to_parquet(path, index=False)
        return str(path)
    if isinstance(data, np.ndarray) and data.dtype.kind in "fiu":
        array = np.ascontiguousarray(data)
        digest = hashlib.sha256(array.tobytes() + str((array.dtype.str, array.shape)).encode()).hexdigest()[:24]
        path = directory / f"{role}-{digest}.npy"
        if not path.exists():
            np.save(path, array, allow_pickle=False)
        return str(path)
    records = isinstance(data, (list, tuple)) and bool(data) and all(isinstance(t, dict) for t in data)
    if records or isinstance(data, (list, tuple)) and all(isinstance(t, str) for t in data):
        # reasoning records (dicts) are written as they are, one JSON object a line
        body = "".join(json.dumps(t if records else {text_field: t}) + "\n" for t in data)
        path = directory / f"{role}-{hashlib.sha256(body.encode()).hexdigest()[:24]}.jsonl"
        if not path.exists():
            path.write_text(body, encoding="utf-8")
        return str(path)
    raise InputError(
        f"{where}: expected a path, a list of str, a list of dicts (reasoning records), a pandas DataFrame or a "
        f"numeric numpy array, got {type(data).__name__}"
    )


class CollapseMonitor:
    """Audit the rounds of one loop against a fixed reference.

    Args:
        loop: the loop's name (letters, digits, ``_ . -``).
        reference: the reference set: a path, a list of texts, a DataFrame or an array ``[N, D]``.
        pool: optional real data held out from the reference, of the same kind: the loop's null
            is built from it at the first round, and alarms carry a false-alarm guarantee.
        home: state directory (default ``$COLLAPSE_MONITOR_HOME`` or ``./.collapse-monitor``).
        rules_path: alert rules overlaid on the defaults (else the home's, see :mod:`monitor.config`).
        **options: :class:`monitor.options.AuditOptions` fixed for every round: ``k``, ``n_boot``,
            ``seed``, ``max_samples``, ``modality``, ``text_field``, ``featurizer``,
            ``protected_attribute``, ``constraints_path``, ``schema_path``, ``allow_size_change``,
            ``null_rounds``.
    """

    def __init__(self, loop: str, reference, *, pool=None, home: str | os.PathLike | None = None,
                 rules_path: str | os.PathLike | None = None, **options):
        from monitor.options import AuditOptions

        unknown = set(options) - set(AuditOptions.model_fields)
        if unknown:
            raise TypeError(f"unknown option(s) {', '.join(sorted(unknown))}; known: "
                            f"{', '.join(AuditOptions.model_fields)}, rules_path")
        self.loop = check_loop_name(loop)
        self.options = AuditOptions(**options)
        self.settings = load_settings(home, rules_path)
        self.settings.rules()  # a bad rules file is refused now, not at the first round
        self.inputs = self.settings.home / "inputs" / loop
        self.reference_path = materialise(reference, self.inputs, "reference", None, self.options.text_field)
        self.pool_path = None if pool is None else materialise(pool, self.inputs, "pool", None,
                                                                 self.options.text_field)

    def audit_round(self, round_number: int, data) -> Verdict:
        """Audit one round (a path, texts, a DataFrame or an array) and return the loop's verdict."""
        check_round_number(round_number)
        path = materialise(data, self.inputs, "round", round_number, self.options.text_field)
        from monitor.cli.flow_runs import audit_flow

        result = audit_flow(self.settings.home)(
            loop=self.loop, round_number=round_number, data_path=path, reference_path=self.reference_path,
            options=self.options, home=str(self.settings.home), pool_path=self.pool_path,
            rules_path=None if self.settings.rules_path is None else str(self.settings.rules_path),
        )
        return Verdict.from_result(result)
